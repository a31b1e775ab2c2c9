import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
@testable import TSLMKernels
@testable import TSLMRuntime
@testable import TSLMTokenizers

/// ChatTime against the official inference code (chat-time 0.3.0) and transformers; fixtures from
/// tools/make_chattime_fixtures.py (a tiny ChatTime-shaped Llama with the 10,001 value tokens).
final class ChatTimeTests: XCTestCase {
    static func fixture(_ name: String) throws -> String {
        try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/chattime/\(name)").path
    }

    static func json<T: Decodable>(_ type: T.Type, _ name: String) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: try fixture(name))))
    }

    /// The fixture folder converted to f32 (optionally with another tokenizer_config.json).
    static func convert(legacy: Bool? = nil) throws -> String {
        var folder = try fixture("model")
        var copy: String?
        if let legacy {
            let dir = NSTemporaryDirectory() + "tslm-chattime-\(UUID().uuidString)"
            try FileManager.default.copyItem(atPath: folder, toPath: dir)
            let configPath = dir + "/tokenizer_config.json"
            var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as! [String: Any]
            config["legacy"] = legacy
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
            folder = dir
            copy = dir
        }
        defer { if let copy { try? FileManager.default.removeItem(atPath: copy) } }
        let out = NSTemporaryDirectory() + "tslm-chattime-\(UUID().uuidString).tslm"
        try Converter.write(try HuggingFaceImporter.load(folder: folder), to: out, options: ConvertOptions(target: .type(.f32)))
        return out
    }

    static let shared: Result<(LoadedModel, ChatTimeFamily), Error> = Result {
        let path = try convert()
        defer { unlink(path) }
        let loaded = try LoadedModel(path: path, mmap: false)
        return (loaded, loaded.family as! ChatTimeFamily)
    }

    func model() throws -> (LoadedModel, ChatTimeFamily) { try Self.shared.get() }

    // MARK: values

    struct Values: Decodable {
        // Floats are Python repr strings ('nan', 'inf', '-inf' included).
        struct Series: Decodable { let name: String; let values: [String]; let serialized: String; let inverse: [String] }
        struct Parse: Decodable { let text: String; let values: [String] }
        let series: [Series]
        let parse: [Parse]
        let centers_4dp: [String]
    }

    func testDiscretizeSerializeParseInverseMatchChatTime() throws {
        let v = try Self.json(Values.self, "values.json")
        var checked = 0
        for s in v.series {
            let x = try s.values.map { try XCTUnwrap(Double($0), $0) }
            let (bins, scaler) = try XCTUnwrap(ChatTimeValues.discretize(x), s.name)
            let text = ChatTimeValues.serialize(bins)
            XCTAssertEqual(text, s.serialized, s.name)
            let back = ChatTimeValues.parse(text).map(scaler.unscaled)
            XCTAssertEqual(back.count, s.inverse.count, s.name)
            for (i, (a, b)) in zip(back, s.inverse).enumerated() {
                let want = try XCTUnwrap(Double(b), b)
                if want.isNaN { XCTAssertTrue(a.isNaN, "\(s.name) inverse[\(i)]") } else { XCTAssertEqual(a, want, "\(s.name) inverse[\(i)]") }
            }
            checked += x.count
        }
        XCTAssertGreaterThanOrEqual(checked, 10_000)
        for p in v.parse {
            let got = ChatTimeValues.parse(p.text)
            XCTAssertEqual(got.count, p.values.count, p.text)
            for (i, g) in got.enumerated() where i < p.values.count {
                let want = try XCTUnwrap(Double(p.values[i]), p.values[i])
                if want.isNaN { XCTAssertTrue(g.isNaN, "\(p.text)[\(i)] = \(g)") } else { XCTAssertEqual(g, want, "\(p.text)[\(i)]") }
            }
        }
        let t = ChatTimeValues.tokens
        XCTAssertEqual(Array(t.prefix(3)) + Array(t[4998..<5003]) + Array(t.suffix(3)) + [ChatTimeValues.nanToken], v.centers_4dp)
        XCTAssertEqual(Set(t).count, 10_000)
    }

    func testPythonFloat() {
        XCTAssertEqual(ChatTimeValues.pythonFloat(" 1_000.5e-1 "), 100.05)
        XCTAssertEqual(ChatTimeValues.pythonFloat("-Infinity"), -.infinity)
        XCTAssertEqual(ChatTimeValues.pythonFloat("١٢٣"), 123)
        XCTAssertEqual(ChatTimeValues.pythonFloat(".5"), 0.5)
        XCTAssertEqual(ChatTimeValues.pythonFloat("5."), 5)
        for bad in ["", "_1", "1_", "1__0", "0x10", "1e", "e5", ".", "1.2.3", "nan(1)", "+-1", "1 2"] {
            XCTAssertNil(ChatTimeValues.pythonFloat(bad), bad)
        }
        XCTAssertTrue(ChatTimeValues.pythonFloat("-NaN")!.isNaN)
    }

    // MARK: tokenizer

    struct Prompts: Decodable {
        let prompts: [String: String]
        let legacy: [String: AnyIDs]
        let nonlegacy: [String: AnyIDs]
    }
    /// A prompt's ids, or the "extra" map of text → ids.
    enum AnyIDs: Decodable {
        case ids([Int32]), map([String: [Int32]])
        init(from d: Decoder) throws {
            let c = try d.singleValueContainer()
            if let a = try? c.decode([Int32].self) { self = .ids(a) } else { self = .map(try c.decode([String: [Int32]].self)) }
        }
    }

    func testTokenIDsMatchSlowLlamaTokenizerLegacyAndNot() throws {
        let p = try Self.json(Prompts.self, "prompts.json")
        for legacy in [false, true] {
            let path = try Self.convert(legacy: legacy)
            defer { unlink(path) }
            let file = try TSLMFile(path: path)
            XCTAssertEqual(file.metadata.string(MetadataKeys.family), "chattime")
            XCTAssertEqual(file.metadata.string("tokenizer.prepend_scheme"), legacy ? "always" : "first")
            let tok = try Tokenizer(metadata: file.metadata)
            let expected = legacy ? p.legacy : p.nonlegacy
            var n = 0
            for (name, ids) in expected {
                switch ids {
                case let .ids(want):
                    XCTAssertEqual(tok.encode(try XCTUnwrap(p.prompts[name]), addSpecial: true), want, "\(name) legacy=\(legacy)")
                    n += 1
                case let .map(m):
                    for (text, want) in m {
                        XCTAssertEqual(tok.encode(text, addSpecial: true), want, "'\(text)' legacy=\(legacy)")
                        n += 1
                    }
                }
            }
            XCTAssertGreaterThanOrEqual(n, 9)
        }
    }

    /// The value tokens' ids come from added_tokens.json (written in shuffled order), and a
    /// prompt's series is one added token per value.
    func testValueTokenIDsFromAddedTokensJSON() throws {
        let (_, ct) = try model()
        let data = try Data(contentsOf: URL(fileURLWithPath: try Self.fixture("model/added_tokens.json")))
        let added = try JSONDecoder().decode([String: Int32].self, from: data)
        XCTAssertEqual(added.count, 10_001)
        for (k, t) in ChatTimeValues.tokens.enumerated() { XCTAssertEqual(ct.valueIDs[k], added[t], t) }
        XCTAssertEqual(ct.nanID, added[ChatTimeValues.nanToken])
    }

    // MARK: model

    struct Logits: Decodable { let ids: [Int32]; let logits_last: [Float] }

    func testLogitsMatchTransformers() throws {
        let (_, ct) = try model()
        let g = try Self.json(Logits.self, "logits.json")
        let p = try Self.json(Prompts.self, "prompts.json")
        let ids = ct.tokenizer.encode(try XCTUnwrap(p.prompts["forecast"]), addSpecial: true)
        XCTAssertEqual(ids, g.ids)
        let cache = try ct.backbone.makeCache(capacity: ids.count)
        let logits = try PromptRows(tokens: ids).run(backbone: ct.backbone, cache: cache, start: 0, output: .lastLogits,
                                                     batchSize: 64, state: nil, pool: nil)
        let scale = g.logits_last.map(abs).max()!
        let err = zip(logits, g.logits_last).map { abs($0 - $1) }.max()! / scale
        XCTAssertLessThanOrEqual(err, 1e-4, "relative error of the last logits")
    }

    struct Forecasts: Decodable {
        struct Case: Decodable { let name: String; let history: [Double?]; let horizon: Int; let context: String?; let forecast: [Double?] }
        let cases: [Case]
        let greedy_ids_forecast_prompt: [Int32]
    }

    func testGreedyForecastsMatchChatTimePredict() throws {
        let (_, ct) = try model()
        let g = try Self.json(Forecasts.self, "forecast.json")
        let p = try Self.json(Prompts.self, "prompts.json")
        let ids = ct.tokenizer.encode(try XCTUnwrap(p.prompts["forecast"]), addSpecial: true)
        let greedy = ct.sampling(samples: 0, greedy: true)
        let path = try ct.generate(prompt: ids, newTokens: g.greedy_ids_forecast_prompt.count, maskEOS: true, sampling: greedy, seed: 0, pool: nil)
        XCTAssertEqual(path, [g.greedy_ids_forecast_prompt])
        // Through LoadedModel.forecast: the float64 history (a CSV's text) is what ChatTime reads.
        let (loaded, _) = try model()
        let c1 = g.cases[1]
        var request = ForecastRequest(history: [c1.history.map { Float($0 ?? .nan) }], horizon: c1.horizon, greedy: true)
        request.preciseHistory = [c1.history.map { $0 ?? .nan }]
        XCTAssertEqual(try loaded.forecast(request).point[0], c1.forecast.map { Float($0 ?? .nan) }, c1.name)
        request.preciseHistory = [[1, 2]]
        XCTAssertThrowsError(try loaded.forecast(request), "a precise history of another shape")
        for pool in [nil, ThreadPool(threads: 2)] {
            for c in g.cases {
                let f = try ct.forecast(history: c.history.map { $0 ?? .nan }, horizon: c.horizon, context: c.context,
                                        sampling: greedy, seed: 0, pool: pool)
                XCTAssertEqual(f.point.count, c.horizon, c.name)
                for (i, (a, b)) in zip(f.point, c.forecast).enumerated() {
                    if let b { XCTAssertEqual(a, b, "\(c.name) step \(i)") } else { XCTAssertTrue(a.isNaN, "\(c.name) step \(i)") }
                }
            }
        }
    }

    /// A GGUF build (llama.cpp's converter layout, Q8_0) converts to a ChatTime model: the
    /// value tokens are its USER_DEFINED tokens, tokenization is llama.cpp's (a "▁" prefix on
    /// every stretch between added tokens: transformers' legacy=true ids), and its logits are
    /// the HF model's up to Q8_0 rounding.
    func testGGUFBuildConvertsToChatTime() throws {
        let out = NSTemporaryDirectory() + "tslm-chattime-gguf-\(UUID().uuidString).tslm"
        defer { unlink(out) }
        try Converter.write(try GGUFImporter.load(path: try Self.fixture("model.q8_0.gguf")), to: out, options: ConvertOptions())
        let loaded = try LoadedModel(path: out)
        let ct = try XCTUnwrap(loaded.family as? ChatTimeFamily)
        let (_, reference) = try model()
        XCTAssertEqual(ct.valueIDs, reference.valueIDs)
        XCTAssertEqual(ct.nanID, reference.nanID)
        let p = try Self.json(Prompts.self, "prompts.json")
        guard case let .ids(legacyIDs)? = p.legacy["forecast"] else { return XCTFail("fixture") }
        XCTAssertEqual(ct.tokenizer.encode(try XCTUnwrap(p.prompts["forecast"]), addSpecial: true), legacyIDs)
        func logits(_ family: ChatTimeFamily) throws -> [Float] {
            let cache = try family.backbone.makeCache(capacity: legacyIDs.count)
            return try PromptRows(tokens: legacyIDs).run(backbone: family.backbone, cache: cache, start: 0, output: .lastLogits,
                                                         batchSize: 64, state: nil, pool: nil)
        }
        let a = try logits(ct), b = try logits(reference)
        let err = zip(a, b).map { abs($0 - $1) }.max()! / b.map(abs).max()!
        XCTAssertLessThanOrEqual(err, 0.05, "Q8_0 logits vs f32")
        XCTAssertGreaterThan(err, 0, "the GGUF's weights are quantized")
        let f = try loaded.forecast(ForecastRequest(history: [[3, 4, 5, 4, 6, 7]], horizon: 3, greedy: true))
        XCTAssertEqual(f.point[0].count, 3)
    }

    func testSampledForecastIsSeededAndReproducible() throws {
        let (loaded, ct) = try model()
        let history: [Float] = [10, 12.5, 11, 14, 13.5, 15, 17.5, 16, 18, 21, 19.5, 22]
        let request = ForecastRequest(history: [history], horizon: 5, quantileLevels: [0.1, 0.9], samples: 4, seed: 42)
        let a = try loaded.forecast(request)
        let b = try loaded.forecast(request)
        XCTAssertEqual(a.point.map { $0.map(\.bitPattern) }, b.point.map { $0.map(\.bitPattern) })
        XCTAssertEqual(a.quantiles.count, 1)
        XCTAssertEqual(a.quantiles[0].count, 2)
        for t in 0..<5 where !a.point[0][t].isNaN {
            XCTAssertLessThanOrEqual(a.quantiles[0][0][t], a.point[0][t])
            XCTAssertLessThanOrEqual(a.point[0][t], a.quantiles[0][1][t])
        }
        var other = request
        other.seed = 43
        XCTAssertNotEqual(try loaded.forecast(other).point, a.point, "another seed draws other paths")
        // The default is the model's 8 samples; the sampler keeps the top 100.
        XCTAssertEqual(ct.sampling(samples: 0, greedy: false), .init(paths: 8, greedy: false, topK: 100, temperature: 1))
    }

    struct Votes: Decodable {
        struct Analyze: Decodable { let samples: [String]; let answer: String? }
        struct Predict: Decodable { let samples: [String]; let horizon: Int; let history: [Double]; let forecast: [Double?] }
        let analyze: [Analyze]
        let predict: [Predict]
    }

    /// The post-processing of sampled texts, against chat-time's own analyze/predict fed those
    /// texts. Where upstream crashes (an answer without a choice), ours votes among the answers
    /// that have one, or throws when none has.
    func testAnswerVotesAndForecastMediansMatchChatTime() throws {
        let v = try Self.json(Votes.self, "votes.json")
        for c in v.analyze {
            let choices = c.samples.map { ChatTimePrompt.choice(in: $0) }
            if let want = c.answer {
                XCTAssertEqual(ChatTimePrompt.vote(choices.compactMap { $0 }), want, "\(c.samples)")
            } else {
                XCTAssertTrue(choices.contains(nil), "upstream crashed: some answer has no choice \(c.samples)")
            }
        }
        XCTAssertNil(ChatTimePrompt.vote([]))
        for c in v.predict {
            let (bins, scaler) = try XCTUnwrap(ChatTimeValues.discretize(c.history))
            let prompt = ChatTimePrompt.forecast(series: ChatTimeValues.serialize(bins))
            let paths = c.samples.map { text -> [Double] in
                var x = ChatTimeValues.parse(ChatTimePrompt.response(prompt: prompt, continuation: text)).map(scaler.unscaled)
                if x.count < c.horizon { x += [Double](repeating: .nan, count: c.horizon - x.count) }
                return Array(x.prefix(c.horizon))
            }
            for t in 0..<c.horizon {
                let m = ChatTimeFamily.nanQuantile(paths.map { $0[t] }, 0.5)
                if let want = c.forecast[t] { XCTAssertEqual(m, want, accuracy: abs(want) * 1e-15, "step \(t)") } else { XCTAssertTrue(m.isNaN) }
            }
        }
    }

    func testAnalysisWithoutAChoiceIsATypedError() throws {
        let (_, ct) = try model()
        let p = try Self.json(Prompts.self, "prompts.json")
        XCTAssertTrue(try XCTUnwrap(p.prompts["analysis"]).contains("(a) upward"))
        // The tiny random model does not answer with a choice: the official code crashes here.
        do {
            let a = try ct.analyze(series: [1, 2, 3, 4], question: "Which trend? (a) upward (b) downward (c) flat",
                                   sampling: ct.sampling(samples: 3, greedy: false), seed: 1, pool: nil)
            XCTAssertTrue(["(a)", "(b)", "(c)"].contains(a.answer))
            XCTAssertEqual(a.choices.count, 3)
        } catch let e as RuntimeError {
            guard case .noChoice(3, _) = e else { return XCTFail("\(e)") }
        }
    }

    func testBadInputIsATypedError() throws {
        let (loaded, ct) = try model()
        let greedy = ct.sampling(samples: 0, greedy: true)
        func expectInvalid(_ what: String, _ body: () throws -> Any) {
            XCTAssertThrowsError(try body(), what) { e in
                guard case .invalidArgument = e as? RuntimeError else { return XCTFail("\(what): \(e)") }
            }
        }
        expectInvalid("empty history") { try ct.forecast(history: [], horizon: 3, sampling: greedy, seed: 0, pool: nil) }
        expectInvalid("all NaN") { try ct.forecast(history: [.nan, .nan], horizon: 3, sampling: greedy, seed: 0, pool: nil) }
        expectInvalid("infinite") { try ct.forecast(history: [1, .infinity], horizon: 3, sampling: greedy, seed: 0, pool: nil) }
        expectInvalid("horizon 0") { try ct.forecast(history: [1, 2], horizon: 0, sampling: greedy, seed: 0, pool: nil) }
        expectInvalid("huge horizon") { try ct.forecast(history: [1, 2], horizon: 5000, sampling: greedy, seed: 0, pool: nil) }
        expectInvalid("samples") { try ct.forecast(history: [1, 2], horizon: 2, sampling: .init(paths: 0, greedy: false, topK: 1, temperature: 1), seed: 0, pool: nil) }
        expectInvalid("all-NaN request") { try loaded.forecast(ForecastRequest(history: [[.nan, .nan]], horizon: 2)) }
        expectInvalid("analysis of nothing") { try ct.analyze(series: [.nan], question: "?", sampling: greedy, seed: 0, pool: nil) }
        // NaN inside a history is a missing value, as upstream.
        XCTAssertEqual(try loaded.forecast(ForecastRequest(history: [[1, .nan, 3, 2]], horizon: 2, greedy: true)).point[0].count, 2)
    }
}
