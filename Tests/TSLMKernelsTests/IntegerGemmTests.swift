import XCTest
import TSLMFormat
@testable import TSLMKernels
import TSLMTestSupport

/// The integer prefill GEMM (`IntegerGemm`, AVX-512 VNNI) against its scalar twin,
/// `Reference.matmulQuantizedActivations` (the same activation quantization, sums in `Double`),
/// and against the row-dot path of decoding.
extension MatrixKernelTests {
    func testIntegerGemmMatchesQuantizedReference() throws {
        try XCTSkipUnless(Kernels.integerGemmAvailable, "this CPU or build has no AVX-512 VNNI")
        var rng = SplitMix64(seed: 47)
        // Rows that fill no whole panel of 16, token counts that fill no whole tile of 8,
        // several panels, one block, long rows, unaligned weights; both ways of splitting the
        // work (panels; tokens when the panels are few).
        let cases: [(DType, Int, Int, Int)] = [
            (.q4_0, 1, 32, 8), (.q4_0, 17, 64, 9), (.q4_0, 16, 576, 16), (.q4_0, 300, 96, 14),
            (.q4_0, 5, 2304, 37), (.q4_0, 64, 8192, 8), (.q8_0, 19, 1600, 7 + 8), (.q8_0, 1, 32, 8),
            (.q8_0, 35, 576, 23), (.q8_0, 200, 64, 200), (.q8_0, 48, 4096, 11),
        ]
        XCTAssertTrue(Kernels.integerGemm)
        for (dtype, rows, cols, n) in cases {
            let m = TestMatrix(random: &rng, dtype: dtype, rows: rows, cols: cols, offset: Int(rng.next() % 3))
            let x = mixedActivations(&rng, n: n, cols: cols)
            let (want, mag) = quantizedReference(m, x, n: n)
            for pool in Self.pools {
                var y = [Float](repeating: .nan, count: n * rows)
                Kernels.matmul(m.matrix, x, n: n, &y, pool: pool)
                assertClose(y, want, scale: mag, tolerance: Tolerance.sameQuantization,
                            "integer gemm \(dtype) \(rows)x\(cols) n=\(n) \(pool.threads)t")
            }
        }
    }

    func testIntegerGemmMatchesRowDotsWithEightBitQ8Activations() throws {
        // TSLM_Q8_ACTIVATIONS=8: q8_0 runs through the bytes kernel as q4_0 does; the row dots
        // of decoding, with the same 8-bit activations, are the reference.
        try XCTSkipUnless(Kernels.integerGemmAvailable, "this CPU or build has no AVX-512 VNNI")
        var rng = SplitMix64(seed: 53)
        Kernels.q8_0WideActivations = false
        defer { Kernels.q8_0WideActivations = true }
        for (rows, cols, n) in [(33, 96, 9), (16, 1024, 24), (3, 64, 8)] {
            let m = TestMatrix(random: &rng, dtype: .q8_0, rows: rows, cols: cols, offset: 1)
            let x = rng.floats(n * cols, scale: 3)
            var gemm = [Float](repeating: .nan, count: n * rows), rowdot = gemm
            Kernels.matmul(m.matrix, x, n: n, &gemm, pool: Self.pools[1])
            Kernels.prefillGemm = false
            Kernels.matmul(m.matrix, x, n: n, &rowdot, pool: Self.pools[1])
            Kernels.prefillGemm = true
            var mag = [Float]()
            for i in 0..<n { mag += magnitudes(m, Array(x[(i * cols)..<((i + 1) * cols)])) }
            assertClose(gemm, rowdot, scale: mag, tolerance: Tolerance.sameQuantization, "q8_0 8-bit \(rows)x\(cols) n=\(n)")
            // And it is not the 16-bit result: the mode switch took effect.
            Kernels.q8_0WideActivations = true
            var wide = [Float](repeating: .nan, count: n * rows)
            Kernels.matmul(m.matrix, x, n: n, &wide, pool: nil)
            Kernels.q8_0WideActivations = false
            XCTAssertNotEqual(gemm, wide)
        }
    }

    func testIntegerGemmPacksEveryRowOfAPanel() {
        // The packed layout itself (portable: no VNNI needed): each weight lands in its row's
        // lane of its group of 4 columns, with the row's scale and −128·Σw of each block.
        var rng = SplitMix64(seed: 59)
        for dtype in [DType.q4_0, .q8_0] {
            let m = TestMatrix(random: &rng, dtype: dtype, rows: 11, cols: 64)
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 2 * IntegerGemm.blockBytes, alignment: 64)
            defer { buffer.deallocate() }
            IntegerGemm.pack(m.matrix, rows: 0..<11, into: buffer)
            for r in 0..<16 {
                let row = r < 11 ? m.row(r) : [Float](repeating: 0, count: 64)
                for b in 0..<2 {
                    let block = buffer + b * IntegerGemm.blockBytes
                    let d = block.load(fromByteOffset: IntegerGemm.scaleOffset + 4 * r, as: Float.self)
                    var sum: Int32 = 0
                    for k in 0..<32 {
                        let q = Int32(block.load(fromByteOffset: (k / 4) * 64 + 4 * r + k % 4, as: Int8.self))
                        sum += q
                        XCTAssertEqual(Float(q) * d, row[32 * b + k], "\(dtype) row \(r) col \(32 * b + k)")
                    }
                    XCTAssertEqual(block.load(fromByteOffset: IntegerGemm.sumOffset + 4 * r, as: Int32.self), -128 * sum, "\(dtype) row \(r)")
                    if r >= 11 { XCTAssertEqual(d, 0) }
                }
            }
        }
    }

    func testSplitWordsRebuildsEveryValue() {
        // 256·(h − 128) + l gives back each 16-bit quant, the extremes included.
        let values: [Int16] = [0, 1, -1, 127, -128, 255, 256, -256, 32767, -32767, -32768, 12345, -4321]
        var low = [UInt8](repeating: 0, count: values.count), high = low
        low.withUnsafeMutableBytes { l in
            high.withUnsafeMutableBytes { h in IntegerGemm.splitWords(values, count: values.count, low: l.baseAddress!, high: h.baseAddress!) }
        }
        for i in values.indices {
            XCTAssertEqual(256 * (Int(high[i]) - 128) + Int(low[i]), Int(values[i]), "\(values[i])")
        }
    }
}
