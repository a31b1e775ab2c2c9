import XCTest
import TSLMFormat
@testable import TSLMKernels
import TSLMTestSupport

final class MatrixKernelTests: XCTestCase {
    static let pools = [ThreadPool(threads: 1), ThreadPool(threads: 2)]
    static let matrixDTypes: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1]
    /// (rows, cols) pairs covering the awkward sizes without a full cross product (debug builds).
    static let shapes: [(Int, Int)] = [(1, 32), (3, 64), (17, 96), (256, 96), (3, 2048), (17, 2048),
                                       (1, 8224), (3, 8224), (256, 32)]

    /// Σ_c |W[r,c]·x[c]| per row, from the reference-decoded weights: the scale errors are
    /// measured against.
    func magnitudes(_ m: TestMatrix, _ x: [Float]) -> [Float] {
        (0..<m.matrix.rows).map { r in
            let row = m.row(r)
            var s: Float = 0
            for c in 0..<row.count { s += abs(row[c] * x[c]) }
            return s
        }
    }

    /// n tokens of `cols` activations for the integer products: blocks of very different
    /// magnitudes (every fifth × 300) and one block of zeros (scale 0).
    func mixedActivations(_ rng: inout SplitMix64, n: Int, cols: Int) -> [Float] {
        var x = rng.floats(n * cols, scale: 2)
        for i in 0..<(n * cols) where (i / 32) % 5 == 3 { x[i] *= 300 }
        for i in 0..<32 { x[i] = 0 }
        return x
    }

    /// The scalar twin of the quantized products, `Reference.matmulQuantizedActivations`, on n
    /// tokens of `x`, with the magnitudes its errors are measured against.
    func quantizedReference(_ m: TestMatrix, _ x: [Float], n: Int) -> (want: [Float], mag: [Float]) {
        let (rows, cols) = (m.matrix.rows, m.matrix.cols)
        var want = [Float](repeating: 0, count: n * rows)
        Reference.matmulQuantizedActivations(m.matrix, x, n: n, &want)
        var mag = [Float]()
        for i in 0..<n { mag += magnitudes(m, Array(x[(i * cols)..<((i + 1) * cols)])) }
        return (want, mag)
    }

    /// The exact bound on |W·x − W·x̃| where x̃ is x after activation quantization (per block
    /// |x − x̃| ≤ max|x_b|/254).
    func quantizationBound(_ m: TestMatrix, _ x: [Float]) -> [Float] {
        (0..<m.matrix.rows).map { r in
            let row = m.row(r)
            var bound: Float = 0
            for b in 0..<(row.count / 32) {
                var amax: Float = 0, wsum: Float = 0
                for c in (32 * b)..<(32 * b + 32) { amax = max(amax, abs(x[c])); wsum += abs(row[c]) }
                bound += amax / 254 * wsum
            }
            return bound
        }
    }

    /// Whether `matmul` of `n` tokens of `dtype` runs the integer GEMM (quantized activations).
    func integerPrefill(_ dtype: DType, n: Int) -> Bool {
        n >= Kernels.gemmMinTokens && Kernels.prefillGemm && Kernels.integerGemm && IntegerGemm.mode(for: dtype) != nil
    }

    func assertClose(_ got: [Float], _ want: [Float], scale: [Float], tolerance: Float, extra: [Float]? = nil,
                     _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        var failures = 0
        for i in 0..<min(got.count, want.count) {
            let allowed = tolerance * scale[i % scale.count] + (extra?[i % scale.count] ?? 0) + Float.leastNormalMagnitude
            if !(abs(got[i] - want[i]) <= allowed) {
                failures += 1
                if failures <= 3 {
                    XCTFail("\(what) [\(i)]: \(got[i]) vs \(want[i]) (allowed \(allowed))", file: file, line: line)
                }
            }
        }
    }

    func testMatvecMatchesReferences() {
        var rng = SplitMix64(seed: 1)
        for dtype in Self.matrixDTypes {
            for (rows, cols) in Self.shapes {
                let m = TestMatrix(random: &rng, dtype: dtype, rows: rows, cols: cols, offset: Int(rng.next() % 3))
                let x = rng.floats(cols, scale: 2)
                var exact = [Float](repeating: 0, count: rows)
                Reference.matvec(m.matrix, x, &exact)
                let mag = magnitudes(m, x)
                let what = "\(dtype) \(rows)x\(cols)"
                var sameQ = [Float](repeating: 0, count: rows)
                if dtype.isQuantized { Reference.matvecQuantizedActivations(m.matrix, x, &sameQ) }
                for pool in Self.pools {
                    var y = [Float](repeating: .nan, count: rows)
                    Kernels.matvec(m.matrix, x, &y, pool: pool)
                    if dtype.isQuantized {
                        assertClose(y, sameQ, scale: mag, tolerance: Tolerance.sameQuantization, "\(what) same-quantization \(pool.threads)t")
                        assertClose(y, exact, scale: mag, tolerance: Tolerance.quantizationSlack,
                                    extra: quantizationBound(m, x), "\(what) exact \(pool.threads)t")
                    } else {
                        assertClose(y, exact, scale: mag, tolerance: Tolerance.floatDot, "\(what) \(pool.threads)t")
                    }
                }
                var y = [Float](repeating: .nan, count: rows)
                Kernels.matvec(m.matrix, x, &y, pool: nil)
                XCTAssertFalse(y.contains { $0.isNaN }, "\(what) without pool")
            }
        }
    }

    func testFloatMatvecOddColumnCounts() {
        var rng = SplitMix64(seed: 2)
        for dtype in [DType.f32, .f16, .bf16] {
            for cols in [1, 5, 8, 37, 100] {
                let m = TestMatrix(random: &rng, dtype: dtype, rows: 5, cols: cols, offset: 1)
                let x = rng.floats(cols)
                var want = [Float](repeating: 0, count: 5), got = want
                Reference.matvec(m.matrix, x, &want)
                Kernels.matvec(m.matrix, x, &got, pool: Self.pools[1])
                assertClose(got, want, scale: magnitudes(m, x), tolerance: Tolerance.floatDot, "\(dtype) cols \(cols)")
            }
        }
    }

    func testQuantizedMatvecIsExactForQuantizableActivations() {
        // Activations that are exactly representable after quantization (small integers, one
        // 127 per block) make the fast path agree with the exact reference up to rounding.
        var rng = SplitMix64(seed: 3)
        let cols = 256
        var x = (0..<cols).map { _ in Float(Int(rng.next() % 255) - 127) }
        for b in 0..<(cols / 32) { x[32 * b] = 127 }
        for dtype in [DType.q8_0, .q4_0, .q4_1, .q4_k, .q5_k, .q6_k] {
            let m = TestMatrix(random: &rng, dtype: dtype, rows: 9, cols: cols)
            var want = [Float](repeating: 0, count: 9), got = want
            Reference.matvec(m.matrix, x, &want)
            Kernels.matvec(m.matrix, x, &got, pool: nil)
            assertClose(got, want, scale: magnitudes(m, x), tolerance: Tolerance.sameQuantization, "\(dtype)")
        }
    }

    func testMatmulMatchesReferences() {
        // Below `Kernels.gemmMinTokens` tokens matmul runs the row dots on quantized
        // activations, exactly as matvec; from there on the f32 GEMM, as exact as the f32
        // reference up to summation order.
        var rng = SplitMix64(seed: 4)
        for dtype in Self.matrixDTypes + [.i8] {
            for (rows, cols, n) in [(3, 64, 1), (17, 96, 3), (17, 96, 5), (5, 2048, 17), (33, 32, 33), (9, 64, 8)] {
                let m = TestMatrix(random: &rng, dtype: dtype, rows: rows, cols: cols)
                let x = rng.floats(n * cols)
                let gemm = n >= Kernels.gemmMinTokens
                // The integer GEMM quantizes activations as the row dots do.
                let sameQuantization = dtype.isQuantized && (!gemm || integerPrefill(dtype, n: n))
                var want = [Float](repeating: 0, count: n * rows)
                if sameQuantization {
                    Reference.matmulQuantizedActivations(m.matrix, x, n: n, &want)
                } else {
                    Reference.matmul(m.matrix, x, n: n, &want)
                }
                var mag = [Float]()
                for i in 0..<n { mag += magnitudes(m, Array(x[(i * cols)..<((i + 1) * cols)])) }
                for pool in Self.pools {
                    var y = [Float](repeating: .nan, count: n * rows)
                    Kernels.matmul(m.matrix, x, n: n, &y, pool: pool)
                    let tol = sameQuantization ? Tolerance.sameQuantization : Tolerance.floatDot
                    assertClose(y, want, scale: mag, tolerance: tol, "matmul \(dtype) \(rows)x\(cols) n=\(n) \(pool.threads)t")
                    if !gemm {
                        // Each output row of the row-dot path equals matvec on that input.
                        var single = [Float](repeating: 0, count: rows)
                        Kernels.matvec(m.matrix, Array(x[((n - 1) * cols)...]), &single, pool: pool)
                        XCTAssertEqual(Array(y[((n - 1) * rows)...]), single, "matmul last row vs matvec \(dtype)")
                    }
                }
            }
        }
    }

    func testGemmEdgesMatchReference() {
        // Rows that fill no whole quad or panel, token counts that fill no whole triple,
        // float widths that are no multiple of 8, several column panels of unequal width,
        // unaligned weights, and both ways of splitting work (rows; tokens when rows are few).
        var rng = SplitMix64(seed: 41)
        let cases: [(DType, Int, Int, Int)] = [
            (.f32, 1, 13, 4), (.f32, 7, 29, 10), (.f16, 5, 3, 7), (.bf16, 18, 41, 11), (.f16, 6, 1544, 8),
            (.q8_0, 19, 1600, 7), (.q4_0, 2, 2304, 37), (.q4_1, 35, 800, 4), (.q8_0, 8, 64, 200),
            (.q4_0, 300, 96, 14), (.f16, 130, 776, 9), (.q4_1, 3, 64, 1),
            // Longer inputs of the float types: token tiles with tails, odd float widths,
            // several column panels.
            (.f16, 50, 1600, 40), (.f32, 13, 100, 33), (.bf16, 30, 64, 64), (.q4_1, 25, 800, 45), (.f32, 1, 7, 70),
            // The packed AVX-512 loop nest's blocks: more than one row group (128 rows) and token
            // block (128 tokens), each with a tail that fills no whole quad, over two column panels.
            (.f16, 133, 1568, 131),
            // f16 rows read in place (at most one quad of tokens, whole chunks): attention's keys
            // in decode; rows that fill no whole quad, over one and over three column panels.
            (.f16, 7, 64, 3), (.f16, 130, 1600, 4), (.f16, 9, 64, 1),
        ]
        // Both inner loops where the CPU has AVX-512 (the AVX2 / portable one everywhere).
        defer { Kernels.gemmAVX512 = Kernels.gemmAVX512Available }
        for avx512 in Kernels.gemmAVX512Available ? [false, true] : [false] {
        Kernels.gemmAVX512 = avx512
        for (dtype, rows, cols, n) in cases {
            let m = TestMatrix(random: &rng, dtype: dtype, rows: rows, cols: cols, offset: Int(rng.next() % 3))
            let x = rng.floats(n * cols, scale: 2)
            var want = [Float](repeating: 0, count: n * rows)
            Reference.matmul(m.matrix, x, n: n, &want)
            var mag = [Float]()
            for i in 0..<n { mag += magnitudes(m, Array(x[(i * cols)..<((i + 1) * cols)])) }
            var single = [Float](repeating: .nan, count: n * rows)
            Kernels.gemm(m.matrix, x, n: n, &single)
            assertClose(single, want, scale: mag, tolerance: Tolerance.floatDot, "gemm \(dtype) \(rows)x\(cols) n=\(n) avx512 \(avx512)")
            // matmul takes the GEMM from gemmMinTokens tokens on, split among threads.
            guard n >= Kernels.gemmMinTokens else { continue }
            // The integer GEMM (q4_0, q8_0 where the CPU has VNNI) has its own tests.
            let saved = Kernels.integerGemm
            Kernels.integerGemm = false
            defer { Kernels.integerGemm = saved }
            for pool in Self.pools {
                var y = [Float](repeating: .nan, count: n * rows)
                Kernels.matmul(m.matrix, x, n: n, &y, pool: pool)
                assertClose(y, want, scale: mag, tolerance: Tolerance.floatDot, "matmul \(dtype) \(rows)x\(cols) n=\(n) \(pool.threads)t avx512 \(avx512)")
            }
        }
        }
    }

    func testGemmCanBeTurnedOff() {
        // TSLM_PREFILL=rowdot: the row-dot path for every token count (as before the GEMM).
        var rng = SplitMix64(seed: 43)
        let m = TestMatrix(random: &rng, dtype: .q4_0, rows: 9, cols: 256)
        let n = 12
        let x = rng.floats(n * 256)
        var gemm = [Float](repeating: 0, count: n * 9), rowdot = gemm, want = gemm
        // The float GEMM (the integer one quantizes activations as the row dots do).
        let saved = Kernels.integerGemm
        Kernels.integerGemm = false
        defer { Kernels.integerGemm = saved }
        Kernels.matmul(m.matrix, x, n: n, &gemm, pool: nil)
        Kernels.prefillGemm = false
        defer { Kernels.prefillGemm = true }
        Kernels.matmul(m.matrix, x, n: n, &rowdot, pool: nil)
        Reference.matmulQuantizedActivations(m.matrix, x, n: n, &want)
        XCTAssertNotEqual(gemm, rowdot)
        var mag = [Float]()
        for i in 0..<n { mag += magnitudes(m, Array(x[(i * 256)..<((i + 1) * 256)])) }
        assertClose(rowdot, want, scale: mag, tolerance: Tolerance.sameQuantization, "row-dot q4_0")
    }

    func testDequantizeRowMatchesReference() {
        var rng = SplitMix64(seed: 5)
        for dtype in Self.matrixDTypes + [.i8, .f64] {
            for cols in [32, 96, 2048] {
                let m = TestMatrix(random: &rng, dtype: dtype, rows: 3, cols: cols, offset: 1)
                for r in 0..<3 {
                    var got = [Float](repeating: .nan, count: cols)
                    Kernels.dequantizeRow(m.matrix, row: r, into: &got)
                    XCTAssertEqual(got, m.row(r), "\(dtype) cols \(cols) row \(r)")
                }
            }
        }
    }

    func testEmptyShapes() {
        let m = TestMatrix([], dtype: .q4_0, rows: 4, cols: 0)
        var y = [Float](repeating: .nan, count: 4)
        Kernels.matvec(m.matrix, [], &y, pool: Self.pools[1])
        XCTAssertEqual(y, [0, 0, 0, 0])
        let none = TestMatrix([], dtype: .f16, rows: 0, cols: 8)
        var z = [Float]()
        Kernels.matmul(none.matrix, [Float](repeating: 1, count: 16), n: 2, &z, pool: Self.pools[1])
        XCTAssertEqual(z, [])
    }

    func testValidatingInitializer() throws {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        defer { buffer.deallocate() }
        let m = try WeightMatrix(validating: .q4_0, rows: 2, cols: 32, data: buffer, byteCount: 36, file: "f", tensor: "t")
        XCTAssertEqual(m.rowBytes, 18)
        XCTAssertThrowsError(try WeightMatrix(validating: .q4_0, rows: 2, cols: 33, data: buffer, byteCount: 36, file: "f", tensor: "t")) {
            guard case TSLMError.invalidShape(file: "f", tensor: "t", shape: _, reason: _) = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try WeightMatrix(validating: .f16, rows: 2, cols: 32, data: buffer, byteCount: 64, file: "f", tensor: "t")) {
            guard case TSLMError.sizeMismatch(file: "f", tensor: "t", expected: 128, actual: 64) = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertThrowsError(try WeightMatrix(validating: .f32, rows: -1, cols: 32, data: buffer, byteCount: 0, file: "f", tensor: "t"))
        XCTAssertThrowsError(try WeightMatrix(validating: .f32, rows: Int.max, cols: Int.max, data: buffer, byteCount: 0, file: "f", tensor: "t"))
    }

    func testActivationQuantizationMatchesReference() {
        var rng = SplitMix64(seed: 6)
        var x = rng.floats(32 * 8, scale: 3)
        x[5] = .nan
        x[40] = 0; for i in 64..<96 { x[i] = 0 }  // an all-zero block
        x[100] = 1e-30
        let act = QuantizedActivations(tokens: 1, blocks: 8)
        defer { act.deallocate() }
        act.quantize(token: 0, x)
        var q = [Int8](repeating: 0, count: 32)
        for b in 0..<8 {
            let (d, s) = x.withUnsafeBufferPointer { Reference.quantizeActivationBlock($0.baseAddress! + 32 * b, into: &q) }
            XCTAssertEqual(act.scales[b], d, "block \(b) scale")
            XCTAssertEqual(act.sums[b], d * Float(s), "block \(b) sum")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: act.quants + 32 * b, count: 32)), q, "block \(b) quants")
        }
    }
}
