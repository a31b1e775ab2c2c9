#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels

/// Gemma-3 text models: x·(1+w) RMSNorm, q/k norms, sandwich norms around attention and MLP,
/// sliding-window and global layers with their own RoPE bases, embeddings × √hidden, tanh-GELU
/// gated MLP, tied output.
public final class Gemma3Model: TextModel, @unchecked Sendable {
    public let config: TextModelConfig
    let weights: ModelWeights
    let tokenEmbedding: WeightMatrix  // [vocab, hidden]
    let output: WeightMatrix          // [vocab, hidden]
    let outputNorm: UnsafePointer<Float>
    let blocks: [Block]
    let globalRope: Rope
    let localRope: Rope
    let embeddingScale: Float

    struct Block {
        let attnNorm, postAttnNorm, ffnNorm, postFfnNorm: UnsafePointer<Float>  // [hidden]
        let qNorm, kNorm: UnsafePointer<Float>                                  // [headDim]
        let q, k, v, o: WeightMatrix
        let gate, up, down: WeightMatrix
    }

    public init(weights: ModelWeights) throws {
        let vocab = weights.file.entry("token_embd.weight")?.shape.first
        let c = try TextModelConfig(metadata: weights.file.metadata, architecture: "gemma3", vocabularyFallback: vocab)
        config = c
        self.weights = weights
        let (h, qDim, kvDim, hd) = (c.hidden, c.heads * c.headDim, c.kvHeads * c.headDim, c.headDim)
        tokenEmbedding = try weights.matrix("token_embd.weight", rows: c.vocabularySize, cols: h)
        output = weights.has("output.weight") ? try weights.matrix("output.weight", rows: c.vocabularySize, cols: h) : tokenEmbedding
        outputNorm = try weights.vector("output_norm.weight", count: h)
        blocks = try (0..<c.layers).map { i in
            let p = "blk.\(i)."
            return Block(
                attnNorm: try weights.vector(p + "attn_norm.weight", count: h),
                postAttnNorm: try weights.vector(p + "post_attention_norm.weight", count: h),
                ffnNorm: try weights.vector(p + "ffn_norm.weight", count: h),
                postFfnNorm: try weights.vector(p + "post_ffw_norm.weight", count: h),
                qNorm: try weights.vector(p + "attn_q_norm.weight", count: hd),
                kNorm: try weights.vector(p + "attn_k_norm.weight", count: hd),
                q: try weights.matrix(p + "attn_q.weight", rows: qDim, cols: h),
                k: try weights.matrix(p + "attn_k.weight", rows: kvDim, cols: h),
                v: try weights.matrix(p + "attn_v.weight", rows: kvDim, cols: h),
                o: try weights.matrix(p + "attn_output.weight", rows: h, cols: qDim),
                gate: try weights.matrix(p + "ffn_gate.weight", rows: c.feedForward, cols: h),
                up: try weights.matrix(p + "ffn_up.weight", rows: c.feedForward, cols: h),
                down: try weights.matrix(p + "ffn_down.weight", rows: h, cols: c.feedForward))
        }
        globalRope = Rope(headDim: hd, base: c.ropeBase, scaling: c.ropeScaling)
        localRope = Rope(headDim: hd, base: c.localRopeBase ?? 10000, scaling: nil)
        // As Hugging Face: the normalizer √hidden is rounded to the embedding dtype (f32 here).
        embeddingScale = Float(Double(h).squareRoot())
    }

    public func embed(_ tokens: [Int32], into out: UnsafeMutablePointer<Float>) throws {
        try checkTokens(tokens, vocabularySize: config.vocabularySize)
        let h = config.hidden
        for (i, t) in tokens.enumerated() {
            Kernels.dequantizeRow(tokenEmbedding, row: Int(t), into: out + i * h)
            for j in 0..<h { out[i * h + j] *= embeddingScale }
        }
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, count n: Int, start: Int, cache: KVCache,
                        pool: ThreadPool?, output what: ForwardOutput, into out: UnsafeMutablePointer<Float>,
                        hook: (any DecoderLayerHook)?) throws {
        try checkPositions(n: n, start: start, cache: cache)
        let c = config
        let (h, qDim, kvDim, hd, eps) = (c.hidden, c.heads * c.headDim, c.kvHeads * c.headDim, c.headDim, c.normEpsilon)
        let xb = cache.scratch.buffer(0, n * h), q = cache.scratch.buffer(1, n * qDim), k = cache.scratch.buffer(2, n * kvDim), v = cache.scratch.buffer(3, n * kvDim)
        let att = cache.scratch.buffer(4, n * qDim), gate = cache.scratch.buffer(5, n * c.feedForward), up = cache.scratch.buffer(6, n * c.feedForward)
        for (l, b) in blocks.enumerated() {
            if let hook { try hook.beforeLayer(l, x: x, count: n, start: start, pool: pool) }
            let sliding = c.slidingLayers[l]
            let rope = sliding ? localRope : globalRope
            for i in 0..<n { Kernels.rmsNorm(x + i * h, weight: b.attnNorm, count: h, eps: eps, addOne: true, out: xb.pointer + i * h) }
            linear(group: [(b.q, q.pointer, nil), (b.k, k.pointer, nil), (b.v, v.pointer, nil)], xb.pointer, n: n, pool: pool)
            for i in 0..<n {
                for head in 0..<c.heads {
                    let p = q.pointer + i * qDim + head * hd
                    Kernels.rmsNorm(p, weight: b.qNorm, count: hd, eps: eps, addOne: true, out: p)
                }
                for head in 0..<c.kvHeads {
                    let p = k.pointer + i * kvDim + head * hd
                    Kernels.rmsNorm(p, weight: b.kNorm, count: hd, eps: eps, addOne: true, out: p)
                }
                rope.apply(q.pointer + i * qDim, heads: c.heads, position: start + i)
                rope.apply(k.pointer + i * kvDim, heads: c.kvHeads, position: start + i)
            }
            cache.store(layer: l, start: start, count: n, k: k.pointer, v: v.pointer)
            attention(q: q.pointer, out: att.pointer, n: n, start: start, cache: cache, layer: l, heads: c.heads,
                      kvHeads: c.kvHeads, headDim: hd, scale: c.attentionScale,
                      window: sliding ? c.slidingWindow : nil, pool: pool)
            linear(b.o, att.pointer, n: n, xb.pointer, pool: pool)
            for i in 0..<n { Kernels.rmsNorm(xb.pointer + i * h, weight: b.postAttnNorm, count: h, eps: eps, addOne: true, out: xb.pointer + i * h) }
            Kernels.add(x, xb.pointer, count: n * h)
            for i in 0..<n { Kernels.rmsNorm(x + i * h, weight: b.ffnNorm, count: h, eps: eps, addOne: true, out: xb.pointer + i * h) }
            linear(group: [(b.gate, gate.pointer, nil), (b.up, up.pointer, nil)], xb.pointer, n: n, pool: pool)
            elementwise(n * c.feedForward, pool: pool) { at, count in
                Kernels.geluTanh(gate.pointer + at, count: count)
                Kernels.mul(gate.pointer + at, up.pointer + at, count: count)
            }
            linear(b.down, gate.pointer, n: n, xb.pointer, pool: pool)
            for i in 0..<n { Kernels.rmsNorm(xb.pointer + i * h, weight: b.postFfnNorm, count: h, eps: eps, addOne: true, out: xb.pointer + i * h) }
            Kernels.add(x, xb.pointer, count: n * h)
        }
        let first = what == .lastLogits ? n - 1 : 0
        let m = n - first
        let normed = what == .hiddenStates ? out : xb.pointer
        for i in 0..<m { Kernels.rmsNorm(x + (first + i) * h, weight: outputNorm, count: h, eps: eps, addOne: true, out: normed + i * h) }
        guard what != .hiddenStates else { return }
        linear(output, xb.pointer, n: m, out, pool: pool)
        if let cap = c.finalLogitSoftcap, cap > 0 {
            for i in 0..<(m * c.vocabularySize) { out[i] = tanhf(out[i] / cap) * cap }
        }
    }
}
