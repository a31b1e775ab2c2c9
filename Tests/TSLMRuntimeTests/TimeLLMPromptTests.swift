import Foundation
import XCTest
@testable import TSLMRuntime

/// Time-LLM's RevIN and statistics prompt against the PyTorch reference
/// (`tools/make_timellm_fixtures.py`, `tools/timellm_reference.py`; the quirks are listed in
/// Fixtures/timellm/README.md).
final class TimeLLMPromptTests: XCTestCase {
    struct Prompts: Decodable {
        struct Series: Decodable {
            let name: String
            let length: Int
            let values: [Double]
            let mean: Double
            let std: Double
            let normalized: [Double]
            let min: String
            let max: String
            let median: String
            let trend_sum: Double
            let upward: Bool
            let lags: [Int]
            let lags_exact: [Int]
            let lags_rounding_dependent: Bool
            let prompt: String
            let prompt_exact: String
        }
        let description: String
        let pred_len: Int
        let sqrt: String
        let series: [Series]
    }

    struct Normalize: Decodable {
        struct Case: Decodable {
            let length: Int
            let channels: [[Double]]
            let mean: [Double]
            let std: [Double]
            let normalized: [[Double]]
            let trend_sum: [Double]
        }
        let sqrt: String
        let cases: [Case]
    }

    struct TopK: Decodable {
        struct Case: Decodable { let values: [Double]; let top5: [Int] }
        let cases: [Case]
    }

    struct PyStr: Decodable { let cases: [[String]] }

    struct Sqrt: Decodable { let sqrt: String; let cases: [[String]] }

    /// The square root of the machine that made the fixtures ("non-ieee": MKL's generic kernel).
    static func squareRoot(_ recorded: String) -> TimeLLMPrompt.SquareRoot {
        recorded == "ieee" ? .ieee : .mklGenericAMD
    }

    static func load<T: Decodable>(_ file: String, as type: T.Type) throws -> T {
        let url = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/timellm/\(file)")
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    }

    static func floats(_ values: [Double]) -> [Float] { values.map { Float($0) } }

    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    /// "[a, b, c]" → [a, b, c] of the lag list at the end of a prompt, and the prompt without it.
    static func splitLags(_ prompt: String) -> (head: String, lags: String) {
        let marker = "top 5 lags are : "
        guard let r = prompt.range(of: marker, options: .backwards) else { return (prompt, "") }
        return (String(prompt[..<r.upperBound]), String(prompt[r.upperBound...]))
    }

    func testPromptsMatchTheReference() throws {
        let fixture = try Self.load("prompts.json", as: Prompts.self)
        XCTAssertEqual(fixture.series.count, 20)
        var byteIdentical = 0
        for s in fixture.series {
            let x = Self.floats(s.values)
            XCTAssertEqual(x.count, s.length, s.name)
            let (normalized, mean, std) = TimeLLMPrompt.normalize(x, squareRoot: Self.squareRoot(fixture.sqrt))
            XCTAssertEqual(mean, Float(s.mean), "\(s.name): mean")
            XCTAssertEqual(std, Float(s.std), "\(s.name): std")
            let expected = Self.floats(s.normalized)
            XCTAssertEqual(normalized.count, expected.count, s.name)
            for (a, b) in zip(normalized, expected) { XCTAssertEqual(a, b, accuracy: 1e-6, s.name) }
            XCTAssertEqual(Self.bits(normalized), Self.bits(expected), "\(s.name): normalized bit for bit")

            // The statistics from the reference's normalized values (the same bits, checked above).
            let st = try TimeLLMPrompt.statistics(expected)
            XCTAssertEqual(TimeLLMPrompt.pythonString(st.min), s.min, s.name)
            XCTAssertEqual(TimeLLMPrompt.pythonString(st.max), s.max, s.name)
            XCTAssertEqual(TimeLLMPrompt.pythonString(st.median), s.median, s.name)
            XCTAssertEqual(st.trend, Float(s.trend_sum), "\(s.name): trend sum")
            XCTAssertEqual(st.upward, s.upward, s.name)
            XCTAssertEqual(st.lags, s.lags_exact, "\(s.name): lags")

            let text = TimeLLMPrompt.text(description: fixture.description, predictionLength: fixture.pred_len,
                                          sequenceLength: s.length, statistics: st)
            XCTAssertEqual(text, s.prompt_exact, s.name)
            if text == s.prompt { byteIdentical += 1 }
            if !s.lags_rounding_dependent {
                XCTAssertEqual(text, s.prompt, "\(s.name): byte for byte with PyTorch")
                XCTAssertEqual(st.lags, s.lags, s.name)
            } else {
                // PyTorch's FFT broke the tie of a mirrored pair by its last bit: everything but the
                // order within the pairs (lag k vs n − k) must still agree.
                let n = 2 * (s.length / 2)
                XCTAssertEqual(st.lags.map { Swift.min($0, n - $0) }, s.lags.map { Swift.min($0, n - $0) }, s.name)
                XCTAssertEqual(Self.splitLags(text).head, Self.splitLags(s.prompt).head, s.name)
            }
        }
        let stable = fixture.series.filter { !$0.lags_rounding_dependent }.count
        XCTAssertEqual(byteIdentical, stable)
    }

    func testPromptFromRawSeries() throws {
        // normalize → statistics → text, end to end, for the series whose lag order does not
        // depend on PyTorch's FFT rounding.
        let fixture = try Self.load("prompts.json", as: Prompts.self)
        for s in fixture.series where !s.lags_rounding_dependent {
            let x = Self.floats(s.values)
            let st = try TimeLLMPrompt.statistics(TimeLLMPrompt.normalize(x, squareRoot: Self.squareRoot(fixture.sqrt)).values)
            XCTAssertEqual(TimeLLMPrompt.text(description: fixture.description, predictionLength: fixture.pred_len,
                                              sequenceLength: s.length, statistics: st), s.prompt, s.name)
        }
    }

    func testNormalizeLongAndMultichannel() throws {
        let fixture = try Self.load("normalize.json", as: Normalize.self)
        for (i, c) in fixture.cases.enumerated() {
            let channels = c.channels.map(Self.floats)
            let label = "case \(i): T \(c.length), N \(channels.count)"
            let results: [(values: [Float], mean: Float, std: Float)]
            let root = Self.squareRoot(fixture.sqrt)
            if channels.count == 1 {
                results = [TimeLLMPrompt.normalize(channels[0], squareRoot: root)]
            } else {
                results = try TimeLLMPrompt.normalize(channels: channels, squareRoot: root)
            }
            XCTAssertEqual(results.count, channels.count, label)
            for (ch, r) in results.enumerated() {
                XCTAssertEqual(r.mean, Float(c.mean[ch]), "\(label), channel \(ch): mean")
                XCTAssertEqual(r.std, Float(c.std[ch]), "\(label), channel \(ch): std")
                XCTAssertEqual(Self.bits(r.values), Self.bits(Self.floats(c.normalized[ch])), "\(label), channel \(ch)")
                XCTAssertEqual(TimeLLMPrompt.trendSum(Self.floats(c.normalized[ch])), Float(c.trend_sum[ch]),
                               "\(label), channel \(ch): trend sum")
            }
        }
    }

    func testNormalizeEdgeCases() throws {
        let empty = TimeLLMPrompt.normalize([])
        XCTAssertTrue(empty.values.isEmpty)
        XCTAssertTrue(empty.mean.isNaN && empty.std.isNaN)
        let constant = TimeLLMPrompt.normalize([Float](repeating: 5, count: 40), squareRoot: .ieee)
        XCTAssertEqual(constant.values, [Float](repeating: 0, count: 40))
        XCTAssertEqual(TimeLLMPrompt.pythonString(constant.std), "0.003162277629598975")
        XCTAssertThrowsError(try TimeLLMPrompt.normalize(channels: [[1, 2, 3], [1, 2]])) { error in
            guard case RuntimeError.invalidArgument(name: "channels", _) = error else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(try TimeLLMPrompt.normalize(channels: []).isEmpty)
    }

    func testStatisticsRejectsShortAndNonFiniteSeries() {
        for bad: [Float] in [[], [1, 2, 3, 4, 5], [0, 1, .nan, 3, 4, 5, 6], [0, 1, 2, .infinity, 4, 5]] {
            XCTAssertThrowsError(try TimeLLMPrompt.statistics(bad), "\(bad)") { error in
                guard case RuntimeError.invalidArgument(name: "normalized", _) = error else { return XCTFail("\(error)") }
            }
        }
        XCTAssertNoThrow(try TimeLLMPrompt.statistics([0, 1, 2, 3, 4, 5]))
    }

    func testSquareRootMatchesTorch() throws {
        let fixture = try Self.load("sqrt.json", as: Sqrt.self)
        let root = Self.squareRoot(fixture.sqrt)
        var differing = 0
        for c in fixture.cases {
            let x = Float(bitPattern: try XCTUnwrap(UInt32(c[0], radix: 16)))
            let y = Float(bitPattern: try XCTUnwrap(UInt32(c[1], radix: 16)))
            XCTAssertEqual(TimeLLMPrompt.torchSqrt(x, root).bitPattern, y.bitPattern, "sqrt(\(x)) bits \(c[0])")
            if x.squareRoot() != y { differing += 1 }
        }
        if root == .mklGenericAMD { XCTAssertGreaterThan(differing, 100) }
        // The emulated rsqrtps is a 12-bit estimate.
        for x: Float in [1, 1.5, 2, 3.99, 1e-30, 7e20, 0.3] {
            let r = TimeLLMPrompt.amdRsqrt(x)
            XCTAssertEqual(Double(r) * Double(x).squareRoot(), 1, accuracy: 1.0 / 2048, "\(x)")
        }
        XCTAssertEqual(TimeLLMPrompt.amdRsqrt(1).bitPattern, 0x3f7f_f800)
        XCTAssertEqual(TimeLLMPrompt.torchSqrt(0, .mklGenericAMD), 0)
        XCTAssertEqual(TimeLLMPrompt.torchSqrt(4, .mklGenericAMD), 2)
        XCTAssertTrue(TimeLLMPrompt.torchSqrt(-1, .mklGenericAMD).isNaN)
    }

    func testTopKTieOrderMatchesTorch() throws {
        let fixture = try Self.load("topk.json", as: TopK.self)
        XCTAssertFalse(fixture.cases.isEmpty)
        for (i, c) in fixture.cases.enumerated() {
            XCTAssertEqual(TimeLLMPrompt.topK(Self.floats(c.values), 5), c.top5, "case \(i), n \(c.values.count)")
        }
    }

    func testAutocorrelationIsTheCircularOneForEvenLengths() {
        let x: [Float] = [0.5, -1.25, 2, 0.75, -0.5, 1.5, -2, 0.25]
        let r = TimeLLMPrompt.autocorrelation(x)
        XCTAssertEqual(r.count, 8)
        for lag in 0..<8 {
            var direct = 0.0
            for t in 0..<8 { direct += Double(x[t]) * Double(x[(t + lag) % 8]) }
            XCTAssertEqual(Double(r[lag]), direct, accuracy: 1e-6, "lag \(lag)")
        }
        // Odd length: irfft's default length drops one lag.
        XCTAssertEqual(TimeLLMPrompt.autocorrelation(x + [1]).count, 8)
    }

    func testCosSin() {
        for n in [1, 2, 3, 5, 8, 12, 37, 96, 2048] {
            for j in 0..<n {
                let (c, s) = TimeLLMPrompt.cosSin(turn: j, of: n)
                XCTAssertEqual(c * c + s * s, 1, accuracy: 1e-15)
                // cos(2π j / n) from the double-angle identity against the quarter turn
                if 4 * j == n { XCTAssertEqual(c, 0, accuracy: 1e-16); XCTAssertEqual(s, 1) }
                if 2 * j == n { XCTAssertEqual(c, -1); XCTAssertEqual(s, 0, accuracy: 1e-16) }
            }
        }
        let (c, s) = TimeLLMPrompt.cosSin(turn: 1, of: 12)
        XCTAssertEqual(c, 0.8660254037844387, accuracy: 2e-16)
        XCTAssertEqual(s, 0.5, accuracy: 1e-16)
    }

    func testPythonString() throws {
        let cases: [(Float, String)] = [
            (0.1, "0.10000000149011612"), (3, "3.0"), (1e-5, "9.999999747378752e-06"), (-0.0, "-0.0"),
            (0, "0.0"), (1e16, "1.0000000272564224e+16"), (123456789, "123456792.0"), (-2.42508602142334, "-2.42508602142334"),
            (.nan, "nan"), (.infinity, "inf"), (-.infinity, "-inf"), (1e-4, "9.999999747378752e-05"),
            (0.0001220703125, "0.0001220703125"), (1e15, "999999986991104.0"), (0.5, "0.5"), (100, "100.0"),
            (Float.greatestFiniteMagnitude, "3.4028234663852886e+38"), (Float.leastNonzeroMagnitude, "1.401298464324817e-45"),
        ]
        for (v, s) in cases { XCTAssertEqual(TimeLLMPrompt.pythonString(v), s, "\(v)") }
        XCTAssertEqual(TimeLLMPrompt.pythonString(1e16 as Double), "1e+16")
        XCTAssertEqual(TimeLLMPrompt.pythonString(1e100 as Double), "1e+100")
        XCTAssertEqual(TimeLLMPrompt.pythonString(5e-324 as Double), "5e-324")
        XCTAssertEqual(TimeLLMPrompt.pythonString(9999999999999998.0 as Double), "9999999999999998.0")

        let fixture = try Self.load("pystr.json", as: PyStr.self)
        XCTAssertGreaterThan(fixture.cases.count, 4000)
        for c in fixture.cases {
            let v = Float(bitPattern: try XCTUnwrap(UInt32(c[0], radix: 16)))
            XCTAssertEqual(TimeLLMPrompt.pythonString(v), c[1], "bits \(c[0])")
        }
    }

    func testTextLayout() {
        let s = TimeLLMPrompt.Statistics(min: -2.42508602142334, max: 3, median: 0.1, upward: false, lags: [0, 1, 511, 24, 488])
        XCTAssertEqual(
            TimeLLMPrompt.text(description: "Desc.", predictionLength: 96, sequenceLength: 512, statistics: s),
            "<|start_prompt|>Dataset description: Desc.Task description: forecast the next 96 steps given the previous 512 steps information; Input statistics: min value -2.42508602142334, max value 3.0, median value 0.10000000149011612, the trend of input is downward, top 5 lags are : [0, 1, 511, 24, 488]<|<end_prompt>|>")
    }
}
