#if arch(x86_64) && TSLM_X86_AVX2
import _Builtin_intrinsics.intel
#endif

/// Activations quantized to 8-bit blocks for the integer dot products of the quantized matvec.
///
/// Each block of 32 values gets an f32 scale `d = max|x| / 127` and `q = round(x / d)` (to
/// nearest, ties to even; NaN counts as 0), plus the block sum `s = d · Σq` that the q4_0 and
/// q4_1 kernels need for their offset terms. Quants are stored contiguously (token after token),
/// 64-byte aligned, so each block's 32 bytes can be loaded as one aligned vector.
struct QuantizedActivations {
    let tokens: Int
    let blocks: Int
    /// `tokens * blocks * 32` quants.
    let quants: UnsafeMutablePointer<Int8>
    /// `tokens * blocks` scales.
    let scales: UnsafeMutablePointer<Float>
    /// `tokens * blocks` scaled block sums `d · Σq`.
    let sums: UnsafeMutablePointer<Float>
    private let storage: UnsafeMutableRawPointer

    /// Allocates room for `tokens` vectors of `blocks * 32` values.
    init(tokens: Int, blocks: Int) {
        self.tokens = tokens
        self.blocks = blocks
        let total = tokens * blocks
        let quantBytes = (total * 32 + 63) & ~63
        storage = .allocate(byteCount: quantBytes + 8 * total + 64, alignment: 64)
        quants = storage.bindMemory(to: Int8.self, capacity: total * 32)
        scales = (storage + quantBytes).bindMemory(to: Float.self, capacity: total)
        sums = (storage + quantBytes + 4 * total).bindMemory(to: Float.self, capacity: total)
    }

    func deallocate() { storage.deallocate() }

    /// Quantizes `x[0 ..< blocks * 32]` as token `token`.
    func quantize(token: Int, _ x: UnsafePointer<Float>) {
        let q = quants + token * blocks * 32
        let base = token * blocks
        for b in 0..<blocks {
            let (d, sum) = QuantizedActivations.quantizeBlock(x + 32 * b, into: q + 32 * b)
            scales[base + b] = d
            sums[base + b] = d * Float(sum)
        }
    }

    /// The quants of token `token`.
    @inline(__always) func quants(token: Int) -> UnsafePointer<Int8> {
        UnsafePointer(quants + token * blocks * 32)
    }
    @inline(__always) func scales(token: Int) -> UnsafePointer<Float> { UnsafePointer(scales + token * blocks) }
    @inline(__always) func sums(token: Int) -> UnsafePointer<Float> { UnsafePointer(sums + token * blocks) }

    /// Quantizes one block of 32; returns the scale and Σq. Bit-identical to
    /// `Reference.quantizeActivationBlock`.
    @inline(__always)
    static func quantizeBlock(_ x: UnsafePointer<Float>, into q: UnsafeMutablePointer<Int8>) -> (Float, Int32) {
        let raw = UnsafeRawPointer(x)
        var a0 = raw.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self)
        var a1 = raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        var a2 = raw.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
        var a3 = raw.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
        // NaN → 0 (x == x is false only for NaN).
        a0.replace(with: 0, where: a0 .!= a0)
        a1.replace(with: 0, where: a1 .!= a1)
        a2.replace(with: 0, where: a2 .!= a2)
        a3.replace(with: 0, where: a3 .!= a3)
        let m = VectorMath.max(VectorMath.max(magnitude(a0), magnitude(a1)), VectorMath.max(magnitude(a2), magnitude(a3)))
        let amax = VectorMath.maxLane(m)
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        let r0 = roundToInt(a0 * id), r1 = roundToInt(a1 * id)
        let r2 = roundToInt(a2 * id), r3 = roundToInt(a3 * id)
        let out = UnsafeMutableRawPointer(q)
        #if arch(x86_64) && TSLM_X86_AVX2
        // Saturating packs (exact: the values are within ±127), then the 128-bit lanes' 4-byte
        // groups back in order. (SIMD8<Int8>(truncatingIfNeeded:) compiles to a byte-by-byte
        // loop through the stack.)
        let bytes = _mm256_packs_epi16(_mm256_packs_epi32(m256(r0), m256(r1)), _mm256_packs_epi32(m256(r2), m256(r3)))
        out.storeBytes(of: _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)), as: __m256i.self)
        #else
        out.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: r0), toByteOffset: 0, as: SIMD8<Int8>.self)
        out.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: r1), toByteOffset: 8, as: SIMD8<Int8>.self)
        out.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: r2), toByteOffset: 16, as: SIMD8<Int8>.self)
        out.storeBytes(of: SIMD8<Int8>(truncatingIfNeeded: r3), toByteOffset: 24, as: SIMD8<Int8>.self)
        #endif
        return (d, (r0 &+ r1 &+ r2 &+ r3).wrappedSum())
    }

    #if arch(x86_64) && TSLM_X86_AVX2
    @inline(__always) static func m256(_ v: SIMD8<Int32>) -> __m256i { unsafeBitCast(v, to: __m256i.self) }
    #endif

    /// |v| (clears the sign bits).
    @inline(__always) static func magnitude(_ v: SIMD8<Float>) -> SIMD8<Float> {
        unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & SIMD8(repeating: 0x7FFF_FFFF), to: SIMD8<Float>.self)
    }

    /// Rounds to the nearest integer, ties to even, after clamping to ±127 (infinities clamp;
    /// the caller has removed NaNs). Uses the 1.5·2²³ trick: no float→int conversion.
    @inline(__always) static func roundToInt(_ v: SIMD8<Float>) -> SIMD8<Int32> {
        let c = VectorMath.clamp(v, -127, 127)
        let t = c + SIMD8(repeating: 12_582_912)
        return unsafeBitCast(t, to: SIMD8<Int32>.self) &- SIMD8(repeating: 0x4B40_0000)
    }
}

/// Activations quantized to 16-bit blocks for q8_0 weights.
///
/// 8-bit activations cost q8_0 most of its perplexity against f16 (`formats/tslm.md`,
/// "Quantizers"): per block of 32, d = max|x| / 32767 (f32) and q = round(x / d) (to nearest,
/// ties to even; NaN counts as 0). The q8_0 × int16 dot product (`vpmovsxbw` + `vpmaddwd`) costs
/// about what the 8-bit one does (`vpsignb` ×2 + `vpmaddubsw` + `vpmaddwd`); the quants take
/// 64 bytes per block, 64-byte aligned.
struct WideQuantizedActivations {
    let tokens: Int
    let blocks: Int
    /// `tokens * blocks * 32` quants.
    let quants: UnsafeMutablePointer<Int16>
    /// `tokens * blocks` scales.
    let scales: UnsafeMutablePointer<Float>
    private let storage: UnsafeMutableRawPointer

    init(tokens: Int, blocks: Int) {
        self.tokens = tokens
        self.blocks = blocks
        let total = tokens * blocks
        let quantBytes = total * 64
        storage = .allocate(byteCount: quantBytes + 4 * total + 64, alignment: 64)
        quants = storage.bindMemory(to: Int16.self, capacity: total * 32)
        scales = (storage + quantBytes).bindMemory(to: Float.self, capacity: total)
    }

    func deallocate() { storage.deallocate() }

    /// Quantizes `x[0 ..< blocks * 32]` as token `token`.
    func quantize(token: Int, _ x: UnsafePointer<Float>) {
        let q = quants + token * blocks * 32
        for b in 0..<blocks {
            scales[token * blocks + b] = WideQuantizedActivations.quantizeBlock(x + 32 * b, into: q + 32 * b)
        }
    }

    @inline(__always) func quants(token: Int) -> UnsafePointer<Int16> { UnsafePointer(quants + token * blocks * 32) }
    @inline(__always) func scales(token: Int) -> UnsafePointer<Float> { UnsafePointer(scales + token * blocks) }

    /// Quantizes one block of 32; returns the scale. Bit-identical to
    /// `Reference.quantizeWideActivationBlock`.
    @inline(__always)
    static func quantizeBlock(_ x: UnsafePointer<Float>, into q: UnsafeMutablePointer<Int16>) -> Float {
        let raw = UnsafeRawPointer(x)
        var a0 = raw.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self)
        var a1 = raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        var a2 = raw.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
        var a3 = raw.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
        a0.replace(with: 0, where: a0 .!= a0)
        a1.replace(with: 0, where: a1 .!= a1)
        a2.replace(with: 0, where: a2 .!= a2)
        a3.replace(with: 0, where: a3 .!= a3)
        let m = VectorMath.max(VectorMath.max(QuantizedActivations.magnitude(a0), QuantizedActivations.magnitude(a1)),
                               VectorMath.max(QuantizedActivations.magnitude(a2), QuantizedActivations.magnitude(a3)))
        let d = VectorMath.maxLane(m) / 32767
        let id: Float = d != 0 ? 1 / d : 0
        let out = UnsafeMutableRawPointer(q)
        #if arch(x86_64) && TSLM_X86_AVX2
        // Saturating packs (exact within ±32767), 128-bit lanes' 8-byte groups back in order.
        let order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7)
        let w01 = _mm256_packs_epi32(QuantizedActivations.m256(roundToInt(a0 * id)), QuantizedActivations.m256(roundToInt(a1 * id)))
        let w23 = _mm256_packs_epi32(QuantizedActivations.m256(roundToInt(a2 * id)), QuantizedActivations.m256(roundToInt(a3 * id)))
        out.storeBytes(of: _mm256_permutevar8x32_epi32(w01, order), toByteOffset: 0, as: __m256i.self)
        out.storeBytes(of: _mm256_permutevar8x32_epi32(w23, order), toByteOffset: 32, as: __m256i.self)
        #else
        out.storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: roundToInt(a0 * id)), toByteOffset: 0, as: SIMD8<Int16>.self)
        out.storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: roundToInt(a1 * id)), toByteOffset: 16, as: SIMD8<Int16>.self)
        out.storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: roundToInt(a2 * id)), toByteOffset: 32, as: SIMD8<Int16>.self)
        out.storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: roundToInt(a3 * id)), toByteOffset: 48, as: SIMD8<Int16>.self)
        #endif
        return d
    }

    /// Rounds to the nearest integer, ties to even, after clamping to ±32767.
    @inline(__always) static func roundToInt(_ v: SIMD8<Float>) -> SIMD8<Int32> {
        let c = VectorMath.clamp(v, -32767, 32767)
        let t = c + SIMD8(repeating: 12_582_912)
        return unsafeBitCast(t, to: SIMD8<Int32>.self) &- SIMD8(repeating: 0x4B40_0000)
    }
}
