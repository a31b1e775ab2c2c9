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
                    state: (any PromptState)?, pool: ThreadPool?) throws -> [Float] {
        guard !tokens.isEmpty else { throw RuntimeError.emptyPrompt }
        guard start >= 0, start + tokens.count <= cache.capacity else { throw RuntimeError.contextFull(context: cache.capacity) }
        let config = backbone.config
        try checkTokens(tokens.filter { $0 >= 0 }, vocabularySize: config.vocabularySize)
        let perPosition = output == .lastLogits ? 0 : output.count(positions: 1, config: config)
        var out = [Float](repeating: 0, count: output.count(positions: tokens.count, config: config))
        state?.beginCall(tokens)
        let batch = max(1, batchSize)
        let x = cache.scratch.buffer(Self.inputSlot, min(batch, tokens.count) * config.hidden)
        var done = 0
        while done < tokens.count {
            let end = min(done + batch, tokens.count)
            state?.beginBatch(done..<end)
            try embed(done..<end, backbone: backbone, into: x.pointer)
            try out.withUnsafeMutableBufferPointer { o in
                try backbone.forward(x.pointer, count: end - done, start: start + done, cache: cache, pool: pool,
                                     output: output, into: o.baseAddress! + done * perPosition, hook: state)
            }
            done = end
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
