#if arch(x86_64) && TSLM_X86_AVX512
import _Builtin_intrinsics.intel

/// The prefill GEMM's inner loops for CPUs with AVX-512: this module is compiled for AVX-512F
/// (its code may use zmm registers anywhere), so it is only entered after `CPUFeatures` has
/// found AVX-512 on the CPU and in the OS's saved state. `TSLMKernels.Gemm.runPacked` calls it
/// once per packed weight panel (`multiply`) or, for f32 (and f16) rows read in place, per row
/// group (`multiplyRows`).
///
/// Measured per core (`tslm bench --kernels`, 1 thread, 128 tokens, f16 weights of the 1B
/// shape), against ~168 GFLOP/s for bare 512-bit FMAs on the Xeon VM, interleaved: 93–105
/// GFLOP/s unpacked (four row and four token pointers, and the `_mm256_hadd_ps` reduction
/// described at `pairs`), 102–113 packed.
public enum GemmPanelAVX512 {
    /// Rows of weights per register tile.
    public static let tileRows = 4
    /// Tokens per register tile: 4 × 4 = 16 accumulators of 16 lanes, 4 weight and 4
    /// activation loads per 16 FMAs. (A 4 × 6 tile needs 31 of the 32 zmm registers, and LLVM
    /// then kept a third of the accumulators on the stack and shuffled the rest between
    /// registers every iteration: 55–100 GFLOP/s per core against 167 for bare FMAs.)
    public static let tileTokens = 4

    /// `y[t·ldy + i] = Σ_k W[i, k] · X[t, k]` (added to `y` when `accumulate`) for rows i <
    /// `rows` and tokens t < `tokens`, over `chunks` chunks of 16 columns, from packed operands:
    /// row i's chunk c is the 16 floats at `weights + (i / 4)·quadFloats + 64·c + 16·(i % 4)`,
    /// token t's likewise in `x` (so a 4 × 4 tile reads 4 + 4 contiguous vectors per chunk from
    /// two pointers). Both hold whole quads, 64-byte aligned (rows and tokens past the last
    /// packed as zeros, their results dropped).
    public static func multiply(weights: UnsafePointer<Float>, x: UnsafePointer<Float>, chunks: Int, quadFloats: Int,
                                rows: Int, tokens: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        var t = 0
        while t < tokens {
            let xq = x + (t / 4) * quadFloats
            var i = 0
            while i < rows {
                let w = weights + (i / 4) * quadFloats
                tile(xq, chunks: chunks, y: y + t * ldy + i, ldy: ldy, rows: min(tileRows, rows - i),
                     tokens: min(tileTokens, tokens - t), accumulate: accumulate) { c, r in _mm512_load_ps(w + 64 * c + 16 * r) }
                i += tileRows
            }
            t += tileTokens
        }
    }

    /// One 4 × 4 tile over `chunks` chunks of 16 columns: the 4 tokens' chunk c from the packed
    /// quad `x`, row r's chunk c from `weight(c, r)` (packed or in place), 16 accumulators, the
    /// sums stored by `store`.
    @inline(__always)
    static func tile(_ x: UnsafePointer<Float>, chunks: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int, tokens: Int,
                     accumulate: Bool, weight: (_ chunk: Int, _ row: Int) -> __m512) {
        var c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c02 = _mm512_setzero_ps(), c03 = _mm512_setzero_ps()
        var c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps(), c12 = _mm512_setzero_ps(), c13 = _mm512_setzero_ps()
        var c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c22 = _mm512_setzero_ps(), c23 = _mm512_setzero_ps()
        var c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps(), c32 = _mm512_setzero_ps(), c33 = _mm512_setzero_ps()
        for c in 0..<chunks {
            let px = x + 64 * c
            let v0 = _mm512_load_ps(px), v1 = _mm512_load_ps(px + 16), v2 = _mm512_load_ps(px + 32), v3 = _mm512_load_ps(px + 48)
            let w0 = weight(c, 0)
            c00 = _mm512_fmadd_ps(w0, v0, c00); c10 = _mm512_fmadd_ps(w0, v1, c10)
            c20 = _mm512_fmadd_ps(w0, v2, c20); c30 = _mm512_fmadd_ps(w0, v3, c30)
            let w1 = weight(c, 1)
            c01 = _mm512_fmadd_ps(w1, v0, c01); c11 = _mm512_fmadd_ps(w1, v1, c11)
            c21 = _mm512_fmadd_ps(w1, v2, c21); c31 = _mm512_fmadd_ps(w1, v3, c31)
            let w2 = weight(c, 2)
            c02 = _mm512_fmadd_ps(w2, v0, c02); c12 = _mm512_fmadd_ps(w2, v1, c12)
            c22 = _mm512_fmadd_ps(w2, v2, c22); c32 = _mm512_fmadd_ps(w2, v3, c32)
            let w3 = weight(c, 3)
            c03 = _mm512_fmadd_ps(w3, v0, c03); c13 = _mm512_fmadd_ps(w3, v1, c13)
            c23 = _mm512_fmadd_ps(w3, v2, c23); c33 = _mm512_fmadd_ps(w3, v3, c33)
        }
        store(pairs(pairs(sums(c00, c01, c02, c03), sums(c10, c11, c12, c13)),
                    pairs(sums(c20, c21, c22, c23), sums(c30, c31, c32, c33))),
              y: y, ldy: ldy, rows: rows, tokens: tokens, accumulate: accumulate)
    }

    /// As `multiply`, with f32 weight rows read in place rather than packed: row i's `cols`
    /// floats at `weights + i·rowStride` bytes (any alignment; the last chunk's columns past
    /// `cols` are masked off, so nothing past a row is read). For rows with no reuse to pay for
    /// a packing copy: attention's keys in decode, a few tokens at a time. With `half`, the rows
    /// are f16 and `cols` a multiple of 16.
    public static func multiplyRows(_ weights: UnsafeRawPointer, half: Bool = false, rowStride: Int, rows: Int, cols: Int, x: UnsafePointer<Float>,
                                    quadFloats: Int, tokens: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        guard cols > 0 else { return }
        if half {
            // Whole chunks of f16, each converted as it is loaded: what packing would convert,
            // without the copies, where every row meets a single quad of tokens.
            rowTiles(weights, rowStride: rowStride, rows: rows, chunks: cols / 16, x: x, quadFloats: quadFloats, tokens: tokens,
                     y: y, ldy: ldy, accumulate: accumulate) { row, c in _mm512_cvtph_ps((row + 32 * c).loadUnaligned(as: __m256i.self)) }
            return
        }
        let chunks = (cols + 15) / 16
        let tail = __mmask16(truncatingIfNeeded: cols % 16 == 0 ? 0xFFFF : (1 << (cols % 16)) - 1)
        rowTiles(weights, rowStride: rowStride, rows: rows, chunks: chunks, x: x, quadFloats: quadFloats, tokens: tokens,
                 y: y, ldy: ldy, accumulate: accumulate) { row, c in _mm512_maskz_loadu_ps(c == chunks - 1 ? tail : 0xFFFF, row + 64 * c) }
    }

    /// The 4 × 4 tiles of `multiplyRows` over rows `rowStride` bytes apart from `weights`, chunk c
    /// of a row read by `load(row, c)`.
    @inline(__always)
    static func rowTiles(_ weights: UnsafeRawPointer, rowStride: Int, rows: Int, chunks: Int, x: UnsafePointer<Float>, quadFloats: Int,
                         tokens: Int, y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool,
                         load: (UnsafeRawPointer, Int) -> __m512) {
        var t = 0
        while t < tokens {
            let xq = x + (t / 4) * quadFloats
            var i = 0
            while i < rows {
                // Rows past the last repeat it (their results are dropped).
                let r0 = weights + i * rowStride
                let r1 = i + 1 < rows ? r0 + rowStride : r0
                let r2 = i + 2 < rows ? r0 + 2 * rowStride : r0
                let r3 = i + 3 < rows ? r0 + 3 * rowStride : r0
                tile(xq, chunks: chunks, y: y + t * ldy + i, ldy: ldy, rows: min(tileRows, rows - i),
                     tokens: min(tileTokens, tokens - t), accumulate: accumulate) { c, r in
                    load(r == 0 ? r0 : r == 1 ? r1 : r == 2 ? r2 : r3, c)
                }
                i += tileRows
            }
            t += tileTokens
        }
    }

    /// A tile's 16 sums (lane 4·t + i: row i, token t) into `y` (added when `accumulate`), rows
    /// < `rows` and tokens < `tokens` only.
    @inline(__always)
    static func store(_ sums: __m512, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int, tokens: Int, accumulate: Bool) {
        let rowMask = UInt32((1 << rows) - 1)
        for t in 0..<tokens {
            // Lanes 4·t ..< 4·t + rows, stored through a base 4·t floats before token t's row
            // (masked-off lanes are neither read nor written).
            let mask = __mmask16(truncatingIfNeeded: rowMask << (4 * t))
            let base = y + t * ldy - 4 * t
            let v = accumulate ? _mm512_add_ps(sums, _mm512_maskz_loadu_ps(mask, base)) : sums
            _mm512_mask_storeu_ps(base, mask, v)
        }
    }

    /// Lanes 0..<8 of u's and 8..<16 of v's pairwise sums, in order: [u0+u1, u2+u3, …, v14+v15].
    /// (Two-source permutes: every instruction here has an EVEX form, so the accumulators may
    /// live in any of the 32 zmm registers. The `_mm256_hadd_ps` reduction used before has only
    /// a VEX form, which reaches registers 0–15 alone: with it, LLVM kept the accumulators there
    /// and spilled one through the stack on every iteration of the tile's loop, a store-to-load
    /// chain that held the 4 × 4 tile at ~95 GFLOP/s per core.)
    @inline(__always)
    static func pairs(_ u: __m512, _ v: __m512) -> __m512 {
        let even = unsafeBitCast(SIMD16<Int32>(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), to: __m512i.self)
        let odd = unsafeBitCast(SIMD16<Int32>(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), to: __m512i.self)
        return _mm512_add_ps(_mm512_permutex2var_ps(u, even, v), _mm512_permutex2var_ps(u, odd, v))
    }

    /// The partial sums of four 16-lane vectors in groups of four lanes: lanes 4·j ..< 4·j + 4
    /// add up to the sum of the j-th vector.
    @inline(__always)
    static func sums(_ a: __m512, _ b: __m512, _ c: __m512, _ d: __m512) -> __m512 {
        pairs(pairs(a, b), pairs(c, d))
    }
}
#endif
