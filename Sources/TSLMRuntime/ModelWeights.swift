import TSLMFormat
import TSLMKernels

/// Typed access to a `.tslm` file's tensors: matrices stay in the mapping (zero-copy) in their
/// stored dtype; vectors (norms, biases) are decoded to f32 once.
public final class ModelWeights: @unchecked Sendable {
    public let file: TSLMFile
    /// Owned buffers (decoded vectors, decompressed tensors) kept alive with the model.
    private var keepAlive: [AnyObject] = []

    public init(file: TSLMFile) { self.file = file }

    public func has(_ name: String) -> Bool { file.entry(name) != nil }

    /// A [rows, cols] matrix, checked against the expected shape.
    public func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
        guard let e = file.entry(name) else { throw RuntimeError.missingTensor(name) }
        guard e.shape == [rows, cols] else { throw RuntimeError.badTensorShape(tensor: name, expected: [rows, cols], found: e.shape) }
        guard e.dtype.isFloatingPoint && e.dtype != .f64 else {
            throw RuntimeError.unsupportedDType(tensor: name, dtype: e.dtype.description)
        }
        let data = try file.tensorData(e)
        keepAlive.append(data)
        let m = WeightMatrix(dtype: e.dtype, rows: rows, cols: cols, data: data.bytes.baseAddress!).interleavingRows()
        // Decode and prefill read the repacked copy: the stored pages that the repacking touched
        // can leave memory (they come back from the file if anything reads them again).
        if m.interleaved != nil { file.release(e) }
        return m
    }

    /// A vector of `count` values decoded to f32 (any float dtype; shape [count]).
    public func vector(_ name: String, count: Int) throws -> UnsafePointer<Float> {
        guard let e = file.entry(name) else { throw RuntimeError.missingTensor(name) }
        guard e.elementCount == count, e.shape.count <= 1 || e.shape.filter({ $0 != 1 }).count <= 1 else {
            throw RuntimeError.badTensorShape(tensor: name, expected: [count], found: e.shape)
        }
        guard e.dtype.isFloatingPoint else { throw RuntimeError.unsupportedDType(tensor: name, dtype: e.dtype.description) }
        let data = try file.tensorData(e)
        let out = TensorData(allocating: count * 4)
        data.withUnsafeBytes {
            DTypeConversion.toFloat32($0, dtype: e.dtype, count: count, into: out.mutableBytes.bindMemory(to: Float.self))
        }
        keepAlive.append(out)
        return UnsafePointer(out.bytes.bindMemory(to: Float.self).baseAddress!)
    }

    public func optionalVector(_ name: String, count: Int) throws -> UnsafePointer<Float>? {
        has(name) ? try vector(name, count: count) : nil
    }

    /// A tensor of exactly `shape` (any float dtype) decoded to f32, as an array.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        guard let e = file.entry(name) else { throw RuntimeError.missingTensor(name) }
        guard e.shape == shape else { throw RuntimeError.badTensorShape(tensor: name, expected: shape, found: e.shape) }
        guard e.dtype.isFloatingPoint, !e.dtype.isQuantized else { throw RuntimeError.unsupportedDType(tensor: name, dtype: e.dtype.description) }
        let count = e.elementCount
        var out = [Float](repeating: 0, count: count)
        try file.tensorData(e).withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { DTypeConversion.toFloat32(src, dtype: e.dtype, count: count, into: $0) }
        }
        return out
    }
}
