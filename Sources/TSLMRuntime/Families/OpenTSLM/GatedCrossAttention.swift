#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels

/// One of OpenTSLM-Flamingo's gated cross-attention blocks (open_flamingo
/// `GatedCrossAttentionBlock`), run before a decoder layer:
///
///     x += tanh(attn_gate) · to_out(MaskedAttention(to_q(LN(x)), to_kv(latents)))
///     x += tanh(ff_gate)   · Linear(GELU(Linear(LN(x))))          (no biases)
///
/// Masking ("only attend immediate media", one media item per prompt): a token whose text time
/// (the number of `<image>` tokens up to and including it) is 0 gets a zero attention output;
/// text time 1 attends to all latents; text time ≥ 2 matches no media, and since upstream fills
/// the mask with −max-float (not −∞) the softmax is uniform: the output is the mean of the values.
final class GatedCrossAttentionBlock {
    /// tanh of the gates.
    let attentionGate: Float
    let ffnGate: Float
    let norm: LayerNormWeights   // [hidden]
    let q: WeightMatrix          // [inner, hidden]
    let kv: WeightMatrix         // [2·inner, dim]: k rows, then v rows
    let output: WeightMatrix     // [hidden, inner]
    let ffnNorm: LayerNormWeights
    let up: WeightMatrix         // [ffn, hidden]
    let down: WeightMatrix       // [hidden, ffn]
    let heads: Int
    let headDim: Int
    let eps: Float

    init(weights w: ModelWeights, layer: Int, config c: OpenTSLMConfig, hidden: Int) throws {
        let p = "blk.\(layer)."
        heads = c.crossAttentionHeads
        headDim = c.crossAttentionHeadDim
        eps = c.layerNormEpsilon
        let inner = heads * headDim
        let g = try w.vector(p + "xattn_gate", count: 1).pointee
        let fg = try w.vector(p + "xattn_ffn_gate", count: 1).pointee
        guard g.isFinite, fg.isFinite else {
            throw RuntimeError.badHyperparameter(key: p + "xattn_gate", reason: "the gates must be finite (\(g), \(fg))")
        }
        attentionGate = tanhf(g)
        ffnGate = tanhf(fg)
        norm = try LayerNormWeights(w, p + "xattn_norm", count: hidden)
        q = try w.matrix(p + "xattn_q.weight", rows: inner, cols: hidden)
        kv = try w.matrix(p + "xattn_kv.weight", rows: 2 * inner, cols: c.encoderDim)
        output = try w.matrix(p + "xattn_output.weight", rows: hidden, cols: inner)
        ffnNorm = try LayerNormWeights(w, p + "xattn_ffn_norm", count: hidden)
        up = try w.matrix(p + "xattn_ffn_up.weight", rows: c.crossAttentionFeedForward, cols: hidden)
        down = try w.matrix(p + "xattn_ffn_down.weight", rows: hidden, cols: c.crossAttentionFeedForward)
    }

    /// Keys and values of one media item's latents for this block.
    struct Media {
        /// [latents, 2·inner]: keys, then values, per latent.
        let kv: [Float]
        /// [inner]: the mean of the values over the latents (the uniform-softmax output).
        let valueMean: [Float]
        let count: Int
    }

    func media(latents: [Float], count: Int, pool: ThreadPool?) -> Media {
        let inner = heads * headDim
        var kvRows = [Float](repeating: 0, count: count * 2 * inner)
        latents.withUnsafeBufferPointer { l in
            kvRows.withUnsafeMutableBufferPointer { o in linear(kv, l.baseAddress!, n: count, o.baseAddress!, pool: pool) }
        }
        var mean = [Float](repeating: 0, count: inner)
        for j in 0..<count { for t in 0..<inner { mean[t] += kvRows[j * 2 * inner + inner + t] } }
        for t in 0..<inner { mean[t] /= Float(count) }
        return Media(kv: kvRows, valueMean: mean, count: count)
    }

    /// Applies the block to x [n, hidden] whose tokens have the given text times.
    func apply(_ x: UnsafeMutablePointer<Float>, count n: Int, hidden: Int, textTimes: ArraySlice<Int>, media: Media?, pool: ThreadPool?) {
        let inner = heads * headDim
        let y = FloatBuffer(n * hidden)
        if attentionGate != 0, let media, textTimes.contains(where: { $0 > 0 }) {
            norm.apply(x, rows: n, eps: eps, out: y.pointer)
            let qb = FloatBuffer(n * inner), att = FloatBuffer(n * inner)
            linear(q, y.pointer, n: n, qb.pointer, pool: pool)
            let times = Array(textTimes)
            let scale = 1 / Float(headDim).squareRoot()
            let (heads, hd, m) = (self.heads, self.headDim, media.count)
            media.kv.withUnsafeBufferPointer { kvp in
                media.valueMean.withUnsafeBufferPointer { mean in
                    let kv = kvp.baseAddress!
                    let body: (Range<Int>) -> Void = { range in
                        let scores = UnsafeMutablePointer<Float>.allocate(capacity: m)
                        defer { scores.deallocate() }
                        for item in range {
                            let (i, h) = (item / heads, item % heads)
                            let o = att.pointer + i * inner + h * hd
                            switch times[i] {
                            case 0:
                                o.initialize(repeating: 0, count: hd)
                            case 1:
                                let qh = qb.pointer + i * inner + h * hd
                                for j in 0..<m { scores[j] = Kernels.dot(qh, kv + j * 2 * inner + h * hd, count: hd) * scale }
                                Kernels.softmax(scores, count: m)
                                o.initialize(repeating: 0, count: hd)
                                for j in 0..<m { Kernels.axpy(o, kv + j * 2 * inner + inner + h * hd, scale: scores[j], count: hd) }
                            default:
                                o.update(from: mean.baseAddress! + h * hd, count: hd)
                            }
                        }
                    }
                    if let pool, n * heads > 1 { pool.parallelFor(n * heads, grain: 4, body) } else { body(0..<(n * heads)) }
                }
            }
            linear(output, att.pointer, n: n, y.pointer, pool: pool)
            Kernels.axpy(x, y.pointer, scale: attentionGate, count: n * hidden)
        }
        if ffnGate != 0 {
            ffnNorm.apply(x, rows: n, eps: eps, out: y.pointer)
            let f = FloatBuffer(n * up.rows)
            linear(up, y.pointer, n: n, f.pointer, pool: pool)
            Kernels.geluErf(f.pointer, count: n * up.rows)
            linear(down, f.pointer, n: n, y.pointer, pool: pool)
            Kernels.axpy(x, y.pointer, scale: ffnGate, count: n * hidden)
        }
    }
}

/// The Flamingo state of one session: the current media item's keys and values in every block,
/// and the text times of the positions being run. It is the `DecoderLayerHook` passed to the
/// backbone's `forward`.
///
/// Text times follow open_flamingo: in a forward call whose tokens include `<image>`, a token's
/// text time is the count of `<image>` tokens in that call up to and including it, and the
/// call's count is remembered; a call without `<image>` (each generated token) gives every
/// token the remembered count ("use cached media").
public final class FlamingoConditioning: PromptState {
    let blocks: [GatedCrossAttentionBlock?]
    let mediaTokenID: Int32
    let hidden: Int
    /// Per decoder layer, the current media item's keys and values (nil: no media yet).
    private var media: [GatedCrossAttentionBlock.Media?]
    /// `<image>` tokens in the last forward call that had any.
    public private(set) var cachedMediaCount = 0
    /// Text times of the positions of the forward call under way.
    var textTimes: ArraySlice<Int> = []
    /// Text times of every position of the call under way (`beginCall`).
    private var callTimes: [Int] = []

    init(blocks: [GatedCrossAttentionBlock?], mediaTokenID: Int32, hidden: Int) {
        self.blocks = blocks
        self.mediaTokenID = mediaTokenID
        self.hidden = hidden
        media = Array(repeating: nil, count: blocks.count)
    }

    /// Makes `latents` [count, dim] the media item later tokens attend to.
    func setMedia(latents: [Float], count: Int, pool: ThreadPool?) {
        media = blocks.map { $0?.media(latents: latents, count: count, pool: pool) }
    }

    /// Forgets the media item and the remembered `<image>` count.
    public func reset() {
        media = Array(repeating: nil, count: blocks.count)
        cachedMediaCount = 0
        textTimes = []
        callTimes = []
    }

    public func beginCall(_ tokens: [Int32]) { callTimes = textTimes(forCall: tokens) }

    public func beginBatch(_ range: Range<Int>) { textTimes = callTimes[range] }

    /// The text times of one forward call's tokens (see the type's documentation); updates the
    /// remembered count when the call has `<image>` tokens.
    func textTimes(forCall tokens: [Int32]) -> [Int] {
        guard tokens.contains(mediaTokenID) else { return Array(repeating: cachedMediaCount, count: tokens.count) }
        var count = 0
        let times = tokens.map { t -> Int in
            if t == mediaTokenID { count += 1 }
            return count
        }
        cachedMediaCount = count
        return times
    }

    public func beforeLayer(_ layer: Int, x: UnsafeMutablePointer<Float>, count n: Int, start: Int, pool: ThreadPool?) throws {
        guard layer < blocks.count, let block = blocks[layer] else { return }
        guard textTimes.count == n else {
            throw RuntimeError.invalidArgument(name: "Flamingo text times", reason: "\(textTimes.count) for \(n) positions")
        }
        block.apply(x, count: n, hidden: hidden, textTimes: textTimes, media: media[layer], pool: pool)
    }
}
