import XCTest
import TSLMKernels
@testable import TSLMRuntime
import TSLMTestSupport

/// Prefill attention as matrix products (`blockAttention`) and decode attention split over the
/// cached positions (`splitAttention`) against the one-query path (`oneQueryAttention`), which
/// the backbone parity tests check against transformers.
final class AttentionTests: XCTestCase {
    func testBlockAttentionMatchesOneQueryPath() throws {
        var rng = SplitMix64(seed: 77)
        // (queries, earlier positions in the cache, heads, kv heads, head dim, window, f16 cache)
        let cases: [(Int, Int, Int, Int, Int, Int?, Bool)] = [
            (5, 0, 2, 2, 8, nil, false), (70, 0, 4, 2, 16, nil, false), (131, 9, 3, 1, 12, nil, true),
            (66, 40, 2, 1, 8, 17, false), (9, 3, 6, 3, 64, 4, true),
            // More than one 256-position chunk of transposed values, split among the threads.
            (300, 20, 6, 2, 16, nil, true), (270, 0, 4, 4, 8, 100, false),
            // head_dim 64 and 128: the AVX-512 outer-product kernels (query tiles of 12 and 6 with
            // tails, key counts no multiple of 32, f32 and f16 caches, windows).
            (70, 5, 6, 2, 64, nil, false), (40, 33, 3, 3, 128, 50, true), (100, 0, 9, 3, 64, nil, true),
            (67, 120, 4, 1, 64, nil, false), (13, 1, 2, 1, 64, 7, false),
        ]
        // Both the outer-product kernels and the GEMM path where the CPU has AVX-512.
        defer { Kernels.gemmAVX512 = Kernels.gemmAVX512Available }
        for avx512 in Kernels.gemmAVX512Available ? [true, false] : [false] {
        Kernels.gemmAVX512 = avx512
        for (n, start, heads, kvHeads, headDim, window, half) in cases {
            let (cache, q, scale) = try randomCase(&rng, n: n, start: start, heads: heads, kvHeads: kvHeads, headDim: headDim, half: half)
            var block = [Float](repeating: .nan, count: n * heads * headDim), single = block
            for pool in [nil, ThreadPool(threads: 2)] {
                blockAttention(q: q, out: &block, n: n, start: start, cache: cache, layer: 0, heads: heads, kvHeads: kvHeads,
                               headDim: headDim, scale: scale, window: window, pool: pool)
                // The one-query path: one call per query, as decoding runs it.
                single = oneQueryPerPosition(q, n: n, start: start, cache: cache, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                             scale: scale, window: window, pool: pool)
                for i in 0..<block.count {
                    XCTAssertEqual(block[i], single[i], accuracy: 2e-6 * max(1, abs(single[i])),
                                   "avx512 \(avx512) n \(n) start \(start) heads \(heads)/\(kvHeads) dim \(headDim) window \(window.map(String.init) ?? "-") half \(half) [\(i)]")
                }
            }
            // Through `attention` itself (n ≥ gemmMinTokens takes the block path).
            guard n >= Kernels.gemmMinTokens else { continue }
            var viaAttention = [Float](repeating: .nan, count: n * heads * headDim)
            attention(q: q, out: &viaAttention, n: n, start: start, cache: cache, layer: 0, heads: heads, kvHeads: kvHeads,
                      headDim: headDim, scale: scale, window: window, pool: nil)
            XCTAssertEqual(viaAttention, block)
        }
        }
    }

    func testSplitAttentionMatchesOneQueryPath() throws {
        var rng = SplitMix64(seed: 79)
        // (queries, earlier positions in the cache, heads, kv heads, head dim, window, f16 cache):
        // head dims with 32-, 8- and 1-wide tails, odd groups, several 256-key parts, windows
        // that start inside a part, and a few queries at once (each sees one more key).
        let cases: [(Int, Int, Int, Int, Int, Int?, Bool)] = [
            (1, 0, 2, 2, 8, nil, false), (1, 40, 9, 3, 64, nil, false), (1, 40, 9, 3, 64, nil, true),
            (1, 700, 9, 3, 64, nil, false), (1, 1000, 8, 2, 72, nil, true), (1, 600, 4, 1, 13, 300, false),
            (3, 511, 6, 2, 40, nil, true), (5, 257, 3, 3, 16, 100, false), (1, 300, 5, 1, 128, nil, false),
        ]
        for (n, start, heads, kvHeads, headDim, window, half) in cases {
            let (cache, q, scale) = try randomCase(&rng, n: n, start: start, heads: heads, kvHeads: kvHeads, headDim: headDim, half: half)
            let single = oneQueryPerPosition(q, n: n, start: start, cache: cache, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                             scale: scale, window: window, pool: nil)
            for pool in [nil, ThreadPool(threads: 2)] {
                var split = [Float](repeating: .nan, count: n * heads * headDim)
                splitAttention(q: q, out: &split, n: n, start: start, cache: cache, layer: 0, heads: heads, kvHeads: kvHeads,
                               headDim: headDim, scale: scale, window: window, pool: pool)
                for i in 0..<split.count {
                    XCTAssertEqual(split[i], single[i], accuracy: 2e-6 * max(1, abs(single[i])),
                                   "n \(n) start \(start) heads \(heads)/\(kvHeads) dim \(headDim) window \(window.map(String.init) ?? "-") half \(half) [\(i)]")
                }
                // `attention` itself takes the split path below gemmMinTokens queries.
                var viaAttention = [Float](repeating: .nan, count: n * heads * headDim)
                attention(q: q, out: &viaAttention, n: n, start: start, cache: cache, layer: 0, heads: heads, kvHeads: kvHeads,
                          headDim: headDim, scale: scale, window: window, pool: pool)
                XCTAssertEqual(viaAttention, split)
            }
        }
    }

    func testSoftmaxPartsMergeToSoftmax() {
        var rng = SplitMix64(seed: 80)
        // Both the AVX-512 and the AVX2/portable loops where the CPU has AVX-512.
        for (count, avx512) in [1, 7, 8, 16, 17, 37, 300].flatMap({ c in [(c, false), (c, true)] }) {
            Kernels.gemmAVX512 = avx512 && Kernels.gemmAVX512Available
            defer { Kernels.gemmAVX512 = Kernels.gemmAVX512Available }
            let x = rng.floats(count, scale: 6)
            var whole = x
            whole.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, count: count) }
            // Two parts, merged as splitAttention merges them.
            let cut = count / 3
            var a = Array(x[..<cut]), b = Array(x[cut...])
            let (ma, sa) = a.withUnsafeMutableBufferPointer { Kernels.softmaxPart($0.baseAddress!, count: cut, scale: 0.5) }
            let (mb, sb) = b.withUnsafeMutableBufferPointer { Kernels.softmaxPart($0.baseAddress!, count: count - cut, scale: 0.5) }
            var halved = x.map { $0 * 0.5 }
            halved.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, count: count) }
            let m = max(ma, mb)
            let total = sa * expf(ma - m) + sb * expf(mb - m)
            for i in 0..<count {
                let merged = i < cut ? a[i] * expf(ma - m) / total : b[i - cut] * expf(mb - m) / total
                XCTAssertEqual(merged, halved[i], accuracy: 1e-6 * max(1e-3, halved[i]), "count \(count) avx512 \(avx512) [\(i)]")
            }
            XCTAssertEqual(Double(whole.reduce(0, +)), 1, accuracy: 1e-5)
        }
    }

    /// The exponentials of both softmax loops against libm, over the range softmax feeds them
    /// (x − max ≤ 0) down to where eˣ underflows, and the extremes.
    func testSoftmaxPartExponentialsMatchLibm() {
        var xs: [Float] = stride(from: Float(0), through: -110, by: -0.0137).map { $0 }
        xs += [-.infinity, -87.3, -88.72, -103.9, -104.5, -.leastNonzeroMagnitude, -1e-30]
        for avx512 in [false, true] {
            Kernels.gemmAVX512 = avx512 && Kernels.gemmAVX512Available
            defer { Kernels.gemmAVX512 = Kernels.gemmAVX512Available }
            // A leading 0 makes the maximum 0, so the part holds e^x itself.
            var v = [Float(0)] + xs
            let (m, _) = v.withUnsafeMutableBufferPointer { Kernels.softmaxPart($0.baseAddress!, count: $0.count, scale: 1) }
            XCTAssertEqual(m, 0)
            for (i, x) in xs.enumerated() {
                let want = expf(x)
                XCTAssertEqual(v[i + 1], want, accuracy: max(2.5e-7 * want, 2e-45), "x \(x) avx512 \(avx512)")
            }
        }
    }

    func testEncoderAttentionAsMatrixProductsMatchesOneQueryPath() {
        var rng = SplitMix64(seed: 78)
        for (n, heads, dim) in [(9, 8, 128), (70, 8, 128), (200, 4, 64), (3, 2, 16)] {
            let qkv = rng.floats(n * 3 * dim, scale: 2)
            var blocks = [Float](repeating: .nan, count: n * dim), single = blocks
            bidirectionalAttention(qkv: qkv, out: &blocks, n: n, heads: heads, dim: dim, pool: ThreadPool(threads: 2))
            Kernels.prefillGemm = false
            bidirectionalAttention(qkv: qkv, out: &single, n: n, heads: heads, dim: dim, pool: nil)
            Kernels.prefillGemm = true
            for i in 0..<single.count {
                XCTAssertEqual(blocks[i], single[i], accuracy: 2e-6 * max(1, abs(single[i])), "n \(n) heads \(heads) [\(i)]")
            }
        }
    }

    /// A one-layer cache holding random keys and values for `start + n` positions, random
    /// queries for n positions and the usual 1/√headDim scale.
    private func randomCase(_ rng: inout SplitMix64, n: Int, start: Int, heads: Int, kvHeads: Int, headDim: Int,
                            half: Bool) throws -> (KVCache, [Float], Float) {
        let cache = try KVCache(layers: 1, capacity: start + n, width: kvHeads * headDim, half: half)
        let k = rng.floats((start + n) * kvHeads * headDim), v = rng.floats((start + n) * kvHeads * headDim)
        cache.store(layer: 0, start: 0, count: start + n, k: k, v: v)
        return (cache, rng.floats(n * heads * headDim, scale: 2), 1 / Float(headDim).squareRoot())
    }

    /// `oneQueryAttention` called once per query position, as decoding runs it.
    private func oneQueryPerPosition(_ q: [Float], n: Int, start: Int, cache: KVCache, heads: Int, kvHeads: Int, headDim: Int,
                                     scale: Float, window: Int?, pool: ThreadPool?) -> [Float] {
        var out = [Float](repeating: .nan, count: n * heads * headDim)
        for i in 0..<n {
            q.withUnsafeBufferPointer { qp in
                out.withUnsafeMutableBufferPointer { op in
                    oneQueryAttention(q: qp.baseAddress! + i * heads * headDim, out: op.baseAddress! + i * heads * headDim, n: 1,
                                      start: start + i, cache: cache, layer: 0, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                      scale: scale, window: window, pool: pool)
                }
            }
        }
        return out
    }
}
