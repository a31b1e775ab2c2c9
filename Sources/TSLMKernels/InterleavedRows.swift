import TSLMFormat
#if arch(x86_64) && TSLM_X86_AVX2
import TSLMKernelsVNNI
#endif

/// q4_0 weights repacked at load time, 16 rows at a time, for the decode row dots on CPUs with
/// AVX-512 VNNI (`RowDotVNNI.q4_0Group`) and for packing the prefill GEMM's panels
/// (`IntegerGemm.pack`).
///
/// A stored q4_0 row is a run of 18-byte blocks (f16 scale, 16 bytes of nibbles: element k in
/// the low nibble of byte k, element 16 + k in its high nibble). The one-row kernels spend most
/// of their time per row and block on unpacking and scaling; with 16 rows side by side one
/// 64-byte load holds the same 8 columns of all 16 rows, one 32-bit lane per row, and one f32
/// update scales the whole block.
///
/// Layout, per group of 16 rows (`groupStride` bytes apart, 64-byte aligned): first, for each
/// block b, 256 bytes of nibbles: word j (4 bytes) of row r at 256·b + 64·j + 4·r, that is
/// bytes 4j ..< 4j + 4 of the row's stored block; then, for each block b, the 16 rows' f16
/// scales (32 bytes at 256·blocks + 32·b). The bytes are the stored ones, moved: nothing is
/// re-quantized, so the products are the stored row dots' (`RowDot.q4_0`) up to the order of
/// the f32 sums.
///
/// Built by `WeightMatrix.interleavingRows()` where `Kernels.interleavedQ4_0` is on; the stored
/// rows stay valid (other paths, and rows outside whole groups, still read them).
public final class InterleavedQ4_0: @unchecked Sendable {
    public static let groupRows = 16
    public let groups: Int
    public let blocks: Int
    /// Bytes from one group to the next.
    public let groupStride: Int
    private let storage: UnsafeMutableRawPointer

    /// Repacks `w` (q4_0, rows a positive multiple of 16, at least one block per row); nil for
    /// any other matrix.
    public init?(_ w: WeightMatrix) {
        guard w.dtype == .q4_0, w.rows > 0, w.rows % InterleavedQ4_0.groupRows == 0, w.cols >= 32 else { return nil }
        groups = w.rows / InterleavedQ4_0.groupRows
        blocks = w.blocksPerRow
        groupStride = (blocks * 288 + 63) / 64 * 64
        storage = .allocate(byteCount: groups * groupStride, alignment: 64)
        for g in 0..<groups {
            let out = storage + g * groupStride
            for r in 0..<InterleavedQ4_0.groupRows {
                let row = w.row(16 * g + r)
                for b in 0..<blocks {
                    let block = row + BlockQ4_0.byteCount * b
                    (out + 256 * blocks + 32 * b + 2 * r).storeBytes(of: block.loadUnaligned(as: UInt16.self), as: UInt16.self)
                    for j in 0..<4 {
                        (out + 256 * b + 64 * j + 4 * r).storeBytes(
                            of: block.loadUnaligned(fromByteOffset: BlockQ4_0.qsOffset + 4 * j, as: UInt32.self), as: UInt32.self)
                    }
                }
            }
        }
    }

    deinit { storage.deallocate() }

    /// The nibbles of group `g` (256 bytes per block).
    @inline(__always) public func nibbles(group g: Int) -> UnsafeRawPointer { UnsafeRawPointer(storage + g * groupStride) }

    /// The f16 scales of group `g` (32 bytes per block).
    @inline(__always) public func scales(group g: Int) -> UnsafeRawPointer { nibbles(group: g) + 256 * blocks }

    /// Row r (0..<16) of group `g`, block `b`, as the stored block has it: the scale's bits and
    /// the 16 bytes of nibbles as two little-endian words (bytes 0–7, 8–15).
    @inline(__always) public func block(group g: Int, row r: Int, _ b: Int) -> (scale: UInt16, low: UInt64, high: UInt64) {
        let n = nibbles(group: g) + 256 * b + 4 * r
        let word = { (j: Int) -> UInt64 in UInt64(n.load(fromByteOffset: 64 * j, as: UInt32.self)) }
        return (scales(group: g).load(fromByteOffset: 32 * b + 2 * r, as: UInt16.self),
                word(0) | word(1) << 32, word(2) | word(3) << 32)
    }

    /// Y[t, 16g + r] for groups `groups`, r in 0..<16 and tokens `tokens`: the rows of whole
    /// groups · the activations (Y has `ldy` floats per token).
    func multiply(groups: Range<Int>, _ act: QuantizedActivations, tokens: Range<Int>, _ y: UnsafeMutablePointer<Float>, ldy: Int) {
        #if arch(x86_64) && TSLM_X86_AVX2
        for g in groups {
            let n = nibbles(group: g), s = scales(group: g)
            for t in tokens {
                RowDotVNNI.q4_0Group(nibbles: n, scales: s, blocks: blocks, act.quants(token: t), act.scales(token: t), act.sums(token: t),
                                     y + t * ldy + 16 * g)
            }
        }
        #endif
    }
}

extension WeightMatrix {
    /// This matrix with its q4_0 rows also repacked in groups of 16 (`InterleavedQ4_0`) when
    /// `Kernels.interleavedQ4_0` is on and the shape allows; otherwise itself.
    public func interleavingRows() -> WeightMatrix {
        guard Kernels.interleavedQ4_0, Kernels.integerGemmAvailable, interleaved == nil, let il = InterleavedQ4_0(self) else { return self }
        var w = self
        w.interleaved = il
        return w
    }
}
