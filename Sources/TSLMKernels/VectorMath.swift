#if arch(x86_64) && TSLM_X86_AVX2
import _Builtin_intrinsics.intel
#endif

/// Vectorized transcendental functions for the activation kernels.
enum VectorMath {
    /// eˣ for 8 floats, within about 2 ulp of the correctly rounded result over the whole float
    /// range: 0 below −103.97 (where eˣ underflows), +∞ above 88.72, NaN stays NaN.
    ///
    /// Range reduction x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two for exactness), a
    /// degree-6 polynomial for eʳ (Cephes coefficients), then scaling by 2ⁿ in two steps so
    /// that n = 128 and subnormal results still come out right.
    @inline(__always) static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let xc = clamp(x, -104, 89)
        // n = round(x / ln2) by the 1.5·2²³ trick.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = xc * SIMD8(repeating: 1.442_695_040_888_963_4) + magic
        let n = t - magic
        let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- SIMD8(repeating: 0x4B40_0000)
        var r = xc - n * SIMD8(repeating: 0.693_359_375)
        r = r - n * SIMD8(repeating: -2.121_944_400_546_905_8e-4)
        var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
        p = p * r + SIMD8(repeating: 1.398_199_950_7e-3)
        p = p * r + SIMD8(repeating: 8.333_451_907_3e-3)
        p = p * r + SIMD8(repeating: 4.166_579_589_4e-2)
        p = p * r + SIMD8(repeating: 1.666_666_545_9e-1)
        p = p * r + SIMD8(repeating: 5.000_000_120_1e-1)
        p = p * (r * r) + r + SIMD8(repeating: 1)
        // 2ⁿ = 2^(n/2) · 2^(n − n/2); each factor's exponent stays in range for n ∈ [−150, 129].
        let h = ni &>> 1
        let s1 = unsafeBitCast((h &+ 127) &<< 23, to: SIMD8<Float>.self)
        let s2 = unsafeBitCast((ni &- h &+ 127) &<< 23, to: SIMD8<Float>.self)
        let result = p * s1 * s2
        #if arch(x86_64) && TSLM_X86_AVX2
        // The same selections as below, with masks from sign bits and integer compares (Swift's
        // lane masks compile to scalar code; the float compare intrinsic is a C macro Swift
        // cannot import). x > t ⟺ t − x < 0 and x < t ⟺ x − t < 0 hold exactly in floats.
        let xv: __m256 = x  // `__m256` is SIMD8<Float>
        let above = _mm256_castsi256_ps(_mm256_srai_epi32(_mm256_castps_si256(_mm256_sub_ps(_mm256_set1_ps(88.722_84), xv)), 31))
        let below = _mm256_castsi256_ps(_mm256_srai_epi32(_mm256_castps_si256(_mm256_add_ps(xv, _mm256_set1_ps(103.972_08))), 31))
        let nan = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_and_si256(_mm256_castps_si256(xv), _mm256_set1_epi32(0x7FFF_FFFF)),
                                                         _mm256_set1_epi32(0x7F80_0000)))
        var out: __m256 = result
        out = _mm256_blendv_ps(out, _mm256_set1_ps(.infinity), above)
        out = _mm256_blendv_ps(out, _mm256_setzero_ps(), below)
        out = _mm256_blendv_ps(out, xv, nan)
        return out
        #else
        var r2 = result
        r2.replace(with: .infinity, where: x .> SIMD8(repeating: 88.722_84))
        r2.replace(with: 0, where: x .< SIMD8(repeating: -103.972_08))
        r2.replace(with: x, where: x .!= x)
        return r2
        #endif
    }

    /// The lane-wise maximum of two NaN-free vectors (the generic `pointwiseMax` is not inlined).
    @inline(__always) static func max(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        #if arch(x86_64) && TSLM_X86_AVX2
        _mm256_max_ps(a, b)
        #else
        pointwiseMax(a, b)
        #endif
    }

    /// The largest lane of a NaN-free vector (the generic `max()` reduction is not specialized:
    /// it showed as its own symbol in profiles of activation quantization).
    @inline(__always) static func maxLane(_ v: SIMD8<Float>) -> Float {
        let m = max(v, SIMD8(lowHalf: v.highHalf, highHalf: v.lowHalf))
        let m2 = max(m, SIMD8(m[2], m[3], m[0], m[1], m[2], m[3], m[0], m[1]))
        return Swift.max(m2[0], m2[1])
    }

    /// x clamped to [lo, hi] (NaN becomes lo on x86, stays NaN elsewhere: exp masks it anyway).
    @inline(__always) static func clamp(_ x: SIMD8<Float>, _ lo: Float, _ hi: Float) -> SIMD8<Float> {
        #if arch(x86_64) && TSLM_X86_AVX2
        _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(lo)), _mm256_set1_ps(hi))
        #else
        x.clamped(lowerBound: SIMD8(repeating: lo), upperBound: SIMD8(repeating: hi))
        #endif
    }

    /// 1 / (1 + e⁻ˣ).
    @inline(__always) static func sigmoid(_ x: SIMD8<Float>) -> SIMD8<Float> {
        1 / (1 + exp(-x))
    }
}
