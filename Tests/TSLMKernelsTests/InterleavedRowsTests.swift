import XCTest
import TSLMFormat
@testable import TSLMKernels
import TSLMTestSupport

/// The q4_0 and q8_0 rows repacked 16 at a time (`InterleavedRows`, AVX-512 VNNI row dots of
/// decoding and the prefill GEMM's packing from them) against the scalar twin,
/// `Reference.matmulQuantizedActivations`, and against the stored rows.
extension MatrixKernelTests {
    func testInterleavedRowsMatchQuantizedReference() throws {
        try XCTSkipUnless(Kernels.integerGemmAvailable, "this CPU or build has no AVX-512 VNNI")
        var rng = SplitMix64(seed: 61)
        // One group, one block; several groups and long rows; token counts for the row dots
        // (below `gemmMinTokens`) and for the GEMM; unaligned stored rows.
        let shapes: [(Int, Int, Int)] = [(16, 32, 1), (32, 576, 1), (48, 1536, 3), (160, 96, 7), (64, 2048, 1), (32, 64, 40), (48, 96, 12)]
        for dtype in [DType.q4_0, .q8_0] {
        for (rows, cols, n) in shapes {
            let m = TestMatrix(random: &rng, dtype: dtype, rows: rows, cols: cols, offset: Int(rng.next() % 3))
            let w = m.matrix.interleavingRows()
            XCTAssertNotNil(w.interleaved, "\(rows)x\(cols)")
            let x = mixedActivations(&rng, n: n, cols: cols)
            let (want, mag) = quantizedReference(m, x, n: n)
            for pool in Self.pools {
                var y = [Float](repeating: .nan, count: n * rows)
                Kernels.matmul(w, x, n: n, &y, pool: pool)
                assertClose(y, want, scale: mag, tolerance: Tolerance.sameQuantization,
                            "interleaved \(dtype) \(rows)x\(cols) n=\(n) \(pool.threads)t")
            }
        }
        }
    }

    func testInterleavedRowsKeepTheStoredBlocks() throws {
        try XCTSkipUnless(Kernels.integerGemmAvailable, "this CPU or build has no AVX-512 VNNI")
        var rng = SplitMix64(seed: 67)
        let m = TestMatrix(random: &rng, dtype: .q4_0, rows: 32, cols: 96, offset: 1)
        let il = try XCTUnwrap(InterleavedRows(m.matrix))
        XCTAssertEqual(il.groups, 2)
        XCTAssertEqual(il.blocks, 3)
        for r in 0..<32 {
            for b in 0..<3 {
                let stored = m.matrix.row(r) + BlockQ4_0.byteCount * b
                let (scale, low, high) = il.q4Block(group: r / 16, row: r % 16, b)
                XCTAssertEqual(scale, stored.loadUnaligned(as: UInt16.self))
                XCTAssertEqual(low, stored.loadUnaligned(fromByteOffset: 2, as: UInt64.self))
                XCTAssertEqual(high, stored.loadUnaligned(fromByteOffset: 10, as: UInt64.self))
            }
        }
        // Shapes it does not take: neither q4_0 nor q8_0, rows not a multiple of 16.
        XCTAssertNil(InterleavedRows(TestMatrix(random: &rng, dtype: .q4_1, rows: 16, cols: 32, offset: 0).matrix))
        XCTAssertNil(InterleavedRows(TestMatrix(random: &rng, dtype: .q4_0, rows: 17, cols: 32, offset: 0).matrix))
        Kernels.interleavedRows = false
        defer { Kernels.interleavedRows = true }
        XCTAssertNil(m.matrix.interleavingRows().interleaved)
    }
}
