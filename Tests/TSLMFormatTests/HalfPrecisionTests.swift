import XCTest
@testable import TSLMFormat

/// binary16 / bfloat16 conversions against numpy (f16) and torch (bf16); fixtures from
/// `tools/make_format_fixtures.py`.
final class HalfPrecisionTests: XCTestCase {
    /// numpy's float16 → float32 bits for all 65,536 patterns.
    func numpyHalfTable() throws -> [UInt32] {
        let b = try Fixtures.data("half_to_float_pos.bin") + Fixtures.data("half_to_float_neg.bin")
        XCTAssertEqual(b.count, 65536 * 4)
        return (0..<65536).map { b.u32(at: 4 * $0) }
    }

    func testHalfToFloatAllPatternsMatchNumpy() throws {
        let table = try numpyHalfTable()
        var nans = 0
        for h in 0...0xFFFF {
            let got = halfToFloat(UInt16(h))
            let want = Float(bitPattern: table[h])
            if want.isNaN {
                nans += 1
                XCTAssertTrue(got.isNaN, "f16 0x\(String(h, radix: 16)) must be NaN, got \(got)")
                // The sign of a NaN is kept.
                XCTAssertEqual(got.sign, want.sign)
            } else {
                XCTAssertEqual(got.bitPattern, want.bitPattern, "f16 0x\(String(h, radix: 16))")
            }
        }
        XCTAssertEqual(nans, 2 * 1023)
    }

    func testHalfRoundTripsExactlyThroughFloat() {
        // Every non-NaN half survives half → float → half bit for bit.
        for h in 0...0xFFFF {
            let f = halfToFloat(UInt16(h))
            if f.isNaN {
                XCTAssertTrue(halfToFloat(floatToHalf(f)).isNaN)
            } else {
                XCTAssertEqual(floatToHalf(f), UInt16(h), "f16 0x\(String(h, radix: 16))")
            }
        }
    }

    struct Record { let f: UInt32; let h: UInt16; let b: UInt16 }

    func loadRecords() throws -> [Record] {
        let d = try Fixtures.data("float_to_half_bf16.bin")
        XCTAssertEqual(d.count % 8, 0)
        return stride(from: 0, to: d.count, by: 8).map { Record(f: d.u32(at: $0), h: d.u16(at: $0 + 4), b: d.u16(at: $0 + 6)) }
    }

    func testFixtureHasTheInterestingValues() throws {
        let recs = try loadRecords()
        XCTAssertGreaterThan(recs.count, 4000)
        let fs = recs.map { Float(bitPattern: $0.f) }
        XCTAssertTrue(fs.contains { $0.isNaN })
        XCTAssertTrue(fs.contains(.infinity) && fs.contains(-.infinity))
        XCTAssertTrue(recs.contains { $0.f == 0 } && recs.contains { $0.f == 0x8000_0000 })
        XCTAssertTrue(fs.contains(65520))  // the f16 overflow tie
        XCTAssertTrue(fs.contains { $0.isSubnormal })
        XCTAssertTrue(recs.contains { $0.h & 0x7C00 == 0 && $0.h & 0x3FF != 0 })  // f16 subnormal results
        XCTAssertTrue(recs.contains { $0.f & 0xFFFF == 0x8000 })  // bf16 ties
    }

    func testFloatToHalfMatchesNumpy() throws {
        var mismatches: [String] = []
        for r in try loadRecords() {
            let f = Float(bitPattern: r.f)
            let got = floatToHalf(f)
            if f.isNaN {
                if !halfToFloat(got).isNaN { mismatches.append("NaN 0x\(String(r.f, radix: 16)) → 0x\(String(got, radix: 16))") }
            } else if got != r.h {
                mismatches.append("\(f) (0x\(String(r.f, radix: 16))): got 0x\(String(got, radix: 16)), numpy 0x\(String(r.h, radix: 16))")
            }
        }
        XCTAssertEqual(mismatches, [], "\(mismatches.count) mismatches")
    }

    func testFloatToBF16MatchesTorch() throws {
        var mismatches: [String] = []
        for r in try loadRecords() {
            let f = Float(bitPattern: r.f)
            let got = floatToBF16(f)
            if f.isNaN {
                if !bf16ToFloat(got).isNaN { mismatches.append("NaN 0x\(String(r.f, radix: 16)) → 0x\(String(got, radix: 16))") }
            } else if got != r.b {
                mismatches.append("\(f) (0x\(String(r.f, radix: 16))): got 0x\(String(got, radix: 16)), torch 0x\(String(r.b, radix: 16))")
            }
        }
        XCTAssertEqual(mismatches, [], "\(mismatches.count) mismatches")
    }

    func testBF16ToFloatIsTheUpperHalf() {
        for b in stride(from: 0, through: 0xFFFF, by: 1) {
            XCTAssertEqual(bf16ToFloat(UInt16(b)).bitPattern, UInt32(b) << 16)
        }
    }

    func testSpecificRoundingCases() {
        // Ties to even in the normal range: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
        XCTAssertEqual(floatToHalf(1 + 0x1p-11), 0x3C00)
        XCTAssertEqual(floatToHalf(1 + 3 * 0x1p-11), 0x3C02)
        // Overflow: 65504 is the largest half; 65520 ties up to infinity.
        XCTAssertEqual(floatToHalf(65504), 0x7BFF)
        XCTAssertEqual(floatToHalf(65519.996), 0x7BFF)
        XCTAssertEqual(floatToHalf(65520), 0x7C00)
        XCTAssertEqual(floatToHalf(-1e9), 0xFC00)
        // Subnormals: 2^-24 is the smallest; 2^-25 ties to zero; just above it rounds up.
        XCTAssertEqual(floatToHalf(0x1p-24), 0x0001)
        XCTAssertEqual(floatToHalf(0x1p-25), 0x0000)
        XCTAssertEqual(floatToHalf(Float(0x1p-25).nextUp), 0x0001)
        XCTAssertEqual(floatToHalf(-0x1p-25), 0x8000)
        XCTAssertEqual(floatToHalf(3 * 0x1p-25), 0x0002)  // 1.5 ulp → even (2)
        // Carry from the largest subnormal into the smallest normal.
        XCTAssertEqual(floatToHalf(Float(0x1p-14).nextDown), 0x0400)
        XCTAssertEqual(floatToHalf(-0.0), 0x8000)
        XCTAssertEqual(floatToHalf(.nan) & 0x7C00, 0x7C00)
        XCTAssertNotEqual(floatToHalf(.nan) & 0x3FF, 0)
        // A signalling NaN whose payload sits in the low 13 bits must not become infinity.
        XCTAssertTrue(halfToFloat(floatToHalf(Float(bitPattern: 0x7F80_0001))).isNaN)
        // bf16: ties to even, overflow of the rounding into infinity, NaN stays NaN.
        XCTAssertEqual(floatToBF16(Float(bitPattern: 0x3F80_8000)), 0x3F80)
        XCTAssertEqual(floatToBF16(Float(bitPattern: 0x3F81_8000)), 0x3F82)
        XCTAssertEqual(floatToBF16(Float(bitPattern: 0x7F7F_FFFF)), 0x7F80)
        XCTAssertTrue(bf16ToFloat(floatToBF16(Float(bitPattern: 0x7F80_0001))).isNaN)
        XCTAssertTrue(bf16ToFloat(floatToBF16(Float(bitPattern: 0xFFFF_FFFF))).isNaN)
    }
}
