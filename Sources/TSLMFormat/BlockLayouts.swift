// The block layouts of the quantized dtypes, defined once (ggml's `block_q8_0`, `block_q4_0`,
// `block_q4_1`, `block_q4_K`, `block_q5_K`, `block_q6_K`; see `formats/tslm.md`, "Data types"). Everything that walks block bytes (the
// reference quantizers, `DType`, the kernels, the GGUF importer) takes sizes and field offsets
// from here; `BlockLayoutTests` checks them against `MemoryLayout`.
//
// The structs document and check the layout; code reads the bytes through raw pointers with
// the constants below (all `@inlinable` literals, so hot loops compile to the same code as
// with the numbers written out). Scales are IEEE binary16, little-endian, stored as their
// `UInt16` bits. Blocks are packed back to back with no padding: the layouts' alignment is 2
// and their sizes are multiples of it, so a block's stride equals its size.

/// q8_0: 32 weights, x = d·q.
@frozen
public struct BlockQ8_0 {
    /// The scale `d` (binary16 bits).
    public var d: UInt16
    /// The quants, one signed byte per weight.
    public var qs: (Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8,
                    Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8, Int8)

    /// Weights per block.
    @inlinable public static var weights: Int { 32 }
    /// Bytes per block: 2 (d) + 32 (qs).
    @inlinable public static var byteCount: Int { 34 }
    /// Byte offset of `qs`.
    @inlinable public static var qsOffset: Int { 2 }
}

/// q4_0: 32 weights, x = d·(q − 8); weight j in the low nibble of `qs[j]`, weight j + 16 in
/// its high nibble.
@frozen
public struct BlockQ4_0 {
    /// The scale `d` (binary16 bits).
    public var d: UInt16
    /// Packed nibbles, two weights per byte.
    public var qs: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    /// Weights per block.
    @inlinable public static var weights: Int { 32 }
    /// Bytes per block: 2 (d) + 16 (qs).
    @inlinable public static var byteCount: Int { 18 }
    /// Byte offset of `qs`.
    @inlinable public static var qsOffset: Int { 2 }
}

/// q4_1: 32 weights, x = d·q + m; nibbles packed as in q4_0.
@frozen
public struct BlockQ4_1 {
    /// The scale `d` (binary16 bits).
    public var d: UInt16
    /// The offset `m` (binary16 bits).
    public var m: UInt16
    /// Packed nibbles, two weights per byte.
    public var qs: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    /// Weights per block.
    @inlinable public static var weights: Int { 32 }
    /// Bytes per block: 2 (d) + 2 (m) + 16 (qs).
    @inlinable public static var byteCount: Int { 20 }
    /// Byte offset of `m`.
    @inlinable public static var mOffset: Int { 2 }
    /// Byte offset of `qs`.
    @inlinable public static var qsOffset: Int { 4 }
}

// MARK: K-quants (256-weight super-blocks)

/// 16 bytes, the unit the K-quant layouts below are written in (tuples keep alignment 1,
/// where SIMD types would add padding).
public typealias Bytes16 = (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                            UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

/// q4_k: 256 weights in 8 sub-blocks of 32; x = (d·sc_j)·q − (dmin·m_j) with 6-bit sc_j, m_j
/// packed in `scales` (`KQuants.scaleMin`). Each 64-weight chunk c is 32 bytes of `qs`: the low
/// nibbles are sub-block 2c, the high nibbles sub-block 2c + 1.
@frozen
public struct BlockQ4_K {
    public var d: UInt16
    public var dmin: UInt16
    public var scales: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
    public var qs: (Bytes16, Bytes16, Bytes16, Bytes16, Bytes16, Bytes16, Bytes16, Bytes16)

    @inlinable public static var weights: Int { 256 }
    /// Bytes per block: 2 + 2 + 12 + 128.
    @inlinable public static var byteCount: Int { 144 }
    @inlinable public static var dminOffset: Int { 2 }
    @inlinable public static var scalesOffset: Int { 4 }
    @inlinable public static var qsOffset: Int { 16 }
}

/// q5_k: q4_k plus bit 4 of each weight: weight e's is bit e / 32 of `qh[e % 32]`.
@frozen
public struct BlockQ5_K {
    public var d: UInt16
    public var dmin: UInt16
    public var scales: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
    public var qh: (Bytes16, Bytes16)
    public var qs: (Bytes16, Bytes16, Bytes16, Bytes16, Bytes16, Bytes16, Bytes16, Bytes16)

    @inlinable public static var weights: Int { 256 }
    /// Bytes per block: 2 + 2 + 12 + 32 + 128.
    @inlinable public static var byteCount: Int { 176 }
    @inlinable public static var dminOffset: Int { 2 }
    @inlinable public static var scalesOffset: Int { 4 }
    @inlinable public static var qhOffset: Int { 16 }
    @inlinable public static var qsOffset: Int { 48 }
}

/// q6_k: 256 weights in 16 sub-blocks of 16 with int8 scales; q = (4 low bits | 2 high bits)
/// − 32, x = (d·sc)·q. In each 128-weight half h, weight 64·s + i takes the low (s = 0) or high
/// (s = 1) nibble of `ql[64·h + i]`, and weight 32·k + l of the half takes bits 2k, 2k+1 of
/// `qh[32·h + l]`.
@frozen
public struct BlockQ6_K {
    public var ql: (Bytes16, Bytes16, Bytes16, Bytes16, Bytes16, Bytes16, Bytes16, Bytes16)
    public var qh: (Bytes16, Bytes16, Bytes16, Bytes16)
    public var scales: Bytes16
    public var d: UInt16

    @inlinable public static var weights: Int { 256 }
    /// Bytes per block: 128 + 64 + 16 + 2.
    @inlinable public static var byteCount: Int { 210 }
    @inlinable public static var qlOffset: Int { 0 }
    @inlinable public static var qhOffset: Int { 128 }
    @inlinable public static var scalesOffset: Int { 192 }
    @inlinable public static var dOffset: Int { 208 }
}
