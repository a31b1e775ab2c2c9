#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels

/// A LayerNorm's parameters: weight and bias, each [count].
struct LayerNormWeights {
    let weight: UnsafePointer<Float>
    let bias: UnsafePointer<Float>
    let count: Int

    init(_ w: ModelWeights, _ prefix: String, count: Int) throws {
        weight = try w.vector(prefix + ".weight", count: count)
        bias = try w.vector(prefix + ".bias", count: count)
        self.count = count
    }

    /// out[i] = LayerNorm(x[i]) for n rows of `count`; out may alias x.
    func apply(_ x: UnsafePointer<Float>, rows n: Int, eps: Float, out: UnsafeMutablePointer<Float>) {
        for i in 0..<n { Kernels.layerNorm(x + i * count, weight: weight, bias: bias, count: count, eps: eps, out: out + i * count) }
    }
}

/// OpenTSLM's per-series encoder: a patch embedding (PyTorch Conv1d(1 → dim, kernel = stride =
/// patch, no bias), which on a zero-padded series is a [patches, patch] · [dim, patch]ᵀ product),
/// plus a learned position embedding, LayerNorm, then `encoderLayers` post-norm Transformer
/// encoder layers (PyTorch `TransformerEncoderLayer`: exact GELU, biases, no mask, so padded
/// patches take part as upstream). SoftPrompt has 6 layers (`TransformerCNNEncoder`); Flamingo's
/// `CNNTokenizer` has none.
final class PatchEncoder {
    let config: OpenTSLMConfig
    /// [dim, patch]
    let patchEmbedding: WeightMatrix
    /// [maxPatches, dim]
    let positions: WeightMatrix
    let inputNorm: LayerNormWeights
    let layers: [Layer]

    struct Layer {
        let qkv: WeightMatrix           // [3·dim, dim], q rows then k then v
        let qkvBias: UnsafePointer<Float>  // [3·dim]
        let output: WeightMatrix        // [dim, dim]
        let outputBias: UnsafePointer<Float>
        let attnNorm: LayerNormWeights  // norm1, after the attention residual
        let up: WeightMatrix            // [ffn, dim]
        let upBias: UnsafePointer<Float>
        let down: WeightMatrix          // [dim, ffn]
        let downBias: UnsafePointer<Float>
        let ffnNorm: LayerNormWeights   // norm2, after the feed-forward residual
    }

    init(weights w: ModelWeights, config c: OpenTSLMConfig) throws {
        config = c
        let d = c.encoderDim
        patchEmbedding = try w.matrix(TensorNames.OpenTSLM.patchEmbedding, rows: d, cols: c.patchSize)
        positions = try w.matrix(TensorNames.OpenTSLM.positionEmbedding, rows: c.maxPatches, cols: d)
        inputNorm = try LayerNormWeights(w, TensorNames.OpenTSLM.inputNorm, count: d)
        layers = try (0..<c.encoderLayers).map { i in
            let p = TensorNames.OpenTSLM.encoderBlock(i)
            return Layer(qkv: try w.matrix(p + "attn_qkv.weight", rows: 3 * d, cols: d),
                         qkvBias: try w.vector(p + "attn_qkv.bias", count: 3 * d),
                         output: try w.matrix(p + "attn_output.weight", rows: d, cols: d),
                         outputBias: try w.vector(p + "attn_output.bias", count: d),
                         attnNorm: try LayerNormWeights(w, p + "attn_norm", count: d),
                         up: try w.matrix(p + "ffn_up.weight", rows: c.encoderFeedForward, cols: d),
                         upBias: try w.vector(p + "ffn_up.bias", count: c.encoderFeedForward),
                         down: try w.matrix(p + "ffn_down.weight", rows: d, cols: c.encoderFeedForward),
                         downBias: try w.vector(p + "ffn_down.bias", count: d),
                         ffnNorm: try LayerNormWeights(w, p + "ffn_norm", count: d))
        }
        if w.has(TensorNames.OpenTSLM.encoderBlock(c.encoderLayers) + "attn_qkv.weight") {
            throw RuntimeError.badHyperparameter(key: MetadataKeys.OpenTSLM.encoderBlocks,
                                                 reason: "\(c.encoderLayers), but the file has a tensor ts.enc.blk.\(c.encoderLayers).attn_qkv.weight")
        }
    }

    /// Encodes one series already zero-padded to `patches · patchSize` samples.
    /// - Parameters:
    ///   - series: [patches · patchSize] samples.
    ///   - out: [patches, dim] encoder output.
    func encode(_ series: UnsafePointer<Float>, patches n: Int, into out: UnsafeMutablePointer<Float>, pool: ThreadPool?) throws {
        guard n > 0 else { throw RuntimeError.invalidArgument(name: "series", reason: "no samples to encode") }
        guard n <= config.maxPatches else {
            throw RuntimeError.invalidArgument(name: "series length", reason: "\(n * config.patchSize) samples (\(n) patches) is more than the encoder's \(config.maxPatches) positions (\(config.maxLength) samples)")
        }
        let d = config.encoderDim
        // The padded series is already [patches, patch] row-major.
        linear(patchEmbedding, series, n: n, out, pool: pool)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d) { row in
            for i in 0..<n {
                Kernels.dequantizeRow(positions, row: i, into: row.baseAddress!)
                Kernels.add(out + i * d, row.baseAddress!, count: d)
            }
        }
        inputNorm.apply(out, rows: n, eps: config.layerNormEpsilon, out: out)
        guard !layers.isEmpty else { return }

        let ffn = config.encoderFeedForward
        let qkv = FloatBuffer(n * 3 * d), att = FloatBuffer(n * d), tmp = FloatBuffer(n * d), hidden = FloatBuffer(n * ffn)
        for layer in layers {
            // Self-attention over all patches (no mask), then x = norm1(x + attn).
            linear(layer.qkv, out, n: n, qkv.pointer, bias: layer.qkvBias, pool: pool)
            bidirectionalAttention(qkv: qkv.pointer, out: att.pointer, n: n, heads: config.encoderHeads, dim: d, pool: pool)
            linear(layer.output, att.pointer, n: n, tmp.pointer, bias: layer.outputBias, pool: pool)
            Kernels.add(out, tmp.pointer, count: n * d)
            layer.attnNorm.apply(out, rows: n, eps: config.layerNormEpsilon, out: out)
            // Feed-forward, then x = norm2(x + ffn).
            linear(layer.up, out, n: n, hidden.pointer, bias: layer.upBias, pool: pool)
            elementwise(n * ffn, pool: pool) { at, count in Kernels.geluErf(hidden.pointer + at, count: count) }
            linear(layer.down, hidden.pointer, n: n, tmp.pointer, bias: layer.downBias, pool: pool)
            Kernels.add(out, tmp.pointer, count: n * d)
            layer.ffnNorm.apply(out, rows: n, eps: config.layerNormEpsilon, out: out)
        }
    }
}

/// Unmasked multi-head attention of n positions over themselves.
/// qkv: [n, 3·dim] (q, k, v blocks of `dim`, heads of dim/heads each) → out: [n, dim].
/// As matrix products per head and block of queries (`AttentionBlock`), or one query at a time
/// for fewer than `Kernels.gemmMinTokens` positions.
func bidirectionalAttention(qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, n: Int, heads: Int, dim: Int, pool: ThreadPool?) {
    let hd = dim / heads
    let scale = 1 / Float(hd).squareRoot()
    let stride = 3 * dim
    if n >= Kernels.gemmMinTokens && Kernels.prefillGemm {
        let values = TransposedHeads(dtype: .f32, base: qkv + 2 * dim, positionStride: stride * 4, headStride: hd * 4,
                                      heads: heads, headDim: hd, positions: 0..<n, pool: pool)
        defer { values.deallocate() }
        let blocks = (n + attentionBlock - 1) / attentionBlock
        let body: (Range<Int>) -> Void = { range in
            let a = AttentionBlock(maxKeys: n, headDim: hd)
            defer { a.deallocate() }
            for item in range {
                let (h, b) = (item / blocks, item % blocks)
                let q0 = b * attentionBlock, count = min(n, q0 + attentionBlock) - q0
                a.loadQueries(count: count) { t in qkv + (q0 + t) * stride + h * hd }
                let keys = WeightMatrix(dtype: .f32, rows: n, cols: hd, data: qkv + dim + h * hd)
                a.attend(count: count, keys: keys, keyStride: stride * 4, values: values.view(head: h, from: 0, length: n),
                         valueStride: values.rowStride, scale: scale) { _ in (0, n - 1) }
                for t in 0..<count { (out + (q0 + t) * dim + h * hd).update(from: a.ob + t * hd, count: hd) }
            }
        }
        let items = heads * blocks
        if let pool, items > 1 { pool.parallelFor(items, grain: 1, body) } else { body(0..<items) }
        return
    }
    let body: (Range<Int>) -> Void = { range in
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { scores.deallocate() }
        for item in range {
            let (i, h) = (item / heads, item % heads)
            let q = qkv + i * stride + h * hd
            for j in 0..<n { scores[j] = Kernels.dot(q, qkv + j * stride + dim + h * hd, count: hd) * scale }
            Kernels.softmax(scores, count: n)
            let o = out + i * dim + h * hd
            o.initialize(repeating: 0, count: hd)
            for j in 0..<n { Kernels.axpy(o, qkv + j * stride + 2 * dim + h * hd, scale: scores[j], count: hd) }
        }
    }
    if let pool, n * heads > 1 { pool.parallelFor(n * heads, grain: 4, body) } else { body(0..<(n * heads)) }
}
