#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat

extension Kernels {
    /// Weight bytes below which a matrix product runs on the calling thread only (waking the
    /// pool costs about a microsecond; 64 KiB of weights take about 4 µs on one core).
    static let parallelThresholdBytes = 64 * 1024
    /// Tokens per tile in `matmul`: each weight row is read once per tile.
    static let matmulTile = 16

    /// Whether q8_0 matrix products quantize activations to 16 bits (the default: within 0.3%
    /// of f16's perplexity) or to 8 bits, as q4_0/q4_1 do (`TSLM_Q8_ACTIVATIONS=8` in the
    /// environment; kept to measure the difference).
    nonisolated(unsafe) public static var q8_0WideActivations: Bool = {
        guard let v = getenv("TSLM_Q8_ACTIVATIONS") else { return true }
        return String(cString: v) != "8"
    }()

    /// y[r] = Σ_c W[r,c]·x[c] for r in 0..<rows.
    ///
    /// For q4_0/q4_1 weights, x is first quantized to 8-bit blocks (f32 scale per 32) once per
    /// call, for q8_0 weights to 16-bit blocks, and the row dot products use integer SIMD math; f32/f16/bf16 weights use
    /// float SIMD with FMA. Other dtypes are dequantized row by row (slow, but correct). Rows
    /// are split across `pool`. `y` must not alias `x`.
    public static func matvec(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        matmul(w, x, n: 1, y, pool: pool)
    }

    /// Y[i, r] = Σ_c W[r,c]·X[i,c] for i in 0..<n (X is [n, cols], Y is [n, rows], both
    /// row-major). Inputs are processed in tiles of `matmulTile` tokens, so each weight row is
    /// read once per tile, not once per token; quantized weights use the same activation
    /// quantization as `matvec`. `y` must not alias `x`.
    public static func matmul(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        guard w.rows > 0, n > 0 else { return }
        if let stats = activationStatistics { stats.add(w, x, n: n) }
        guard w.cols > 0 else {
            y.update(repeating: 0, count: w.rows * n)
            return
        }
        let grain = max(1, parallelThresholdBytes / max(1, w.rowBytes * min(n, matmulTile)))
        let rows = w.rows, cols = w.cols
        func forRows(_ body: (Range<Int>) -> Void) {
            if let pool { pool.parallelFor(rows, grain: grain, body) } else { body(0..<rows) }
        }
        switch w.dtype {
        case .q8_0 where q8_0WideActivations:
            // 16-bit activations: 8-bit ones would cost q8_0 most of its accuracy (see
            // `WideQuantizedActivations`).
            let blocks = w.blocksPerRow
            let act = WideQuantizedActivations(tokens: n, blocks: blocks)
            defer { act.deallocate() }
            if n >= 4, let pool {
                pool.parallelFor(n, grain: 2) { range in
                    for i in range { act.quantize(token: i, x + i * cols) }
                }
            } else {
                for i in 0..<n { act.quantize(token: i, x + i * cols) }
            }
            forRows { range in
                var t0 = 0
                while t0 < n {
                    let t1 = min(n, t0 + matmulTile)
                    var r = range.lowerBound
                    #if arch(x86_64) && TSLM_X86_AVX2
                    while r + 2 <= range.upperBound {
                        let row0 = w.row(r), row1 = w.row(r + 1)
                        for i in t0..<t1 {
                            let v = RowDot.q8PairWide(row0, row1, act.quants(token: i), act.scales(token: i), blocks: blocks)
                            y[i * rows + r] = v.0
                            y[i * rows + r + 1] = v.1
                        }
                        r += 2
                    }
                    #endif
                    for r in r..<range.upperBound {
                        let row = w.row(r)
                        for i in t0..<t1 {
                            y[i * rows + r] = RowDot.q8_0Wide(row, act.quants(token: i), act.scales(token: i), blocks: blocks)
                        }
                    }
                    t0 = t1
                }
            }
        case .q8_0, .q4_0, .q4_1:
            let blocks = w.blocksPerRow
            let act = QuantizedActivations(tokens: n, blocks: blocks)
            defer { act.deallocate() }
            if n >= 4, let pool {
                pool.parallelFor(n, grain: 2) { range in
                    for i in range { act.quantize(token: i, x + i * cols) }
                }
            } else {
                for i in 0..<n { act.quantize(token: i, x + i * cols) }
            }
            let dtype = w.dtype
            forRows { range in
                var t0 = 0
                while t0 < n {
                    let t1 = min(n, t0 + matmulTile)
                    var r = range.lowerBound
                    #if arch(x86_64) && TSLM_X86_AVX2
                    // Pairs of rows share each activation block load.
                    while r + 2 <= range.upperBound {
                        let row0 = w.row(r), row1 = w.row(r + 1)
                        for i in t0..<t1 {
                            let xq = act.quants(token: i), xd = act.scales(token: i), xs = act.sums(token: i)
                            let v: (Float, Float)
                            switch dtype {
                            case .q8_0: v = RowDot.q8Pair(row0, row1, xq, xd, blocks: blocks)
                            case .q4_0: v = RowDot.q4Pair(row0, row1, blockBytes: BlockQ4_0.byteCount, xq, xd, xs, blocks: blocks)
                            default: v = RowDot.q4Pair(row0, row1, blockBytes: BlockQ4_1.byteCount, xq, xd, xs, blocks: blocks)
                            }
                            y[i * rows + r] = v.0
                            y[i * rows + r + 1] = v.1
                        }
                        r += 2
                    }
                    #endif
                    for r in r..<range.upperBound {
                        let row = w.row(r)
                        for i in t0..<t1 {
                            let xq = act.quants(token: i), xd = act.scales(token: i), xs = act.sums(token: i)
                            let v: Float
                            switch dtype {
                            case .q8_0: v = RowDot.q8_0(row, xq, xd, blocks: blocks)
                            case .q4_0: v = RowDot.q4_0(row, xq, xd, xs, blocks: blocks)
                            default: v = RowDot.q4_1(row, xq, xd, xs, blocks: blocks)
                            }
                            y[i * rows + r] = v
                        }
                    }
                    t0 = t1
                }
            }
        case .f32, .f16, .bf16:
            let dtype = w.dtype
            forRows { range in
                var t0 = 0
                while t0 < n {
                    let t1 = min(n, t0 + matmulTile)
                    for r in range {
                        let row = w.row(r)
                        for i in t0..<t1 {
                            let xi = x + i * cols
                            let v: Float
                            switch dtype {
                            case .f32: v = RowDot.f32(row, xi, count: cols)
                            case .f16: v = RowDot.f16(row, xi, count: cols)
                            default: v = RowDot.bf16(row, xi, count: cols)
                            }
                            y[i * rows + r] = v
                        }
                    }
                    t0 = t1
                }
            }
        default:
            // Any other dtype: dequantize each row once per tile into scratch, then f32 dots.
            forRows { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: cols)
                defer { scratch.deallocate() }
                var t0 = 0
                while t0 < n {
                    let t1 = min(n, t0 + matmulTile)
                    for r in range {
                        dequantizeRow(w, row: r, into: scratch)
                        for i in t0..<t1 { y[i * rows + r] = dot(scratch, x + i * cols, count: cols) }
                    }
                    t0 = t1
                }
            }
        }
    }

    /// Dequantizes (or widens) row `row` of `w` into `out[0 ..< cols]` (embedding lookup).
    public static func dequantizeRow(_ w: WeightMatrix, row: Int, into out: UnsafeMutablePointer<Float>) {
        guard w.cols > 0 else { return }
        let p = w.row(row)
        switch w.dtype {
        case .f32:
            UnsafeMutableRawPointer(out).copyMemory(from: p, byteCount: 4 * w.cols)  // rows may be unaligned
        case .f16:
            let o = UnsafeMutableRawPointer(out)
            var i = 0
            while i + 8 <= w.cols {
                o.storeBytes(of: Half8.toFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)),
                             toByteOffset: 4 * i, as: SIMD8<Float>.self)
                i += 8
            }
            while i < w.cols { out[i] = halfToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)); i += 1 }
        default:
            DTypeConversion.toFloat32(UnsafeRawBufferPointer(start: p, count: w.rowBytes), dtype: w.dtype,
                                      count: w.cols, into: UnsafeMutableBufferPointer(start: out, count: w.cols))
        }
    }
}
