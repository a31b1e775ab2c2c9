import Foundation
import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// A loaded `.tslm` text model with its tokenizer.
public final class LoadedModel: @unchecked Sendable {
    public let file: TSLMFile
    public let model: any TextModel
    public let tokenizer: Tokenizer
    /// The time-series parts of an OpenTSLM model (`timeseries.model` = `opentslm_*`), else nil.
    public let openTSLM: OpenTSLMModel?

    /// Opens, validates and maps `path`, builds the model for its architecture and its tokenizer.
    public init(path: String, mmap: Bool = true) throws {
        file = try TSLMFile(path: path, mmap: mmap)
        model = try ModelRegistry.load(file)
        do {
            tokenizer = try Tokenizer(metadata: file.metadata)
        } catch {
            throw RuntimeError.tokenizer("\(error)")
        }
        if let ts = file.metadata.string("timeseries.model"), ts.hasPrefix("opentslm") {
            openTSLM = try OpenTSLMModel(file: file, backbone: model)
        } else {
            openTSLM = nil
        }
    }

    /// The chat template named by the file's `tokenizer.chat_template`, if recognized.
    public var chatTemplate: ChatTemplate? { ChatTemplate.detect(jinja: file.metadata.string("tokenizer.chat_template")) }

    /// What the model does, from its `timeseries.model` metadata (absent: a text model).
    public var kind: ModelKind { ModelKind(timeseriesModel: file.metadata.string("timeseries.model")) }
}

/// What a model does with its inputs.
public enum ModelKind: String, Sendable {
    /// Text in, text out.
    case text
    /// Series and text in, a rationale ending in "Answer: ..." out (OpenTSLM).
    case classifier
    /// A series' history in, its forecast out (ChatTime, Time-LLM, LSTM).
    case forecaster

    init(timeseriesModel: String?) {
        switch timeseriesModel {
        case nil: self = .text
        case let name? where name.hasPrefix("opentslm"): self = .classifier
        default: self = .forecaster
        }
    }
}

/// A task's normalization and series description (OpenTSLM's curriculum tasks), or `custom`.
public enum SeriesPreset: String, CaseIterable, Sendable {
    case custom, har, sleep, ecg, tsqa, m4
}

/// The answer in a model's text: what follows the last "Answer: ", without a final period,
/// trimmed; the whole text trimmed when there is no "Answer: ".
public func extractAnswer(_ text: String) -> String {
    var answer = Substring(text)
    if let r = text.range(of: "Answer: ", options: .backwards) { answer = text[r.upperBound...] }
    var trimmed = answer.trimmingCharacters(in: .whitespacesAndNewlines)
    if trimmed.hasSuffix(".") { trimmed.removeLast() }
    return trimmed.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Why generation stopped.
public enum StopReason: String, Sendable {
    case endOfSequence = "eos", stopString = "stop", maxTokens = "length", cancelled, contextFull = "context"
}

/// What `generate` returns.
public struct GenerationResult: Sendable {
    public var text: String
    public var tokens: [Int32]
    public var stopReason: StopReason
    public var promptTokens: Int
    public var promptSeconds: Double
    public var generatedTokens: Int
    public var generateSeconds: Double
}

/// One conversation with a model: the KV cache, the tokens in it, and generation.
/// Not thread-safe; use one session per thread (sessions may share a `LoadedModel`).
public final class TextSession {
    public let loaded: LoadedModel
    public let cache: KVCache
    public let pool: ThreadPool?
    /// Tokens currently in the cache, in order.
    public private(set) var tokens: [Int32] = []
    /// Prompt positions run per forward call.
    public var batchSize = 64

    public var model: any TextModel { loaded.model }
    public var tokenizer: Tokenizer { loaded.tokenizer }

    /// - Parameters:
    ///   - contextLength: KV cache positions (default: min(model context, 4096)).
    ///   - halfCache: store keys and values as f16.
    public init(_ loaded: LoadedModel, contextLength: Int? = nil, halfCache: Bool = false, pool: ThreadPool? = nil) throws {
        self.loaded = loaded
        let ctx = contextLength ?? min(loaded.model.config.contextLength, 4096)
        guard ctx > 0, ctx <= loaded.model.config.contextLength else {
            throw RuntimeError.invalidArgument(name: "context length", reason: "\(ctx) must be in 1...\(loaded.model.config.contextLength)")
        }
        cache = try loaded.model.makeCache(capacity: ctx, half: halfCache)
        self.pool = pool
        conditioning = loaded.openTSLM?.makeConditioning()
    }

    /// An OpenTSLM prompt under construction: what was appended since the last generation, run
    /// by the next `generate` (upstream pads all series of a prompt together, and a Flamingo
    /// prompt is one text with one media item).
    private enum PendingPart {
        /// SoftPrompt text, tokenized when appended.
        case tokens([Int32])
        /// Flamingo text, tokenized with the rest of the prompt.
        case text(String, addSpecial: Bool)
        case series(PreparedSeries)
    }
    private var pendingParts: [PendingPart] = []
    /// Flamingo: the media item and text times (the decoder layer hook).
    private let conditioning: FlamingoConditioning?

    /// Logits after the last position run, the start of the next generation.
    private var lastLogits: [Float]?
    /// A generated token that was sampled but not yet run (generation stopped after sampling it).
    private var pendingToken: Int32?
    /// Seconds spent running prompt positions since the last generation.
    private var appendSeconds = 0.0

    /// Forgets everything in the cache.
    public func reset() {
        tokens = []
        lastLogits = nil
        pendingToken = nil
        appendSeconds = 0
        pendingParts = []
        conditioning?.reset()
    }

    /// Appends text to the prompt and runs it. addSpecial: BOS first when the tokenizer adds one.
    /// Special-token text ("<|im_start|>") is parsed. On failure the session is unchanged.
    ///
    /// OpenTSLM models keep the text with the series until `generate` (see `appendSeries`); a
    /// SoftPrompt model tokenizes every text segment on its own (with BOS when `addSpecial`, as
    /// upstream gives every segment its own BOS).
    public func appendText(_ text: String, addSpecial: Bool) throws {
        guard let ts = loaded.openTSLM else {
            try append(tokenizer.encode(text, addSpecial: addSpecial, parseSpecial: true))
            return
        }
        let part: PendingPart = ts.config.variant == .softPrompt
            ? .tokens(tokenizer.encode(text, addSpecial: addSpecial, parseSpecial: true))
            : .text(text, addSpecial: addSpecial)
        try queue([part])
    }

    /// Appends `channels` series of `length` samples each (values[c * length + t]), each channel
    /// described by `description` ("{mean}", "{std}", "{channel}" are filled in) or the preset's text.
    /// The arguments are checked first; a text model then throws `RuntimeError.wrongKind`.
    ///
    /// OpenTSLM models: each channel is normalized as `preset` says (`SeriesPreset.prepare`) and
    /// queued with the text until `generate`, which pads all series of the prompt together and
    /// runs it. A series longer than the encoder's positions, more than
    /// `OpenTSLMModel.maxSeriesPerPrompt` series in one prompt, or a prompt that no longer fits
    /// the context is an error, and the session is then unchanged.
    public func appendSeries(_ values: [Float], length: Int, channels: Int, description: String?,
                             preset: SeriesPreset) throws {
        guard length > 0 else { throw RuntimeError.invalidArgument(name: "series length", reason: "\(length) must be > 0") }
        guard channels > 0 else { throw RuntimeError.invalidArgument(name: "channel count", reason: "\(channels) must be > 0") }
        let (total, overflow) = length.multipliedReportingOverflow(by: channels)
        guard !overflow, total == values.count else {
            throw RuntimeError.invalidArgument(name: "series values",
                                               reason: "\(values.count) values for \(channels) channels of \(length) samples")
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw RuntimeError.invalidArgument(name: "series values",
                                               reason: "value \(values[bad]) at channel \(bad / length), sample \(bad % length) is not finite")
        }
        guard let ts = loaded.openTSLM else {
            throw RuntimeError.wrongKind(operation: "appending a series", kind: loaded.kind.rawValue)
        }
        guard length <= ts.config.maxLength else {
            throw RuntimeError.invalidArgument(name: "series length", reason: "\(length) samples is more than the encoder's \(ts.config.maxPatches) positions of \(ts.config.patchSize) samples (\(ts.config.maxLength))")
        }
        let queued = pendingParts.reduce(0) { n, p in if case .series = p { n + 1 } else { n } }
        guard queued + channels <= OpenTSLMModel.maxSeriesPerPrompt else {
            throw RuntimeError.invalidArgument(name: "channel count", reason: "\(queued) + \(channels) series is more than the \(OpenTSLMModel.maxSeriesPerPrompt) one prompt may hold")
        }
        let parts = (0..<channels).map { c in
            PendingPart.series(preset.prepare(values[(c * length)..<((c + 1) * length)], channel: c, template: description))
        }
        try queue(parts)
    }

    /// OpenTSLM-Flamingo: the text time generated tokens get (the `<image>` count of the last
    /// prompt that had any); nil for other models.
    public var flamingoTextTime: Int? { conditioning?.cachedMediaCount }

    /// The series and descriptions the next `generate` will run, in order (OpenTSLM models).
    public var pendingSeries: [PreparedSeries] {
        pendingParts.compactMap { if case let .series(s) = $0 { s } else { nil } }
    }

    /// Adds parts to the pending OpenTSLM prompt if the whole prompt still fits the context.
    private func queue(_ parts: [PendingPart]) throws {
        let candidate = pendingParts + parts
        let n = try pendingRows(candidate, count: true).tokens.count + (pendingToken == nil ? 0 : 1)
        guard tokens.count + n <= cache.capacity else {
            if tokens.isEmpty { throw RuntimeError.promptTooLong(tokens: n, context: cache.capacity) }
            throw RuntimeError.contextFull(context: cache.capacity)
        }
        pendingParts = candidate
    }

    /// The rows of a pending OpenTSLM prompt: SoftPrompt text tokens, descriptions (each with
    /// its own BOS) and soft tokens; Flamingo's one text ("pre <image> desc <|endofchunk|> …
    /// post", as upstream builds it) tokenized once. With `count`, soft rows are only counted
    /// (their values are left empty) and no media is set.
    private func pendingRows(_ parts: [PendingPart], count: Bool) throws -> PromptRows {
        guard let ts = loaded.openTSLM else { return PromptRows() }
        switch ts.config.variant {
        case .softPrompt:
            var spParts: [OpenTSLMModel.SoftPromptPart] = []
            for p in parts {
                switch p {
                case let .tokens(ids): spParts.append(.tokens(ids))
                case let .text(t, special): spParts.append(.tokens(tokenizer.encode(t, addSpecial: special, parseSpecial: true)))
                case let .series(s):
                    spParts.append(.tokens(tokenizer.encode(s.description, addSpecial: true, parseSpecial: true)))
                    spParts.append(.series(s.values))
                }
            }
            if count {
                let series = spParts.compactMap { if case let .series(s) = $0 { s.count } else { nil } }
                let soft = series.map { _ in ts.config.patchCount(length: series.max() ?? 0) }
                var rows = PromptRows()
                var i = 0
                for p in spParts {
                    switch p {
                    case let .tokens(ids): rows.tokens += ids
                    case .series: rows.tokens += Array(repeating: -1, count: soft[i]); i += 1
                    }
                }
                return rows
            }
            return try ts.rows(softPrompt: spParts, pool: pool)
        case .flamingo:
            let media = ts.config.mediaTokenID.flatMap { tokenizer.piece($0) } ?? "<image>"
            let end = ts.config.endOfChunkTokenID.flatMap { tokenizer.piece($0) } ?? "<|endofchunk|>"
            var text = ""
            var afterSeries = false
            var bos = false
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
                    if i == 0 { bos = tokens.isEmpty }
                    text += " \(media) \(s.description) \(end)"
                    afterSeries = true
                }
            }
            return PromptRows(tokens: tokenizer.encode(text, addSpecial: bos, parseSpecial: true))
        }
    }

    /// Runs the pending OpenTSLM prompt (after a token the last generation sampled but did not
    /// run): Flamingo first makes its series the media item.
    private func runPendingParts() throws {
        guard let ts = loaded.openTSLM, !pendingParts.isEmpty else { return }
        let t0 = Date()
        var rows = try pendingRows(pendingParts, count: false)
        if let conditioning {
            let series = pendingSeries.map(\.values)
            if !series.isEmpty { try ts.condition(conditioning, on: series, pool: pool) }
        }
        if let p = pendingToken { rows.tokens.insert(p, at: 0) }
        lastLogits = try runRows(rows)
        pendingToken = nil
        pendingParts = []
        appendSeconds += Date().timeIntervalSince(t0)
    }

    /// Generates after everything appended so far (see `generate(promptTokens:...)`). The
    /// generated tokens stay in the context, so a conversation can go on with `appendText`.
    public func generate(maxTokens: Int, sampler params: SamplerParams = SamplerParams(), stop: [String] = [],
                         onText: ((String) -> Bool)? = nil) throws -> GenerationResult {
        try runPendingParts()
        if let p = pendingToken {
            pendingToken = nil
            do { try append([p]) } catch { pendingToken = p; throw error }
        }
        guard let logits = lastLogits else { throw RuntimeError.emptyPrompt }
        return try continueGeneration(from: logits, maxTokens: maxTokens, sampler: params, stop: stop, onText: onText)
    }

    /// Runs `newTokens` through the model (in batches) and returns the logits after the last.
    /// A token the last generation sampled but did not run goes first. On failure the session is
    /// unchanged.
    @discardableResult
    public func append(_ newTokens: [Int32]) throws -> [Float] {
        guard !newTokens.isEmpty else { throw RuntimeError.emptyPrompt }
        let t0 = Date()
        let logits = try run((pendingToken.map { [$0] } ?? []) + newTokens)
        lastLogits = logits
        pendingToken = nil
        appendSeconds += Date().timeIntervalSince(t0)
        return logits
    }

    /// Runs tokens at the next positions; the logits after the last.
    private func run(_ newTokens: [Int32]) throws -> [Float] {
        try runRows(PromptRows(tokens: newTokens))
    }

    /// Runs prompt rows (tokens, and soft tokens where the id is -1) at the next positions, as
    /// one forward call in batches; the logits after the last. Soft positions are recorded as -1
    /// in `tokens`.
    private func runRows(_ rows: PromptRows) throws -> [Float] {
        let newTokens = rows.tokens
        guard !newTokens.isEmpty else { throw RuntimeError.emptyPrompt }
        guard tokens.count + newTokens.count <= cache.capacity else {
            if tokens.isEmpty { throw RuntimeError.promptTooLong(tokens: newTokens.count, context: cache.capacity) }
            throw RuntimeError.contextFull(context: cache.capacity)
        }
        try checkTokens(newTokens.filter { $0 >= 0 }, vocabularySize: model.config.vocabularySize)
        var logits = [Float](repeating: 0, count: model.config.vocabularySize)
        let times = conditioning?.textTimes(forCall: newTokens)
        var done = 0
        while done < newTokens.count {
            let end = min(done + max(1, batchSize), newTokens.count)
            if let conditioning, let times { conditioning.textTimes = times[done..<end] }
            try logits.withUnsafeMutableBufferPointer { lp in
                try appendEmbeddings(count: end - done, logits: lp.baseAddress!) { x in
                    try rows.embed(done..<end, backbone: model, into: x)
                }
            }
            tokens += newTokens[done..<end]
            done = end
        }
        return logits
    }

    /// Runs `count` input embeddings written by `fill` (e.g. soft tokens) at the next positions.
    /// The positions hold no token id; `tokens` records -1 for them.
    public func appendEmbeddings(count: Int, logits: UnsafeMutablePointer<Float>,
                                 fill: (UnsafeMutablePointer<Float>) throws -> Void) throws {
        guard count > 0 else { throw RuntimeError.emptyPrompt }
        let start = tokens.count
        guard start + count <= cache.capacity else { throw RuntimeError.contextFull(context: cache.capacity) }
        let x = FloatBuffer(count * model.config.hidden)
        try fill(x.pointer)
        try model.forward(x.pointer, count: count, start: start, cache: cache, pool: pool, logits: logits, allPositions: false,
                          hook: conditioning)
    }

    /// Encodes `prompt`, runs it, and generates up to `maxTokens` tokens.
    /// - Parameters:
    ///   - stop: strings that end generation (not included in the text).
    ///   - onText: receives text as it becomes final; return false to cancel.
    public func generate(prompt: String, maxTokens: Int, sampler params: SamplerParams = SamplerParams(),
                         stop: [String] = [], onText: ((String) -> Bool)? = nil) throws -> GenerationResult {
        let ids = tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
        return try generate(promptTokens: ids, maxTokens: maxTokens, sampler: params, stop: stop, onText: onText)
    }

    /// Runs `promptTokens` after what the session holds, then generates.
    public func generate(promptTokens: [Int32], maxTokens: Int, sampler params: SamplerParams = SamplerParams(),
                         stop: [String] = [], onText: ((String) -> Bool)? = nil) throws -> GenerationResult {
        guard maxTokens >= 0 else { throw RuntimeError.invalidArgument(name: "max tokens", reason: "\(maxTokens) must be ≥ 0") }
        guard !promptTokens.isEmpty else { throw RuntimeError.emptyPrompt }
        let logits = try append(promptTokens)
        return try continueGeneration(from: logits, maxTokens: maxTokens, sampler: params, stop: stop, onText: onText)
    }

    /// The sampling loop, starting from the logits after the last position run.
    private func continueGeneration(from startLogits: [Float], maxTokens: Int, sampler params: SamplerParams,
                                    stop: [String], onText: ((String) -> Bool)?) throws -> GenerationResult {
        guard maxTokens >= 0 else { throw RuntimeError.invalidArgument(name: "max tokens", reason: "\(maxTokens) must be ≥ 0") }
        var sampler = try Sampler(params)
        var logits = startLogits
        let promptTokens = tokens.count, promptSeconds = appendSeconds
        appendSeconds = 0
        let t1 = Date()
        var generated: [Int32] = []
        var decoder = tokenizer.makeStreamingDecoder(skipSpecial: true)
        var text = ""      // all final text
        var pending = ""   // decoded text held back while it may start a stop string
        var reason = StopReason.maxTokens
        let eos = Set([tokenizer.eosID].compactMap { $0 } + stop.compactMap { tokenizer.id(of: $0) })
        loop: while generated.count < maxTokens {
            let next = logits.withUnsafeMutableBufferPointer { sampler.sample($0, history: tokens) }
            if eos.contains(next) { reason = .endOfSequence; break }
            generated.append(next)
            pending += decoder.append(next)
            if let (cut, _) = firstStop(in: pending, stops: stop) {
                let final = String(pending[..<cut])
                text += final
                if let onText, !final.isEmpty { _ = onText(final) }
                pending = ""
                reason = .stopString
                break loop
            }
            let safe = safePrefixLength(pending, stops: stop)
            if safe > 0 {
                let idx = pending.index(pending.startIndex, offsetBy: safe)
                let final = String(pending[..<idx])
                pending.removeSubrange(..<idx)
                text += final
                if let onText, !onText(final) { reason = .cancelled; break }
            }
            if generated.count == maxTokens { break }
            if tokens.count >= cache.capacity { reason = .contextFull; break }
            logits = try append([next])
        }
        // Every exit but EOS leaves the last sampled token not yet run: it goes in first when the
        // conversation goes on.
        if let last = generated.last, reason != .endOfSequence {
            pendingToken = last
            lastLogits = nil
        } else {
            lastLogits = logits
        }
        if reason != .stopString && reason != .cancelled {
            pending += decoder.finish()
            text += pending
            if let onText, !pending.isEmpty { _ = onText(pending) }
        }
        let t2 = Date()
        return GenerationResult(text: text, tokens: generated, stopReason: reason, promptTokens: promptTokens,
                                promptSeconds: promptSeconds, generatedTokens: generated.count,
                                generateSeconds: t2.timeIntervalSince(t1))
    }

    /// The earliest occurrence of any stop string.
    private func firstStop(in s: String, stops: [String]) -> (String.Index, String)? {
        var best: (String.Index, String)?
        for st in stops where !st.isEmpty {
            if let r = s.range(of: st), best == nil || r.lowerBound < best!.0 { best = (r.lowerBound, st) }
        }
        return best
    }

    /// How many leading characters of `s` cannot be the start of a stop string.
    private func safePrefixLength(_ s: String, stops: [String]) -> Int {
        let chars = Array(s)
        var keep = 0  // characters at the end to hold back
        for st in stops where !st.isEmpty {
            let sc = Array(st)
            for len in stride(from: min(sc.count - 1, chars.count), through: 1, by: -1)
            where Array(chars.suffix(len)) == Array(sc.prefix(len)) {
                keep = max(keep, len)
                break
            }
        }
        return chars.count - keep
    }
}
