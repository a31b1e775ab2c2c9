import Foundation
import TSLMFormat
import TSLMTestSupport
@testable import TSLMTokenizers
import XCTest

final class TokenizerUnitTests: XCTestCase {
    /// A byte-level vocabulary of the 256 single bytes, "<|s|>" (control) and the given extra
    /// tokens and merges.
    func byteVocabMetadata(extra: [String] = [], merges: [String] = []) -> Metadata {
        var tokens = (0..<256).map { ByteLevel.encode([UInt8($0)]) }
        tokens.append("<|s|>")
        tokens += extra
        var types = [Int32](repeating: 1, count: tokens.count)
        types[256] = 3
        var m = Metadata()
        m["tokenizer.model"] = .string("gpt2")
        m["tokenizer.pre"] = .string("gpt2")
        m["tokenizer.tokens"] = .array(.string(tokens))
        m["tokenizer.token_type"] = .array(.i32(types))
        m["tokenizer.merges"] = .array(.string(merges))
        m["tokenizer.eos_token_id"] = .u32(256)
        return m
    }

    func testByteLevelMapIsGPT2s() {
        let map = ByteLevel.byteToScalar
        XCTAssertEqual(Set(map).count, 256)
        XCTAssertEqual(map[0x20], "\u{120}")  // Ġ
        XCTAssertEqual(map[0x0A], "\u{10A}")  // Ċ
        XCTAssertEqual(map[0x00], "\u{100}")
        XCTAssertEqual(map[0x41], "A")
        XCTAssertEqual(map[0xAD], "\u{143}")  // the last remapped byte (soft hyphen)
        let all = (0..<256).map(UInt8.init)
        XCTAssertEqual(ByteLevel.decode(ByteLevel.encode(all)), all)
        XCTAssertNil(ByteLevel.decode("\u{FF5C}"))
    }

    func testGPT2PatternSplitsLikeTheRegex() {
        func split(_ s: String, _ p: SplitPattern) -> [String] {
            let t = ScannedText(Array(s.unicodeScalars))
            return p.matches(in: t, range: 0..<t.scalars.count).map { r in
                var v = String.UnicodeScalarView(); v.append(contentsOf: t.scalars[r]); return String(v)
            }
        }
        XCTAssertEqual(split("Hello world's  end\t\n x", .gpt2), ["Hello", " world", "'s", " ", " end", "\t\n", " x"])
        XCTAssertEqual(split("DON'T 123  a", .gpt2), ["DON", "'", "T", " 123", " ", " a"])
        XCTAssertEqual(split("DON'T 1234", .llama3(maxDigits: 3)), ["DON", "'T", " ", "123", "4"])
        XCTAssertEqual(split("a\n\n b", .llama3(maxDigits: 3)), ["a", "\n\n", " b"])
        // The Swift Regex fallback agrees with the scanner on this pattern.
        let fallback = SplitPattern.regex(RegexBox(try! Regex(KnownPatterns.gpt2).matchingSemantics(.unicodeScalar)))
        for s in ["Hello world's  end\t\n x", "a  1,000 3.14 🙂🙂 x", "  lead", "trail  "] {
            XCTAssertEqual(split(s, fallback), split(s, .gpt2), s)
        }
    }

    func testStreamingHoldsSplitCharacters() throws {
        let tok = try Tokenizer(metadata: byteVocabMetadata())
        let text = "aé😀b"
        let ids = tok.encode(text)
        XCTAssertEqual(ids.count, 1 + 2 + 4 + 1)  // no merges: one token per byte
        var d = tok.makeStreamingDecoder()
        var outputs: [String] = []
        for id in ids { outputs.append(d.append(id)) }
        XCTAssertEqual(outputs, ["a", "", "é", "", "", "", "😀", "b"])
        XCTAssertEqual(d.finish(), "")
        // An unfinished character comes out as U+FFFD at the end, as decode gives it.
        var d2 = tok.makeStreamingDecoder()
        XCTAssertEqual(ids.prefix(4).map { d2.append($0) }.joined() + d2.finish(), tok.decode(Array(ids.prefix(4))))
        XCTAssertEqual(tok.decode(Array(ids.prefix(4))), "aé\u{FFFD}")
        // Invalid bytes are not held: a lone continuation byte comes out at once.
        var d3 = tok.makeStreamingDecoder()
        XCTAssertEqual(d3.append(0x80), "\u{FFFD}")
    }

    func testSpecialTokensAndSkipping() throws {
        let tok = try Tokenizer(metadata: byteVocabMetadata(extra: ["ab"], merges: ["a b"]))
        XCTAssertEqual(tok.id(of: "<|s|>"), 256)
        XCTAssertEqual(tok.piece(257), "ab")
        XCTAssertEqual(tok.encode("ab<|s|>ab"), [257, 256, 257])
        XCTAssertEqual(tok.encode("ab<|s|>", parseSpecial: false).count, 1 + 5)
        XCTAssertEqual(tok.decode([257, 256, 257]), "ab<|s|>ab")
        XCTAssertEqual(tok.decode([257, 256, 257], skipSpecial: true), "abab")
        XCTAssertTrue(tok.isSpecial(256))
        XCTAssertFalse(tok.addBOS)
        XCTAssertEqual(tok.eosID, 256)
    }

    func testValidateAndOutOfRangeIDs() throws {
        let tok = try Tokenizer(metadata: byteVocabMetadata())
        XCTAssertNoThrow(try tok.validate([0, 256]))
        XCTAssertThrowsError(try tok.validate([1, 257])) {
            XCTAssertEqual($0 as? TokenizerError, .invalidTokenID(id: 257, vocabularySize: 257))
        }
        XCTAssertThrowsError(try tok.validate([-1]))
        XCTAssertEqual(tok.decode([0x41, 9999, -5, 0x42]), "AB")
        XCTAssertNil(tok.piece(-1))
        XCTAssertNil(tok.piece(257))
    }

    func testMalformedMetadataThrows() {
        var m = byteVocabMetadata()
        m["tokenizer.model"] = .string("wordpiece")
        XCTAssertThrowsError(try Tokenizer(metadata: m)) {
            guard case let .unsupported(s)? = $0 as? TokenizerError else { return XCTFail("\($0)") }
            XCTAssertTrue(s.contains("wordpiece"))
        }
        m = byteVocabMetadata()
        m["tokenizer.tokens"] = nil
        XCTAssertThrowsError(try Tokenizer(metadata: m)) { XCTAssertEqual($0 as? TokenizerError, .missingKey("tokenizer.tokens")) }
        m = byteVocabMetadata()
        m["tokenizer.model"] = nil
        XCTAssertThrowsError(try Tokenizer(metadata: m)) { XCTAssertEqual($0 as? TokenizerError, .missingKey("tokenizer.model")) }
        m = byteVocabMetadata(merges: ["a zz"])
        XCTAssertThrowsError(try Tokenizer(metadata: m)) {
            guard case let .malformed(key, reason)? = $0 as? TokenizerError else { return XCTFail("\($0)") }
            XCTAssertEqual(key, "tokenizer.merges")
            XCTAssertTrue(reason.contains("a zz"))
        }
        m = byteVocabMetadata(merges: ["a b"])  // "ab" is not a token
        XCTAssertThrowsError(try Tokenizer(metadata: m))
        m = byteVocabMetadata(merges: ["ab"])
        XCTAssertThrowsError(try Tokenizer(metadata: m))
        m = byteVocabMetadata()
        m["tokenizer.token_type"] = .array(.i32([1, 2]))
        XCTAssertThrowsError(try Tokenizer(metadata: m)) {
            guard case .malformed("tokenizer.token_type", _)? = $0 as? TokenizerError else { return XCTFail("\($0)") }
        }
        m = byteVocabMetadata()
        m["tokenizer.bos_token_id"] = .u32(100_000)
        XCTAssertThrowsError(try Tokenizer(metadata: m))
        m = byteVocabMetadata()
        m["tokenizer.pre"] = .string("no-such-pre")
        XCTAssertThrowsError(try Tokenizer(metadata: m)) {
            guard case let .unsupported(s)? = $0 as? TokenizerError else { return XCTFail("\($0)") }
            XCTAssertTrue(s.contains("no-such-pre"))
        }
        m = byteVocabMetadata()
        m["tokenizer.huggingface.json"] = .string("{not json")
        m["tokenizer.pre"] = nil
        XCTAssertThrowsError(try Tokenizer(metadata: m))
        m = byteVocabMetadata()
        m["tokenizer.model"] = .string("llama")
        m["tokenizer.merges"] = nil  // no scores, no merges
        XCTAssertThrowsError(try Tokenizer(metadata: m)) { XCTAssertEqual($0 as? TokenizerError, .missingKey("tokenizer.scores")) }
    }

    /// A SentencePiece-style tokenizer whose vocabulary (and tokenizer.json) holds both "▁が"
    /// (U+2581 U+304C) and the canonically equivalent "▁か\u{3099}" (U+2581 U+304B U+3099), as
    /// the converter stores it (see TSLMConvertTests' `canonical_keys` fixture). The JSON is read
    /// by the shared parser (TSLMFormat's `JSONValue`): both keys load, each text encodes to its
    /// own token and decodes to its own bytes.
    func testCanonicallyEquivalentTokensFromHuggingFaceJSON() throws {
        let composed = "\u{2581}\u{304C}", decomposed = "\u{2581}\u{304B}\u{3099}"
        let tokens = ["<unk>", "<s>", "</s>", "\u{2581}", "\u{304B}", "\u{304C}", "\u{3099}", "\u{2581}\u{304B}", composed, decomposed]
        let merges = ["\u{2581} \u{304B}", "\u{2581} \u{304C}", "\u{2581}\u{304B} \u{3099}"]
        let vocab = tokens.enumerated().map { "\(JSONValue.quote($1)):\($0)" }.joined(separator: ",")
        let json = #"""
            {"version":"1.0","added_tokens":[{"id":0,"content":"<unk>","special":true},{"id":1,"content":"<s>","special":true},{"id":2,"content":"</s>","special":true}],
             "normalizer":{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]},
             "pre_tokenizer":null,
             "decoder":{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]},
             "model":{"type":"BPE","unk_token":"<unk>","byte_fallback":true,"ignore_merges":false,"vocab":{\#(vocab)},"merges":\#(JSONValue.array(merges.map(JSONValue.string)).serialized)}}
            """#
        var m = Metadata()
        m["tokenizer.model"] = .string("llama")
        m["tokenizer.tokens"] = .array(.string(tokens))
        m["tokenizer.token_type"] = .array(.i32([2, 3, 3, 1, 1, 1, 1, 1, 1, 1]))
        m["tokenizer.merges"] = .array(.string(merges))
        m["tokenizer.unknown_token_id"] = .u32(0)
        m["tokenizer.bos_token_id"] = .u32(1)
        m["tokenizer.huggingface.json"] = .string(json)  // no tokenizer.pre: the JSON's pipeline is used
        let tok = try Tokenizer(metadata: m)
        XCTAssertEqual(tok.id(of: composed), 8)
        XCTAssertEqual(tok.id(of: decomposed), 9)
        XCTAssertEqual(tok.encode("\u{304C}", addSpecial: false), [8])
        XCTAssertEqual(tok.encode("\u{304B}\u{3099}", addSpecial: false), [9])
        XCTAssertEqual(tok.encode("\u{304C} \u{304B}\u{3099}"), [1, 8, 9])
        XCTAssertEqual(Array(tok.decode([8, 9]).utf8), Array("\u{304C} \u{304B}\u{3099}".utf8))
    }

    /// tokenizer.json problems are `TokenizerError.malformed` naming the metadata key; a U+FEFF
    /// that starts a string survives (Foundation's JSONSerialization drops it on Linux).
    func testHuggingFaceJSONErrorsAndByteOrderMark() throws {
        let hf = try HuggingFaceJSON(#"{"added_tokens":[{"id":5,"content":"\#u{FEFF}<x>","special":true},{"id":6,"content":"y"}],"model":{"ignore_merges":true}}"#)
        XCTAssertEqual(hf.addedTokens.map { Array($0.content.utf8) }, [[0xEF, 0xBB, 0xBF, 0x3C, 0x78, 0x3E], [0x79]])
        XCTAssertEqual(hf.addedTokens.map(\.special), [true, false])
        XCTAssertTrue(hf.ignoreMerges)
        XCTAssertTrue(try HuggingFaceJSON("{}").addedTokens.isEmpty)
        for bad in ["{not json", "[]", #"{"model":[]}"#, #"{"model":{"ignore_merges":1}}"#, #"{"added_tokens":{}}"#,
                    #"{"added_tokens":[{"id":"1","content":"a"}]}"#, #"{"added_tokens":[{"id":1,"content":"a","special":"yes"}]}"#,
                    #"{"model":{},"model":{}}"#] {
            XCTAssertThrowsError(try HuggingFaceJSON(bad), bad) {
                guard case let .malformed(key, reason)? = $0 as? TokenizerError else { return XCTFail("\(bad): \($0)") }
                XCTAssertEqual(key, "tokenizer.huggingface.json")
                XCTAssertTrue(reason.hasPrefix("not a readable tokenizer.json"), reason)
            }
        }
    }

    func testSentencePieceBOSAndChatTimeValueTokens() throws {
        let tok = try Tokenizer(metadata: TokenizerConformanceTests.sentencePieceMetadata())
        XCTAssertEqual(tok.encode("hi").first, 1)
        XCTAssertEqual(tok.encode("hi", addSpecial: false).first, tok.encode("hi").dropFirst().first)
        // 10,001 value tokens found by the trie, longest match first.
        let base = Int32(tok.vocabularySize - 10001)
        var rng = SplitMix64(seed: 10_001)
        let picks = (0..<2000).map { _ in Int.random(in: 0...10000, using: &rng) }
        let text = picks.map(TokenizerConformanceTests.valueToken).joined()
        let start = Date()
        let ids = tok.encode(text, addSpecial: false)
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(ids, picks.map { base + Int32($0) })
        XCTAssertEqual(tok.decode(ids), text)
        XCTAssertLessThan(seconds, 5)
        // "<s>" in text is a control token: parsed only when asked.
        XCTAssertEqual(tok.encode("<s>", addSpecial: false), [1])
        XCTAssertNotEqual(tok.encode("<s>", addSpecial: false, parseSpecial: false), [1])
        // Unicode canonical equivalents stay distinct tokens ("é" vs "e" + U+0301).
        XCTAssertNotEqual(tok.encode("é", addSpecial: false), tok.encode("e\u{301}", addSpecial: false))
        XCTAssertEqual(tok.decode(tok.encode("e\u{301}", addSpecial: false)).unicodeScalars.count, 2)
    }

    func testEncodeOneMegabyte() throws {
        let tok = try Tokenizer(metadata: TokenizerConformanceTests.smolLM2Metadata())
        let corpus = try Fixtures.corpus()
        var text = ""
        var i = 0
        while text.utf8.count < 1 << 20 { text += corpus[i % corpus.count] + "\n"; i += 1 }
        let start = Date()
        let ids = tok.encode(text, addSpecial: false)
        let seconds = Date().timeIntervalSince(start)
        print("encoded \(text.utf8.count) bytes into \(ids.count) tokens in \(String(format: "%.3f", seconds)) s")
        XCTAssertGreaterThan(ids.count, 100_000)
        XCTAssertLessThan(seconds, 30)  // debug builds; release is far below a second
    }
}
