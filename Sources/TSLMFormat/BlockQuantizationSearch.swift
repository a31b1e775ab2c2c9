/// How floats are turned into 4-bit blocks (`tslm quantize --quantizer`).
public enum BlockQuantizer: String, Sendable, CaseIterable {
    /// ggml's round-to-nearest (q4_0: scale = the largest-magnitude value / −8; q4_1: the
    /// block's min and (max − min) / 15), bit-identical to the `gguf` package.
    case roundToNearest = "rtn"
    /// A per-block search of the scale (q4_0) or scale and offset (q4_1) that minimizes the
    /// block's squared error, with the stored f16 values (`formats/tslm.md`, "Quantizers").
    /// q8_0 is unchanged (round-to-nearest).
    case search
}

/// The error-minimizing 4-bit quantizers (`BlockQuantizer.search`).
///
/// For each block of 32 values the search tries a fixed list of candidate grids, assigns each
/// value to its nearest level, fits the scale (q4_0) or scale and offset (q4_1) to that
/// assignment by least squares, rounds them to f16, re-assigns every value to the nearest level
/// of the stored grid, and keeps the candidate with the smallest squared error, round-to-nearest's
/// own block included (so a block is never worse than ggml's). Arithmetic is in Double, summed
/// in element order, so `tools/quant_search_reference.py` reproduces the blocks bit for bit.
extension BlockQuantization {
    /// q4_0 candidates: the largest magnitude is placed `steps` levels from zero, on either side
    /// (both signs of the scale are tried), 6...9 in steps of 1/8.
    static let q4_0Steps: [Double] = (0...24).map { 6.0 + 0.125 * Double($0) }
    /// q4_1 candidates: the block's range is split into `steps` levels (15 is round-to-nearest's
    /// grid; fewer overhang the range, more clip its ends), 12...18 in steps of 1/4.
    static let q4_1Steps: [Double] = (0...24).map { 12.0 + 0.25 * Double($0) }

    /// Quantizes `values` into q4_0 blocks with the scale search. With `importance` (one weight
    /// per column, an "imatrix": the mean square of the activations that multiply that column),
    /// the error of element g (counted from `firstIndex`) is weighted by importance[g % count].
    public static func quantizeQ4_0Search(_ values: UnsafeBufferPointer<Float>, into blocks: UnsafeMutableRawBufferPointer,
                                          importance: UnsafeBufferPointer<Float>? = nil, firstIndex: Int = 0) {
        let nb = values.count / BlockQ4_0.weights
        let half = BlockQ4_0.weights / 2
        var x = [Double](repeating: 0, count: 32), w = [Double](repeating: 1, count: 32)
        var q = [Int](repeating: 0, count: 32), bestQ = [Int](repeating: 0, count: 32)
        for b in 0..<nb {
            let src = values.baseAddress! + b * 32
            let out = blocks.baseAddress! + b * BlockQ4_0.byteCount
            // Round-to-nearest first: it is the block to beat.
            quantizeQ4_0(UnsafeBufferPointer(start: src, count: 32), into: UnsafeMutableRawBufferPointer(start: out, count: BlockQ4_0.byteCount))
            var amax = 0.0
            for i in 0..<32 { x[i] = Double(src[i]); amax = max(amax, abs(x[i])) }
            loadWeights(&w, importance, firstIndex + b * 32)
            guard amax > 0 else { continue }
            let qs = (out + BlockQ4_0.qsOffset).assumingMemoryBound(to: UInt8.self)
            var bestD = halfToFloat(loadU16(out))
            for j in 0..<half { bestQ[j] = Int(qs[j] & 0x0F) - 8; bestQ[j + half] = Int(qs[j] >> 4) - 8 }
            var bestErr = q4_0Error(x, w, Double(bestD), bestQ)
            for sign in [-1.0, 1.0] {
                for steps in q4_0Steps {
                    let d0 = sign * amax / steps
                    var sxq = 0.0, sqq = 0.0
                    for i in 0..<32 {
                        q[i] = clampRound(x[i] / d0, -8, 7)
                        sxq += w[i] * x[i] * Double(q[i]); sqq += w[i] * Double(q[i] * q[i])
                    }
                    guard sqq > 0 else { continue }
                    let dh = halfToFloat(floatToHalf(Float(sxq / sqq)))
                    guard dh != 0, dh.isFinite else { continue }
                    for i in 0..<32 { q[i] = clampRound(x[i] / Double(dh), -8, 7) }
                    let err = q4_0Error(x, w, Double(dh), q)
                    if err < bestErr { bestErr = err; bestD = dh; for i in 0..<32 { bestQ[i] = q[i] } }
                }
            }
            storeU16(floatToHalf(bestD), out)
            for j in 0..<half { qs[j] = UInt8(bestQ[j] + 8) | (UInt8(bestQ[j + half] + 8) << 4) }
        }
    }

    /// Quantizes `values` into q4_1 blocks with the scale and offset search (`importance` as in
    /// `quantizeQ4_0Search`).
    public static func quantizeQ4_1Search(_ values: UnsafeBufferPointer<Float>, into blocks: UnsafeMutableRawBufferPointer,
                                          importance: UnsafeBufferPointer<Float>? = nil, firstIndex: Int = 0) {
        let nb = values.count / BlockQ4_1.weights
        let half = BlockQ4_1.weights / 2
        var x = [Double](repeating: 0, count: 32), w = [Double](repeating: 1, count: 32)
        var q = [Int](repeating: 0, count: 32), bestQ = [Int](repeating: 0, count: 32)
        for b in 0..<nb {
            let src = values.baseAddress! + b * 32
            let out = blocks.baseAddress! + b * BlockQ4_1.byteCount
            quantizeQ4_1(UnsafeBufferPointer(start: src, count: 32), into: UnsafeMutableRawBufferPointer(start: out, count: BlockQ4_1.byteCount))
            var mn = Double.greatestFiniteMagnitude, mx = -Double.greatestFiniteMagnitude
            for i in 0..<32 { x[i] = Double(src[i]); mn = min(mn, x[i]); mx = max(mx, x[i]) }
            loadWeights(&w, importance, firstIndex + b * 32)
            guard mx > mn else { continue }
            let qs = (out + BlockQ4_1.qsOffset).assumingMemoryBound(to: UInt8.self)
            var bestD = halfToFloat(loadU16(out)), bestM = halfToFloat(loadU16(out + BlockQ4_1.mOffset))
            for j in 0..<half { bestQ[j] = Int(qs[j] & 0x0F); bestQ[j + half] = Int(qs[j] >> 4) }
            var bestErr = q4_1Error(x, w, Double(bestD), Double(bestM), bestQ)
            for steps in q4_1Steps {
                let d0 = (mx - mn) / steps
                // The grid centred on the block's range: the 15 steps overhang it equally.
                let m0 = mn - (15 - steps) * d0 / 2
                var s1 = 0.0, sq = 0.0, sqq = 0.0, sx = 0.0, sqx = 0.0
                for i in 0..<32 {
                    q[i] = clampRound((x[i] - m0) / d0, 0, 15)
                    let qi = Double(q[i])
                    s1 += w[i]; sq += w[i] * qi; sqq += w[i] * qi * qi; sx += w[i] * x[i]; sqx += w[i] * qi * x[i]
                }
                let det = s1 * sqq - sq * sq
                guard det > 0 else { continue }
                let dh = halfToFloat(floatToHalf(Float((s1 * sqx - sq * sx) / det)))
                let mh = halfToFloat(floatToHalf(Float((sqq * sx - sq * sqx) / det)))
                guard dh > 0, dh.isFinite, mh.isFinite else { continue }
                for i in 0..<32 { q[i] = clampRound((x[i] - Double(mh)) / Double(dh), 0, 15) }
                let err = q4_1Error(x, w, Double(dh), Double(mh), q)
                if err < bestErr { bestErr = err; bestD = dh; bestM = mh; for i in 0..<32 { bestQ[i] = q[i] } }
            }
            storeU16(floatToHalf(bestD), out)
            storeU16(floatToHalf(bestM), out + BlockQ4_1.mOffset)
            for j in 0..<half { qs[j] = UInt8(bestQ[j]) | (UInt8(bestQ[j + half]) << 4) }
        }
    }

    /// Σ w·(x − d·q)², in element order.
    static func q4_0Error(_ x: [Double], _ w: [Double], _ d: Double, _ q: [Int]) -> Double {
        var e = 0.0
        for i in 0..<32 { let r = x[i] - d * Double(q[i]); e += w[i] * (r * r) }
        return e
    }

    /// Σ w·(x − (d·q + m))², in element order.
    static func q4_1Error(_ x: [Double], _ w: [Double], _ d: Double, _ m: Double, _ q: [Int]) -> Double {
        var e = 0.0
        for i in 0..<32 { let r = x[i] - (d * Double(q[i]) + m); e += w[i] * (r * r) }
        return e
    }

    /// The block's 32 weights: 1 without importance, else importance[(start + i) % count].
    @inline(__always) static func loadWeights(_ w: inout [Double], _ importance: UnsafeBufferPointer<Float>?, _ start: Int) {
        guard let imp = importance, !imp.isEmpty else { return }
        for i in 0..<32 { w[i] = Double(imp[(start + i) % imp.count]) }
    }

    /// round(v) half away from zero, clamped to lo...hi.
    @inline(__always) static func clampRound(_ v: Double, _ lo: Int, _ hi: Int) -> Int {
        let r = v.rounded(.toNearestOrAwayFromZero)
        return r <= Double(lo) ? lo : (r >= Double(hi) ? hi : Int(r))
    }
}
