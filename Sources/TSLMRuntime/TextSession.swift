import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// Why generation stopped.
public enum StopReason: String, Sendable {
    case endOfSequence = "eos", stopString = "stop", maxTokens = "length", cancelled, contextFull = "context"
    /// The session's abort check (`RunControl.shouldAbort`) asked to stop.
    case aborted
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

/// One conversation with a model of a `PromptFamily`: the KV cache (with the session's scratch
/// buffers), the positions in it, the family's per-session state, and the generation loop — the
/// one forward driver of the runtime. What the family defers (OpenTSLM's text and series) is kept
/// as prompt parts until `generate` runs them as one prompt.
/// Not thread-safe; use one session per thread (sessions may share a `LoadedModel`).
public final class TextSession {
    public let loaded: LoadedModel
    public let family: any PromptFamily
    public let cache: KVCache
    public let pool: ThreadPool?
    /// Tokens currently in the cache, in order (-1 where an input embedding, e.g. a soft token,
    /// was run instead).
    public private(set) var tokens: [Int32] = []
    /// Prompt positions run per forward call.
    public var batchSize = 256
    /// Progress and abort callbacks of prompt runs and generations (see `RunControl`).
    public var control: RunControl?

    public var model: any TextModel { family.backbone }
    public var tokenizer: Tokenizer { family.tokenizer }
    /// The family's per-session state (OpenTSLM-Flamingo: its `FlamingoConditioning`), if any.
    public let promptState: (any PromptState)?

    /// - Parameters:
    ///   - contextLength: KV cache positions (default: min(model context, 4096)).
    ///   - kv: how keys and values are stored (`KVPrecision.auto`: f16 for quantized weights).
    /// A model whose family does not take prompts (e.g. a forecaster without a text backbone)
    /// throws `RuntimeError.wrongKind`.
    public init(_ loaded: LoadedModel, contextLength: Int? = nil, kv: KVPrecision = .auto, pool: ThreadPool? = nil) throws {
        guard let family = loaded.family as? any PromptFamily else {
            throw RuntimeError.wrongKind(operation: "a text session", kind: loaded.kind.rawValue)
        }
        self.loaded = loaded
        self.family = family
        let limit = family.backbone.config.contextLength
        let ctx = contextLength ?? min(limit, 4096)
        guard ctx > 0, ctx <= limit else {
            throw RuntimeError.invalidArgument(name: "context length", reason: "\(ctx) must be in 1...\(limit)")
        }
        cache = try family.backbone.makeCache(capacity: ctx, half: kv.isHalf(for: loaded.file))
        self.pool = pool
        promptState = family.makePromptState()
    }

    /// The prompt under construction (families that defer it): what was appended since the last
    /// generation, run by the next `generate`.
    private var pendingParts: [PromptPart] = []

    /// Logits after the last position run, the start of the next generation.
    private var lastLogits: [Float]?

    /// The logits after the last position run (the distribution the next token is sampled
    /// from), nil when no position ran since the last sampled token or a deferred prompt waits.
    public var logits: [Float]? { pendingParts.isEmpty && pendingToken == nil ? lastLogits : nil }
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
        promptState?.reset()
        cache.reset()
    }

    /// A point the prompt under construction can be restored to (`restore`).
    func checkpoint() -> Int { pendingParts.count }

    /// Drops what was queued since `checkpoint`.
    func restore(_ point: Int) { pendingParts.removeSubrange(min(point, pendingParts.count)...) }

    /// Appends text to the prompt. addSpecial: BOS first when the tokenizer adds one.
    /// Special-token text ("<|im_start|>") is parsed. On failure the session is unchanged.
    /// A family that defers its prompt (OpenTSLM) keeps the text with the series until `generate`;
    /// otherwise it runs now.
    public func appendText(_ text: String, addSpecial: Bool) throws {
        guard family.defersPrompt else {
            try append(tokenizer.encode(text, addSpecial: addSpecial, parseSpecial: true))
            return
        }
        try queue([.text(text, addSpecial: addSpecial)])
    }

    /// Appends `channels` series of `length` samples each (values[c * length + t]), each channel
    /// described by `description` (placeholders `{mean}`, `{std}`, `{channel}`, `{axis}`, `{lead}`,
    /// and with `names` `{name}` and `{sensor}`; see `SeriesPreset.fillChannel`) or the model's /
    /// preset's text. `{channel}`, `{axis}` and `{lead}` follow the series' position in the prompt.
    /// The arguments are checked first; a family without series input then throws
    /// `RuntimeError.wrongKind`. The family prepares the series (`PromptFamily.prepareSeries`:
    /// OpenTSLM normalizes each channel as `preset` says, nil meaning the model's preset); a
    /// series the family cannot take or a prompt that no longer fits the context is an error,
    /// and the session is then unchanged.
    public func appendSeries(_ values: [Float], length: Int, channels: Int, description: String?,
                             preset: SeriesPreset?, names: [String?]? = nil) throws {
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
        let position = pendingParts.reduce(0) { n, p in if case .series = p { n + 1 } else { n } }
        let prepared = try family.prepareSeries(values, length: length, channels: channels, position: position,
                                                description: description, names: names, preset: preset)
        try queue(prepared.map { .series($0) })
    }

    /// OpenTSLM-Flamingo: the text time generated tokens get (the `<image>` count of the last
    /// prompt that had any); nil for other models.
    public var flamingoTextTime: Int? { (promptState as? FlamingoConditioning)?.cachedMediaCount }

    /// The series and descriptions the next `generate` will run, in order.
    public var pendingSeries: [PreparedSeries] {
        pendingParts.compactMap { if case let .series(s) = $0 { s } else { nil } }
    }

    /// Adds parts to the pending prompt if the whole prompt still fits the context.
    private func queue(_ parts: [PromptPart]) throws {
        let candidate = pendingParts + parts
        let n = try family.promptRows(candidate, startsContext: tokens.isEmpty, countOnly: true, state: nil, pool: pool).tokens.count
            + (pendingToken == nil ? 0 : 1)
        guard tokens.count + n <= cache.capacity else {
            if tokens.isEmpty { throw RuntimeError.promptTooLong(tokens: n, context: cache.capacity) }
            throw RuntimeError.contextFull(context: cache.capacity)
        }
        pendingParts = candidate
    }

    /// Runs the pending prompt (after a token the last generation sampled but did not run).
    private func runPendingParts() throws {
        guard !pendingParts.isEmpty else { return }
        let t0 = ContinuousClock.now
        var rows = try family.promptRows(pendingParts, startsContext: tokens.isEmpty, countOnly: false, state: promptState, pool: pool)
        if let p = pendingToken { rows.tokens.insert(p, at: 0) }
        lastLogits = try run(rows)
        pendingToken = nil
        pendingParts = []
        appendSeconds += seconds(since: t0)
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
        let t0 = ContinuousClock.now
        let logits = try run(PromptRows(tokens: (pendingToken.map { [$0] } ?? []) + newTokens))
        lastLogits = logits
        pendingToken = nil
        appendSeconds += seconds(since: t0)
        return logits
    }

    /// Runs prompt rows (tokens, and input embeddings where the id is -1) at the next positions as
    /// one call, in batches of `batchSize`, with the family's per-session state as the decoder
    /// layer hook, and returns what `output` asks for (`ForwardOutput`: by default the logits
    /// after the last position; `.allLogits` [n, vocab] or `.hiddenStates` [n, hidden] of every
    /// position). Positions of input embeddings are recorded as -1 in `tokens`. This is the
    /// runtime's one forward driver; the parity tests call it with prompt rows the family built.
    public func run(_ rows: PromptRows, output: ForwardOutput = .lastLogits) throws -> [Float] {
        let newTokens = rows.tokens
        guard !newTokens.isEmpty else { throw RuntimeError.emptyPrompt }
        guard tokens.count + newTokens.count <= cache.capacity else {
            if tokens.isEmpty { throw RuntimeError.promptTooLong(tokens: newTokens.count, context: cache.capacity) }
            throw RuntimeError.contextFull(context: cache.capacity)
        }
        let out = try rows.run(backbone: model, cache: cache, start: tokens.count, output: output, batchSize: batchSize,
                               state: promptState, pool: pool, control: control)
        tokens += newTokens
        return out
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
        let t1 = ContinuousClock.now
        var generated: [Int32] = []
        var decoder = tokenizer.makeStreamingDecoder(skipSpecial: true)
        var text = ""      // all final text
        var pending = ""   // decoded text held back while it may start a stop string
        var reason = StopReason.maxTokens
        let eos = Set([tokenizer.eosID].compactMap { $0 })
        // A stop string that is one whole vocabulary entry (a special token such as <|im_end|>,
        // whose text decoding skips) stops at its id, before the token is kept, like EOS.
        let stopIDs = Set(stop.compactMap { tokenizer.id(of: $0) }).subtracting(eos)
        var stoppedAtID = false
        loop: while generated.count < maxTokens {
            let next = logits.withUnsafeMutableBufferPointer { sampler.sample($0, history: tokens) }
            if eos.contains(next) { reason = .endOfSequence; break }
            if stopIDs.contains(next) { reason = .stopString; stoppedAtID = true; break }
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
            if let abort = control?.shouldAbort, abort() { reason = .aborted; break }
            logits = try append([next])
        }
        // Every exit but EOS leaves the last sampled token not yet run: it goes in first when the
        // conversation goes on.
        if let last = generated.last, reason != .endOfSequence, !stoppedAtID {
            pendingToken = last
            lastLogits = nil
        } else {
            lastLogits = logits
        }
        if (reason != .stopString || stoppedAtID) && reason != .cancelled && reason != .aborted {
            pending += decoder.finish()
            text += pending
            if let onText, !pending.isEmpty { _ = onText(pending) }
        }
        return GenerationResult(text: text, tokens: generated, stopReason: reason, promptTokens: promptTokens,
                                promptSeconds: promptSeconds, generatedTokens: generated.count,
                                generateSeconds: seconds(since: t1))
    }

    /// Seconds elapsed since `start`.
    private func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// The earliest occurrence of any stop string.
    private func firstStop(in s: String, stops: [String]) -> (String.Index, String)? {
        var best: (String.Index, String)?
        for st in stops where !st.isEmpty {
            if let r = s.firstRange(of: st), best == nil || r.lowerBound < best!.0 { best = (r.lowerBound, st) }
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
