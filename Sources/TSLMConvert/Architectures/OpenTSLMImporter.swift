import TSLMFormat

/// Imports an OpenTSLM checkpoint (`model_checkpoint.pt`, the layout upstream's
/// `curriculum_learning.py` / `store_to_file` writes) together with its base LLM into one
/// `ImportedModel`: the backbone keeps its architecture (`llama`, `gemma3`) and names, the
/// time-series parts come under `OpenTSLMNames`, and `opentslm.*` metadata describes them.
///
/// - SoftPrompt (`encoder_state`, `projector_state`, optional `lora_enabled`/`lora_state`/
///   `lora_config`): the base's weights are used as they are, except that a LoRA adapter is
///   merged into them: W' = W + (alpha / r) · B·A (alpha / √r with `use_rslora`), computed in f32
///   in the Hugging Face layout (the GGUF importer has already undone llama.cpp's q/k row
///   permutation) and stored back in the base tensor's type.
/// - Flamingo (`model_state`, the wrapper's whole state dict: every key under `model.` and again
///   under `llm.`, plus the aliases `lang_encoder.old_decoder_blocks.*` and
///   `lang_encoder.gated_cross_attn_layers.*`): one copy is kept, the aliases are dropped; the
///   language model inside it replaces the base's tensors of the same names (its embedding
///   table is larger: `<|endofchunk|>`, `<image>` and maybe `<PAD>` were added), and the
///   tokenizer gains those tokens. A checkpoint trained with the language model frozen may leave
///   out its tensors, the embedding table included: the base's are used, and the base's table
///   gets a zero row for every token Flamingo adds (`appendZeroRows`).
public enum OpenTSLMImporter {
    /// Which OpenTSLM checkpoint a file holds.
    public enum Variant: String, Sendable {
        case softPrompt = "opentslm-sp"
        case flamingo = "opentslm-flamingo"

        /// The model family a file of this variant is (`general.family`).
        public var family: ModelFamilyName { self == .softPrompt ? .openTSLMSoftPrompt : .openTSLMFlamingo }
    }

    /// Choices the checkpoint does not record.
    public struct Options: Sendable {
        /// The `<image>` / `<|endofchunk|>` ids, for a base without a tokenizer (a tokenizer, when
        /// present, decides them; these must then agree).
        public var mediaTokenID: Int?
        public var endOfChunkTokenID: Int?
        /// The preset the model was trained with (`opentslm.preset`), e.g. `har`.
        public var preset: String?
        /// The prompt the model was trained with (`opentslm.prompt.*`).
        public var prompt: TrainedPrompt?
        /// Attention heads (upstream: 8 everywhere; the checkpoint does not record them).
        public var encoderHeads = 8
        public var perceiverHeads = 8
        public var crossAttentionHeads = 8

        public init() {}
    }

    /// The variant of an opened checkpoint, or nil when it is not an OpenTSLM checkpoint.
    public static func variant(of checkpoint: PyTorchCheckpoint) -> Variant? {
        if checkpoint.value(at: ["encoder_state"]) != nil, checkpoint.value(at: ["projector_state"]) != nil { return .softPrompt }
        if checkpoint.value(at: ["model_state"]) != nil { return .flamingo }
        if let llm = checkpoint.value(at: ["llm"]), llm["vision_encoder.pos_embed"] != nil || llm["perceiver.latents"] != nil { return .flamingo }
        return nil
    }

    /// Opens `path` with the data-object allowance OpenTSLM's `lora_config` needs.
    public static func open(_ path: String) throws -> PyTorchCheckpoint {
        try PyTorchCheckpoint(path: path, options: RestrictedUnpickler.Options(dataObjects: true))
    }

    /// Imports checkpoint `path` on top of `base` (a Hugging Face folder, GGUF or `.tslm` of the
    /// backbone the checkpoint was trained on).
    public static func load(checkpoint path: String, base: String, options: Options = Options()) throws -> ImportedModel {
        let ck = try open(path)
        guard let variant = variant(of: ck) else {
            let keys: [String]
            if case let .dict(items) = ck.root { keys = items.map { PyTorchCheckpoint.keyName($0.key) } } else { keys = [] }
            throw TSLMError.malformed(file: path, reason: "not an OpenTSLM checkpoint: no encoder_state + projector_state (SoftPrompt) or model_state (Flamingo); top-level keys: \(keys.prefix(12).joined(separator: ", "))")
        }
        var model = try Converter.importModel(path: base)
        guard let arch = Architectures.named(model.architecture), ["llama", "gemma3"].contains(arch.name) else {
            throw TSLMError.unknownArchitecture(file: base, architecture: "\(model.architecture) (an OpenTSLM backbone must be llama or gemma3)")
        }
        let prefix = "\(arch.name)."
        guard let hidden = model.metadata.int(prefix + "embedding_length"), let layers = model.metadata.int(prefix + "block_count") else {
            throw TSLMError.missingKey(file: base, key: prefix + "embedding_length / block_count")
        }
        var ts: [SourceTensor]
        var md = Metadata()
        switch variant {
        case .softPrompt:
            ts = try softPromptTensors(ck, path: path, hidden: hidden, options: options, metadata: &md)
            try mergeLoRA(ck, path: path, into: &model, arch: arch, metadata: &md)
        case .flamingo:
            ts = try flamingoTensors(ck, path: path, base: base, into: &model, arch: arch, hidden: hidden, layers: layers,
                                     options: options, metadata: &md)
        }
        md[MetadataKeys.family] = .string(variant.family.rawValue)
        if let p = options.preset { md[MetadataKeys.OpenTSLM.preset] = .string(p) }
        options.prompt?.write(into: &md)
        md["general.source.base"] = .string(base)
        for (k, v) in md.entries { model.metadata[k] = v }
        let folder = FileSystem.lastPathComponent(FileSystem.deletingLastPathComponent(path))
        model.metadata["general.name"] = .string(folder.isEmpty || folder == "." ? (model.metadata.string("general.name") ?? "opentslm") : folder)
        model.tensors += ts
        model.sourceFormat = "pytorch"
        model.sourcePath = path
        return model
    }

    // MARK: - SoftPrompt

    static func softPromptTensors(_ ck: PyTorchCheckpoint, path: String, hidden: Int, options: Options,
                                  metadata md: inout Metadata) throws -> [SourceTensor] {
        var out: [SourceTensor] = []
        for t in try ck.tensors(at: ["encoder_state"]) {
            guard let name = OpenTSLMNames.encoderName(t.name) else {
                throw TSLMError.unmappedTensor(file: path, architecture: "opentslm_sp encoder", tensor: "encoder_state." + t.name)
            }
            out.append(try encoderTensor(t, name: name, path: path))
        }
        for t in try ck.tensors(at: ["projector_state"]) {
            guard let name = OpenTSLMNames.projectorName(t.name) else {
                throw TSLMError.unmappedTensor(file: path, architecture: "opentslm_sp projector", tensor: "projector_state." + t.name)
            }
            out.append(t.renamed(name))
        }
        let e = try encoderMetadata(out, path: path, options: options, metadata: &md)
        let shapes = Dictionary(out.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        var expected: [String: [Int]] = [
            "ts.proj.norm.weight": [e.dim], "ts.proj.norm.bias": [e.dim], "ts.proj.weight": [hidden, e.dim], "ts.proj.bias": [hidden],
        ]
        for i in 0..<e.layers {
            let p = "ts.enc.blk.\(i)."
            for (s, shape) in [("attn_qkv.weight", [3 * e.dim, e.dim]), ("attn_qkv.bias", [3 * e.dim]),
                               ("attn_output.weight", [e.dim, e.dim]), ("attn_output.bias", [e.dim]),
                               ("attn_norm.weight", [e.dim]), ("attn_norm.bias", [e.dim]),
                               ("ffn_up.weight", [e.ffn, e.dim]), ("ffn_up.bias", [e.ffn]),
                               ("ffn_down.weight", [e.dim, e.ffn]), ("ffn_down.bias", [e.dim]),
                               ("ffn_norm.weight", [e.dim]), ("ffn_norm.bias", [e.dim])] {
                expected[p + s] = shape
            }
        }
        try check(shapes, expected: expected, path: path)
        return out
    }

    /// Encoder tensors in `.tslm` shape: the position embedding loses its batch dimension, the
    /// Conv1d weight [dim, 1, patch] its channel dimension.
    static func encoderTensor(_ t: SourceTensor, name: String, path: String) throws -> SourceTensor {
        switch name {
        case "ts.enc.pos_embd.weight":
            guard t.shape.count == 3, t.shape[0] == 1 else {
                throw TSLMError.invalidShape(file: path, tensor: t.name, shape: t.shape, reason: "expected [1, max_patches, dim]")
            }
            return t.renamed(name, shape: [t.shape[1], t.shape[2]])
        case "ts.enc.patch_embd.weight":
            guard t.shape.count == 3, t.shape[1] == 1 else {
                throw TSLMError.invalidShape(file: path, tensor: t.name, shape: t.shape, reason: "expected a Conv1d weight [dim, 1, patch]")
            }
            return t.renamed(name, shape: [t.shape[0], t.shape[2]])
        default:
            return t.renamed(name)
        }
    }

    struct EncoderShape { var dim: Int; var patch: Int; var maxPatches: Int; var layers: Int; var ffn: Int }

    /// Reads the encoder's hyperparameters off its tensors and records them as `opentslm.*`.
    static func encoderMetadata(_ tensors: [SourceTensor], path: String, options: Options,
                                metadata md: inout Metadata) throws -> EncoderShape {
        func shape(_ n: String) throws -> [Int] {
            guard let t = tensors.first(where: { $0.name == n }) else { throw TSLMError.missingTensor(file: path, tensor: n) }
            return t.shape
        }
        let patch = try shape("ts.enc.patch_embd.weight"), pos = try shape("ts.enc.pos_embd.weight")
        let dim = patch[0]
        guard dim > 0, patch[1] > 0, pos[1] == dim, pos[0] > 0 else {
            throw TSLMError.invalidShape(file: path, tensor: "pos_embed", shape: pos, reason: "does not match the patch embedding \(patch)")
        }
        guard dim % options.encoderHeads == 0 else {
            throw TSLMError.malformed(file: path, reason: "the encoder width \(dim) is not a multiple of \(options.encoderHeads) heads")
        }
        let layerIDs = Set(tensors.compactMap { splitLayerName($0.name, prefix: "ts.enc.blk.")?.layer })
        let layers = layerIDs.count
        guard layerIDs == Set(0..<layers) else {
            throw TSLMError.malformed(file: path, reason: "encoder layers \(layerIDs.sorted()) are not numbered 0..<\(layers)")
        }
        let ffn = layers > 0 ? try Self.rows(of: "ts.enc.blk.0.ffn_up.weight", shape("ts.enc.blk.0.ffn_up.weight"), path: path) : 0
        md["opentslm.patch_size"] = .u32(UInt32(patch[1]))
        md["opentslm.encoder.embedding_length"] = .u32(UInt32(dim))
        md["opentslm.encoder.max_patches"] = .u32(UInt32(pos[0]))
        md["opentslm.encoder.block_count"] = .u32(UInt32(layers))
        md["opentslm.encoder.layer_norm_epsilon"] = .f32(1e-5)
        if layers > 0 {
            md["opentslm.encoder.head_count"] = .u32(UInt32(options.encoderHeads))
            md["opentslm.encoder.feed_forward_length"] = .u32(UInt32(ffn))
        }
        try check(Dictionary(tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a }),
                  expected: ["ts.enc.input_norm.weight": [dim], "ts.enc.input_norm.bias": [dim]], path: path)
        return EncoderShape(dim: dim, patch: patch[1], maxPatches: pos[0], layers: layers, ffn: ffn)
    }

    /// The row count of a matrix, or an error naming it.
    static func rows(of name: String, _ shape: [Int], path: String) throws -> Int {
        guard shape.count == 2, shape[0] > 0 else {
            throw TSLMError.invalidShape(file: path, tensor: name, shape: shape, reason: "expected a non-empty matrix")
        }
        return shape[0]
    }

    /// Every expected tensor is present with its shape.
    static func check(_ shapes: [String: [Int]], expected: [String: [Int]], path: String) throws {
        for (name, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let s = shapes[name] else { throw TSLMError.missingTensor(file: path, tensor: name) }
            guard s == shape else { throw TSLMError.invalidShape(file: path, tensor: name, shape: s, reason: "expected \(shape)") }
        }
    }

    // MARK: - LoRA

    /// Merges `lora_state` into the backbone when `lora_enabled` is true.
    static func mergeLoRA(_ ck: PyTorchCheckpoint, path: String, into model: inout ImportedModel,
                          arch: any Architecture.Type, metadata md: inout Metadata) throws {
        guard case .bool(true)? = ck.value(at: ["lora_enabled"]) else { return }
        guard ck.value(at: ["lora_state"]) != nil else {
            throw TSLMError.malformed(file: path, reason: "lora_enabled is True but the checkpoint has no lora_state")
        }
        // base_model.model.<HF module>.lora_A.<adapter>.weight
        var pairs: [String: (a: SourceTensor?, b: SourceTensor?)] = [:]
        var adapters = Set<String>()
        for t in try ck.tensors(at: ["lora_state"]) {
            var n = t.name
            guard n.hasPrefix("base_model.model.") else {
                throw TSLMError.unmappedTensor(file: path, architecture: "LoRA (PEFT)", tensor: "lora_state." + n)
            }
            n.removeFirst("base_model.model.".count)
            let parts = n.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 4, parts.last == "weight", ["lora_A", "lora_B"].contains(parts[parts.count - 3]) else {
                throw TSLMError.unmappedTensor(file: path, architecture: "LoRA (PEFT; only lora_A/lora_B weights are supported)", tensor: "lora_state." + t.name)
            }
            adapters.insert(parts[parts.count - 2])
            let module = parts[..<(parts.count - 3)].joined(separator: ".")
            var entry = pairs[module] ?? (nil, nil)
            if parts[parts.count - 3] == "lora_A" { entry.a = t } else { entry.b = t }
            pairs[module] = entry
        }
        guard adapters.count <= 1 else {
            throw TSLMError.malformed(file: path, reason: "lora_state holds \(adapters.count) adapters (\(adapters.sorted().joined(separator: ", "))); only one can be merged")
        }
        guard let first = pairs.values.first, let a0 = first.a else { return }
        let rank = a0.shape.first ?? 0
        let (scale, alpha) = try loraScale(ck.value(at: ["lora_config"]), adapter: adapters.first ?? "default", rank: rank, path: path)
        var index: [String: Int] = [:]
        for (i, t) in model.tensors.enumerated() { index[t.name] = i }
        for (module, pair) in pairs.sorted(by: { $0.key < $1.key }) {
            guard let a = pair.a, let b = pair.b else {
                throw TSLMError.missingTensor(file: path, tensor: "lora_state: \(module) has only one of lora_A / lora_B")
            }
            guard case let .map(name, _) = arch.mapHuggingFaceName(module + ".weight") else {
                throw TSLMError.unmappedTensor(file: path, architecture: arch.name, tensor: "LoRA target \(module).weight")
            }
            guard let i = index[name] else {
                throw TSLMError.missingTensor(file: model.sourcePath, tensor: "\(name) (the LoRA target \(module).weight)")
            }
            let w = model.tensors[i]
            guard w.shape.count == 2, a.shape.count == 2, b.shape.count == 2, a.shape[0] == rank, b.shape[1] == rank,
                  a.shape[1] == w.shape[1], b.shape[0] == w.shape[0] else {
                throw TSLMError.invalidShape(file: path, tensor: "lora_state: \(module)", shape: a.shape + b.shape,
                                             reason: "A \(a.shape) and B \(b.shape) do not fit \(name) \(w.shape) with rank \(rank)")
            }
            model.tensors[i] = merged(w, a: a, b: b, scale: scale, file: path)
        }
        md["opentslm.lora.merged"] = .bool(true)
        md["opentslm.lora.rank"] = .u32(UInt32(rank))
        md["opentslm.lora.alpha"] = .f32(alpha)
        md["opentslm.lora.scale"] = .f32(scale)
        md["opentslm.lora.target_count"] = .u32(UInt32(pairs.count))
    }

    /// alpha / r (alpha / √r with `use_rslora`) from `lora_config` (a dict, `{adapter: dict}`, or
    /// PEFT `LoraConfig` objects); without one, OpenTSLM's alpha = 2·r (r 16, alpha 32).
    static func loraScale(_ config: PickleValue?, adapter: String, rank: Int, path: String) throws -> (scale: Float, alpha: Float) {
        guard rank > 0 else { throw TSLMError.malformed(file: path, reason: "LoRA rank is 0") }
        var c = config
        if let inner = c?[adapter] { c = inner }
        func number(_ v: PickleValue?) -> Double? {
            switch v {
            case let .int(i)?: Double(i)
            case let .float(f)?: f
            default: nil
            }
        }
        if let r = number(c?["r"]), Int(r) != rank {
            throw TSLMError.malformed(file: path, reason: "lora_config r = \(Int(r)) but the adapter's lora_A has rank \(rank)")
        }
        let alpha = number(c?["lora_alpha"]) ?? Double(2 * rank)
        guard alpha.isFinite else { throw TSLMError.malformed(file: path, reason: "lora_config lora_alpha is not finite") }
        let rs: Bool
        if case .bool(true)? = c?["use_rslora"] { rs = true } else { rs = false }
        let scale = rs ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
        return (Float(scale), Float(alpha))
    }

    /// `w` with W + scale·B·A, in f32, stored back in `w`'s type.
    static func merged(_ w: SourceTensor, a: SourceTensor, b: SourceTensor, scale: Float, file: String) -> SourceTensor {
        var out = w
        let (rows, cols, r) = (w.shape[0], w.shape[1], a.shape[0])
        let (loadW, loadA, loadB, dtype, name) = (w.load, a.load, b.load, w.dtype, w.name)
        out.load = {
            func floats(_ data: TensorData, _ dt: DType, _ n: Int) -> [Float] {
                var f = [Float](repeating: 0, count: n)
                data.withUnsafeBytes { src in f.withUnsafeMutableBufferPointer { DTypeConversion.toFloat32(src, dtype: dt, count: n, into: $0) } }
                return f
            }
            var wf = floats(try loadW(), dtype, rows * cols)
            let af = floats(try loadA(), a.dtype, r * cols), bf = floats(try loadB(), b.dtype, rows * r)
            wf.withUnsafeMutableBufferPointer { wp in
                for o in 0..<rows {
                    let row = wp.baseAddress! + o * cols
                    for k in 0..<r {
                        let s = scale * bf[o * r + k]
                        if s == 0 { continue }
                        af.withUnsafeBufferPointer { ap in
                            let arow = ap.baseAddress! + k * cols
                            for j in 0..<cols { row[j] += s * arow[j] }
                        }
                    }
                }
            }
            return try wf.withUnsafeBytes { try DTypeConversion.convert($0, from: .f32, to: dtype, shape: [rows, cols], file: file, tensor: name) }
        }
        return out
    }

    // MARK: - Flamingo

    static func flamingoTensors(_ ck: PyTorchCheckpoint, path: String, base: String, into model: inout ImportedModel,
                                arch: any Architecture.Type, hidden: Int, layers: Int, options: Options,
                                metadata md: inout Metadata) throws -> [SourceTensor] {
        let keyPath = ck.value(at: ["model_state"]) != nil ? ["model_state"] : ["llm"]
        let all = try ck.tensors(at: keyPath)
        // One copy: the `model.` keys, else the `llm.` keys, else the bare ones.
        let prefix = all.contains { $0.name.hasPrefix("model.") } ? "model." : all.contains { $0.name.hasPrefix("llm.") } ? "llm." : ""
        var ts: [SourceTensor] = []
        var backbone: [SourceTensor] = []
        var xattnLayers = Set<Int>()
        for t in all where t.name.hasPrefix(prefix) {
            let key = String(t.name.dropFirst(prefix.count))
            if key.hasPrefix("lang_encoder.old_decoder_blocks.") || key.hasPrefix("lang_encoder.gated_cross_attn_layers.") { continue }
            if key.hasSuffix("rotary_emb.inv_freq") || key.hasSuffix("original_inv_freq") { continue }
            if key.hasPrefix("vision_encoder.") {
                let k = String(key.dropFirst("vision_encoder.".count))
                guard let name = OpenTSLMNames.encoderName(k), !name.hasPrefix(TensorNames.OpenTSLM.encoderBlockPrefix) else {
                    throw TSLMError.unmappedTensor(file: path, architecture: "opentslm_flamingo CNN tokenizer", tensor: t.name)
                }
                ts.append(try encoderTensor(t, name: name, path: path))
            } else if key.hasPrefix("perceiver.") {
                guard let name = OpenTSLMNames.perceiverName(String(key.dropFirst("perceiver.".count))) else {
                    throw TSLMError.unmappedTensor(file: path, architecture: "opentslm_flamingo perceiver", tensor: t.name)
                }
                ts.append(t.renamed(name))
            } else if let (layer, rest) = splitLayerName(key, prefix: "lang_encoder.model.layers.") {
                if rest.hasPrefix("gated_cross_attn_layer.") {
                    guard let s = OpenTSLMNames.crossAttentionSuffix(String(rest.dropFirst("gated_cross_attn_layer.".count))) else {
                        throw TSLMError.unmappedTensor(file: path, architecture: "opentslm_flamingo cross-attention", tensor: t.name)
                    }
                    xattnLayers.insert(layer)
                    ts.append(t.renamed("blk.\(layer).\(s)"))
                } else if rest.hasPrefix("decoder_layer.") {
                    backbone.append(try mapBackbone(t, hfName: "model.layers.\(layer).\(rest.dropFirst("decoder_layer.".count))", arch: arch, path: path))
                } else {
                    throw TSLMError.unmappedTensor(file: path, architecture: "opentslm_flamingo", tensor: t.name)
                }
            } else if key.hasPrefix("lang_encoder.") {
                // lang_encoder.model.embed_tokens / .norm, lang_encoder.lm_head
                backbone.append(try mapBackbone(t, hfName: String(key.dropFirst("lang_encoder.".count)), arch: arch, path: path))
            } else {
                throw TSLMError.unmappedTensor(file: path, architecture: "opentslm_flamingo", tensor: t.name)
            }
        }

        // The language model replaces the base's tensors of the same name.
        let tied = model.metadata.bool("\(arch.name).tie_embeddings") ?? false
        if tied { backbone.removeAll { $0.name == "output.weight" } }
        let rows: Int
        let media: Int, end: Int
        if let embedding = backbone.first(where: { $0.name == "token_embd.weight" }) {
            guard embedding.shape.count == 2, embedding.shape[1] == hidden else {
                throw TSLMError.invalidShape(file: path, tensor: "lang_encoder.model.embed_tokens.weight", shape: embedding.shape, reason: "the base's hidden size is \(hidden)")
            }
            rows = embedding.shape[0]
            (media, end) = try addFlamingoTokens(&model.metadata, rows: rows, options: options, path: path)
        } else {
            // The language model was frozen and left out: the base's tables with a zero row
            // appended for every token Flamingo adds.
            (rows, media, end) = try appendZeroRows(for: &model, hidden: hidden, options: options, path: path)
        }
        var index: [String: Int] = [:]
        for (i, t) in model.tensors.enumerated() { index[t.name] = i }
        for t in backbone {
            if let i = index[t.name] {
                let old = model.tensors[i]
                let resized = t.name == "token_embd.weight" || t.name == "output.weight"
                guard old.shape == t.shape || (resized && Array(old.shape.dropFirst()) == Array(t.shape.dropFirst())) else {
                    throw TSLMError.invalidShape(file: path, tensor: t.name, shape: t.shape, reason: "the base \(base) has \(old.shape)")
                }
                model.tensors[i] = t
            } else {
                model.tensors.append(t)
            }
        }
        model.metadata["\(arch.name).vocab_size"] = .u32(UInt32(rows))
        md["opentslm.media_token_id"] = .u32(UInt32(media))
        md["opentslm.end_of_chunk_token_id"] = .u32(UInt32(end))

        // Hyperparameters from the shapes.
        var e = try encoderMetadata(ts, path: path, options: options, metadata: &md)
        e.layers = 0
        let shapes = Dictionary(ts.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        guard let latents = shapes["ts.perceiver.latents"], latents.count == 2, latents[1] == e.dim,
              let pq = shapes["ts.perceiver.blk.0.attn_q.weight"], let pff = shapes["ts.perceiver.blk.0.ffn_up.weight"] else {
            throw TSLMError.missingTensor(file: path, tensor: "perceiver.latents [n, \(e.dim)] / perceiver.layers.0")
        }
        let depth = Set(ts.compactMap { splitLayerName($0.name, prefix: "ts.perceiver.blk.")?.layer }).count
        let inner = try Self.rows(of: "ts.perceiver.blk.0.attn_q.weight", pq, path: path)
        let ffn = try Self.rows(of: "ts.perceiver.blk.0.ffn_up.weight", pff, path: path)
        guard inner % options.perceiverHeads == 0 else {
            throw TSLMError.malformed(file: path, reason: "perceiver inner width \(inner) is not a multiple of \(options.perceiverHeads) heads")
        }
        var expected: [String: [Int]] = ["ts.perceiver.output_norm.weight": [e.dim], "ts.perceiver.output_norm.bias": [e.dim]]
        for i in 0..<depth {
            let p = "ts.perceiver.blk.\(i)."
            for (s, shape) in [("norm_media.weight", [e.dim]), ("norm_media.bias", [e.dim]), ("norm_latents.weight", [e.dim]),
                               ("norm_latents.bias", [e.dim]), ("attn_q.weight", [inner, e.dim]), ("attn_kv.weight", [2 * inner, e.dim]),
                               ("attn_output.weight", [e.dim, inner]), ("ffn_norm.weight", [e.dim]), ("ffn_norm.bias", [e.dim]),
                               ("ffn_up.weight", [ffn, e.dim]), ("ffn_down.weight", [e.dim, ffn])] {
                expected[p + s] = shape
            }
        }
        // Cross-attention: every n-th layer.
        guard let firstX = xattnLayers.min() else { throw TSLMError.missingTensor(file: path, tensor: "lang_encoder.model.layers.N.gated_cross_attn_layer.*") }
        let every = firstX + 1
        guard xattnLayers == Set((0..<layers).filter { ($0 + 1) % every == 0 }) else {
            throw TSLMError.malformed(file: path, reason: "gated cross-attention layers \(xattnLayers.sorted()) are not every \(every) of \(layers) layers")
        }
        guard let xq = shapes["blk.\(firstX).xattn_q.weight"], let xff = shapes["blk.\(firstX).xattn_ffn_up.weight"] else {
            throw TSLMError.missingTensor(file: path, tensor: "blk.\(firstX).xattn_q.weight")
        }
        let xInner = try Self.rows(of: "blk.\(firstX).xattn_q.weight", xq, path: path)
        let xFFN = try Self.rows(of: "blk.\(firstX).xattn_ffn_up.weight", xff, path: path)
        guard xInner % options.crossAttentionHeads == 0 else {
            throw TSLMError.malformed(file: path, reason: "cross-attention inner width \(xInner) is not a multiple of \(options.crossAttentionHeads) heads")
        }
        for l in xattnLayers {
            let p = "blk.\(l)."
            for (s, shape) in [("xattn_gate", [1]), ("xattn_ffn_gate", [1]), ("xattn_norm.weight", [hidden]), ("xattn_norm.bias", [hidden]),
                               ("xattn_q.weight", [xInner, hidden]), ("xattn_kv.weight", [2 * xInner, e.dim]),
                               ("xattn_output.weight", [hidden, xInner]), ("xattn_ffn_norm.weight", [hidden]),
                               ("xattn_ffn_norm.bias", [hidden]), ("xattn_ffn_up.weight", [xFFN, hidden]),
                               ("xattn_ffn_down.weight", [hidden, xFFN])] {
                expected[p + s] = shape
            }
        }
        try check(shapes, expected: expected, path: path)
        md["opentslm.perceiver.latent_count"] = .u32(UInt32(latents[0]))
        md["opentslm.perceiver.block_count"] = .u32(UInt32(depth))
        md["opentslm.perceiver.head_count"] = .u32(UInt32(options.perceiverHeads))
        md["opentslm.perceiver.key_length"] = .u32(UInt32(inner / options.perceiverHeads))
        md["opentslm.perceiver.feed_forward_length"] = .u32(UInt32(ffn))
        md["opentslm.xattn.every_n_layers"] = .u32(UInt32(every))
        md["opentslm.xattn.head_count"] = .u32(UInt32(options.crossAttentionHeads))
        md["opentslm.xattn.key_length"] = .u32(UInt32(xInner / options.crossAttentionHeads))
        md["opentslm.xattn.feed_forward_length"] = .u32(UInt32(xFFN))
        return ts
    }

    /// For a Flamingo checkpoint without `lang_encoder.model.embed_tokens.weight` (trained with
    /// the language model frozen, keeping only the trained parts): adds the Flamingo tokens to
    /// the tokenizer and grows the base's `token_embd.weight` (and an untied `output.weight`) to
    /// the new vocabulary with zero rows, stored as f32. Returns the rows and the two token ids.
    static func appendZeroRows(for model: inout ImportedModel, hidden: Int, options: Options, path: String) throws -> (rows: Int, media: Int, end: Int) {
        guard let e = model.tensors.firstIndex(where: { $0.name == "token_embd.weight" }) else {
            throw TSLMError.missingTensor(file: model.sourcePath, tensor: "token_embd.weight (the checkpoint has no lang_encoder.model.embed_tokens.weight either)")
        }
        let baseRows = model.tensors[e].shape.first ?? 0
        guard model.tensors[e].shape == [baseRows, hidden] else {
            throw TSLMError.invalidShape(file: model.sourcePath, tensor: "token_embd.weight", shape: model.tensors[e].shape, reason: "the base's hidden size is \(hidden)")
        }
        let (media, end) = try addFlamingoTokens(&model.metadata, rows: Int(Int32.max), options: options, path: path)
        let rows = max(baseRows, model.metadata.strings("tokenizer.tokens")?.count ?? 0, media + 1, end + 1)
        for name in ["token_embd.weight", "output.weight"] {
            guard let i = model.tensors.firstIndex(where: { $0.name == name }) else { continue }
            let t = model.tensors[i]
            guard t.shape == [baseRows, hidden] else {
                throw TSLMError.invalidShape(file: model.sourcePath, tensor: name, shape: t.shape, reason: "expected [\(baseRows), \(hidden)] like token_embd.weight")
            }
            guard rows > baseRows else { continue }
            var grown = t
            grown.dtype = .f32
            grown.shape = [rows, hidden]
            let (load, dtype) = (t.load, t.dtype)
            grown.load = {
                let data = try load()
                let out = TensorData(allocating: rows * hidden * MemoryLayout<Float>.size)  // zero-filled
                data.withUnsafeBytes { src in
                    let dst = out.mutableBytes.bindMemory(to: Float.self)
                    DTypeConversion.toFloat32(src, dtype: dtype, count: baseRows * hidden, into: UnsafeMutableBufferPointer(rebasing: dst[0..<(baseRows * hidden)]))
                }
                return out
            }
            model.tensors[i] = grown
        }
        return (rows, media, end)
    }

    /// A Hugging Face backbone tensor name through the base architecture's map.
    static func mapBackbone(_ t: SourceTensor, hfName: String, arch: any Architecture.Type, path: String) throws -> SourceTensor {
        guard case let .map(name, transform) = arch.mapHuggingFaceName(hfName), transform == .none else {
            throw TSLMError.unmappedTensor(file: path, architecture: arch.name, tensor: t.name)
        }
        return t.renamed(name)
    }

    /// Adds Flamingo's special tokens to the tokenizer metadata as upstream's
    /// `add_special_tokens` does: `<|endofchunk|>`, `<image>` (when not already in the
    /// vocabulary), then `<PAD>` when there is no pad token, at the next free ids. Without a
    /// tokenizer the ids come from `options`.
    static func addFlamingoTokens(_ m: inout Metadata, rows: Int, options: Options, path: String) throws -> (media: Int, end: Int) {
        guard var tokens = m.strings("tokenizer.tokens") else {
            guard let media = options.mediaTokenID, let end = options.endOfChunkTokenID else {
                throw TSLMError.malformed(file: path, reason: "the base has no tokenizer, so the <image> and <|endofchunk|> ids are unknown; give them (--media-token-id, --end-of-chunk-token-id)")
            }
            guard (0..<rows).contains(media), (0..<rows).contains(end), media != end else {
                throw TSLMError.invalidArgument(name: "--media-token-id / --end-of-chunk-token-id", reason: "\(media), \(end) must be two ids below the embedding rows \(rows)")
            }
            return (media, end)
        }
        let before = tokens.count
        var types: [Int32]
        if case let .array(.i32(t))? = m["tokenizer.token_type"], t.count == tokens.count { types = t } else { types = Array(repeating: 1, count: tokens.count) }
        func add(_ s: String) -> Int {
            if let i = tokens.firstIndex(of: s) { return i }
            tokens.append(s)
            types.append(3)
            return tokens.count - 1
        }
        let end = add("<|endofchunk|>")
        let media = add("<image>")
        if m.int("tokenizer.pad_token_id") == nil { m["tokenizer.pad_token_id"] = .u32(UInt32(add("<PAD>"))) }
        for (given, found, flag) in [(options.mediaTokenID, media, "--media-token-id"), (options.endOfChunkTokenID, end, "--end-of-chunk-token-id")] {
            if let given, given != found {
                throw TSLMError.invalidArgument(name: flag, reason: "\(given), but the tokenizer gives id \(found)")
            }
        }
        guard tokens.count <= rows else {
            throw TSLMError.malformed(file: path, reason: "the tokenizer has \(before) tokens plus \(tokens.count - before) Flamingo tokens, more than the checkpoint's \(rows) embedding rows")
        }
        m["tokenizer.tokens"] = .array(.string(tokens))
        m["tokenizer.token_type"] = .array(.i32(types))
        if case let .array(.f32(scores))? = m["tokenizer.scores"], scores.count < tokens.count {
            m["tokenizer.scores"] = .array(.f32(scores + Array(repeating: 0, count: tokens.count - scores.count)))
        }
        return (media, end)
    }
}

extension SourceTensor {
    /// The same bytes under another name (and shape with the same element count).
    func renamed(_ name: String, shape: [Int]? = nil) -> SourceTensor {
        var t = self
        t.name = name
        if let shape { t.shape = shape }
        return t
    }
}
