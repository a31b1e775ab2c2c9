#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat

/// Turns the tokenizer files of a Hugging Face model folder into `.tslm` `tokenizer.*` metadata
/// (see `formats/tslm.md`, "Tokenizer").
///
/// Sources, each optional:
/// - `tokenizer.json` (the `tokenizers` library's file). Preferred when present; its text is
///   always kept verbatim as `tokenizer.huggingface.json`.
/// - `tokenizer.model` (a SentencePiece `ModelProto`), used when there is no `tokenizer.json`
///   (its bytes are kept as the u8 array `tokenizer.sentencepiece.model`), or, next to a
///   SentencePiece-style `tokenizer.json`, for `tokenizer.scores` when its pieces are the first
///   tokens of that vocabulary.
/// - `tokenizer_config.json`: `add_bos_token`, `add_eos_token`, `chat_template`, the
///   bos/eos/unk/pad token names, `added_tokens_decoder`; kept verbatim as
///   `tokenizer.huggingface.config`. A `chat_template.jinja` file is used when the config has no
///   template.
/// - `added_tokens.json` (`{"token": id}`): extends the vocabulary.
/// - `special_tokens_map.json`: bos/eos/unk/pad names the config does not give.
///
/// Rules:
/// - `tokenizer.model`: for a `tokenizer.json` BPE model, `gpt2` when its pre-tokenizer or decoder
///   is (or contains) `ByteLevel`; otherwise `llama` when it is SentencePiece-style
///   (`byte_fallback`, or a `Metaspace` pre-tokenizer/decoder, or a `Replace` of "▁" in the
///   normalizer or decoder); otherwise `bpe`. Other `tokenizer.json` model types (WordPiece,
///   Unigram, WordLevel) give the lower-cased type name and only the raw JSON (no tokens), without
///   an error; the runtime decides what it supports. A `tokenizer.model` gives `llama` for BPE
///   models and `unigram`, `word` or `char` otherwise (tokens, scores and types are still stored).
/// - `tokenizer.pre`: `gpt2` for a plain `ByteLevel` pre-tokenizer (with its regex); `smollm` for
///   `Sequence[Digits(individual_digits), ByteLevel]` (the same splitting as llama.cpp's
///   starcoder/refact); `llama-bpe` for `Split(<the Llama-3 regex>)` followed by `ByteLevel`
///   without regex; `deepseek-v3` for DeepSeek-V3's three `Split`s followed by `ByteLevel`
///   without regex; `default` for SentencePiece-style models; otherwise `huggingface`, meaning
///   "read the pre-tokenizer from `tokenizer.huggingface.json`".
/// - Vocabulary: `model.vocab` ordered by id, then `added_tokens`, `added_tokens_decoder` and
///   `added_tokens.json` entries placed by id. An added token whose id is already taken replaces
///   that entry's text (as the `tokenizers` library decodes it). Ids must be dense, `0..<n`: a
///   gap, a negative id or two vocabulary tokens with one id raise `malformed`.
/// - `tokenizer.token_type` (GGUF numbering): 2 for the unknown token, 3 for special added tokens,
///   4 for other added tokens, 6 for `<0xNN>` tokens of SentencePiece-style vocabularies, else 1.
///   From a `tokenizer.model`, the piece types as stored.
/// - Special ids (u32): names from `tokenizer_config.json`, else `special_tokens_map.json`,
///   resolved through the vocabulary (a name not in the vocabulary is left out); otherwise the
///   SentencePiece trainer ids (negative ones left out) and `tokenizer.json`'s `model.unk_token`.
/// - `tokenizer.chat_template`: the string; for a list of named templates, the one named
///   `default`, else the first.
public enum TokenizerImport {
    /// The tokenizer metadata of the folder; empty when it has no tokenizer files.
    public static func metadata(folder: String) throws -> Metadata {
        let jsonPath = folder + "/tokenizer.json"
        let spPath = folder + "/tokenizer.model"
        let configPath = folder + "/tokenizer_config.json"
        let addedPath = folder + "/added_tokens.json"
        let specialPath = folder + "/special_tokens_map.json"
        let templatePath = folder + "/chat_template.jinja"

        var out = Metadata()
        guard [jsonPath, spPath, configPath, addedPath, specialPath, templatePath].contains(where: fileExists) else {
            return out
        }
        var vocab = TokenizerVocabulary()
        var scores: [Float]?
        var merges: [String]?
        var spBytes: [UInt8]?
        var rawJSON: String?
        var fallbackIds: [(key: String, id: Int)] = []
        var unknownTokenName: String?
        var isSentencePieceStyle = false
        // Added tokens extend a model vocabulary; without one (no model file, or a model type
        // this importer does not read) they are not turned into a token list.
        var hasBaseVocabulary = false

        if fileExists(jsonPath) {
            let (root, text) = try JSONValue.parseFile(jsonPath, maxBytes: 256 << 20)
            rawJSON = text
            let hf = try HFTokenizerJSON(root: root, file: jsonPath)
            out["tokenizer.model"] = .string(hf.modelName)
            out["tokenizer.pre"] = .string(hf.preName)
            if hf.hasVocabulary {
                for (token, id) in hf.vocab {
                    let type: Int32 = hf.isSentencePieceStyle && isByteToken(token) ? 6 : 1
                    try vocab.addBase(id: id, token: token, type: type, file: jsonPath)
                }
                for a in hf.added {
                    try vocab.addAdded(id: a.id, token: a.token, special: a.special, file: jsonPath)
                }
                merges = hf.merges
                unknownTokenName = hf.unknownToken
                isSentencePieceStyle = hf.isSentencePieceStyle
                hasBaseVocabulary = true
            }
        } else if fileExists(spPath) {
            let bytes = try readSmallFile(spPath, maxBytes: 64 << 20)
            let sp = try SentencePieceModel(bytes: bytes, file: spPath)
            out["tokenizer.model"] = .string(sp.tokenizerModelName)
            out["tokenizer.pre"] = .string("default")
            for (i, p) in sp.pieces.enumerated() {
                try vocab.addBase(id: i, token: p.piece, type: p.type, file: spPath)
            }
            scores = sp.pieces.map(\.score)
            spBytes = bytes
            hasBaseVocabulary = true
            for (key, id) in [("unknown", sp.unkId), ("bos", sp.bosId), ("eos", sp.eosId), ("pad", sp.padId)] where id >= 0 {
                guard Int(id) < sp.pieces.count else {
                    throw TSLMError.malformed(file: spPath, reason: "\(key) id \(id) is outside the \(sp.pieces.count)-piece vocabulary")
                }
                fallbackIds.append((key, Int(id)))
            }
        }

        // tokenizer_config.json
        var config: JSONMembers?
        var rawConfig: String?
        if fileExists(configPath) {
            let (root, text) = try JSONValue.parseFile(configPath)
            guard let obj = root.objectValue else {
                throw TSLMError.malformed(file: configPath, reason: "top level is a JSON \(root.kindName), not an object")
            }
            config = obj
            rawConfig = text
            if hasBaseVocabulary, let decoder = obj["added_tokens_decoder"], !decoder.isNull {
                guard let entries = decoder.objectValue else {
                    throw TSLMError.wrongKeyType(file: configPath, key: "added_tokens_decoder", expected: "object", found: decoder.kindName)
                }
                for (idText, entry) in entries.pairs {
                    guard let id = Int(idText), id >= 0 else {
                        throw TSLMError.malformed(file: configPath, reason: "added_tokens_decoder key '\(idText)' is not a token id")
                    }
                    guard let content = entry["content"]?.stringValue else {
                        throw TSLMError.malformed(file: configPath, reason: "added_tokens_decoder[\(idText)] has no string 'content'")
                    }
                    try vocab.addAdded(id: id, token: content, special: entry["special"]?.boolValue ?? false, file: configPath)
                }
            }
        }
        var special: JSONMembers?
        if fileExists(specialPath) {
            let (root, _) = try JSONValue.parseFile(specialPath)
            guard let obj = root.objectValue else {
                throw TSLMError.malformed(file: specialPath, reason: "top level is a JSON \(root.kindName), not an object")
            }
            special = obj
        }

        // added_tokens.json
        if hasBaseVocabulary, fileExists(addedPath) {
            let (root, _) = try JSONValue.parseFile(addedPath)
            guard let obj = root.objectValue else {
                throw TSLMError.malformed(file: addedPath, reason: "top level is a JSON \(root.kindName), not an object")
            }
            let specialNames = Set(specialTokenNames(config: config, specialMap: special).map(UTF8Key.init))
            for (token, idValue) in obj.pairs {
                guard let id = idValue.intValue, id >= 0 else {
                    throw TSLMError.malformed(file: addedPath, reason: "token '\(token)' has id \(idValue.serialized), not a non-negative integer")
                }
                try vocab.addAdded(id: id, token: token, special: specialNames.contains(UTF8Key(token)), file: addedPath)
            }
        }

        // The vocabulary.
        let final = try vocab.finish(file: fileExists(jsonPath) ? jsonPath : spPath)
        if !final.tokens.isEmpty {
            var types = final.types
            // Token text → first id, by exact bytes (canonically equivalent tokens differ).
            var idOf: [UTF8Key: Int] = [:]
            idOf.reserveCapacity(final.tokens.count)
            for (i, t) in final.tokens.enumerated() where idOf[UTF8Key(t)] == nil { idOf[UTF8Key(t)] = i }
            if let unk = unknownTokenName, let id = idOf[UTF8Key(unk)] {
                types[id] = 2
                fallbackIds.append(("unknown", id))
            }
            out["tokenizer.tokens"] = .array(.string(final.tokens))
            out["tokenizer.token_type"] = .array(.i32(types))

            // Scores: from the SentencePiece model, or from a tokenizer.model next to a
            // SentencePiece-style tokenizer.json whose leading tokens it matches.
            if scores == nil, isSentencePieceStyle, fileExists(spPath) {
                let bytes = try readSmallFile(spPath, maxBytes: 64 << 20)
                let sp = try SentencePieceModel(bytes: bytes, file: spPath)
                if sp.pieces.count <= final.tokens.count,
                   zip(sp.pieces, final.tokens).allSatisfy({ $0.piece.utf8.elementsEqual($1.utf8) }) {
                    scores = sp.pieces.map(\.score)
                    spBytes = bytes
                }
            }
            if var s = scores {
                s += [Float](repeating: 0, count: final.tokens.count - s.count)
                out["tokenizer.scores"] = .array(.f32(s))
            }
            if let merges { out["tokenizer.merges"] = .array(.string(merges)) }

            // Special token ids: names from the config files win over ids from the model files.
            var ids: [String: Int] = [:]
            for (key, id) in fallbackIds { ids[key] = id }
            for (key, name) in try specialTokenNamesByRole(config: config, configPath: configPath,
                                                           specialMap: special, specialPath: specialPath) {
                if let id = idOf[UTF8Key(name)] { ids[key] = id }
            }
            for key in ["bos", "eos", "unknown", "pad"] {
                if let id = ids[key], let v = UInt32(exactly: id) { out["tokenizer.\(key)_token_id"] = .u32(v) }
            }
        }

        // Flags and the chat template.
        if let config {
            for (jsonKey, key) in [("add_bos_token", "tokenizer.add_bos_token"), ("add_eos_token", "tokenizer.add_eos_token")] {
                guard let v = config[jsonKey], !v.isNull else { continue }
                guard let b = v.boolValue else {
                    throw TSLMError.wrongKeyType(file: configPath, key: jsonKey, expected: "bool", found: v.kindName)
                }
                out[key] = .bool(b)
            }
            if let t = config["chat_template"], !t.isNull {
                out["tokenizer.chat_template"] = .string(try chatTemplate(t, file: configPath))
            }
            // The slow LlamaTokenizer of a tokenizer.model without tokenizer.json: `legacy`
            // false puts the "▁" prefix before the whole text only (none after an added token);
            // true or absent (transformers' default) prefixes every stretch between added tokens.
            if rawJSON == nil, spBytes != nil {
                if let v = config["legacy"], !v.isNull {
                    guard let legacy = v.boolValue else {
                        throw TSLMError.wrongKeyType(file: configPath, key: "legacy", expected: "bool", found: v.kindName)
                    }
                    out["tokenizer.prepend_scheme"] = .string(legacy ? "always" : "first")
                }
                if let v = config["add_prefix_space"], !v.isNull {
                    guard let b = v.boolValue else {
                        throw TSLMError.wrongKeyType(file: configPath, key: "add_prefix_space", expected: "bool", found: v.kindName)
                    }
                    out["tokenizer.add_space_prefix"] = .bool(b)
                }
            }
        }
        if out["tokenizer.chat_template"] == nil, fileExists(templatePath) {
            let bytes = try readSmallFile(templatePath, maxBytes: 16 << 20)
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw TSLMError.invalidUTF8(file: templatePath, context: "chat template")
            }
            out["tokenizer.chat_template"] = .string(text)
        }
        if let rawJSON { out["tokenizer.huggingface.json"] = .string(rawJSON) }
        if let rawConfig { out["tokenizer.huggingface.config"] = .string(rawConfig) }
        if let spBytes { out["tokenizer.sentencepiece.model"] = .array(.u8(spBytes)) }
        return out
    }

    /// The template text of a `chat_template` value: a string, or a list of
    /// `{"name": …, "template": …}` of which the one named `default` (else the first) is taken.
    static func chatTemplate(_ value: JSONValue, file: String) throws -> String {
        if let s = value.stringValue { return s }
        guard let list = value.arrayValue, !list.isEmpty else {
            throw TSLMError.wrongKeyType(file: file, key: "chat_template", expected: "string or list of named templates", found: value.kindName)
        }
        let chosen = list.first(where: { $0["name"]?.stringValue == "default" }) ?? list[0]
        guard let text = chosen["template"]?.stringValue else {
            throw TSLMError.malformed(file: file, reason: "chat_template entry has no string 'template'")
        }
        return text
    }

    /// The bos/eos/unk/pad token names, from the config, else from the special tokens map.
    static func specialTokenNamesByRole(config: JSONMembers?, configPath: String,
                                        specialMap: JSONMembers?, specialPath: String) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for (jsonKey, role) in [("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"), ("pad_token", "pad")] {
            if let name = try tokenName(config?[jsonKey], key: jsonKey, file: configPath)
                ?? tokenName(specialMap?[jsonKey], key: jsonKey, file: specialPath) {
                out.append((role, name))
            }
        }
        return out
    }

    /// Every special token name the config files mention (roles and additional special tokens).
    static func specialTokenNames(config: JSONMembers?, specialMap: JSONMembers?) -> [String] {
        var out: [String] = []
        for source in [config, specialMap] {
            guard let source else { continue }
            for key in ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"] {
                if let n = try? tokenName(source[key], key: key, file: "") { out.append(n) }
            }
            for v in source["additional_special_tokens"]?.arrayValue ?? [] {
                if let n = try? tokenName(v, key: "additional_special_tokens", file: "") { out.append(n) }
            }
        }
        return out
    }

    /// A token named as a string or as `{"content": "…"}`; nil for absent or null.
    static func tokenName(_ value: JSONValue?, key: String, file: String) throws -> String? {
        guard let value, !value.isNull else { return nil }
        if let s = value.stringValue { return s }
        if let s = value["content"]?.stringValue { return s }
        throw TSLMError.wrongKeyType(file: file, key: key, expected: "string or {\"content\": string}", found: value.kindName)
    }

    /// True for SentencePiece byte tokens: `<0xNN>` with two upper-case hex digits.
    static func isByteToken(_ token: String) -> Bool {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return false }
        return u[3...4].allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) }
    }

    static func fileExists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    static func readSmallFile(_ path: String, maxBytes: UInt64) throws -> [UInt8] {
        let reader = try FileReader(path: path)
        guard reader.size <= maxBytes else {
            throw TSLMError.malformed(file: path, reason: "file of \(reader.size) bytes exceeds the \(maxBytes)-byte limit")
        }
        return try reader.readAll()
    }
}

/// Token ids gathered from several files, checked to be dense at the end.
struct TokenizerVocabulary {
    private var byId: [Int: (token: String, type: Int32, fromAdded: Bool)] = [:]

    /// A token of a model's own vocabulary; two base tokens may not share an id.
    mutating func addBase(id: Int, token: String, type: Int32, file: String) throws {
        guard id >= 0 else { throw TSLMError.malformed(file: file, reason: "token '\(token)' has negative id \(id)") }
        if let old = byId[id] {
            throw TSLMError.malformed(file: file, reason: "tokens '\(old.token)' and '\(token)' both have id \(id)")
        }
        byId[id] = (token, type, false)
    }

    /// An added token: 3 (control) when special, else 4 (user-defined). It replaces a base
    /// token with the same id; two added tokens with one id must agree. When the same text is
    /// already at that id, a special (3) or unknown (2) type is kept: files that list a token
    /// without its special flag (`added_tokens.json`) do not demote it.
    mutating func addAdded(id: Int, token: String, special: Bool, file: String) throws {
        guard id >= 0 else { throw TSLMError.malformed(file: file, reason: "added token '\(token)' has negative id \(id)") }
        var type: Int32 = special ? 3 : 4
        if let old = byId[id] {
            let sameText = old.token.utf8.elementsEqual(token.utf8)
            if old.fromAdded, !sameText {
                throw TSLMError.malformed(file: file, reason: "added tokens '\(old.token)' and '\(token)' both have id \(id)")
            }
            if sameText, !special, old.type == 2 || old.type == 3 { type = old.type }
        }
        byId[id] = (token, type, true)
    }

    /// The tokens and types by id; a missing id raises `malformed`.
    func finish(file: String) throws -> (tokens: [String], types: [Int32]) {
        let n = byId.count
        var tokens: [String] = []
        var types: [Int32] = []
        tokens.reserveCapacity(n)
        types.reserveCapacity(n)
        for id in 0..<n {
            guard let e = byId[id] else {
                let maxId = byId.keys.max() ?? 0
                throw TSLMError.malformed(file: file, reason: "token ids are not dense: id \(id) is missing (\(n) tokens, largest id \(maxId))")
            }
            tokens.append(e.token)
            types.append(e.type)
        }
        return (tokens, types)
    }
}

/// What `tokenizer.json` says about the model, its vocabulary and its pre-tokenizer.
struct HFTokenizerJSON {
    var modelName: String
    var preName: String
    var isSentencePieceStyle = false
    /// False for model types whose vocabulary this importer does not read.
    var hasVocabulary = false
    var vocab: [(String, Int)] = []
    var added: [(id: Int, token: String, special: Bool)] = []
    var merges: [String] = []
    var unknownToken: String?

    /// The Llama-3 (tiktoken cl100k) split pattern.
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    init(root: JSONValue, file: String) throws {
        func bad(_ reason: String) -> TSLMError { .malformed(file: file, reason: reason) }
        guard let top = root.objectValue else { throw bad("top level is a JSON \(root.kindName), not an object") }
        guard let model = top["model"]?.objectValue else { throw bad("no 'model' object") }
        let type = model["type"]?.stringValue ?? (model["merges"] != nil ? "BPE" : "")
        let pre = top["pre_tokenizer"]
        let decoder = top["decoder"]
        let normalizer = top["normalizer"]

        guard type == "BPE" else {
            modelName = type.isEmpty ? "unknown" : type.lowercased()
            preName = "huggingface"
            return
        }
        hasVocabulary = true
        let byteLevel = Self.contains(pre, type: "ByteLevel") || Self.contains(decoder, type: "ByteLevel")
        let metaspace = Self.contains(pre, type: "Metaspace") || Self.contains(decoder, type: "Metaspace")
        let replacesSpaceMark = Self.replacesSpaceMark(normalizer) || Self.replacesSpaceMark(decoder)
        if byteLevel {
            modelName = "gpt2"
            preName = Self.byteLevelPreName(pre)
        } else if model["byte_fallback"]?.boolValue == true || metaspace || replacesSpaceMark {
            modelName = "llama"
            preName = "default"
            isSentencePieceStyle = true
        } else {
            modelName = "bpe"
            preName = "huggingface"
        }

        guard let vocabObject = model["vocab"]?.objectValue else { throw bad("model.vocab is not an object") }
        vocab.reserveCapacity(vocabObject.count)
        for (token, v) in vocabObject.pairs {
            guard let id = v.intValue, id >= 0 else {
                throw bad("model.vocab['\(token)'] is \(v.serialized), not a non-negative integer id")
            }
            vocab.append((token, id))
        }
        if let m = model["merges"], !m.isNull {
            guard let list = m.arrayValue else { throw bad("model.merges is not an array") }
            merges.reserveCapacity(list.count)
            for (rank, item) in list.enumerated() {
                if let s = item.stringValue {
                    guard s.utf8.contains(0x20) else { throw bad("merge #\(rank) '\(s)' is not 'left right'") }
                    merges.append(s)
                } else if let pair = item.arrayValue, pair.count == 2,
                          let l = pair[0].stringValue, let r = pair[1].stringValue {
                    merges.append(l + " " + r)
                } else {
                    throw bad("merge #\(rank) is neither a 'left right' string nor a [left, right] pair")
                }
            }
        }
        if let u = model["unk_token"], !u.isNull {
            guard let s = u.stringValue else { throw bad("model.unk_token is not a string") }
            unknownToken = s
        }
        if let list = top["added_tokens"], !list.isNull {
            guard let items = list.arrayValue else { throw bad("added_tokens is not an array") }
            for (i, item) in items.enumerated() {
                guard let id = item["id"]?.intValue, id >= 0, let content = item["content"]?.stringValue else {
                    throw bad("added_tokens[\(i)] lacks a non-negative 'id' or a string 'content'")
                }
                added.append((id, content, item["special"]?.boolValue ?? false))
            }
        }
    }

    /// True when `node` has `type`, or a `Sequence` under it does.
    static func contains(_ node: JSONValue?, type: String) -> Bool {
        guard let node, let obj = node.objectValue else { return false }
        if obj["type"]?.stringValue == type { return true }
        for key in ["pretokenizers", "decoders", "normalizers", "processors"] {
            for child in obj[key]?.arrayValue ?? [] where contains(child, type: type) { return true }
        }
        return false
    }

    /// True when `node` (or a `Sequence` under it) has a `Replace` that maps " " and "▁".
    static func replacesSpaceMark(_ node: JSONValue?) -> Bool {
        guard let node, let obj = node.objectValue else { return false }
        if obj["type"]?.stringValue == "Replace" {
            let pattern = obj["pattern"]?["String"]?.stringValue
            let content = obj["content"]?.stringValue
            if pattern == "\u{2581}" || content == "\u{2581}" { return true }
        }
        for key in ["decoders", "normalizers"] {
            for child in obj[key]?.arrayValue ?? [] where replacesSpaceMark(child) { return true }
        }
        return false
    }

    /// The DeepSeek-V3 split patterns, in order (from its `tokenizer.json`).
    static let deepseekV3Patterns = [
        #"\p{N}{1,3}"#,
        "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    ]

    /// The pre-tokenizer name of a byte-level BPE (see `TokenizerImport`).
    static func byteLevelPreName(_ pre: JSONValue?) -> String {
        guard let pre, let type = pre["type"]?.stringValue else { return "huggingface" }
        func usesRegex(_ node: JSONValue) -> Bool { node["use_regex"]?.boolValue ?? true }
        if type == "ByteLevel" { return usesRegex(pre) ? "gpt2" : "huggingface" }
        guard type == "Sequence", let steps = pre["pretokenizers"]?.arrayValue else { return "huggingface" }
        let types = steps.map { $0["type"]?.stringValue ?? "" }
        if types == ["Digits", "ByteLevel"], steps[0]["individual_digits"]?.boolValue == true, usesRegex(steps[1]) {
            return "smollm"
        }
        if types == ["Split", "ByteLevel"], steps[0]["pattern"]?["Regex"]?.stringValue == llama3Pattern, !usesRegex(steps[1]) {
            return "llama-bpe"
        }
        if types == ["Split", "Split", "Split", "ByteLevel"], !usesRegex(steps[3]),
           steps.prefix(3).map({ $0["pattern"]?["Regex"]?.stringValue ?? "" }) == deepseekV3Patterns {
            return "deepseek-v3"
        }
        return "huggingface"
    }
}
