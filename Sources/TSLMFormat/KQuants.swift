/// Scalar reference dequantizers for ggml's Q5_0, Q5_1 and 256-weight "K" super-block types
/// Q2_K … Q8_K. `.tslm` stores Q4_K, Q5_K and Q6_K as its q4_k, q5_k and q6_k (byte for byte;
/// `DTypeConversion` and the kernels' scalar twins decode with these functions); the GGUF
/// importer turns tensors of the other types into f32. The quantizers are in
/// `KQuantization.swift`.
///
/// Each function decodes whole blocks: it writes `min(values.count / blockSize,
/// blocks.count / bytesPerBlock)` blocks and never reads or writes outside the two buffers.
/// Callers pass exactly matching sizes (the importer validates shapes first).
///
/// The block layouts are ggml's (all fields little-endian, `f16` = IEEE binary16):
///
/// | type | weights | bytes | layout |
/// |---|---|---|---|
/// | Q5_0 | 32 | 22 | `f16 d; u32 qh; u8 qs[16]`; x = d·(q − 16) |
/// | Q5_1 | 32 | 24 | `f16 d; f16 m; u32 qh; u8 qs[16]`; x = d·q + m |
/// | Q2_K | 256 | 84 | `u8 scales[16]; u8 qs[64]; f16 d; f16 dmin` |
/// | Q3_K | 256 | 110 | `u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d` |
/// | Q4_K | 256 | 144 | `f16 d; f16 dmin; u8 scales[12]; u8 qs[128]` |
/// | Q5_K | 256 | 176 | `f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]` |
/// | Q6_K | 256 | 210 | `u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d` |
/// | Q8_K | 256 | 292 | `f32 d; i8 qs[256]; i16 bsums[16]`; x = d·q |
///
/// The arithmetic (which products are formed first, all in binary32) follows ggml's reference
/// `dequantize_row_*` functions, so the results are bit-identical to them.
public enum KQuants {
    /// Weights per K super-block.
    public static let superBlockSize = 256

    // MARK: - 32-weight 5-bit types

    /// Q5_0: element `j` (j < 16) is the low nibble of `qs[j]` plus bit `j` of `qh` as bit 4;
    /// element `j + 16` is the high nibble of `qs[j]` plus bit `j + 16` of `qh`.
    public static func dequantizeQ5_0(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        forEachBlock(blocks, values, elements: 32, bytes: 22) { src, y in
            let d = halfToFloat(u16(src, 0))
            let qh = u32(src, 2)
            for j in 0..<16 {
                let byte = src.load(fromByteOffset: 6 + j, as: UInt8.self)
                let lo = Int32(byte & 0x0F) | Int32((qh >> UInt32(j)) & 1) << 4
                let hi = Int32(byte >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float(lo - 16)
                y[j + 16] = d * Float(hi - 16)
            }
        }
    }

    /// Q5_1: as Q5_0 with an unsigned q and an added minimum: x = d·q + m.
    public static func dequantizeQ5_1(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        forEachBlock(blocks, values, elements: 32, bytes: 24) { src, y in
            let d = halfToFloat(u16(src, 0))
            let m = halfToFloat(u16(src, 2))
            let qh = u32(src, 4)
            for j in 0..<16 {
                let byte = src.load(fromByteOffset: 8 + j, as: UInt8.self)
                let lo = UInt32(byte & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
                let hi = UInt32(byte >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = d * Float(lo) + m
                y[j + 16] = d * Float(hi) + m
            }
        }
    }

    // MARK: - K super-blocks

    /// Q2_K: 16 sub-blocks of 16 weights; `scales[i]` holds the sub-block's 4-bit scale (low
    /// nibble) and 4-bit min (high nibble); x = (d·scale)·q − (dmin·min). Weight `e` of a half
    /// `h = e / 128` uses bits `2·s` (s = (e % 128) / 32) of `qs[32·h + e % 32]`.
    public static func dequantizeQ2_K(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        forEachBlock(blocks, values, elements: 256, bytes: 84) { src, y in
            let d = halfToFloat(u16(src, 80))
            let dmin = halfToFloat(u16(src, 82))
            for e in 0..<256 {
                let sc = src.load(fromByteOffset: e / 16, as: UInt8.self)
                let dl = d * Float(sc & 0x0F)
                let ml = dmin * Float(sc >> 4)
                let h = e / 128, s = (e % 128) / 32, l = e % 32
                let q = (src.load(fromByteOffset: 16 + 32 * h + l, as: UInt8.self) >> UInt8(2 * s)) & 3
                y[e] = dl * Float(q) - ml
            }
        }
    }

    /// Q3_K: 16 sub-blocks of 16 weights with signed 6-bit scales (stored + 32); each weight
    /// has 2 low bits in `qs` (as Q2_K) and a high bit in `hmask`: bit `e / 32` of
    /// `hmask[e % 32]`; a clear high bit subtracts 4. x = (d·scale)·q.
    public static func dequantizeQ3_K(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        forEachBlock(blocks, values, elements: 256, bytes: 110) { src, y in
            let d = halfToFloat(u16(src, 108))
            let sc = src + 96
            for j in 0..<16 {
                let lowByte = sc.load(fromByteOffset: j % 8, as: UInt8.self)
                let low = j < 8 ? lowByte & 0x0F : lowByte >> 4
                let high = (sc.load(fromByteOffset: 8 + j % 4, as: UInt8.self) >> UInt8(2 * (j / 4))) & 3
                let dl = d * Float(Int32(low | high << 4) - 32)
                for e in (16 * j)..<(16 * j + 16) {
                    let h = e / 128, s = (e % 128) / 32, l = e % 32
                    let q = Int32((src.load(fromByteOffset: 32 + 32 * h + l, as: UInt8.self) >> UInt8(2 * s)) & 3)
                    let bit = (src.load(fromByteOffset: l, as: UInt8.self) >> UInt8(e / 32)) & 1
                    y[e] = dl * Float(q - (bit == 0 ? 4 : 0))
                }
            }
        }
    }

    /// Unpacks the 6-bit scale and min of sub-block `j` (0..<8) from the 12 packed bytes of a
    /// Q4_K or Q5_K super-block.
    @inline(__always)
    public static func scaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (scale: UInt8, min: UInt8) {
        let b = { (i: Int) in s.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 {
            return (b(j) & 63, b(j + 4) & 63)
        }
        return ((b(j + 4) & 0x0F) | ((b(j - 4) >> 6) << 4), (b(j + 4) >> 4) | ((b(j) >> 6) << 4))
    }

    /// Q4_K: 8 sub-blocks of 32 weights; x = (d·scale)·q − (dmin·min). Each 64-weight chunk
    /// `c` is 32 bytes of `qs`: low nibbles are sub-block `2c`, high nibbles sub-block `2c+1`.
    public static func dequantizeQ4_K(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        dequantizeScaleMin(blocks, into: values, fifthBit: false)
    }

    /// Q5_K: Q4_K plus a fifth bit per weight: bit `e / 32` of `qh[e % 32]`.
    public static func dequantizeQ5_K(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        dequantizeScaleMin(blocks, into: values, fifthBit: true)
    }

    /// Q4_K (`fifthBit` false: 144-byte blocks, `qs` at 16) or Q5_K (176 bytes, `qh` at 16,
    /// `qs` at 48).
    static func dequantizeScaleMin(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>, fifthBit: Bool) {
        forEachBlock(blocks, values, elements: 256, bytes: fifthBit ? 176 : 144) { src, y in
            let d = halfToFloat(u16(src, 0))
            let dmin = halfToFloat(u16(src, 2))
            let qh = src + 16
            let qs = src + (fifthBit ? 48 : 16)
            for c in 0..<4 {
                let (s0, m0) = scaleMin(src + 4, 2 * c)
                let (s1, m1) = scaleMin(src + 4, 2 * c + 1)
                let d0 = d * Float(s0), dm0 = dmin * Float(m0)
                let d1 = d * Float(s1), dm1 = dmin * Float(m1)
                for l in 0..<32 {
                    let byte = qs.load(fromByteOffset: 32 * c + l, as: UInt8.self)
                    var lo = byte & 0x0F, hi = byte >> 4
                    if fifthBit {
                        let h = qh.load(fromByteOffset: l, as: UInt8.self)
                        lo |= ((h >> UInt8(2 * c)) & 1) << 4
                        hi |= ((h >> UInt8(2 * c + 1)) & 1) << 4
                    }
                    y[64 * c + l] = d0 * Float(lo) - dm0
                    y[64 * c + 32 + l] = d1 * Float(hi) - dm1
                }
            }
        }
    }

    /// Q6_K: 16 sub-blocks of 16 weights with int8 scales; q = (4 low bits | 2 high bits) − 32,
    /// x = (d·scale)·q. In each 128-weight half `h`, weight `64·s + i` takes the low (s = 0)
    /// or high (s = 1) nibble of `ql[64·h + i]`, and weight `32·k + l` takes bits `2·k` of
    /// `qh[32·h + l]`.
    public static func dequantizeQ6_K(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        forEachBlock(blocks, values, elements: 256, bytes: 210) { src, y in
            let d = halfToFloat(u16(src, 208))
            for e in 0..<256 {
                let h = e / 128, r = e % 128
                let lowByte = src.load(fromByteOffset: 64 * h + r % 64, as: UInt8.self)
                let low = r < 64 ? lowByte & 0x0F : lowByte >> 4
                let high = (src.load(fromByteOffset: 128 + 32 * h + r % 32, as: UInt8.self) >> UInt8(2 * (r / 32))) & 3
                let q = Int32(low | high << 4) - 32
                let scale = src.load(fromByteOffset: 192 + e / 16, as: Int8.self)
                y[e] = (d * Float(scale)) * Float(q)
            }
        }
    }

    /// Q8_K: an f32 scale and 256 int8 weights (the block sums are not needed to dequantize).
    public static func dequantizeQ8_K(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        forEachBlock(blocks, values, elements: 256, bytes: 292) { src, y in
            let d = Float(bitPattern: u32(src, 0))
            for e in 0..<256 {
                y[e] = d * Float(src.load(fromByteOffset: 4 + e, as: Int8.self))
            }
        }
    }

    // MARK: - Helpers

    /// Calls `body` with each block's bytes and its 32 or 256 output floats.
    @inline(__always)
    static func forEachBlock(_ blocks: UnsafeRawBufferPointer, _ values: UnsafeMutableBufferPointer<Float>,
                             elements: Int, bytes: Int,
                             _ body: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void) {
        guard let src = blocks.baseAddress, let dst = values.baseAddress else { return }
        let n = min(values.count / elements, blocks.count / bytes)
        for b in 0..<n { body(src + b * bytes, dst + b * elements) }
    }

    @inline(__always) static func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) static func u32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}
