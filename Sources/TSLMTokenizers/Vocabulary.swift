import TSLMFormat

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
    let ids: [UTF8Key: Int32]

    init(tokens: [String], types: [Int32]) {
        self.tokens = tokens
        self.types = types
        var ids: [UTF8Key: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where ids[UTF8Key(t)] == nil { ids[UTF8Key(t)] = Int32(i) }
        self.ids = ids
    }

    var count: Int { tokens.count }

    /// The id of a string, by exact bytes.
    func id(_ s: String) -> Int32? { ids[UTF8Key(s)] }

    func type(_ id: Int32) -> TokenType? {
        guard id >= 0, Int(id) < types.count else { return nil }
        return TokenType(rawValue: types[Int(id)]) ?? .normal
    }
}
