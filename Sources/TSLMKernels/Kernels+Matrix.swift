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
    /// Tokens per tile in `matmul`'s row-dot path: each weight row is read once per tile.
    static let matmulTile = 16
    /// From this many tokens on, `matmul` runs the register-tiled float GEMM (`Gemm`): weights
    /// converted to f32 once per panel, f32 activations. Below it (decode, short chunks) the row
    /// dots run on the stored dtype with quantized activations.
    /// (Measured with `tslm bench --kernels`, 1 thread, SmolLM2 shapes: at 8 tokens the GEMM
    /// is 1.1–1.25× the row dots, at 4 tokens 0.4–0.6×: converting the panel costs about what
    /// 4–6 tokens' products do.)
    public static let gemmMinTokens = 8

    /// Whether `matmul` may use the GEMM path (`TSLM_PREFILL=rowdot` in the environment turns
    /// it off, to measure the difference).
    nonisolated(unsafe) public static var prefillGemm: Bool = {
        guard let v = getenv("TSLM_PREFILL") else { return true }
        return String(cString: v) != "rowdot"
    }()

    /// Whether the GEMM and attention's softmax run their AVX-512 loops (`GemmPanelAVX512`: 4
    /// rows × 4 tokens of 16-lane accumulators; `SoftmaxAVX512`) rather than the AVX2 ones: where this build has them (x86-64, not
    /// portable) and the CPU and OS support AVX-512F (`TSLM_CPU_FEATURES_MASK=avx512f` turns it
    /// off, to measure the difference); tests set it to check both paths.
    nonisolated(unsafe) public static var gemmAVX512: Bool = gemmAVX512Available

    /// Whether this build and CPU can run the AVX-512 GEMM loops.
    public static var gemmAVX512Available: Bool {
        #if TSLM_X86_AVX2
        CPUFeatures.detected.contains(.avx512f)
        #else
        false
        #endif
    }

    /// Whether prefill of q4_0 and q8_0 weights runs the integer GEMM (`IntegerGemm`: the
    /// activations quantized as in decoding, AVX-512 VNNI dot products) rather than the float
    /// one: where this build and the CPU have AVX-512 VNNI (`TSLM_CPU_FEATURES_MASK=avx512vnni`
    /// turns it off, to measure the difference); tests set it to check both paths.
    nonisolated(unsafe) public static var integerGemm: Bool = integerGemmAvailable

    /// Whether `WeightMatrix.interleavingRows()` (so the model loader) repacks q4_0 and q8_0
    /// matrices 16 rows at a time (`InterleavedRows`) for the VNNI row dots of decoding: where
    /// this build and the CPU have AVX-512 VNNI, unless `TSLM_INTERLEAVE=0` is set (to measure
    /// the difference); tests turn it off and on to check both paths.
    nonisolated(unsafe) public static var interleavedRows: Bool = {
        if let v = getenv("TSLM_INTERLEAVE"), String(cString: v) == "0" { return false }
        return integerGemmAvailable
    }()

    /// Whether this build and CPU can run the integer GEMM's VNNI kernels.
    public static var integerGemmAvailable: Bool {
        #if TSLM_X86_AVX2
        CPUFeatures.detected.contains(.avx512vnni)
        #else
        false
        #endif
    }

    /// Whether q8_0 matrix products quantize activations to 16 bits (the default: within 0.3%
    /// of f16's perplexity) or to 8 bits, as q4_0/q4_1 do (`TSLM_Q8_ACTIVATIONS=8` in the
    /// environment; kept to measure the difference).
    nonisolated(unsafe) public static var q8_0WideActivations: Bool = {
        guard let v = getenv("TSLM_Q8_ACTIVATIONS") else { return true }
        return String(cString: v) != "8"
    }()

    /// y[r] = Σ_c W[r,c]·x[c] for r in 0..<rows.
    ///
    /// For q4_0/q4_1 and the K types (q4_k, q5_k, q6_k), x is first quantized to 8-bit blocks
    /// (f32 scale per 32) once per call, for q8_0 weights to 16-bit blocks, and the row dot products use integer SIMD math; f32/f16/bf16 weights use
    /// float SIMD with FMA. Other dtypes are dequantized row by row (slow, but correct). Rows
    /// are split across `pool`. `y` must not alias `x`.
    public static func matvec(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        matmul(w, x, n: 1, y, pool: pool)
    }

    /// Y[i, r] = Σ_c W[r,c]·X[i,c] for i in 0..<n (X is [n, cols], Y is [n, rows], both
    /// row-major). From `gemmMinTokens` tokens on this is a GEMM: `IntegerGemm` for q4_0 and
    /// q8_0 where the CPU has AVX-512 VNNI (activations quantized as below, so the same numbers
    /// as the row dots up to summation order), else `Gemm` (every dtype through f32 panels: as
    /// exact as the f32 reference up to summation order). Fewer tokens are
    /// processed in tiles of `matmulTile` tokens, so each weight row is read once per tile,
    /// with the same activation quantization as `matvec`. `y` must not alias `x`.
    public static func matmul(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        guard w.rows > 0, n > 0 else { return }
        if let stats = activationStatistics { stats.add(w, x, n: n) }
        guard w.cols > 0 else {
            y.update(repeating: 0, count: w.rows * n)
            return
        }
        if n >= gemmMinTokens && prefillGemm {
            if integerGemm && IntegerGemm.mode(for: w.dtype) != nil {
                IntegerGemm.multiply(w, x, n: n, y, pool: pool)
            } else {
                Gemm.multiply(w, x, n: n, y, pool: pool)
            }
            return
        }
        rowDots([w], x, n: n, [y], pool: pool)
    }

    /// Y = X·Wᵀ through the GEMM micro-kernel on the calling thread, for products of
    /// intermediate values rather than model weights (attention's Q·Kᵀ and P·V): never recorded
    /// in `activationStatistics`, safe to call from several threads at once. Row r of `w`
    /// starts `rowStride` bytes after row r − 1 (default `w.rowBytes`), so `w` may be a view of
    /// some columns of a wider matrix (one head's keys in the KV cache).
    public static func gemm(_ w: WeightMatrix, rowStride: Int? = nil, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>) {
        guard w.rows > 0, n > 0 else { return }
        guard w.cols > 0 else {
            y.update(repeating: 0, count: w.rows * n)
            return
        }
        Gemm.run(w, rowStride: rowStride, x, rows: 0..<w.rows, tokens: 0..<n, y)
    }

    /// Y_g[i, r] = Σ_c W_g[r,c]·X[i,c] for matrices W_g that read the same input (q, k and v;
    /// gate and up): as `matmul` on each, but for short inputs on the row-dot path the
    /// activations are quantized once and all rows are shared among the threads as one job.
    /// `ys[g]` must not alias `x` nor each other.
    public static func matmul(group ws: [WeightMatrix], _ x: UnsafePointer<Float>, n: Int,
                              _ ys: [UnsafeMutablePointer<Float>], pool: ThreadPool?) {
        guard let first = ws.first, n > 0 else { return }
        let uniform = ws.allSatisfy { $0.dtype == first.dtype && $0.cols == first.cols }
        if !uniform || ws.count != ys.count || first.cols == 0 || (n >= gemmMinTokens && prefillGemm) {
            for (w, y) in Swift.zip(ws, ys) { matmul(w, x, n: n, y, pool: pool) }
            return
        }
        if let stats = activationStatistics { for w in ws { stats.add(w, x, n: n) } }
        rowDots(ws, x, n: n, ys, pool: pool)
    }

    /// The row-dot path of `matmul` for matrices of one dtype and width: activations quantized
    /// once (for the block types), then the rows of all matrices, as one range, split among the
    /// threads.
    static func rowDots(_ ws: [WeightMatrix], _ x: UnsafePointer<Float>, n: Int, _ ys: [UnsafeMutablePointer<Float>], pool: ThreadPool?) {
        let w0 = ws[0]
        let total = ws.reduce(0) { $0 + $1.rows }
        guard total > 0 else { return }
        let cols = w0.cols
        var narrow: QuantizedActivations?
        var wide: WideQuantizedActivations?
        switch w0.dtype {
        case .q8_0 where q8_0WideActivations:
            // 16-bit activations: 8-bit ones would cost q8_0 most of its accuracy (see
            // `WideQuantizedActivations`).
            wide = WideQuantizedActivations(tokens: n, blocks: w0.blocksPerRow)
        case .q8_0, .q4_0, .q4_1, .q4_k, .q5_k, .q6_k:
            narrow = QuantizedActivations(tokens: n, blocks: w0.blocksPerRow)
        default:
            break
        }
        // Repacked rows (all or none) take whole groups of 16; q8_0's meet its 16-bit quants as
        // two byte planes.
        let interleaved = ws.allSatisfy { $0.interleaved != nil }
        let planes: UnsafeMutablePointer<UInt8>? = interleaved && wide != nil ? .allocate(capacity: 2 * n * cols) : nil
        defer { narrow?.deallocate(); wide?.deallocate(); planes?.deallocate() }
        if narrow != nil || wide != nil {
            let quantize: (Range<Int>) -> Void = { range in
                for i in range {
                    if let wide {
                        wide.quantize(token: i, x + i * cols)
                        if let planes {
                            let low = planes + 2 * cols * i
                            IntegerGemm.splitWords(wide.quants(token: i), count: cols, low: low, high: low + cols)
                        }
                    } else {
                        narrow?.quantize(token: i, x + i * cols)
                    }
                }
            }
            if n >= 4, let pool { pool.parallelFor(n, grain: 2, quantize) } else { quantize(0..<n) }
        }
        let body: (Range<Int>) -> Void = { range in
            var offset = 0
            for (g, w) in ws.enumerated() {
                let lo = max(range.lowerBound, offset), hi = min(range.upperBound, offset + w.rows)
                if lo < hi { rowDots(w, rows: (lo - offset)..<(hi - offset), x, n: n, ys[g], narrow: narrow, wide: wide, planes: planes) }
                offset += w.rows
            }
        }
        let grain = max(1, parallelThresholdBytes / max(1, w0.rowBytes * min(n, matmulTile)))
        let unit = interleaved ? InterleavedRows.groupRows : 1
        guard let pool else { return body(0..<total) }
        pool.parallelFor(total / unit, grain: max(1, grain / unit)) { body(($0.lowerBound * unit)..<($0.upperBound * unit)) }
    }

    /// Rows `rows` of one matrix on the calling thread, in tiles of `matmulTile` tokens (each
    /// weight row is read once per tile). Block types read the activations quantized in `wide`
    /// (q8_0 with 16-bit activations; for repacked rows also as byte `planes`) or `narrow`.
    @inline(__always)
    static func rowDots(_ w: WeightMatrix, rows range: Range<Int>, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>,
                        narrow: QuantizedActivations?, wide: WideQuantizedActivations?, planes: UnsafePointer<UInt8>? = nil) {
        let rows = w.rows, cols = w.cols, blocks = w.blocksPerRow
        if let il = w.interleaved, (il.dtype == .q4_0 && narrow != nil) || (il.dtype == .q8_0 && wide != nil && planes != nil) {
            // Whole groups of 16 rows from the repacked copy, any other rows as stored.
            let g0 = (range.lowerBound + 15) / 16, g1 = max(g0, range.upperBound / 16)
            il.multiply(groups: g0..<g1, narrow: narrow, wide: wide, planes: planes, tokens: 0..<n, y, ldy: rows)
            var stored = w
            stored.interleaved = nil
            let head = range.lowerBound..<min(range.upperBound, 16 * g0), tail = max(range.lowerBound, 16 * g1)..<range.upperBound
            if !head.isEmpty { rowDots(stored, rows: head, x, n: n, y, narrow: narrow, wide: wide) }
            if !tail.isEmpty { rowDots(stored, rows: tail, x, n: n, y, narrow: narrow, wide: wide) }
            return
        }
        var t0 = 0
        while t0 < n {
            let t1 = min(n, t0 + matmulTile)
            if let act = wide {
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
            } else if let act = narrow {
                let dtype = w.dtype
                var r = range.lowerBound
                #if arch(x86_64) && TSLM_X86_AVX2
                // Pairs of rows share each activation block load (the 32-weight types).
                while !dtype.isKQuant && r + 2 <= range.upperBound {
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
                        case .q4_1: v = RowDot.q4_1(row, xq, xd, xs, blocks: blocks)
                        case .q4_k: v = RowDot.q45_K(row, fifthBit: false, xq, xd, xs, superBlocks: blocks / 8)
                        case .q5_k: v = RowDot.q45_K(row, fifthBit: true, xq, xd, xs, superBlocks: blocks / 8)
                        default: v = RowDot.q6_K(row, xq, xd, superBlocks: blocks / 8)
                        }
                        y[i * rows + r] = v
                    }
                }
            } else {
                switch w.dtype {
                case .f32, .f16, .bf16:
                    let dtype = w.dtype
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
                default:
                    // Any other dtype: dequantize each row once per tile into scratch, then f32 dots.
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: cols)
                    defer { scratch.deallocate() }
                    for r in range {
                        dequantizeRow(w, row: r, into: scratch)
                        for i in t0..<t1 { y[i * rows + r] = dot(scratch, x + i * cols, count: cols) }
                    }
                }
            }
            t0 = t1
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
