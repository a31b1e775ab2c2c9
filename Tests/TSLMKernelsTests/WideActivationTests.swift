import XCTest
import TSLMFormat
@testable import TSLMKernels
import TSLMTestSupport

/// q8_0 weights × 16-bit activations (`WideQuantizedActivations`) and the activation statistics
/// behind `tslm perplexity --save-imatrix`.
final class WideActivationTests: XCTestCase {
    func testWideActivationQuantizationMatchesReference() {
        var rng = SplitMix64(seed: 16)
        var x = rng.floats(32 * 8, scale: 3)
        x[5] = .nan
        for i in 64..<96 { x[i] = 0 }  // an all-zero block
        x[100] = 1e-30
        x[140] = 5e4                   // one outlier in a block
        let act = WideQuantizedActivations(tokens: 1, blocks: 8)
        defer { act.deallocate() }
        act.quantize(token: 0, x)
        var q = [Int16](repeating: 0, count: 32)
        for b in 0..<8 {
            let d = x.withUnsafeBufferPointer { Reference.quantizeWideActivationBlock($0.baseAddress! + 32 * b, into: &q) }
            XCTAssertEqual(act.scales[b], d, "block \(b) scale")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: act.quants + 32 * b, count: 32)), q, "block \(b) quants")
        }
    }

    func testQ8_0WithWideActivationsIsNearlyExact() {
        // The error left is the weights' own: against the exact product of the dequantized
        // weights, the 16-bit path is ~256× closer than 8-bit activations would allow.
        var rng = SplitMix64(seed: 17)
        for (rows, cols, n) in [(7, 64, 1), (33, 2048, 3), (16, 96, 20)] {
            let m = TestMatrix(random: &rng, dtype: .q8_0, rows: rows, cols: cols)
            var x = rng.floats(n * cols, scale: 2)
            for i in stride(from: 0, to: x.count, by: 97) { x[i] *= 40 }  // outliers
            var exact = [Float](repeating: 0, count: n * rows), got = exact
            Reference.matmul(m.matrix, x, n: n, &exact)
            Kernels.matmul(m.matrix, x, n: n, &got, pool: ThreadPool(threads: 2))
            for i in 0..<n {
                for r in 0..<rows {
                    let row = m.row(r)
                    var mag: Float = 0, amaxSum: Float = 0
                    for b in 0..<(cols / 32) {
                        var amax: Float = 0, wsum: Float = 0
                        for c in (32 * b)..<(32 * b + 32) { mag += abs(row[c] * x[i * cols + c]); amax = max(amax, abs(x[i * cols + c])); wsum += abs(row[c]) }
                        amaxSum += amax / 65534 * wsum
                    }
                    let err = abs(got[i * rows + r] - exact[i * rows + r])
                    XCTAssertLessThanOrEqual(err, amaxSum + 2e-6 * mag, "\(rows)x\(cols) token \(i) row \(r)")
                }
            }
        }
    }

    func testEightBitActivationsStaySelectable() {
        // Kernels.q8_0WideActivations = false (TSLM_Q8_ACTIVATIONS=8) runs q8_0 on the 8-bit
        // integer path again: a different result, within the 8-bit activation error bound.
        var rng = SplitMix64(seed: 19)
        let (rows, cols, n) = (9, 256, 3)
        let m = TestMatrix(random: &rng, dtype: .q8_0, rows: rows, cols: cols)
        let x = rng.floats(n * cols, scale: 2)
        var exact = [Float](repeating: 0, count: n * rows), wide = exact, narrow = exact
        Reference.matmul(m.matrix, x, n: n, &exact)
        Kernels.matmul(m.matrix, x, n: n, &wide, pool: nil)
        Kernels.q8_0WideActivations = false
        defer { Kernels.q8_0WideActivations = true }
        Kernels.matmul(m.matrix, x, n: n, &narrow, pool: nil)
        XCTAssertNotEqual(wide, narrow)
        var narrowErr: Float = 0, wideErr: Float = 0
        for i in 0..<n {
            for r in 0..<rows {
                let row = m.row(r)
                var bound: Float = 0
                for b in 0..<(cols / 32) {
                    var amax: Float = 0, wsum: Float = 0
                    for c in (32 * b)..<(32 * b + 32) { amax = max(amax, abs(x[i * cols + c])); wsum += abs(row[c]) }
                    bound += amax / 254 * wsum
                }
                XCTAssertLessThanOrEqual(abs(narrow[i * rows + r] - exact[i * rows + r]), bound * 1.01 + 1e-5)
                narrowErr += abs(narrow[i * rows + r] - exact[i * rows + r])
                wideErr += abs(wide[i * rows + r] - exact[i * rows + r])
            }
        }
        XCTAssertLessThan(wideErr * 20, narrowErr, "16-bit activations are far closer to the exact product")
    }

    func testActivationStatisticsCollectsColumnMeanSquares() {
        var rng = SplitMix64(seed: 18)
        let a = TestMatrix(random: &rng, dtype: .q4_0, rows: 4, cols: 64)
        let b = TestMatrix(random: &rng, dtype: .f32, rows: 3, cols: 32)
        let x = rng.floats(5 * 64), z = rng.floats(32)
        var y = [Float](repeating: 0, count: 5 * 4)
        Kernels.matmul(a.matrix, x, n: 5, &y, pool: nil)  // not collected: statistics are off
        let stats = ActivationStatistics()
        Kernels.activationStatistics = stats
        defer { Kernels.activationStatistics = nil }
        Kernels.matmul(a.matrix, x, n: 3, &y, pool: nil)
        Kernels.matmul(a.matrix, Array(x[(3 * 64)...]), n: 2, &y, pool: nil)
        Kernels.matvec(b.matrix, z, &y, pool: nil)
        XCTAssertEqual(stats.byMatrix.count, 2)
        let ca = stats.byMatrix[Int(bitPattern: a.matrix.data)]!, cb = stats.byMatrix[Int(bitPattern: b.matrix.data)]!
        XCTAssertEqual(ca.count, 5)
        XCTAssertEqual(cb.count, 1)
        for c in 0..<64 {
            let want = (0..<5).reduce(0.0) { $0 + Double(x[$1 * 64 + c] * x[$1 * 64 + c]) }
            XCTAssertEqual(ca.sumSquares[c], want, accuracy: 1e-9 * max(1, want))
        }
        XCTAssertEqual(cb.sumSquares[7], Double(z[7] * z[7]), accuracy: 1e-12)
    }
}
