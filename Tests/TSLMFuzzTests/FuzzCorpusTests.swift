import Foundation
import TSLMFuzzTargets
import XCTest

/// Replays the committed fuzz inputs without the fuzzer: every seed of `fuzz/corpus/<target>/`
/// and every input that once crashed a parser, `fuzz/regressions/<target>/` (each became a fix;
/// a trap here fails the whole test run).
final class FuzzCorpusTests: XCTestCase {
    static let fuzzRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz").path

    func files(_ kind: String, _ target: FuzzTarget) -> [String] {
        let dir = "\(Self.fuzzRoot)/\(kind)/\(target.rawValue)"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.sorted().filter { !$0.hasPrefix(".") }.map { "\(dir)/\($0)" }
    }

    func testEveryTargetHasASeedCorpus() {
        for t in FuzzTarget.allCases {
            XCTAssertFalse(files("corpus", t).isEmpty, "fuzz/corpus/\(t.rawValue) is empty")
        }
    }

    func testSeedCorporaReplay() throws {
        for t in FuzzTarget.allCases {
            for path in files("corpus", t) {
                t.run(try XCTUnwrap(FileManager.default.contents(atPath: path).map { [UInt8]($0) }, path))
            }
        }
    }

    /// The forecast seeds get past the request checks into each forecaster family (the fixture
    /// models load and forecast), so the fuzzer starts from inputs that run the forecasters.
    func testForecastSeedsReachTheForecasters() throws {
        for name in ["lstm-three-channels", "timellm-one-channel", "chattime-greedy-context", "chattime-sampled-nan",
                     "chattime-precise-quantiles"] {
            let path = "\(Self.fuzzRoot)/corpus/forecast/\(name)"
            let bytes = try XCTUnwrap(FileManager.default.contents(atPath: path).map { [UInt8]($0) }, path)
            XCTAssertNil(FuzzTarget.forecast.rejection(bytes), name)
        }
        let bad = try XCTUnwrap(FileManager.default.contents(atPath: "\(Self.fuzzRoot)/corpus/forecast/lstm-two-channels"))
        XCTAssertNotNil(FuzzTarget.forecast.rejection([UInt8](bad)))
    }

    func testCrashRegressionsReplay() throws {
        for t in FuzzTarget.allCases {
            for path in files("regressions", t) {
                t.run(try XCTUnwrap(FileManager.default.contents(atPath: path).map { [UInt8]($0) }, path))
            }
        }
    }
}
