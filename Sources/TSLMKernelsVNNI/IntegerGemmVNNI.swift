#if arch(x86_64) && TSLM_X86_AVX512
import _Builtin_intrinsics.intel

/// The integer prefill GEMM's micro-kernels for CPUs with AVX-512 VNNI: 16 weight rows (one
/// zmm register, a lane per row) × 8 tokens. This module is compiled for AVX-512F and VNNI, so
/// it is only entered after `CPUFeatures` has found both (`Kernels.integerGemm`).
///
/// The weights come packed by `TSLMKernels.IntegerGemm` in panels of 16 rows, block (32
/// columns) after block, so that one 64-byte load holds the same few columns of all 16 rows:
///
/// 640 bytes per block: 8 groups of 4 columns, each 16 rows × 4 signed bytes (`vpdpbusd`'s
/// signed operand); then the 16 rows' f32 scales; then 16 int32 `-128 · Σ w` over the block's
/// 32 weights. The activations are 8-bit quants stored with their sign bit flipped (q + 128,
/// unsigned); the accumulator starts from the row's `-128 · Σ w`, which takes the 128 back out
/// at no cost. The 16-bit activations of q8_0 are split into two such byte planes (`split`).
///
/// Each block's integer dot products are exact; per block and token the int32 lanes are
/// converted to f32 and added with the product of the row's and the token's scales.
public enum IntegerGemmVNNI {
    /// Tokens per register tile: 8 int32 and 8 f32 accumulators.
    public static let tileTokens = 8

    /// y[t·ldy + r] = Σ_b wScale[r, b] · xScale[t, b] · Σ_k w[r, k] · x[t, k] for the packed
    /// panel's `rows` (≤ 16) rows and `tokens` (1 ... 8) tokens. Token t's quants start
    /// at `x + t · ldx` (`blocks · 32` bytes, sign bit flipped), its scales at `scales + t ·
    /// blocks`. Missing tokens of a short tile repeat the first (their results are dropped).
    public static func bytes(panel: UnsafeRawPointer, blocks: Int, x: UnsafePointer<UInt8>, ldx: Int,
                             scales: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
        let (x0, x1, x2, x3, x4, x5, x6, x7) = tile(x, ldx, tokens)
        let (s0, s1, s2, s3, s4, s5, s6, s7) = tile(scales, blocks, tokens)
        var f0 = _mm512_setzero_ps(), f1 = _mm512_setzero_ps(), f2 = _mm512_setzero_ps(), f3 = _mm512_setzero_ps()
        var f4 = _mm512_setzero_ps(), f5 = _mm512_setzero_ps(), f6 = _mm512_setzero_ps(), f7 = _mm512_setzero_ps()
        var p = panel
        for b in 0..<blocks {
            let start = _mm512_load_si512(p + 576)
            var i0 = start, i1 = start, i2 = start, i3 = start, i4 = start, i5 = start, i6 = start, i7 = start
            let o = 32 * b
            for g in 0..<8 {
                let w = _mm512_load_si512(p + 64 * g)
                let k = o + 4 * g
                i0 = _mm512_dpbusd_epi32(i0, broadcast(x0 + k), w); i1 = _mm512_dpbusd_epi32(i1, broadcast(x1 + k), w)
                i2 = _mm512_dpbusd_epi32(i2, broadcast(x2 + k), w); i3 = _mm512_dpbusd_epi32(i3, broadcast(x3 + k), w)
                i4 = _mm512_dpbusd_epi32(i4, broadcast(x4 + k), w); i5 = _mm512_dpbusd_epi32(i5, broadcast(x5 + k), w)
                i6 = _mm512_dpbusd_epi32(i6, broadcast(x6 + k), w); i7 = _mm512_dpbusd_epi32(i7, broadcast(x7 + k), w)
            }
            let d = _mm512_load_ps(p + 512)
            f0 = scaled(i0, d, s0[b], f0); f1 = scaled(i1, d, s1[b], f1); f2 = scaled(i2, d, s2[b], f2); f3 = scaled(i3, d, s3[b], f3)
            f4 = scaled(i4, d, s4[b], f4); f5 = scaled(i5, d, s5[b], f5); f6 = scaled(i6, d, s6[b], f6); f7 = scaled(i7, d, s7[b], f7)
            p += 640
        }
        store(f0, f1, f2, f3, f4, f5, f6, f7, y: y, ldy: ldy, rows: rows, tokens: tokens)
    }

    /// As `bytes` for 16-bit activations, each split into a low byte l (unsigned) and a high
    /// byte h (stored as h + 128, unsigned): x = 256·h + l, so Σ w·x = 256·Σ w·h + Σ w·l, two
    /// `vpdpbusd` per 4 columns (what one `vpdpwssd` on 16-bit weights would do, from the same
    /// 8-bit panel as `bytes`). Token t's low bytes start at `x + t · ldx`, its high bytes
    /// `blocks · 32` bytes later.
    public static func split(panel: UnsafeRawPointer, blocks: Int, x: UnsafePointer<UInt8>, ldx: Int,
                             scales: UnsafePointer<Float>, tokens: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
        let (x0, x1, x2, x3, x4, x5, x6, x7) = tile(x, ldx, tokens)
        let (s0, s1, s2, s3, s4, s5, s6, s7) = tile(scales, blocks, tokens)
        let high = blocks * 32
        var f0 = _mm512_setzero_ps(), f1 = _mm512_setzero_ps(), f2 = _mm512_setzero_ps(), f3 = _mm512_setzero_ps()
        var f4 = _mm512_setzero_ps(), f5 = _mm512_setzero_ps(), f6 = _mm512_setzero_ps(), f7 = _mm512_setzero_ps()
        var p = panel
        for b in 0..<blocks {
            let start = _mm512_load_si512(p + 576)
            var h0 = start, h1 = start, h2 = start, h3 = start, h4 = start, h5 = start, h6 = start, h7 = start
            let z = _mm512_setzero_si512()
            var l0 = z, l1 = z, l2 = z, l3 = z, l4 = z, l5 = z, l6 = z, l7 = z
            let o = 32 * b
            for g in 0..<8 {
                let w = _mm512_load_si512(p + 64 * g)
                let k = o + 4 * g, kh = k + high
                l0 = _mm512_dpbusd_epi32(l0, broadcast(x0 + k), w); h0 = _mm512_dpbusd_epi32(h0, broadcast(x0 + kh), w)
                l1 = _mm512_dpbusd_epi32(l1, broadcast(x1 + k), w); h1 = _mm512_dpbusd_epi32(h1, broadcast(x1 + kh), w)
                l2 = _mm512_dpbusd_epi32(l2, broadcast(x2 + k), w); h2 = _mm512_dpbusd_epi32(h2, broadcast(x2 + kh), w)
                l3 = _mm512_dpbusd_epi32(l3, broadcast(x3 + k), w); h3 = _mm512_dpbusd_epi32(h3, broadcast(x3 + kh), w)
                l4 = _mm512_dpbusd_epi32(l4, broadcast(x4 + k), w); h4 = _mm512_dpbusd_epi32(h4, broadcast(x4 + kh), w)
                l5 = _mm512_dpbusd_epi32(l5, broadcast(x5 + k), w); h5 = _mm512_dpbusd_epi32(h5, broadcast(x5 + kh), w)
                l6 = _mm512_dpbusd_epi32(l6, broadcast(x6 + k), w); h6 = _mm512_dpbusd_epi32(h6, broadcast(x6 + kh), w)
                l7 = _mm512_dpbusd_epi32(l7, broadcast(x7 + k), w); h7 = _mm512_dpbusd_epi32(h7, broadcast(x7 + kh), w)
            }
            let d = _mm512_load_ps(p + 512)
            f0 = scaled(join(h0, l0), d, s0[b], f0); f1 = scaled(join(h1, l1), d, s1[b], f1)
            f2 = scaled(join(h2, l2), d, s2[b], f2); f3 = scaled(join(h3, l3), d, s3[b], f3)
            f4 = scaled(join(h4, l4), d, s4[b], f4); f5 = scaled(join(h5, l5), d, s5[b], f5)
            f6 = scaled(join(h6, l6), d, s6[b], f6); f7 = scaled(join(h7, l7), d, s7[b], f7)
            p += 640
        }
        store(f0, f1, f2, f3, f4, f5, f6, f7, y: y, ldy: ldy, rows: rows, tokens: tokens)
    }

    /// 256 · high + low: |Σ w·h| ≤ 32 · 128 · 127 per block, so the int32 lanes cannot overflow.
    @inline(__always) static func join(_ high: __m512i, _ low: __m512i) -> __m512i {
        _mm512_add_epi32(_mm512_slli_epi32(high, 8), low)
    }

    /// The rows of a tile's 8 tokens, `stride` elements apart from `p`; tokens past `tokens`
    /// repeat the first.
    @inline(__always)
    static func tile<T>(_ p: UnsafePointer<T>, _ stride: Int, _ tokens: Int)
        -> (UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>,
            UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>) {
        func at(_ i: Int) -> UnsafePointer<T> { tokens > i ? p + i * stride : p }
        return (p, at(1), at(2), at(3), at(4), at(5), at(6), at(7))
    }

    /// The 4 bytes at `p` in every 32-bit lane.
    @inline(__always) static func broadcast<T>(_ p: UnsafePointer<T>) -> __m512i {
        _mm512_set1_epi32(UnsafeRawPointer(p).loadUnaligned(as: Int32.self))
    }

    /// acc + f32(i) · (d · s).
    @inline(__always) static func scaled(_ i: __m512i, _ d: __m512, _ s: Float, _ acc: __m512) -> __m512 {
        _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(d, _mm512_set1_ps(s)), acc)
    }

    @inline(__always)
    static func store(_ f0: __m512, _ f1: __m512, _ f2: __m512, _ f3: __m512, _ f4: __m512, _ f5: __m512, _ f6: __m512,
                      _ f7: __m512, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int, tokens: Int) {
        let mask = __mmask16(truncatingIfNeeded: (1 << rows) - 1)
        _mm512_mask_storeu_ps(y, mask, f0)
        if tokens > 1 { _mm512_mask_storeu_ps(y + ldy, mask, f1) }
        if tokens > 2 { _mm512_mask_storeu_ps(y + 2 * ldy, mask, f2) }
        if tokens > 3 { _mm512_mask_storeu_ps(y + 3 * ldy, mask, f3) }
        if tokens > 4 { _mm512_mask_storeu_ps(y + 4 * ldy, mask, f4) }
        if tokens > 5 { _mm512_mask_storeu_ps(y + 5 * ldy, mask, f5) }
        if tokens > 6 { _mm512_mask_storeu_ps(y + 6 * ldy, mask, f6) }
        if tokens > 7 { _mm512_mask_storeu_ps(y + 7 * ldy, mask, f7) }
    }
}
#endif
