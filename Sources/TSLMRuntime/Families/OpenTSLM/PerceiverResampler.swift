#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels

/// OpenTSLM-Flamingo's Perceiver Resampler (open_flamingo `PerceiverResampler`, no frame or
/// media-time embeddings): `latentCount` learned latents attend, layer by layer, to every patch
/// of every series of the prompt (one media item) plus themselves, and come out LayerNormed.
///
/// Block: q from LayerNorm(latents); k, v from [LayerNorm(media) ; LayerNorm(latents)];
/// softmax(q·kᵀ/√headDim)·v → out projection → residual; then LayerNorm → Linear → GELU →
/// Linear (no biases) → residual.
///
/// Memory stays flat in the series' length: the media keys and values are never held for all
/// patches at once. Each layer re-encodes one series at a time (the CNN tokenizer is a few
/// multiply-adds per patch) and folds its keys into a running (online) softmax per latent and
/// head.
final class PerceiverResampler {
    let config: OpenTSLMConfig
    /// [latents, dim]
    let latents: WeightMatrix
    let blocks: [Block]
    let outputNorm: LayerNormWeights

    struct Block {
        let normMedia: LayerNormWeights
        let normLatents: LayerNormWeights
        let q: WeightMatrix       // [inner, dim]
        let kv: WeightMatrix      // [2·inner, dim]: k rows, then v rows
        let output: WeightMatrix  // [dim, inner]
        let ffnNorm: LayerNormWeights
        let up: WeightMatrix      // [ffn, dim]
        let down: WeightMatrix    // [dim, ffn]
    }

    init(weights w: ModelWeights, config c: OpenTSLMConfig) throws {
        config = c
        let d = c.encoderDim, inner = c.perceiverHeads * c.perceiverHeadDim
        latents = try w.matrix(TensorNames.OpenTSLM.perceiverLatents, rows: c.latentCount, cols: d)
        blocks = try (0..<c.perceiverLayers).map { i in
            let p = TensorNames.OpenTSLM.perceiverBlock(i)
            return Block(normMedia: try LayerNormWeights(w, p + "norm_media", count: d),
                         normLatents: try LayerNormWeights(w, p + "norm_latents", count: d),
                         q: try w.matrix(p + "attn_q.weight", rows: inner, cols: d),
                         kv: try w.matrix(p + "attn_kv.weight", rows: 2 * inner, cols: d),
                         output: try w.matrix(p + "attn_output.weight", rows: d, cols: inner),
                         ffnNorm: try LayerNormWeights(w, p + "ffn_norm", count: d),
                         up: try w.matrix(p + "ffn_up.weight", rows: c.perceiverFeedForward, cols: d),
                         down: try w.matrix(p + "ffn_down.weight", rows: d, cols: c.perceiverFeedForward))
        }
        if w.has(TensorNames.OpenTSLM.perceiverBlock(c.perceiverLayers) + "attn_q.weight") {
            throw RuntimeError.badHyperparameter(key: MetadataKeys.OpenTSLM.perceiverBlocks,
                                                 reason: "\(c.perceiverLayers), but the file has a tensor ts.perceiver.blk.\(c.perceiverLayers).attn_q.weight")
        }
        outputNorm = try LayerNormWeights(w, TensorNames.OpenTSLM.perceiverOutputNorm, count: d)
    }

    /// The latents for one media item.
    /// - Parameters:
    ///   - series: `count` series, each zero-padded to `patches · patchSize` samples, back to back.
    /// - Returns: [latentCount, dim].
    func resample(series: UnsafePointer<Float>, count: Int, patches: Int, encoder: PatchEncoder, pool: ThreadPool?) throws -> [Float] {
        let c = config
        let (d, nl, heads, hd) = (c.encoderDim, c.latentCount, c.perceiverHeads, c.perceiverHeadDim)
        let inner = heads * hd
        let x = FloatBuffer(nl * d)
        for i in 0..<nl { Kernels.dequantizeRow(latents, row: i, into: x.pointer + i * d) }
        let normed = FloatBuffer(nl * d), q = FloatBuffer(nl * inner), att = FloatBuffer(nl * inner)
        let tmp = FloatBuffer(nl * d), ffn = FloatBuffer(nl * c.perceiverFeedForward)
        let rows = max(patches, nl)
        let media = FloatBuffer(rows * d), kv = FloatBuffer(rows * 2 * inner)
        let softmax = OnlineSoftmax(queries: nl, heads: heads, headDim: hd)
        let samples = patches * c.patchSize
        for b in blocks {
            b.normLatents.apply(x.pointer, rows: nl, eps: c.layerNormEpsilon, out: normed.pointer)
            linear(b.q, normed.pointer, n: nl, q.pointer, pool: pool)
            scaleInPlace(q.pointer, by: 1 / Float(hd).squareRoot(), count: nl * inner)
            softmax.reset()
            for s in 0..<count {
                try encoder.encode(series + s * samples, patches: patches, into: media.pointer, pool: pool)
                b.normMedia.apply(media.pointer, rows: patches, eps: c.layerNormEpsilon, out: media.pointer)
                linear(b.kv, media.pointer, n: patches, kv.pointer, pool: pool)
                softmax.add(q: q.pointer, kv: kv.pointer, keys: patches, pool: pool)
            }
            linear(b.kv, normed.pointer, n: nl, kv.pointer, pool: pool)
            softmax.add(q: q.pointer, kv: kv.pointer, keys: nl, pool: pool)
            softmax.result(into: att.pointer)
            linear(b.output, att.pointer, n: nl, tmp.pointer, pool: pool)
            Kernels.add(x.pointer, tmp.pointer, count: nl * d)
            b.ffnNorm.apply(x.pointer, rows: nl, eps: c.layerNormEpsilon, out: normed.pointer)
            linear(b.up, normed.pointer, n: nl, ffn.pointer, pool: pool)
            Kernels.geluErf(ffn.pointer, count: nl * c.perceiverFeedForward)
            linear(b.down, ffn.pointer, n: nl, tmp.pointer, pool: pool)
            Kernels.add(x.pointer, tmp.pointer, count: nl * d)
        }
        outputNorm.apply(x.pointer, rows: nl, eps: c.layerNormEpsilon, out: x.pointer)
        return Array(UnsafeBufferPointer(start: x.pointer, count: nl * d))
    }
}

/// Softmax attention of `queries × heads` query vectors over keys that arrive in chunks: per
/// query and head a running maximum, a running sum of exponentials and a running weighted sum
/// of values (rescaled when the maximum grows), so the result equals one softmax over all keys.
final class OnlineSoftmax {
    let queries: Int
    let heads: Int
    let headDim: Int
    /// [queries·heads] running maximum score.
    private let maxScore: FloatBuffer
    /// [queries·heads] running Σ exp(score − max).
    private let sum: FloatBuffer
    /// [queries, heads·headDim] running Σ exp(score − max)·v.
    private let acc: FloatBuffer

    init(queries: Int, heads: Int, headDim: Int) {
        self.queries = queries
        self.heads = heads
        self.headDim = headDim
        maxScore = FloatBuffer(queries * heads)
        sum = FloatBuffer(queries * heads)
        acc = FloatBuffer(queries * heads * headDim)
        reset()
    }

    func reset() {
        maxScore.pointer.update(repeating: -.infinity, count: queries * heads)
        sum.pointer.update(repeating: 0, count: queries * heads)
        acc.pointer.update(repeating: 0, count: queries * heads * headDim)
    }

    /// Folds in `keys` rows of kv [keys, 2·heads·headDim] (keys, then values) for the (already
    /// scaled) queries q [queries, heads·headDim].
    func add(q: UnsafePointer<Float>, kv: UnsafePointer<Float>, keys: Int, pool: ThreadPool?) {
        guard keys > 0 else { return }
        let (heads, hd) = (self.heads, self.headDim)
        let inner = heads * hd
        let (m, s, a) = (maxScore.pointer, sum.pointer, acc.pointer)
        let body: (Range<Int>) -> Void = { range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: keys)
            defer { scores.deallocate() }
            for item in range {
                let (i, h) = (item / heads, item % heads)
                let qh = q + i * inner + h * hd
                var chunkMax = -Float.infinity
                for j in 0..<keys {
                    let v = Kernels.dot(qh, kv + j * 2 * inner + h * hd, count: hd)
                    scores[j] = v
                    chunkMax = max(chunkMax, v)
                }
                let newMax = max(m[item], chunkMax)
                let o = a + i * inner + h * hd
                if m[item] != newMax {
                    let factor = m[item] == -.infinity ? 0 : expf(m[item] - newMax)
                    s[item] *= factor
                    scaleInPlace(o, by: factor, count: hd)
                    m[item] = newMax
                }
                var total: Float = 0
                for j in 0..<keys {
                    let p = expf(scores[j] - newMax)
                    total += p
                    Kernels.axpy(o, kv + j * 2 * inner + inner + h * hd, scale: p, count: hd)
                }
                s[item] += total
            }
        }
        let work = queries * heads
        if let pool, work > 1 { pool.parallelFor(work, grain: 4, body) } else { body(0..<work) }
    }

    /// out [queries, heads·headDim] = the softmax-weighted values.
    func result(into out: UnsafeMutablePointer<Float>) {
        let hd = headDim
        for item in 0..<(queries * heads) {
            let o = out + item * hd
            let inv: Float = sum.pointer[item] > 0 ? 1 / sum.pointer[item] : 0
            for t in 0..<hd { o[t] = acc.pointer[item * hd + t] * inv }
        }
    }
}

/// x[i] *= s.
@inline(__always)
func scaleInPlace(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
    for i in 0..<count { x[i] *= s }
}
