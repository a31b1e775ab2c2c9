import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// q8_0 / q4_0 / q4_1 against the reference `gguf` Python package (0.19.0), bit for bit, plus
/// error-bound and dot-product properties on seeded data.
///
/// The fixture input (`quant_input_f32.bin`, 64 rows × 256) is seeded normal data with special
/// rows: 0 all zeros, 1 constant 0.7, 2 one 1e4 outlier, 3 scale 1e-6 (d underflows f16),
/// 4 scale 1e-3 (d is an f16 subnormal), 5 negatives only, 6 positives only, 7 constant −2.5,
/// 8 opposite-sign magnitude ties, 9 small integers, 10 scale 3e4 (q4_1's min near the f16
/// limit), 11 a ramp with many exact .5 ties, 12 scale 1e-30, 13 every other element zero.
final class BlockQuantizationTests: XCTestCase {
    static let rows = 64, cols = 256

    enum Kind: String, CaseIterable {
        case q8_0, q4_0, q4_1
        var dtype: DType { switch self { case .q8_0: .q8_0; case .q4_0: .q4_0; case .q4_1: .q4_1 } }
        var blockBytes: Int { dtype.bytesPerBlock }
    }

    static func quantize(_ x: [Float], _ k: Kind) -> [UInt8] {
        var out = [UInt8](repeating: 0xAA, count: x.count / 32 * k.blockBytes)
        x.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { dst in
                switch k {
                case .q8_0: BlockQuantization.quantizeQ8_0(src, into: dst)
                case .q4_0: BlockQuantization.quantizeQ4_0(src, into: dst)
                case .q4_1: BlockQuantization.quantizeQ4_1(src, into: dst)
                }
            }
        }
        return out
    }

    static func dequantize(_ q: [UInt8], _ k: Kind) -> [Float] {
        var out = [Float](repeating: .nan, count: q.count / k.blockBytes * 32)
        q.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { dst in
                switch k {
                case .q8_0: BlockQuantization.dequantizeQ8_0(src, into: dst)
                case .q4_0: BlockQuantization.dequantizeQ4_0(src, into: dst)
                case .q4_1: BlockQuantization.dequantizeQ4_1(src, into: dst)
                }
            }
        }
        return out
    }

    // MARK: bit-exactness against gguf

    func testQuantizeMatchesGGUFBitForBit() throws {
        let x = try Fixtures.floats("quant_input_f32.bin")
        XCTAssertEqual(x.count, Self.rows * Self.cols)
        for k in Kind.allCases {
            let want = try Fixtures.data("quant_\(k.rawValue).bin")
            let got = Self.quantize(x, k)
            XCTAssertEqual(got.count, want.count, "\(k)")
            var bad: [String] = []
            for b in 0..<(got.count / k.blockBytes) where got[(b * k.blockBytes)..<((b + 1) * k.blockBytes)] != want[(b * k.blockBytes)..<((b + 1) * k.blockBytes)] {
                bad.append("row \(b / (Self.cols / 32)) block \(b % (Self.cols / 32))")
            }
            XCTAssertEqual(bad, [], "\(k): \(bad.count) blocks differ from gguf")
        }
    }

    func testDequantizeMatchesGGUFBitForBit() throws {
        for k in Kind.allCases {
            let q = try Fixtures.data("quant_\(k.rawValue).bin")
            let want = try Fixtures.floats("quant_\(k.rawValue)_dequant_f32.bin")
            let got = Self.dequantize(q, k)
            XCTAssertEqual(got.count, want.count)
            let bad = (0..<got.count).filter { !sameFloat(got[$0], want[$0]) }
            XCTAssertEqual(bad.count, 0, "\(k): first mismatch at \(bad.first.map { "\($0): \(got[$0]) vs \(want[$0])" } ?? "")")
        }
    }

    func testDequantizeArbitraryBlocksMatchesGGUF() throws {
        // Random block bytes: every nibble value, random scales, and d = +inf, NaN, subnormal, −0.
        for k in Kind.allCases {
            let q = try Fixtures.data("quant_\(k.rawValue)_random_blocks.bin")
            let want = try Fixtures.floats("quant_\(k.rawValue)_random_dequant_f32.bin")
            let got = Self.dequantize(q, k)
            XCTAssertEqual(got.count, 256 * 32)
            XCTAssertTrue(want.contains { $0.isNaN })
            let bad = (0..<got.count).filter { !sameFloat(got[$0], want[$0]) }
            XCTAssertEqual(bad.count, 0, "\(k): first mismatch at \(bad.first.map { "\($0): \(got[$0]) vs \(want[$0])" } ?? "")")
        }
    }

    func testSpecialRowsQuantizeAsGGMLDoes() throws {
        let x = try Fixtures.floats("quant_input_f32.bin")
        // All-zero row: q8_0 d = 0, q = 0; q4_0 d = −0 (as ggml: 0 / −8), every nibble 8; q4_1 d = 0, m = 0, nibbles 0.
        let row0 = Array(x[0..<32])
        XCTAssertEqual(Self.quantize(row0, .q8_0), [UInt8](repeating: 0, count: 34))
        XCTAssertEqual(Self.quantize(row0, .q4_0), [0x00, 0x80] + [UInt8](repeating: 0x88, count: 16))  // d = 0/−8 = −0
        XCTAssertEqual(Self.quantize(row0, .q4_1), [UInt8](repeating: 0, count: 20))
        // Opposite-sign magnitude tie: q4_0 takes the FIRST element of largest magnitude.
        let row8 = Array(x[(8 * 256)..<(8 * 256 + 32)])
        let q = Self.quantize(row8, .q4_0)
        XCTAssertEqual(halfToFloat(q.u16(at: 0)), -3.0 / -8.0)  // m = −3 (index 5 comes first)
        let row8b = Array(x[(8 * 256 + 32)..<(8 * 256 + 64)])
        XCTAssertEqual(halfToFloat(Self.quantize(row8b, .q4_0).u16(at: 0)), 3.0 / -8.0)
    }

    // MARK: properties

    /// Seeded rows: normal data at several scales, plus uniform and heavy-tailed rows.
    func propertyRows() -> [[Float]] {
        var rng = SplitMix64(seed: 9001)
        var rows: [[Float]] = []
        for scale: Float in [1e-4, 0.02, 1, 50, 1000] {
            for _ in 0..<8 { rows.append((0..<512).map { _ in rng.normal() * scale }) }
        }
        for _ in 0..<8 { rows.append((0..<512).map { _ in Float.random(in: -3...5, using: &rng) }) }
        for _ in 0..<8 { rows.append((0..<512).map { _ in let n = rng.normal(); return n * n * n }) }
        return rows
    }

    /// |x − x̂| bound of q8_0, derived from ggml's math: d = amax/127, q = round(x·(1/d)), so
    /// |x − q·d| ≤ d·(1/2 + 2⁻²⁰) (x·(1/d) carries at most a few ulps of 127); storing d as f16
    /// d' adds |q|·|d − d'| ≤ 127·|d − d'|; the product q·d' rounds by ≤ ulp(amax)/2.
    func testQ8_0ErrorBound() {
        for row in propertyRows() {
            let q = Self.quantize(row, .q8_0), y = Self.dequantize(q, .q8_0)
            for b in 0..<(row.count / 32) {
                let blk = row[(b * 32)..<(b * 32 + 32)]
                let amax = blk.map(abs).max()!
                let d = amax / 127, dq = halfToFloat(q.u16(at: b * 34))
                let bound = d * (0.5 + 0x1p-20) + 127 * abs(d - dq) + amax.ulp
                for i in 0..<32 {
                    XCTAssertLessThanOrEqual(abs(row[b * 32 + i] - y[b * 32 + i]), bound, "block \(b) element \(i)")
                }
                // The f16 rounding of d is at most half an f16 ulp (relative 2⁻¹¹ for normal d).
                if d >= 0x1p-14 { XCTAssertLessThanOrEqual(abs(d - dq), d * 0x1p-11) }
            }
        }
    }

    /// q4_0: d = m/−8 (m the signed element of largest magnitude), q − 8 = nearest integer to
    /// x/d in [−8, 8] clamped to ≤ 7. So |x − d·(q−8)| ≤ |d|/2 except where x/d > 7.5 (x near
    /// −m), where the clamp allows a full |d|. Storing d as f16 adds ≤ 8·|d − d'|.
    func testQ4_0ErrorBound() {
        for row in propertyRows() {
            let q = Self.quantize(row, .q4_0), y = Self.dequantize(q, .q4_0)
            for b in 0..<(row.count / 32) {
                let blk = Array(row[(b * 32)..<(b * 32 + 32)])
                let m = blk.max { abs($0) < abs($1) }!
                let d = m / -8, dq = halfToFloat(q.u16(at: b * 18))
                let slack = 8 * abs(d - dq) + 4 * abs(m).ulp
                for i in 0..<32 {
                    let x = blk[i], err = abs(x - y[b * 32 + i])
                    let ratio = d != 0 ? x / d : 0
                    let bound = (ratio > 7.5 ? abs(d) : abs(d) * 0.5) * (1 + 0x1p-18) + slack
                    XCTAssertLessThanOrEqual(err, bound, "block \(b) element \(i) x/d = \(ratio)")
                }
                // The element of largest magnitude itself is exact up to d's f16 rounding.
                if let i = blk.firstIndex(of: m) {
                    XCTAssertLessThanOrEqual(abs(m - y[b * 32 + i]), slack)
                }
            }
        }
    }

    /// q4_1: d = (max − min)/15, q = nearest integer to (x − min)/d, clamped to 15, x̂ = q·d' + m'
    /// with d', m' the f16 roundings of d and min. |x − x̂| ≤ d/2 + 15·|d − d'| + |min − m'|
    /// (+ float rounding, a few ulps of max(|min|, |max|)).
    func testQ4_1ErrorBound() {
        for row in propertyRows() {
            let q = Self.quantize(row, .q4_1), y = Self.dequantize(q, .q4_1)
            for b in 0..<(row.count / 32) {
                let blk = row[(b * 32)..<(b * 32 + 32)]
                let mn = blk.min()!, mx = blk.max()!
                let d = (mx - mn) / 15
                let dq = halfToFloat(q.u16(at: b * 20)), mq = halfToFloat(q.u16(at: b * 20 + 2))
                let bound = d * (0.5 + 0x1p-18) + 15 * abs(d - dq) + abs(mn - mq) + 4 * max(abs(mn), abs(mx)).ulp
                for i in 0..<32 {
                    XCTAssertLessThanOrEqual(abs(row[b * 32 + i] - y[b * 32 + i]), bound, "block \(b) element \(i)")
                }
            }
        }
    }

    /// A dot product of a dequantized row with an f32 vector stays within Σ|x − x̂|·|v| of the
    /// exact one (computed in Double), and that sum is small relative to ‖x‖·‖v‖.
    func testDotProductOfDequantizedRowsStaysClose() {
        var rng = SplitMix64(seed: 77)
        let relTolerance: [Kind: Double] = [.q8_0: 0.01, .q4_0: 0.15, .q4_1: 0.12]
        for k in Kind.allCases {
            for _ in 0..<20 {
                let x = (0..<1024).map { _ in rng.normal() }
                let v = (0..<1024).map { _ in rng.normal() }
                let y = Self.dequantize(Self.quantize(x, k), k)
                var exact = 0.0, approx = 0.0, errBound = 0.0, nx = 0.0, nv = 0.0
                for i in 0..<1024 {
                    exact += Double(x[i]) * Double(v[i])
                    approx += Double(y[i]) * Double(v[i])
                    errBound += abs(Double(x[i]) - Double(y[i])) * abs(Double(v[i]))
                    nx += Double(x[i] * x[i]); nv += Double(v[i] * v[i])
                }
                XCTAssertLessThanOrEqual(abs(exact - approx), errBound * (1 + 1e-9) + 1e-9)
                XCTAssertLessThan(abs(exact - approx) / (nx.squareRoot() * nv.squareRoot()), relTolerance[k]!, "\(k)")
            }
        }
    }

    func testQuantizeIsIdempotentOnDequantizedData() {
        // Re-quantizing dequantized q8_0 data reproduces the same bytes: amax' = 127·d' exactly,
        // so d'' = d' and every x̂·(1/d') rounds back to its code.
        var rng = SplitMix64(seed: 5)
        let x = (0..<4096).map { _ in rng.normal() }
        let q1 = Self.quantize(x, .q8_0)
        let y = Self.dequantize(q1, .q8_0)
        let q2 = Self.quantize(y, .q8_0)
        XCTAssertEqual(q1, q2)
    }

    func testQuantizeWritesOnlyItsBlocks() {
        // Quantizing n blocks writes exactly n·bytesPerBlock bytes (no overrun into a guard).
        for k in Kind.allCases {
            var rng = SplitMix64(seed: 3)
            let x = (0..<96).map { _ in rng.normal() }
            var out = [UInt8](repeating: 0xEE, count: 3 * k.blockBytes + 16)
            x.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBytes { all in
                    let dst = UnsafeMutableRawBufferPointer(rebasing: all[0..<(3 * k.blockBytes)])
                    switch k {
                    case .q8_0: BlockQuantization.quantizeQ8_0(src, into: dst)
                    case .q4_0: BlockQuantization.quantizeQ4_0(src, into: dst)
                    case .q4_1: BlockQuantization.quantizeQ4_1(src, into: dst)
                    }
                }
            }
            XCTAssertEqual(Array(out[(3 * k.blockBytes)...]), [UInt8](repeating: 0xEE, count: 16), "\(k)")
        }
    }
}
