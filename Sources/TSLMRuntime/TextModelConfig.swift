import TSLMFormat

/// Hyperparameters of a decoder-only text model, read from `<arch>.*` metadata.
public struct TextModelConfig: Sendable, Equatable {
    public var architecture: String
    public var vocabularySize: Int
    /// Model width.
    public var hidden: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    /// MLP inner width.
    public var feedForward: Int
    public var contextLength: Int
    /// RMSNorm / LayerNorm epsilon.
    public var normEpsilon: Float
    public var ropeBase: Float
    /// "llama3" scaling parameters, when the model uses them.
    public var ropeScaling: RopeScaling?
    /// Gemma-3: RoPE base of the sliding-window layers, the window, and which layers slide.
    public var localRopeBase: Float?
    public var slidingWindow: Int?
    public var slidingLayers: [Bool]
    /// Multiplier of q·k (1/√head_dim unless the model says otherwise).
    public var attentionScale: Float
    public var finalLogitSoftcap: Float?

    public struct RopeScaling: Sendable, Equatable {
        public var type: String
        public var factor: Float
        public var lowFreqFactor: Float
        public var highFreqFactor: Float
        public var originalContextLength: Int
    }

    /// Reads `<arch>.*` keys; missing or absurd values are errors naming the key.
    public init(metadata m: Metadata, architecture arch: String, vocabularyFallback: Int?) throws {
        func int(_ k: String, default d: Int? = nil, max: Int = 1 << 24) throws -> Int {
            guard let v = m.int("\(arch).\(k)") ?? d else {
                throw RuntimeError.badHyperparameter(key: "\(arch).\(k)", reason: "missing")
            }
            guard v > 0, v <= max else { throw RuntimeError.badHyperparameter(key: "\(arch).\(k)", reason: "\(v) is out of range 1...\(max)") }
            return v
        }
        func float(_ k: String, default d: Float? = nil) throws -> Float {
            guard let v = m.double("\(arch).\(k)").map(Float.init) ?? d else {
                throw RuntimeError.badHyperparameter(key: "\(arch).\(k)", reason: "missing")
            }
            guard v.isFinite else { throw RuntimeError.badHyperparameter(key: "\(arch).\(k)", reason: "not finite") }
            return v
        }
        architecture = arch
        hidden = try int("embedding_length")
        layers = try int("block_count", max: 4096)
        heads = try int("attention.head_count", max: 4096)
        kvHeads = try int("attention.head_count_kv", default: heads, max: 4096)
        guard heads % kvHeads == 0 else {
            throw RuntimeError.badHyperparameter(key: "\(arch).attention.head_count_kv", reason: "\(kvHeads) does not divide head_count \(heads)")
        }
        headDim = try int("attention.key_length", default: hidden / heads, max: 4096)
        feedForward = try int("feed_forward_length")
        contextLength = try int("context_length")
        vocabularySize = try int("vocab_size", default: vocabularyFallback, max: 1 << 22)
        normEpsilon = try float(arch == "gpt2" ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon", default: 1e-5)
        ropeBase = try float("rope.freq_base", default: 10000)
        if let type = m.string("\(arch).rope.scaling.type"), type == "llama3" {
            ropeScaling = RopeScaling(type: type, factor: try float("rope.scaling.factor"),
                                      lowFreqFactor: try float("rope.scaling.low_freq_factor", default: 1),
                                      highFreqFactor: try float("rope.scaling.high_freq_factor", default: 4),
                                      originalContextLength: try int("rope.scaling.original_context_length", default: 8192))
        } else if let type = m.string("\(arch).rope.scaling.type"), type != "none", type != "default" {
            throw RuntimeError.badHyperparameter(key: "\(arch).rope.scaling.type", reason: "'\(type)' is not supported (llama3 is)")
        }
        attentionScale = 1 / Float(headDim).squareRoot()
        slidingLayers = Array(repeating: false, count: layers)
        if arch == "gemma3" {
            localRopeBase = try float("rope.local_freq_base", default: 10000)
            slidingWindow = try int("attention.sliding_window", default: 4096)
            if let types = m.strings("gemma3.attention.layer_types") {
                guard types.count == layers else {
                    throw RuntimeError.badHyperparameter(key: "gemma3.attention.layer_types", reason: "\(types.count) entries for \(layers) layers")
                }
                slidingLayers = types.map { $0 == "sliding_attention" }
            } else {
                let pattern = try int("attention.sliding_window_pattern", default: 6)
                slidingLayers = (0..<layers).map { ($0 + 1) % pattern != 0 }
            }
            if let s = m.double("gemma3.attention.query_pre_attn_scalar") { attentionScale = 1 / Float(s).squareRoot() }
            finalLogitSoftcap = m.double("gemma3.final_logit_softcapping").map(Float.init)
        }
    }
}
