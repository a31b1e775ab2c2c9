import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
@testable import TSLMRuntime
@testable import TSLMTokenizers

/// Generation, stop strings, streaming and the f16 KV cache on the tiny GPT-2 fixture (vocabulary
/// 256), with a byte-level tokenizer whose token i is byte i.
final class TextSessionTests: XCTestCase {
    var loaded: LoadedModel!
    var golden: BackboneParityTests.Golden!

    /// GPT-2's byte → printable-character map.
    static func byteToUnicode() -> [String] {
        var bs = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        var table = [String](repeating: "", count: 256)
        for (b, c) in zip(bs, cs) { table[b] = String(UnicodeScalar(UInt32(c))!) }
        return table
    }

    override func setUpWithError() throws {
        let folder = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/backbones/gpt2").path
        golden = try JSONDecoder().decode(BackboneParityTests.Golden.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/golden.json")))
        var model = try Converter.importModel(path: folder)
        model.metadata["tokenizer.model"] = .string("gpt2")
        model.metadata["tokenizer.pre"] = .string("gpt2")
        model.metadata["tokenizer.tokens"] = .array(.string(Self.byteToUnicode()))
        model.metadata["tokenizer.merges"] = .array(.string([]))
        let out = NSTemporaryDirectory() + "tslm-session-\(UUID().uuidString).tslm"
        try Converter.write(model, to: out, options: ConvertOptions())
        defer { unlink(out) }
        loaded = try LoadedModel(path: out)
    }

    func testGreedyGenerationMatchesTransformersAndStreams() throws {
        let session = try TextSession(loaded, contextLength: 64)
        var streamed = ""
        let r = try session.generate(promptTokens: golden.prompt_ids, maxTokens: 32) { streamed += $0; return true }
        XCTAssertEqual(r.tokens, golden.greedy_ids)
        XCTAssertEqual(r.stopReason, .maxTokens)
        XCTAssertEqual(streamed, r.text)
        XCTAssertEqual(r.text, loaded.tokenizer.decode(golden.greedy_ids))
        XCTAssertEqual(session.tokens.count, 16 + 31)  // the last sampled token is not run
    }

    func testStopStringEndsGenerationBeforeIt() throws {
        let full = loaded.tokenizer.decode(golden.greedy_ids)
        let chars = Array(full)
        let stop = String(chars[10..<13])
        let expected = String(full[..<full.range(of: stop)!.lowerBound])
        let session = try TextSession(loaded, contextLength: 64)
        var streamed = ""
        let r = try session.generate(promptTokens: golden.prompt_ids, maxTokens: 32, stop: [stop]) { streamed += $0; return true }
        XCTAssertEqual(r.stopReason, .stopString)
        XCTAssertEqual(r.text, expected)
        XCTAssertEqual(streamed, expected, "nothing of the stop string may be streamed")
    }

    func testCallbackCanCancel() throws {
        let session = try TextSession(loaded, contextLength: 64)
        var calls = 0
        let r = try session.generate(promptTokens: golden.prompt_ids, maxTokens: 32) { _ in calls += 1; return calls < 3 }
        XCTAssertEqual(r.stopReason, .cancelled)
        XCTAssertLessThan(r.tokens.count, 32)
    }

    func testContextFillsUpCleanly() throws {
        let session = try TextSession(loaded, contextLength: 20)
        let r = try session.generate(promptTokens: golden.prompt_ids, maxTokens: 32)
        XCTAssertEqual(r.stopReason, .contextFull)
        XCTAssertEqual(Array(r.tokens), Array(golden.greedy_ids.prefix(r.tokens.count)))
        XCTAssertThrowsError(try TextSession(loaded, contextLength: 30).generate(promptTokens: Array(repeating: 1, count: 31), maxTokens: 1)) { e in
            XCTAssertEqual(e as? RuntimeError, .promptTooLong(tokens: 31, context: 30))
        }
        XCTAssertThrowsError(try TextSession(loaded, contextLength: 30).generate(promptTokens: [], maxTokens: 1)) { e in
            XCTAssertEqual(e as? RuntimeError, .emptyPrompt)
        }
        XCTAssertThrowsError(try TextSession(loaded, contextLength: 100_000)) // beyond the model's 64 positions
    }

    func testHalfKVCacheKeepsGreedyText() throws {
        let session = try TextSession(loaded, contextLength: 64, halfCache: true)
        let r = try session.generate(promptTokens: golden.prompt_ids, maxTokens: 32)
        // f16 keys/values round by ≤ 2^-11 relative: the greedy path of this model has top-2 gaps
        // well above that, so it must not change.
        XCTAssertEqual(r.tokens, golden.greedy_ids)
    }

    func testResetStartsOver() throws {
        let session = try TextSession(loaded, contextLength: 64)
        let a = try session.generate(promptTokens: golden.prompt_ids, maxTokens: 8)
        session.reset()
        let b = try session.generate(promptTokens: golden.prompt_ids, maxTokens: 8)
        XCTAssertEqual(a.tokens, b.tokens)
    }
}
