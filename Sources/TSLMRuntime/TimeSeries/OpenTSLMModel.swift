import Foundation
import TSLMFormat
import TSLMKernels

/// The time-series parts of an OpenTSLM model (SoftPrompt or Flamingo) on top of its backbone,
/// loaded from a `.tslm` file whose `timeseries.model` names the variant (see formats/tslm.md,
/// "Time-series models").
///
/// - SoftPrompt: each series (zero-padded with the other series of its prompt to the longest,
///   rounded up to the patch size) → `PatchEncoder` (6 Transformer layers) → projector → one soft
///   token per patch, spliced into the prompt after the series' description.
/// - Flamingo: all series of a prompt → CNN tokenizer → one set of patches → Perceiver → 64
///   latents; gated cross-attention blocks in front of the decoder layers attend to them.
public final class OpenTSLMModel: @unchecked Sendable {
    public let config: OpenTSLMConfig
    /// The backbone's width.
    public let hidden: Int
    let encoder: PatchEncoder
    let projector: SoftPromptProjector?
    let perceiver: PerceiverResampler?
    /// Per decoder layer (Flamingo): the block that runs before it, if any.
    let crossAttention: [GatedCrossAttentionBlock?]
    /// Owns the decoded vectors the parts point into.
    let weights: ModelWeights

    /// Loads the parts `file`'s `timeseries.model` needs, checking every shape against the
    /// backbone and the `timeseries.*` hyperparameters.
    public init(file: TSLMFile, backbone: any TextModel) throws {
        let bc = backbone.config
        let c = try OpenTSLMConfig(metadata: file.metadata, hidden: bc.hidden, layers: bc.layers,
                                   vocabularySize: bc.vocabularySize)
        config = c
        hidden = bc.hidden
        let w = ModelWeights(file: file)
        weights = w
        encoder = try PatchEncoder(weights: w, config: c)
        switch c.variant {
        case .softPrompt:
            projector = try SoftPromptProjector(weights: w, config: c, hidden: bc.hidden)
            perceiver = nil
            crossAttention = []
        case .flamingo:
            projector = nil
            perceiver = try PerceiverResampler(weights: w, config: c)
            crossAttention = try (0..<bc.layers).map { l in
                (l + 1) % c.crossAttentionEvery == 0 ? try GatedCrossAttentionBlock(weights: w, layer: l, config: c, hidden: bc.hidden) : nil
            }
        }
    }

    /// The most series one prompt may hold.
    public static let maxSeriesPerPrompt = 256

    // MARK: - Building blocks (also what the parity tests compare)

    /// Zero-pads every series at the end to the longest length rounded up to the patch size, as
    /// upstream's collate does. Returns the padded series back to back and their common length.
    public func pad(_ series: [[Float]]) throws -> (values: [Float], length: Int) {
        guard !series.isEmpty else { throw RuntimeError.invalidArgument(name: "series", reason: "none given") }
        guard let longest = series.map(\.count).max(), longest > 0, series.allSatisfy({ !$0.isEmpty }) else {
            throw RuntimeError.invalidArgument(name: "series", reason: "a series is empty")
        }
        let length = config.patchCount(length: longest) * config.patchSize
        guard length <= config.maxLength else {
            throw RuntimeError.invalidArgument(name: "series length", reason: "\(longest) samples is more than the encoder's \(config.maxPatches) positions of \(config.patchSize) samples (\(config.maxLength))")
        }
        var out = [Float](repeating: 0, count: series.count * length)
        for (i, s) in series.enumerated() { out.replaceSubrange((i * length)..<(i * length + s.count), with: s) }
        return (out, length)
    }

    /// The encoder output [patches, dim] of one series whose length is a multiple of the patch size.
    public func encode(_ series: [Float], pool: ThreadPool? = nil) throws -> [Float] {
        guard !series.isEmpty, series.count % config.patchSize == 0 else {
            throw RuntimeError.invalidArgument(name: "series", reason: "\(series.count) samples is not a positive multiple of the patch size \(config.patchSize)")
        }
        let n = series.count / config.patchSize
        var out = [Float](repeating: 0, count: n * config.encoderDim)
        try series.withUnsafeBufferPointer { s in
            try out.withUnsafeMutableBufferPointer { o in try encoder.encode(s.baseAddress!, patches: n, into: o.baseAddress!, pool: pool) }
        }
        return out
    }

    /// SoftPrompt: the soft tokens [patches, hidden] of one series whose length is a multiple of
    /// the patch size.
    public func softTokens(_ series: [Float], pool: ThreadPool? = nil) throws -> [Float] {
        guard let projector else { throw RuntimeError.wrongKind(operation: "soft tokens", kind: config.variant.rawValue) }
        let encoded = try encode(series, pool: pool)
        let n = encoded.count / config.encoderDim
        var out = [Float](repeating: 0, count: n * hidden)
        encoded.withUnsafeBufferPointer { e in
            out.withUnsafeMutableBufferPointer { o in projector.project(e.baseAddress!, count: n, into: o.baseAddress!, pool: pool) }
        }
        return out
    }

    /// Flamingo: the perceiver latents [latentCount, dim] of one media item made of `series`
    /// (padded together first, as upstream).
    public func latents(_ series: [[Float]], pool: ThreadPool? = nil) throws -> [Float] {
        guard let perceiver else { throw RuntimeError.wrongKind(operation: "perceiver latents", kind: config.variant.rawValue) }
        let (values, length) = try pad(series)
        return try values.withUnsafeBufferPointer { v in
            try perceiver.resample(series: v.baseAddress!, count: series.count, patches: length / config.patchSize,
                                   encoder: encoder, pool: pool)
        }
    }

    /// Flamingo: a fresh per-session conditioning (the layer hook); nil for SoftPrompt.
    public func makeConditioning() -> FlamingoConditioning? {
        guard config.variant == .flamingo, let media = config.mediaTokenID else { return nil }
        return FlamingoConditioning(blocks: crossAttention, mediaTokenID: media, hidden: hidden)
    }

    /// Flamingo: makes `series` (one media item) what `conditioning`'s blocks attend to.
    public func condition(_ conditioning: FlamingoConditioning, on series: [[Float]], pool: ThreadPool? = nil) throws {
        let l = try latents(series, pool: pool)
        conditioning.setMedia(latents: l, count: config.latentCount, pool: pool)
    }

    // MARK: - Prompts

    /// One piece of a SoftPrompt prompt, in order.
    public enum SoftPromptPart: Sendable {
        /// Token ids, run as they are (upstream gives every text segment its own BOS).
        case tokens([Int32])
        /// A normalized series: its soft tokens go here.
        case series([Float])
    }

    /// SoftPrompt: the rows of a prompt. All series are padded together to the longest, rounded
    /// up to the patch size (upstream's collate), so each gives the same number of soft tokens.
    public func rows(softPrompt parts: [SoftPromptPart], pool: ThreadPool? = nil) throws -> PromptRows {
        let series = parts.compactMap { if case let .series(s) = $0 { s } else { nil } }
        var padded: (values: [Float], length: Int) = ([], 0)
        if !series.isEmpty { padded = try pad(series) }
        var rows = PromptRows()
        var index = 0
        for part in parts {
            switch part {
            case let .tokens(ids):
                rows.tokens += ids
            case .series:
                let s = Array(padded.values[(index * padded.length)..<((index + 1) * padded.length)])
                index += 1
                let soft = try softTokens(s, pool: pool)
                rows.tokens += Array(repeating: -1, count: soft.count / hidden)
                rows.soft += soft
            }
        }
        return rows
    }

    /// Runs `rows` at positions start..<start+rows.count of `cache` in batches of `batchSize`,
    /// as one forward call (for Flamingo's text times), and returns the logits of the last
    /// position, or of every position ([count, vocab]) when `allPositions`.
    public func run(_ rows: PromptRows, backbone: any TextModel, start: Int, cache: KVCache,
                    conditioning: FlamingoConditioning?, pool: ThreadPool?, batchSize: Int = 64,
                    allPositions: Bool = false) throws -> [Float] {
        let n = rows.tokens.count
        guard n > 0 else { throw RuntimeError.emptyPrompt }
        guard start >= 0, start + n <= cache.capacity else { throw RuntimeError.contextFull(context: cache.capacity) }
        let v = backbone.config.vocabularySize
        var logits = [Float](repeating: 0, count: (allPositions ? n : 1) * v)
        let times = conditioning?.textTimes(forCall: rows.tokens)
        let batch = max(1, batchSize)
        let x = FloatBuffer(min(batch, n) * hidden)
        var done = 0
        while done < n {
            let end = min(done + batch, n)
            try rows.embed(done..<end, backbone: backbone, into: x.pointer)
            if let conditioning, let times { conditioning.textTimes = times[done..<end] }
            try logits.withUnsafeMutableBufferPointer { lp in
                try backbone.forward(x.pointer, count: end - done, start: start + done, cache: cache, pool: pool,
                                     logits: lp.baseAddress! + (allPositions ? done * v : 0), allPositions: allPositions,
                                     hook: conditioning)
            }
            done = end
        }
        return logits
    }
}

/// A prompt ready to run: per position a token id, or -1 where the next row of `soft` (an input
/// embedding, e.g. a SoftPrompt soft token) goes instead.
public struct PromptRows: Sendable {
    /// [positions]
    public var tokens: [Int32] = []
    /// [positions with token -1, hidden]
    public var soft: [Float] = []

    public init(tokens: [Int32] = [], soft: [Float] = []) {
        self.tokens = tokens
        self.soft = soft
    }

    /// Writes the input embeddings of positions `range` into x [range.count, hidden].
    func embed(_ range: Range<Int>, backbone: any TextModel, into x: UnsafeMutablePointer<Float>) throws {
        let h = backbone.config.hidden
        var softIndex = tokens[..<range.lowerBound].reduce(0) { $0 + ($1 < 0 ? 1 : 0) }
        var i = range.lowerBound
        while i < range.upperBound {
            if tokens[i] < 0 {
                guard (softIndex + 1) * h <= soft.count else {
                    throw RuntimeError.invalidArgument(name: "prompt rows", reason: "more soft positions than soft rows")
                }
                soft.withUnsafeBufferPointer { s in
                    (x + (i - range.lowerBound) * h).update(from: s.baseAddress! + softIndex * h, count: h)
                }
                softIndex += 1
                i += 1
            } else {
                var j = i
                while j < range.upperBound, tokens[j] >= 0 { j += 1 }
                try backbone.embed(Array(tokens[i..<j]), into: x + (i - range.lowerBound) * h)
                i = j
            }
        }
    }
}
