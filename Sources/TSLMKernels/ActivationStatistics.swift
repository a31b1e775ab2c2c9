/// Per-column statistics of the inputs of every matrix product: Σ x² and the number of input
/// vectors, keyed by the weight matrix's data pointer. Their ratio (the mean square of the
/// activations that multiply each column) is an importance matrix ("imatrix"): the search
/// quantizer weighs each weight's error by it, so that columns that meet large activations are
/// kept more exactly (`tslm perplexity --save-imatrix`, `tslm quantize --imatrix`).
///
/// Collection is off unless `Kernels.activationStatistics` is set; `Kernels.matmul` then adds
/// its input before computing. Not thread-safe: set it, and run the model, from one thread.
public final class ActivationStatistics: @unchecked Sendable {
    public struct Column: Sendable {
        /// Σ x² per input column.
        public var sumSquares: [Double]
        /// Input vectors seen.
        public var count: Int
    }

    /// Statistics by weight data address (`Int(bitPattern: WeightMatrix.data)`).
    public private(set) var byMatrix: [Int: Column] = [:]

    public init() {}

    func add(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int) {
        let key = Int(bitPattern: w.data)
        var c = byMatrix[key] ?? Column(sumSquares: [Double](repeating: 0, count: w.cols), count: 0)
        guard c.sumSquares.count == w.cols else { return }
        c.sumSquares.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                let row = x + i * w.cols
                for j in 0..<w.cols { s[j] += Double(row[j] * row[j]) }
            }
        }
        c.count += n
        byMatrix[key] = c
    }
}

extension Kernels {
    /// When set, every `matmul` / `matvec` adds its inputs (see `ActivationStatistics`).
    nonisolated(unsafe) public static var activationStatistics: ActivationStatistics?
}
