import TSLMFormat

/// Gemma-3 text models: x·(1+w) RMSNorm, q/k norms, sandwich norms, sliding-window and global
/// layers with their own RoPE bases, embeddings scaled by √hidden, tanh GELU.
public enum Gemma3Architecture: Architecture {
    public static let name = "gemma3"
    public static let huggingFaceModelTypes = ["gemma3_text"]
    public static let globalTensorNames: Set<String> = ["token_embd.weight", "output_norm.weight", "output.weight"]
    public static let blockTensorSuffixes: Set<String> = [
        "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
        "attn_q_norm.weight", "attn_k_norm.weight", "post_attention_norm.weight",
        "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight", "post_ffw_norm.weight",
    ]

    static let layerMap: [String: String] = [
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.q_norm.weight": "attn_q_norm.weight",
        "self_attn.k_norm.weight": "attn_k_norm.weight",
        "post_attention_layernorm.weight": "post_attention_norm.weight",
        "pre_feedforward_layernorm.weight": "ffn_norm.weight",
        "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    ]

    public static func mapHuggingFaceName(_ name: String) -> TensorNameMapping {
        LlamaArchitecture.mapDecoderName(name, layerMap: layerMap, dropped: [])
    }

    public static func metadata(huggingFaceConfig config: JSONObject, file: String) throws -> Metadata {
        var m = try LlamaArchitecture.decoderMetadata(arch: name, config: config, file: file, defaultTie: true)
        let c = ConfigReader(config: config, file: file)
        if let w = c.optionalInt("sliding_window") { m["gemma3.attention.sliding_window"] = .u32(UInt32(clamping: w)) }
        if let b = c.optionalDouble("rope_local_base_freq") { m["gemma3.rope.local_freq_base"] = .f32(Float(b)) }
        if let p = c.optionalInt("sliding_window_pattern") { m["gemma3.attention.sliding_window_pattern"] = .u32(UInt32(clamping: p)) }
        if let s = c.optionalDouble("query_pre_attn_scalar") { m["gemma3.attention.query_pre_attn_scalar"] = .f32(Float(s)) }
        if let s = c.optionalDouble("final_logit_softcapping") { m["gemma3.final_logit_softcapping"] = .f32(Float(s)) }
        if let s = c.optionalDouble("attn_logit_softcapping") { m["gemma3.attention.logit_softcapping"] = .f32(Float(s)) }
        if let types = config["layer_types"]?.stringArrayValue {
            m["gemma3.attention.layer_types"] = .array(.string(types))
        }
        return m
    }
}
