#if arch(x86_64) && TSLM_X86_AVX512
import _Builtin_intrinsics.intel
import CCPUFeatures

/// The decode row dots of q4_0 and q8_0 weights repacked 16 rows at a time
/// (`TSLMKernels.InterleavedRows` documents the layout), for CPUs with AVX-512 VNNI: one 32-bit
/// lane per row, so a block of 32 columns × 16 rows is a few loads, `vpdpbusd` (4 columns
/// each) and one f32 update for all 16 rows, where the one-row AVX2 kernels spend about as much
/// on each row.
///
/// Per block and row the integer sum Σ q_w·q_x is exact; the row's result is what `RowDot.q4_0`
/// and `RowDot.q8_0Wide` compute, up to the order of the f32 sums.
public enum RowDotVNNI {
    /// Bytes ahead that the kernel prefetches into L1 and into L2, as the one-row kernels do
    /// (`RowDot.prefetchDistance`, `RowDot.l2PrefetchDistance`).
    static let l1Distance = 4096
    static let l2Distance = 16384

    /// y[r] = row r of the 16-row group · one token's 8-bit activations, r in 0..<16. `nibbles`
    /// holds the group's `blocks` blocks of 256 bytes (64-byte aligned), `scales` its 16 f16
    /// scales per block (32 bytes each); `xq`, `xd`, `xs` are the token's quants, scales and
    /// scaled block sums d_x·Σ q_x (`QuantizedActivations`).
    public static func q4_0Group(nibbles: UnsafeRawPointer, scales: UnsafeRawPointer, blocks: Int,
                                 _ xq: UnsafePointer<Int8>, _ xd: UnsafePointer<Float>, _ xs: UnsafePointer<Float>,
                                 _ y: UnsafeMutablePointer<Float>) {
        let low = _mm512_set1_epi8(0x0F)
        let zero = _mm512_setzero_si512()
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps()
        var b = 0
        while b < blocks {
            let p = nibbles + 256 * b
            prefetch(p, lines: 4)
            let x = xq + 32 * b
            // Word j of each lane: columns 4j ..< 4j + 4 in its low nibbles, 16 + 4j ..< 20 + 4j
            // in its high ones.
            let n0 = _mm512_load_si512(p), n1 = _mm512_load_si512(p + 64)
            let n2 = _mm512_load_si512(p + 128), n3 = _mm512_load_si512(p + 192)
            var i0 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(n0, low), broadcast(x))
            var i1 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(n1, low), broadcast(x + 4))
            var i2 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(n2, low), broadcast(x + 8))
            var i3 = _mm512_dpbusd_epi32(zero, _mm512_and_si512(n3, low), broadcast(x + 12))
            i0 = _mm512_dpbusd_epi32(i0, _mm512_and_si512(_mm512_srli_epi32(n0, 4), low), broadcast(x + 16))
            i1 = _mm512_dpbusd_epi32(i1, _mm512_and_si512(_mm512_srli_epi32(n1, 4), low), broadcast(x + 20))
            i2 = _mm512_dpbusd_epi32(i2, _mm512_and_si512(_mm512_srli_epi32(n2, 4), low), broadcast(x + 24))
            i3 = _mm512_dpbusd_epi32(i3, _mm512_and_si512(_mm512_srli_epi32(n3, 4), low), broadcast(x + 28))
            let dot = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_add_epi32(i0, i1), _mm512_add_epi32(i2, i3)))
            let d = _mm512_cvtph_ps((scales + 32 * b).loadUnaligned(as: __m256i.self))
            let t = _mm512_fmsub_ps(_mm512_set1_ps(xd[b]), dot, _mm512_set1_ps(8 * xs[b]))
            if b & 1 == 0 { acc0 = _mm512_fmadd_ps(d, t, acc0) } else { acc1 = _mm512_fmadd_ps(d, t, acc1) }
            b += 1
        }
        _mm512_storeu_ps(y, _mm512_add_ps(acc0, acc1))
    }

    /// y[r] = row r of the 16-row q8_0 group · one token's 16-bit activations, r in 0..<16, as
    /// Σ_b d_w·d_x·Σ q_w·q_x. `weights` holds the group's `blocks` blocks of 512 bytes (64-byte
    /// aligned), `scales` its 16 f16 scales per block; the token's quants x = 256·h + l come as
    /// byte planes (`IntegerGemm.splitWords`): `low` the bytes l, `high` the bytes h + 128, both
    /// unsigned (`vpdpbusd`'s unsigned operand, the weights its signed one), and `xd` its scales.
    /// Σ w·(h + 128) less 128·Σ w (one more `vpdpbusd` per 4 columns, against a constant 128) is
    /// Σ w·h; |Σ w·h| ≤ 32·128·128, so 256·Σ w·h + Σ w·l fits the int32 lanes.
    public static func q8_0Group(weights: UnsafeRawPointer, scales: UnsafeRawPointer, blocks: Int,
                                 low: UnsafePointer<UInt8>, high: UnsafePointer<UInt8>, _ xd: UnsafePointer<Float>,
                                 _ y: UnsafeMutablePointer<Float>) {
        let offset = _mm512_set1_epi8(-128)  // the bytes 0x80: 128 as vpdpbusd's unsigned operand
        let zero = _mm512_setzero_si512()
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps()
        var b = 0
        while b < blocks {
            let p = weights + 512 * b
            prefetch(p, lines: 8)
            let xl = low + 32 * b, xh = high + 32 * b
            var l0 = zero, l1 = zero, h0 = zero, h1 = zero, c0 = zero, c1 = zero
            for j in stride(from: 0, to: 8, by: 2) {
                let w0 = _mm512_load_si512(p + 64 * j), w1 = _mm512_load_si512(p + 64 * j + 64)
                l0 = _mm512_dpbusd_epi32(l0, broadcast(xl + 4 * j), w0)
                l1 = _mm512_dpbusd_epi32(l1, broadcast(xl + 4 * j + 4), w1)
                h0 = _mm512_dpbusd_epi32(h0, broadcast(xh + 4 * j), w0)
                h1 = _mm512_dpbusd_epi32(h1, broadcast(xh + 4 * j + 4), w1)
                c0 = _mm512_dpbusd_epi32(c0, offset, w0)
                c1 = _mm512_dpbusd_epi32(c1, offset, w1)
            }
            let h = _mm512_sub_epi32(_mm512_add_epi32(h0, h1), _mm512_add_epi32(c0, c1))
            let s = _mm512_add_epi32(_mm512_slli_epi32(h, 8), _mm512_add_epi32(l0, l1))
            let d = _mm512_cvtph_ps((scales + 32 * b).loadUnaligned(as: __m256i.self))
            let t = _mm512_mul_ps(_mm512_cvtepi32_ps(s), _mm512_set1_ps(xd[b]))
            if b & 1 == 0 { acc0 = _mm512_fmadd_ps(d, t, acc0) } else { acc1 = _mm512_fmadd_ps(d, t, acc1) }
            b += 1
        }
        _mm512_storeu_ps(y, _mm512_add_ps(acc0, acc1))
    }

    /// Prefetches the `lines` cache lines of a block `l1Distance` ahead into L1 and `l2Distance`
    /// ahead into L2.
    @inline(__always) static func prefetch(_ p: UnsafeRawPointer, lines: Int) {
        for k in 0..<lines {
            cpufeat_prefetch(p + l1Distance + 64 * k)
            cpufeat_prefetch_l2(p + l2Distance + 64 * k)
        }
    }

    /// The 4 bytes at `p` in every 32-bit lane.
    @inline(__always) static func broadcast<T>(_ p: UnsafePointer<T>) -> __m512i {
        _mm512_set1_epi32(UnsafeRawPointer(p).loadUnaligned(as: Int32.self))
    }
}
#endif
