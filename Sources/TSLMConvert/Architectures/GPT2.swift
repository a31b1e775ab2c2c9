import TSLMFormat

/// GPT-2: LayerNorm with biases, learned positions, fused qkv, GELU MLP. Hugging Face stores its
/// projections as Conv1D with [in, out] weights; the importer transposes them to [out, in].
public enum GPT2Architecture: Architecture {
    public static let name = "gpt2"
    public static let huggingFaceModelTypes = ["gpt2"]
    public static let globalTensorNames: Set<String> = [
        "token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight",
    ]
    public static let blockTensorSuffixes: Set<String> = [
        "attn_norm.weight", "attn_norm.bias", "attn_qkv.weight", "attn_qkv.bias",
        "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_norm.bias",
        "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias",
    ]

    static let layerMap: [String: (String, TensorTransform)] = [
        "ln_1.weight": ("attn_norm.weight", .none),
        "ln_1.bias": ("attn_norm.bias", .none),
        "attn.c_attn.weight": ("attn_qkv.weight", .transpose),
        "attn.c_attn.bias": ("attn_qkv.bias", .none),
        "attn.c_proj.weight": ("attn_output.weight", .transpose),
        "attn.c_proj.bias": ("attn_output.bias", .none),
        "ln_2.weight": ("ffn_norm.weight", .none),
        "ln_2.bias": ("ffn_norm.bias", .none),
        "mlp.c_fc.weight": ("ffn_up.weight", .transpose),
        "mlp.c_fc.bias": ("ffn_up.bias", .none),
        "mlp.c_proj.weight": ("ffn_down.weight", .transpose),
        "mlp.c_proj.bias": ("ffn_down.bias", .none),
    ]

    public static func mapHuggingFaceName(_ raw: String) -> TensorNameMapping {
        let name = raw.hasPrefix("transformer.") ? String(raw.dropFirst("transformer.".count)) : raw
        switch name {
        case "wte.weight": return .map("token_embd.weight", .none)
        case "wpe.weight": return .map("position_embd.weight", .none)
        case "ln_f.weight": return .map("output_norm.weight", .none)
        case "ln_f.bias": return .map("output_norm.bias", .none)
        case "lm_head.weight": return .map("output.weight", .none)
        default: break
        }
        guard let (layer, rest) = splitLayerName(name, prefix: "h.") else { return .unknown }
        if rest == "attn.bias" || rest == "attn.masked_bias" { return .drop }  // causal-mask buffers
        guard let (suffix, transform) = layerMap[rest] else { return .unknown }
        return .map("blk.\(layer).\(suffix)", transform)
    }

    public static func metadata(huggingFaceConfig config: JSONObject, file: String) throws -> Metadata {
        let c = ConfigReader(config: config, file: file)
        var m = Metadata()
        let hidden = try c.dimension("n_embd")
        m["gpt2.context_length"] = .u32(try c.dimension("n_positions"))
        m["gpt2.embedding_length"] = .u32(hidden)
        m["gpt2.block_count"] = .u32(try c.dimension("n_layer", max: 4096))
        m["gpt2.feed_forward_length"] = .u32(c.optionalInt("n_inner").map { UInt32(clamping: $0) } ?? 4 * hidden)
        m["gpt2.attention.head_count"] = .u32(try c.dimension("n_head", max: 4096))
        m["gpt2.attention.layer_norm_epsilon"] = .f32(Float(c.optionalDouble("layer_norm_epsilon") ?? 1e-5))
        m["gpt2.vocab_size"] = .u32(try c.dimension("vocab_size", max: 1 << 22))
        m["gpt2.tie_embeddings"] = .bool(c.optionalBool("tie_word_embeddings") ?? true)
        return m
    }
}
