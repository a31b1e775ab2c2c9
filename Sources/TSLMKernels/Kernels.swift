#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import CCPUFeatures

/// The compute kernels of the inference core: vectorized versions of the loops in `Reference`,
/// which the tests compare them against.
///
/// All pointers must be valid for `count` elements (`cols`/`rows` for the matrix kernels);
/// in-place use is allowed where stated.
public enum Kernels {
    // MARK: normalization

    /// out = x / sqrt(mean(x²) + eps) · w (or · (1 + w) when `addOne`, as Gemma). `out` may
    /// alias `x`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, count: Int, eps: Float,
                               addOne: Bool, out: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        let ss = sumOfSquares(x, count: count)
        let scale = 1 / (ss / Float(count) + eps).squareRoot()
        let s = SIMD8<Float>(repeating: scale)
        let one = SIMD8<Float>(repeating: addOne ? 1 : 0)
        let xr = UnsafeRawPointer(x), wr = UnsafeRawPointer(weight), o = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 8 <= count {
            let v = xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            let w = wr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            o.storeBytes(of: v * s * (w + one), toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        let one1: Float = addOne ? 1 : 0
        while i < count { out[i] = x[i] * scale * (weight[i] + one1); i += 1 }
    }

    /// LayerNorm as PyTorch: (x − mean) / sqrt(var + eps) · w + b with the biased variance;
    /// `weight`/`bias` nil mean 1/0. Two passes (mean, then centred squares) for accuracy.
    /// `out` may alias `x`.
    public static func layerNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                 count: Int, eps: Float, out: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        let xr = UnsafeRawPointer(x)
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count { acc += xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self); i += 8 }
        var sum = acc.sum()
        while i < count { sum += x[i]; i += 1 }
        let mean = sum / Float(count)
        let m = SIMD8<Float>(repeating: mean)
        acc = SIMD8<Float>()
        i = 0
        while i + 8 <= count {
            let d = xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) - m
            acc += d * d
            i += 8
        }
        var ss = acc.sum()
        while i < count { let d = x[i] - mean; ss += d * d; i += 1 }
        let scale = 1 / (ss / Float(count) + eps).squareRoot()
        let s = SIMD8<Float>(repeating: scale)
        let o = UnsafeMutableRawPointer(out)
        i = 0
        while i + 8 <= count {
            var v = (xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) - m) * s
            if let weight { v *= UnsafeRawPointer(weight).loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) }
            if let bias { v += UnsafeRawPointer(bias).loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) }
            o.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            var v = (x[i] - mean) * scale
            if let weight { v *= weight[i] }
            if let bias { v += bias[i] }
            out[i] = v
            i += 1
        }
    }

    // MARK: softmax and activations

    /// In-place softmax over `count` values, max-subtracted. A row of all −∞ becomes NaN
    /// (as PyTorch).
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        let (_, sum) = softmaxPart(x, count: count, scale: 1)
        scale(x, by: 1 / sum, count: count)
    }

    /// x·σ(x), in place.
    public static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        map(x, count: count) { v in v * VectorMath.sigmoid(v) }
    }

    /// GELU with PyTorch's `approximate="tanh"`: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))),
    /// computed as x·σ(2u) (the same function), in place.
    public static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        map(x, count: count) { v in
            let u = SIMD8<Float>(repeating: 1.595_769_121_605_730_7) * (v + SIMD8(repeating: 0.044_715) * v * v * v)
            return v * VectorMath.sigmoid(u)
        }
    }

    /// Exact GELU as PyTorch's default: 0.5·x·(1 + erf(x/√2)), in place (libm `erff`).
    public static func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<Swift.max(0, count) {
            let v = x[i]
            x[i] = 0.5 * v * (1 + erff(v * 0.707_106_781_186_547_5))
        }
    }

    // MARK: vector arithmetic

    /// out[i] = binary16(x[i]), rounded to nearest even: `floatToHalf`'s bits (NaN stays a
    /// quiet NaN), 8 at a time with F16C where the build has it (an f16 KV cache's stores).
    public static func toHalf(_ x: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<UInt16>) {
        var i = 0
        #if arch(x86_64) && TSLM_X86_AVX2
        while i + 8 <= count {
            cpufeat_f32_to_f16x8(x + i, out + i)
            i += 8
        }
        #endif
        while i < count {
            out[i] = floatToHalf(x[i])
            i += 1
        }
    }

    /// a[i] *= b[i].
    public static func mul(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        zip(a, b, count: count) { x, y in x * y }
    }

    /// a[i] += b[i].
    public static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        zip(a, b, count: count) { x, y in x + y }
    }

    /// a[i] += s·b[i].
    public static func axpy(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, scale: Float, count: Int) {
        let s = SIMD8<Float>(repeating: scale)
        zip(a, b, count: count) { x, y in x + s * y }
    }

    /// Σ a[i]·b[i].
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        RowDot.f32(UnsafeRawPointer(a), b, count: count)
    }

    /// Σ a[i]·half(b[i]) for binary16 `b` (an f16 KV cache).
    public static func dotF16(_ a: UnsafePointer<Float>, _ b: UnsafePointer<UInt16>, count: Int) -> Float {
        RowDot.f16(UnsafeRawPointer(b), a, count: count)
    }

    /// a[i] += s·half(b[i]) for binary16 `b`.
    public static func axpyF16(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<UInt16>, scale: Float, count: Int) {
        let s = SIMD8<Float>(repeating: scale)
        let ar = UnsafeMutableRawPointer(a), br = UnsafeRawPointer(b)
        var i = 0
        while i + 8 <= count {
            let h = Half8.toFloat(br.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
            let v = ar.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            ar.storeBytes(of: v + s * h, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { a[i] += scale * halfToFloat(b[i]); i += 1 }
    }

    // MARK: helpers

    /// Σ x², with 4 accumulators.
    static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let r = UnsafeRawPointer(x)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= count {
            let v0 = r.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            let v1 = r.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            a0 += v0 * v0
            a1 += v1 * v1
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < count { s += x[i] * x[i]; i += 1 }
        return s
    }

    /// Σ a·b without FMA hardware assumptions (the portable `dot`); `a` may be unaligned.
    static func dotPortable(_ a: UnsafeRawPointer, _ b: UnsafePointer<Float>, count: Int) -> Float {
        let ar = a, br = UnsafeRawPointer(b)
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= count {
            a0 += ar.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * br.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            a1 += ar.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self) * br.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < count { s += a.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) * b[i]; i += 1 }
        return s
    }

    /// x[i] *= s.
    public static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
        let sv = SIMD8<Float>(repeating: s)
        map(x, count: count) { v in v * sv }
    }

    /// x[i] = f(x[i]) 8 at a time; the tail goes through a zero-padded vector.
    @inline(__always)
    static func map(_ x: UnsafeMutablePointer<Float>, count: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) {
        let r = UnsafeMutableRawPointer(x)
        var i = 0
        while i + 8 <= count {
            r.storeBytes(of: f(r.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)), toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        if i < count {
            var v = SIMD8<Float>()
            for j in 0..<(count - i) { v[j] = x[i + j] }
            let y = f(v)
            for j in 0..<(count - i) { x[i + j] = y[j] }
        }
    }

    /// a[i] = f(a[i], b[i]) 8 at a time, with a scalar-through-vector tail.
    @inline(__always)
    static func zip(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int,
                    _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) {
        let ar = UnsafeMutableRawPointer(a), br = UnsafeRawPointer(b)
        var i = 0
        while i + 8 <= count {
            let v = f(ar.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self), br.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))
            ar.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        if i < count {
            var u = SIMD8<Float>(), v = SIMD8<Float>()
            for j in 0..<(count - i) { u[j] = a[i + j]; v[j] = b[i + j] }
            let y = f(u, v)
            for j in 0..<(count - i) { a[i + j] = y[j] }
        }
    }
}
