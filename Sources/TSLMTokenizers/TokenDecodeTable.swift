/// The bytes each token decodes to, computed once (shared by `Tokenizer.decode` and
/// `StreamingDecoder`).
///
/// Byte-level vocabularies map each scalar back through the GPT-2 table; a token with a scalar
/// outside it (an added token such as DeepSeek's `<｜User｜>`) decodes to its own UTF-8, as
/// Hugging Face's ByteLevel decoder does. SentencePiece vocabularies decode `<0xNN>` byte
/// tokens to their byte and other pieces to their text with `▁` read as a space.
final class TokenDecodeTable: @unchecked Sendable {
    private let bytes: [UInt8]
    private let offsets: [Int]
    /// Per token: 1 when `skipSpecial` drops it (control and unknown tokens).
    private let special: [Bool]
    /// SentencePiece with a dummy prefix: one leading space of the output is removed.
    let stripLeadingSpace: Bool

    init(vocab: Vocabulary, byteLevel: Bool, stripLeadingSpace: Bool) {
        var bytes: [UInt8] = []
        var offsets = [0]
        offsets.reserveCapacity(vocab.count + 1)
        var special: [Bool] = []
        special.reserveCapacity(vocab.count)
        for (i, t) in vocab.tokens.enumerated() {
            let type = TokenType(rawValue: vocab.types[i]) ?? .normal
            special.append(type == .control || type == .unknown)
            if byteLevel {
                if let b = ByteLevel.decode(t) { bytes.append(contentsOf: b) } else { bytes.append(contentsOf: t.utf8) }
            } else if type == .byte, let b = SentencePieceBPE.byteValue(t) {
                bytes.append(b)
            } else {
                for s in t.unicodeScalars {
                    if s == "\u{2581}" { bytes.append(0x20) } else { Tokenizer.appendUTF8(s, to: &bytes) }
                }
            }
            offsets.append(bytes.count)
        }
        self.bytes = bytes
        self.offsets = offsets
        self.special = special
        self.stripLeadingSpace = stripLeadingSpace
    }

    /// Appends the bytes of one token; out-of-range ids and, if asked, special ones add nothing.
    @inline(__always)
    func appendBytes(of id: Int32, skipSpecial: Bool, to out: inout [UInt8]) {
        guard id >= 0, Int(id) < special.count else { return }
        let i = Int(id)
        if skipSpecial && special[i] { return }
        out.append(contentsOf: bytes[offsets[i]..<offsets[i + 1]])
    }
}
