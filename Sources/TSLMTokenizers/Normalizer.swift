/// One normalizer step, applied to each stretch of text between added tokens before
/// pre-tokenization (Hugging Face `normalizers`).
enum NormalizerStep {
    /// Prepends the string to non-empty text (SentencePiece's dummy prefix `▁`).
    case prepend([Unicode.Scalar])
    /// Replaces every occurrence of a literal string.
    case replace(pattern: [Unicode.Scalar], content: [Unicode.Scalar])
    /// Unicode canonical composition (through the standard library's own NFC tables). The
    /// decomposing and compatibility forms (NFD, NFKC, NFKD) are refused when a tokenizer is
    /// loaded: no supported model's tokenizer uses them.
    case nfc, lowercase
    /// Removes whitespace at the start and/or end.
    case strip(left: Bool, right: Bool)

    func apply(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        case let .prepend(p):
            return s.isEmpty ? s : p + s
        case let .replace(pattern, content):
            guard !pattern.isEmpty, s.count >= pattern.count else { return s }
            var out: [Unicode.Scalar] = []
            out.reserveCapacity(s.count)
            var i = 0
            while i < s.count {
                if s[i] == pattern[0], i + pattern.count <= s.count, s[i..<(i + pattern.count)].elementsEqual(pattern) {
                    out.append(contentsOf: content)
                    i += pattern.count
                } else {
                    out.append(s[i])
                    i += 1
                }
            }
            return out
        case .nfc: return Array(String(decoding: Self.string(s)._nfcCodeUnits, as: UTF8.self).unicodeScalars)
        case .lowercase: return Array(Self.string(s).lowercased().unicodeScalars)
        case let .strip(left, right):
            var a = 0, b = s.count
            if left { while a < b && s[a].properties.isWhitespace { a += 1 } }
            if right { while b > a && s[b - 1].properties.isWhitespace { b -= 1 } }
            return Array(s[a..<b])
        }
    }

    private static func string(_ s: [Unicode.Scalar]) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s)
        return String(v)
    }
}
