import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
@testable import TSLMKernels
@testable import TSLMRuntime

/// Model families as the runtime's unit: the registry (`general.family`), files written before
/// families, the `Forecaster` dispatch, the backbone's hidden-state output, the recurrent
/// memory, and series placeholders that follow the position in the prompt.
final class ModelFamilyTests: XCTestCase {
    /// A case converted to a temporary file with its metadata edited; the caller deletes it.
    static func convert(_ name: String, edit: (inout Metadata) -> Void = { _ in }) throws -> String {
        let golden = try OpenTSLMParityTests.golden(name)
        var extra = OpenTSLMSessionTests.tokenizerMetadata(vocabulary: golden.logits_last.count, golden: golden)
        edit(&extra)
        return try OpenTSLMParityTests.convert(name, metadata: extra)
    }

    /// Rewrites `path` with the metadata `edit` makes, tensors copied as they are (no converter:
    /// it would add or migrate the family).
    static func rewrite(_ path: String, to out: String, edit: (inout Metadata) -> Void) throws {
        let file = try TSLMFile(path: path)
        var m = file.metadata
        edit(&m)
        let writer = try TSLMWriter(path: out, metadata: m)
        for e in file.tensors {
            let data = try file.tensorData(e)
            try data.withUnsafeBytes { try writer.addTensor(name: e.name, dtype: e.dtype, shape: e.shape, data: $0) }
        }
        try writer.finish()
    }

    func loadError(_ path: String) -> RuntimeError? {
        do {
            _ = try LoadedModel(path: path)
            return nil
        } catch {
            return error as? RuntimeError
        }
    }

    func testUnknownFamiliesAreErrorsNamingKeyAndValue() throws {
        let base = try Self.convert("sp_llama_1series")
        defer { unlink(base) }
        let unknown = NSTemporaryDirectory() + "tslm-unknown-\(UUID().uuidString).tslm"
        defer { unlink(unknown) }
        try Self.rewrite(base, to: unknown) { $0[MetadataKeys.family] = .string("weather-oracle") }
        let e = try XCTUnwrap(loadError(unknown))
        XCTAssertEqual(e, .unknownFamily("weather-oracle", reserved: false))
        XCTAssertTrue(e.description.contains("general.family") && e.description.contains("weather-oracle"), e.description)
        XCTAssertTrue(e.description.contains("opentslm-sp"), "lists what this runtime runs: \(e.description)")

        // A model labelled ChatTime without ChatTime's value tokens is refused, naming them.
        let relabelled = NSTemporaryDirectory() + "tslm-relabelled-\(UUID().uuidString).tslm"
        defer { unlink(relabelled) }
        try Self.rewrite(base, to: relabelled) { $0[MetadataKeys.family] = .string("chattime") }
        let v = try XCTUnwrap(loadError(relabelled))
        XCTAssertEqual(v, .missingValueTokens(first: "###-0.9999###", count: 10_001))
        XCTAssertTrue(v.description.contains("value tokens"), v.description)
    }

    /// A file written before families (no `general.family`, OpenTSLM under `timeseries.*`) is
    /// refused with a message to re-convert; converting it renames the keys, and the converted
    /// file gives the same text as one converted today.
    func testLegacyFilesFailWithReconvertMessageAndConvertingThemMigrates() throws {
        let current = try Self.convert("sp_llama_1series")
        defer { unlink(current) }
        let legacy = NSTemporaryDirectory() + "tslm-legacy-\(UUID().uuidString).tslm"
        defer { unlink(legacy) }
        try Self.rewrite(current, to: legacy) { m in
            m[MetadataKeys.family] = nil
            m["timeseries.model"] = .string("opentslm_sp")
            for (k, v) in m.entries where k.hasPrefix("opentslm.") {
                m[k] = nil
                m["timeseries." + k.dropFirst("opentslm.".count)] = v
            }
        }
        let e = try XCTUnwrap(loadError(legacy))
        XCTAssertEqual(e, .missingFamily(legacyTimeSeries: true))
        XCTAssertTrue(e.description.contains("general.family") && e.description.contains("re-convert"), e.description)

        let migrated = NSTemporaryDirectory() + "tslm-migrated-\(UUID().uuidString).tslm"
        defer { unlink(migrated) }
        try Converter.write(try Converter.importModel(path: legacy), to: migrated, options: ConvertOptions())
        let file = try TSLMFile(path: migrated)
        XCTAssertEqual(file.metadata.string(MetadataKeys.family), "opentslm-sp")
        XCTAssertFalse(file.metadata.keys.contains { $0.hasPrefix("timeseries.") })
        XCTAssertEqual(file.metadata.int(MetadataKeys.OpenTSLM.patchSize), 4)

        func greedy(_ path: String) throws -> [Int32] {
            let s = try TextSession(try LoadedModel(path: path), contextLength: 128)
            try s.appendText("<t5><t6>", addSpecial: true)
            try s.appendSeries((0..<24).map { Float($0 % 7) }, length: 24, channels: 1, description: "<t9>", preset: .har)
            return try s.generate(maxTokens: 8).tokens
        }
        XCTAssertEqual(try greedy(migrated), try greedy(current))
    }

    /// `tslm_forecast` and `LoadedModel.forecast` dispatch to the family's `Forecaster`; other
    /// families answer wrongKind after the request is checked.
    func testForecastDispatchesToTheFamily() throws {
        FamilyRegistry.register("test-last-value") { file in try LastValueForecaster(file: file) }
        let base = try Self.convert("sp_llama_1series")
        defer { unlink(base) }
        let path = NSTemporaryDirectory() + "tslm-forecaster-\(UUID().uuidString).tslm"
        defer { unlink(path) }
        try Self.rewrite(base, to: path) { $0[MetadataKeys.family] = .string("test-last-value") }
        let loaded = try LoadedModel(path: path)
        XCTAssertEqual(loaded.kind, .forecaster)
        let f = try loaded.forecast(ForecastRequest(history: [[1, 2, 3], [5, 4, 7]], horizon: 2, quantileLevels: [0.5]))
        XCTAssertEqual(f.point, [[3, 3], [7, 7]])
        XCTAssertEqual(f.quantiles, [[[3, 3]], [[7, 7]]])
        XCTAssertThrowsError(try loaded.forecast(ForecastRequest(history: [[1, .nan]], horizon: 2))) {
            XCTAssertEqual($0 as? RuntimeError, .invalidArgument(name: "history", reason: "value nan at channel 0, step 1 is not finite"))
        }
        XCTAssertThrowsError(try TextSession(loaded)) {
            guard case .wrongKind? = $0 as? RuntimeError else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try loaded.tokenizer) {
            guard case .wrongKind? = $0 as? RuntimeError else { return XCTFail("\($0)") }
        }

        let classifier = try LoadedModel(path: base)
        XCTAssertThrowsError(try classifier.forecast(ForecastRequest(history: [[1, 2]], horizon: 0))) {
            XCTAssertEqual($0 as? RuntimeError, .invalidArgument(name: "horizon", reason: "0 must be in 1...1048576"))
        }
        XCTAssertThrowsError(try classifier.forecast(ForecastRequest(history: [[1, 2]], horizon: 3))) {
            XCTAssertEqual($0 as? RuntimeError, .wrongKind(operation: "forecasting", kind: "classifier"))
        }
    }

    /// `ForwardOutput.hiddenStates` are the final-normed hidden states the logits come from:
    /// for a tied model, logits = hidden · embeddingᵀ at every position.
    func testHiddenStatesAreWhatTheLogitsAreComputedFrom() throws {
        let folder = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/backbones/llama_tied").path
        let out = NSTemporaryDirectory() + "tslm-tied-\(UUID().uuidString).tslm"
        defer { unlink(out) }
        try Converter.write(try Converter.importModel(path: folder), to: out, options: ConvertOptions())
        let file = try TSLMFile(path: out)
        let model = try BackboneRegistry.load(file)
        let c = model.config
        XCTAssertNil(file.entry("output.weight"), "the fixture is tied")
        let ids: [Int32] = [1, 7, 3, 12, 5]
        func run(_ output: ForwardOutput) throws -> [Float] {
            let cache = try model.makeCache(capacity: 16)
            let x = FloatBuffer(ids.count * c.hidden)
            try model.embed(ids, into: x.pointer)
            var y = [Float](repeating: 0, count: output.count(positions: ids.count, config: c))
            try y.withUnsafeMutableBufferPointer { try model.forward(x.pointer, count: ids.count, start: 0, cache: cache, pool: nil, output: output, into: $0.baseAddress!) }
            return y
        }
        let hidden = try run(.hiddenStates), logits = try run(.allLogits), last = try run(.lastLogits)
        XCTAssertEqual(hidden.count, ids.count * c.hidden)
        // The last position's logits: computed by the GEMM for all positions and by the row
        // dots for the last one alone, so equal up to summation order.
        for (a, b) in zip(logits.suffix(c.vocabularySize), last) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b))) }
        let embedding = FloatBuffer(c.vocabularySize * c.hidden)
        try model.embed((0..<Int32(c.vocabularySize)).map { $0 }, into: embedding.pointer)
        var worst: Float = 0
        for p in 0..<ids.count {
            for v in 0..<c.vocabularySize {
                var dot: Float = 0
                for i in 0..<c.hidden { dot += hidden[p * c.hidden + i] * embedding.pointer[v * c.hidden + i] }
                worst = max(worst, abs(dot - logits[p * c.vocabularySize + v]))
            }
        }
        let scale = logits.map(abs).max() ?? 1
        XCTAssertLessThan(worst / scale, 1e-5)
    }

    func testRecurrentStateIsAMemory() throws {
        let state = try RecurrentState(layers: 2, width: 3)
        let memory: any Memory = state
        XCTAssertEqual(memory.capacity, Int.max)
        XCTAssertEqual(memory.byteCount, 2 * 2 * 3 * 4)
        state.hidden(1)[2] = 5
        state.cell(0)[0] = -1
        XCTAssertEqual(state.hidden(1)[2], 5)
        memory.reset()
        XCTAssertEqual((0..<3).map { state.hidden(1)[$0] } + (0..<3).map { state.cell(0)[$0] }, [0, 0, 0, 0, 0, 0])
        XCTAssertThrowsError(try RecurrentState(layers: 0, width: 3))
        XCTAssertThrowsError(try RecurrentState(layers: Int.max / 2, width: 4))
    }

    /// `{channel}` and `{axis}` follow the series' position in the prompt, also when each call
    /// appends one channel (two single-column files are x and y, not x and x); `{name}`,
    /// `{sensor}` and `{axis}` come from channel names.
    func testPlaceholdersFollowThePositionInThePrompt() throws {
        let path = try Self.convert("sp_llama_1series")
        defer { unlink(path) }
        let s = try TextSession(try LoadedModel(path: path), contextLength: 128)
        let one = [Float](repeating: 1, count: 8)
        try s.appendSeries(one, length: 8, channels: 1, description: "{axis} {channel}", preset: .custom)
        try s.appendSeries(one, length: 8, channels: 1, description: "{axis} {channel}", preset: .custom)
        try s.appendSeries(one + one, length: 8, channels: 2, description: "{axis} {channel} {name}", preset: .custom, names: ["a", nil])
        XCTAssertEqual(s.pendingSeries.map(\.description), ["x 0", "y 1", "z 2 a", "3 3 {name}"])
        s.reset()
        try s.appendRecording([one, one], names: ["gyroscope_x", "accelerometer_z"], pre: "<t5>", template: "{sensor} {axis} {channel}", post: "<t6>")
        XCTAssertEqual(s.pendingSeries.map(\.description), ["gyroscope x 0", "accelerometer z 1"])
        // A failed recording appends nothing.
        XCTAssertThrowsError(try s.appendRecording([one, [Float](repeating: 1, count: 65)], pre: "<t5>", template: "{axis}"))
        XCTAssertEqual(s.pendingSeries.count, 2)
    }
}

/// A forecaster family for the dispatch test: repeats each channel's last value.
final class LastValueForecaster: Forecaster, @unchecked Sendable {
    let name = "test-last-value"
    let kind = ModelKind.forecaster
    var language: LanguageModel? { nil }

    var forecastShape: ForecastShape { ForecastShape(inputs: nil, outputs: nil, window: nil, horizon: nil) }

    init(file: TSLMFile) throws {}

    func forecast(_ request: ForecastRequest, pool: ThreadPool?) throws -> Forecast {
        let point = request.history.map { Array(repeating: $0.last!, count: request.horizon) }
        return Forecast(point: point, quantiles: point.map { p in request.quantileLevels.map { _ in p } })
    }
}

/// The CPU check that keeps an AVX2 build from dying with SIGILL on an older x86-64: simulated
/// with the `TSLM_CPU_FEATURES_MASK` test hook.
final class CPUCheckTests: XCTestCase {
    func testALoadOnACPUWithoutTheBuildsFeaturesIsRefused() throws {
        let path = try ModelFamilyTests.convert("sp_llama_1series")
        defer { unlink(path) }
        XCTAssertNoThrow(try LoadedModel(path: path), "this machine runs the build's kernels")
        setenv("TSLM_CPU_FEATURES_MASK", "avx2, f16c", 1)
        defer { unsetenv("TSLM_CPU_FEATURES_MASK") }
        XCTAssertFalse(CPUFeatures.detected.contains(.avx2))
        XCTAssertFalse(CPUFeatures.detected.contains(.f16c))
        if CPUFeatures.required.isEmpty {
            // The portable build (TSLM_PORTABLE=1) needs nothing: it loads anyway.
            XCTAssertNoThrow(try LoadedModel(path: path))
        } else {
            XCTAssertThrowsError(try LoadedModel(path: path)) {
                XCTAssertEqual($0 as? RuntimeError, .unsupportedCPU(missing: "AVX2, F16C", required: "AVX2, FMA, F16C"))
                XCTAssertTrue("\($0)".contains("TSLM_PORTABLE=1"))
            }
        }
    }
}
