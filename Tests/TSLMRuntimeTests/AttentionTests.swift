import XCTest
import TSLMKernels
@testable import TSLMRuntime
import TSLMTestSupport

/// Prefill attention as matrix products (`blockAttention`) against the one-query path, which
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
        ]
        for (n, start, heads, kvHeads, headDim, window, half) in cases {
            let cache = try KVCache(layers: 1, capacity: start + n, width: kvHeads * headDim, half: half)
            let k = rng.floats((start + n) * kvHeads * headDim), v = rng.floats((start + n) * kvHeads * headDim)
            cache.store(layer: 0, start: 0, count: start + n, k: k, v: v)
            let q = rng.floats(n * heads * headDim, scale: 2)
            let scale = 1 / Float(headDim).squareRoot()
            var block = [Float](repeating: .nan, count: n * heads * headDim), single = block
            for pool in [nil, ThreadPool(threads: 2)] {
                blockAttention(q: q, out: &block, n: n, start: start, cache: cache, layer: 0, heads: heads, kvHeads: kvHeads,
                               headDim: headDim, scale: scale, window: window, pool: pool)
                // The one-query path: one call per query, as decoding runs it.
                for i in 0..<n {
                    q.withUnsafeBufferPointer { qp in
                        single.withUnsafeMutableBufferPointer { op in
                            attention(q: qp.baseAddress! + i * heads * headDim, out: op.baseAddress! + i * heads * headDim, n: 1,
                                      start: start + i, cache: cache, layer: 0, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                      scale: scale, window: window, pool: pool)
                        }
                    }
                }
                for i in 0..<block.count {
                    XCTAssertEqual(block[i], single[i], accuracy: 2e-6 * max(1, abs(single[i])),
                                   "n \(n) start \(start) heads \(heads)/\(kvHeads) window \(window.map(String.init) ?? "-") half \(half) [\(i)]")
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
}
