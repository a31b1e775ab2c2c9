import TSLMFormat

/// SIMD decoding of K super-blocks (q4_k, q5_k, q6_k) to f32 for the GEMM's weight panels:
/// the same products as the reference dequantizers (`KQuants`, ggml's order: (d·sc)·q − dmin·m),
/// so the values are identical, 16 lanes at a time.
enum KQuantDecode {
    /// Decodes `count` weights (a multiple of 256) of K type `dtype` starting at `p` into `out`.
    @inline(__always)
    static func decode(_ dtype: DType, _ p: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        let o = UnsafeMutableRawPointer(out)
        for s in 0..<(count / 256) {
            let block = p + s * dtype.bytesPerBlock, y = o + 4 * 256 * s
            switch dtype {
            case .q6_k: q6_K(block, y)
            case .q5_k: q45_K(block, fifthBit: true, y)
            default: q45_K(block, fifthBit: false, y)
            }
        }
    }

    @inline(__always)
    static func q45_K(_ p: UnsafeRawPointer, fifthBit: Bool, _ y: UnsafeMutableRawPointer) {
        let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
        let dmin = halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ4_K.dminOffset, as: UInt16.self))
        let (sc, mn) = RowDot.kScalesMins(p + BlockQ4_K.scalesOffset)
        let qs = p + (fifthBit ? BlockQ5_K.qsOffset : BlockQ4_K.qsOffset)
        for c in 0..<4 {
            let d0 = SIMD16<Float>(repeating: d * Float(sc[2 * c])), m0 = SIMD16<Float>(repeating: dmin * Float(mn[2 * c]))
            let d1 = SIMD16<Float>(repeating: d * Float(sc[2 * c + 1])), m1 = SIMD16<Float>(repeating: dmin * Float(mn[2 * c + 1]))
            for half in 0..<2 {
                let raw = qs.loadUnaligned(fromByteOffset: 32 * c + 16 * half, as: SIMD16<UInt8>.self)
                var lo = raw & 0x0F, hi = raw &>> 4
                if fifthBit {
                    let h = p.loadUnaligned(fromByteOffset: BlockQ5_K.qhOffset + 16 * half, as: SIMD16<UInt8>.self)
                    lo |= ((h &>> UInt8(2 * c)) & 1) &<< 4
                    hi |= ((h &>> UInt8(2 * c + 1)) & 1) &<< 4
                }
                let ql = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: lo)), qh = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: hi))
                y.storeBytes(of: d0 * ql - m0, toByteOffset: 4 * (64 * c + 16 * half), as: SIMD16<Float>.self)
                y.storeBytes(of: d1 * qh - m1, toByteOffset: 4 * (64 * c + 32 + 16 * half), as: SIMD16<Float>.self)
            }
        }
    }

    @inline(__always)
    static func q6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutableRawPointer) {
        let d = halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ6_K.dOffset, as: UInt16.self))
        for h in 0..<2 {
            for part in 0..<2 {  // l in 16·part ..< 16·part + 16
                let qlA = p.loadUnaligned(fromByteOffset: BlockQ6_K.qlOffset + 64 * h + 16 * part, as: SIMD16<UInt8>.self)
                let qlB = p.loadUnaligned(fromByteOffset: BlockQ6_K.qlOffset + 64 * h + 32 + 16 * part, as: SIMD16<UInt8>.self)
                let qh = p.loadUnaligned(fromByteOffset: BlockQ6_K.qhOffset + 32 * h + 16 * part, as: SIMD16<UInt8>.self)
                // Weights 128h + 32k + 16·part + i (k = 0…3): sub-block (128h + 32k + 16·part) / 16.
                let e = 128 * h + 16 * part
                store(d, p, y, e, (qlA & 0x0F) | ((qh & 3) &<< 4))
                store(d, p, y, e + 32, (qlB & 0x0F) | (((qh &>> 2) & 3) &<< 4))
                store(d, p, y, e + 64, (qlA &>> 4) | (((qh &>> 4) & 3) &<< 4))
                store(d, p, y, e + 96, (qlB &>> 4) | (((qh &>> 6) & 3) &<< 4))
            }
        }
    }

    /// Weights e ..< e + 16 of a q6_k super-block from their levels (0…63): (d·scale)·(q − 32).
    @inline(__always)
    static func store(_ d: Float, _ p: UnsafeRawPointer, _ y: UnsafeMutableRawPointer, _ e: Int, _ levels: SIMD16<UInt8>) {
        let scale = Float(p.load(fromByteOffset: BlockQ6_K.scalesOffset + e / 16, as: Int8.self))
        let q = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: levels) &- 32)
        y.storeBytes(of: SIMD16<Float>(repeating: d * scale) * q, toByteOffset: 4 * e, as: SIMD16<Float>.self)
    }
}
