import TSLMFormat

/// The two OpenTSLM architectures (`timeseries.model`).
public enum OpenTSLMVariant: String, Sendable, CaseIterable {
    /// Soft prompting: each series becomes soft tokens spliced into the prompt.
    case softPrompt = "opentslm_sp"
    /// Flamingo: a perceiver turns all series into 64 latents that gated cross-attention blocks
    /// in front of every decoder layer attend to.
    case flamingo = "opentslm_flamingo"
}

/// Hyperparameters of OpenTSLM's time-series parts, read from `timeseries.*` metadata (see
/// formats/tslm.md, "Time-series models").
public struct OpenTSLMConfig: Sendable, Equatable {
    public var variant: OpenTSLMVariant
    /// Samples per patch (4 upstream).
    public var patchSize: Int
    /// Encoder width (128 upstream).
    public var encoderDim: Int
    /// Rows of the learned position embedding: the most patches one series may have.
    public var maxPatches: Int
    /// Transformer layers after the patch embedding (6 for SoftPrompt, 0 for Flamingo).
    public var encoderLayers: Int
    public var encoderHeads: Int
    public var encoderFeedForward: Int
    /// LayerNorm epsilon of the encoder, projector, perceiver and cross-attention (PyTorch's 1e-5).
    public var layerNormEpsilon: Float

    // Flamingo only.
    public var latentCount: Int
    public var perceiverLayers: Int
    public var perceiverHeads: Int
    public var perceiverHeadDim: Int
    public var perceiverFeedForward: Int
    /// A gated cross-attention block runs before decoder layer l when (l + 1) % crossAttentionEvery == 0.
    public var crossAttentionEvery: Int
    public var crossAttentionHeads: Int
    public var crossAttentionHeadDim: Int
    public var crossAttentionFeedForward: Int
    /// `<image>`: each occurrence advances the "text time" of the tokens that follow.
    public var mediaTokenID: Int32?
    /// `<|endofchunk|>`.
    public var endOfChunkTokenID: Int32?

    /// The preset a file was trained with (`timeseries.preset`), if the converter recorded one.
    public var preset: String?

    /// Reads `timeseries.*`; a missing or absurd value is an error naming the key.
    public init(metadata m: Metadata, hidden: Int, layers: Int, vocabularySize: Int) throws {
        func int(_ k: String, default d: Int? = nil, min lo: Int = 1, max hi: Int = 1 << 20) throws -> Int {
            let key = "timeseries." + k
            guard let v = m.int(key) ?? d else { throw RuntimeError.badHyperparameter(key: key, reason: "missing") }
            guard v >= lo, v <= hi else { throw RuntimeError.badHyperparameter(key: key, reason: "\(v) is out of range \(lo)...\(hi)") }
            return v
        }
        guard let name = m.string("timeseries.model") else {
            throw RuntimeError.badHyperparameter(key: "timeseries.model", reason: "missing")
        }
        guard let v = OpenTSLMVariant(rawValue: name) else {
            throw RuntimeError.badHyperparameter(key: "timeseries.model", reason: "'\(name)' is not one of \(OpenTSLMVariant.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        variant = v
        patchSize = try int("patch_size", default: 4, max: 4096)
        encoderDim = try int("encoder.embedding_length", default: 128, max: 1 << 16)
        maxPatches = try int("encoder.max_patches", max: 1 << 24)
        encoderLayers = try int("encoder.block_count", default: v == .softPrompt ? 6 : 0, min: 0, max: 256)
        encoderHeads = try int("encoder.head_count", default: 8, max: 4096)
        encoderFeedForward = try int("encoder.feed_forward_length", default: 1024)
        guard encoderDim % encoderHeads == 0 else {
            throw RuntimeError.badHyperparameter(key: "timeseries.encoder.head_count", reason: "\(encoderHeads) does not divide the encoder width \(encoderDim)")
        }
        let eps = m.double("timeseries.encoder.layer_norm_epsilon") ?? 1e-5
        guard eps.isFinite, eps > 0 else {
            throw RuntimeError.badHyperparameter(key: "timeseries.encoder.layer_norm_epsilon", reason: "\(eps) must be a positive number")
        }
        layerNormEpsilon = Float(eps)
        latentCount = try int("perceiver.latent_count", default: 64)
        perceiverLayers = try int("perceiver.block_count", default: 6, min: 0, max: 256)
        perceiverHeads = try int("perceiver.head_count", default: 8, max: 4096)
        perceiverHeadDim = try int("perceiver.key_length", default: 64, max: 4096)
        perceiverFeedForward = try int("perceiver.feed_forward_length", default: 4 * encoderDim)
        crossAttentionEvery = try int("xattn.every_n_layers", default: 1, max: 4096)
        crossAttentionHeads = try int("xattn.head_count", default: 8, max: 4096)
        crossAttentionHeadDim = try int("xattn.key_length", default: 64, max: 4096)
        crossAttentionFeedForward = try int("xattn.feed_forward_length", default: 4 * hidden, max: 1 << 24)
        func token(_ k: String) throws -> Int32? {
            guard let id = m.int("timeseries." + k) else { return nil }
            guard id >= 0, id < vocabularySize else {
                throw RuntimeError.badHyperparameter(key: "timeseries." + k, reason: "token id \(id) is outside the vocabulary (0..<\(vocabularySize))")
            }
            return Int32(id)
        }
        mediaTokenID = try token("media_token_id")
        endOfChunkTokenID = try token("end_of_chunk_token_id")
        if v == .flamingo, mediaTokenID == nil {
            throw RuntimeError.badHyperparameter(key: "timeseries.media_token_id", reason: "missing (a Flamingo model needs its <image> token)")
        }
        preset = m.string("timeseries.preset")
    }

    /// Patches of a series of `length` samples (zero-padded up to a multiple of the patch size).
    public func patchCount(length: Int) -> Int { (length + patchSize - 1) / patchSize }

    /// The longest series the position embedding covers, in samples.
    public var maxLength: Int { maxPatches * patchSize }
}
