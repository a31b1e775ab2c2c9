#if arch(x86_64) && TSLM_X86_AVX512
import _Builtin_intrinsics.intel

/// The prefill GEMM's inner loops for CPUs with AVX-512: this module is compiled for AVX-512F
/// (its code may use zmm registers anywhere), so it is only entered after `CPUFeatures` has
/// found AVX-512 on the CPU and in the OS's saved state. `TSLMKernels.Gemm` calls it once per
/// converted weight panel.
public enum GemmPanelAVX512 {
    /// Rows of weights per register tile.
    public static let tileRows = 4
    /// Tokens per register tile: 4 × 4 = 16 accumulators of 16 lanes, 4 weight and 4
    /// activation loads per 16 FMAs. (A 4 × 6 tile needs 31 of the 32 zmm registers, and LLVM
    /// then kept a third of the accumulators on the stack and shuffled the rest between
    /// registers every iteration: 55–100 GFLOP/s per core against 167 for bare FMAs.)
    public static let tileTokens = 4

    /// `y[t·ldy + i] = Σ_k panel[i·stride + k] · x[t·ldx + k]` (added to `y` when `accumulate`)
    /// for rows i < `rows` and tokens t in `tokens`, over `count` columns. `panel` holds
    /// `rows` rounded up to a multiple of 4 rows (the extra rows zero, their results dropped),
    /// each 64-byte aligned (`stride` a multiple of 16 floats).
    public static func multiply(panel: UnsafePointer<Float>, stride: Int, rows: Int, count: Int,
                                x: UnsafePointer<Float>, ldx: Int, tokens: Range<Int>,
                                y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let padded = (rows + tileRows - 1) / tileRows * tileRows
        var t = tokens.lowerBound
        while t < tokens.upperBound {
            let nt = min(tileTokens, tokens.upperBound - t)
            // Missing tokens of the last group repeat the first (results dropped).
            let x0 = x + t * ldx
            let x1 = nt > 1 ? x0 + ldx : x0, x2 = nt > 2 ? x0 + 2 * ldx : x0, x3 = nt > 3 ? x0 + 3 * ldx : x0
            var q = 0
            while q < padded {
                tile(panel + q * stride, stride: stride, x0, x1, x2, x3, count: count,
                     y: y + t * ldy + q, ldy: ldy, rows: min(tileRows, rows - q), tokens: nt, accumulate: accumulate)
                q += tileRows
            }
            t += nt
        }
    }

    @inline(__always)
    static func tile(_ a: UnsafePointer<Float>, stride: Int, _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
                     _ x2: UnsafePointer<Float>, _ x3: UnsafePointer<Float>, count: Int, y: UnsafeMutablePointer<Float>,
                     ldy: Int, rows: Int, tokens: Int, accumulate: Bool) {
        let a0 = a, a1 = a + stride, a2 = a + 2 * stride, a3 = a + 3 * stride
        var c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c02 = _mm512_setzero_ps(), c03 = _mm512_setzero_ps()
        var c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps(), c12 = _mm512_setzero_ps(), c13 = _mm512_setzero_ps()
        var c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c22 = _mm512_setzero_ps(), c23 = _mm512_setzero_ps()
        var c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps(), c32 = _mm512_setzero_ps(), c33 = _mm512_setzero_ps()
        @inline(__always) func step(_ mask: __mmask16, _ k: Int) {
            let v0 = _mm512_maskz_loadu_ps(mask, x0 + k), v1 = _mm512_maskz_loadu_ps(mask, x1 + k)
            let v2 = _mm512_maskz_loadu_ps(mask, x2 + k), v3 = _mm512_maskz_loadu_ps(mask, x3 + k)
            let w0 = _mm512_maskz_loadu_ps(mask, a0 + k)
            c00 = _mm512_fmadd_ps(w0, v0, c00); c10 = _mm512_fmadd_ps(w0, v1, c10)
            c20 = _mm512_fmadd_ps(w0, v2, c20); c30 = _mm512_fmadd_ps(w0, v3, c30)
            let w1 = _mm512_maskz_loadu_ps(mask, a1 + k)
            c01 = _mm512_fmadd_ps(w1, v0, c01); c11 = _mm512_fmadd_ps(w1, v1, c11)
            c21 = _mm512_fmadd_ps(w1, v2, c21); c31 = _mm512_fmadd_ps(w1, v3, c31)
            let w2 = _mm512_maskz_loadu_ps(mask, a2 + k)
            c02 = _mm512_fmadd_ps(w2, v0, c02); c12 = _mm512_fmadd_ps(w2, v1, c12)
            c22 = _mm512_fmadd_ps(w2, v2, c22); c32 = _mm512_fmadd_ps(w2, v3, c32)
            let w3 = _mm512_maskz_loadu_ps(mask, a3 + k)
            c03 = _mm512_fmadd_ps(w3, v0, c03); c13 = _mm512_fmadd_ps(w3, v1, c13)
            c23 = _mm512_fmadd_ps(w3, v2, c23); c33 = _mm512_fmadd_ps(w3, v3, c33)
        }
        var k = 0
        while k + 16 <= count {
            step(0xFFFF, k)
            k += 16
        }
        // The last columns (count not a multiple of 16) through masked loads, which read nothing
        // past the mask.
        if k < count { step(__mmask16((1 << (count - k)) - 1), k) }
        store(sum4(c00, c01, c02, c03), y, rows: rows, accumulate: accumulate)
        if tokens > 1 { store(sum4(c10, c11, c12, c13), y + ldy, rows: rows, accumulate: accumulate) }
        if tokens > 2 { store(sum4(c20, c21, c22, c23), y + 2 * ldy, rows: rows, accumulate: accumulate) }
        if tokens > 3 { store(sum4(c30, c31, c32, c33), y + 3 * ldy, rows: rows, accumulate: accumulate) }
    }

    @inline(__always)
    static func store(_ s: SIMD4<Float>, _ out: UnsafeMutablePointer<Float>, rows: Int, accumulate: Bool) {
        for i in 0..<rows { out[i] = accumulate ? out[i] + s[i] : s[i] }
    }

    /// The horizontal sums of four 16-lane vectors, as one 4-lane vector.
    @inline(__always)
    static func sum4(_ a: __m512, _ b: __m512, _ c: __m512, _ d: __m512) -> SIMD4<Float> {
        func half(_ v: __m512) -> __m256 {
            let s = unsafeBitCast(v, to: SIMD16<Float>.self)
            return unsafeBitCast(s.lowHalf + s.highHalf, to: __m256.self)
        }
        let ab = _mm256_hadd_ps(half(a), half(b)), cd = _mm256_hadd_ps(half(c), half(d))
        let s: SIMD8<Float> = unsafeBitCast(_mm256_hadd_ps(ab, cd), to: SIMD8<Float>.self)
        return s.lowHalf + s.highHalf
    }
}
#endif
