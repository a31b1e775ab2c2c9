import TSLMFormat
import CCPUFeatures
#if arch(x86_64) && TSLM_X86_AVX2
import _Builtin_intrinsics.intel
#endif

// Row dot products for the K super-block types (q4_k, q5_k, q6_k; layouts in
// `BlockLayouts.swift`) with activations quantized to 8-bit blocks of 32, as for q4_0/q4_1
// (`QuantizedActivations`: quants `xq`, scales `xd`, sums `xs` = xd·Σq). A super-block of 256
// weights meets 8 activation blocks:
//
// - q4_k, q5_k: sub-block j (32 weights) is activation block j, so the row dot is
//   Σ_j (d·sc_j·xd_j)·Σ q·x − dmin·Σ_j m_j·xs_j, with q in 0...15 (0...31).
// - q6_k: activation block b holds the sub-blocks 2b and 2b + 1 (16 weights each); the 16-bit
//   pair sums of (q − 32)·x are multiplied by their sub-block's int8 scale before widening.
//
// The AVX2 versions use `vpmaddubsw` (unsigned weight × signed activation) and `vpmaddwd`;
// the portable ones integer Swift. `Reference.matvecQuantizedActivations` is their scalar twin.
extension RowDot {
    /// The 6-bit scale and min codes of the 8 sub-blocks of a q4_k/q5_k super-block (see
    /// `KQuants.scaleMin`).
    @inline(__always)
    static func kScalesMins(_ s: UnsafeRawPointer) -> (SIMD8<UInt8>, SIMD8<UInt8>) {
        var sc = SIMD8<UInt8>(), mn = SIMD8<UInt8>()
        for j in 0..<4 {
            sc[j] = s.load(fromByteOffset: j, as: UInt8.self) & 63
            mn[j] = s.load(fromByteOffset: j + 4, as: UInt8.self) & 63
        }
        for j in 4..<8 {
            let b = s.load(fromByteOffset: j + 4, as: UInt8.self)
            sc[j] = (b & 0x0F) | ((s.load(fromByteOffset: j - 4, as: UInt8.self) >> 6) << 4)
            mn[j] = (b >> 4) | ((s.load(fromByteOffset: j, as: UInt8.self) >> 6) << 4)
        }
        return (sc, mn)
    }

    /// A q4_k (`fifthBit` false) or q5_k row · quantized activations (`superBlocks` × 256
    /// weights).
    @inline(__always)
    static func q45_K(_ row: UnsafeRawPointer, fifthBit: Bool, _ xq: UnsafePointer<Int8>, _ xd: UnsafePointer<Float>,
                      _ xs: UnsafePointer<Float>, superBlocks: Int) -> Float {
        let blockBytes = fifthBit ? BlockQ5_K.byteCount : BlockQ4_K.byteCount
        let qsOffset = fifthBit ? BlockQ5_K.qsOffset : BlockQ4_K.qsOffset
        var corr: Float = 0
        #if arch(x86_64) && TSLM_X86_AVX2
        var acc = _mm256_setzero_ps()
        let low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), bit4 = _mm256_set1_epi8(0x10)
        #else
        var total: Float = 0
        #endif
        for s in 0..<superBlocks {
            let p = row + blockBytes * s
            prefetch(p)
            let d = halfToFloat(p.loadUnaligned(as: UInt16.self))
            let dmin = halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ4_K.dminOffset, as: UInt16.self))
            let (sc, mn) = kScalesMins(p + BlockQ4_K.scalesOffset)
            let b0 = 8 * s
            var m: Float = 0
            for j in 0..<8 { m += Float(mn[j]) * xs[b0 + j] }
            corr += dmin * m
            #if arch(x86_64) && TSLM_X86_AVX2
            let qh = fifthBit ? (p + BlockQ5_K.qhOffset).loadUnaligned(as: __m256i.self) : _mm256_setzero_si256()
            for c in 0..<4 {
                let raw = (p + qsOffset + 32 * c).loadUnaligned(as: __m256i.self)
                var q0 = _mm256_and_si256(raw, low)
                var q1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low)
                if fifthBit {
                    let m0 = _mm256_set1_epi8(Int8(bitPattern: UInt8(1) << UInt8(2 * c)))
                    let m1 = _mm256_set1_epi8(Int8(bitPattern: UInt8(2) << UInt8(2 * c)))
                    q0 = _mm256_or_si256(q0, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m0), m0), bit4))
                    q1 = _mm256_or_si256(q1, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, m1), m1), bit4))
                }
                let b = b0 + 2 * c
                let x0 = UnsafeRawPointer(xq + 32 * b).load(as: __m256i.self)
                let x1 = UnsafeRawPointer(xq + 32 * b + 32).load(as: __m256i.self)
                let p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q0, x0), ones)
                let p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q1, x1), ones)
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d * Float(sc[2 * c]) * xd[b]), acc)
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d * Float(sc[2 * c + 1]) * xd[b + 1]), acc)
            }
            #else
            for c in 0..<4 {
                let b = b0 + 2 * c
                var dot0: Int32 = 0, dot1: Int32 = 0
                for l in 0..<32 {
                    let byte = p.load(fromByteOffset: qsOffset + 32 * c + l, as: UInt8.self)
                    var q0 = Int32(byte & 0x0F), q1 = Int32(byte >> 4)
                    if fifthBit {
                        let h = p.load(fromByteOffset: BlockQ5_K.qhOffset + l, as: UInt8.self)
                        q0 |= Int32((h >> UInt8(2 * c)) & 1) << 4
                        q1 |= Int32((h >> UInt8(2 * c + 1)) & 1) << 4
                    }
                    dot0 += q0 * Int32(xq[32 * b + l])
                    dot1 += q1 * Int32(xq[32 * b + 32 + l])
                }
                total += d * Float(sc[2 * c]) * xd[b] * Float(dot0) + d * Float(sc[2 * c + 1]) * xd[b + 1] * Float(dot1)
            }
            #endif
        }
        #if arch(x86_64) && TSLM_X86_AVX2
        return hsum(acc) - corr
        #else
        return total - corr
        #endif
    }

    /// A q6_k row · quantized activations (`superBlocks` × 256 weights).
    @inline(__always)
    static func q6_K(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int8>, _ xd: UnsafePointer<Float>, superBlocks: Int) -> Float {
        #if arch(x86_64) && TSLM_X86_AVX2
        var acc = _mm256_setzero_ps()
        let low = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(0x03)
        for s in 0..<superBlocks {
            let p = row + BlockQ6_K.byteCount * s
            prefetch(p)
            let d = halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ6_K.dOffset, as: UInt16.self))
            let scales = p + BlockQ6_K.scalesOffset
            for h in 0..<2 {
                let qlA = (p + BlockQ6_K.qlOffset + 64 * h).loadUnaligned(as: __m256i.self)
                let qlB = (p + BlockQ6_K.qlOffset + 64 * h + 32).loadUnaligned(as: __m256i.self)
                let qh = (p + BlockQ6_K.qhOffset + 32 * h).loadUnaligned(as: __m256i.self)
                let g0 = 8 * s + 4 * h
                q6Group(_mm256_or_si256(_mm256_and_si256(qlA, low), _mm256_slli_epi16(_mm256_and_si256(qh, two), 4)),
                        xq, g0, scales, 4 * h, d * xd[g0], &acc)
                q6Group(_mm256_or_si256(_mm256_and_si256(qlB, low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4)),
                        xq, g0 + 1, scales, 4 * h + 1, d * xd[g0 + 1], &acc)
                q6Group(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlA, 4), low),
                                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4)),
                        xq, g0 + 2, scales, 4 * h + 2, d * xd[g0 + 2], &acc)
                q6Group(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlB, 4), low),
                                        _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4)),
                        xq, g0 + 3, scales, 4 * h + 3, d * xd[g0 + 3], &acc)
            }
        }
        return hsum(acc)
        #else
        var total: Float = 0
        for s in 0..<superBlocks {
            let p = row + BlockQ6_K.byteCount * s
            let d = halfToFloat(p.loadUnaligned(fromByteOffset: BlockQ6_K.dOffset, as: UInt16.self))
            for b in 0..<8 {
                var dot: Int32 = 0
                for half in 0..<2 {
                    var part: Int32 = 0
                    for i in 0..<16 {
                        let e = 32 * b + 16 * half + i
                        part += q6Level(p, e) * Int32(xq[256 * s + e])
                    }
                    dot += part * Int32(p.load(fromByteOffset: BlockQ6_K.scalesOffset + 2 * b + half, as: Int8.self))
                }
                total += d * xd[8 * s + b] * Float(dot)
            }
        }
        return total
        #endif
    }

    #if arch(x86_64) && TSLM_X86_AVX2
    /// One activation block `b` of a q6_k row: the 32 levels `q` (0...63) of sub-blocks
    /// 2g, 2g + 1 (int8 scales at `scales`) · the block's quants, times `dScale` = d·xd, added to
    /// `acc`.
    @inline(__always)
    static func q6Group(_ q: __m256i, _ xq: UnsafePointer<Int8>, _ b: Int, _ scales: UnsafeRawPointer, _ g: Int,
                        _ dScale: Float, _ acc: inout __m256) {
        let xv = UnsafeRawPointer(xq + 32 * b).load(as: __m256i.self)
        // Σ (q − 32)·x per pair: |value| ≤ 2·32·127, fits 16 bits.
        let pairs = _mm256_sub_epi16(_mm256_maddubs_epi16(q, xv), _mm256_maddubs_epi16(_mm256_set1_epi8(32), xv))
        let sa = Int16(scales.load(fromByteOffset: 2 * g, as: Int8.self))
        let sb = Int16(scales.load(fromByteOffset: 2 * g + 1, as: Int8.self))
        let sv = _mm256_set_m128i(_mm_set1_epi16(sb), _mm_set1_epi16(sa))
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, sv)), _mm256_set1_ps(dScale), acc)
    }
    #endif

    /// The signed level (q − 32) of weight `e` of the q6_k super-block at `p`.
    @inline(__always) static func q6Level(_ p: UnsafeRawPointer, _ e: Int) -> Int32 {
        let h = e / 128, r = e % 128
        let lowByte = p.load(fromByteOffset: BlockQ6_K.qlOffset + 64 * h + r % 64, as: UInt8.self)
        let low = r < 64 ? lowByte & 0x0F : lowByte >> 4
        let high = (p.load(fromByteOffset: BlockQ6_K.qhOffset + 32 * h + r % 32, as: UInt8.self) >> UInt8(2 * (r / 32))) & 3
        return Int32(low | high << 4) - 32
    }
}
