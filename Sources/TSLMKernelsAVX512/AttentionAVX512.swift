#if arch(x86_64) && TSLM_X86_AVX512
import _Builtin_intrinsics.intel

/// Prefill attention's two matrix products as outer products on AVX-512 (no horizontal sums:
/// with head_dim = 64 the dot-product GEMM spent much of Q·Kᵀ in them). Entered only where
/// `CPUFeatures` found AVX-512F (`Kernels.gemmAVX512`).
public enum AttentionAVX512 {
    /// Queries per register tile of `scores`: 32 keys (2 zmm) × 12 queries = 24 accumulators.
    public static let scoreQueries = 12
    /// Queries per register tile of `weightedValues`: 64 dimensions (4 zmm) × 6 queries.
    public static let valueQueries = 6

    /// s[t·lds + j] = Σ_d q[t·ldq + d] · keysT[d·keyStride + j] for keys j < `length` and queries
    /// t < `queries`: the keys transposed (component d of every key in one row), so that 16
    /// keys' components d are one load and each query's component a broadcast.
    public static func scores(keysT: UnsafePointer<Float>, keyStride: Int, length: Int, dim: Int,
                              q: UnsafePointer<Float>, ldq: Int, queries: Int, s: UnsafeMutablePointer<Float>, lds: Int) {
        var j0 = 0
        while j0 < length {
            let m0 = mask(length - j0), m1 = mask(length - j0 - 16)
            var t0 = 0
            while t0 < queries {
                let nt = min(scoreQueries, queries - t0)
                scoreTile(keysT + j0, keyStride: keyStride, dim: dim, q: q + t0 * ldq, ldq: ldq, queries: nt,
                          s: s + t0 * lds + j0, lds: lds, m0, m1)
                t0 += nt
            }
            j0 += 32
        }
    }

    @inline(__always)
    static func scoreTile(_ k: UnsafePointer<Float>, keyStride: Int, dim: Int, q: UnsafePointer<Float>, ldq: Int, queries: Int,
                          s: UnsafeMutablePointer<Float>, lds: Int, _ m0: __mmask16, _ m1: __mmask16) {
        // Missing queries of a short tile repeat the first (their results are dropped).
        let at = { (t: Int) in tileRow(q, t, ldq, queries) }
        let (q0, q1, q2, q3, q4, q5) = (q, at(1), at(2), at(3), at(4), at(5))
        let (q6, q7, q8, q9, q10, q11) = (at(6), at(7), at(8), at(9), at(10), at(11))
        var a0 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps()
        var a4 = _mm512_setzero_ps(), b4 = _mm512_setzero_ps(), a5 = _mm512_setzero_ps(), b5 = _mm512_setzero_ps(), a6 = _mm512_setzero_ps(), b6 = _mm512_setzero_ps(), a7 = _mm512_setzero_ps(), b7 = _mm512_setzero_ps()
        var a8 = _mm512_setzero_ps(), b8 = _mm512_setzero_ps(), a9 = _mm512_setzero_ps(), b9 = _mm512_setzero_ps(), a10 = _mm512_setzero_ps(), b10 = _mm512_setzero_ps(), a11 = _mm512_setzero_ps(), b11 = _mm512_setzero_ps()
        var row = k
        for d in 0..<dim {
            let k0 = _mm512_maskz_loadu_ps(m0, row), k1 = _mm512_maskz_loadu_ps(m1, row + 16)
            let v0 = _mm512_set1_ps(q0[d]); a0 = _mm512_fmadd_ps(k0, v0, a0); b0 = _mm512_fmadd_ps(k1, v0, b0)
            let v1 = _mm512_set1_ps(q1[d]); a1 = _mm512_fmadd_ps(k0, v1, a1); b1 = _mm512_fmadd_ps(k1, v1, b1)
            let v2 = _mm512_set1_ps(q2[d]); a2 = _mm512_fmadd_ps(k0, v2, a2); b2 = _mm512_fmadd_ps(k1, v2, b2)
            let v3 = _mm512_set1_ps(q3[d]); a3 = _mm512_fmadd_ps(k0, v3, a3); b3 = _mm512_fmadd_ps(k1, v3, b3)
            let v4 = _mm512_set1_ps(q4[d]); a4 = _mm512_fmadd_ps(k0, v4, a4); b4 = _mm512_fmadd_ps(k1, v4, b4)
            let v5 = _mm512_set1_ps(q5[d]); a5 = _mm512_fmadd_ps(k0, v5, a5); b5 = _mm512_fmadd_ps(k1, v5, b5)
            let v6 = _mm512_set1_ps(q6[d]); a6 = _mm512_fmadd_ps(k0, v6, a6); b6 = _mm512_fmadd_ps(k1, v6, b6)
            let v7 = _mm512_set1_ps(q7[d]); a7 = _mm512_fmadd_ps(k0, v7, a7); b7 = _mm512_fmadd_ps(k1, v7, b7)
            let v8 = _mm512_set1_ps(q8[d]); a8 = _mm512_fmadd_ps(k0, v8, a8); b8 = _mm512_fmadd_ps(k1, v8, b8)
            let v9 = _mm512_set1_ps(q9[d]); a9 = _mm512_fmadd_ps(k0, v9, a9); b9 = _mm512_fmadd_ps(k1, v9, b9)
            let v10 = _mm512_set1_ps(q10[d]); a10 = _mm512_fmadd_ps(k0, v10, a10); b10 = _mm512_fmadd_ps(k1, v10, b10)
            let v11 = _mm512_set1_ps(q11[d]); a11 = _mm512_fmadd_ps(k0, v11, a11); b11 = _mm512_fmadd_ps(k1, v11, b11)
            row += keyStride
        }
        _mm512_mask_storeu_ps(s, m0, a0); _mm512_mask_storeu_ps(s + 16, m1, b0)
        if queries > 1 { _mm512_mask_storeu_ps(s + 1 * lds, m0, a1); _mm512_mask_storeu_ps(s + 1 * lds + 16, m1, b1) }
        if queries > 2 { _mm512_mask_storeu_ps(s + 2 * lds, m0, a2); _mm512_mask_storeu_ps(s + 2 * lds + 16, m1, b2) }
        if queries > 3 { _mm512_mask_storeu_ps(s + 3 * lds, m0, a3); _mm512_mask_storeu_ps(s + 3 * lds + 16, m1, b3) }
        if queries > 4 { _mm512_mask_storeu_ps(s + 4 * lds, m0, a4); _mm512_mask_storeu_ps(s + 4 * lds + 16, m1, b4) }
        if queries > 5 { _mm512_mask_storeu_ps(s + 5 * lds, m0, a5); _mm512_mask_storeu_ps(s + 5 * lds + 16, m1, b5) }
        if queries > 6 { _mm512_mask_storeu_ps(s + 6 * lds, m0, a6); _mm512_mask_storeu_ps(s + 6 * lds + 16, m1, b6) }
        if queries > 7 { _mm512_mask_storeu_ps(s + 7 * lds, m0, a7); _mm512_mask_storeu_ps(s + 7 * lds + 16, m1, b7) }
        if queries > 8 { _mm512_mask_storeu_ps(s + 8 * lds, m0, a8); _mm512_mask_storeu_ps(s + 8 * lds + 16, m1, b8) }
        if queries > 9 { _mm512_mask_storeu_ps(s + 9 * lds, m0, a9); _mm512_mask_storeu_ps(s + 9 * lds + 16, m1, b9) }
        if queries > 10 { _mm512_mask_storeu_ps(s + 10 * lds, m0, a10); _mm512_mask_storeu_ps(s + 10 * lds + 16, m1, b10) }
        if queries > 11 { _mm512_mask_storeu_ps(s + 11 * lds, m0, a11); _mm512_mask_storeu_ps(s + 11 * lds + 16, m1, b11) }
    }

    /// out[t·ldo + d] = Σ_j p[t·ldp + j] · value_j[d] for d < `dim` (a multiple of 64), queries
    /// t < `queries` and value rows j < `length` at `values + j·valueStride` bytes, f32 or
    /// binary16 (`half`): the rows in their cache layout, 64 components loaded once per row for 6
    /// queries' broadcast weights.
    public static func weightedValues(p: UnsafePointer<Float>, ldp: Int, queries: Int, length: Int, values: UnsafeRawPointer,
                                      valueStride: Int, half: Bool, dim: Int, out: UnsafeMutablePointer<Float>, ldo: Int) {
        var d0 = 0
        while d0 < dim {
            var t0 = 0
            while t0 < queries {
                let nt = min(valueQueries, queries - t0)
                if half {
                    valueTile(p + t0 * ldp, ldp: ldp, queries: nt, length: length, values: values + 2 * d0, valueStride: valueStride,
                              half: true, out: out + t0 * ldo + d0, ldo: ldo)
                } else {
                    valueTile(p + t0 * ldp, ldp: ldp, queries: nt, length: length, values: values + 4 * d0, valueStride: valueStride,
                              half: false, out: out + t0 * ldo + d0, ldo: ldo)
                }
                t0 += nt
            }
            d0 += 64
        }
    }

    @inline(__always)
    static func valueTile(_ p: UnsafePointer<Float>, ldp: Int, queries: Int, length: Int, values: UnsafeRawPointer, valueStride: Int,
                          half: Bool, out: UnsafeMutablePointer<Float>, ldo: Int) {
        // Missing queries of a short tile repeat the first (their results are dropped).
        let at = { (t: Int) in tileRow(p, t, ldp, queries) }
        let (p0, p1, p2, p3, p4, p5) = (p, at(1), at(2), at(3), at(4), at(5))
        var c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c02 = _mm512_setzero_ps(), c03 = _mm512_setzero_ps()
        var c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps(), c12 = _mm512_setzero_ps(), c13 = _mm512_setzero_ps()
        var c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c22 = _mm512_setzero_ps(), c23 = _mm512_setzero_ps()
        var c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps(), c32 = _mm512_setzero_ps(), c33 = _mm512_setzero_ps()
        var c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c42 = _mm512_setzero_ps(), c43 = _mm512_setzero_ps()
        var c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps(), c52 = _mm512_setzero_ps(), c53 = _mm512_setzero_ps()
        var row = values
        for j in 0..<length {
            let v0: __m512, v1: __m512, v2: __m512, v3: __m512
            if half {
                v0 = _mm512_cvtph_ps(row.loadUnaligned(as: __m256i.self))
                v1 = _mm512_cvtph_ps(row.loadUnaligned(fromByteOffset: 32, as: __m256i.self))
                v2 = _mm512_cvtph_ps(row.loadUnaligned(fromByteOffset: 64, as: __m256i.self))
                v3 = _mm512_cvtph_ps(row.loadUnaligned(fromByteOffset: 96, as: __m256i.self))
            } else {
                v0 = row.loadUnaligned(as: __m512.self)
                v1 = row.loadUnaligned(fromByteOffset: 64, as: __m512.self)
                v2 = row.loadUnaligned(fromByteOffset: 128, as: __m512.self)
                v3 = row.loadUnaligned(fromByteOffset: 192, as: __m512.self)
            }
            let w0 = _mm512_set1_ps(p0[j])
            c00 = _mm512_fmadd_ps(v0, w0, c00); c01 = _mm512_fmadd_ps(v1, w0, c01); c02 = _mm512_fmadd_ps(v2, w0, c02); c03 = _mm512_fmadd_ps(v3, w0, c03)
            let w1 = _mm512_set1_ps(p1[j])
            c10 = _mm512_fmadd_ps(v0, w1, c10); c11 = _mm512_fmadd_ps(v1, w1, c11); c12 = _mm512_fmadd_ps(v2, w1, c12); c13 = _mm512_fmadd_ps(v3, w1, c13)
            let w2 = _mm512_set1_ps(p2[j])
            c20 = _mm512_fmadd_ps(v0, w2, c20); c21 = _mm512_fmadd_ps(v1, w2, c21); c22 = _mm512_fmadd_ps(v2, w2, c22); c23 = _mm512_fmadd_ps(v3, w2, c23)
            let w3 = _mm512_set1_ps(p3[j])
            c30 = _mm512_fmadd_ps(v0, w3, c30); c31 = _mm512_fmadd_ps(v1, w3, c31); c32 = _mm512_fmadd_ps(v2, w3, c32); c33 = _mm512_fmadd_ps(v3, w3, c33)
            let w4 = _mm512_set1_ps(p4[j])
            c40 = _mm512_fmadd_ps(v0, w4, c40); c41 = _mm512_fmadd_ps(v1, w4, c41); c42 = _mm512_fmadd_ps(v2, w4, c42); c43 = _mm512_fmadd_ps(v3, w4, c43)
            let w5 = _mm512_set1_ps(p5[j])
            c50 = _mm512_fmadd_ps(v0, w5, c50); c51 = _mm512_fmadd_ps(v1, w5, c51); c52 = _mm512_fmadd_ps(v2, w5, c52); c53 = _mm512_fmadd_ps(v3, w5, c53)
            row += valueStride
        }
        store4(c00, c01, c02, c03, out + 0 * ldo)
        if queries > 1 { store4(c10, c11, c12, c13, out + 1 * ldo) }
        if queries > 2 { store4(c20, c21, c22, c23, out + 2 * ldo) }
        if queries > 3 { store4(c30, c31, c32, c33, out + 3 * ldo) }
        if queries > 4 { store4(c40, c41, c42, c43, out + 4 * ldo) }
        if queries > 5 { store4(c50, c51, c52, c53, out + 5 * ldo) }
    }

    @inline(__always) static func store4(_ a: __m512, _ b: __m512, _ c: __m512, _ d: __m512, _ o: UnsafeMutablePointer<Float>) {
        _mm512_storeu_ps(o, a); _mm512_storeu_ps(o + 16, b); _mm512_storeu_ps(o + 32, c); _mm512_storeu_ps(o + 48, d)
    }

    /// Row t of a tile's queries, `stride` floats apart from `p`: the first row for t ≥ `count`.
    @inline(__always) static func tileRow(_ p: UnsafePointer<Float>, _ t: Int, _ stride: Int, _ count: Int) -> UnsafePointer<Float> {
        count > t ? p + t * stride : p
    }

    /// Lanes 0 ..< min(16, max(0, n)).
    @inline(__always) static func mask(_ n: Int) -> __mmask16 {
        n >= 16 ? 0xFFFF : n <= 0 ? 0 : __mmask16(truncatingIfNeeded: (1 << n) - 1)
    }
}
#endif
