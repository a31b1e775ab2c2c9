import TSLMFormat

/// A text tokenizer built from a model's `tokenizer.*` metadata (see `formats/tslm.md`,
/// "Tokenizer"): byte-level BPE (`tokenizer.model` "gpt2": GPT-2, Llama-3, SmolLM2, DeepSeek,
/// Qwen) or SentencePiece BPE with byte fallback ("llama": Llama-2, Gemma, ChatTime).
///
/// Encoding runs, per input: special/added tokens are split out of the raw text
/// (`AddedTokens`); each stretch of ordinary text is normalized (`NormalizerStep`), split into
/// pre-tokens (`PreTokenizerStep`), and each pre-token is merged by the model (`ByteLevelBPE`,
/// `SentencePieceBPE`). Immutable after `init`, so it may be shared between threads.
public final class Tokenizer: @unchecked Sendable {
    private enum Model {
        case byteLevel(ByteLevelBPE)
        case sentencePiece(SentencePieceBPE)
    }

    private let vocab: Vocabulary
    private let model: Model
    private let normalizer: [NormalizerStep]
    private let preTokenizer: [PreTokenizerStep]
    private let added: AddedTokens
    /// SentencePiece with `tokenizer.prepend_scheme` "first": "▁" goes before the whole text.
    private let prefixWholeText: Bool
    let decodeTable: TokenDecodeTable

    /// Number of tokens in the vocabulary; valid ids are `0..<vocabularySize`.
    public var vocabularySize: Int { vocab.count }
    public let bosID: Int32?
    public let eosID: Int32?
    public let padID: Int32?
    public let unknownID: Int32?
    /// Whether `encode(_:addSpecial:)` prepends BOS.
    public let addBOS: Bool
    /// Whether `encode(_:addSpecial:)` appends EOS.
    public let addEOS: Bool
    /// The `tokenizer.model` value.
    public let modelName: String

    /// Builds from `.tslm` metadata. Keys are read as `tokenizer.X`, or GGUF's `tokenizer.ggml.X`
    /// when that is absent. Throws `TokenizerError` for a missing, inconsistent or unsupported
    /// tokenizer.
    public init(metadata m: Metadata) throws {
        func value(_ k: String) -> MetadataValue? { m["tokenizer." + k] ?? m["tokenizer.ggml." + k] }
        func array(_ k: String) -> MetadataArray? {
            if case let .array(a)? = value(k) { return a }
            return nil
        }
        guard let modelName = value("model")?.stringValue else { throw TokenizerError.missingKey("tokenizer.model") }
        guard case let .string(tokens)? = array("tokens") else { throw TokenizerError.missingKey("tokenizer.tokens") }
        guard !tokens.isEmpty, tokens.count < Int(Int32.max) else {
            throw TokenizerError.malformed(key: "tokenizer.tokens", reason: "\(tokens.count) tokens")
        }
        let hf: HuggingFaceJSON? = try value("huggingface.json")?.stringValue.map { try HuggingFaceJSON($0) }

        // Token types: from the metadata, else from tokenizer.json's added tokens, else normal.
        var types = [Int32](repeating: TokenType.normal.rawValue, count: tokens.count)
        if let a = array("token_type") {
            guard let ints = a.intValues, ints.count == tokens.count else {
                throw TokenizerError.malformed(key: "tokenizer.token_type", reason: "\(a.count) \(a.elementType) values for \(tokens.count) tokens")
            }
            types = ints.map { Int32(clamping: $0) }
        } else if let hf {
            for t in hf.addedTokens where t.id >= 0 && t.id < tokens.count {
                types[t.id] = t.special ? TokenType.control.rawValue : TokenType.userDefined.rawValue
            }
        }
        let vocab = Vocabulary(tokens: tokens, types: types)

        func tokenID(_ k: String) throws -> Int32? {
            guard let v = value(k) else { return nil }
            guard let i = v.intValue else { throw TokenizerError.malformed(key: "tokenizer." + k, reason: "not an integer") }
            guard i >= 0 && i < tokens.count else {
                throw TokenizerError.malformed(key: "tokenizer." + k, reason: "id \(i) is outside the vocabulary (0..<\(tokens.count))")
            }
            return Int32(i)
        }
        bosID = try tokenID("bos_token_id")
        eosID = try tokenID("eos_token_id")
        padID = try tokenID("pad_token_id") ?? tokenID("padding_token_id")
        unknownID = try tokenID("unknown_token_id")
        let merges: [String]?
        if let a = array("merges") {
            guard case let .string(s) = a else {
                throw TokenizerError.malformed(key: "tokenizer.merges", reason: "an array of \(a.elementType), expected strings")
            }
            merges = s
        } else {
            merges = nil
        }

        let pre = value("pre")?.stringValue
        let useJSON = hf != nil && (pre == nil || pre == "huggingface")
        var stripLeadingSpace = false
        var prefixWholeText = false
        switch modelName {
        case "gpt2":
            guard let merges else { throw TokenizerError.missingKey("tokenizer.merges") }
            var ignoreMerges = false
            if useJSON, let hf {
                normalizer = hf.normalizer
                preTokenizer = hf.preTokenizer
                ignoreMerges = hf.ignoreMerges
            } else if let steps = NamedPreTokenizer.steps(for: pre ?? "default") {
                normalizer = []
                preTokenizer = steps
                ignoreMerges = ["llama-bpe", "llama3", "llama-v3"].contains(pre ?? "")
            } else if let hf {
                normalizer = hf.normalizer
                preTokenizer = hf.preTokenizer
                ignoreMerges = hf.ignoreMerges
            } else {
                throw TokenizerError.unsupported("pre-tokenizer '\(pre ?? "")' (tokenizer.pre) without tokenizer.huggingface.json")
            }
            model = .byteLevel(try ByteLevelBPE(vocabulary: vocab, merges: merges, ignoreMerges: ignoreMerges))
            addBOS = value("add_bos_token")?.boolValue ?? false
        case "llama":
            var scores: [Float]? = nil
            if let a = array("scores") {
                switch a {
                case let .f32(f): scores = f
                case let .f64(d): scores = d.map { Float($0) }
                default:
                    throw TokenizerError.malformed(key: "tokenizer.scores", reason: "an array of \(a.elementType), expected f32")
                }
            }
            let addSpacePrefix = value("add_space_prefix")?.boolValue ?? true
            let scheme = value("prepend_scheme")?.stringValue ?? "always"
            guard scheme == "always" || scheme == "first" else {
                throw TokenizerError.malformed(key: "tokenizer.prepend_scheme", reason: "'\(scheme)' is not 'always' or 'first'")
            }
            if useJSON, let hf {
                normalizer = hf.normalizer
                preTokenizer = hf.preTokenizer
                stripLeadingSpace = hf.stripsLeadingSpace
            } else if scheme == "first" {
                // transformers' slow LlamaTokenizer with legacy=false: "▁" before the whole text
                // (even one that starts with an added token or a space), none after added tokens.
                normalizer = [.replace(pattern: [" "], content: ["\u{2581}"])]
                preTokenizer = []
                stripLeadingSpace = addSpacePrefix
                prefixWholeText = addSpacePrefix
            } else {
                normalizer = (addSpacePrefix ? [.prepend(["\u{2581}"])] : []) + [.replace(pattern: [" "], content: ["\u{2581}"])]
                preTokenizer = []
                stripLeadingSpace = addSpacePrefix
            }
            model = .sentencePiece(try SentencePieceBPE(vocabulary: vocab, scores: merges == nil ? scores : nil,
                                                        merges: merges, unknownID: unknownID))
            addBOS = value("add_bos_token")?.boolValue ?? true
        default:
            throw TokenizerError.unsupported("tokenizer model '\(modelName)' (tokenizer.model); supported: gpt2, llama")
        }
        addEOS = value("add_eos_token")?.boolValue ?? false

        var added = AddedTokens()
        for (i, t) in tokens.enumerated() {
            let ty = types[i]
            if ty == TokenType.control.rawValue || ty == TokenType.userDefined.rawValue {
                added.insert(t, id: Int32(i), control: ty == TokenType.control.rawValue)
            }
        }
        if let hf {
            for t in hf.addedTokens where t.id >= 0 && t.id < tokens.count {
                added.insert(t.content, id: Int32(t.id), control: t.special)
            }
        }
        self.added = added
        self.prefixWholeText = prefixWholeText
        self.vocab = vocab
        self.modelName = modelName
        let isByteLevel = modelName == "gpt2"
        decodeTable = TokenDecodeTable(vocab: vocab, byteLevel: isByteLevel, stripLeadingSpace: stripLeadingSpace)
    }

    /// The id of a vocabulary string (exact match), e.g. `"<|im_end|>"`.
    public func id(of token: String) -> Int32? { vocab.id(token) }

    /// The raw vocabulary string of an id, or nil if out of range.
    public func piece(_ id: Int32) -> String? {
        guard id >= 0, Int(id) < vocab.count else { return nil }
        return vocab.tokens[Int(id)]
    }

    /// Whether the id is a control or unknown token (what `skipSpecial` drops).
    public func isSpecial(_ id: Int32) -> Bool {
        guard let t = vocab.type(id) else { return false }
        return t == .control || t == .unknown
    }

    /// Throws `TokenizerError.invalidTokenID` for the first id outside the vocabulary.
    public func validate(_ ids: [Int32]) throws {
        for id in ids where id < 0 || Int(id) >= vocab.count {
            throw TokenizerError.invalidTokenID(id: id, vocabularySize: vocab.count)
        }
    }

    /// Encodes text. Control tokens written in the text (e.g. `<|im_start|>`) become their ids
    /// when `parseSpecial` is true; user-defined (added) tokens always do. BOS is prepended when
    /// `addBOS && addSpecial` (EOS appended when `addEOS && addSpecial`).
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int32] {
        var out: [Int32] = []
        if addSpecial && addBOS, let bos = bosID { out.append(bos) }
        let utf8 = prefixWholeText && !text.isEmpty ? Array("\u{2581}".utf8) + Array(text.utf8) : Array(text.utf8)
        var cache: [[UInt8]: [Int32]] = [:]
        for segment in added.split(utf8, parseControl: parseSpecial) {
            switch segment {
            case let .token(id):
                out.append(id)
            case let .text(range):
                encodeText(utf8[range], atTextStart: range.lowerBound == 0, into: &out, cache: &cache)
            }
        }
        if addSpecial && addEOS, let eos = eosID { out.append(eos) }
        return out
    }

    /// Encodes one stretch of text with no added tokens in it.
    private func encodeText(_ bytes: ArraySlice<UInt8>, atTextStart: Bool, into out: inout [Int32],
                            cache: inout [[UInt8]: [Int32]]) {
        var scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        for step in normalizer { scalars = step.apply(scalars) }
        var pre = PreTokenized(scalars)
        pre.atTextStart = atTextStart
        pre.apply(preTokenizer)
        switch model {
        case let .byteLevel(bpe):
            var piece: [UInt8] = []
            for r in pre.pieces {
                piece.removeAll(keepingCapacity: true)
                for s in pre.text.scalars[r] { Self.appendUTF8(s, to: &piece) }
                bpe.encode(piece, into: &out, cache: &cache)
            }
        case let .sentencePiece(sp):
            for r in pre.pieces { sp.encode(pre.text.scalars[r], into: &out) }
        }
    }

    @inline(__always)
    static func appendUTF8(_ s: Unicode.Scalar, to out: inout [UInt8]) {
        let v = s.value
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(UInt8(0xC0 | (v >> 6)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            out.append(UInt8(0xE0 | (v >> 12)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (v >> 18)))
            out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    /// Decodes ids to text: the tokens' bytes are joined, then decoded as UTF-8 with U+FFFD
    /// replacing invalid sequences only at the very end. Ids outside the vocabulary are skipped
    /// (call `validate` first to reject them); `skipSpecial` drops control and unknown tokens.
    public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids { decodeTable.appendBytes(of: id, skipSpecial: skipSpecial, to: &bytes) }
        if decodeTable.stripLeadingSpace, bytes.first == 0x20 { bytes.removeFirst() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A decoder that takes ids one at a time and returns the text completed so far, holding
    /// back an incomplete UTF-8 sequence until the tokens that finish it arrive.
    public func makeStreamingDecoder(skipSpecial: Bool = true) -> StreamingDecoder {
        StreamingDecoder(table: decodeTable, skipSpecial: skipSpecial)
    }
}
