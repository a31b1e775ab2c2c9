#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
#if arch(x86_64) && TSLM_X86_AVX2
import _Builtin_intrinsics.intel
import TSLMKernelsAVX512
#endif

/// The pieces of attention over a KV cache that decoding runs once per cached position: the
/// unnormalized softmax of one split of a row of scores and the probability-weighted sum of the
/// value rows. Both work on whole rows with vector code (no call per position).
extension Kernels {
    /// x[i] = exp(scale·x[i] − m) in place, where m = max scale·x, and returns (m, Σ x[i]): the
    /// softmax of one part of a row before normalization, so that parts can be merged later
    /// (x/Σ is the softmax of the part). A part of all −∞ gives m = −∞ and NaNs, as PyTorch.
    public static func softmaxPart(_ x: UnsafeMutablePointer<Float>, count: Int, scale: Float) -> (max: Float, sum: Float) {
        guard count > 0 else { return (-.infinity, 0) }
        #if arch(x86_64) && TSLM_X86_AVX2
        if gemmAVX512 { return SoftmaxAVX512.part(x, count: count, scale: scale) }
        #endif
        let r = UnsafeMutableRawPointer(x)
        let sv = SIMD8<Float>(repeating: scale)
        var mx = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= count {
            let v = r.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * sv
            r.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            mx = VectorMath.max(mx, v)
            i += 8
        }
        var m = mx.max()
        while i < count { x[i] *= scale; m = Swift.max(m, x[i]); i += 1 }
        let mv = SIMD8<Float>(repeating: m)
        var acc = SIMD8<Float>()
        i = 0
        while i + 8 <= count {
            let e = VectorMath.exp(r.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) - mv)
            r.storeBytes(of: e, toByteOffset: 4 * i, as: SIMD8<Float>.self)
            acc += e
            i += 8
        }
        var sum = acc.sum()
        while i < count { let e = expf(x[i] - m); x[i] = e; sum += e; i += 1 }
        return (m, sum)
    }

    /// Whether prefill attention (`blockAttention`) may run the AVX-512 outer-product kernels
    /// (`attentionScores`, `weightedValues`) for heads of `headDim` components: with the AVX-512
    /// GEMM loops and head_dim a multiple of 64.
    public static func outerProductAttention(headDim: Int) -> Bool {
        #if arch(x86_64) && TSLM_X86_AVX2
        gemmAVX512 && headDim > 0 && headDim % 64 == 0
        #else
        false
        #endif
    }

    /// s[t·lds + j] = Σ_d q[t·ldq + d] · keysT[d·keyStride + j] (keys j < `length`, queries t <
    /// `queries`, d < `dim`): Q·Kᵀ with the keys transposed. Only where
    /// `outerProductAttention(headDim: dim)`.
    public static func attentionScores(keysT: UnsafePointer<Float>, keyStride: Int, length: Int, dim: Int,
                                       q: UnsafePointer<Float>, ldq: Int, queries: Int, s: UnsafeMutablePointer<Float>, lds: Int) {
        #if arch(x86_64) && TSLM_X86_AVX2
        AttentionAVX512.scores(keysT: keysT, keyStride: keyStride, length: length, dim: dim, q: q, ldq: ldq, queries: queries, s: s, lds: lds)
        #endif
    }

    /// out[t·ldo + d] = Σ_j p[t·ldp + j] · value_j[d] over `length` value rows `valueStride`
    /// bytes apart in their cache layout (f32, or binary16 with `half`): P·V. Only where
    /// `outerProductAttention(headDim: dim)`.
    public static func weightedValues(p: UnsafePointer<Float>, ldp: Int, queries: Int, length: Int, values: UnsafeRawPointer,
                                      valueStride: Int, half: Bool, dim: Int, out: UnsafeMutablePointer<Float>, ldo: Int) {
        #if arch(x86_64) && TSLM_X86_AVX2
        AttentionAVX512.weightedValues(p: p, ldp: ldp, queries: queries, length: length, values: values, valueStride: valueStride,
                                       half: half, dim: dim, out: out, ldo: ldo)
        #endif
    }

    /// out[h·dim + d] = Σ_j weights[h·weightStride + j] · row_j[d] for h < `heads`, over `count`
    /// rows of `dim` values, row j at `rows + j·rowStride` bytes, f32 or binary16 (`half`): the
    /// P·V of attention for the query heads that share one key/value head. Two heads and 32
    /// components at a time stay in registers while the rows stream past.
    public static func weightedRowSum(_ rows: UnsafeRawPointer, half: Bool, rowStride: Int, count: Int, dim: Int,
                                      weights: UnsafePointer<Float>, weightStride: Int, heads: Int,
                                      out: UnsafeMutablePointer<Float>) {
        var h = 0
        while h < heads {
            let pair = h + 1 < heads
            let w0 = weights + h * weightStride, w1 = pair ? w0 + weightStride : w0
            let o0 = out + h * dim, o1 = pair ? o0 + dim : o0
            var d = 0
            while d + 32 <= dim {
                if half {
                    rowSum32(rows + 2 * d, rowStride: rowStride, count: count, w0, w1, o0 + d, o1 + d, elementBytes: 2, load: load8Half)
                } else {
                    rowSum32(rows + 4 * d, rowStride: rowStride, count: count, w0, w1, o0 + d, o1 + d, elementBytes: 4, load: load8Float)
                }
                d += 32
            }
            while d + 8 <= dim {
                var a = SIMD8<Float>(), b = SIMD8<Float>()
                for j in 0..<count {
                    let p = rows + j * rowStride
                    let v = half ? load8Half(p + 2 * d) : load8Float(p + 4 * d)
                    a = a.addingProduct(SIMD8(repeating: w0[j]), v)
                    b = b.addingProduct(SIMD8(repeating: w1[j]), v)
                }
                UnsafeMutableRawPointer(o0 + d).storeBytes(of: a, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(o1 + d).storeBytes(of: b, as: SIMD8<Float>.self)
                d += 8
            }
            while d < dim {
                var a: Float = 0, b: Float = 0
                for j in 0..<count {
                    let p = rows + j * rowStride
                    let v = half ? halfToFloat(p.loadUnaligned(fromByteOffset: 2 * d, as: UInt16.self))
                                 : p.loadUnaligned(fromByteOffset: 4 * d, as: Float.self)
                    a += w0[j] * v
                    b += w1[j] * v
                }
                o0[d] = a
                o1[d] = b
                d += 1
            }
            h += pair ? 2 : 1
        }
    }

    /// 32 components of two heads' weighted row sums (`w0`, `w1` may be the same head); the
    /// rows hold elements of `elementBytes` bytes that `load` turns into 8 floats at a time.
    @inline(__always)
    private static func rowSum32(_ rows: UnsafeRawPointer, rowStride: Int, count: Int, _ w0: UnsafePointer<Float>,
                                 _ w1: UnsafePointer<Float>, _ o0: UnsafeMutablePointer<Float>, _ o1: UnsafeMutablePointer<Float>,
                                 elementBytes: Int, load: (UnsafeRawPointer) -> SIMD8<Float>) {
        let e8 = 8 * elementBytes
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
        var p = rows
        for j in 0..<count {
            let s = SIMD8<Float>(repeating: w0[j]), t = SIMD8<Float>(repeating: w1[j])
            let v0 = load(p), v1 = load(p + e8), v2 = load(p + 2 * e8), v3 = load(p + 3 * e8)
            a0 = a0.addingProduct(s, v0); a1 = a1.addingProduct(s, v1); a2 = a2.addingProduct(s, v2); a3 = a3.addingProduct(s, v3)
            b0 = b0.addingProduct(t, v0); b1 = b1.addingProduct(t, v1); b2 = b2.addingProduct(t, v2); b3 = b3.addingProduct(t, v3)
            p += rowStride
        }
        // When both pointers name the same head, the second stores write the same values.
        store4(o0, a0, a1, a2, a3)
        store4(o1, b0, b1, b2, b3)
    }

    @inline(__always)
    private static func store4(_ o: UnsafeMutablePointer<Float>, _ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>, _ d: SIMD8<Float>) {
        let r = UnsafeMutableRawPointer(o)
        r.storeBytes(of: a, as: SIMD8<Float>.self)
        r.storeBytes(of: b, toByteOffset: 32, as: SIMD8<Float>.self)
        r.storeBytes(of: c, toByteOffset: 64, as: SIMD8<Float>.self)
        r.storeBytes(of: d, toByteOffset: 96, as: SIMD8<Float>.self)
    }

    /// 8 floats at `p`.
    @inline(__always) static func load8Float(_ p: UnsafeRawPointer) -> SIMD8<Float> {
        p.loadUnaligned(as: SIMD8<Float>.self)
    }

    /// 8 binary16 values at `p` as floats.
    @inline(__always) static func load8Half(_ p: UnsafeRawPointer) -> SIMD8<Float> {
        #if arch(x86_64) && TSLM_X86_AVX2
        RowDot.halves(p)
        #else
        Half8.toFloat(p.loadUnaligned(as: SIMD8<UInt16>.self))
        #endif
    }
}
