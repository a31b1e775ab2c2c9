import TSLMFormat

/// Layout transforms applied to source tensors while importing.
public enum TensorTransforms {
    /// Transposes a 2-D tensor of a plain (non-block) dtype.
    public static func transpose2D(_ data: TensorData, dtype: DType, shape: [Int], file: String, tensor: String) throws -> TensorData {
        guard shape.count == 2, !dtype.isQuantized else {
            throw TSLMError.invalidShape(file: file, tensor: tensor, shape: shape, reason: "only 2-D tensors of plain types can be transposed")
        }
        let (rows, cols, es) = (shape[0], shape[1], dtype.bytesPerBlock)
        let out = TensorData(allocating: data.bytes.count)
        guard rows * cols * es == data.bytes.count else {
            throw TSLMError.sizeMismatch(file: file, tensor: tensor, expected: UInt64(rows * cols * es), actual: UInt64(data.bytes.count))
        }
        guard rows > 0, cols > 0 else { return out }
        let src = data.bytes.baseAddress!, dst = out.mutableBytes.baseAddress!
        // Tile to stay in cache.
        let tile = 64
        for r0 in stride(from: 0, to: rows, by: tile) {
            for c0 in stride(from: 0, to: cols, by: tile) {
                for r in r0..<min(r0 + tile, rows) {
                    for c in c0..<min(c0 + tile, cols) {
                        (dst + (c * rows + r) * es).copyMemory(from: src + (r * cols + c) * es, byteCount: es)
                    }
                }
            }
        }
        return out
    }

    /// Reorders the rows (outermost dimension) of a tensor: output row i = input row `order[i]`.
    /// Works for every dtype, block types included, since blocks never cross rows.
    public static func permuteRows(_ data: TensorData, order: [Int], file: String, tensor: String) throws -> TensorData {
        let rows = order.count
        guard rows > 0, data.bytes.count % rows == 0, Set(order).count == rows, order.allSatisfy({ $0 >= 0 && $0 < rows }) else {
            throw TSLMError.malformed(file: file, reason: "tensor '\(tensor)': invalid row permutation of \(rows) rows")
        }
        let rowBytes = data.bytes.count / rows
        let out = TensorData(allocating: data.bytes.count)
        guard rowBytes > 0 else { return out }
        for (i, src) in order.enumerated() {
            (out.mutableBytes.baseAddress! + i * rowBytes).copyMemory(from: data.bytes.baseAddress! + src * rowBytes, byteCount: rowBytes)
        }
        return out
    }
}
