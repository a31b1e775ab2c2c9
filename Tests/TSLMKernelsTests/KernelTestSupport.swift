import TSLMFormat
@testable import TSLMKernels
import TSLMTestSupport

/// Named tolerances of the kernel tests, each with its rationale.
enum Tolerance {
    /// Float-weight matvec/dot vs the `Double` reference, relative to Σ|w·x|: f32 accumulation
    /// over ≤ 8k terms split across 32 lanes has a typical error of √n·ε ≪ 1e-5.
    static let floatDot: Float = 1e-5
    /// Quantized matvec vs the reference with the same activation quantization, relative to
    /// Σ|w·x|: the integer block sums are exact, only the f32 scale products and the
    /// accumulation order differ.
    static let sameQuantization: Float = 1e-4
    /// Extra relative slack (of Σ|w·x|) on top of the exact activation-quantization error bound
    /// Σ_b (max|x_b| / 254)·Σ_{c∈b}|w_c| when comparing quantized matvec with the exact reference.
    static let quantizationSlack: Float = 1e-4
    /// Norms vs `Double` references: |out − ref| ≤ tol·(1 + |ref|); f32 sums of ≤ 4k squares.
    static let norm: Float = 1e-5
    /// Softmax vs `Double` reference, relative per value: ~2-ulp exp plus an f32 sum.
    static let softmax: Float = 1e-5
    /// Activations vs `Double` references, relative: a few ulp of exp/erf, amplified by up to
    /// |2u| in σ(2u) for arguments down to about −10.
    static let activationRelative: Float = 1e-5
    /// Absolute floor for activations whose true value is ≈ 0.
    static let activationAbsolute: Float = 1e-6
    /// Vectorized exp vs `Double` exp, relative, for normal results: documented as ≤ 2 ulp.
    static let exp: Float = 2.5e-7
    /// Elementwise a·b, a+b, a+s·b: one rounding per element, as the reference (allow 1 ulp in
    /// case the compiler fuses s·b + a).
    static let elementwise: Float = 1.2e-7
}

/// A weight matrix with owned storage, made from f32 values.
final class TestMatrix {
    let storage: UnsafeMutableRawPointer
    let matrix: WeightMatrix
    let byteCount: Int

    /// Encodes `values` ([rows, cols]) as `dtype`, placed `offset` bytes after a 64-byte
    /// aligned start (to exercise unaligned rows and data).
    init(_ values: [Float], dtype: DType, rows: Int, cols: Int, offset: Int = 0) {
        let byteCount = dtype.byteCount(shape: [rows, cols]) ?? 0
        self.byteCount = byteCount
        storage = .allocate(byteCount: byteCount + offset + 64, alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: byteCount + offset + 64)
        let base = storage + offset
        if dtype == .i8 {
            for (i, v) in values.enumerated() { base.storeBytes(of: Int8(clamping: Int(v * 100)), toByteOffset: i, as: Int8.self) }
        } else {
            values.withUnsafeBufferPointer {
                DTypeConversion.fromFloat32($0, to: dtype, into: UnsafeMutableRawBufferPointer(start: base, count: byteCount))
            }
        }
        matrix = WeightMatrix(dtype: dtype, rows: rows, cols: cols, data: UnsafeRawPointer(base))
    }

    /// Random rows with varying magnitudes (each row scaled by 2^k, k in −3...3).
    convenience init(random rng: inout SplitMix64, dtype: DType, rows: Int, cols: Int, offset: Int = 0) {
        var values = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            let scale = Float(1 << Int(rng.next() % 7)) / 8
            for c in 0..<cols { values[r * cols + c] = rng.uniform() * scale }
        }
        self.init(values, dtype: dtype, rows: rows, cols: cols, offset: offset)
    }

    deinit { storage.deallocate() }

    /// Row `r` dequantized by the reference decoder.
    func row(_ r: Int) -> [Float] {
        var out = [Float](repeating: 0, count: matrix.cols)
        out.withUnsafeMutableBufferPointer { Reference.dequantizeRow(matrix, row: r, into: $0.baseAddress!) }
        return out
    }
}
