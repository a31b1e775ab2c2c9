import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// A family whose inputs become a prompt for its text backbone, so that `TextSession` (the one
/// generation loop) can run and generate with it: text models, OpenTSLM, later ChatTime. The
/// family decides how text and series enter the backbone (`promptRows`), whether they run as
/// they are appended or together at generation (`defersPrompt`), and what it keeps per session
/// next to the KV cache (`makePromptState`).
public protocol PromptFamily: ModelFamily {
    var backbone: any TextModel { get }
    var tokenizer: Tokenizer { get }

    /// false: text runs as it is appended (text models). true: text and series are kept until
    /// generation and run as one prompt (OpenTSLM pads all series of a prompt together, and a
    /// Flamingo prompt is one text with one media item).
    var defersPrompt: Bool { get }

    /// A fresh per-session state (e.g. Flamingo's media item and text times), nil when none.
    func makePromptState() -> (any PromptState)?

    /// Checks and prepares `channels` series of `length` samples (values[c * length + t], finite,
    /// checked by the session) for the prompt: normalization, description. `position` is the
    /// index of the first of them among the series of the prompt under construction (placeholders
    /// such as `{channel}` and `{axis}` follow it); `names` are the channels' names, when known.
    /// Families without series input throw `RuntimeError.wrongKind`.
    func prepareSeries(_ values: [Float], length: Int, channels: Int, position: Int, description: String?,
                       names: [String?]?, preset: SeriesPreset?) throws -> [PreparedSeries]

    /// The rows (token ids and input embeddings) of a prompt made of `parts`. `startsContext`:
    /// the prompt is the first thing in the session. `countOnly`: only the positions matter (soft
    /// rows may be left empty and no per-session state is touched), for context checks.
    func promptRows(_ parts: [PromptPart], startsContext: Bool, countOnly: Bool, state: (any PromptState)?,
                    pool: ThreadPool?) throws -> PromptRows
}

extension PromptFamily {
    public var language: LanguageModel? { LanguageModel(backbone: backbone, tokenizer: tokenizer) }
}

extension PromptFamily {
    /// The rows of a prompt of text and token parts only (families whose series do not enter as
    /// prompt parts): text through the tokenizer (special tokens parsed), tokens as they are; a
    /// series part is `RuntimeError.wrongKind`.
    public func textRows(_ parts: [PromptPart]) throws -> PromptRows {
        var rows = PromptRows()
        for part in parts {
            switch part {
            case let .text(t, special): rows.tokens += tokenizer.encode(t, addSpecial: special, parseSpecial: true)
            case let .tokens(ids): rows.tokens += ids
            case .series: throw RuntimeError.wrongKind(operation: "appending a series", kind: kind.rawValue)
            }
        }
        return rows
    }
}

/// One piece of a prompt, in order.
public enum PromptPart: Sendable {
    /// Text; `addSpecial`: BOS first when the tokenizer adds one.
    case text(String, addSpecial: Bool)
    /// Token ids, run as they are.
    case tokens([Int32])
    /// A prepared series (normalized values and description).
    case series(PreparedSeries)
}

/// What a prompt family keeps per session next to the KV cache; runs as the backbone's decoder
/// layer hook (e.g. OpenTSLM-Flamingo's gated cross-attention over the current media item).
public protocol PromptState: DecoderLayerHook {
    /// Forgets everything (the session was reset).
    func reset()
    /// The rows `tokens` are about to run as one call (in batches).
    func beginCall(_ tokens: [Int32])
    /// Positions `range` of that call run next.
    func beginBatch(_ range: Range<Int>)
}

/// How a caller follows and stops a long prompt run (a 10k-sample series prompt takes tens of
/// seconds): `progress` after every batch with the positions run and the total, `shouldAbort`
/// polled before every batch (batches are then at most `abortBatch` positions) and before every
/// generated token. An abort throws `RuntimeError.aborted` (a generation stops with
/// `StopReason.aborted`); positions of an aborted run never enter the context, so the session
/// stays usable. Closures may be called from the thread that runs the session only.
public final class RunControl: @unchecked Sendable {
    public var progress: ((_ done: Int, _ total: Int) -> Void)?
    public var shouldAbort: (() -> Bool)?
    /// The most positions run between two abort checks.
    public static let abortBatch = 16

    public init(progress: ((Int, Int) -> Void)? = nil, shouldAbort: (() -> Bool)? = nil) {
        self.progress = progress
        self.shouldAbort = shouldAbort
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

    /// Runs the rows at positions start..<start+count of `cache` as one call, in batches of
    /// `batchSize`, with `state` (a family's per-session state) as the decoder layer hook, and
    /// returns what `output` asks for: the logits after the last position, or [count, vocab]
    /// logits or [count, hidden] hidden states of every position. This is the runtime's one
    /// forward driver (`TextSession.run` and the forecasters that read a backbone's hidden
    /// states call it).
    public func run(backbone: any TextModel, cache: KVCache, start: Int, output: ForwardOutput, batchSize: Int,
                    state: (any PromptState)?, pool: ThreadPool?, control: RunControl? = nil) throws -> [Float] {
        guard !tokens.isEmpty else { throw RuntimeError.emptyPrompt }
        guard start >= 0, start + tokens.count <= cache.capacity else { throw RuntimeError.contextFull(context: cache.capacity) }
        let config = backbone.config
        try checkTokens(tokens.filter { $0 >= 0 }, vocabularySize: config.vocabularySize)
        let perPosition = output == .lastLogits ? 0 : output.count(positions: 1, config: config)
        var out = [Float](repeating: 0, count: output.count(positions: tokens.count, config: config))
        state?.beginCall(tokens)
        // With an abort check, batches are at most `RunControl.abortBatch` positions apart.
        let batch = max(1, control?.shouldAbort == nil ? batchSize : min(batchSize, RunControl.abortBatch))
        let x = cache.scratch.buffer(Self.inputSlot, min(batch, tokens.count) * config.hidden)
        var done = 0
        while done < tokens.count {
            if let abort = control?.shouldAbort, abort() { throw RuntimeError.aborted(done: done, total: tokens.count) }
            let end = min(done + batch, tokens.count)
            state?.beginBatch(done..<end)
            try embed(done..<end, backbone: backbone, into: x.pointer)
            try out.withUnsafeMutableBufferPointer { o in
                try backbone.forward(x.pointer, count: end - done, start: start + done, cache: cache, pool: pool,
                                     output: output, into: o.baseAddress! + done * perPosition, hook: state)
            }
            done = end
            control?.progress?(done, tokens.count)
        }
        return out
    }

    /// The scratch slot of the input embeddings (after the backbones' own slots).
    static let inputSlot = 16

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
