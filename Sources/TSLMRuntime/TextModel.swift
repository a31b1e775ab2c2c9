import TSLMFormat
import TSLMKernels

/// A decoder-only text model: embeddings in, logits out, keys and values kept in a `KVCache`.
///
/// The input is embeddings, not token ids, so that soft tokens (OpenTSLM SoftPrompt) and
/// reprogrammed patches (Time-LLM) enter the same way text does.
public protocol TextModel: AnyObject, Sendable {
    var config: TextModelConfig { get }

    /// Writes the input embeddings of `tokens` into `out` [tokens.count, hidden] (including any
    /// scaling the architecture applies to token embeddings, e.g. Gemma's √hidden).
    func embed(_ tokens: [Int32], into out: UnsafeMutablePointer<Float>) throws

    /// Runs `x` [n, hidden] at positions start..<start+n (x is used as scratch), storing keys and
    /// values in `cache` and using its scratch buffers. Writes what `output` asks for into `out`
    /// (`ForwardOutput.count`). `hook`, when given, runs on the residual stream before every
    /// decoder layer (OpenTSLM-Flamingo's gated cross-attention); nil costs nothing.
    func forward(_ x: UnsafeMutablePointer<Float>, count n: Int, start: Int, cache: KVCache,
                 pool: ThreadPool?, output: ForwardOutput, into out: UnsafeMutablePointer<Float>,
                 hook: (any DecoderLayerHook)?) throws
}

/// What a forward call writes.
public enum ForwardOutput: Sendable, Equatable {
    /// Logits of the last position: [vocab].
    case lastLogits
    /// Logits of every position: [n, vocab].
    case allLogits
    /// The final hidden states of every position, after the final norm (what Hugging Face calls
    /// `last_hidden_state`; Time-LLM reads these): [n, hidden].
    case hiddenStates

    /// Floats written for `n` positions of a model with `config`.
    public func count(positions n: Int, config: TextModelConfig) -> Int {
        switch self {
        case .lastLogits: config.vocabularySize
        case .allLogits: n * config.vocabularySize
        case .hiddenStates: n * config.hidden
        }
    }
}

/// Work that runs on a decoder's residual stream before each of its layers, e.g. the gated
/// cross-attention blocks OpenTSLM-Flamingo inserts in front of every layer of a frozen backbone.
public protocol DecoderLayerHook: AnyObject {
    /// Updates `x` [n, hidden] (positions start..<start+n) in place before layer `layer` runs.
    func beforeLayer(_ layer: Int, x: UnsafeMutablePointer<Float>, count n: Int, start: Int, pool: ThreadPool?) throws
}

extension TextModel {
    /// `forward` without a layer hook (a plain text model).
    public func forward(_ x: UnsafeMutablePointer<Float>, count n: Int, start: Int, cache: KVCache,
                        pool: ThreadPool?, output: ForwardOutput, into out: UnsafeMutablePointer<Float>) throws {
        try forward(x, count: n, start: start, cache: cache, pool: pool, output: output, into: out, hook: nil)
    }

    /// A KV cache sized for this model.
    public func makeCache(capacity: Int, half: Bool = false) throws -> KVCache {
        try KVCache(layers: config.layers, capacity: capacity, width: config.kvHeads * config.headDim, half: half)
    }
}

/// Maps `general.architecture` to a model constructor. Adding an architecture = one file + one line.
public enum BackboneRegistry {
    static let constructors: [String: @Sendable (ModelWeights) throws -> any TextModel] = [
        "llama": { try LlamaModel(weights: $0) },
        "gemma3": { try Gemma3Model(weights: $0) },
        "gpt2": { try GPT2Model(weights: $0) },
    ]

    public static var names: [String] { constructors.keys.sorted() }

    /// Builds the model for `file`'s architecture; an unknown one is an error naming it.
    public static func load(_ file: TSLMFile) throws -> any TextModel {
        let arch = file.metadata.string("general.architecture") ?? "(none)"
        guard let make = constructors[arch] else { throw RuntimeError.unknownArchitecture(arch) }
        return try make(ModelWeights(file: file))
    }
}
