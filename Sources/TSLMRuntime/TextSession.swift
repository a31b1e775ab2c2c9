import Foundation
import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// A loaded `.tslm` text model with its tokenizer.
public final class LoadedModel: @unchecked Sendable {
    public let file: TSLMFile
    public let model: any TextModel
    public let tokenizer: Tokenizer

    /// Opens, validates and maps `path`, builds the model for its architecture and its tokenizer.
    public init(path: String, mmap: Bool = true) throws {
        file = try TSLMFile(path: path, mmap: mmap)
        model = try ModelRegistry.load(file)
        do {
            tokenizer = try Tokenizer(metadata: file.metadata)
        } catch {
            throw RuntimeError.tokenizer("\(error)")
        }
    }

    /// The chat template named by the file's `tokenizer.chat_template`, if recognized.
    public var chatTemplate: ChatTemplate? { ChatTemplate.detect(jinja: file.metadata.string("tokenizer.chat_template")) }
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
    }

    /// Forgets everything in the cache.
    public func reset() { tokens = [] }

    /// Runs `newTokens` through the model (in batches) and returns the logits after the last.
    @discardableResult
    public func append(_ newTokens: [Int32]) throws -> [Float] {
        guard !newTokens.isEmpty else { throw RuntimeError.emptyPrompt }
        guard tokens.count + newTokens.count <= cache.capacity else {
            if tokens.isEmpty { throw RuntimeError.promptTooLong(tokens: newTokens.count, context: cache.capacity) }
            throw RuntimeError.contextFull(context: cache.capacity)
        }
        try checkTokens(newTokens, vocabularySize: model.config.vocabularySize)
        var logits = [Float](repeating: 0, count: model.config.vocabularySize)
        var done = 0
        while done < newTokens.count {
            let batch = Array(newTokens[done..<min(done + max(1, batchSize), newTokens.count)])
            try logits.withUnsafeMutableBufferPointer { lp in
                try appendEmbeddings(count: batch.count, logits: lp.baseAddress!) { x in try model.embed(batch, into: x) }
            }
            tokens += batch
            done += batch.count
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
        try model.forward(x.pointer, count: count, start: start, cache: cache, pool: pool, logits: logits, allPositions: false)
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

    public func generate(promptTokens: [Int32], maxTokens: Int, sampler params: SamplerParams = SamplerParams(),
                         stop: [String] = [], onText: ((String) -> Bool)? = nil) throws -> GenerationResult {
        guard maxTokens >= 0 else { throw RuntimeError.invalidArgument(name: "max tokens", reason: "\(maxTokens) must be ≥ 0") }
        guard !promptTokens.isEmpty else { throw RuntimeError.emptyPrompt }
        var sampler = try Sampler(params)
        let t0 = Date()
        var logits = try append(promptTokens)
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
        if reason != .stopString && reason != .cancelled {
            pending += decoder.finish()
            text += pending
            if let onText, !pending.isEmpty { _ = onText(pending) }
        }
        let t2 = Date()
        return GenerationResult(text: text, tokens: generated, stopReason: reason, promptTokens: promptTokens.count,
                                promptSeconds: t1.timeIntervalSince(t0), generatedTokens: generated.count,
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
