import TSLMFormat

/// `.tslm` names of OpenTSLM's time-series tensors (see formats/tslm.md, "Time-series models").
/// The backbone keeps its own architecture's names; these come on top:
///
/// - `ts.enc.*`: the per-series encoder (patch embedding, position embedding, input LayerNorm,
///   and for SoftPrompt `ts.enc.blk.N.*` post-norm Transformer layers, q/k/v kept fused).
/// - `ts.proj.*`: SoftPrompt's projector.
/// - `ts.perceiver.*`: Flamingo's Perceiver Resampler (k/v kept fused, as upstream).
/// - `blk.N.xattn_*`: Flamingo's gated cross-attention block in front of decoder layer N.
public enum OpenTSLMNames {
    public static let globalNames: Set<String> = [
        TensorNames.OpenTSLM.patchEmbedding, TensorNames.OpenTSLM.positionEmbedding, TensorNames.OpenTSLM.inputNorm + ".weight", TensorNames.OpenTSLM.inputNorm + ".bias",
        TensorNames.OpenTSLM.projectorNorm + ".weight", TensorNames.OpenTSLM.projectorNorm + ".bias", TensorNames.OpenTSLM.projectorWeight, TensorNames.OpenTSLM.projectorBias,
        TensorNames.OpenTSLM.perceiverLatents, TensorNames.OpenTSLM.perceiverOutputNorm + ".weight", TensorNames.OpenTSLM.perceiverOutputNorm + ".bias",
    ]
    public static let encoderBlockSuffixes: Set<String> = [
        "attn_qkv.weight", "attn_qkv.bias", "attn_output.weight", "attn_output.bias", "attn_norm.weight", "attn_norm.bias",
        "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias", "ffn_norm.weight", "ffn_norm.bias",
    ]
    public static let perceiverBlockSuffixes: Set<String> = [
        "norm_media.weight", "norm_media.bias", "norm_latents.weight", "norm_latents.bias",
        "attn_q.weight", "attn_kv.weight", "attn_output.weight",
        "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight", "ffn_down.weight",
    ]
    public static let crossAttentionSuffixes: Set<String> = [
        "xattn_gate", "xattn_ffn_gate", "xattn_norm.weight", "xattn_norm.bias", "xattn_q.weight", "xattn_kv.weight",
        "xattn_output.weight", "xattn_ffn_norm.weight", "xattn_ffn_norm.bias", "xattn_ffn_up.weight", "xattn_ffn_down.weight",
    ]

    /// True when `name` is one of the time-series tensor names above.
    public static func isTimeSeriesName(_ name: String) -> Bool {
        if globalNames.contains(name) { return true }
        if let (_, rest) = splitLayerName(name, prefix: TensorNames.OpenTSLM.encoderBlockPrefix) { return encoderBlockSuffixes.contains(rest) }
        if let (_, rest) = splitLayerName(name, prefix: TensorNames.OpenTSLM.perceiverBlockPrefix) { return perceiverBlockSuffixes.contains(rest) }
        if let (_, rest) = splitLayerName(name, prefix: "blk.") { return crossAttentionSuffixes.contains(rest) }
        return false
    }

    // MARK: - Upstream names

    /// The `.tslm` name of an upstream encoder tensor (`TransformerCNNEncoder`/`CNNTokenizer`
    /// state-dict key), or nil.
    static func encoderName(_ key: String) -> String? {
        switch key {
        case "pos_embed": return TensorNames.OpenTSLM.positionEmbedding
        case "patch_embed.weight": return TensorNames.OpenTSLM.patchEmbedding
        case "input_norm.weight": return TensorNames.OpenTSLM.inputNorm + ".weight"
        case "input_norm.bias": return TensorNames.OpenTSLM.inputNorm + ".bias"
        default: break
        }
        guard let (layer, rest) = splitLayerName(key, prefix: "encoder.layers.") else { return nil }
        let map = [
            "self_attn.in_proj_weight": "attn_qkv.weight", "self_attn.in_proj_bias": "attn_qkv.bias",
            "self_attn.out_proj.weight": "attn_output.weight", "self_attn.out_proj.bias": "attn_output.bias",
            "linear1.weight": "ffn_up.weight", "linear1.bias": "ffn_up.bias",
            "linear2.weight": "ffn_down.weight", "linear2.bias": "ffn_down.bias",
            "norm1.weight": "attn_norm.weight", "norm1.bias": "attn_norm.bias",
            "norm2.weight": "ffn_norm.weight", "norm2.bias": "ffn_norm.bias",
        ]
        return map[rest].map { TensorNames.OpenTSLM.encoderBlock(layer) + $0 }
    }

    /// The `.tslm` name of an upstream `MLPProjector` state-dict key, or nil.
    static func projectorName(_ key: String) -> String? {
        ["projector.0.weight": TensorNames.OpenTSLM.projectorNorm + ".weight", "projector.0.bias": TensorNames.OpenTSLM.projectorNorm + ".bias",
         "projector.1.weight": TensorNames.OpenTSLM.projectorWeight, "projector.1.bias": TensorNames.OpenTSLM.projectorBias][key]
    }

    /// The `.tslm` name of an open_flamingo `PerceiverResampler` key (after `perceiver.`), or nil.
    static func perceiverName(_ key: String) -> String? {
        switch key {
        case "latents": return TensorNames.OpenTSLM.perceiverLatents
        case "norm.weight": return TensorNames.OpenTSLM.perceiverOutputNorm + ".weight"
        case "norm.bias": return TensorNames.OpenTSLM.perceiverOutputNorm + ".bias"
        default: break
        }
        guard let (layer, rest) = splitLayerName(key, prefix: "layers.") else { return nil }
        let map = [
            "0.norm_media.weight": "norm_media.weight", "0.norm_media.bias": "norm_media.bias",
            "0.norm_latents.weight": "norm_latents.weight", "0.norm_latents.bias": "norm_latents.bias",
            "0.to_q.weight": "attn_q.weight", "0.to_kv.weight": "attn_kv.weight", "0.to_out.weight": "attn_output.weight",
            "1.0.weight": "ffn_norm.weight", "1.0.bias": "ffn_norm.bias", "1.1.weight": "ffn_up.weight", "1.3.weight": "ffn_down.weight",
        ]
        return map[rest].map { TensorNames.OpenTSLM.perceiverBlock(layer) + $0 }
    }

    /// The `.tslm` suffix of an open_flamingo `GatedCrossAttentionBlock` key, or nil.
    static func crossAttentionSuffix(_ key: String) -> String? {
        ["attn_gate": "xattn_gate", "ff_gate": "xattn_ffn_gate",
         "attn.norm.weight": "xattn_norm.weight", "attn.norm.bias": "xattn_norm.bias",
         "attn.to_q.weight": "xattn_q.weight", "attn.to_kv.weight": "xattn_kv.weight", "attn.to_out.weight": "xattn_output.weight",
         "ff.0.weight": "xattn_ffn_norm.weight", "ff.0.bias": "xattn_ffn_norm.bias",
         "ff.1.weight": "xattn_ffn_up.weight", "ff.3.weight": "xattn_ffn_down.weight"][key]
    }
}
