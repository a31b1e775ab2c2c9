import TSLMFormat

/// The parts of a Hugging Face `tokenizer.json` (metadata key `tokenizer.huggingface.json`)
/// that the tokenizer uses: the normalizer, the pre-tokenizer, the BPE model's
/// `ignore_merges`, the decoder's leading-space strip and the added tokens.
///
/// Parsed with `JSONValue` (TSLMFormat), the converter's parser: keys compare by their UTF-8
/// bytes and a U+FEFF that starts a string is kept. The vocabulary and merges come from
/// `tokenizer.tokens` / `tokenizer.merges`, not from here.
struct HuggingFaceJSON {
    var normalizer: [NormalizerStep] = []
    var preTokenizer: [PreTokenizerStep] = []
    var ignoreMerges = false
    /// The decoder strips one leading space (SentencePiece-style `Strip` decoder).
    var stripsLeadingSpace = false
    var addedTokens: [(id: Int, content: String, special: Bool)] = []

    static let key = "tokenizer.huggingface.json"

    init(_ text: String) throws {
        func bad(_ reason: String) -> TokenizerError {
            .malformed(key: Self.key, reason: "not a readable tokenizer.json: \(reason)")
        }
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse(Array(text.utf8))
        } catch {
            throw bad(error.reason)
        }
        guard let root = parsed.objectValue else { throw bad("the top level is a JSON \(parsed.kindName), not an object") }
        if let n = root["normalizer"]?.objectValue { normalizer = try Self.normalizer(n) }
        if let p = root["pre_tokenizer"]?.objectValue { preTokenizer = try Self.preTokenizer(p) }
        if let model = root["model"], !model.isNull {
            guard let m = model.objectValue else { throw bad("'model' is a JSON \(model.kindName), not an object") }
            if let v = m["ignore_merges"], !v.isNull {
                guard let b = v.boolValue else { throw bad("model.ignore_merges is a JSON \(v.kindName), not a bool") }
                ignoreMerges = b
            }
        }
        if let d = root["decoder"]?.objectValue { stripsLeadingSpace = Self.hasStrip(d) }
        if let list = root["added_tokens"], !list.isNull {
            guard let items = list.arrayValue else { throw bad("added_tokens is a JSON \(list.kindName), not an array") }
            for (i, item) in items.enumerated() {
                guard let id = item["id"]?.intValue, let content = item["content"]?.stringValue else {
                    throw bad("added_tokens[\(i)] lacks an integer 'id' or a string 'content'")
                }
                var special = false
                if let v = item["special"], !v.isNull {
                    guard let b = v.boolValue else { throw bad("added_tokens[\(i)].special is a JSON \(v.kindName), not a bool") }
                    special = b
                }
                addedTokens.append((id, content, special))
            }
        }
    }

    private static func hasStrip(_ d: JSONMembers) -> Bool {
        switch d["type"]?.stringValue {
        case "Sequence": return (d["decoders"]?.objects ?? []).contains(where: hasStrip)
        case "Strip": return (d["start"]?.doubleValue ?? 0) >= 1
        default: return false
        }
    }

    private static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func normalizer(_ n: JSONMembers) throws -> [NormalizerStep] {
        let type = n["type"]?.stringValue ?? "?"
        switch type {
        case "Sequence":
            return try (n["normalizers"]?.objects ?? []).flatMap(normalizer)
        case "Prepend":
            return [.prepend(scalars(n["prepend"]?.stringValue ?? ""))]
        case "Replace":
            guard let pattern = n["pattern"]?.objectValue?["String"]?.stringValue else {
                throw TokenizerError.unsupported("normalizer Replace with a regex pattern in \(key)")
            }
            return [.replace(pattern: scalars(pattern), content: scalars(n["content"]?.stringValue ?? ""))]
        case "NFC": return [.nfc]
        case "NFD", "NFKC", "NFKD":
            throw TokenizerError.unsupported("normalizer \(type) in \(key) (this runtime composes NFC only; no supported model's tokenizer uses \(type))")
        case "Lowercase": return [.lowercase]
        case "Strip":
            return [.strip(left: n["strip_left"]?.boolValue ?? true, right: n["strip_right"]?.boolValue ?? true)]
        default:
            throw TokenizerError.unsupported("normalizer type '\(type)' in \(key)")
        }
    }

    static func preTokenizer(_ p: JSONMembers) throws -> [PreTokenizerStep] {
        let type = p["type"]?.stringValue ?? "?"
        switch type {
        case "Sequence":
            return try (p["pretokenizers"]?.objects ?? []).flatMap(preTokenizer)
        case "Split":
            let pat = p["pattern"]?.objectValue
            let pattern: SplitPattern
            if let r = pat?["Regex"]?.stringValue {
                pattern = try SplitPattern.parse(regex: r)
            } else if let s = pat?["String"]?.stringValue {
                pattern = .literal(scalars(s))
            } else {
                throw TokenizerError.malformed(key: key, reason: "a Split pre-tokenizer has no pattern")
            }
            let name = p["behavior"]?.stringValue ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw TokenizerError.unsupported("Split behavior '\(name)' in \(key)")
            }
            return [.split(pattern, behavior, invert: p["invert"]?.boolValue ?? false)]
        case "Digits":
            return [.digits(individual: p["individual_digits"]?.boolValue ?? false)]
        case "ByteLevel":
            return [.byteLevel(addPrefixSpace: p["add_prefix_space"]?.boolValue ?? true,
                               useRegex: p["use_regex"]?.boolValue ?? true)]
        case "Metaspace":
            let replacement = (p["replacement"]?.stringValue)?.unicodeScalars.first ?? "\u{2581}"
            var scheme = p["prepend_scheme"]?.stringValue
            if scheme == nil { scheme = (p["add_prefix_space"]?.boolValue ?? true) ? "always" : "never" }
            return [.metaspace(replacement: replacement, prependScheme: scheme ?? "always",
                               split: p["split"]?.boolValue ?? true)]
        case "Whitespace":
            return [.whitespace]
        case "WhitespaceSplit":
            return [.whitespaceSplit]
        default:
            throw TokenizerError.unsupported("pre-tokenizer type '\(type)' in \(key)")
        }
    }
}

extension JSONValue {
    /// The object members of an array's object items; nil when not an array.
    fileprivate var objects: [JSONMembers]? { arrayValue?.compactMap(\.objectValue) }
}
