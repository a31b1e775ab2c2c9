import XCTest
@testable import TSLMRuntime

/// `ForecastMetrics` against values computed by hand.
final class ForecastMetricsTests: XCTestCase {
    func argumentName(_ error: RuntimeError) -> String? {
        if case let .invalidArgument(name, _) = error { name } else { nil }
    }

    func assertInvalid(_ name: String, _ body: @autoclosure () throws -> Any, file: StaticString = #filePath, line: UInt = #line) {
        assertThrows(RuntimeError.self, try body(), file: file, line: line) { self.argumentName($0) == name }
    }

    // y = [1, 2, 3, 4], ŷ = [2, 2, 1, 5]: errors −1, 0, 2, −1.
    let y: [Float] = [1, 2, 3, 4]
    let f: [Float] = [2, 2, 1, 5]

    func testMAE() throws {
        XCTAssertEqual(try ForecastMetrics.mae(actual: y, forecast: f), 1.0)  // (1 + 0 + 2 + 1) / 4
        XCTAssertEqual(try ForecastMetrics.mae(actual: y, forecast: y), 0)
        XCTAssertEqual(try ForecastMetrics.mae(actual: [-1.5], forecast: [2.5]), 4)
    }

    func testRMSE() throws {
        XCTAssertEqual(try ForecastMetrics.rmse(actual: y, forecast: f), 1.5.squareRoot(), accuracy: 1e-15)  // √(6/4)
        XCTAssertEqual(try ForecastMetrics.rmse(actual: [0, 0], forecast: [3, 4]), 12.5.squareRoot(), accuracy: 1e-15)
        // Computed in Double: Float's squares of 1e20 would overflow.
        XCTAssertEqual(try ForecastMetrics.rmse(actual: [1e20], forecast: [-1e20]), 2e20, accuracy: 2e20 * 1e-7)
    }

    func testSMAPE() throws {
        // 200·1/3 + 0 + 200·2/4 + 200·1/9 = 1700/9, mean 425/9.
        XCTAssertEqual(try ForecastMetrics.smape(actual: y, forecast: f), 425.0 / 9, accuracy: 1e-12)
        // A 0/0 term counts as 0: (0 + 200·2/4) / 2.
        XCTAssertEqual(try ForecastMetrics.smape(actual: [0, 1], forecast: [0, 3]), 50)
        XCTAssertEqual(try ForecastMetrics.smape(actual: [0, 0], forecast: [0, 0]), 0)
        // The upper bound: opposite signs or one side 0.
        XCTAssertEqual(try ForecastMetrics.smape(actual: [0, 1], forecast: [5, -1]), 200)
    }

    func testMASE() throws {
        let training: [Float] = [1, 3, 2, 5, 4]
        // Season 1: |3−1|, |2−3|, |5−2|, |4−5| → 7/4; MAE 1 → 4/7.
        XCTAssertEqual(try ForecastMetrics.naiveScale(training: training, season: 1), 1.75)
        XCTAssertEqual(try ForecastMetrics.mase(actual: y, forecast: f, training: training), 4.0 / 7, accuracy: 1e-15)
        // Season 2: |2−1|, |5−3|, |4−2| → 5/3; MAE 1 → 0.6.
        XCTAssertEqual(try ForecastMetrics.naiveScale(training: training, season: 2), 5.0 / 3, accuracy: 1e-15)
        XCTAssertEqual(try ForecastMetrics.mase(actual: y, forecast: f, training: training, season: 2), 0.6, accuracy: 1e-15)
        // Season 4, the shortest training series it accepts (m + 1 values): |4 − 1| → 3.
        XCTAssertEqual(try ForecastMetrics.naiveScale(training: training, season: 4), 3)
        // The seasonal-naive forecast itself scores exactly its out-of-sample MAE over the scale.
        let naive = try ForecastMetrics.seasonalNaive(history: training, horizon: 4, season: 1)
        XCTAssertEqual(try ForecastMetrics.mase(actual: y, forecast: naive, training: training), (3.0 + 2 + 1 + 0) / 4 / 1.75)
    }

    func testMASEScaleErrors() {
        // A scale of 0: constant, or exactly periodic with the season.
        assertInvalid("training", try ForecastMetrics.mase(actual: y, forecast: f, training: [2, 2, 2]))
        assertInvalid("training", try ForecastMetrics.naiveScale(training: [1, 2, 1, 2, 1], season: 2))
        XCTAssertNoThrow(try ForecastMetrics.naiveScale(training: [1, 2, 1, 2, 1], season: 1))
        // Shorter than m + 1.
        assertInvalid("training", try ForecastMetrics.naiveScale(training: [1, 2], season: 2))
        assertInvalid("training", try ForecastMetrics.naiveScale(training: [5], season: 1))
        assertInvalid("training", try ForecastMetrics.naiveScale(training: [], season: 1))
        assertInvalid("training", try ForecastMetrics.naiveScale(training: [1, .nan, 3], season: 1))
        assertInvalid("season", try ForecastMetrics.naiveScale(training: [1, 2, 3], season: 0))
        assertInvalid("season", try ForecastMetrics.mase(actual: y, forecast: f, training: [1, 2, 3], season: -1))
        // The message says why.
        do {
            _ = try ForecastMetrics.naiveScale(training: [7, 7, 7, 7], season: 1)
            XCTFail("expected an error")
        } catch {
            XCTAssertTrue("\(error)".contains("MASE is undefined"), "\(error)")
        }
    }

    func testPairChecks() {
        for metric in [ForecastMetrics.mae, ForecastMetrics.rmse, ForecastMetrics.smape] {
            assertInvalid("actual", try metric([], []))
            assertInvalid("forecast", try metric([1, 2], [1]))
            assertInvalid("forecast", try metric([1], [1, 2]))
            assertInvalid("actual", try metric([1, .nan], [1, 2]))
            assertInvalid("actual", try metric([.infinity], [1]))
            assertInvalid("forecast", try metric([1, 2], [1, -.infinity]))
        }
        assertInvalid("forecast", try ForecastMetrics.mase(actual: [1], forecast: [.nan], training: [1, 2]))
    }

    func testSeasonalNaive() throws {
        let h: [Float] = [1, 2, 3, 4, 5, 6]
        XCTAssertEqual(try ForecastMetrics.seasonalNaive(history: h, horizon: 5, season: 3), [4, 5, 6, 4, 5])
        XCTAssertEqual(try ForecastMetrics.seasonalNaive(history: h, horizon: 3, season: 1), [6, 6, 6])
        XCTAssertEqual(try ForecastMetrics.seasonalNaive(history: h, horizon: 3), [6, 6, 6])
        XCTAssertEqual(try ForecastMetrics.seasonalNaive(history: h, horizon: 2, season: 4), [3, 4])
        XCTAssertEqual(try ForecastMetrics.seasonalNaive(history: h, horizon: 13, season: 6), h + h + [1])
        XCTAssertEqual(try ForecastMetrics.seasonalNaive(history: [7], horizon: 1, season: 1), [7])

        // Fewer values than the season.
        assertInvalid("history", try ForecastMetrics.seasonalNaive(history: h, horizon: 3, season: 7))
        assertInvalid("season", try ForecastMetrics.seasonalNaive(history: h, horizon: 3, season: 0))
        assertInvalid("horizon", try ForecastMetrics.seasonalNaive(history: h, horizon: 0))
        assertInvalid("horizon", try ForecastMetrics.seasonalNaive(history: h, horizon: ForecastMetrics.maxHorizon + 1))
        assertInvalid("history", try ForecastMetrics.seasonalNaive(history: [], horizon: 1))
        assertInvalid("history", try ForecastMetrics.seasonalNaive(history: [1, .nan], horizon: 1))
    }

    func testRollingWindows() throws {
        // The example of the documentation.
        XCTAssertEqual(try ForecastMetrics.rollingWindows(length: 20, window: 8, horizon: 4, count: 3), [8..<12, 12..<16, 16..<20])
        // Asking for more gives as many as fit: a fourth window would start at 4 < 8.
        XCTAssertEqual(try ForecastMetrics.rollingWindows(length: 20, window: 8, horizon: 4, count: 5), [8..<12, 12..<16, 16..<20])
        XCTAssertEqual(try ForecastMetrics.rollingWindows(length: 20, window: 8, horizon: 4, count: 1), [16..<20])
        XCTAssertEqual(try ForecastMetrics.rollingWindows(length: 20, window: 9, horizon: 4, count: 5), [12..<16, 16..<20])
        // The boundary: exactly window + horizon steps give one window at origin = window.
        XCTAssertEqual(try ForecastMetrics.rollingWindows(length: 12, window: 8, horizon: 4, count: 3), [8..<12])
        XCTAssertEqual(try ForecastMetrics.rollingWindows(length: 15, window: 8, horizon: 4, count: 3), [11..<15])
        XCTAssertEqual(try ForecastMetrics.rollingWindows(length: 16, window: 8, horizon: 4, count: 3), [8..<12, 12..<16])
        XCTAssertEqual(try ForecastMetrics.rollingWindows(length: 5, window: 1, horizon: 1, count: 10), [1..<2, 2..<3, 3..<4, 4..<5])
        assertInvalid("length", try ForecastMetrics.rollingWindows(length: 11, window: 8, horizon: 4, count: 3))
        assertInvalid("length", try ForecastMetrics.rollingWindows(length: 0, window: 1, horizon: 1, count: 1))
        assertInvalid("length", try ForecastMetrics.rollingWindows(length: -1, window: 1, horizon: 1, count: 1))
        assertInvalid("window", try ForecastMetrics.rollingWindows(length: 20, window: 0, horizon: 4, count: 3))
        assertInvalid("horizon", try ForecastMetrics.rollingWindows(length: 20, window: 8, horizon: 0, count: 3))
        assertInvalid("count", try ForecastMetrics.rollingWindows(length: 20, window: 8, horizon: 4, count: 0))
        // Huge arguments neither overflow nor allocate.
        assertInvalid("length", try ForecastMetrics.rollingWindows(length: 10, window: Int.max, horizon: Int.max, count: Int.max))
        XCTAssertEqual(try ForecastMetrics.rollingWindows(length: Int.max, window: 1, horizon: Int.max / 2, count: Int.max).count, 2)

        // The definition, over a grid.
        for length in 0...40 {
            for window in 1...12 {
                for horizon in 1...9 {
                    for count in 1...6 {
                        let fits = length >= window + horizon ? (length - window) / horizon : 0
                        guard fits > 0 else {
                            assertInvalid("length", try ForecastMetrics.rollingWindows(length: length, window: window, horizon: horizon, count: count))
                            continue
                        }
                        let w = try ForecastMetrics.rollingWindows(length: length, window: window, horizon: horizon, count: count)
                        XCTAssertEqual(w.count, min(count, fits))
                        XCTAssertEqual(w.last?.upperBound, length)
                        XCTAssertGreaterThanOrEqual(w[0].lowerBound, window)
                        XCTAssertTrue(w.allSatisfy { $0.count == horizon })
                        XCTAssertTrue(zip(w, w.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                        // One more window, when fewer than asked came back, would lack history.
                        if w.count < count { XCTAssertLessThan(w[0].lowerBound - horizon, window) }
                    }
                }
            }
        }
    }
}
