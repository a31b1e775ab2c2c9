import Foundation

/// The parts of a Hugging Face `tokenizer.json` (metadata key `tokenizer.huggingface.json`)
/// that the tokenizer uses: the normalizer, the pre-tokenizer, the BPE model's
/// `ignore_merges`, the decoder's leading-space strip and the added tokens.
struct HuggingFaceJSON {
    var normalizer: [NormalizerStep] = []
    var preTokenizer: [PreTokenizerStep] = []
    var ignoreMerges = false
    /// The decoder strips one leading space (SentencePiece-style `Strip` decoder).
    var stripsLeadingSpace = false
    var addedTokens: [(id: Int, content: String, special: Bool)] = []

    static let key = "tokenizer.huggingface.json"

    /// The top-level keys read; JSONDecoder skips the rest (the vocabulary and merges come
    /// from `tokenizer.tokens` / `tokenizer.merges`). JSONDecoder, not JSONSerialization,
    /// because the latter drops a U+FEFF that starts a string on Linux.
    private struct Root: Decodable {
        struct Model: Decodable { var ignore_merges: Bool? }
        struct Added: Decodable { var id: Int; var content: String; var special: Bool? }
        var normalizer: JSONValue?
        var pre_tokenizer: JSONValue?
        var model: Model?
        var decoder: JSONValue?
        var added_tokens: [Added]?
    }

    init(_ text: String) throws {
        let root: Root
        do {
            root = try JSONDecoder().decode(Root.self, from: Data(text.utf8))
        } catch {
            throw TokenizerError.malformed(key: Self.key, reason: "not a readable tokenizer.json: \(error)")
        }
        if case let .object(n)? = root.normalizer { normalizer = try Self.normalizer(n) }
        if case let .object(p)? = root.pre_tokenizer { preTokenizer = try Self.preTokenizer(p) }
        ignoreMerges = root.model?.ignore_merges ?? false
        if case let .object(d)? = root.decoder { stripsLeadingSpace = Self.hasStrip(d) }
        addedTokens = (root.added_tokens ?? []).map { ($0.id, $0.content, $0.special ?? false) }
    }

    private static func hasStrip(_ d: [String: JSONValue]) -> Bool {
        switch d["type"]?.string {
        case "Sequence": return (d["decoders"]?.objects ?? []).contains(where: hasStrip)
        case "Strip": return (d["start"]?.number ?? 0) >= 1
        default: return false
        }
    }

    private static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func normalizer(_ n: [String: JSONValue]) throws -> [NormalizerStep] {
        let type = n["type"]?.string ?? "?"
        switch type {
        case "Sequence":
            return try (n["normalizers"]?.objects ?? []).flatMap(normalizer)
        case "Prepend":
            return [.prepend(scalars(n["prepend"]?.string ?? ""))]
        case "Replace":
            guard let pattern = n["pattern"]?.object?["String"]?.string else {
                throw TokenizerError.unsupported("normalizer Replace with a regex pattern in \(key)")
            }
            return [.replace(pattern: scalars(pattern), content: scalars(n["content"]?.string ?? ""))]
        case "NFC": return [.nfc]
        case "NFD": return [.nfd]
        case "NFKC": return [.nfkc]
        case "NFKD": return [.nfkd]
        case "Lowercase": return [.lowercase]
        case "Strip":
            return [.strip(left: n["strip_left"]?.bool ?? true, right: n["strip_right"]?.bool ?? true)]
        default:
            throw TokenizerError.unsupported("normalizer type '\(type)' in \(key)")
        }
    }

    static func preTokenizer(_ p: [String: JSONValue]) throws -> [PreTokenizerStep] {
        let type = p["type"]?.string ?? "?"
        switch type {
        case "Sequence":
            return try (p["pretokenizers"]?.objects ?? []).flatMap(preTokenizer)
        case "Split":
            let pat = p["pattern"]?.object ?? [:]
            let pattern: SplitPattern
            if let r = pat["Regex"]?.string {
                pattern = try SplitPattern.parse(regex: r)
            } else if let s = pat["String"]?.string {
                pattern = .literal(scalars(s))
            } else {
                throw TokenizerError.malformed(key: key, reason: "a Split pre-tokenizer has no pattern")
            }
            let name = p["behavior"]?.string ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw TokenizerError.unsupported("Split behavior '\(name)' in \(key)")
            }
            return [.split(pattern, behavior, invert: p["invert"]?.bool ?? false)]
        case "Digits":
            return [.digits(individual: p["individual_digits"]?.bool ?? false)]
        case "ByteLevel":
            return [.byteLevel(addPrefixSpace: p["add_prefix_space"]?.bool ?? true,
                               useRegex: p["use_regex"]?.bool ?? true)]
        case "Metaspace":
            let replacement = (p["replacement"]?.string)?.unicodeScalars.first ?? "\u{2581}"
            var scheme = p["prepend_scheme"]?.string
            if scheme == nil { scheme = (p["add_prefix_space"]?.bool ?? true) ? "always" : "never" }
            return [.metaspace(replacement: replacement, prependScheme: scheme ?? "always",
                               split: p["split"]?.bool ?? true)]
        case "Whitespace":
            return [.whitespace]
        case "WhitespaceSplit":
            return [.whitespaceSplit]
        default:
            throw TokenizerError.unsupported("pre-tokenizer type '\(type)' in \(key)")
        }
    }
}

/// A JSON value, decoded with `JSONDecoder`.
enum JSONValue: Decodable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    var string: String? { if case let .string(s) = self { s } else { nil } }
    var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    var number: Double? { if case let .number(d) = self { d } else { nil } }
    var object: [String: JSONValue]? { if case let .object(o) = self { o } else { nil } }
    var objects: [[String: JSONValue]]? {
        if case let .array(a) = self { a.compactMap(\.object) } else { nil }
    }
}
