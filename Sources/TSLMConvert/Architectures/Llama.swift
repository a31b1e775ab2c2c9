import TSLMFormat

/// The Llama family (Llama 1/2/3.x, SmolLM2, Mistral-style dense models): RMSNorm, GQA,
/// SwiGLU, RoPE with optional "llama3" scaling.
public enum LlamaArchitecture: Architecture {
    public static let name = "llama"
    public static let huggingFaceModelTypes = ["llama", "mistral"]
    public static let globalTensorNames: Set<String> = ["token_embd.weight", "output_norm.weight", "output.weight"]
    public static let blockTensorSuffixes: Set<String> = [
        "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
        "attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias",
        "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight",
    ]

    static let layerMap: [String: String] = [
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.q_proj.bias": "attn_q.bias",
        "self_attn.k_proj.bias": "attn_k.bias",
        "self_attn.v_proj.bias": "attn_v.bias",
        "self_attn.o_proj.bias": "attn_output.bias",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    ]

    public static func mapHuggingFaceName(_ name: String) -> TensorNameMapping {
        mapDecoderName(name, layerMap: layerMap, dropped: ["self_attn.rotary_emb.inv_freq"])
    }

    public static func metadata(huggingFaceConfig config: JSONObject, file: String) throws -> Metadata {
        try decoderMetadata(arch: name, config: config, file: file, defaultTie: false)
    }

    /// Maps the shared Hugging Face decoder layout (`model.embed_tokens`, `model.layers.N.*`,
    /// `model.norm`, `lm_head`) through a per-layer table.
    static func mapDecoderName(_ name: String, layerMap: [String: String], dropped: Set<String>) -> TensorNameMapping {
        switch name {
        case "model.embed_tokens.weight": return .map("token_embd.weight", .none)
        case "model.norm.weight": return .map("output_norm.weight", .none)
        case "lm_head.weight": return .map("output.weight", .none)
        default: break
        }
        guard let (layer, rest) = splitLayerName(name, prefix: "model.layers.") else { return .unknown }
        if dropped.contains(rest) { return .drop }
        guard let suffix = layerMap[rest] else { return .unknown }
        return .map("blk.\(layer).\(suffix)", .none)
    }

    /// `<arch>.*` keys shared by Llama-style decoders.
    static func decoderMetadata(arch: String, config: JSONObject, file: String, defaultTie: Bool) throws -> Metadata {
        let c = ConfigReader(config: config, file: file)
        var m = Metadata()
        let hidden = try c.dimension("hidden_size")
        let heads = try c.dimension("num_attention_heads", max: 4096)
        let kvHeads = c.optionalInt("num_key_value_heads").map { UInt32(clamping: $0) } ?? heads
        guard kvHeads > 0, heads % kvHeads == 0 else {
            throw TSLMError.malformed(file: file, reason: "num_attention_heads \(heads) is not a multiple of num_key_value_heads \(kvHeads)")
        }
        let headDim = c.optionalInt("head_dim").map { UInt32(clamping: $0) } ?? hidden / heads
        m["\(arch).context_length"] = .u32(try c.dimension("max_position_embeddings", max: 1 << 24))
        m["\(arch).embedding_length"] = .u32(hidden)
        m["\(arch).block_count"] = .u32(try c.dimension("num_hidden_layers", max: 4096))
        m["\(arch).feed_forward_length"] = .u32(try c.dimension("intermediate_size"))
        m["\(arch).attention.head_count"] = .u32(heads)
        m["\(arch).attention.head_count_kv"] = .u32(kvHeads)
        m["\(arch).attention.key_length"] = .u32(headDim)
        m["\(arch).attention.layer_norm_rms_epsilon"] = .f32(Float(try c.double("rms_norm_eps")))
        m["\(arch).rope.freq_base"] = .f32(Float(c.optionalDouble("rope_theta") ?? 10000))
        m["\(arch).vocab_size"] = .u32(try c.dimension("vocab_size", max: 1 << 22))
        m["\(arch).tie_embeddings"] = .bool(c.optionalBool("tie_word_embeddings") ?? defaultTie)
        if let scaling = config["rope_scaling"]?.objectValue {
            let s = ConfigReader(config: scaling, file: file)
            let type = scaling["rope_type"]?.stringValue ?? scaling["type"]?.stringValue ?? "none"
            m["\(arch).rope.scaling.type"] = .string(type)
            if let f = s.optionalDouble("factor") { m["\(arch).rope.scaling.factor"] = .f32(Float(f)) }
            if let f = s.optionalDouble("low_freq_factor") { m["\(arch).rope.scaling.low_freq_factor"] = .f32(Float(f)) }
            if let f = s.optionalDouble("high_freq_factor") { m["\(arch).rope.scaling.high_freq_factor"] = .f32(Float(f)) }
            if let n = s.optionalInt("original_max_position_embeddings") {
                m["\(arch).rope.scaling.original_context_length"] = .u32(UInt32(clamping: n))
            }
        }
        return m
    }
}
