import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// XXH64 against the reference `xxhash` Python package (fixture `xxhash64.txt`, made by
/// `tools/make_format_fixtures.py`), one-shot and streamed.
final class XXHash64Tests: XCTestCase {
    struct Case { let length: Int; let seed: UInt64; let expected: UInt64 }

    /// The fixture's deterministic input: byte i = top 8 bits of (i·0x9E3779B1 + 0x7F4A7C15) mod 2³².
    static func detBytes(_ n: Int) -> [UInt8] {
        (0..<n).map { i in UInt8(truncatingIfNeeded: (UInt32(truncatingIfNeeded: i) &* 0x9E37_79B1 &+ 0x7F4A_7C15) >> 24) }
    }

    func loadCases() throws -> [Case] {
        let text = String(decoding: try Fixtures.data("xxhash64.txt"), as: UTF8.self)
        return text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let f = line.split(separator: " ")
            return Case(length: Int(f[0])!, seed: UInt64(f[1], radix: 16)!, expected: UInt64(f[2], radix: 16)!)
        }
    }

    func testFixtureCoversAllLengthsAndSeeds() throws {
        let cases = try loadCases()
        XCTAssertEqual(Set(cases.map(\.length)), Set(Array(0...100) + [127, 128, 129, 1000, 4103, 65539]))
        XCTAssertEqual(Set(cases.map(\.seed)).count, 4)
        XCTAssertEqual(cases.count, 107 * 4)
    }

    func testOneShotMatchesReference() throws {
        for c in try loadCases() {
            let data = Self.detBytes(c.length)
            XCTAssertEqual(XXHash64.hash(data, seed: c.seed), c.expected, "length \(c.length) seed \(c.seed)")
            let viaPointer = data.withUnsafeBytes { XXHash64.hash($0, seed: c.seed) }
            XCTAssertEqual(viaPointer, c.expected)
        }
    }

    func testWellKnownValues() {
        // XXH64("", 0) and XXH64("abc", 0), as published by the xxHash project.
        XCTAssertEqual(XXHash64.hash([], seed: 0), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(XXHash64.hash(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
    }

    func testStreamingAtArbitrarySplitsMatchesOneShot() throws {
        var rng = SplitMix64(seed: 42)
        for c in try loadCases() where c.length > 0 {
            let data = Self.detBytes(c.length)
            for _ in 0..<4 {
                // Random cut points, including empty pieces and single bytes.
                var cuts = (0..<Int.random(in: 1...6, using: &rng)).map { _ in Int.random(in: 0...c.length, using: &rng) }
                cuts += [0, c.length]
                cuts.sort()
                var h = XXHash64(seed: c.seed)
                data.withUnsafeBytes { all in
                    for (a, b) in zip(cuts, cuts.dropFirst()) {
                        h.update(UnsafeRawBufferPointer(rebasing: all[a..<b]))
                    }
                }
                XCTAssertEqual(h.finalize(), c.expected, "length \(c.length) seed \(c.seed) cuts \(cuts)")
            }
        }
    }

    func testByteByByteAndStripeSizedPieces() throws {
        let data = Self.detBytes(4103)
        let expected = try loadCases().first { $0.length == 4103 && $0.seed == 0 }!.expected
        for piece in [1, 3, 7, 31, 32, 33, 64, 1000] {
            var h = XXHash64()
            data.withUnsafeBytes { all in
                var i = 0
                while i < all.count {
                    let j = min(all.count, i + piece)
                    h.update(UnsafeRawBufferPointer(rebasing: all[i..<j]))
                    i = j
                }
            }
            XCTAssertEqual(h.finalize(), expected, "pieces of \(piece)")
        }
    }

    func testFinalizeDoesNotConsumeState() {
        var h = XXHash64()
        let a = Self.detBytes(50)
        a.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<20])) }
        let mid = h.finalize()
        XCTAssertEqual(mid, XXHash64.hash(Array(a[0..<20])))
        XCTAssertEqual(h.finalize(), mid)
        a.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[20..<50])) }
        XCTAssertEqual(h.finalize(), XXHash64.hash(a))
    }

    func testEmptyUpdatesAreNoOps() {
        var h = XXHash64(seed: 7)
        h.update(UnsafeRawBufferPointer(start: nil, count: 0))
        [UInt8]().withUnsafeBytes { h.update($0) }
        XCTAssertEqual(h.finalize(), XXHash64.hash([], seed: 7))
    }
}
