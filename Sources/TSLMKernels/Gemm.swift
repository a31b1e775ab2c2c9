import TSLMFormat
#if arch(x86_64) && TSLM_X86_AVX2
import _Builtin_intrinsics.intel
import TSLMKernelsAVX512
#endif

/// The matrix–matrix product of prefill: Y[t, r] = Σ_c W[r, c]·X[t, c] for many tokens at once.
///
/// Every dtype runs through one float micro-kernel (but q4_0 and q8_0 where the CPU has AVX-512
/// VNNI: `IntegerGemm`; `Kernels.gemm`, attention's products, always runs here). The weights are converted to f32 once per
/// panel (`panelRows` rows × `panelCols` columns, 32 KiB: it stays in L1/L2) and reused by every
/// token; activations stay f32 (no activation quantization, so prefill is as exact as the f32
/// reference up to summation order). The micro-kernel keeps `tileRows` × `tileTokens` = 4 × 3
/// accumulators of 8 lanes in registers: per 8 columns it loads 4 weight and 3 activation
/// vectors for 12 FMAs, which keeps it bound by the FMA units rather than by loads.
///
/// Loop nest (per thread, over its own rows): column panels → row panels (converted) → token
/// triples → row quads → micro-kernel. Output is written on the first column panel and
/// accumulated on the others. Threads split rows (whole quads), or tokens when a matrix has
/// too few rows to share. Where the CPU has AVX-512, `runPacked` replaces this loop nest: both
/// operands packed into 16-column chunks, 4 × 4 tiles of 16-lane accumulators
/// (`GemmPanelAVX512`).
enum Gemm {
    static let tileRows = 4
    static let tileTokens = 3
    static let panelRows = 16
    /// The most columns per panel: 4 panel rows and 3 activation rows of a panel (28 KiB) stay
    /// in L1 while the micro-kernel runs. Columns are split into equal panels of a multiple of
    /// the block size (32; 256 for the K types), so panels start on block boundaries.
    static let panelCols = 768
    /// Products below this many multiply–adds run on the calling thread.
    static let parallelThresholdMACs = 1 << 20

    static func multiply(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        let rows = w.rows
        let macs = rows * n * w.cols
        guard let pool, pool.threads > 1, macs >= parallelThresholdMACs else {
            run(w, x, rows: 0..<rows, tokens: 0..<n, y)
            return
        }
        let quads = (rows + tileRows - 1) / tileRows
        if quads >= 4 * pool.threads {
            pool.parallelFor(quads, grain: 1) { range in
                let r = (range.lowerBound * tileRows)..<min(rows, range.upperBound * tileRows)
                run(w, x, rows: r, tokens: 0..<n, y)
            }
        } else {
            pool.parallelFor(n, grain: tileTokens) { range in
                run(w, x, rows: 0..<rows, tokens: range, y)
            }
        }
    }

    /// Rows `rows` × tokens `tokens` of the product, on the calling thread. Row r of `w` starts
    /// `rowStride` bytes after row r − 1 (`w.rowBytes` unless given: a view into a wider
    /// matrix, such as one head's keys in the KV cache).
    static func run(_ w: WeightMatrix, rowStride: Int? = nil, _ x: UnsafePointer<Float>, rows: Range<Int>, tokens: Range<Int>,
                    _ y: UnsafeMutablePointer<Float>) {
        guard !rows.isEmpty, !tokens.isEmpty else { return }
        let rowStride = rowStride ?? w.rowBytes
        #if arch(x86_64) && TSLM_X86_AVX2
        if Kernels.gemmAVX512 {
            runPacked(w, rowStride: rowStride, x, rows: rows, tokens: tokens, y)
            return
        }
        #endif
        let cols = w.cols, ldy = w.rows
        let panels = (cols + panelCols - 1) / panelCols
        // Panels start on block boundaries: 32 weights, 256 for the K types.
        let align = max(32, w.dtype.blockSize)
        let width = min(cols, ((cols + panels - 1) / panels + align - 1) / align * align)
        // A panel's rows are `stride` floats apart (a multiple of 16: 64-byte aligned rows).
        let stride = (width + 15) / 16 * 16
        let panel = UnsafeMutableRawPointer.allocate(byteCount: panelRows * stride * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: panelRows * stride)
        defer { panel.deallocate() }
        var k0 = 0
        while k0 < cols {
            let kc = min(width, cols - k0)
            let first = k0 == 0
            var r0 = rows.lowerBound
            while r0 < rows.upperBound {
                let mr = min(panelRows, rows.upperBound - r0)
                for i in 0..<mr { convert(w.dtype, w.data + (r0 + i) * rowStride, from: k0, count: kc, into: panel + i * stride) }
                // Rows past the matrix's end within the last quad are zero (their results are dropped).
                let padded = (mr + tileRows - 1) / tileRows * tileRows
                for i in mr..<padded { (panel + i * stride).initialize(repeating: 0, count: kc) }
                var t = tokens.lowerBound
                while t < tokens.upperBound {
                    let nt = min(tileTokens, tokens.upperBound - t)
                    // Missing tokens of the last triple repeat the first (results dropped).
                    let x0 = x + t * cols + k0
                    let x1 = nt > 1 ? x0 + cols : x0
                    let x2 = nt > 2 ? x0 + 2 * cols : x0
                    var q = 0
                    while q < padded {
                        let nr = min(tileRows, mr - q)
                        let acc = tile(panel + q * stride, stride: stride, x0, x1, x2, count: kc)
                        for j in 0..<nt {
                            let out = y + (t + j) * ldy + r0 + q
                            for i in 0..<nr {
                                out[i] = first ? acc[j * tileRows + i] : out[i] + acc[j * tileRows + i]
                            }
                        }
                        q += tileRows
                    }
                    t += nt
                }
                r0 += mr
            }
            k0 += kc
        }
    }

    #if arch(x86_64) && TSLM_X86_AVX2
    /// Tokens whose activations are packed at once (per column panel): 128 × 768 floats, 384
    /// KiB, stay in L2 while the row panels of a row group run over them.
    static let packedTokenBlock = 128
    /// Rows whose outputs are finished (over all column panels) before the next rows start:
    /// their 128 tokens × 128 rows of partial sums (64 KiB) stay in L2 between column panels,
    /// where a sweep over all rows per column panel read them back from L3 (21% of the
    /// kernel's samples landed on that read, 3% now).
    static let packedRowGroup = 128

    /// `run` for CPUs with AVX-512 (`GemmPanelAVX512`): weights and activations both packed so
    /// that each 4 × 4 tile reads its operands from two pointers, 64 contiguous bytes per row
    /// or token and 16-column chunk (no address arithmetic and no spilled pointers in the inner
    /// loop). Loop nest: token blocks → row groups → column panels (activations packed) → row
    /// panels (weights converted and packed) → tiles. Columns past `cols` within the last chunk,
    /// rows past the last row and tokens past the last token within the last quad are packed as
    /// zeros; their results are dropped.
    static func runPacked(_ w: WeightMatrix, rowStride: Int, _ x: UnsafePointer<Float>, rows: Range<Int>, tokens: Range<Int>,
                          _ y: UnsafeMutablePointer<Float>) {
        let cols = w.cols, ldy = w.rows
        let panels = (cols + panelCols - 1) / panelCols
        let align = max(32, w.dtype.blockSize)
        let width = min(cols, ((cols + panels - 1) / panels + align - 1) / align * align)
        let chunks = (width + 15) / 16
        let quadFloats = 64 * chunks
        let block = min(packedTokenBlock, (tokens.count + 3) / 4 * 4)
        // f32 rows are read in place, and so are f16 rows of whole chunks that meet one quad of
        // tokens (each chunk is converted once either way); other dtypes are converted
        // (`convert` stores aligned vectors) and packed.
        let half = w.dtype == .f16 && tokens.count <= GemmPanelAVX512.tileTokens && cols % 32 == 0
        let inPlace = w.dtype == .f32 || half
        let scratchFloats = inPlace ? 16 : 16 * chunks, panelFloats = inPlace ? 16 : (panelRows / 4) * quadFloats
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: 4 * scratchFloats, alignment: 64)
            .bindMemory(to: Float.self, capacity: scratchFloats)
        let wp = UnsafeMutableRawPointer.allocate(byteCount: 4 * panelFloats, alignment: 64)
            .bindMemory(to: Float.self, capacity: panelFloats)
        let xp = UnsafeMutableRawPointer.allocate(byteCount: 4 * (block / 4) * quadFloats, alignment: 64)
            .bindMemory(to: Float.self, capacity: (block / 4) * quadFloats)
        defer { scratch.deallocate(); wp.deallocate(); xp.deallocate() }
        var t0 = tokens.lowerBound
        while t0 < tokens.upperBound {
            let nt = min(block, tokens.upperBound - t0)
            var g0 = rows.lowerBound
            while g0 < rows.upperBound {
                let group = g0..<min(rows.upperBound, g0 + packedRowGroup)
                var k0 = 0
                while k0 < cols {
                    let kc = min(width, cols - k0), ck = (kc + 15) / 16
                    for t in 0..<((nt + 3) / 4 * 4) {
                        let quad = xp + (t / 4) * quadFloats + (t % 4) * 16
                        if t < nt {
                            pack(x + (t0 + t) * cols + k0, count: kc, chunks: ck, into: quad)
                        } else {
                            for c in 0..<ck { (quad + 64 * c).initialize(repeating: 0, count: 16) }
                        }
                    }
                    if inPlace {
                        // Attention's keys among them.
                        GemmPanelAVX512.multiplyRows(w.data + group.lowerBound * rowStride + (half ? 2 : 4) * k0, half: half, rowStride: rowStride,
                                                     rows: group.count, cols: kc, x: xp, quadFloats: quadFloats, tokens: nt,
                                                     y: y + t0 * ldy + group.lowerBound, ldy: ldy, accumulate: k0 > 0)
                        k0 += kc
                        continue
                    }
                    var r0 = group.lowerBound
                    while r0 < group.upperBound {
                        let mr = min(panelRows, group.upperBound - r0)
                        for i in 0..<((mr + 3) / 4 * 4) {
                            let quad = wp + (i / 4) * quadFloats + (i % 4) * 16
                            if i < mr {
                                convert(w.dtype, w.data + (r0 + i) * rowStride, from: k0, count: kc, into: scratch)
                                pack(scratch, count: kc, chunks: ck, into: quad)
                            } else {
                                for c in 0..<ck { (quad + 64 * c).initialize(repeating: 0, count: 16) }
                            }
                        }
                        GemmPanelAVX512.multiply(weights: wp, x: xp, chunks: ck, quadFloats: quadFloats, rows: mr, tokens: nt,
                                                 y: y + t0 * ldy + r0, ldy: ldy, accumulate: k0 > 0)
                        r0 += mr
                    }
                    k0 += kc
                }
                g0 = group.upperBound
            }
            t0 += nt
        }
    }

    /// `count` floats from `src` (any alignment) as `chunks` chunks of 16, each 64 floats (one
    /// 4-row quad) after the previous; the last chunk's tail past `count` zero.
    @inline(__always)
    static func pack(_ src: UnsafePointer<Float>, count: Int, chunks: Int, into dst: UnsafeMutablePointer<Float>) {
        let whole = count / 16
        let from = UnsafeRawPointer(src), to = UnsafeMutableRawPointer(dst)
        for c in 0..<whole {
            to.storeBytes(of: from.loadUnaligned(fromByteOffset: 64 * c, as: SIMD16<Float>.self), toByteOffset: 256 * c,
                          as: SIMD16<Float>.self)
        }
        if whole < chunks {
            let rest = count - 16 * whole
            for j in 0..<16 { dst[64 * whole + j] = j < rest ? from.loadUnaligned(fromByteOffset: 4 * (16 * whole + j), as: Float.self) : 0 }
        }
    }
    #endif

    /// The 4 × 3 dot products of panel rows `a[0..<4]` (`stride` apart) with x0, x1, x2 over
    /// `count` columns, token-major: result[j·4 + i] = a_i · x_j.
    @inline(__always)
    static func tile(_ a: UnsafePointer<Float>, stride: Int, _ x0: UnsafePointer<Float>, _ x1: UnsafePointer<Float>,
                     _ x2: UnsafePointer<Float>, count: Int) -> SIMD16<Float> {
        let a0 = a, a1 = a + stride, a2 = a + 2 * stride, a3 = a + 3 * stride
        var out = SIMD16<Float>()
        var k = 0
        #if arch(x86_64) && TSLM_X86_AVX2
        var c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps(), c03 = _mm256_setzero_ps()
        var c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps(), c13 = _mm256_setzero_ps()
        var c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps(), c23 = _mm256_setzero_ps()
        // 3 activation vectors + 1 weight vector + 12 accumulators: all 16 ymm registers.
        while k + 8 <= count {
            let v0 = _mm256_loadu_ps(x0 + k), v1 = _mm256_loadu_ps(x1 + k), v2 = _mm256_loadu_ps(x2 + k)
            let w0 = _mm256_load_ps(a0 + k)
            c00 = _mm256_fmadd_ps(w0, v0, c00); c10 = _mm256_fmadd_ps(w0, v1, c10); c20 = _mm256_fmadd_ps(w0, v2, c20)
            let w1 = _mm256_load_ps(a1 + k)
            c01 = _mm256_fmadd_ps(w1, v0, c01); c11 = _mm256_fmadd_ps(w1, v1, c11); c21 = _mm256_fmadd_ps(w1, v2, c21)
            let w2 = _mm256_load_ps(a2 + k)
            c02 = _mm256_fmadd_ps(w2, v0, c02); c12 = _mm256_fmadd_ps(w2, v1, c12); c22 = _mm256_fmadd_ps(w2, v2, c22)
            let w3 = _mm256_load_ps(a3 + k)
            c03 = _mm256_fmadd_ps(w3, v0, c03); c13 = _mm256_fmadd_ps(w3, v1, c13); c23 = _mm256_fmadd_ps(w3, v2, c23)
            k += 8
        }
        let s0 = hsum4(c00, c01, c02, c03), s1 = hsum4(c10, c11, c12, c13), s2 = hsum4(c20, c21, c22, c23)
        out = SIMD16(lowHalf: SIMD8(lowHalf: s0, highHalf: s1), highHalf: SIMD8(lowHalf: s2, highHalf: SIMD4<Float>()))
        #else
        let ra0 = UnsafeRawPointer(a0), ra1 = UnsafeRawPointer(a1), ra2 = UnsafeRawPointer(a2), ra3 = UnsafeRawPointer(a3)
        let rx0 = UnsafeRawPointer(x0), rx1 = UnsafeRawPointer(x1), rx2 = UnsafeRawPointer(x2)
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>(), c02 = SIMD8<Float>(), c03 = SIMD8<Float>()
        var c10 = SIMD8<Float>(), c11 = SIMD8<Float>(), c12 = SIMD8<Float>(), c13 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>(), c22 = SIMD8<Float>(), c23 = SIMD8<Float>()
        while k + 8 <= count {
            let o = 4 * k
            let w0 = ra0.load(fromByteOffset: o, as: SIMD8<Float>.self), w1 = ra1.load(fromByteOffset: o, as: SIMD8<Float>.self)
            let w2 = ra2.load(fromByteOffset: o, as: SIMD8<Float>.self), w3 = ra3.load(fromByteOffset: o, as: SIMD8<Float>.self)
            let v0 = rx0.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            c00 += w0 * v0; c01 += w1 * v0; c02 += w2 * v0; c03 += w3 * v0
            let v1 = rx1.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            c10 += w0 * v1; c11 += w1 * v1; c12 += w2 * v1; c13 += w3 * v1
            let v2 = rx2.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            c20 += w0 * v2; c21 += w1 * v2; c22 += w2 * v2; c23 += w3 * v2
            k += 8
        }
        out = SIMD16(lowHalf: SIMD8(lowHalf: SIMD4(c00.sum(), c01.sum(), c02.sum(), c03.sum()),
                                    highHalf: SIMD4(c10.sum(), c11.sum(), c12.sum(), c13.sum())),
                     highHalf: SIMD8(lowHalf: SIMD4(c20.sum(), c21.sum(), c22.sum(), c23.sum()), highHalf: SIMD4<Float>()))
        #endif
        // Columns past the last multiple of 8 (float matrices of odd widths only).
        while k < count {
            let w = SIMD4(a0[k], a1[k], a2[k], a3[k])
            out.lowHalf.lowHalf += w * x0[k]
            out.lowHalf.highHalf += w * x1[k]
            out.highHalf.lowHalf += w * x2[k]
            k += 1
        }
        return out
    }

    #if arch(x86_64) && TSLM_X86_AVX2
    /// The horizontal sums of four 8-lane vectors, as one 4-lane vector.
    @inline(__always) static func hsum4(_ a: __m256, _ b: __m256, _ c: __m256, _ d: __m256) -> SIMD4<Float> {
        let ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d)
        let abcd = _mm256_hadd_ps(ab, cd)  // per 128-bit half: a, b, c, d partial sums (`__m256` is SIMD8<Float>)
        return abcd.lowHalf + abcd.highHalf
    }
    #endif

    /// Columns `from ..< from + count` of the `dtype` row at `base` as f32 into `out` (`from` is
    /// a multiple of the block size).
    @inline(__always)
    static func convert(_ dtype: DType, _ base: UnsafeRawPointer, from: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
        let o = UnsafeMutableRawPointer(out)
        switch dtype {
        case .f32:
            o.copyMemory(from: base + 4 * from, byteCount: 4 * count)
        case .f16:
            let p = base + 2 * from
            var i = 0
            while i + 8 <= count {
                #if arch(x86_64) && TSLM_X86_AVX2
                _mm256_store_ps(out + i, RowDot.halves(p + 2 * i))
                #else
                o.storeBytes(of: Half8.toFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)),
                             toByteOffset: 4 * i, as: SIMD8<Float>.self)
                #endif
                i += 8
            }
            while i < count { out[i] = halfToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)); i += 1 }
        case .bf16:
            let p = base + 2 * from
            for i in 0..<count { out[i] = bf16ToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        case .q8_0:
            var p = base + (from / 32) * BlockQ8_0.byteCount
            var i = 0
            while i < count {
                let d = SIMD8<Float>(repeating: halfToFloat(p.loadUnaligned(as: UInt16.self)))
                let q = p + BlockQ8_0.qsOffset
                for part in 0..<4 {
                    let v = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q.loadUnaligned(fromByteOffset: 8 * part, as: SIMD8<Int8>.self)))
                    o.storeBytes(of: v * d, toByteOffset: 4 * (i + 8 * part), as: SIMD8<Float>.self)
                }
                p += BlockQ8_0.byteCount
                i += 32
            }
        case .q4_0, .q4_1:
            let q4_1 = dtype == .q4_1
            let bytes = q4_1 ? BlockQ4_1.byteCount : BlockQ4_0.byteCount
            let qsOffset = q4_1 ? BlockQ4_1.qsOffset : BlockQ4_0.qsOffset
            var p = base + (from / 32) * bytes
            var i = 0
            while i < count {
                let d = SIMD16<Float>(repeating: halfToFloat(p.loadUnaligned(as: UInt16.self)))
                let packed = p.loadUnaligned(fromByteOffset: qsOffset, as: SIMD16<UInt8>.self)
                var lo = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: packed & 0x0F))
                var hi = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: packed &>> 4))
                if q4_1 {
                    let m = SIMD16<Float>(repeating: halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ4_1.mOffset, as: UInt16.self)))
                    lo = lo * d + m
                    hi = hi * d + m
                } else {
                    lo = (lo - 8) * d
                    hi = (hi - 8) * d
                }
                o.storeBytes(of: lo, toByteOffset: 4 * i, as: SIMD16<Float>.self)
                o.storeBytes(of: hi, toByteOffset: 4 * i + 64, as: SIMD16<Float>.self)
                p += bytes
                i += 32
            }
        case .q4_k, .q5_k, .q6_k:
            KQuantDecode.decode(dtype, base + (from / KQuants.superBlockSize) * dtype.bytesPerBlock, count: count, into: out)
        default:
            let size = dtype.bytesPerBlock / dtype.blockSize
            DTypeConversion.toFloat32(UnsafeRawBufferPointer(start: base + size * from, count: size * count),
                                      dtype: dtype, count: count, into: UnsafeMutableBufferPointer(start: out, count: count))
        }
    }
}
