import XCTest
import TSLMFormat
@testable import TSLMKernels
import TSLMTestSupport

/// The K super-block types (q4_k, q5_k, q6_k) through every matrix path: the row dots (AVX2 or
/// portable) against the scalar twin with the same 8-bit activations and against the exact
/// reference (and `testQuantizedMatvecIsExactForQuantizableActivations`), the GEMM (panels start on 256-weight boundaries) and the row decode.
extension MatrixKernelTests {
    static let kTypes: [DType] = [.q4_k, .q5_k, .q6_k]

    func testKQuantMatvecMatchesReferences() {
        var rng = SplitMix64(seed: 61)
        for dtype in Self.kTypes {
            for (rows, cols) in [(1, 256), (3, 512), (17, 768), (5, 2048), (2, 8192)] {
                let m = TestMatrix(random: &rng, dtype: dtype, rows: rows, cols: cols, offset: Int(rng.next() % 3))
                let x = rng.floats(cols, scale: 2)
                var exact = [Float](repeating: 0, count: rows), sameQ = exact
                Reference.matvec(m.matrix, x, &exact)
                Reference.matvecQuantizedActivations(m.matrix, x, &sameQ)
                let mag = magnitudes(m, x)
                for pool in Self.pools {
                    var y = [Float](repeating: .nan, count: rows)
                    Kernels.matvec(m.matrix, x, &y, pool: pool)
                    let what = "\(dtype) \(rows)x\(cols) \(pool.threads)t"
                    assertClose(y, sameQ, scale: mag, tolerance: Tolerance.sameQuantization, "\(what) same-quantization")
                    assertClose(y, exact, scale: mag, tolerance: Tolerance.quantizationSlack, extra: quantizationBound(m, x), "\(what) exact")
                }
            }
        }
    }

    func testKQuantMatmulAndGemmMatchReferences() {
        var rng = SplitMix64(seed: 63)
        for dtype in Self.kTypes {
            for (rows, cols, n) in [(3, 256, 3), (17, 512, 5), (9, 1536, 8), (35, 2048, 13), (4, 8192, 9)] {
                let m = TestMatrix(random: &rng, dtype: dtype, rows: rows, cols: cols, offset: Int(rng.next() % 3))
                let x = rng.floats(n * cols)
                let gemm = n >= Kernels.gemmMinTokens
                var want = [Float](repeating: 0, count: n * rows)
                if gemm { Reference.matmul(m.matrix, x, n: n, &want) } else { Reference.matmulQuantizedActivations(m.matrix, x, n: n, &want) }
                var mag = [Float]()
                for i in 0..<n { mag += magnitudes(m, Array(x[(i * cols)..<((i + 1) * cols)])) }
                for pool in Self.pools {
                    var y = [Float](repeating: .nan, count: n * rows)
                    Kernels.matmul(m.matrix, x, n: n, &y, pool: pool)
                    assertClose(y, want, scale: mag, tolerance: gemm ? Tolerance.floatDot : Tolerance.sameQuantization,
                                "matmul \(dtype) \(rows)x\(cols) n=\(n) \(pool.threads)t")
                }
                var exact = [Float](repeating: 0, count: n * rows), single = exact
                Reference.matmul(m.matrix, x, n: n, &exact)
                Kernels.gemm(m.matrix, x, n: n, &single)
                assertClose(single, exact, scale: mag, tolerance: Tolerance.floatDot, "gemm \(dtype) \(rows)x\(cols) n=\(n)")
            }
        }
    }

    func testKQuantPanelDecodeIsBitIdenticalToReference() {
        var rng = SplitMix64(seed: 65)
        for dtype in Self.kTypes {
            // Random bytes with sane f16 scales: every bit pattern of the levels and scale codes.
            var bytes = rng.bytes(6 * dtype.bytesPerBlock)
            for b in 0..<6 {
                for o in dtype == .q6_k ? [BlockQ6_K.dOffset] : [0, BlockQ4_K.dminOffset] {
                    let h = floatToHalf(rng.uniform() * 0.01)
                    bytes[b * dtype.bytesPerBlock + o] = UInt8(h & 0xFF)
                    bytes[b * dtype.bytesPerBlock + o + 1] = UInt8(h >> 8)
                }
            }
            var want = [Float](repeating: 0, count: 6 * 256), got = [Float](repeating: .nan, count: 6 * 256)
            bytes.withUnsafeBytes { b in
                want.withUnsafeMutableBufferPointer { DTypeConversion.toFloat32(b, dtype: dtype, count: $0.count, into: $0) }
                got.withUnsafeMutableBufferPointer { KQuantDecode.decode(dtype, b.baseAddress!, count: $0.count, into: $0.baseAddress!) }
            }
            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(dtype)")
        }
    }

    func testKQuantDequantizeRowMatchesReference() {
        var rng = SplitMix64(seed: 64)
        for dtype in Self.kTypes {
            let m = TestMatrix(random: &rng, dtype: dtype, rows: 3, cols: 768, offset: 1)
            for r in 0..<3 {
                var got = [Float](repeating: .nan, count: 768)
                Kernels.dequantizeRow(m.matrix, row: r, into: &got)
                XCTAssertEqual(got, m.row(r), "\(dtype) row \(r)")
            }
        }
    }
}
