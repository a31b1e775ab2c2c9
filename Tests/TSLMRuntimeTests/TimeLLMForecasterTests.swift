import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
@testable import TSLMKernels
@testable import TSLMRuntime

/// Time-LLM against the PyTorch reference (tools/timellm_model.py; fixtures from
/// tools/make_timellm_model_fixtures.py): the upstream state dict converted on its base LLM
/// (Llama and GPT-2, truncated to 2 of 3 blocks), every intermediate and the forecast at f32.
final class TimeLLMForecasterTests: XCTestCase {
    struct Channel: Decodable {
        let mean: Float, std: Float
        let x_norm: [Float]
        let prompt: String
        let prompt_ids: [Int32]
        let patch_embedding_first_row: [Float]
        let patch_embedding_sum: Double
        let reprogrammed_first_row: [Float]
        let reprogrammed_last_row: [Float]
        let reprogrammed_sum: Double
        let hidden_last_row: [Float]
        let forecast: [Float]
    }
    struct Golden: Decodable {
        let window: Int
        let llm_layers: Int
        let history: [[Float]]
        let forecast: [[Float]]
        let prototypes_first_row: [Float]
        let prototypes_sum: Double
        let channels: [Channel]
    }

    static func folder(_ name: String) throws -> String {
        try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/timellm_model/\(name)").path
    }

    static func load(_ name: String, type: TargetType = .source) throws -> (LoadedModel, Golden) {
        let f = try folder(name)
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: f + "/golden.json")))
        let model = try TimeLLMImporter.load(checkpoint: f + "/checkpoint.pt", config: f + "/timellm.json", base: f + "/base")
        let out = NSTemporaryDirectory() + "tslm-timellm-\(name)-\(UUID().uuidString).tslm"
        try Converter.write(model, to: out, options: ConvertOptions(target: type))
        defer { unlink(out) }
        return (try LoadedModel(path: out), golden)
    }

    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count)")
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }

    func checkCase(_ name: String) throws {
        let (loaded, g) = try Self.load(name)
        XCTAssertEqual(loaded.kind, .forecaster)
        let t = try XCTUnwrap(loaded.family as? TimeLLMFamily)
        XCTAssertEqual(t.backbone.config.layers, g.llm_layers, "truncated backbone")
        let h = t.backbone.config.hidden
        // Prototypes, computed at conversion.
        let protoEntry = try XCTUnwrap(loaded.file.entry(TensorNames.TimeLLM.prototypes))
        let protos = try loaded.file.tensorData(protoEntry).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertLessThanOrEqual(Self.relativeError(Array(protos.prefix(h)), g.prototypes_first_row), 1e-5, "\(name) prototypes")
        XCTAssertEqual(protos.reduce(0.0) { $0 + Double($1) }, g.prototypes_sum, accuracy: abs(g.prototypes_sum) * 1e-4 + 1e-3)
        for pool in [nil, ThreadPool(threads: 2)] {
            for (c, gc) in g.channels.enumerated() {
                let x = Array(g.history[c].suffix(g.window))
                let tr = try t.trace(x, promptTokens: gc.prompt_ids, pool: pool)
                XCTAssertEqual(tr.mean, gc.mean, accuracy: abs(gc.mean) * 1e-6 + 1e-6)
                XCTAssertEqual(tr.std, gc.std, accuracy: gc.std * 1e-6)
                XCTAssertEqual(Self.lagsSorted(tr.prompt), Self.lagsSorted(gc.prompt), "\(name) channel \(c) prompt text")
                let d = t.config.modelWidth
                XCTAssertLessThanOrEqual(Self.relativeError(Array(tr.patchEmbedding.prefix(d)), gc.patch_embedding_first_row), 1e-5)
                XCTAssertEqual(tr.patchEmbedding.reduce(0.0) { $0 + Double($1) }, gc.patch_embedding_sum, accuracy: 1e-3)
                XCTAssertLessThanOrEqual(Self.relativeError(Array(tr.reprogrammed.prefix(h)), gc.reprogrammed_first_row), 1e-4, "\(name) reprogrammed")
                XCTAssertLessThanOrEqual(Self.relativeError(Array(tr.reprogrammed.suffix(h)), gc.reprogrammed_last_row), 1e-4)
                XCTAssertLessThanOrEqual(Self.relativeError(Array(tr.hidden.suffix(h)), gc.hidden_last_row), 1e-4, "\(name) hidden")
                XCTAssertLessThanOrEqual(Self.relativeError(tr.forecast, gc.forecast), 1e-4, "\(name) channel \(c) forecast \(tr.forecast) vs \(gc.forecast)")
            }
        }
    }

    func testLlamaBackbone() throws { try checkCase("llama") }
    func testGPT2Backbone() throws { try checkCase("gpt2") }

    /// The prompt with its lag list sorted: the lags' order inside mirrored pairs (k, n − k),
    /// whose autocorrelations are equal in exact arithmetic, is decided upstream by the last bit
    /// of PyTorch's FFT (MKL) — see TimeLLMPrompt — so only the rest of the text and the set of
    /// lags are held to be byte-identical.
    static func lagsSorted(_ prompt: String) -> String {
        guard let open = prompt.range(of: "top 5 lags are : ["), let close = prompt[open.upperBound...].firstIndex(of: "]") else { return prompt }
        let lags = prompt[open.upperBound..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.sorted()
        return String(prompt[..<open.upperBound]) + lags.map(String.init).joined(separator: ", ") + String(prompt[close...])
    }

    /// The whole path with the runtime's own tokenizer: the reference's prompt text tokenizes to
    /// the reference's ids (BOS for Llama, none for GPT-2), and where the runtime's prompt is
    /// byte-identical, `forecast` gives the golden forecast.
    func testForecastWithTheModelsTokenizer() throws {
        var identical = 0
        for name in ["llama", "gpt2"] {
            let (loaded, g) = try Self.load(name)
            let t = try XCTUnwrap(loaded.family as? TimeLLMFamily)
            for (c, gc) in g.channels.enumerated() {
                // The reference runs each channel as its own (1, T, 1) batch; upstream's RevIN of a
                // multichannel batch sums in another order (`TimeLLMPrompt.normalize(channels:)`).
                let f = try loaded.forecast(ForecastRequest(history: [g.history[c]], horizon: g.forecast[0].count))
                XCTAssertEqual(t.tokenizer.encode(gc.prompt, addSpecial: true, parseSpecial: false), gc.prompt_ids, "\(name) channel \(c) prompt ids")
                let tr = try t.trace(Array(g.history[c].suffix(g.window)))
                guard tr.prompt == gc.prompt else { continue }
                identical += 1
                XCTAssertEqual(tr.promptTokens, gc.prompt_ids)
                XCTAssertLessThanOrEqual(Self.relativeError(f.point[0], g.forecast[c]), 1e-4, "\(name) forecast channel \(c)")
            }
        }
        print("Time-LLM fixtures: \(identical) of 4 prompts byte-identical to PyTorch's (the others differ in mirrored lag order only)")
    }

    /// A q8_0 backbone (Time-LLM's own parts stay f16): the forecast's error against the f32
    /// reference, stated (README) and bounded.
    func testQuantizedBackboneErrorIsSmall() throws {
        for name in ["llama", "gpt2"] {
            let (loaded, g) = try Self.load(name, type: .type(.q8_0))
            XCTAssertTrue(loaded.file.tensors.contains { $0.dtype == .q8_0 }, "the backbone is q8_0")
            XCTAssertTrue(loaded.file.tensors.filter { $0.name.hasPrefix("timellm.") && $0.shape.count > 1 }.allSatisfy { $0.dtype == .f16 })
            let t = try XCTUnwrap(loaded.family as? TimeLLMFamily)
            var worst: Float = 0
            for (c, gc) in g.channels.enumerated() {
                let tr = try t.trace(Array(g.history[c].suffix(g.window)), promptTokens: gc.prompt_ids)
                worst = max(worst, Self.relativeError(tr.forecast, gc.forecast))
            }
            print("Time-LLM \(name): q8_0 backbone, f16 Time-LLM parts: forecast max relative error \(worst)")
            XCTAssertLessThan(worst, 0.05)
        }
    }

    func testBadRequests() throws {
        let (loaded, g) = try Self.load("gpt2")
        func argument(_ r: ForecastRequest) -> String? {
            do { _ = try loaded.forecast(r); return nil } catch let RuntimeError.invalidArgument(name, _) { return name } catch { return "\(error)" }
        }
        XCTAssertEqual(argument(ForecastRequest(history: g.history.map { Array($0.suffix(g.window - 1)) }, horizon: 2)), "history")
        XCTAssertEqual(argument(ForecastRequest(history: g.history, horizon: 99)), "horizon")
        XCTAssertEqual(argument(ForecastRequest(history: g.history, horizon: 2, quantileLevels: [0.5])), "quantile levels")
        XCTAssertEqual(argument(ForecastRequest(history: [[1, .infinity] + g.history[0]], horizon: 2)), "history")
    }
}
