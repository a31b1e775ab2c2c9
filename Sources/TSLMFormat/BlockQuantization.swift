/// Reference (scalar) quantizers and dequantizers for the block types, with ggml's block math
/// and rounding (see `formats/tslm.md`). The kernels' SIMD versions are tested against these.
///
/// All functions work on whole blocks (layouts in `BlockLayouts.swift`): `values.count` must be
/// a multiple of 32 and `blocks` must hold `values.count / 32 * byteCount` bytes; callers (the
/// converter) check shapes before calling.
public enum BlockQuantization {
    /// Weights per block, the same for q8_0, q4_0 and q4_1.
    public static let blockSize = BlockQ8_0.weights

    // MARK: q8_0

    /// Quantizes `values` into q8_0 blocks.
    public static func quantizeQ8_0(_ values: UnsafeBufferPointer<Float>, into blocks: UnsafeMutableRawBufferPointer) {
        let nb = values.count / BlockQ8_0.weights
        for b in 0..<nb {
            let x = values.baseAddress! + b * BlockQ8_0.weights
            let out = blocks.baseAddress! + b * BlockQ8_0.byteCount
            var amax: Float = 0
            for i in 0..<BlockQ8_0.weights { amax = max(amax, abs(x[i])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            storeU16(floatToHalf(d), out)
            let q = (out + BlockQ8_0.qsOffset).assumingMemoryBound(to: Int8.self)
            for i in 0..<BlockQ8_0.weights { q[i] = quant8(x[i] * id) }
        }
    }

    /// Dequantizes q8_0 blocks into `values`.
    public static func dequantizeQ8_0(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        let nb = values.count / BlockQ8_0.weights
        for b in 0..<nb {
            let src = blocks.baseAddress! + b * BlockQ8_0.byteCount
            let d = halfToFloat(loadU16(src))
            let q = (src + BlockQ8_0.qsOffset).assumingMemoryBound(to: Int8.self)
            let y = values.baseAddress! + b * BlockQ8_0.weights
            for i in 0..<BlockQ8_0.weights { y[i] = Float(q[i]) * d }
        }
    }

    // MARK: q4_0

    /// Quantizes `values` into q4_0 blocks.
    public static func quantizeQ4_0(_ values: UnsafeBufferPointer<Float>, into blocks: UnsafeMutableRawBufferPointer) {
        let nb = values.count / BlockQ4_0.weights
        for b in 0..<nb {
            let x = values.baseAddress! + b * BlockQ4_0.weights
            let out = blocks.baseAddress! + b * BlockQ4_0.byteCount
            var amax: Float = 0, mx: Float = 0
            for i in 0..<BlockQ4_0.weights where amax < abs(x[i]) { amax = abs(x[i]); mx = x[i] }
            let d = mx / -8
            let id: Float = d != 0 ? 1 / d : 0
            storeU16(floatToHalf(d), out)
            let qs = (out + BlockQ4_0.qsOffset).assumingMemoryBound(to: UInt8.self)
            for j in 0..<BlockQ4_0.weights / 2 {
                let lo = quant4(x[j] * id + 8.5)
                let hi = quant4(x[j + BlockQ4_0.weights / 2] * id + 8.5)
                qs[j] = lo | (hi << 4)
            }
        }
    }

    /// Dequantizes q4_0 blocks into `values`.
    public static func dequantizeQ4_0(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        let nb = values.count / BlockQ4_0.weights
        for b in 0..<nb {
            let src = blocks.baseAddress! + b * BlockQ4_0.byteCount
            let d = halfToFloat(loadU16(src))
            let qs = (src + BlockQ4_0.qsOffset).assumingMemoryBound(to: UInt8.self)
            let y = values.baseAddress! + b * BlockQ4_0.weights
            for j in 0..<BlockQ4_0.weights / 2 {
                y[j] = Float(Int32(qs[j] & 0x0F) - 8) * d
                y[j + BlockQ4_0.weights / 2] = Float(Int32(qs[j] >> 4) - 8) * d
            }
        }
    }

    // MARK: q4_1

    /// Quantizes `values` into q4_1 blocks.
    public static func quantizeQ4_1(_ values: UnsafeBufferPointer<Float>, into blocks: UnsafeMutableRawBufferPointer) {
        let nb = values.count / BlockQ4_1.weights
        for b in 0..<nb {
            let x = values.baseAddress! + b * BlockQ4_1.weights
            let out = blocks.baseAddress! + b * BlockQ4_1.byteCount
            var mn = Float.greatestFiniteMagnitude, mx = -Float.greatestFiniteMagnitude
            for i in 0..<BlockQ4_1.weights { mn = min(mn, x[i]); mx = max(mx, x[i]) }
            let d = (mx - mn) / 15
            let id: Float = d != 0 ? 1 / d : 0
            storeU16(floatToHalf(d), out)
            storeU16(floatToHalf(mn), out + BlockQ4_1.mOffset)
            let qs = (out + BlockQ4_1.qsOffset).assumingMemoryBound(to: UInt8.self)
            for j in 0..<BlockQ4_1.weights / 2 {
                let lo = quant4((x[j] - mn) * id + 0.5)
                let hi = quant4((x[j + BlockQ4_1.weights / 2] - mn) * id + 0.5)
                qs[j] = lo | (hi << 4)
            }
        }
    }

    /// Dequantizes q4_1 blocks into `values`.
    public static func dequantizeQ4_1(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        let nb = values.count / BlockQ4_1.weights
        for b in 0..<nb {
            let src = blocks.baseAddress! + b * BlockQ4_1.byteCount
            let d = halfToFloat(loadU16(src))
            let m = halfToFloat(loadU16(src + BlockQ4_1.mOffset))
            let qs = (src + BlockQ4_1.qsOffset).assumingMemoryBound(to: UInt8.self)
            let y = values.baseAddress! + b * BlockQ4_1.weights
            for j in 0..<BlockQ4_1.weights / 2 {
                y[j] = Float(qs[j] & 0x0F) * d + m
                y[j + BlockQ4_1.weights / 2] = Float(qs[j] >> 4) * d + m
            }
        }
    }

    /// Rounds half away from zero and clamps into -128...127 (NaN → 0), as ggml's `roundf`.
    @inline(__always) static func quant8(_ v: Float) -> Int8 {
        guard !v.isNaN else { return 0 }
        return Int8(max(-128, min(127, v.rounded(.toNearestOrAwayFromZero))))
    }

    /// Truncates toward zero and clamps into 0...15 (NaN → 0), as ggml's `MIN(15, (int8_t)v)`.
    @inline(__always) static func quant4(_ v: Float) -> UInt8 {
        guard !v.isNaN else { return 0 }
        let t = v.rounded(.towardZero)
        return UInt8(max(0, min(15, t)))
    }
}

@inline(__always) func loadU16(_ p: UnsafeRawPointer) -> UInt16 {
    UInt16(littleEndian: p.loadUnaligned(as: UInt16.self))
}

@inline(__always) func storeU16(_ v: UInt16, _ p: UnsafeMutableRawPointer) {
    p.storeBytes(of: v.littleEndian, as: UInt16.self)
}
