import TSLMFormat
#if arch(x86_64) && TSLM_X86_AVX2
import TSLMKernelsVNNI
#endif

/// q4_0 or q8_0 weights repacked at load time, 16 rows at a time, for the decode row dots on
/// CPUs with AVX-512 VNNI (`RowDotVNNI`) and, for q4_0, for packing the prefill GEMM's panels
/// (`IntegerGemm.pack`).
///
/// A stored row is a run of blocks of 32 weights (an f16 scale, then 16 bytes of nibbles for
/// q4_0: element k in the low nibble of byte k, element 16 + k in its high nibble; 32 signed
/// bytes for q8_0). The one-row kernels spend most of their time per row and block on
/// unpacking and scaling; with 16 rows side by side one 64-byte load holds the same columns of
/// all 16 rows, one 32-bit lane per row, and one f32 update scales the whole block.
///
/// Layout, per group of 16 rows (`groupStride` bytes apart, 64-byte aligned): first, for each
/// block b, `blockWeightBytes` bytes of weights (256 for q4_0, 512 for q8_0): word j (4 bytes)
/// of row r at blockWeightBytes·b + 64·j + 4·r, that is bytes 4j ..< 4j + 4 of the row's stored
/// quants; then, for each block b, the 16 rows' f16 scales (32 bytes at
/// blockWeightBytes·blocks + 32·b). The bytes are the stored ones, moved: nothing is
/// re-quantized, so the products are the stored row dots' (`RowDot.q4_0`, `RowDot.q8_0Wide`)
/// up to the order of the f32 sums.
///
/// Built by `WeightMatrix.interleavingRows()` where `Kernels.interleavedRows` is on; the stored
/// rows stay valid (other paths, and rows outside whole groups, still read them).
public final class InterleavedRows: @unchecked Sendable {
    public static let groupRows = 16
    public let dtype: DType
    public let groups: Int
    public let blocks: Int
    /// Bytes of one block of 16 rows' quants: 256 (q4_0) or 512 (q8_0).
    public let blockWeightBytes: Int
    /// Bytes from one group to the next.
    public let groupStride: Int
    private let storage: UnsafeMutableRawPointer

    /// Repacks `w` (q4_0 or q8_0, rows a positive multiple of 16, at least one block per row);
    /// nil for any other matrix.
    public init?(_ w: WeightMatrix) {
        guard w.dtype == .q4_0 || w.dtype == .q8_0, w.rows > 0, w.rows % InterleavedRows.groupRows == 0, w.cols >= 32 else { return nil }
        dtype = w.dtype
        groups = w.rows / InterleavedRows.groupRows
        blocks = w.blocksPerRow
        let words = w.dtype == .q4_0 ? 4 : 8
        blockWeightBytes = 64 * words
        groupStride = (blocks * (blockWeightBytes + 32) + 63) / 64 * 64
        // (Most of the repacking's time is the kernel's first touch of the new pages: 1B q8_0,
        // 1.3 GB, 0.9–4 s on the 2-vCPU VM, as much with huge pages.)
        storage = .allocate(byteCount: groups * groupStride, alignment: 64)
        let storedBlockBytes = w.dtype.bytesPerBlock
        // Block after block, each written whole (its 16 rows' blocks read side by side): a row
        // after row order wrote every cache line 16 times, far apart (1B q8_0 loaded in 4–7 s).
        for g in 0..<groups {
            let out = storage + g * groupStride
            let first = w.row(16 * g), rowBytes = w.rowBytes
            for b in 0..<blocks {
                let o = out + blockWeightBytes * b, scales = out + blockWeightBytes * blocks + 32 * b
                for r in 0..<InterleavedRows.groupRows {
                    let block = first + r * rowBytes + storedBlockBytes * b
                    (scales + 2 * r).storeBytes(of: block.loadUnaligned(as: UInt16.self), as: UInt16.self)
                    for j in 0..<words {
                        (o + 64 * j + 4 * r).storeBytes(of: block.loadUnaligned(fromByteOffset: 2 + 4 * j, as: UInt32.self), as: UInt32.self)
                    }
                }
            }
        }
    }

    deinit { storage.deallocate() }

    /// The quants of group `g` (`blockWeightBytes` per block).
    @inline(__always) public func weights(group g: Int) -> UnsafeRawPointer { UnsafeRawPointer(storage + g * groupStride) }

    /// The f16 scales of group `g` (32 bytes per block).
    @inline(__always) public func scales(group g: Int) -> UnsafeRawPointer { weights(group: g) + blockWeightBytes * blocks }

    /// Row r (0..<16) of group `g`, block `b` of a q4_0 matrix, as the stored block has it: the
    /// scale's bits and the 16 bytes of nibbles as two little-endian words (bytes 0–7, 8–15).
    @inline(__always) public func q4Block(group g: Int, row r: Int, _ b: Int) -> (scale: UInt16, low: UInt64, high: UInt64) {
        let n = weights(group: g) + 256 * b + 4 * r
        let word = { (j: Int) -> UInt64 in UInt64(n.load(fromByteOffset: 64 * j, as: UInt32.self)) }
        return (scales(group: g).load(fromByteOffset: 32 * b + 2 * r, as: UInt16.self),
                word(0) | word(1) << 32, word(2) | word(3) << 32)
    }

    /// Y[t, 16g + r] for groups `groups`, r in 0..<16 and tokens `tokens` (Y has `ldy` floats
    /// per token): q4_0 rows · `narrow`'s 8-bit activations; q8_0 rows · `wide`'s 16-bit ones,
    /// given as the byte planes of `IntegerGemm.splitWords` (`planes`: per token, `blocks`·32
    /// low bytes, then as many high bytes + 128).
    func multiply(groups: Range<Int>, narrow: QuantizedActivations?, wide: WideQuantizedActivations?, planes: UnsafePointer<UInt8>?,
                  tokens: Range<Int>, _ y: UnsafeMutablePointer<Float>, ldy: Int) {
        #if arch(x86_64) && TSLM_X86_AVX2
        let cols = 32 * blocks
        for g in groups {
            let w = weights(group: g), s = scales(group: g)
            for t in tokens {
                if let act = narrow, dtype == .q4_0 {
                    RowDotVNNI.q4_0Group(nibbles: w, scales: s, blocks: blocks, act.quants(token: t), act.scales(token: t),
                                         act.sums(token: t), y + t * ldy + 16 * g)
                } else if let act = wide, let planes, dtype == .q8_0 {
                    let low = planes + 2 * cols * t
                    RowDotVNNI.q8_0Group(weights: w, scales: s, blocks: blocks, low: low, high: low + cols, act.scales(token: t),
                                         y + t * ldy + 16 * g)
                }
            }
        }
        #endif
    }
}

extension WeightMatrix {
    /// This matrix with its q4_0 or q8_0 rows also repacked in groups of 16 (`InterleavedRows`)
    /// when `Kernels.interleavedRows` is on and the shape allows; otherwise itself.
    public func interleavingRows() -> WeightMatrix {
        guard Kernels.interleavedRows, Kernels.integerGemmAvailable, interleaved == nil, let il = InterleavedRows(self) else { return self }
        var w = self
        w.interleaved = il
        return w
    }
}
