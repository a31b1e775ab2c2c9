/// Turns a stream of token ids into text as it becomes complete.
///
/// Each `append` adds one token's bytes and returns the text that is complete so far; a UTF-8
/// sequence cut between tokens (an emoji split into byte tokens) is held back until the bytes
/// that finish it arrive. Invalid bytes are never held: they come out as U+FFFD exactly where
/// `Tokenizer.decode` would put them, so the concatenated output of all `append` calls and
/// `finish` equals `decode` of the same ids.
public struct StreamingDecoder {
    private let table: TokenDecodeTable
    private let skipSpecial: Bool
    private var pending: [UInt8] = []
    /// Still to remove one leading space (SentencePiece dummy prefix), before any byte came out.
    private var stripPending: Bool

    init(table: TokenDecodeTable, skipSpecial: Bool) {
        self.table = table
        self.skipSpecial = skipSpecial
        self.stripPending = table.stripLeadingSpace
    }

    /// Adds one token; returns the newly completed text (possibly empty).
    public mutating func append(_ id: Int32) -> String {
        let before = pending.count
        table.appendBytes(of: id, skipSpecial: skipSpecial, to: &pending)
        if stripPending && pending.count > before {
            if pending.first == 0x20 { pending.removeFirst() }
            stripPending = false
        }
        let cut = Self.completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Returns whatever is held back (an incomplete sequence becomes U+FFFD) and resets.
    public mutating func finish() -> String {
        let text = String(decoding: pending, as: UTF8.self)
        pending.removeAll()
        return text
    }

    /// The length of the prefix that can be decoded now: everything but a trailing sequence
    /// that is a valid, incomplete start of a UTF-8 character.
    static func completePrefixLength(_ b: [UInt8]) -> Int {
        let n = b.count
        var i = n - 1
        // Step back over at most 3 continuation bytes to the sequence's lead byte.
        while i >= 0 && n - i <= 3 && b[i] & 0xC0 == 0x80 { i -= 1 }
        guard i >= 0 else { return n }
        let lead = b[i]
        let need: Int
        switch lead {
        case 0xC2...0xDF: need = 2
        case 0xE0...0xEF: need = 3
        case 0xF0...0xF4: need = 4
        default: return n
        }
        let have = n - i
        guard have < need else { return n }
        if have >= 2 {
            let second = b[i + 1]
            let ok: Bool
            switch lead {
            case 0xE0: ok = (0xA0...0xBF).contains(second)
            case 0xED: ok = (0x80...0x9F).contains(second)
            case 0xF0: ok = (0x90...0xBF).contains(second)
            case 0xF4: ok = (0x80...0x8F).contains(second)
            default: ok = (0x80...0xBF).contains(second)
            }
            if !ok { return n }
        }
        return i
    }
}
