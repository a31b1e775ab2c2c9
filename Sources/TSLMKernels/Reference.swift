#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat

/// Scalar reference twins of every kernel in `Kernels`: straightforward loops, accumulating in
/// `Double` where a sum is involved, used by the tests as ground truth.
///
/// For quantized weights there are two matrix–vector references: `matvec` (exact: dequantize
/// the weights, f32 inputs) and `matvecQuantizedActivations` (the same 8-bit activation
/// quantization as the fast path, so that only summation order differs).
public enum Reference {
    /// Row `row` of `w` as f32 (via `DTypeConversion`, the format's reference decoder).
    public static func dequantizeRow(_ w: WeightMatrix, row: Int, into out: UnsafeMutablePointer<Float>) {
        guard w.cols > 0 else { return }
        DTypeConversion.toFloat32(UnsafeRawBufferPointer(start: w.data + row * w.rowBytes, count: w.rowBytes),
                                  dtype: w.dtype, count: w.cols, into: UnsafeMutableBufferPointer(start: out, count: w.cols))
    }

    /// Exact y = W·x: dequantized weights, unquantized f32 inputs, `Double` sums.
    public static func matvec(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        var row = [Float](repeating: 0, count: w.cols)
        for r in 0..<w.rows {
            row.withUnsafeMutableBufferPointer { dequantizeRow(w, row: r, into: $0.baseAddress!) }
            var s = 0.0
            for c in 0..<w.cols { s += Double(row[c]) * Double(x[c]) }
            y[r] = Float(s)
        }
    }

    /// Exact Y = X·Wᵀ for n inputs (`matvec` per input row).
    public static func matmul(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<n { matvec(w, x + i * w.cols, y + i * w.rows) }
    }

    /// Quantizes one block of 32 activations as the fast path does: d = max|x|/127 (f32),
    /// q = round(x/d) ties to even, clamped to ±127, NaN → 0. Returns d and Σq.
    public static func quantizeActivationBlock(_ x: UnsafePointer<Float>, into q: UnsafeMutablePointer<Int8>) -> (scale: Float, sum: Int32) {
        var amax: Float = 0
        for i in 0..<32 where !x[i].isNaN { amax = max(amax, abs(x[i])) }
        let d = amax / 127
        let id: Float = d != 0 ? 1 / d : 0
        var sum: Int32 = 0
        for i in 0..<32 {
            let v = x[i].isNaN ? 0 : x[i] * id
            let r = min(127, max(-127, v)).rounded(.toNearestOrEven)
            q[i] = Int8(r)
            sum += Int32(q[i])
        }
        return (d, sum)
    }

    /// Quantizes one block of 32 activations to 16 bits as the q8_0 fast path does:
    /// d = max|x|/32767 (f32), q = round(x/d) ties to even, clamped to ±32767, NaN → 0.
    public static func quantizeWideActivationBlock(_ x: UnsafePointer<Float>, into q: UnsafeMutablePointer<Int16>) -> Float {
        var amax: Float = 0
        for i in 0..<32 where !x[i].isNaN { amax = max(amax, abs(x[i])) }
        let d = amax / 32767
        let id: Float = d != 0 ? 1 / d : 0
        for i in 0..<32 {
            let v = x[i].isNaN ? 0 : x[i] * id
            q[i] = Int16(min(32767, max(-32767, v)).rounded(.toNearestOrEven))
        }
        return d
    }

    /// y = W·x for a q8_0/q4_0/q4_1 matrix with x quantized as the fast path does (q8_0:
    /// `quantizeWideActivationBlock`, 16 bits; q4_0/q4_1: `quantizeActivationBlock`, 8 bits):
    /// per block, d_w·d_x·Σ q_w·q_x plus the dtype's offset term (q4_0: −8·d_w·d_x·Σq_x;
    /// q4_1: m_w·d_x·Σq_x), summed in `Double`; q4_k, q5_k and q6_k per sub-block likewise
    /// (8-bit activations). For other dtypes, the same as `matvec`.
    public static func matvecQuantizedActivations(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        guard w.dtype.isQuantized else { return matvec(w, x, y) }
        let blocks = w.cols / 32
        var xq = [Int8](repeating: 0, count: w.cols)
        var xd = [Float](repeating: 0, count: blocks)
        var xs = [Int32](repeating: 0, count: blocks)
        var xw = [Int16](repeating: 0, count: w.dtype == .q8_0 ? w.cols : 0)
        if w.dtype == .q8_0 {
            xw.withUnsafeMutableBufferPointer { q in
                for b in 0..<blocks { xd[b] = quantizeWideActivationBlock(x + 32 * b, into: q.baseAddress! + 32 * b) }
            }
        } else {
            xq.withUnsafeMutableBufferPointer { q in
                for b in 0..<blocks {
                    let (d, s) = quantizeActivationBlock(x + 32 * b, into: q.baseAddress! + 32 * b)
                    xd[b] = d
                    xs[b] = s
                }
            }
        }
        if w.dtype.isKQuant {
            // The K types: per activation block, the integer levels of each sub-block (q4_k,
            // q5_k: q in 0...nmax, x = (d·sc)·q − dmin·m; q6_k: q − 32 with int8 sub-block
            // scales, x = (d·sc)·q) times the activation quants, in `Double`.
            var levels = [Int32](repeating: 0, count: 256)
            for r in 0..<w.rows {
                let row = w.data + r * w.rowBytes
                var total = 0.0
                for s in 0..<(blocks / 8) {
                    let p = row + w.dtype.bytesPerBlock * s
                    kLevels(p, w.dtype, &levels)
                    for j in 0..<8 {
                        let b = 8 * s + j
                        switch w.dtype {
                        case .q6_k:
                            let d = Double(halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ6_K.dOffset, as: UInt16.self)))
                            for half in 0..<2 {
                                var dot: Int64 = 0
                                for i in 0..<16 { dot += Int64(levels[32 * j + 16 * half + i]) * Int64(xq[32 * b + 16 * half + i]) }
                                let sc = Double(p.load(fromByteOffset: BlockQ6_K.scalesOffset + 2 * j + half, as: Int8.self))
                                total += d * sc * Double(xd[b]) * Double(dot)
                            }
                        default:
                            let d = Double(halfToFloat(p.loadUnaligned(as: UInt16.self)))
                            let dmin = Double(halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ4_K.dminOffset, as: UInt16.self)))
                            let (sc, mn) = KQuants.scaleMin(p + BlockQ4_K.scalesOffset, j)
                            var dot: Int64 = 0
                            for i in 0..<32 { dot += Int64(levels[32 * j + i]) * Int64(xq[32 * b + i]) }
                            total += d * Double(sc) * Double(xd[b]) * Double(dot) - dmin * Double(mn) * Double(xd[b]) * Double(xs[b])
                        }
                    }
                }
                y[r] = Float(total)
            }
            return
        }
        for r in 0..<w.rows {
            let row = w.data + r * w.rowBytes
            var total = 0.0
            for b in 0..<blocks {
                var dot: Int32 = 0
                let base = 32 * b
                let sx = Double(xd[b]) * Double(xs[b])
                switch w.dtype {
                case .q8_0:
                    let p = row + BlockQ8_0.byteCount * b
                    for i in 0..<BlockQ8_0.weights { dot += Int32(p.load(fromByteOffset: BlockQ8_0.qsOffset + i, as: Int8.self)) * Int32(xw[base + i]) }
                    total += Double(halfToFloat(p.loadUnaligned(as: UInt16.self))) * Double(xd[b]) * Double(dot)
                case .q4_0:
                    let p = row + BlockQ4_0.byteCount * b
                    for j in 0..<16 {
                        let byte = p.load(fromByteOffset: BlockQ4_0.qsOffset + j, as: UInt8.self)
                        dot += Int32(byte & 0x0F) * Int32(xq[base + j]) + Int32(byte >> 4) * Int32(xq[base + j + 16])
                    }
                    let d = Double(halfToFloat(p.loadUnaligned(as: UInt16.self)))
                    total += d * Double(xd[b]) * Double(dot) - 8 * d * sx
                default:
                    let p = row + BlockQ4_1.byteCount * b
                    for j in 0..<16 {
                        let byte = p.load(fromByteOffset: BlockQ4_1.qsOffset + j, as: UInt8.self)
                        dot += Int32(byte & 0x0F) * Int32(xq[base + j]) + Int32(byte >> 4) * Int32(xq[base + j + 16])
                    }
                    let d = Double(halfToFloat(p.loadUnaligned(as: UInt16.self)))
                    let m = Double(halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ4_1.mOffset, as: UInt16.self)))
                    total += d * Double(xd[b]) * Double(dot) + m * sx
                }
            }
            y[r] = Float(total)
        }
    }

    /// The 256 integer levels of the K super-block at `p`: q4_k 0...15, q5_k 0...31 (with the
    /// fifth bit), q6_k −32...31, read straight from the layout of `formats/tslm.md`.
    static func kLevels(_ p: UnsafeRawPointer, _ dtype: DType, _ levels: inout [Int32]) {
        for e in 0..<256 {
            let c = e / 64, l = e % 32, high = (e % 64) >= 32
            switch dtype {
            case .q4_k:
                let byte = p.load(fromByteOffset: BlockQ4_K.qsOffset + 32 * c + l, as: UInt8.self)
                levels[e] = Int32(high ? byte >> 4 : byte & 0x0F)
            case .q5_k:
                let byte = p.load(fromByteOffset: BlockQ5_K.qsOffset + 32 * c + l, as: UInt8.self)
                let bit = (p.load(fromByteOffset: BlockQ5_K.qhOffset + l, as: UInt8.self) >> UInt8(e / 32)) & 1
                levels[e] = Int32(high ? byte >> 4 : byte & 0x0F) | Int32(bit) << 4
            default:
                let h = e / 128, r = e % 128
                let lowByte = p.load(fromByteOffset: BlockQ6_K.qlOffset + 64 * h + r % 64, as: UInt8.self)
                let low = r < 64 ? lowByte & 0x0F : lowByte >> 4
                let top = (p.load(fromByteOffset: BlockQ6_K.qhOffset + 32 * h + r % 32, as: UInt8.self) >> UInt8(2 * (r / 32))) & 3
                levels[e] = Int32(low | top << 4) - 32
            }
        }
    }

    /// `matvecQuantizedActivations` for n inputs.
    public static func matmulQuantizedActivations(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>) {
        for i in 0..<n { matvecQuantizedActivations(w, x + i * w.cols, y + i * w.rows) }
    }

    /// out = x / sqrt(mean(x²) + eps) · (w or 1 + w), in `Double`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, count: Int, eps: Float,
                               addOne: Bool, out: UnsafeMutablePointer<Float>) {
        var ss = 0.0
        for i in 0..<count { ss += Double(x[i]) * Double(x[i]) }
        let s = 1 / (ss / Double(count) + Double(eps)).squareRoot()
        for i in 0..<count { out[i] = Float(Double(x[i]) * s * (Double(weight[i]) + (addOne ? 1 : 0))) }
    }

    /// PyTorch LayerNorm (biased variance) in `Double`; nil weight/bias mean 1/0.
    public static func layerNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                                 count: Int, eps: Float, out: UnsafeMutablePointer<Float>) {
        var mean = 0.0
        for i in 0..<count { mean += Double(x[i]) }
        mean /= Double(count)
        var v = 0.0
        for i in 0..<count { v += (Double(x[i]) - mean) * (Double(x[i]) - mean) }
        v /= Double(count)
        let s = 1 / (v + Double(eps)).squareRoot()
        for i in 0..<count {
            out[i] = Float((Double(x[i]) - mean) * s * Double(weight?[i] ?? 1) + Double(bias?[i] ?? 0))
        }
    }

    /// Max-subtracted softmax in `Double`.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        var m = -Double.infinity
        for i in 0..<count { m = max(m, Double(x[i])) }
        var e = [Double](repeating: 0, count: count)
        var sum = 0.0
        for i in 0..<count { e[i] = libmExp(Double(x[i]) - m); sum += e[i] }
        for i in 0..<count { x[i] = Float(e[i] / sum) }
    }

    /// x·σ(x) in `Double`.
    public static func silu(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { let v = Double(x[i]); x[i] = Float(v / (1 + libmExp(-v))) }
    }

    /// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) in `Double`.
    public static func geluTanh(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let v = Double(x[i])
            x[i] = Float(0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v))))
        }
    }

    /// 0.5·x·(1 + erf(x/√2)) in `Double`.
    public static func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { let v = Double(x[i]); x[i] = Float(0.5 * v * (1 + erf(v / 2.0.squareRoot()))) }
    }

    /// a[i] *= b[i].
    public static func mul(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { a[i] *= b[i] }
    }

    /// a[i] += b[i].
    public static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { a[i] += b[i] }
    }

    /// a[i] += s·b[i].
    public static func axpy(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, scale: Float, count: Int) {
        for i in 0..<count { a[i] += scale * b[i] }
    }

    /// Σ a·b in `Double`.
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var s = 0.0
        for i in 0..<count { s += Double(a[i]) * Double(b[i]) }
        return Float(s)
    }

    /// Σ a·half(b) in `Double`.
    public static func dotF16(_ a: UnsafePointer<Float>, _ b: UnsafePointer<UInt16>, count: Int) -> Float {
        var s = 0.0
        for i in 0..<count { s += Double(a[i]) * Double(halfToFloat(b[i])) }
        return Float(s)
    }

    /// a[i] += s·half(b[i]).
    public static func axpyF16(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<UInt16>, scale: Float, count: Int) {
        for i in 0..<count { a[i] += scale * halfToFloat(b[i]) }
    }
}

/// libm's double-precision exp (named apart from `Foundation`'s overloads).
@inline(__always) private func libmExp(_ x: Double) -> Double { exp(x) }
