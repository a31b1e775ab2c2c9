import TSLMFormat
import TSLMKernels

/// GPT-2: learned positions, pre-LayerNorm blocks with biases, fused qkv projection, tanh-GELU
/// MLP, output tied to the token embedding.
public final class GPT2Model: TextModel, @unchecked Sendable {
    public let config: TextModelConfig
    let weights: ModelWeights
    let tokenEmbedding: WeightMatrix     // [vocab, hidden]
    let positionEmbedding: WeightMatrix  // [context, hidden]
    let output: WeightMatrix             // [vocab, hidden]
    let outputNorm: UnsafePointer<Float>, outputNormBias: UnsafePointer<Float>
    let blocks: [Block]

    struct Block {
        let attnNorm, attnNormBias: UnsafePointer<Float>  // [hidden]
        let qkv: WeightMatrix                              // [3·hidden, hidden]
        let qkvBias: UnsafePointer<Float>                  // [3·hidden]
        let o: WeightMatrix                                // [hidden, hidden]
        let oBias: UnsafePointer<Float>
        let ffnNorm, ffnNormBias: UnsafePointer<Float>
        let up: WeightMatrix                               // [ffn, hidden]
        let upBias: UnsafePointer<Float>
        let down: WeightMatrix                             // [hidden, ffn]
        let downBias: UnsafePointer<Float>
    }

    public init(weights: ModelWeights) throws {
        let vocab = weights.file.entry("token_embd.weight")?.shape.first
        let c = try TextModelConfig(metadata: weights.file.metadata, architecture: "gpt2", vocabularyFallback: vocab)
        config = c
        self.weights = weights
        let h = c.hidden
        tokenEmbedding = try weights.matrix("token_embd.weight", rows: c.vocabularySize, cols: h)
        positionEmbedding = try weights.matrix("position_embd.weight", rows: c.contextLength, cols: h)
        output = weights.has("output.weight") ? try weights.matrix("output.weight", rows: c.vocabularySize, cols: h) : tokenEmbedding
        outputNorm = try weights.vector("output_norm.weight", count: h)
        outputNormBias = try weights.vector("output_norm.bias", count: h)
        blocks = try (0..<c.layers).map { i in
            let p = "blk.\(i)."
            return Block(
                attnNorm: try weights.vector(p + "attn_norm.weight", count: h),
                attnNormBias: try weights.vector(p + "attn_norm.bias", count: h),
                qkv: try weights.matrix(p + "attn_qkv.weight", rows: 3 * h, cols: h),
                qkvBias: try weights.vector(p + "attn_qkv.bias", count: 3 * h),
                o: try weights.matrix(p + "attn_output.weight", rows: h, cols: h),
                oBias: try weights.vector(p + "attn_output.bias", count: h),
                ffnNorm: try weights.vector(p + "ffn_norm.weight", count: h),
                ffnNormBias: try weights.vector(p + "ffn_norm.bias", count: h),
                up: try weights.matrix(p + "ffn_up.weight", rows: c.feedForward, cols: h),
                upBias: try weights.vector(p + "ffn_up.bias", count: c.feedForward),
                down: try weights.matrix(p + "ffn_down.weight", rows: h, cols: c.feedForward),
                downBias: try weights.vector(p + "ffn_down.bias", count: h))
        }
    }

    public func embed(_ tokens: [Int32], into out: UnsafeMutablePointer<Float>) throws {
        try checkTokens(tokens, vocabularySize: config.vocabularySize)
        for (i, t) in tokens.enumerated() { Kernels.dequantizeRow(tokenEmbedding, row: Int(t), into: out + i * config.hidden) }
    }

    public func forward(_ x: UnsafeMutablePointer<Float>, count n: Int, start: Int, cache: KVCache,
                        pool: ThreadPool?, output what: ForwardOutput, into out: UnsafeMutablePointer<Float>,
                        hook: (any DecoderLayerHook)?) throws {
        try checkPositions(n: n, start: start, cache: cache)
        guard start + n <= config.contextLength else { throw RuntimeError.contextFull(context: config.contextLength) }
        let c = config
        let h = c.hidden
        let xb = cache.scratch.buffer(0, n * h), qkv = cache.scratch.buffer(1, n * 3 * h), q = cache.scratch.buffer(2, n * h), k = cache.scratch.buffer(3, n * h)
        let v = cache.scratch.buffer(4, n * h), att = cache.scratch.buffer(5, n * h), up = cache.scratch.buffer(6, n * c.feedForward), pos = cache.scratch.buffer(7, h)
        for i in 0..<n {
            Kernels.dequantizeRow(positionEmbedding, row: start + i, into: pos.pointer)
            Kernels.add(x + i * h, pos.pointer, count: h)
        }
        for (l, b) in blocks.enumerated() {
            if let hook { try hook.beforeLayer(l, x: x, count: n, start: start, pool: pool) }
            for i in 0..<n { Kernels.layerNorm(x + i * h, weight: b.attnNorm, bias: b.attnNormBias, count: h, eps: c.normEpsilon, out: xb.pointer + i * h) }
            linear(b.qkv, xb.pointer, n: n, qkv.pointer, bias: b.qkvBias, pool: pool)
            for i in 0..<n {
                let row = qkv.pointer + i * 3 * h
                (q.pointer + i * h).update(from: row, count: h)
                (k.pointer + i * h).update(from: row + h, count: h)
                (v.pointer + i * h).update(from: row + 2 * h, count: h)
            }
            cache.store(layer: l, start: start, count: n, k: k.pointer, v: v.pointer)
            attention(q: q.pointer, out: att.pointer, n: n, start: start, cache: cache, layer: l, heads: c.heads,
                      kvHeads: c.heads, headDim: c.headDim, scale: c.attentionScale, window: nil, pool: pool)
            linear(b.o, att.pointer, n: n, xb.pointer, bias: b.oBias, pool: pool)
            Kernels.add(x, xb.pointer, count: n * h)
            for i in 0..<n { Kernels.layerNorm(x + i * h, weight: b.ffnNorm, bias: b.ffnNormBias, count: h, eps: c.normEpsilon, out: xb.pointer + i * h) }
            linear(b.up, xb.pointer, n: n, up.pointer, bias: b.upBias, pool: pool)
            elementwise(n * c.feedForward, pool: pool) { at, count in Kernels.geluTanh(up.pointer + at, count: count) }
            linear(b.down, up.pointer, n: n, xb.pointer, bias: b.downBias, pool: pool)
            Kernels.add(x, xb.pointer, count: n * h)
        }
        let first = what == .lastLogits ? n - 1 : 0
        let m = n - first
        let normed = what == .hiddenStates ? out : xb.pointer
        for i in 0..<m {
            Kernels.layerNorm(x + (first + i) * h, weight: outputNorm, bias: outputNormBias, count: h, eps: c.normEpsilon, out: normed + i * h)
        }
        if what != .hiddenStates { linear(output, xb.pointer, n: m, out, pool: pool) }
    }
}
