/// Quantizers for the K super-block types q4_k, q5_k and q6_k (`formats/tslm.md`, "Quantizers").
///
/// Each minimizes a weighted squared error in two stages:
///
/// 1. Per sub-block (32 weights for q4_k/q5_k, 16 for q6_k) a float scale (and for q4_k/q5_k an
///    offset ≤ 0) is searched: for each candidate grid the weights are rounded to their nearest
///    level, the scale (and offset) refitted to those levels by weighted least squares, and the
///    candidate with the smallest error kept.
/// 2. The sub-block scales (and offsets) are quantized to the block's 6-bit (q6_k: 8-bit)
///    scale codes relative to one f16 super-block scale, and every weight is re-assigned to its
///    nearest level of the grid as stored.
///
/// The weight of element i is `importance[i] · sqrt(σ² + x_i²)` with an imatrix (σ² = twice the
/// super-block's mean square), otherwise `mean|x| + |x_i|` (q4_k, q5_k) or `x_i²` (q6_k), the
/// choices llama.cpp's K-quantizers make. Non-finite inputs never trap: NaN rounds to level 0.
extension KQuants {
    /// Quantizes `values` (a whole number of 256-weight super-blocks) into q4_k blocks.
    /// Element g (counted from `firstIndex`) is weighted by `importance[g % importance.count]`
    /// when given.
    public static func quantizeQ4_K(_ values: UnsafeBufferPointer<Float>, into blocks: UnsafeMutableRawBufferPointer,
                                    importance: UnsafeBufferPointer<Float>? = nil, firstIndex: Int = 0) {
        quantizeScaleMin(values, into: blocks, nmax: 15, blockBytes: BlockQ4_K.byteCount,
                         importance: importance, firstIndex: firstIndex) { q, out in
            let qs = out + BlockQ4_K.qsOffset
            for c in 0..<4 {
                for l in 0..<32 {
                    qs.storeBytes(of: q[64 * c + l] | q[64 * c + 32 + l] << 4, toByteOffset: 32 * c + l, as: UInt8.self)
                }
            }
        }
    }

    /// Quantizes `values` into q5_k blocks (as `quantizeQ4_K`).
    public static func quantizeQ5_K(_ values: UnsafeBufferPointer<Float>, into blocks: UnsafeMutableRawBufferPointer,
                                    importance: UnsafeBufferPointer<Float>? = nil, firstIndex: Int = 0) {
        quantizeScaleMin(values, into: blocks, nmax: 31, blockBytes: BlockQ5_K.byteCount,
                         importance: importance, firstIndex: firstIndex) { q, out in
            let qs = out + BlockQ5_K.qsOffset, qh = out + BlockQ5_K.qhOffset
            for l in 0..<32 {
                var h: UInt8 = 0
                for c in 0..<4 {
                    let a = q[64 * c + l], b = q[64 * c + 32 + l]
                    qs.storeBytes(of: (a & 0x0F) | (b & 0x0F) << 4, toByteOffset: 32 * c + l, as: UInt8.self)
                    h |= (a >> 4) << UInt8(2 * c) | (b >> 4) << UInt8(2 * c + 1)
                }
                qh.storeBytes(of: h, toByteOffset: l, as: UInt8.self)
            }
        }
    }

    /// Quantizes `values` into q6_k blocks (as `quantizeQ4_K`).
    public static func quantizeQ6_K(_ values: UnsafeBufferPointer<Float>, into blocks: UnsafeMutableRawBufferPointer,
                                    importance: UnsafeBufferPointer<Float>? = nil, firstIndex: Int = 0) {
        guard let src = values.baseAddress, let dst = blocks.baseAddress else { return }
        let n = min(values.count / 256, blocks.count / BlockQ6_K.byteCount)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: 256)
        let q = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        var scales = [Float](repeating: 0, count: 16)
        defer { w.deallocate(); q.deallocate() }
        for b in 0..<n {
            let x = src + 256 * b, out = dst + BlockQ6_K.byteCount * b
            loadWeights(x, w, importance: importance, start: firstIndex + 256 * b, plain: { $0 * $0 })
            for j in 0..<16 { scales[j] = fitScale(x + 16 * j, w + 16 * j, count: 16, nmin: -32, nmax: 31) }
            // The scale of largest magnitude becomes code −128 (ggml's choice: it keeps the
            // extreme's sign on the longer half of the int8 range).
            var big: Float = 0
            for s in scales where abs(s) > abs(big) { big = s }
            let d = floatToHalf(big / -128)
            let df = halfToFloat(d)
            let inv: Float = df != 0 && df.isFinite ? 1 / df : 0
            for j in 0..<16 {
                let sc = Int8(clampRound(scales[j] * inv, -128, 127))
                out.storeBytes(of: sc, toByteOffset: BlockQ6_K.scalesOffset + j, as: Int8.self)
                let a = df * Float(sc)
                let ia: Float = a != 0 && a.isFinite ? 1 / a : 0
                for i in 0..<16 { q[16 * j + i] = UInt8(clampRound(x[16 * j + i] * ia, -32, 31) + 32) }
            }
            out.storeBytes(of: d.littleEndian, toByteOffset: BlockQ6_K.dOffset, as: UInt16.self)
            for h in 0..<2 {
                for l in 0..<32 {
                    let q1 = q[128 * h + l], q2 = q[128 * h + l + 32], q3 = q[128 * h + l + 64], q4 = q[128 * h + l + 96]
                    out.storeBytes(of: (q1 & 0x0F) | (q3 & 0x0F) << 4, toByteOffset: BlockQ6_K.qlOffset + 64 * h + l, as: UInt8.self)
                    out.storeBytes(of: (q2 & 0x0F) | (q4 & 0x0F) << 4, toByteOffset: BlockQ6_K.qlOffset + 64 * h + l + 32, as: UInt8.self)
                    out.storeBytes(of: (q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6,
                                   toByteOffset: BlockQ6_K.qhOffset + 32 * h + l, as: UInt8.self)
                }
            }
        }
    }

    // MARK: - Shared stages

    /// q4_k / q5_k: per sub-block of 32 an affine fit x ≈ a·q + b (a ≥ 0, b ≤ 0, q in 0...nmax),
    /// then 6-bit codes for the a's and −b's, the levels `q` re-assigned on the stored grid and
    /// handed to `pack` with the block (d, dmin and the scale codes already written).
    static func quantizeScaleMin(_ values: UnsafeBufferPointer<Float>, into blocks: UnsafeMutableRawBufferPointer,
                                 nmax: Int, blockBytes: Int, importance: UnsafeBufferPointer<Float>?, firstIndex: Int,
                                 pack: (UnsafeMutablePointer<UInt8>, UnsafeMutableRawPointer) -> Void) {
        guard let src = values.baseAddress, let dst = blocks.baseAddress else { return }
        let n = min(values.count / 256, blocks.count / blockBytes)
        let w = UnsafeMutablePointer<Float>.allocate(capacity: 256)
        let q = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        var a = [Float](repeating: 0, count: 8), m = [Float](repeating: 0, count: 8)
        defer { w.deallocate(); q.deallocate() }
        for b in 0..<n {
            let x = src + 256 * b, out = dst + blockBytes * b
            loadWeights(x, w, importance: importance, start: firstIndex + 256 * b, plain: nil)
            for j in 0..<8 {
                let fit = fitAffine(x + 32 * j, w + 32 * j, nmax: nmax)
                a[j] = fit.scale
                m[j] = -fit.offset
            }
            // The largest (finite) scale and offset, +0 when none is positive (never −0: that
            // would store a negative-zero dmin).
            var maxA: Float = 0, maxM: Float = 0
            for j in 0..<8 {
                if a[j].isFinite && a[j] > maxA { maxA = a[j] }
                if m[j].isFinite && m[j] > maxM { maxM = m[j] }
            }
            let d = floatToHalf(maxA / 63), dmin = floatToHalf(maxM / 63)
            let df = halfToFloat(d), dminf = halfToFloat(dmin)
            let invA: Float = df > 0 && df.isFinite ? 1 / df : 0
            let invM: Float = dminf > 0 && dminf.isFinite ? 1 / dminf : 0
            var sc = [UInt8](repeating: 0, count: 8), mc = [UInt8](repeating: 0, count: 8)
            for j in 0..<8 {
                sc[j] = UInt8(clampRound(a[j] * invA, 0, 63))
                mc[j] = UInt8(clampRound(m[j] * invM, 0, 63))
                let scale = df * Float(sc[j]), offset = dminf * Float(mc[j])
                let inv: Float = scale > 0 && scale.isFinite ? 1 / scale : 0
                for i in 0..<32 { q[32 * j + i] = UInt8(clampRound((x[32 * j + i] + offset) * inv, 0, nmax)) }
            }
            out.storeBytes(of: d.littleEndian, as: UInt16.self)
            out.storeBytes(of: dmin.littleEndian, toByteOffset: 2, as: UInt16.self)
            var packed = [UInt8](repeating: 0, count: 12)
            for j in 0..<8 {
                if j < 4 {
                    packed[j] = sc[j]
                    packed[j + 4] = mc[j]
                } else {
                    packed[j + 4] = (sc[j] & 0x0F) | (mc[j] & 0x0F) << 4
                    packed[j - 4] |= (sc[j] >> 4) << 6
                    packed[j] |= (mc[j] >> 4) << 6
                }
            }
            for i in 0..<12 { out.storeBytes(of: packed[i], toByteOffset: 4 + i, as: UInt8.self) }
            pack(q, out)
        }
    }

    /// The element weights of one super-block (see the type's comment); `plain` replaces the
    /// default `mean|x| + |x_i|` of a sub-block of 32 when given.
    static func loadWeights(_ x: UnsafePointer<Float>, _ w: UnsafeMutablePointer<Float>, importance: UnsafeBufferPointer<Float>?,
                            start: Int, plain: ((Float) -> Float)?) {
        var sumSquares: Float = 0
        for i in 0..<256 where x[i].isFinite { sumSquares += x[i] * x[i] }
        if let importance, importance.count > 0 {
            let sigma2 = 2 * sumSquares / 256
            for i in 0..<256 {
                let imp = importance[(start + i) % importance.count]
                w[i] = max(0, imp.isFinite ? imp : 0) * (sigma2 + x[i] * x[i]).squareRoot()
            }
        } else if let plain {
            for i in 0..<256 { w[i] = plain(x[i]) }
        } else {
            for j in 0..<8 {
                var s: Float = 0
                for i in 0..<32 where x[32 * j + i].isFinite { s += x[32 * j + i] * x[32 * j + i] }
                let mean = (s / 32).squareRoot()
                for i in 0..<32 { w[32 * j + i] = mean + abs(x[32 * j + i]) }
            }
        }
        for i in 0..<256 where !w[i].isFinite { w[i] = 0 }
    }

    /// The best affine fit x ≈ scale·q + offset of one sub-block of 32 (scale ≥ 0, offset ≤ 0,
    /// q in 0...nmax) over 21 candidate grids: the range [min(x, 0), max x] split into
    /// nmax − 1, nmax − 0.9, …, nmax + 1 steps, each refitted by weighted least squares.
    static func fitAffine(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, nmax: Int) -> (scale: Float, offset: Float) {
        var lo: Float = 0, hi = -Float.greatestFiniteMagnitude
        for i in 0..<32 where x[i].isFinite {
            if x[i] < lo { lo = x[i] }
            if x[i] > hi { hi = x[i] }
        }
        guard hi > lo else { return (0, lo) }
        var best = (scale: (hi - lo) / Float(nmax), offset: lo)
        var bestErr = affineError(x, w, best.scale, best.offset, nmax: nmax)
        var qv = [Float](repeating: 0, count: 32)
        for step in 0...20 {
            let levels = Float(nmax) - 1 + 0.1 * Float(step)
            let inv = levels / (hi - lo)
            var sw: Float = 0, sq: Float = 0, sqq: Float = 0, sx: Float = 0, sqx: Float = 0
            for i in 0..<32 {
                let q = Float(clampRound((x[i] - lo) * inv, 0, nmax))
                qv[i] = q
                let wi = w[i], xi = x[i].isFinite ? x[i] : 0
                sw += wi; sq += wi * q; sqq += wi * q * q; sx += wi * xi; sqx += wi * q * xi
            }
            let det = sw * sqq - sq * sq
            guard det > 0 else { continue }
            var scale = (sw * sqx - sq * sx) / det
            var offset = (sqq * sx - sq * sqx) / det
            if offset > 0 {
                offset = 0
                scale = sqq > 0 ? sqx / sqq : 0
            }
            guard scale > 0, scale.isFinite, offset.isFinite else { continue }
            let err = affineError(x, w, scale, offset, nmax: nmax)
            if err < bestErr {
                bestErr = err
                best = (scale, offset)
            }
        }
        return best
    }

    /// Σ w·(x − (scale·q + offset))² with each q the nearest level of the grid.
    @inline(__always)
    static func affineError(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ scale: Float, _ offset: Float, nmax: Int) -> Float {
        let inv: Float = scale > 0 ? 1 / scale : 0
        var err: Float = 0
        for i in 0..<32 where x[i].isFinite {
            let q = Float(clampRound((x[i] - offset) * inv, 0, nmax))
            let e = scale * q + offset - x[i]
            err += w[i] * e * e
        }
        return err
    }

    /// The best symmetric fit x ≈ scale·q (q in nmin...nmax) of `count` values over 19
    /// candidate grids that put the value of largest magnitude at level −(|nmin| + 0.1·k),
    /// k = −9…9, each refitted by weighted least squares.
    static func fitScale(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, count: Int, nmin: Int, nmax: Int) -> Float {
        var big: Float = 0
        for i in 0..<count where x[i].isFinite && abs(x[i]) > abs(big) { big = x[i] }
        guard big != 0 else { return 0 }
        var best: Float = big / Float(nmin)
        var bestErr = scaleError(x, w, count: count, best, nmin: nmin, nmax: nmax)
        for k in -9...9 {
            let inv = (Float(nmin) - 0.1 * Float(k)) / big
            var sqq: Float = 0, sqx: Float = 0
            for i in 0..<count where x[i].isFinite {
                let q = Float(clampRound(x[i] * inv, nmin, nmax))
                sqq += w[i] * q * q
                sqx += w[i] * q * x[i]
            }
            guard sqq > 0 else { continue }
            let scale = sqx / sqq
            guard scale != 0, scale.isFinite else { continue }
            let err = scaleError(x, w, count: count, scale, nmin: nmin, nmax: nmax)
            if err < bestErr {
                bestErr = err
                best = scale
            }
        }
        return best
    }

    @inline(__always)
    static func scaleError(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, count: Int, _ scale: Float, nmin: Int, nmax: Int) -> Float {
        let inv: Float = 1 / scale
        var err: Float = 0
        for i in 0..<count where x[i].isFinite {
            let e = scale * Float(clampRound(x[i] * inv, nmin, nmax)) - x[i]
            err += w[i] * e * e
        }
        return err
    }

    /// Rounds half away from zero and clamps into lo...hi; NaN gives the level nearest 0.
    @inline(__always) static func clampRound(_ v: Float, _ lo: Int, _ hi: Int) -> Int {
        guard !v.isNaN else { return max(lo, min(hi, 0)) }
        let r = v.rounded(.toNearestOrAwayFromZero)
        if r <= Float(lo) { return lo }
        if r >= Float(hi) { return hi }
        return Int(r)
    }
}
