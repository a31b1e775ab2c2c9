import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// OpenTSLM (SoftPrompt or Flamingo, `general.family` = `opentslm-sp` / `opentslm-flamingo`):
/// time-series parts on top of a text backbone, loaded from one `.tslm` file (formats/tslm.md,
/// "OpenTSLM"; architecture facts in formats/opentslm.md).
///
/// - SoftPrompt: each series (zero-padded with the other series of its prompt to the longest,
///   rounded up to the patch size) → `PatchEncoder` (6 Transformer layers) → projector → one soft
///   token per patch, spliced into the prompt after the series' description.
/// - Flamingo: all series of a prompt → CNN tokenizer → one set of patches → Perceiver → 64
///   latents; gated cross-attention blocks in front of the decoder layers attend to them.
///
/// Text and series are kept until generation and run as one prompt (`defersPrompt`); the prompt
/// the model was trained with comes from the file (`trainedPrompt`, `TextSession.appendRecording`).
public final class OpenTSLMFamily: PromptFamily, @unchecked Sendable {
    public let name: String
    public let kind = ModelKind.classifier
    public let backbone: any TextModel
    public let tokenizer: Tokenizer
    public let config: OpenTSLMConfig
    /// The prompt the model was trained with (`opentslm.prompt.*`), if the converter stored one.
    public let trainedPrompt: TrainedPrompt?
    /// The backbone's width.
    public let hidden: Int
    let encoder: PatchEncoder
    let projector: SoftPromptProjector?
    let perceiver: PerceiverResampler?
    /// Per decoder layer (Flamingo): the block that runs before it, if any.
    let crossAttention: [GatedCrossAttentionBlock?]
    /// Owns the decoded vectors the parts point into.
    let weights: ModelWeights

    /// Loads the backbone, the tokenizer and the parts `variant` needs, checking every shape
    /// against the backbone and the `opentslm.*` hyperparameters.
    public init(file: TSLMFile, variant: OpenTSLMVariant) throws {
        let language = try LanguageModel(file: file)
        backbone = language.backbone
        tokenizer = language.tokenizer
        name = variant.rawValue
        let bc = backbone.config
        let c = try OpenTSLMConfig(metadata: file.metadata, variant: variant, hidden: bc.hidden, layers: bc.layers,
                                   vocabularySize: bc.vocabularySize)
        config = c
        trainedPrompt = try TrainedPrompt(metadata: file.metadata)
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
    public func makePromptState() -> (any PromptState)? { makeConditioning() }

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

    // MARK: - PromptFamily

    public var defersPrompt: Bool { true }

    /// Normalizes each channel as `preset` says (nil: the model's preset, else custom) and fills
    /// its description (`SeriesPreset.prepare`): `{channel}`, `{axis}` and `{lead}` follow the
    /// series' position in the prompt, `{name}`, `{sensor}` and `{axis}` the channel's name.
    public func prepareSeries(_ values: [Float], length: Int, channels: Int, position: Int, description: String?,
                              names: [String?]?, preset: SeriesPreset?) throws -> [PreparedSeries] {
        guard length <= config.maxLength else {
            throw RuntimeError.invalidArgument(name: "series length", reason: "\(length) samples is more than the encoder's \(config.maxPatches) positions of \(config.patchSize) samples (\(config.maxLength))")
        }
        guard position + channels <= Self.maxSeriesPerPrompt else {
            throw RuntimeError.invalidArgument(name: "channel count", reason: "\(position) + \(channels) series is more than the \(Self.maxSeriesPerPrompt) one prompt may hold")
        }
        if let names, names.count != channels {
            throw RuntimeError.invalidArgument(name: "channel names", reason: "\(names.count) names for \(channels) channels")
        }
        let chosen = preset ?? config.preset ?? .custom
        let template = description ?? trainedPrompt?.series ?? chosen.defaultDescription
        return (0..<channels).map { c in
            let filled = SeriesPreset.fillChannel(template, channel: position + c, name: names?[c] ?? nil)
            return chosen.prepare(values[(c * length)..<((c + 1) * length)], channel: position + c, template: filled)
        }
    }

    /// SoftPrompt: every text segment tokenized on its own (BOS when `addSpecial`, as upstream
    /// gives every segment its own BOS), each series' description (with its own BOS) then its soft
    /// tokens. Flamingo: one text, "pre <image> desc <|endofchunk|> … post", as upstream builds it,
    /// tokenized once; the series become the media item of `state`.
    public func promptRows(_ parts: [PromptPart], startsContext: Bool, countOnly: Bool, state: (any PromptState)?,
                           pool: ThreadPool?) throws -> PromptRows {
        switch config.variant {
        case .softPrompt:
            var spParts: [SoftPromptPart] = []
            for p in parts {
                switch p {
                case let .tokens(ids): spParts.append(.tokens(ids))
                case let .text(t, special): spParts.append(.tokens(tokenizer.encode(t, addSpecial: special, parseSpecial: true)))
                case let .series(s):
                    spParts.append(.tokens(tokenizer.encode(s.description, addSpecial: true, parseSpecial: true)))
                    spParts.append(.series(s.values))
                }
            }
            guard countOnly else { return try rows(softPrompt: spParts, pool: pool) }
            let longest = spParts.reduce(0) { n, p in if case let .series(s) = p { max(n, s.count) } else { n } }
            var rows = PromptRows()
            for p in spParts {
                switch p {
                case let .tokens(ids): rows.tokens += ids
                case .series: rows.tokens += Array(repeating: -1, count: config.patchCount(length: longest))
                }
            }
            return rows
        case .flamingo:
            let media = config.mediaTokenID.flatMap { tokenizer.piece($0) } ?? "<image>"
            let end = config.endOfChunkTokenID.flatMap { tokenizer.piece($0) } ?? "<|endofchunk|>"
            var text = ""
            var afterSeries = false
            var bos = false
            var series: [[Float]] = []
            for (i, p) in parts.enumerated() {
                switch p {
                case let .text(t, special):
                    if i == 0 { bos = special }
                    text += (afterSeries && !t.isEmpty ? " " : "") + t
                    afterSeries = false
                case let .tokens(ids):
                    text += tokenizer.decode(ids)
                    afterSeries = false
                case let .series(s):
                    if i == 0 { bos = startsContext }
                    text += " \(media) \(s.description) \(end)"
                    afterSeries = true
                    series.append(s.values)
                }
            }
            if !countOnly, !series.isEmpty {
                guard let conditioning = state as? FlamingoConditioning else {
                    throw RuntimeError.invalidArgument(name: "prompt state", reason: "a Flamingo prompt needs the session's conditioning")
                }
                try condition(conditioning, on: series, pool: pool)
            }
            return PromptRows(tokens: tokenizer.encode(text, addSpecial: bos, parseSpecial: true))
        }
    }
}
