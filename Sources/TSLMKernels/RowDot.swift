import TSLMFormat
import CCPUFeatures
#if arch(x86_64) && TSLM_X86_AVX2
import _Builtin_intrinsics.intel
#endif

/// Dot products of one stored weight row with an activation vector: the inner loops of
/// `Kernels.matvec` and `Kernels.matmul`.
///
/// With the `TSLM_X86_AVX2` compilation condition (and AVX2, FMA and F16C code generation
/// enabled for the module) the x86 versions use AVX2 integer dot products (`vpmaddubsw`,
/// `vpmaddwd`), F16C (`vcvtph2ps`) and FMA; otherwise portable Swift SIMD code runs.
enum RowDot {
    /// Bytes ahead of the current position that the decode kernels prefetch into L1
    /// (`cpufeat_prefetch`, a C inline function): hardware prefetchers stop at 4 KiB pages, and
    /// without it a 1B gate matrix streamed at 5–6 GB/s in q8_0/q4_0 against 8–10 with it (1
    /// thread; SmolLM2 decode 1.3–1.4× faster).
    static let prefetchDistance = 4096
    /// Bytes ahead that they also prefetch into L2 (`cpufeat_prefetch_l2`), so that more of
    /// the stream is in flight than L1's fill buffers hold. 1B-shape decode, 2 threads, Intel
    /// Xeon VM, interleaved (L1 distance / L2 distance → tok/s): q8_0 2048/none 10.9–11.9,
    /// 4096/none 15.6–15.9, 2048/8192 16.8–17.5, 4096/16384 17.6–18.1, 8192/32768 17.6–18.0;
    /// q4_0 16.9–17.7 → 24.3–24.4 and f16 7.8–8.1 → 9.0 at 4096/16384. SmolLM2 (whose weights
    /// fit in this VM's L3) about the same either way.
    static let l2PrefetchDistance = 16384

    /// Prefetches of the row bytes `prefetchDistance` and `l2PrefetchDistance` past `p`.
    @inline(__always) static func prefetch(_ p: UnsafeRawPointer) {
        cpufeat_prefetch(p + prefetchDistance)
        cpufeat_prefetch_l2(p + l2PrefetchDistance)
    }

    // MARK: float rows

    /// Σ row[c]·x[c] for an f32 row.
    @inline(__always)
    static func f32(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        #if arch(x86_64) && TSLM_X86_AVX2
        var a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps()
        let w = row.assumingMemoryBound(to: Float.self)
        var i = 0
        while i + 32 <= count {
            prefetch(row + 4 * i)
            prefetch(row + 4 * i + 64)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0)
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1)
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2)
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3)
            i += 32
        }
        while i + 8 <= count {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0)
            i += 8
        }
        var s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)))
        while i < count { s += row.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) * x[i]; i += 1 }
        return s
        #else
        return Kernels.dotPortable(row, x, count: count)
        #endif
    }

    /// Σ half(row[c])·x[c] for an f16 row.
    @inline(__always)
    static func f16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        #if arch(x86_64) && TSLM_X86_AVX2
        var a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps()
        var i = 0
        while i + 32 <= count {
            let p = row + 2 * i
            prefetch(p)
            a0 = _mm256_fmadd_ps(halves(p), _mm256_loadu_ps(x + i), a0)
            a1 = _mm256_fmadd_ps(halves(p + 16), _mm256_loadu_ps(x + i + 8), a1)
            a2 = _mm256_fmadd_ps(halves(p + 32), _mm256_loadu_ps(x + i + 16), a2)
            a3 = _mm256_fmadd_ps(halves(p + 48), _mm256_loadu_ps(x + i + 24), a3)
            i += 32
        }
        while i + 8 <= count {
            a0 = _mm256_fmadd_ps(halves(row + 2 * i), _mm256_loadu_ps(x + i), a0)
            i += 8
        }
        var s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)))
        while i < count { s += halfToFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * x[i]; i += 1 }
        return s
        #else
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        let xr = UnsafeRawPointer(x)
        var i = 0
        while i + 16 <= count {
            a0 += Half8.toFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
                * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            a1 += Half8.toFloat(row.loadUnaligned(fromByteOffset: 2 * i + 16, as: SIMD8<UInt16>.self))
                * xr.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            i += 16
        }
        var s = (a0 + a1).sum()
        while i < count { s += halfToFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * x[i]; i += 1 }
        return s
        #endif
    }

    /// Σ bf16(row[c])·x[c] for a bf16 row.
    @inline(__always)
    static func bf16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        #if arch(x86_64) && TSLM_X86_AVX2
        var a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps()
        var i = 0
        while i + 32 <= count {
            let p = row + 2 * i
            a0 = _mm256_fmadd_ps(brains(p), _mm256_loadu_ps(x + i), a0)
            a1 = _mm256_fmadd_ps(brains(p + 16), _mm256_loadu_ps(x + i + 8), a1)
            a2 = _mm256_fmadd_ps(brains(p + 32), _mm256_loadu_ps(x + i + 16), a2)
            a3 = _mm256_fmadd_ps(brains(p + 48), _mm256_loadu_ps(x + i + 24), a3)
            i += 32
        }
        while i + 8 <= count {
            a0 = _mm256_fmadd_ps(brains(row + 2 * i), _mm256_loadu_ps(x + i), a0)
            i += 8
        }
        var s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)))
        #else
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
        let xr = UnsafeRawPointer(x)
        var i = 0
        while i + 16 <= count {
            let w0 = SIMD8<UInt32>(truncatingIfNeeded: row.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)) &<< 16
            let w1 = SIMD8<UInt32>(truncatingIfNeeded: row.loadUnaligned(fromByteOffset: 2 * i + 16, as: SIMD8<UInt16>.self)) &<< 16
            a0 += unsafeBitCast(w0, to: SIMD8<Float>.self) * xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            a1 += unsafeBitCast(w1, to: SIMD8<Float>.self) * xr.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self)
            i += 16
        }
        var s = (a0 + a1).sum()
        #endif
        while i < count { s += bf16ToFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) * x[i]; i += 1 }
        return s
    }

    // MARK: quantized rows × quantized activations

    /// q8_0 row · quantized activations: Σ_b d_w·d_x·Σ q_w·q_x.
    @inline(__always)
    static func q8_0(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xd: UnsafePointer<Float>, blocks: Int) -> Float {
        #if arch(x86_64) && TSLM_X86_AVX2
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var b = 0
        while b + 2 <= blocks {
            let p0 = row + BlockQ8_0.byteCount * b, p1 = p0 + BlockQ8_0.byteCount
            let s0 = _mm256_mul_ps(halfSplat(p0.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(xd[b]))
            let s1 = _mm256_mul_ps(halfSplat(p1.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(xd[b + 1]))
            acc0 = _mm256_fmadd_ps(s0, dotI8(p0 + BlockQ8_0.qsOffset, xq + 32 * b), acc0)
            acc1 = _mm256_fmadd_ps(s1, dotI8(p1 + BlockQ8_0.qsOffset, xq + 32 * b + 32), acc1)
            b += 2
        }
        if b < blocks {
            let p0 = row + BlockQ8_0.byteCount * b
            let s0 = _mm256_mul_ps(halfSplat(p0.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(xd[b]))
            acc0 = _mm256_fmadd_ps(s0, dotI8(p0 + BlockQ8_0.qsOffset, xq + 32 * b), acc0)
        }
        return hsum(_mm256_add_ps(acc0, acc1))
        #else
        var acc: Float = 0
        for b in 0..<blocks {
            let p = row + BlockQ8_0.byteCount * b
            let xr = UnsafeRawPointer(xq + 32 * b)
            let w0 = SIMD16<Int16>(truncatingIfNeeded: (p + BlockQ8_0.qsOffset).loadUnaligned(as: SIMD16<Int8>.self))
            let w1 = SIMD16<Int16>(truncatingIfNeeded: (p + BlockQ8_0.qsOffset + 16).loadUnaligned(as: SIMD16<Int8>.self))
            let x0 = SIMD16<Int16>(truncatingIfNeeded: xr.load(as: SIMD16<Int8>.self))
            let x1 = SIMD16<Int16>(truncatingIfNeeded: xr.load(fromByteOffset: 16, as: SIMD16<Int8>.self))
            // |w·x| ≤ 128·127, so the sum of two products fits in Int16.
            let sum = SIMD16<Int32>(truncatingIfNeeded: w0 &* x0 &+ w1 &* x1).wrappedSum()
            acc += halfToFloat(p.loadUnaligned(as: UInt16.self)) * xd[b] * Float(sum)
        }
        return acc
        #endif
    }

    /// q8_0 row · 16-bit activations (`WideQuantizedActivations`): Σ_b d_w·d_x·Σ q_w·q_x.
    @inline(__always)
    static func q8_0Wide(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ xd: UnsafePointer<Float>, blocks: Int) -> Float {
        #if arch(x86_64) && TSLM_X86_AVX2
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var b = 0
        while b + 2 <= blocks {
            let p0 = row + BlockQ8_0.byteCount * b, p1 = p0 + BlockQ8_0.byteCount
            let s0 = _mm256_mul_ps(halfSplat(p0.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(xd[b]))
            let s1 = _mm256_mul_ps(halfSplat(p1.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(xd[b + 1]))
            acc0 = _mm256_fmadd_ps(s0, dotI8I16(p0 + BlockQ8_0.qsOffset, xq + 32 * b), acc0)
            acc1 = _mm256_fmadd_ps(s1, dotI8I16(p1 + BlockQ8_0.qsOffset, xq + 32 * b + 32), acc1)
            b += 2
        }
        if b < blocks {
            let p0 = row + BlockQ8_0.byteCount * b
            let s0 = _mm256_mul_ps(halfSplat(p0.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(xd[b]))
            acc0 = _mm256_fmadd_ps(s0, dotI8I16(p0 + BlockQ8_0.qsOffset, xq + 32 * b), acc0)
        }
        return hsum(_mm256_add_ps(acc0, acc1))
        #else
        var acc: Float = 0
        for b in 0..<blocks {
            let p = row + BlockQ8_0.byteCount * b
            let xr = UnsafeRawPointer(xq + 32 * b)
            let w0 = SIMD16<Int32>(truncatingIfNeeded: (p + BlockQ8_0.qsOffset).loadUnaligned(as: SIMD16<Int8>.self))
            let w1 = SIMD16<Int32>(truncatingIfNeeded: (p + BlockQ8_0.qsOffset + 16).loadUnaligned(as: SIMD16<Int8>.self))
            let x0 = SIMD16<Int32>(truncatingIfNeeded: xr.load(as: SIMD16<Int16>.self))
            let x1 = SIMD16<Int32>(truncatingIfNeeded: xr.load(fromByteOffset: 32, as: SIMD16<Int16>.self))
            // |w·x| ≤ 128·32767: 32 products fit in Int32.
            let sum = (w0 &* x0 &+ w1 &* x1).wrappedSum()
            acc += halfToFloat(p.loadUnaligned(as: UInt16.self)) * xd[b] * Float(sum)
        }
        return acc
        #endif
    }

    /// q4_0 row · quantized activations: Σ_b d_w·(d_x·Σ q_w·q_x − 8·d_x·Σq_x).
    @inline(__always)
    static func q4_0(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xd: UnsafePointer<Float>,
                     _ xs: UnsafePointer<Float>, blocks: Int) -> Float {
        #if arch(x86_64) && TSLM_X86_AVX2
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var b = 0
        while b + 2 <= blocks {
            let p0 = row + BlockQ4_0.byteCount * b, p1 = p0 + BlockQ4_0.byteCount
            acc0 = q4_0Block(p0, xq + 32 * b, xd[b], xs[b], acc0)
            acc1 = q4_0Block(p1, xq + 32 * b + 32, xd[b + 1], xs[b + 1], acc1)
            b += 2
        }
        if b < blocks { acc0 = q4_0Block(row + BlockQ4_0.byteCount * b, xq + 32 * b, xd[b], xs[b], acc0) }
        return hsum(_mm256_add_ps(acc0, acc1))
        #else
        var acc: Float = 0, corr: Float = 0
        for b in 0..<blocks {
            let p = row + BlockQ4_0.byteCount * b
            let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
            acc += d * xd[b] * Float(nibbleDot(p + BlockQ4_0.qsOffset, xq + 32 * b))
            corr += d * xs[b]
        }
        return acc - 8 * corr
        #endif
    }

    #if arch(x86_64) && TSLM_X86_AVX2
    /// acc + one q4_0 block's 8 lanes of d_w·(d_x·Σq_w·q_x − 8·d_x·Σq_x): the 8·d_x·Σq_x
    /// (`sx` is d_x·Σq_x) is taken as sx from each of the 8 lanes of partial sums, so a block
    /// costs one FMS and one FMA.
    @inline(__always)
    static func q4_0Block(_ d: __m256, _ dot: __m256, _ dx: __m256, _ sx: __m256, _ acc: __m256) -> __m256 {
        _mm256_fmadd_ps(d, _mm256_fmsub_ps(dx, dot, sx), acc)
    }

    /// `q4_0Block` of the block at `p` against activation block `xq` (scale `dx`, scaled sum `sx`).
    @inline(__always)
    static func q4_0Block(_ p: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ dx: Float, _ sx: Float, _ acc: __m256) -> __m256 {
        q4_0Block(halfSplat(p.loadUnaligned(as: UInt16.self)), dotU4(p + BlockQ4_0.qsOffset, xq), _mm256_set1_ps(dx), _mm256_set1_ps(sx), acc)
    }
    #endif

    /// q4_1 row · quantized activations: Σ_b d_w·d_x·Σ q_w·q_x + m_w·d_x·Σq_x.
    @inline(__always)
    static func q4_1(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xd: UnsafePointer<Float>,
                     _ xs: UnsafePointer<Float>, blocks: Int) -> Float {
        #if arch(x86_64) && TSLM_X86_AVX2
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps()
        var b = 0
        while b + 2 <= blocks {
            let p0 = row + BlockQ4_1.byteCount * b, p1 = p0 + BlockQ4_1.byteCount
            let d0 = halfSplat(p0.loadUnaligned(as: UInt16.self))
            let d1 = halfSplat(p1.loadUnaligned(as: UInt16.self))
            acc0 = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_set1_ps(xd[b])), dotU4(p0 + BlockQ4_1.qsOffset, xq + 32 * b), acc0)
            acc1 = _mm256_fmadd_ps(_mm256_mul_ps(d1, _mm256_set1_ps(xd[b + 1])), dotU4(p1 + BlockQ4_1.qsOffset, xq + 32 * b + 32), acc1)
            c0 = _mm256_fmadd_ps(halfSplat(p0.loadUnaligned(fromByteOffset: BlockQ4_1.mOffset, as: UInt16.self)), _mm256_set1_ps(xs[b]), c0)
            c1 = _mm256_fmadd_ps(halfSplat(p1.loadUnaligned(fromByteOffset: BlockQ4_1.mOffset, as: UInt16.self)), _mm256_set1_ps(xs[b + 1]), c1)
            b += 2
        }
        if b < blocks {
            let p0 = row + BlockQ4_1.byteCount * b
            let d0 = halfSplat(p0.loadUnaligned(as: UInt16.self))
            acc0 = _mm256_fmadd_ps(_mm256_mul_ps(d0, _mm256_set1_ps(xd[b])), dotU4(p0 + BlockQ4_1.qsOffset, xq + 32 * b), acc0)
            c0 = _mm256_fmadd_ps(halfSplat(p0.loadUnaligned(fromByteOffset: BlockQ4_1.mOffset, as: UInt16.self)), _mm256_set1_ps(xs[b]), c0)
        }
        return hsum(_mm256_add_ps(acc0, acc1)) + _mm256_cvtss_f32(_mm256_add_ps(c0, c1))
        #else
        var acc: Float = 0, corr: Float = 0
        for b in 0..<blocks {
            let p = row + BlockQ4_1.byteCount * b
            let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
            let m = halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ4_1.mOffset, as: UInt16.self))
            acc += d * xd[b] * Float(nibbleDot(p + BlockQ4_1.qsOffset, xq + 32 * b))
            corr += m * xs[b]
        }
        return acc + corr
        #endif
    }

    // MARK: two rows at once (x loaded once per block for both)

    #if arch(x86_64) && TSLM_X86_AVX2
    /// q4_0 or q4_1 (`blockBytes` is `BlockQ4_0.byteCount` or `BlockQ4_1.byteCount`) rows
    /// `r0`, `r1` · quantized activations.
    @inline(__always)
    static func q4Pair(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, blockBytes: Int, _ xq: UnsafePointer<Int8>,
                       _ xd: UnsafePointer<Float>, _ xs: UnsafePointer<Float>, blocks: Int) -> (Float, Float) {
        let q4_1 = blockBytes == BlockQ4_1.byteCount
        let qsOffset = q4_1 ? BlockQ4_1.qsOffset : BlockQ4_0.qsOffset
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        var c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps()
        for b in 0..<blocks {
            let p0 = r0 + blockBytes * b, p1 = r1 + blockBytes * b
            if b & 3 == 0 { prefetch(p0); prefetch(p1) }
            let xv = UnsafeRawPointer(xq + 32 * b).load(as: __m256i.self)
            let dx = xd[b], sx = xs[b]
            let d0 = halfSplat(p0.loadUnaligned(as: UInt16.self))
            let d1 = halfSplat(p1.loadUnaligned(as: UInt16.self))
            let dxv = _mm256_set1_ps(dx), sxv = _mm256_set1_ps(sx)
            if q4_1 {
                acc0 = _mm256_fmadd_ps(_mm256_mul_ps(d0, dxv), dotU4(p0 + qsOffset, xv), acc0)
                acc1 = _mm256_fmadd_ps(_mm256_mul_ps(d1, dxv), dotU4(p1 + qsOffset, xv), acc1)
                c0 = _mm256_fmadd_ps(halfSplat(p0.loadUnaligned(fromByteOffset: BlockQ4_1.mOffset, as: UInt16.self)), sxv, c0)
                c1 = _mm256_fmadd_ps(halfSplat(p1.loadUnaligned(fromByteOffset: BlockQ4_1.mOffset, as: UInt16.self)), sxv, c1)
            } else {
                acc0 = q4_0Block(d0, dotU4(p0 + qsOffset, xv), dxv, sxv, acc0)
                acc1 = q4_0Block(d1, dotU4(p1 + qsOffset, xv), dxv, sxv, acc1)
            }
        }
        return q4_1 ? (hsum(acc0) + _mm256_cvtss_f32(c0), hsum(acc1) + _mm256_cvtss_f32(c1)) : (hsum(acc0), hsum(acc1))
    }

    /// q8_0 rows `r0`, `r1` · 16-bit activations.
    @inline(__always)
    static func q8PairWide(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ xq: UnsafePointer<Int16>,
                           _ xd: UnsafePointer<Float>, blocks: Int) -> (Float, Float) {
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        for b in 0..<blocks {
            let p0 = r0 + BlockQ8_0.byteCount * b, p1 = r1 + BlockQ8_0.byteCount * b
            if b & 1 == 0 { prefetch(p0); prefetch(p1) }
            let xr = UnsafeRawPointer(xq + 32 * b)
            let x0 = xr.load(as: __m256i.self), x1 = xr.load(fromByteOffset: 32, as: __m256i.self)
            let dx = xd[b]
            acc0 = _mm256_fmadd_ps(_mm256_mul_ps(halfSplat(p0.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(dx)), dotI8I16(p0 + BlockQ8_0.qsOffset, x0, x1), acc0)
            acc1 = _mm256_fmadd_ps(_mm256_mul_ps(halfSplat(p1.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(dx)), dotI8I16(p1 + BlockQ8_0.qsOffset, x0, x1), acc1)
        }
        return (hsum(acc0), hsum(acc1))
    }

    /// q8_0 rows `r0`, `r1` · quantized activations.
    @inline(__always)
    static func q8Pair(_ r0: UnsafeRawPointer, _ r1: UnsafeRawPointer, _ xq: UnsafePointer<Int8>,
                       _ xd: UnsafePointer<Float>, blocks: Int) -> (Float, Float) {
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        for b in 0..<blocks {
            let p0 = r0 + BlockQ8_0.byteCount * b, p1 = r1 + BlockQ8_0.byteCount * b
            let xv = UnsafeRawPointer(xq + 32 * b).load(as: __m256i.self)
            let dx = xd[b]
            acc0 = _mm256_fmadd_ps(_mm256_mul_ps(halfSplat(p0.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(dx)), dotI8(p0 + BlockQ8_0.qsOffset, xv), acc0)
            acc1 = _mm256_fmadd_ps(_mm256_mul_ps(halfSplat(p1.loadUnaligned(as: UInt16.self)), _mm256_set1_ps(dx)), dotI8(p1 + BlockQ8_0.qsOffset, xv), acc1)
        }
        return (hsum(acc0), hsum(acc1))
    }
    #endif

    // MARK: helpers

    #if arch(x86_64) && TSLM_X86_AVX2
    /// Horizontal sum of 8 floats.
    @inline(__always) static func hsum(_ v: __m256) -> Float {
        let q = v.lowHalf + v.highHalf
        let h = q.lowHalf + q.highHalf
        return h[0] + h[1]
    }

    /// One binary16 value in all 8 lanes, as floats. The block kernels take their scales this
    /// way rather than through `_cvtsh_ss`, which LLVM lowers to `vpinsrw` into whatever vector
    /// register is free, often a live accumulator: each block then waited for the previous
    /// block's FMA (q4_0 decode ran at half speed).
    @inline(__always) static func halfSplat(_ h: UInt16) -> __m256 {
        _mm256_cvtph_ps(_mm_set1_epi16(Int16(bitPattern: h)))
    }

    /// 8 halves at `p` → 8 floats.
    @inline(__always) static func halves(_ p: UnsafeRawPointer) -> __m256 {
        _mm256_cvtph_ps(p.loadUnaligned(as: __m128i.self))
    }

    /// 8 bf16 at `p` → 8 floats.
    @inline(__always) static func brains(_ p: UnsafeRawPointer) -> __m256 {
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(p.loadUnaligned(as: __m128i.self)), 16))
    }

    /// 32 signed bytes at `w` · 32 signed bytes at `x` → 8 lanes of partial sums, as floats.
    @inline(__always) static func dotI8(_ w: UnsafeRawPointer, _ x: UnsafePointer<Int8>) -> __m256 {
        dotI8(w, UnsafeRawPointer(x).load(as: __m256i.self))
    }

    @inline(__always) static func dotI8(_ w: UnsafeRawPointer, _ xv: __m256i) -> __m256 {
        let wv = w.loadUnaligned(as: __m256i.self)
        // |w| · (x with w's sign): the unsigned × signed form vpmaddubsw needs.
        let p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv))
        return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)))
    }

    /// 32 signed bytes at `w` · 32 int16 at `x` (64-byte aligned) → 8 lanes of partial sums, as
    /// floats (exact: |sum| ≤ 4·128·32767 < 2²⁴).
    @inline(__always) static func dotI8I16(_ w: UnsafeRawPointer, _ x: UnsafePointer<Int16>) -> __m256 {
        let xr = UnsafeRawPointer(x)
        return dotI8I16(w, xr.load(as: __m256i.self), xr.load(fromByteOffset: 32, as: __m256i.self))
    }

    @inline(__always) static func dotI8I16(_ w: UnsafeRawPointer, _ x0: __m256i, _ x1: __m256i) -> __m256 {
        let w0 = _mm256_cvtepi8_epi16(w.loadUnaligned(as: __m128i.self))
        let w1 = _mm256_cvtepi8_epi16((w + 16).loadUnaligned(as: __m128i.self))
        return _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(w0, x0), _mm256_madd_epi16(w1, x1)))
    }

    /// 16 bytes of packed nibbles at `w` (element j low, j+16 high) · 32 signed bytes at `x`
    /// → 8 lanes of partial sums of q·x with q in 0...15, as floats.
    @inline(__always) static func dotU4(_ w: UnsafeRawPointer, _ x: UnsafePointer<Int8>) -> __m256 {
        dotU4(w, UnsafeRawPointer(x).load(as: __m256i.self))
    }

    @inline(__always) static func dotU4(_ w: UnsafeRawPointer, _ xv: __m256i) -> __m256 {
        // The 16 bytes in both halves (one broadcast load), the upper half's 32-bit lanes shifted
        // right by 4: after the mask each byte holds its own high nibble (what the shift moved in
        // from the next byte lands above the mask).
        let both = _mm256_srlv_epi32(_mm256_broadcastsi128_si256(w.loadUnaligned(as: __m128i.self)), _mm256_set_epi32(4, 4, 4, 4, 0, 0, 0, 0))
        let q = _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
        let p = _mm256_maddubs_epi16(q, xv)
        return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)))
    }
    #else
    /// Σ q·x over one block of packed nibbles (q in 0...15) and 32 signed bytes.
    @inline(__always) static func nibbleDot(_ w: UnsafeRawPointer, _ x: UnsafePointer<Int8>) -> Int32 {
        let packed = w.loadUnaligned(as: SIMD16<UInt8>.self)
        let lo = SIMD16<Int16>(truncatingIfNeeded: packed & 0x0F)
        let hi = SIMD16<Int16>(truncatingIfNeeded: packed &>> 4)
        let xr = UnsafeRawPointer(x)
        let x0 = SIMD16<Int16>(truncatingIfNeeded: xr.load(as: SIMD16<Int8>.self))
        let x1 = SIMD16<Int16>(truncatingIfNeeded: xr.load(fromByteOffset: 16, as: SIMD16<Int8>.self))
        // |q·x| ≤ 15·128, so the sum of two products fits in Int16.
        let p = lo &* x0 &+ hi &* x1
        return SIMD16<Int32>(truncatingIfNeeded: p).wrappedSum()
    }
    #endif
}

/// Portable binary16 → binary32 conversion of 8 values, exact (subnormals, infinities, NaN),
/// with integer and float arithmetic only (no lane masks, which Swift lowers poorly).
enum Half8 {
    @inline(__always) static func toFloat(_ h: SIMD8<UInt16>) -> SIMD8<Float> {
        let bits = SIMD8<UInt32>(truncatingIfNeeded: h)
        let sign = (bits & 0x8000) &<< 16
        let magnitude = (bits & 0x7FFF) &<< 13
        // Rescaling by 2^112 turns the shifted half exponent into a float exponent and handles
        // subnormal halves exactly.
        let f = unsafeBitCast(magnitude, to: SIMD8<Float>.self) * SIMD8(repeating: 0x1p112)
        // Exponent 31 (infinity/NaN): bit 15 of (exp field + 1) is set only then; it becomes
        // an all-ones float exponent, keeping the mantissa.
        let special = (((bits & 0x7C00) &+ 0x0400) &>> 15) &* 0x7F80_0000
        return unsafeBitCast(unsafeBitCast(f, to: SIMD8<UInt32>.self) | special | sign, to: SIMD8<Float>.self)
    }
}
