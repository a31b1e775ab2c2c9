import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// The K-quant quantizers (`KQuantization.swift`): what they write decodes (with the reference
/// dequantizers that match the `gguf` package bit for bit, `GGUFTests`) to values close to the
/// input, closer the more bits; values already on a K grid come back (nearly) unchanged; an
/// importance vector moves error away from important columns; odd inputs never trap.
final class KQuantizationTests: XCTestCase {
    /// `x` quantized to K type `t` (weighted by `importance` when given).
    static func quantize(_ x: [Float], _ t: DType, importance: [Float]? = nil) -> [UInt8] {
        var blocks = [UInt8](repeating: 0xAA, count: x.count / 256 * t.bytesPerBlock)
        x.withUnsafeBufferPointer { src in
            blocks.withUnsafeMutableBytes { dst in
                if let importance {
                    importance.withUnsafeBufferPointer { DTypeConversion.fromFloat32(src, to: t, into: dst, importance: $0) }
                } else {
                    DTypeConversion.fromFloat32(src, to: t, into: dst)
                }
            }
        }
        return blocks
    }

    static func roundTrip(_ x: [Float], _ t: DType, importance: [Float]? = nil) -> [Float] {
        let blocks = quantize(x, t, importance: importance)
        var out = [Float](repeating: .nan, count: x.count)
        blocks.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { DTypeConversion.toFloat32(b, dtype: t, count: $0.count, into: $0) } }
        return out
    }

    static func rms(_ a: [Float], _ b: [Float], weights: [Float]? = nil) -> Double {
        var s = 0.0, n = 0.0
        for i in 0..<a.count {
            let w = Double(weights?[i % weights!.count] ?? 1)
            s += w * Double(a[i] - b[i]) * Double(a[i] - b[i])
            n += w
        }
        return (s / n).squareRoot()
    }

    /// Gaussian weights with a few outliers, as trained matrices have.
    static func weights(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { i in rng.normal() * 0.02 * (i % 97 == 0 ? 6 : 1) }
    }

    func testErrorShrinksWithBitsAndBeatsRoundToNearest() {
        let x = Self.weights(64 * 256, seed: 7)
        var sd = 0.0
        for v in x { sd += Double(v) * Double(v) }
        sd = (sd / Double(x.count)).squareRoot()
        let e4 = Self.rms(Self.roundTrip(x, .q4_k), x) / sd
        let e5 = Self.rms(Self.roundTrip(x, .q5_k), x) / sd
        let e6 = Self.rms(Self.roundTrip(x, .q6_k), x) / sd
        // The 32-weight round-to-nearest types on the same values, for scale.
        let rtn41 = BlockQuantizationSearchTests.dequantize(BlockQuantizationSearchTests.quantize(x, .q4_1, .roundToNearest), .q4_1)
        let rtn40 = BlockQuantizationSearchTests.dequantize(BlockQuantizationSearchTests.quantize(x, .q4_0, .roundToNearest), .q4_0)
        let e41 = Self.rms(rtn41, x) / sd, e40 = Self.rms(rtn40, x) / sd
        print("relative RMS error: q4_k \(e4), q5_k \(e5), q6_k \(e6); q4_1 rtn \(e41), q4_0 rtn \(e40)")
        XCTAssertLessThan(e6, e5 * 0.6)
        XCTAssertLessThan(e5, e4 * 0.6)
        // 4.5 bits per weight against q4_0's 4.5 and q4_1's 5.
        XCTAssertLessThan(e4, e40)
        XCTAssertLessThan(e4, e41 * 1.05)
        XCTAssertLessThan(e6, 0.03)
    }

    func testValuesOnAKGridComeBack() {
        // Decoded random blocks are exactly representable; the search must find (close to)
        // their grid again.
        var rng = SplitMix64(seed: 11)
        for t in [DType.q4_k, .q5_k, .q6_k] {
            var blocks = rng.bytes(16 * t.bytesPerBlock)
            for b in 0..<16 {
                let base = b * t.bytesPerBlock
                let offsets = t == .q6_k ? [BlockQ6_K.dOffset] : [0, BlockQ4_K.dminOffset]
                for o in offsets {
                    let h = floatToHalf(0.001 * (1 + rng.uniform() * 0.5))
                    blocks[base + o] = UInt8(h & 0xFF)
                    blocks[base + o + 1] = UInt8(h >> 8)
                }
            }
            var x = [Float](repeating: 0, count: 16 * 256)
            blocks.withUnsafeBytes { b in x.withUnsafeMutableBufferPointer { DTypeConversion.toFloat32(b, dtype: t, count: $0.count, into: $0) } }
            let back = Self.roundTrip(x, t)
            var sd = 0.0
            for v in x { sd += Double(v) * Double(v) }
            sd = (sd / Double(x.count)).squareRoot()
            let e = Self.rms(back, x) / sd
            print("\(t) on its own grid: relative RMS error \(e)")
            XCTAssertLessThan(e, t == .q4_k ? 0.05 : 0.03, "\(t)")
        }
    }

    func testImportanceMovesErrorToUnimportantColumns() {
        let cols = 512
        let x = Self.weights(32 * cols, seed: 3)
        var rng = SplitMix64(seed: 5)
        let importance = (0..<cols).map { _ in Float(pow(10, Double(rng.uniform()) * 2)) }
        for t in [DType.q4_k, .q5_k, .q6_k] {
            let plain = Self.rms(Self.roundTrip(x, t), x, weights: importance)
            let weighted = Self.rms(Self.roundTrip(x, t, importance: importance), x, weights: importance)
            print("\(t): importance-weighted RMS error \(plain) without, \(weighted) with the importance")
            XCTAssertLessThan(weighted, plain, "\(t)")
        }
    }

    func testZerosConstantsAndNonFiniteValuesDoNotTrap() {
        for t in [DType.q4_k, .q5_k, .q6_k] {
            XCTAssertEqual(Self.roundTrip([Float](repeating: 0, count: 256), t), [Float](repeating: 0, count: 256), "\(t)")
            let c = Self.roundTrip([Float](repeating: 0.5, count: 512), t)
            XCTAssertLessThan(c.map { abs($0 - 0.5) }.max()!, 0.01, "\(t)")
            let neg = Self.roundTrip([Float](repeating: -3, count: 256), t)
            XCTAssertLessThan(neg.map { abs($0 + 3) }.max()!, 0.05, "\(t)")
            var odd = Self.weights(512, seed: 9)
            odd[3] = .nan; odd[70] = .infinity; odd[300] = -.infinity; odd[301] = .greatestFiniteMagnitude
            _ = Self.roundTrip(odd, t)  // any blocks, no trap
        }
    }
}

/// The K quantizers against their Python reference (`tools/kquant_reference.py`, written from
/// formats/tslm.md in binary32 arithmetic), bit for bit, with and without an importance vector.
final class KQuantizationReferenceTests: XCTestCase {
    func testKQuantizersMatchPythonReferenceBitForBit() throws {
        let x = try Fixtures.floats("kquant_input_f32.bin")
        let imp = try Fixtures.floats("quant_search_importance_f32.bin")
        XCTAssertEqual(x.count, 96 * 256)
        for t in [DType.q4_k, .q5_k, .q6_k] {
            for (suffix, importance) in [("", nil), ("_imatrix", imp)] as [(String, [Float]?)] {
                let want = try Fixtures.data("kquant_\(t)\(suffix).bin")
                let got = KQuantizationTests.quantize(x, t, importance: importance)
                XCTAssertEqual(got.count, want.count)
                let n = t.bytesPerBlock
                let bad = (0..<(got.count / n)).filter { got[($0 * n)..<(($0 + 1) * n)] != want[($0 * n)..<(($0 + 1) * n)] }
                XCTAssertEqual(bad.count, 0, "\(t)\(suffix): super-blocks \(bad.prefix(8).map(String.init).joined(separator: ", ")) differ from the reference")
            }
        }
    }
}
