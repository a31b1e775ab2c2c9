// The block layouts of the quantized dtypes, defined once (ggml's `block_q8_0`, `block_q4_0`,
// `block_q4_1`; see `formats/tslm.md`, "Data types"). Everything that walks block bytes (the
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
