import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
@testable import TSLMKernels
@testable import TSLMRuntime

/// The LSTM forecaster family against the PyTorch reference (tools/lstm_reference.py, fixtures
/// from tools/make_lstm_fixtures.py): the upstream checkpoint layout converted with its
/// forecast.json, the last hidden state and the forecast at f32, and every kind of bad input.
final class LSTMForecasterTests: XCTestCase {
    struct Golden: Decodable {
        let history: [[Float]]
        let window: Int
        let forecast: [[Float]]
        let last_hidden: [Float]
        let layers: Int
        let hidden: Int
    }

    static let cases = ["one_layer_univariate", "two_layer_multivariate", "four_layer_two_outputs"]

    static func folder(_ name: String) throws -> String {
        try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/lstm/\(name)").path
    }

    /// Converts a case to a temporary `.tslm` (the caller deletes it) and loads it.
    static func load(_ name: String, type: TargetType = .source) throws -> (LoadedModel, Golden, String) {
        let f = try folder(name)
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: f + "/golden.json")))
        let model = try LSTMImporter.load(checkpoint: f + "/model.pt", config: f + "/forecast.json")
        let out = NSTemporaryDirectory() + "tslm-lstm-\(name)-\(UUID().uuidString).tslm"
        try Converter.write(model, to: out, options: ConvertOptions(target: type))
        return (try LoadedModel(path: out), golden, out)
    }

    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }

    func checkCase(_ name: String) throws {
        let (loaded, g, path) = try Self.load(name)
        defer { unlink(path) }
        XCTAssertEqual(loaded.kind, .forecaster)
        XCTAssertEqual(loaded.file.metadata.string(MetadataKeys.family), "lstm")
        XCTAssertEqual(loaded.file.metadata.string(MetadataKeys.architecture), "none")
        let lstm = try XCTUnwrap(loaded.family as? LSTMFamily)
        XCTAssertEqual(lstm.config.layers, g.layers)
        XCTAssertEqual(lstm.config.hiddenSize, g.hidden)
        XCTAssertEqual(lstm.config.inputWindow, g.window)
        let horizon = g.forecast[0].count
        for pool in [nil, ThreadPool(threads: 2)] {
            // The last hidden state, from the scaled last window.
            let c = lstm.config
            let length = g.history[0].count
            let window = (length - c.inputWindow..<length).map { t in
                (0..<c.inputChannels.count).map { ch in (g.history[ch][t] - c.inputMean[ch]) / c.inputStd[ch] }
            }
            let hidden = try lstm.run(scaled: window, state: RecurrentState(layers: c.layers, width: c.hiddenSize), pool: pool)
            XCTAssertLessThanOrEqual(Self.relativeError(hidden, g.last_hidden), 1e-5, "\(name) last hidden state")
            let f = try loaded.forecast(ForecastRequest(history: g.history, horizon: horizon), pool: pool)
            XCTAssertEqual(f.point.count, g.forecast.count)
            for (o, row) in f.point.enumerated() {
                XCTAssertLessThanOrEqual(Self.relativeError(row, g.forecast[o]), 1e-5, "\(name) forecast channel \(o): \(row) vs \(g.forecast[o])")
            }
            // A shorter horizon is the first steps.
            let short = try loaded.forecast(ForecastRequest(history: g.history, horizon: 2), pool: pool)
            XCTAssertEqual(short.point, f.point.map { Array($0.prefix(2)) })
        }
    }

    func testOneLayerUnivariate() throws { try checkCase("one_layer_univariate") }
    func testTwoLayersMultivariateWithoutBias() throws { try checkCase("two_layer_multivariate") }
    func testFourLayersTwoOutputs() throws { try checkCase("four_layer_two_outputs") }

    /// The LSTM's tensors stay f32 under block quantization (a few thousand weights whose errors
    /// would compound over the steps): a q8_0 file forecasts exactly as the f32 one.
    func testQuantizedFileKeepsTheLSTMAtF32() throws {
        let (loaded, g, path) = try Self.load("two_layer_multivariate", type: .type(.q8_0))
        defer { unlink(path) }
        XCTAssertTrue(loaded.file.tensors.allSatisfy { $0.dtype == .f32 })
        let f = try loaded.forecast(ForecastRequest(history: g.history, horizon: g.forecast[0].count))
        for (o, row) in f.point.enumerated() { XCTAssertLessThanOrEqual(Self.relativeError(row, g.forecast[o]), 1e-5) }
    }

    func testBadRequestsAreTypedErrorsNamingTheArgument() throws {
        let (loaded, g, path) = try Self.load("two_layer_multivariate")
        defer { unlink(path) }
        let c = try XCTUnwrap(loaded.family as? LSTMFamily).config
        func expect(_ request: ForecastRequest, _ argument: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try loaded.forecast(request), file: file, line: line) { e in
                guard case let .invalidArgument(name, _)? = e as? RuntimeError else { return XCTFail("\(e)", file: file, line: line) }
                XCTAssertEqual(name, argument, file: file, line: line)
            }
        }
        let short = g.history.map { Array($0.suffix(c.inputWindow - 1)) }
        expect(ForecastRequest(history: short, horizon: 1), "history")                      // shorter than the window
        expect(ForecastRequest(history: Array(g.history.prefix(2)), horizon: 1), "history") // wrong channel count
        var nan = g.history
        nan[1][3] = .nan
        expect(ForecastRequest(history: nan, horizon: 1), "history")
        expect(ForecastRequest(history: g.history, horizon: 0), "horizon")
        expect(ForecastRequest(history: g.history, horizon: c.horizon + 1), "horizon")
        expect(ForecastRequest(history: g.history, horizon: 1, quantileLevels: [0.5]), "quantile levels")
        // A session is not what an LSTM does.
        XCTAssertThrowsError(try TextSession(loaded)) { guard case .wrongKind? = $0 as? RuntimeError else { return XCTFail("\($0)") } }
    }

    /// Checkpoints that do not match their forecast.json are refused, naming the file.
    func testMismatchedConfigIsAClearError() throws {
        let f = try Self.folder("one_layer_univariate")
        let other = try Self.folder("two_layer_multivariate")
        XCTAssertThrowsError(try LSTMImporter.load(checkpoint: f + "/model.pt", config: other + "/forecast.json")) {
            XCTAssertTrue("\($0)".contains("model.pt"), "\($0)")
        }
        XCTAssertThrowsError(try LSTMImporter.load(checkpoint: f + "/model.pt", config: f + "/missing.json"))
        // Without its config, converting names the option.
        XCTAssertThrowsError(try Converter.importModel(path: f + "/model.pt", base: nil)) {
            XCTAssertTrue("\($0)".contains("--forecast-config"), "\($0)")
        }
    }
}
