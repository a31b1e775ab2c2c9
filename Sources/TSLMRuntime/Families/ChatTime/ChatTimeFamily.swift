import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// ChatTime (`general.family` = `chattime`, formats/tslm.md "ChatTime"): a Llama backbone whose
/// vocabulary has 10,001 value tokens (`ChatTimeValues`). It forecasts (a `Forecaster`) and
/// answers multiple-choice questions about a series (`analyze`), as the official inference code
/// does (chat-time 0.3.0, `model/model.py`); as a `PromptFamily` it is also a text model.
///
/// A forecast runs in chunks of up to `maxChunk` steps. Per chunk: the current series is
/// discretized and serialized, the forecast prompt (`ChatTimePrompt`) is run once, and from its
/// logits `samples` paths of 2n+8 tokens are drawn (EOS masked; top-k, temperature) — each path
/// continues the one prompt in the KV cache, so the prompt is prefilled once per chunk, not once
/// per path. Each path is decoded as the official pipeline decodes it, its values parsed,
/// unscaled, padded with NaN or cut to n; the per-step NaN-ignoring median is the forecast
/// (quantiles the band), and it is appended to the series for the next chunk. Greedy mode draws
/// one path by argmax. Seeded: the same seed gives the same forecast.
public final class ChatTimeFamily: PromptFamily, Forecaster, @unchecked Sendable {
    public let name = ModelFamilyName.chatTime.rawValue
    public let kind = ModelKind.forecaster
    public let backbone: any TextModel
    public let tokenizer: Tokenizer
    public let config: ChatTimeConfig
    /// Token id of each value bin, and of `###Nan###`.
    public let valueIDs: [Int32]
    public let nanID: Int32
    /// Added (user-defined) tokens: decoded as separate pieces, as the slow tokenizer does.
    let addedIDs: Set<Int32>

    public init(file: TSLMFile) throws {
        let language = try LanguageModel(file: file)
        backbone = language.backbone
        tokenizer = language.tokenizer
        config = try ChatTimeConfig(metadata: file.metadata)
        var ids: [Int32] = []
        ids.reserveCapacity(ChatTimeValues.binCount)
        var missing: [String] = []
        for t in ChatTimeValues.tokens {
            if let id = tokenizer.id(of: t) { ids.append(id) } else { missing.append(t) }
        }
        let nan = tokenizer.id(of: ChatTimeValues.nanToken)
        if nan == nil { missing.append(ChatTimeValues.nanToken) }
        guard missing.isEmpty, let nan else {
            throw RuntimeError.missingValueTokens(first: missing[0], count: missing.count)
        }
        valueIDs = ids
        nanID = nan
        addedIDs = Set(ids + [nan])
    }

    // MARK: PromptFamily (text)

    public var defersPrompt: Bool { false }

    public func makePromptState() -> (any PromptState)? { nil }

    public func prepareSeries(_ values: [Float], length: Int, channels: Int, position: Int, description: String?,
                              names: [String?]?, preset: SeriesPreset?) throws -> [PreparedSeries] {
        throw RuntimeError.wrongKind(operation: "appending a series to a text session (ChatTime reads series through forecasting and analysis)",
                                     kind: kind.rawValue)
    }

    public func promptRows(_ parts: [PromptPart], startsContext: Bool, countOnly: Bool, state: (any PromptState)?,
                           pool: ThreadPool?) throws -> PromptRows {
        try textRows(parts)
    }

    // MARK: Forecaster

    public var forecastShape: ForecastShape { ForecastShape(inputs: nil, outputs: nil, window: nil, horizon: nil) }

    /// Missing values (NaN) in a history become `###Nan###`.
    public var acceptsMissingValues: Bool { true }

    public var drawsSamples: Bool { true }

    public func forecast(_ request: ForecastRequest, pool: ThreadPool?) throws -> Forecast {
        var result = Forecast(point: [], quantiles: [])
        for (c, channel) in request.history.enumerated() {
            let f = try forecast(history: request.preciseHistory?[c] ?? channel.map(Double.init), horizon: request.horizon, context: request.context,
                                 quantileLevels: request.quantileLevels.map(Double.init), sampling: sampling(request),
                                 seed: request.seed &+ UInt64(c) &* 0xD1B5_4A32_D192_ED03, pool: pool)
            result.point.append(f.point.map(Float.init))
            if !request.quantileLevels.isEmpty { result.quantiles.append(f.quantiles.map { $0.map(Float.init) }) }
        }
        return result
    }

    /// How paths are drawn: `paths` samples with the model's top-k and temperature, or one greedy path.
    public struct Sampling: Sendable, Equatable {
        public var paths: Int
        public var greedy: Bool
        public var topK: Int
        public var temperature: Float

        public init(paths: Int, greedy: Bool, topK: Int, temperature: Float) {
            self.paths = paths
            self.greedy = greedy
            self.topK = topK
            self.temperature = temperature
        }
    }

    /// The sampling a request asks for, with the model's defaults.
    public func sampling(_ request: ForecastRequest) -> Sampling {
        sampling(samples: request.samples, greedy: request.greedy)
    }

    public func sampling(samples: Int, greedy: Bool) -> Sampling {
        Sampling(paths: greedy ? 1 : (samples > 0 ? samples : config.samples), greedy: greedy,
                 topK: config.topK, temperature: config.temperature)
    }

    /// A forecast in float64 (the official code's precision), NaN where no path gave a value.
    public struct Result: Sendable {
        /// [step]
        public var point: [Double]
        /// [quantile][step]
        public var quantiles: [[Double]]
        /// Prompt tokens per chunk.
        public var promptTokens: [Int]
    }

    /// Forecasts `horizon` steps after `history` (NaN = missing; at least one value present).
    public func forecast(history: [Double], horizon: Int, context: String? = nil, quantileLevels: [Double] = [],
                         sampling: Sampling, seed: UInt64, pool: ThreadPool?) throws -> Result {
        guard !history.isEmpty else { throw RuntimeError.invalidArgument(name: "history", reason: "is empty") }
        guard history.contains(where: { !$0.isNaN }) else {
            throw RuntimeError.invalidArgument(name: "history", reason: "all \(history.count) values are missing (NaN)")
        }
        if let i = history.firstIndex(where: { $0.isInfinite }) {
            throw RuntimeError.invalidArgument(name: "history", reason: "value \(history[i]) at step \(i) is not finite")
        }
        guard horizon > 0 else { throw RuntimeError.invalidArgument(name: "horizon", reason: "\(horizon) must be > 0") }
        guard sampling.paths > 0, sampling.paths <= 1024 else {
            throw RuntimeError.invalidArgument(name: "samples", reason: "\(sampling.paths) must be in 1...1024")
        }
        // Each chunk's prompt holds the whole series so far: refuse a horizon whose last chunk
        // cannot fit the context before running anything (its prompt has as many tokens as one
        // of that length, whatever the values).
        let limit = backbone.config.contextLength
        let last = (horizon - 1) % config.maxChunk + 1
        let longest = history.count + horizon - last
        guard longest <= limit else {
            throw RuntimeError.invalidArgument(name: "horizon", reason: "\(horizon) steps after \(history.count) need prompts of more than the \(limit) positions the model has")
        }
        let lastPrompt = tokenizer.encode(ChatTimePrompt.forecast(series: ChatTimeValues.serialize([Int?](repeating: 0, count: longest)), context: context),
                                          addSpecial: true, parseSpecial: true).count
        guard lastPrompt + 2 * last + 8 <= limit else {
            throw RuntimeError.invalidArgument(name: "horizon", reason: "\(horizon) steps after \(history.count): the last prompt and its answer need \(lastPrompt + 2 * last + 8) positions, more than the \(limit) the model has")
        }
        var series = history
        var point: [Double] = []
        var bands = [[Double]](repeating: [], count: quantileLevels.count)
        var promptTokens: [Int] = []
        var remaining = horizon
        var chunk: UInt64 = 0
        while remaining > 0 {
            let n = min(remaining, config.maxChunk)
            guard let (bins, scaler) = ChatTimeValues.discretize(series) else {
                throw RuntimeError.invalidArgument(name: "history", reason: "all values are missing (NaN)")
            }
            let prompt = ChatTimePrompt.forecast(series: ChatTimeValues.serialize(bins), context: context)
            let ids = tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
            promptTokens.append(ids.count)
            let paths = try generate(prompt: ids, newTokens: 2 * n + 8, maskEOS: true, sampling: sampling,
                                     seed: seed &+ chunk &* 0x9E37_79B9_7F4A_7C15, pool: pool)
            let values: [[Double]] = paths.map { path in
                var v = ChatTimeValues.parse(ChatTimePrompt.response(prompt: prompt, continuation: continuation(prompt: ids, generated: path)))
                    .map { scaler.unscaled($0) }
                if v.count < n { v += [Double](repeating: .nan, count: n - v.count) }
                return Array(v.prefix(n))
            }
            for t in 0..<n {
                let column = values.map { $0[t] }
                point.append(Self.nanQuantile(column, 0.5))
                for (q, level) in quantileLevels.enumerated() { bands[q].append(Self.nanQuantile(column, level)) }
            }
            series += point.suffix(n)
            remaining -= n
            chunk += 1
        }
        return Result(point: point, quantiles: bands, promptTokens: promptTokens)
    }

    /// An analysis: the voted choice, the choice of each sampled answer (nil where none), and the
    /// answers' texts.
    public struct Analysis: Sendable {
        public var answer: String
        public var choices: [String?]
        public var texts: [String]
    }

    /// Answers a multiple-choice `question` about `series` (NaN = missing): `sampling.paths`
    /// answers of up to `answerTokens` tokens, each cut at its first ".", its first `(a)`/`(b)`/
    /// `(c)` taken, and the majority voted (ties: the first seen). Answers without a choice do
    /// not vote; when none has one, `RuntimeError.noChoice` (the official code crashes).
    public func analyze(series: [Double], question: String, sampling: Sampling, seed: UInt64, pool: ThreadPool?) throws -> Analysis {
        guard !series.isEmpty else { throw RuntimeError.invalidArgument(name: "series", reason: "is empty") }
        if let i = series.firstIndex(where: { $0.isInfinite }) {
            throw RuntimeError.invalidArgument(name: "series", reason: "value \(series[i]) at step \(i) is not finite")
        }
        guard let (bins, _) = ChatTimeValues.discretize(series) else {
            throw RuntimeError.invalidArgument(name: "series", reason: "all \(series.count) values are missing (NaN)")
        }
        guard sampling.paths > 0, sampling.paths <= 1024 else {
            throw RuntimeError.invalidArgument(name: "samples", reason: "\(sampling.paths) must be in 1...1024")
        }
        let prompt = ChatTimePrompt.analysis(series: ChatTimeValues.serialize(bins), question: question)
        let ids = tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
        let paths = try generate(prompt: ids, newTokens: config.answerTokens, maskEOS: false, sampling: sampling, seed: seed, pool: pool)
        let texts = paths.map { ChatTimePrompt.response(prompt: prompt, continuation: continuation(prompt: ids, generated: $0)) }
        let choices = texts.map(ChatTimePrompt.choice(in:))
        guard let answer = ChatTimePrompt.vote(choices.compactMap { $0 }) else {
            throw RuntimeError.noChoice(samples: texts.count, first: texts.first ?? "")
        }
        return Analysis(answer: answer, choices: choices, texts: texts)
    }

    /// Runs `prompt` once and draws `sampling.paths` continuations of `newTokens` tokens from it.
    /// Every path restarts at the end of the prompt in the same KV cache (positions after it are
    /// overwritten), so the prompt is prefilled once. `maskEOS`: EOS is never drawn (the official
    /// forecast's min_new_tokens); otherwise a path ends at EOS.
    func generate(prompt: [Int32], newTokens: Int, maskEOS: Bool, sampling: Sampling, seed: UInt64, pool: ThreadPool?) throws -> [[Int32]] {
        let capacity = prompt.count + newTokens
        guard capacity <= backbone.config.contextLength else {
            throw RuntimeError.promptTooLong(tokens: capacity, context: backbone.config.contextLength)
        }
        let cache = try backbone.makeCache(capacity: capacity, half: false)
        let promptLogits = try PromptRows(tokens: prompt).run(backbone: backbone, cache: cache, start: 0, output: .lastLogits,
                                                              batchSize: 64, state: nil, pool: pool)
        let eos = tokenizer.eosID
        var paths: [[Int32]] = []
        for p in 0..<sampling.paths {
            var params = SamplerParams()
            params.temperature = sampling.greedy ? 0 : sampling.temperature
            params.topK = sampling.topK
            params.seed = seed &+ UInt64(p) &* 0xBF58_476D_1CE4_E5B9
            var sampler = try Sampler(params)
            var logits = promptLogits
            var path: [Int32] = []
            for step in 0..<newTokens {
                if maskEOS, let eos { logits[Int(eos)] = -.infinity }
                let next = logits.withUnsafeMutableBufferPointer { sampler.sample($0, history: []) }
                if !maskEOS, next == eos { break }
                path.append(next)
                if step + 1 < newTokens {
                    logits = try PromptRows(tokens: [next]).run(backbone: backbone, cache: cache, start: prompt.count + step,
                                                                output: .lastLogits, batchSize: 1, state: nil, pool: pool)
                }
            }
            paths.append(path)
        }
        return paths
    }

    /// The generated text as the official pipeline sees it: decode(prompt + generated) minus
    /// decode(prompt), where decoding is the slow LlamaTokenizer's: added tokens are separate
    /// pieces, the text runs between them decoded by SentencePiece, all joined by one space.
    func continuation(prompt: [Int32], generated: [Int32]) -> String {
        let whole = Array(slowDecode(prompt + generated).utf8)
        let head = slowDecode(prompt).utf8.count
        return String(decoding: whole[min(head, whole.count)...], as: UTF8.self)
    }

    func slowDecode(_ ids: [Int32]) -> String {
        var pieces: [String] = []
        var run: [Int32] = []
        func flush() {
            if !run.isEmpty {
                let s = tokenizer.decode(run, skipSpecial: true)
                if !s.isEmpty { pieces.append(s) }
                run = []
            }
        }
        for id in ids {
            if tokenizer.isSpecial(id) { continue }
            if addedIDs.contains(id), let p = tokenizer.piece(id) {
                flush()
                pieces.append(p)
            } else {
                run.append(id)
            }
        }
        flush()
        return pieces.joined(separator: " ")
    }

    /// numpy's `nanquantile` (linear interpolation) of the non-NaN values; NaN when there are none.
    static func nanQuantile(_ values: [Double], _ q: Double) -> Double {
        let v = values.filter { !$0.isNaN }.sorted()
        guard !v.isEmpty else { return .nan }
        if q == 0.5 {
            // numpy's median: the middle value, or the mean of the two middle ones.
            let m = v.count / 2
            return v.count % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2
        }
        let h = Double(v.count - 1) * q
        let lo = Int(h.rounded(.down))
        let hi = min(lo + 1, v.count - 1)
        let t = h - Double(lo)
        let d = v[hi] - v[lo]
        return t >= 0.5 ? v[hi] - d * (1 - t) : v[lo] + d * t
    }
}

/// ChatTime's inference settings (`chattime.*` metadata, defaults the official ones).
public struct ChatTimeConfig: Sendable, Equatable {
    public var maxChunk = 16
    public var samples = 8
    public var topK = 100
    public var temperature: Float = 1
    public var answerTokens = 16

    public init(metadata m: Metadata) throws {
        typealias K = MetadataKeys.ChatTime
        func int(_ key: String, _ range: ClosedRange<Int>, _ fallback: Int) throws -> Int {
            guard let v = m[key] else { return fallback }
            guard let i = v.intValue, range.contains(i) else {
                throw RuntimeError.badHyperparameter(key: key, reason: "must be an integer in \(range)")
            }
            return i
        }
        maxChunk = try int(K.maxChunk, 1...4096, 16)
        samples = try int(K.samples, 1...1024, 8)
        topK = try int(K.topK, 0...1 << 20, 100)
        answerTokens = try int(K.answerTokens, 1...4096, 16)
        if let v = m[K.temperature] {
            guard let d = v.doubleValue, d > 0, d.isFinite else {
                throw RuntimeError.badHyperparameter(key: K.temperature, reason: "must be a number > 0")
            }
            temperature = Float(d)
        }
    }
}
