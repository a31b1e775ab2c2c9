#if arch(x86_64) && TSLM_X86_AVX512
import _Builtin_intrinsics.intel

/// `Kernels.softmaxPart` with 16-lane exponentials, for CPUs with AVX-512 (entered only after
/// `CPUFeatures` found it, as `GemmPanelAVX512`). Prefill attention over long prompts spends a
/// tenth of its time here.
public enum SoftmaxAVX512 {
    /// x[i] = exp(scale·x[i] − m) in place, m = max scale·x; returns (m, Σ x[i]).
    public static func part(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float) -> (max: Float, sum: Float) {
        let sv = _mm512_set1_ps(scale), negativeInfinity = _mm512_set1_ps(-.infinity)
        var mx = negativeInfinity
        var i = 0
        while i + 16 <= count {
            let v = _mm512_mul_ps(_mm512_loadu_ps(x + i), sv)
            _mm512_storeu_ps(x + i, v)
            mx = _mm512_max_ps(mx, v)
            i += 16
        }
        let tail = count - i
        let mask: __mmask16 = tail > 0 ? __mmask16((1 << tail) - 1) : 0
        if tail > 0 {
            let v = _mm512_mask_blend_ps(mask, negativeInfinity, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), sv))
            _mm512_mask_storeu_ps(x + i, mask, v)
            mx = _mm512_max_ps(mx, v)
        }
        let m = mx.max()  // `__m512` is SIMD16<Float>
        let mv = _mm512_set1_ps(m)
        var acc = _mm512_setzero_ps()
        i = 0
        while i + 16 <= count {
            let e = exp(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv))
            _mm512_storeu_ps(x + i, e)
            acc = _mm512_add_ps(acc, e)
            i += 16
        }
        if tail > 0 {
            let e = _mm512_maskz_mov_ps(mask, exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), mv)))
            _mm512_mask_storeu_ps(x + i, mask, e)
            acc = _mm512_add_ps(acc, e)
        }
        return (m, acc.sum())
    }

    /// eˣ for 16 floats: the range reduction and polynomial of `VectorMath.exp` (x = n·ln2 + r,
    /// Cephes' degree-6 polynomial for eʳ), with the scaling by 2ⁿ done by `vscalefps`, which
    /// rounds overflow to +∞ and underflow to subnormals or 0 by itself. NaN stays NaN (the
    /// clamps return their second operand when it is NaN).
    @inline(__always)
    static func exp(_ x: __m512) -> __m512 {
        let xc = _mm512_min_ps(_mm512_set1_ps(89), _mm512_max_ps(_mm512_set1_ps(-104), x))
        let magic = _mm512_set1_ps(12_582_912)
        let n = _mm512_sub_ps(_mm512_fmadd_ps(xc, _mm512_set1_ps(1.442_695_040_888_963_4), magic), magic)
        var r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_375), xc)
        r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_400_546_905_8e-4), r)
        var p = _mm512_set1_ps(1.987_569_150_0e-4)
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.398_199_950_7e-3))
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.333_451_907_3e-3))
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.166_579_589_4e-2))
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.666_666_545_9e-1))
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.000_000_120_1e-1))
        p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1))
        return _mm512_scalef_ps(p, n)
    }
}
#endif
