import TSLMFormat

/// The two OpenTSLM architectures, each a family (`general.family`).
public enum OpenTSLMVariant: String, Sendable, CaseIterable {
    /// Soft prompting: each series becomes soft tokens spliced into the prompt.
    case softPrompt = "opentslm-sp"
    /// Flamingo: a perceiver turns all series into 64 latents that gated cross-attention blocks
    /// in front of every decoder layer attend to.
    case flamingo = "opentslm-flamingo"

    public init?(family: ModelFamilyName) {
        switch family {
        case .openTSLMSoftPrompt: self = .softPrompt
        case .openTSLMFlamingo: self = .flamingo
        default: return nil
        }
    }

    public var family: ModelFamilyName { self == .softPrompt ? .openTSLMSoftPrompt : .openTSLMFlamingo }
}

/// Hyperparameters of OpenTSLM's time-series parts, read from `opentslm.*` metadata (see
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

    /// The preset the model was trained with (`opentslm.preset`), if the converter recorded one.
    public var preset: SeriesPreset?

    /// Reads `opentslm.*`; a missing or absurd value is an error naming the key.
    public init(metadata m: Metadata, variant v: OpenTSLMVariant, hidden: Int, layers: Int, vocabularySize: Int) throws {
        typealias K = MetadataKeys.OpenTSLM
        func int(_ key: String, default d: Int? = nil, min lo: Int = 1, max hi: Int = 1 << 20) throws -> Int {
            guard let v = m.int(key) ?? d else { throw RuntimeError.badHyperparameter(key: key, reason: "missing") }
            guard v >= lo, v <= hi else { throw RuntimeError.badHyperparameter(key: key, reason: "\(v) is out of range \(lo)...\(hi)") }
            return v
        }
        variant = v
        patchSize = try int(K.patchSize, default: 4, max: 4096)
        encoderDim = try int(K.encoderWidth, default: 128, max: 1 << 16)
        maxPatches = try int(K.encoderMaxPatches, max: 1 << 24)
        encoderLayers = try int(K.encoderBlocks, default: v == .softPrompt ? 6 : 0, min: 0, max: 256)
        encoderHeads = try int(K.encoderHeads, default: 8, max: 4096)
        encoderFeedForward = try int(K.encoderFeedForward, default: 1024)
        guard encoderDim % encoderHeads == 0 else {
            throw RuntimeError.badHyperparameter(key: K.encoderHeads, reason: "\(encoderHeads) does not divide the encoder width \(encoderDim)")
        }
        let eps = m.double(K.layerNormEpsilon) ?? 1e-5
        guard eps.isFinite, eps > 0 else {
            throw RuntimeError.badHyperparameter(key: K.layerNormEpsilon, reason: "\(eps) must be a positive number")
        }
        layerNormEpsilon = Float(eps)
        latentCount = try int(K.perceiverLatents, default: 64)
        perceiverLayers = try int(K.perceiverBlocks, default: 6, min: 0, max: 256)
        perceiverHeads = try int(K.perceiverHeads, default: 8, max: 4096)
        perceiverHeadDim = try int(K.perceiverKeyLength, default: 64, max: 4096)
        perceiverFeedForward = try int(K.perceiverFeedForward, default: 4 * encoderDim)
        crossAttentionEvery = try int(K.crossAttentionEvery, default: 1, max: 4096)
        crossAttentionHeads = try int(K.crossAttentionHeads, default: 8, max: 4096)
        crossAttentionHeadDim = try int(K.crossAttentionKeyLength, default: 64, max: 4096)
        crossAttentionFeedForward = try int(K.crossAttentionFeedForward, default: 4 * hidden, max: 1 << 24)
        func token(_ key: String) throws -> Int32? {
            guard let id = m.int(key) else { return nil }
            guard id >= 0, id < vocabularySize else {
                throw RuntimeError.badHyperparameter(key: key, reason: "token id \(id) is outside the vocabulary (0..<\(vocabularySize))")
            }
            return Int32(id)
        }
        mediaTokenID = try token(K.mediaTokenID)
        endOfChunkTokenID = try token(K.endOfChunkTokenID)
        if v == .flamingo, mediaTokenID == nil {
            throw RuntimeError.badHyperparameter(key: K.mediaTokenID, reason: "missing (a Flamingo model needs its <image> token)")
        }
        if let name = m.string(K.preset) {
            guard let p = SeriesPreset(rawValue: name) else {
                throw RuntimeError.badHyperparameter(key: K.preset, reason: "'\(name)' is not a preset (\(SeriesPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            preset = p
        }
    }

    /// Patches of a series of `length` samples (zero-padded up to a multiple of the patch size).
    public func patchCount(length: Int) -> Int { (length + patchSize - 1) / patchSize }

    /// The longest series the position embedding covers, in samples.
    public var maxLength: Int { maxPatches * patchSize }
}
