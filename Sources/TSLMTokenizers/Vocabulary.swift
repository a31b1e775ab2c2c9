/// GGUF token types (`tokenizer.token_type`).
enum TokenType: Int32 {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

/// The token strings, their types and the reverse lookup.
struct Vocabulary: Sendable {
    let tokens: [String]
    /// GGUF numbering; unknown numbers are kept as they are (and treated as normal).
    let types: [Int32]
    /// String → id, by exact UTF-8 bytes; the first id wins if a string appears twice.
    let ids: [TokenKey: Int32]

    init(tokens: [String], types: [Int32]) {
        self.tokens = tokens
        self.types = types
        var ids: [TokenKey: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where ids[TokenKey(t)] == nil { ids[TokenKey(t)] = Int32(i) }
        self.ids = ids
    }

    var count: Int { tokens.count }

    /// The id of a string, by exact bytes.
    func id(_ s: String) -> Int32? { ids[TokenKey(s)] }

    func type(_ id: Int32) -> TokenType? {
        guard id >= 0, Int(id) < types.count else { return nil }
        return TokenType(rawValue: types[Int(id)]) ?? .normal
    }
}

/// A dictionary key that compares strings by their exact UTF-8 bytes.
///
/// Swift's `String` equality is canonical equivalence ("é" == "e\u{301}"), but vocabularies
/// hold both spellings as different tokens, so lookups must not conflate them.
struct TokenKey: Hashable, Sendable {
    let string: String

    init(_ s: String) {
        var s = s
        s.makeContiguousUTF8()
        string = s
    }

    static func == (a: TokenKey, b: TokenKey) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    func hash(into h: inout Hasher) {
        if let done = string.utf8.withContiguousStorageIfAvailable({ h.combine(bytes: UnsafeRawBufferPointer($0)) }) {
            return done
        }
        for b in string.utf8 { h.combine(b) }
    }
}
