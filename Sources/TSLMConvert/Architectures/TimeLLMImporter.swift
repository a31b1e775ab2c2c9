import TSLMFormat

/// Imports a Time-LLM checkpoint (upstream `torch.save(model.state_dict())`) on top of its base
/// LLM (`--base`: the Hugging Face folder, GGUF or `.tslm` of the Llama-family or GPT-2 model it
/// was trained on, for the configuration and the tokenizer), with a sidecar `timellm.json`
/// (`seq_len`, `pred_len`, `patch_len`, `stride`, `d_model`, `d_ff`, `n_heads`, `num_tokens`,
/// `description`, optional `llm_layers`), as tools/timellm_model.py writes it:
///
/// - `llm_model.*` (the truncated bare LLM), when present, replaces the base's tensors; the
///   backbone keeps its first `llm_layers` blocks (`<arch>.block_count` becomes that);
/// - the text prototypes `mapping_layer(word_embeddings.T).T` [num_tokens, d_llm] are computed
///   here in f32, so the num_tokens × vocab mapping never ships;
/// - the patch Conv1d, the reprogramming projections and the flatten head are renamed under
///   `timellm.` (formats/tslm.md, "Time-LLM").
public enum TimeLLMImporter {
    public struct Config: Sendable, Equatable {
        public var seqLen: Int, predLen: Int, patchLen: Int, stride: Int, dModel: Int, dFF: Int, heads: Int, numTokens: Int
        public var description: String
        public var llmLayers: Int?

        public init(jsonFile path: String) throws {
            let j = try SidecarJSON(path: path)
            seqLen = try j.int("seq_len")
            predLen = try j.int("pred_len")
            patchLen = try j.int("patch_len")
            stride = try j.int("stride")
            dModel = try j.int("d_model")
            dFF = try j.int("d_ff")
            heads = try j.int("n_heads")
            numTokens = try j.int("num_tokens")
            description = try j.string("description")
            llmLayers = j.has("llm_layers") ? try j.int("llm_layers") : nil
            guard patchLen <= seqLen else { throw j.bad("patch_len \(patchLen) is longer than seq_len \(seqLen)") }
        }

        var patchCount: Int { (seqLen - patchLen) / stride + 2 }
    }

    /// Whether a state dict is Time-LLM's.
    public static func looksLikeTimeLLM(_ names: [String]) -> Bool {
        names.contains("reprogramming_layer.query_projection.weight")
    }

    public static func load(checkpoint path: String, config configPath: String, base: String) throws -> ImportedModel {
        try load(try PyTorchImporter.load(path: path), config: configPath, base: base)
    }

    /// `load(checkpoint:config:base:)` for a state dict already opened (`PyTorchImporter.load`).
    static func load(_ raw: ImportedModel, config configPath: String, base: String) throws -> ImportedModel {
        let path = raw.sourcePath
        let config = try Config(jsonFile: configPath)
        func bad(_ reason: String) -> TSLMError { .malformed(file: path, reason: reason) }
        var model = try Converter.importModel(path: base)
        guard let arch = Architectures.named(model.architecture), ["llama", "gpt2"].contains(arch.name) else {
            throw TSLMError.unknownArchitecture(file: base, architecture: "\(model.architecture) (a Time-LLM backbone must be llama or gpt2)")
        }
        guard looksLikeTimeLLM(raw.tensors.map(\.name)) else {
            throw bad("not a Time-LLM state dict: no reprogramming_layer.query_projection.weight")
        }
        var byName: [String: SourceTensor] = [:]
        for t in raw.tensors { byName[t.name] = t }
        func tensor(_ n: String) throws -> SourceTensor {
            guard let t = byName[n] else { throw bad("missing tensor '\(n)'") }
            return t
        }

        // The backbone: the checkpoint's llm_model.* replace the base's tensors of the same name.
        let hfPrefix = arch.name == "llama" ? "model." : "transformer."
        var checkpointBlocks = Set<Int>()
        for t in raw.tensors where t.name.hasPrefix("llm_model.") {
            let hfName = hfPrefix + t.name.dropFirst("llm_model.".count)
            guard let mapped = try HuggingFaceImporter.mapped(t, hfName: hfName, arch: arch, file: path) else { continue }
            model.tensors.removeAll { $0.name == mapped.name }
            model.tensors.append(mapped)
            if let layer = splitLayerName(mapped.name, prefix: "blk.")?.layer { checkpointBlocks.insert(layer) }
        }
        let baseLayers = model.metadata.int("\(arch.name).block_count") ?? 0
        let layers = config.llmLayers ?? (checkpointBlocks.isEmpty ? baseLayers : checkpointBlocks.count)
        guard layers >= 1, layers <= baseLayers else {
            throw bad("llm_layers \(layers) must be in 1...\(baseLayers) (the base's blocks)")
        }
        model.tensors.removeAll { (splitLayerName($0.name, prefix: "blk.")?.layer ?? -1) >= layers }
        model.metadata["\(arch.name).block_count"] = .u32(UInt32(layers))
        guard let hidden = model.metadata.int("\(arch.name).embedding_length") else {
            throw TSLMError.malformed(file: base, reason: "no \(arch.name).embedding_length")
        }
        guard config.dFF <= hidden else { throw bad("d_ff \(config.dFF) is more than the backbone's width \(hidden)") }

        // Text prototypes: mapping [S, V] · word embeddings [V, d] + bias, in f32.
        let embedding = try byName["word_embeddings"] ?? model.tensors.first { $0.name == "token_embd.weight" }
            .unwrap(or: bad("no word_embeddings and the base has no token_embd.weight"))
        let mapping = try tensor("mapping_layer.weight"), mappingBias = try tensor("mapping_layer.bias")
        let vocab = embedding.shape.first ?? 0
        guard embedding.shape == [vocab, hidden], mapping.shape == [config.numTokens, vocab], mappingBias.shape == [config.numTokens] else {
            throw bad("mapping_layer.weight \(mapping.shape) · word embeddings \(embedding.shape): expected [\(config.numTokens), V] · [V, \(hidden)] (num_tokens \(config.numTokens))")
        }
        let prototypes = try computePrototypes(embedding: try floats(embedding, file: path), mapping: try floats(mapping, file: path),
                                               bias: try floats(mappingBias, file: path), vocab: vocab, hidden: hidden, count: config.numTokens)

        typealias T = TensorNames.TimeLLM
        let inner = config.heads * config.dFF
        var added: [SourceTensor] = []
        func add(_ source: String, _ name: String, _ shape: [Int]) throws {
            var t = try tensor(source)
            guard t.shape == shape else { throw bad("'\(source)' has shape \(t.shape), expected \(shape)") }
            t.name = name
            added.append(t)
        }
        try add("patch_embedding.value_embedding.tokenConv.weight", T.patchEmbedding, [config.dModel, config.patchLen, 3])
        for (src, dst, cols) in [("query", T.query, config.dModel), ("key", T.key, hidden), ("value", T.value, hidden)] {
            try add("reprogramming_layer.\(src)_projection.weight", dst + ".weight", [inner, cols])
            try add("reprogramming_layer.\(src)_projection.bias", dst + ".bias", [inner])
        }
        try add("reprogramming_layer.out_projection.weight", T.output + ".weight", [hidden, inner])
        try add("reprogramming_layer.out_projection.bias", T.output + ".bias", [hidden])
        try add("output_projection.linear.weight", T.headWeight, [config.predLen, config.dFF * config.patchCount])
        try add("output_projection.linear.bias", T.headBias, [config.predLen])
        let protoData = TensorData(allocating: prototypes.count * 4)
        prototypes.withUnsafeBytes { protoData.mutableBytes.copyMemory(from: $0) }
        added.append(SourceTensor(name: T.prototypes, dtype: .f32, shape: [config.numTokens, hidden]) { protoData })

        typealias K = MetadataKeys.TimeLLM
        model.metadata[MetadataKeys.family] = .string(ModelFamilyName.timeLLM.rawValue)
        model.metadata[K.sequenceLength] = .u32(UInt32(config.seqLen))
        model.metadata[K.predictionLength] = .u32(UInt32(config.predLen))
        model.metadata[K.patchLength] = .u32(UInt32(config.patchLen))
        model.metadata[K.stride] = .u32(UInt32(config.stride))
        model.metadata[K.modelWidth] = .u32(UInt32(config.dModel))
        model.metadata[K.feedForward] = .u32(UInt32(config.dFF))
        model.metadata[K.heads] = .u32(UInt32(config.heads))
        model.metadata[K.prototypes] = .u32(UInt32(config.numTokens))
        model.metadata[K.description] = .string(config.description)
        model.metadata["general.source.base"] = .string(base)
        model.tensors += added
        model.sourceFormat = "pytorch"
        model.sourcePath = path
        return model
    }

    /// A tensor's values as f32.
    static func floats(_ t: SourceTensor, file: String) throws -> [Float] {
        let n = t.shape.reduce(1, *)
        let data = try t.load()
        guard t.dtype.isFloatingPoint else { throw TSLMError.malformed(file: file, reason: "tensor '\(t.name)' is \(t.dtype), not floating point") }
        return try data.withUnsafeBytes { raw in
            let out = try DTypeConversion.convert(raw, from: t.dtype, to: .f32, shape: t.shape, file: file, tensor: t.name)
            return out.withUnsafeBytes { Array($0.bindMemory(to: Float.self).prefix(n)) }
        }
    }

    /// prototypes [count, hidden] = mapping [count, vocab] · embedding [vocab, hidden] + bias,
    /// accumulated in f32 over the vocabulary in order (rows of the embedding are contiguous).
    static func computePrototypes(embedding: [Float], mapping: [Float], bias: [Float], vocab: Int, hidden: Int, count: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: count * hidden)
        embedding.withUnsafeBufferPointer { e in mapping.withUnsafeBufferPointer { m in out.withUnsafeMutableBufferPointer { o in
            for s in 0..<count {
                let row = o.baseAddress! + s * hidden
                for v in 0..<vocab {
                    let a = m[s * vocab + v]
                    let src = e.baseAddress! + v * hidden
                    for d in 0..<hidden { row[d] += a * src[d] }
                }
                for d in 0..<hidden { row[d] += bias[s] }
            }
        } } }
        return out
    }
}

extension Optional {
    func unwrap(or error: @autoclosure () -> Error) throws -> Wrapped {
        guard let v = self else { throw error() }
        return v
    }
}
