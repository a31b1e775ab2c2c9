import TSLMFormat

/// A row-major weight matrix `[rows, cols]` in its storage dtype, viewed in place.
///
/// Rows are independent and `rowBytes` apart; for the block types (q8_0, q4_0, q4_1) each row
/// is `cols / 32` blocks, so `cols` must be a multiple of 32 (of 256 for q4_k, q5_k, q6_k) (the format guarantees this for
/// every stored tensor; `init(validating:...)` checks it). `data` usually points into a mapped
/// `.tslm` file: its start is 64-byte aligned but rows need not be, and the kernels load
/// unaligned.
public struct WeightMatrix: @unchecked Sendable {
    public let dtype: DType
    public let rows: Int
    public let cols: Int
    public let data: UnsafeRawPointer
    /// The q4_0 or q8_0 rows repacked for the VNNI kernels, when `interleavingRows()` made them.
    public internal(set) var interleaved: InterleavedRows?

    /// Wraps `data` without checks; the caller guarantees `rows * rowBytes` readable bytes,
    /// non-negative sizes and, for block types, `cols % 32 == 0`.
    public init(dtype: DType, rows: Int, cols: Int, data: UnsafeRawPointer) {
        self.dtype = dtype
        self.rows = rows
        self.cols = cols
        self.data = data
    }

    /// Wraps `data` after checking the shape against the dtype and the `byteCount` available:
    /// throws `invalidShape` for negative sizes or a block type whose `cols` is not a whole
    /// number of blocks, `sizeOverflow` when the size does not fit, and `sizeMismatch` when
    /// `byteCount` is not exactly `rows * rowBytes`.
    public init(validating dtype: DType, rows: Int, cols: Int, data: UnsafeRawPointer,
                byteCount: Int, file: String, tensor: String) throws {
        guard rows >= 0, cols >= 0 else {
            throw TSLMError.invalidShape(file: file, tensor: tensor, shape: [rows, cols],
                                         reason: "negative dimension")
        }
        let expected = try dtype.validatedByteCount(shape: [UInt64(rows), UInt64(cols)],
                                                    file: file, tensor: tensor)
        guard expected == UInt64(byteCount) else {
            throw TSLMError.sizeMismatch(file: file, tensor: tensor, expected: expected,
                                         actual: UInt64(max(0, byteCount)))
        }
        self.init(dtype: dtype, rows: rows, cols: cols, data: data)
    }

    /// Bytes per row: `cols / blockSize * bytesPerBlock`.
    public var rowBytes: Int { cols / dtype.blockSize * dtype.bytesPerBlock }

    /// Activation blocks of 32 per row for the block types (`cols / 32`: q8_0, q4_0 and q4_1
    /// blocks all hold `BlockQ8_0.weights` = 32 weights; a K super-block meets 8 of them).
    @inline(__always) var blocksPerRow: Int { cols / BlockQ8_0.weights }

    /// The start of row `r`.
    @inline(__always) func row(_ r: Int) -> UnsafeRawPointer { data + r * rowBytes }
}
