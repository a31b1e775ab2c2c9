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
        XCTAssertEqual(r.text, try loaded.tokenizer.decode(golden.greedy_ids))
        XCTAssertEqual(session.tokens.count, 16 + 31)  // the last sampled token is not run
    }

    func testStopStringEndsGenerationBeforeIt() throws {
        let full = try loaded.tokenizer.decode(golden.greedy_ids)
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

    /// A stop string that is one whole vocabulary entry stops at that token's id and is reported
    /// as a stop string (it was reported as EOS); the text before it is kept.
    func testOneTokenStopStringIsReportedAsAStopString() throws {
        let pieces = Self.byteToUnicode()
        // The first generated token whose vocabulary string is not its text (a byte GPT-2 maps to
        // another character): only its id can match the stop string.
        let k = try XCTUnwrap(golden.greedy_ids.firstIndex { pieces[Int($0)] != String(UnicodeScalar(UInt8($0))) })
        let session = try TextSession(loaded, contextLength: 64)
        let r = try session.generate(promptTokens: golden.prompt_ids, maxTokens: 32, stop: [pieces[Int(golden.greedy_ids[k])]])
        XCTAssertEqual(r.stopReason, .stopString)
        XCTAssertEqual(r.tokens, Array(golden.greedy_ids[..<k]))
        XCTAssertEqual(r.text, try loaded.tokenizer.decode(Array(golden.greedy_ids[..<k])))
        XCTAssertEqual(session.tokens.count, golden.prompt_ids.count + k, "every kept token has run")
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
        let session = try TextSession(loaded, contextLength: 64, kv: .f16)
        XCTAssertTrue(session.cache.half)
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

    func testAppendTextThenGenerateMatchesOneShotGeneration() throws {
        let text = "Sensor 7 reads 21.5 C; the fan is off."
        let ids = try loaded.tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        let one = try TextSession(loaded, contextLength: 64).generate(promptTokens: ids, maxTokens: 16)
        let session = try TextSession(loaded, contextLength: 64)
        try session.appendText("Sensor 7 reads 21.5 C;", addSpecial: false)
        try session.appendText(" the fan is off.", addSpecial: false)
        let r = try session.generate(maxTokens: 16)
        XCTAssertEqual(r.tokens, one.tokens)
        XCTAssertEqual(r.text, one.text)
        XCTAssertEqual(r.promptTokens, ids.count)
    }

    func testGenerationContinuesAcrossCalls() throws {
        // 8 + 8 tokens in two calls are the 16 of one call: the 8th token of the first call is run
        // at the start of the second.
        let one = try TextSession(loaded, contextLength: 64)
        let whole = try one.generate(promptTokens: golden.prompt_ids, maxTokens: 16)
        XCTAssertEqual(whole.tokens, Array(golden.greedy_ids.prefix(16)))
        let two = try TextSession(loaded, contextLength: 64)
        try two.append(golden.prompt_ids)
        let a = try two.generate(maxTokens: 8)
        let b = try two.generate(maxTokens: 8)
        XCTAssertEqual(a.tokens + b.tokens, whole.tokens)
        XCTAssertEqual(b.promptTokens, golden.prompt_ids.count + 8)  // the 8th token ran at the start of the second call
    }

    func testGenerateWithNothingAppendedIsAnError() throws {
        let session = try TextSession(loaded, contextLength: 64)
        XCTAssertThrowsError(try session.generate(maxTokens: 4)) { XCTAssertEqual($0 as? RuntimeError, .emptyPrompt) }
        XCTAssertThrowsError(try session.appendText("", addSpecial: false)) { XCTAssertEqual($0 as? RuntimeError, .emptyPrompt) }
    }

    func testSeriesOnATextModelIsCheckedThenRefused() throws {
        let session = try TextSession(loaded, contextLength: 64)
        XCTAssertEqual(loaded.kind, .text)
        func reason(_ body: () throws -> Void) -> RuntimeError? {
            do { try body(); return nil } catch { return error as? RuntimeError }
        }
        let ok: [Float] = [1, 2, 3, 4, 5, 6]
        XCTAssertEqual(reason { try session.appendSeries(ok, length: 3, channels: 2, description: nil, preset: .custom) },
                       .wrongKind(operation: "appending a series", kind: "text"))
        for (values, length, channels) in [(ok, 0, 2), (ok, 3, 0), (ok, 4, 2), ([Float](), 0, 1),
                                           ([1, .nan, 3], 3, 1), ([1, 2, .infinity], 3, 1), (ok, Int.max, 2)] {
            guard case .invalidArgument? = reason({ try session.appendSeries(values, length: length, channels: channels,
                                                                              description: nil, preset: .custom) }) else {
                return XCTFail("\(values) \(length)×\(channels) was not refused as an invalid argument")
            }
        }
    }

    func testExtractAnswer() {
        XCTAssertEqual(extractAnswer("The signal is calm. Answer: resting."), "resting")
        XCTAssertEqual(extractAnswer("Answer: a. Then more. Answer: walking \n"), "walking")
        XCTAssertEqual(extractAnswer("  no marker here. "), "no marker here")
        XCTAssertEqual(extractAnswer(""), "")
    }
}
