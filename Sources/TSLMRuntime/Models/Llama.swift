import TSLMFormat
import TSLMKernels

/// The Llama family (Llama 1/2/3.x, SmolLM2): RMSNorm, grouped-query attention with RoPE
/// (optionally "llama3"-scaled), SwiGLU MLP, optionally tied embeddings.
public final class LlamaModel: TextModel, @unchecked Sendable {
    public let config: TextModelConfig
    let weights: ModelWeights
    /// [vocab, hidden]
    let tokenEmbedding: WeightMatrix
    /// [vocab, hidden]; the embedding matrix when tied.
    let output: WeightMatrix
    /// [hidden]
    let outputNorm: UnsafePointer<Float>
    let blocks: [Block]
    let rope: Rope

    struct Block {
        let attnNorm: UnsafePointer<Float>  // [hidden]
        let q: WeightMatrix                 // [heads·headDim, hidden]
        let k: WeightMatrix                 // [kvHeads·headDim, hidden]
        let v: WeightMatrix                 // [kvHeads·headDim, hidden]
        let o: WeightMatrix                 // [hidden, heads·headDim]
        let qBias, kBias, vBias, oBias: UnsafePointer<Float>?
        let ffnNorm: UnsafePointer<Float>   // [hidden]
        let gate: WeightMatrix              // [ffn, hidden]
        let up: WeightMatrix                // [ffn, hidden]
        let down: WeightMatrix              // [hidden, ffn]
    }

    public init(weights: ModelWeights) throws {
        let vocab = weights.file.entry("token_embd.weight")?.shape.first
        let c = try TextModelConfig(metadata: weights.file.metadata, architecture: "llama", vocabularyFallback: vocab)
        config = c
        self.weights = weights
        let (h, qDim, kvDim) = (c.hidden, c.heads * c.headDim, c.kvHeads * c.headDim)
        tokenEmbedding = try weights.matrix("token_embd.weight", rows: c.vocabularySize, cols: h)
        output = weights.has("output.weight") ? try weights.matrix("output.weight", rows: c.vocabularySize, cols: h) : tokenEmbedding
        outputNorm = try weights.vector("output_norm.weight", count: h)
        blocks = try (0..<c.layers).map { i in
            let p = "blk.\(i)."
            return Block(
                attnNorm: try weights.vector(p + "attn_norm.weight", count: h),
                q: try weights.matrix(p + "attn_q.weight", rows: qDim, cols: h),
                k: try weights.matrix(p + "attn_k.weight", rows: kvDim, cols: h),
                v: try weights.matrix(p + "attn_v.weight", rows: kvDim, cols: h),
                o: try weights.matrix(p + "attn_output.weight", rows: h, cols: qDim),
                qBias: try weights.optionalVector(p + "attn_q.bias", count: qDim),
                kBias: try weights.optionalVector(p + "attn_k.bias", count: kvDim),
                vBias: try weights.optionalVector(p + "attn_v.bias", count: kvDim),
                oBias: try weights.optionalVector(p + "attn_output.bias", count: h),
                ffnNorm: try weights.vector(p + "ffn_norm.weight", count: h),
                gate: try weights.matrix(p + "ffn_gate.weight", rows: c.feedForward, cols: h),
                up: try weights.matrix(p + "ffn_up.weight", rows: c.feedForward, cols: h),
                down: try weights.matrix(p + "ffn_down.weight", rows: h, cols: c.feedForward))
        }
        rope = Rope(headDim: c.headDim, base: c.ropeBase, scaling: c.ropeScaling)
    }

    public func embed(_ tokens: [Int32], into out: UnsafeMutablePointer<Float>) throws {
        try checkTokens(tokens, vocabularySize: config.vocabularySize)
        for (i, t) in tokens.enumerated() { Kernels.dequantizeRow(tokenEmbedding, row: Int(t), into: out + i * config.hidden) }
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, count n: Int, start: Int, cache: KVCache,
                        pool: ThreadPool?, output what: ForwardOutput, into out: UnsafeMutablePointer<Float>,
                        hook: (any DecoderLayerHook)?) throws {
        try checkPositions(n: n, start: start, cache: cache)
        let c = config
        let (h, qDim, kvDim) = (c.hidden, c.heads * c.headDim, c.kvHeads * c.headDim)
        let xb = cache.scratch.buffer(0, n * h), q = cache.scratch.buffer(1, n * qDim), k = cache.scratch.buffer(2, n * kvDim), v = cache.scratch.buffer(3, n * kvDim)
        let att = cache.scratch.buffer(4, n * qDim), gate = cache.scratch.buffer(5, n * c.feedForward), up = cache.scratch.buffer(6, n * c.feedForward)
        for (l, b) in blocks.enumerated() {
            if let hook { try hook.beforeLayer(l, x: x, count: n, start: start, pool: pool) }
            for i in 0..<n { Kernels.rmsNorm(x + i * h, weight: b.attnNorm, count: h, eps: c.normEpsilon, addOne: false, out: xb.pointer + i * h) }
            linear(group: [(b.q, q.pointer, b.qBias), (b.k, k.pointer, b.kBias), (b.v, v.pointer, b.vBias)], xb.pointer, n: n, pool: pool)
            for i in 0..<n {
                rope.apply(q.pointer + i * qDim, heads: c.heads, position: start + i)
                rope.apply(k.pointer + i * kvDim, heads: c.kvHeads, position: start + i)
            }
            cache.store(layer: l, start: start, count: n, k: k.pointer, v: v.pointer)
            attention(q: q.pointer, out: att.pointer, n: n, start: start, cache: cache, layer: l, heads: c.heads,
                      kvHeads: c.kvHeads, headDim: c.headDim, scale: c.attentionScale, window: nil, pool: pool)
            linear(b.o, att.pointer, n: n, xb.pointer, bias: b.oBias, pool: pool)
            Kernels.add(x, xb.pointer, count: n * h)
            for i in 0..<n { Kernels.rmsNorm(x + i * h, weight: b.ffnNorm, count: h, eps: c.normEpsilon, addOne: false, out: xb.pointer + i * h) }
            linear(group: [(b.gate, gate.pointer, nil), (b.up, up.pointer, nil)], xb.pointer, n: n, pool: pool)
            elementwise(n * c.feedForward, pool: pool) { at, count in
                Kernels.silu(gate.pointer + at, count: count)
                Kernels.mul(gate.pointer + at, up.pointer + at, count: count)
            }
            linear(b.down, gate.pointer, n: n, xb.pointer, pool: pool)
            Kernels.add(x, xb.pointer, count: n * h)
        }
        let first = what == .lastLogits ? n - 1 : 0
        let m = n - first
        let normed = what == .hiddenStates ? out : xb.pointer
        for i in 0..<m { Kernels.rmsNorm(x + (first + i) * h, weight: outputNorm, count: h, eps: c.normEpsilon, addOne: false, out: normed + i * h) }
        if what != .hiddenStates { linear(output, xb.pointer, n: m, out, pool: pool) }
    }
}
