import TSLMFormat
#if arch(x86_64) && TSLM_X86_AVX2
import _Builtin_intrinsics.intel
import TSLMKernelsVNNI
#endif

/// The prefill GEMM of q4_0 and q8_0 weights on integer dot products, for CPUs with AVX-512 VNNI
/// (`Kernels.integerGemm`).
///
/// The activations are quantized exactly as the row-dot path of decoding quantizes them (q4_0:
/// 8-bit blocks; q8_0: 16-bit blocks, or 8-bit with `TSLM_Q8_ACTIVATIONS=8`), so prefill and
/// decode compute the same numbers up to the order of the f32 sums:
/// `Reference.matmulQuantizedActivations` is the scalar twin. Each block's integer dot product is
/// exact; per block the int32 result is scaled by the weight row's and the token's scales.
///
/// The weights are packed once per panel of 16 rows (all columns; `IntegerGemmVNNI` documents
/// the layout) into a per-thread buffer and reused by every token: the micro-kernel multiplies
/// the 16 rows by 8 tokens at a time. One `vpdpbusd` does 64 multiply–adds where an f32 FMA does
/// 16 (measured on the Xeon VM: it issues about 0.7 times as often as an FMA). q8_0's 16-bit
/// activations take two of them per 4 columns (`Mode.split`), the cost of one 16-bit `vpdpwssd`,
/// without widening the weights to 16 bits, which made packing cost more than the products at
/// 16–64 tokens.
///
/// Threads split the panels, or the tokens when a matrix has too few rows to share.
enum IntegerGemm {
    /// How a dtype's weights meet their activations.
    enum Mode: Equatable {
        /// 8-bit activations (q4_0; q8_0 with `TSLM_Q8_ACTIVATIONS=8`).
        case bytes
        /// 16-bit activations (q8_0), as two byte planes: two `vpdpbusd` per 4 columns.
        case split
    }

    static let panelRows = 16
    /// Tokens per micro-kernel call.
    static let tileTokens = 8
    /// Bytes of one packed block of 32 columns × 16 rows: 512 bytes of weights, 16 f32 row
    /// scales, 16 int32 `-128 · Σ w`.
    static let blockBytes = 640
    static let scaleOffset = 512
    static let sumOffset = 576

    /// The mode `dtype` runs in, or nil where it takes the float GEMM.
    static func mode(for dtype: DType) -> Mode? {
        switch dtype {
        case .q4_0: return .bytes
        case .q8_0: return Kernels.q8_0WideActivations ? .split : .bytes
        default: return nil
        }
    }

    /// Y[t, r] = Σ_c W[r, c]·X[t, c] with quantized activations (see the type's comment).
    /// `w.dtype` must have a `mode`, and this build and CPU the VNNI kernels.
    static func multiply(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        guard let mode = mode(for: w.dtype) else { return }
        let blocks = w.blocksPerRow, cols = w.cols
        // Activations, quantized once per token as the row-dot path does, then laid out as the
        // kernels read them: unsigned bytes, one plane (8-bit) or two (16-bit) per token.
        let narrow = mode == .bytes ? QuantizedActivations(tokens: n, blocks: blocks) : nil
        let wide = mode == .split ? WideQuantizedActivations(tokens: n, blocks: blocks) : nil
        let planes = mode == .split ? 2 : 1
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: max(1, n * planes * cols), alignment: 64)
        defer { narrow?.deallocate(); wide?.deallocate(); bytes.deallocate() }
        guard let scales = wide?.scales ?? narrow?.scales else { return }
        let quantize: (Range<Int>) -> Void = { range in
            for t in range {
                let out = bytes + t * planes * cols
                if let wide {
                    wide.quantize(token: t, x + t * cols)
                    splitWords(wide.quants(token: t), count: cols, low: out, high: out + cols)
                } else if let narrow {
                    narrow.quantize(token: t, x + t * cols)
                    flipSignBits(UnsafeRawPointer(narrow.quants(token: t)), count: cols, into: out)
                }
            }
        }
        if n >= 4, let pool { pool.parallelFor(n, grain: 2, quantize) } else { quantize(0..<n) }

        let panels = (w.rows + panelRows - 1) / panelRows
        let body: (_ panels: Range<Int>, _ tokens: Range<Int>) -> Void = { panelRange, tokens in
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: blocks * blockBytes, alignment: 64)
            defer { buffer.deallocate() }
            for p in panelRange {
                let r0 = p * panelRows, rows = min(panelRows, w.rows - r0)
                pack(w, rows: r0..<(r0 + rows), into: buffer)
                var t = tokens.lowerBound
                while t < tokens.upperBound {
                    let nt = min(tileTokens, tokens.upperBound - t)
                    run(buffer, mode: mode, blocks: blocks, x: UnsafePointer(bytes.assumingMemoryBound(to: UInt8.self)) + t * planes * cols,
                        ldx: planes * cols, scales: UnsafePointer(scales) + t * blocks, tokens: nt,
                        y: y + t * w.rows + r0, ldy: w.rows, rows: rows)
                    t += nt
                }
            }
        }
        guard let pool, pool.threads > 1, w.rows * n * cols >= Gemm.parallelThresholdMACs else {
            body(0..<panels, 0..<n)
            return
        }
        if panels >= 2 * pool.threads {
            pool.parallelFor(panels, grain: 1) { body($0, 0..<n) }
        } else {
            pool.parallelFor(n, grain: tileTokens) { body(0..<panels, $0) }
        }
    }

    /// One micro-kernel call: the packed panel × `tokens` (≤ 8) tokens whose bytes start at `x`.
    @inline(__always)
    static func run(_ panel: UnsafeRawPointer, mode: Mode, blocks: Int, x: UnsafePointer<UInt8>, ldx: Int, scales: UnsafePointer<Float>,
                    tokens: Int, y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int) {
        #if arch(x86_64) && TSLM_X86_AVX2
        if mode == .bytes {
            IntegerGemmVNNI.bytes(panel: panel, blocks: blocks, x: x, ldx: ldx, scales: scales, tokens: tokens, y: y, ldy: ldy, rows: rows)
        } else {
            IntegerGemmVNNI.split(panel: panel, blocks: blocks, x: x, ldx: ldx, scales: scales, tokens: tokens, y: y, ldy: ldy, rows: rows)
        }
        #endif
    }

    /// 16-bit quants x as the byte planes of `split`: low byte l = x mod 256, high byte
    /// h + 128 (h = x >> 8, arithmetic), so that x = 256·h + l.
    static func splitWords(_ q: UnsafePointer<Int16>, count: Int, low: UnsafeMutableRawPointer, high: UnsafeMutableRawPointer) {
        let l = low.assumingMemoryBound(to: UInt8.self), h = high.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count {
            let v = UInt16(bitPattern: q[i])
            l[i] = UInt8(truncatingIfNeeded: v)
            h[i] = UInt8(truncatingIfNeeded: v >> 8) ^ 0x80
        }
    }

    /// `count` bytes from `p` to `out`, each XORed with 0x80: int8 q becomes the uint8 q + 128
    /// that `vpdpbusd` reads. (64-bit words: Swift's SIMD32<UInt8> operators compile to byte
    /// loops through the stack.)
    static func flipSignBits(_ p: UnsafeRawPointer, count: Int, into out: UnsafeMutableRawPointer) {
        var i = 0
        while i + 8 <= count {
            out.storeBytes(of: p.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ 0x8080_8080_8080_8080, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < count {
            out.storeBytes(of: p.load(fromByteOffset: i, as: UInt8.self) ^ 0x80, toByteOffset: i, as: UInt8.self)
            i += 1
        }
    }

    /// Packs rows `rows` (at most 16) of `w` (q4_0 or q8_0) into `out` in the layout of
    /// `IntegerGemmVNNI`; the rows of the panel past `rows.count` are zero.
    static func pack(_ w: WeightMatrix, rows: Range<Int>, into out: UnsafeMutableRawPointer) {
        let blocks = w.blocksPerRow
        if rows.count < panelRows { out.initializeMemory(as: UInt8.self, repeating: 0, count: blocks * blockBytes) }
        let q4 = w.dtype == .q4_0
        if let il = w.interleaved, rows.count == panelRows, rows.lowerBound % panelRows == 0 {
            // The same blocks from the repacked copy (decode's), so the stored pages stay out.
            let g = rows.lowerBound / panelRows
            if q4 {
                for i in 0..<panelRows {
                    var o = out + 4 * i
                    for b in 0..<blocks {
                        let (d, a, c) = il.q4Block(group: g, row: i, b)
                        packQ4(scale: d, a, c, into: o)
                        o += blockBytes
                    }
                }
            } else {
                // q8_0: the repacked block's 512 bytes are this layout's weights already.
                let weights = il.weights(group: g), scales = il.scales(group: g)
                for b in 0..<blocks {
                    let o = out + b * blockBytes, p = weights + 512 * b
                    o.copyMemory(from: p, byteCount: 512)
                    for i in 0..<panelRows {
                        o.storeBytes(of: scale(scales.load(fromByteOffset: 32 * b + 2 * i, as: UInt16.self)),
                                     toByteOffset: scaleOffset + 4 * i, as: Float.self)
                    }
                    laneSums(p, into: o + sumOffset)
                }
            }
            return
        }
        let weightBlockBytes = q4 ? BlockQ4_0.byteCount : BlockQ8_0.byteCount
        for i in 0..<rows.count {
            let row = w.row(rows.lowerBound + i)
            var o = out + 4 * i
            for b in 0..<blocks {
                let block = row + b * weightBlockBytes
                let qs = block + 2  // after the f16 scale, in both block types
                if q4 {
                    packQ4(scale: block.loadUnaligned(as: UInt16.self), qs.loadUnaligned(as: UInt64.self),
                           qs.loadUnaligned(fromByteOffset: 8, as: UInt64.self), into: o)
                } else {
                    o.storeBytes(of: scale(block.loadUnaligned(as: UInt16.self)), toByteOffset: scaleOffset, as: Float.self)
                    for g in 0..<8 { o.storeBytes(of: qs.loadUnaligned(fromByteOffset: 4 * g, as: UInt32.self), toByteOffset: 64 * g, as: UInt32.self) }
                    o.storeBytes(of: -128 * signedByteSum(qs), toByteOffset: sumOffset, as: Int32.self)
                }
                o += blockBytes
            }
        }
    }

    /// One row's slot (at `o`) of a packed bytes block from a q4_0 block: its scale's bits and
    /// its 16 bytes of nibbles as two little-endian words.
    @inline(__always) static func packQ4(scale d: UInt16, _ a: UInt64, _ c: UInt64, into o: UnsafeMutableRawPointer) {
        o.storeBytes(of: scale(d), toByteOffset: scaleOffset, as: Float.self)
        // Nibble − 8 as a signed byte, 8 bytes per 64-bit word: elements 0–15 are the low
        // nibbles, 16–31 the high ones.
        let nibbles = 0x0F0F_0F0F_0F0F_0F0F as UInt64
        let lo0 = a & nibbles, lo1 = c & nibbles, hi0 = (a >> 4) & nibbles, hi1 = (c >> 4) & nibbles
        storeGroups(centered(lo0), o)
        storeGroups(centered(lo1), o + 128)
        storeGroups(centered(hi0), o + 256)
        storeGroups(centered(hi1), o + 384)
        // Σ nibbles: each word's byte sum (≤ 8 · 15) lands in its top byte.
        let bytesum = { (v: UInt64) -> Int32 in Int32(truncatingIfNeeded: (v &* 0x0101_0101_0101_0101) >> 56) }
        let sum = bytesum(lo0) + bytesum(lo1) + bytesum(hi0) + bytesum(hi1) - 256
        o.storeBytes(of: -128 * sum, toByteOffset: sumOffset, as: Int32.self)
    }

    /// Each byte n (a nibble, 0...15) of `v` as the signed byte n − 8: n + 0x78 never carries
    /// out of its byte, and flipping bit 7 then gives n − 8 mod 256.
    @inline(__always) static func centered(_ v: UInt64) -> UInt64 {
        (v &+ 0x7878_7878_7878_7878) ^ 0x8080_8080_8080_8080
    }

    /// Stores the 2 groups of 4 bytes of `v` 64 bytes apart from `o` (one row's slot in each
    /// group of a bytes block).
    @inline(__always) static func storeGroups(_ v: UInt64, _ o: UnsafeMutableRawPointer) {
        o.storeBytes(of: UInt32(truncatingIfNeeded: v), toByteOffset: 0, as: UInt32.self)
        o.storeBytes(of: UInt32(truncatingIfNeeded: v >> 32), toByteOffset: 64, as: UInt32.self)
    }

    /// A block's f16 scale as f32 (F16C where the build has it: `halfToFloat` branches).
    @inline(__always) static func scale(_ h: UInt16) -> Float {
        #if arch(x86_64) && TSLM_X86_AVX2
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(Int16(bitPattern: h))))
        #else
        halfToFloat(h)
        #endif
    }

    /// The 16 int32 `-128 · Σ w` of a bytes block's weights at `p` (8 groups of 64 bytes, row i's
    /// 4 bytes at 4·i in each), to `out`.
    @inline(__always) static func laneSums(_ p: UnsafeRawPointer, into out: UnsafeMutableRawPointer) {
        #if arch(x86_64) && TSLM_X86_AVX2
        var s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256()
        let ones = _mm256_set1_epi8(1)
        for j in 0..<8 {
            // 1 (unsigned) · w (signed), adjacent pairs, then pairs of pairs: one int32 per row.
            let v0 = _mm256_loadu_si256((p + 64 * j).assumingMemoryBound(to: __m256i.self))
            let v1 = _mm256_loadu_si256((p + 64 * j + 32).assumingMemoryBound(to: __m256i.self))
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(ones, v0), _mm256_set1_epi16(1)))
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(ones, v1), _mm256_set1_epi16(1)))
        }
        let m = _mm256_set1_epi32(-128)
        _mm256_storeu_si256(out.assumingMemoryBound(to: __m256i.self), _mm256_mullo_epi32(s0, m))
        _mm256_storeu_si256((out + 32).assumingMemoryBound(to: __m256i.self), _mm256_mullo_epi32(s1, m))
        #else
        for i in 0..<16 {
            var sum: Int32 = 0
            for j in 0..<8 {
                for k in 0..<4 { sum += Int32(p.load(fromByteOffset: 64 * j + 4 * i + k, as: Int8.self)) }
            }
            out.storeBytes(of: -128 * sum, toByteOffset: 4 * i, as: Int32.self)
        }
        #endif
    }

    /// Σ of the 32 signed bytes at `p`.
    @inline(__always) static func signedByteSum(_ p: UnsafeRawPointer) -> Int32 {
        #if arch(x86_64) && TSLM_X86_AVX2
        let v = _mm256_loadu_si256(p.assumingMemoryBound(to: __m256i.self))
        let pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), v)  // 1 (unsigned) · q (signed), adjacent pairs
        let sums = unsafeBitCast(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), to: SIMD8<Int32>.self)
        return sums.wrappedSum()
        #else
        var s: Int32 = 0
        for k in 0..<32 { s += Int32(p.load(fromByteOffset: k, as: Int8.self)) }
        return s
        #endif
    }
}
