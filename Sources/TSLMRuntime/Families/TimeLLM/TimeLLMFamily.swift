#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// Time-LLM (ICLR 2024; `general.family` = `timellm`): a frozen, truncated text backbone (Llama
/// family or GPT-2) reprogrammed to forecast (formats/tslm.md, "Time-LLM"; the PyTorch
/// reference is tools/timellm_model.py). Per channel (channel independence):
///
/// 1. RevIN without affine (`TimeLLMPrompt.normalize`), 2. the statistics prompt
///    (`TimeLLMPrompt.text`) tokenized with BOS as the model's tokenizer adds it, 3. patches of
///    the normalized series with `stride` copies of the last value appended, 4. a circular
///    Conv1d (kernel 3, no bias) over the patch axis, 5. reprogramming cross-attention of the
///    patches over the text prototypes (precomputed at conversion), 6. prompt embeddings then
///    reprogrammed patches through the backbone, hidden states after the final norm, 7. the
///    flatten head over the first `d_ff` channels of the last P positions in (channel, patch)
///    order, 8. de-normalization.
///
/// The channels of one request are normalized together, as upstream's RevIN does for a
/// multivariate batch (PyTorch then sums in another order than for one channel). The lag order
/// inside mirrored pairs of the prompt follows PyTorch's FFT rounding, which no portable FFT
/// reproduces: see `TimeLLMPrompt`.
public final class TimeLLMFamily: Forecaster, @unchecked Sendable {
    public let name = ModelFamilyName.timeLLM.rawValue
    public let kind = ModelKind.forecaster
    public let backbone: any TextModel
    public let tokenizer: Tokenizer
    public var language: LanguageModel? { LanguageModel(backbone: backbone, tokenizer: tokenizer) }
    public let config: TimeLLMConfig
    /// [d_model, patch_len, 3]
    let conv: [Float]
    /// Reprogramming: query [H·E, d_model] (+ bias); keys and values of the prototypes
    /// [prototypes, H·E], computed at load; output [d_llm, H·E] (+ bias).
    let query: WeightMatrix, queryBias: UnsafePointer<Float>
    let keys: [Float], values: [Float]
    let output: WeightMatrix, outputBias: UnsafePointer<Float>
    /// [pred_len, d_ff · P] (+ bias)
    let head: WeightMatrix, headBias: UnsafePointer<Float>
    let weights: ModelWeights

    public init(file: TSLMFile) throws {
        let language = try LanguageModel(file: file)
        backbone = language.backbone
        tokenizer = language.tokenizer
        let b = backbone.config
        guard b.architecture == "llama" || b.architecture == "gpt2" else {
            throw RuntimeError.badHyperparameter(key: MetadataKeys.architecture, reason: "'\(b.architecture)': a Time-LLM backbone is llama or gpt2")
        }
        let c = try TimeLLMConfig(metadata: file.metadata, hidden: b.hidden)
        config = c
        let w = ModelWeights(file: file)
        weights = w
        typealias T = TensorNames.TimeLLM
        conv = try w.floats(T.patchEmbedding, shape: [c.modelWidth, c.patchLength, 3])
        let inner = c.heads * c.keyWidth
        let prototypes = try w.matrix(T.prototypes, rows: c.prototypes, cols: b.hidden)
        query = try w.matrix(T.query + ".weight", rows: inner, cols: c.modelWidth)
        queryBias = try w.vector(T.query + ".bias", count: inner)
        let keyWeight = try w.matrix(T.key + ".weight", rows: inner, cols: b.hidden)
        let keyBias = try w.vector(T.key + ".bias", count: inner)
        let valueWeight = try w.matrix(T.value + ".weight", rows: inner, cols: b.hidden)
        let valueBias = try w.vector(T.value + ".bias", count: inner)
        output = try w.matrix(T.output + ".weight", rows: b.hidden, cols: inner)
        outputBias = try w.vector(T.output + ".bias", count: b.hidden)
        head = try w.matrix(T.headWeight, rows: c.predictionLength, cols: c.feedForward * c.patchCount)
        headBias = try w.vector(T.headBias, count: c.predictionLength)
        // The prototypes' keys and values do not depend on the input: computed once.
        var protoRows = [Float](repeating: 0, count: c.prototypes * b.hidden)
        protoRows.withUnsafeMutableBufferPointer { p in
            for s in 0..<c.prototypes { Kernels.dequantizeRow(prototypes, row: s, into: p.baseAddress! + s * b.hidden) }
        }
        func project(_ m: WeightMatrix, _ bias: UnsafePointer<Float>) -> [Float] {
            var out = [Float](repeating: 0, count: c.prototypes * inner)
            protoRows.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { y in
                Kernels.matmul(m, x.baseAddress!, n: c.prototypes, y.baseAddress!, pool: nil)
            } }
            for s in 0..<c.prototypes { for i in 0..<inner { out[s * inner + i] += bias[i] } }
            return out
        }
        keys = project(keyWeight, keyBias)
        values = project(valueWeight, valueBias)
    }

    public var forecastShape: ForecastShape {
        ForecastShape(inputs: nil, outputs: nil, window: config.sequenceLength, horizon: config.predictionLength)
    }

    /// What one channel's forecast computes, for the parity tests.
    public struct Trace: Sendable {
        public var mean: Float, std: Float
        public var prompt: String
        public var promptTokens: [Int32]
        /// [P, d_model]
        public var patchEmbedding: [Float]
        /// [P, d_llm]
        public var reprogrammed: [Float]
        /// [T + P, d_llm]
        public var hidden: [Float]
        /// [pred_len]
        public var forecast: [Float]
    }

    public func forecast(_ request: ForecastRequest, pool: ThreadPool?) throws -> Forecast {
        let c = config
        let length = request.history[0].count
        guard length >= c.sequenceLength else {
            throw RuntimeError.invalidArgument(name: "history", reason: "\(length) steps given, the model reads the last \(c.sequenceLength) (no padding)")
        }
        guard request.horizon <= c.predictionLength else {
            throw RuntimeError.invalidArgument(name: "horizon", reason: "\(request.horizon) is more than the model's \(c.predictionLength) steps")
        }
        guard request.quantileLevels.isEmpty else {
            throw RuntimeError.invalidArgument(name: "quantile levels", reason: "the timellm family gives point forecasts only")
        }
        // Upstream normalizes all channels of a batch in one RevIN call (PyTorch then sums them in
        // another order than a single channel: `normalize(channels:)` reproduces both).
        let windows = request.history.map { Array($0.suffix(c.sequenceLength)) }
        let norms = try TimeLLMPrompt.normalize(channels: windows)
        let point = try windows.indices.map { ch in
            Array(try trace(windows[ch], normalized: norms[ch], pool: pool).forecast.prefix(request.horizon))
        }
        return Forecast(point: point)
    }

    /// One channel of exactly `sequenceLength` steps; `normalized` is its RevIN (default: the
    /// channel alone); `promptTokens` replaces the tokenized prompt (the parity fixtures give
    /// the reference tokenizer's ids).
    public func trace(_ x: [Float], normalized given: (values: [Float], mean: Float, std: Float)? = nil,
                      promptTokens: [Int32]? = nil, pool: ThreadPool? = nil) throws -> Trace {
        let c = config
        let h = backbone.config.hidden
        guard x.count == c.sequenceLength else {
            throw RuntimeError.invalidArgument(name: "history", reason: "\(x.count) steps, the model reads \(c.sequenceLength)")
        }
        let (normalized, mean, std) = given ?? TimeLLMPrompt.normalize(x)
        let text = TimeLLMPrompt.text(description: c.description, predictionLength: c.predictionLength,
                                      sequenceLength: c.sequenceLength, statistics: try TimeLLMPrompt.statistics(normalized))
        let promptTokens = promptTokens ?? tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        // Patches: `stride` copies of the last value appended, windows of patch_len every stride.
        let padded = normalized + Array(repeating: normalized[normalized.count - 1], count: c.stride)
        let p = c.patchCount
        // Circular Conv1d over the patch axis: out[q, o] = Σ_{i, k} W[o, i, k] · patch[(q + k − 1) mod P][i].
        var embedded = [Float](repeating: 0, count: p * c.modelWidth)
        for q in 0..<p {
            for o in 0..<c.modelWidth {
                var acc: Float = 0
                for k in 0..<3 {
                    let src = ((q + k - 1) % p + p) % p
                    for i in 0..<c.patchLength { acc += conv[(o * c.patchLength + i) * 3 + k] * padded[src * c.stride + i] }
                }
                embedded[q * c.modelWidth + o] = acc
            }
        }
        let reprogrammed = reprogram(embedded, pool: pool)
        // Prompt embeddings, then the reprogrammed patches as input embeddings.
        let rows = PromptRows(tokens: promptTokens + Array(repeating: -1, count: p), soft: reprogrammed)
        let cache = try backbone.makeCache(capacity: rows.tokens.count)
        let hidden = try rows.run(backbone: backbone, cache: cache, start: 0, output: .hiddenStates, batchSize: 64, state: nil, pool: pool)
        // Head: the first d_ff channels of the last P positions, flattened (channel, patch), patch fastest.
        let n = rows.tokens.count
        var flat = [Float](repeating: 0, count: c.feedForward * p)
        for ch in 0..<c.feedForward { for q in 0..<p { flat[ch * p + q] = hidden[(n - p + q) * h + ch] } }
        var y = [Float](repeating: 0, count: c.predictionLength)
        flat.withUnsafeBufferPointer { f in y.withUnsafeMutableBufferPointer { o in Kernels.matvec(head, f.baseAddress!, o.baseAddress!, pool: pool) } }
        let forecast = (0..<c.predictionLength).map { (y[$0] + headBias[$0]) * std + mean }
        return Trace(mean: mean, std: std, prompt: text, promptTokens: promptTokens, patchEmbedding: embedded,
                     reprogrammed: reprogrammed, hidden: hidden, forecast: forecast)
    }

    /// Cross-attention of the patch embeddings [P, d_model] over the prototypes: [P, d_llm].
    func reprogram(_ x: [Float], pool: ThreadPool?) -> [Float] {
        let c = config
        let (heads, e, s, p) = (c.heads, c.keyWidth, c.prototypes, c.patchCount)
        let inner = heads * e
        var q = [Float](repeating: 0, count: p * inner)
        x.withUnsafeBufferPointer { xb in q.withUnsafeMutableBufferPointer { qb in
            Kernels.matmul(query, xb.baseAddress!, n: p, qb.baseAddress!, pool: pool)
        } }
        for r in 0..<p { for i in 0..<inner { q[r * inner + i] += queryBias[i] } }
        let scale = 1 / Float(e).squareRoot()
        var attended = [Float](repeating: 0, count: p * inner)
        var scores = [Float](repeating: 0, count: s)
        for r in 0..<p {
            for hd in 0..<heads {
                var best = -Float.infinity
                for j in 0..<s {
                    var dot: Float = 0
                    for k in 0..<e { dot += q[r * inner + hd * e + k] * keys[j * inner + hd * e + k] }
                    scores[j] = dot * scale
                    best = max(best, scores[j])
                }
                var sum: Float = 0
                for j in 0..<s { scores[j] = expf(scores[j] - best); sum += scores[j] }
                for j in 0..<s {
                    let a = scores[j] / sum
                    for k in 0..<e { attended[r * inner + hd * e + k] += a * values[j * inner + hd * e + k] }
                }
            }
        }
        let d = backbone.config.hidden
        var out = [Float](repeating: 0, count: p * d)
        attended.withUnsafeBufferPointer { ab in out.withUnsafeMutableBufferPointer { ob in
            Kernels.matmul(output, ab.baseAddress!, n: p, ob.baseAddress!, pool: pool)
        } }
        for r in 0..<p { for i in 0..<d { out[r * d + i] += outputBias[i] } }
        return out
    }
}

/// Hyperparameters of Time-LLM, read from `timellm.*`; errors name the key.
public struct TimeLLMConfig: Sendable, Equatable {
    /// History steps read (seq_len) and steps forecast (pred_len).
    public var sequenceLength: Int, predictionLength: Int
    public var patchLength: Int, stride: Int
    /// d_model (patch embedding width), d_ff (hidden channels the head reads; also the
    /// reprogramming's key width per head, as upstream passes d_ff as d_keys).
    public var modelWidth: Int, feedForward: Int
    public var heads: Int
    public var prototypes: Int
    /// The dataset description of the prompt.
    public var description: String

    public var keyWidth: Int { feedForward }
    /// P = ⌊(L − patch_len) / stride⌋ + 2 (the windows of the series with `stride` values appended).
    public var patchCount: Int { (sequenceLength - patchLength) / stride + 2 }

    public init(metadata m: Metadata, hidden: Int) throws {
        typealias K = MetadataKeys.TimeLLM
        func int(_ key: String, max: Int = 1 << 20) throws -> Int {
            guard let v = m.int(key) else { throw RuntimeError.badHyperparameter(key: key, reason: "missing") }
            guard v >= 1, v <= max else { throw RuntimeError.badHyperparameter(key: key, reason: "\(v) is out of range 1...\(max)") }
            return v
        }
        sequenceLength = try int(K.sequenceLength)
        predictionLength = try int(K.predictionLength)
        patchLength = try int(K.patchLength, max: sequenceLength)
        stride = try int(K.stride, max: sequenceLength)
        modelWidth = try int(K.modelWidth, max: 1 << 16)
        feedForward = try int(K.feedForward, max: hidden)
        heads = try int(K.heads, max: 4096)
        prototypes = try int(K.prototypes, max: 1 << 20)
        guard let d = m.string(K.description) else { throw RuntimeError.badHyperparameter(key: K.description, reason: "missing") }
        description = d
    }
}
