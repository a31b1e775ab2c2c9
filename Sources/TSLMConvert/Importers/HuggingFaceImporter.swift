#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat

/// Imports a Hugging Face model folder: `config.json`, single or sharded `*.safetensors`
/// (with `model.safetensors.index.json`) or `pytorch_model*.bin`, and the tokenizer files.
public enum HuggingFaceImporter {
    /// Imports the folder at `folder`, mapping tensor names through the architecture named by
    /// `config.json`'s `model_type`.
    public static func load(folder: String) throws -> ImportedModel {
        let configPath = folder + "/config.json"
        let config = try readJSONObject(configPath)
        guard let modelType = config["model_type"]?.stringValue else {
            throw TSLMError.missingKey(file: configPath, key: "model_type")
        }
        guard let arch = Architectures.forHuggingFaceModelType(modelType) else {
            throw TSLMError.unknownArchitecture(file: configPath, architecture: modelType)
        }
        var metadata = try arch.metadata(huggingFaceConfig: config, file: configPath)
        let tokenizer = try TokenizerImport.metadata(folder: folder)
        for (k, v) in tokenizer.entries { metadata[k] = v }
        if let name = config["_name_or_path"]?.stringValue, !name.isEmpty {
            metadata["general.name"] = .string(name)
        } else {
            metadata["general.name"] = .string(FileSystem.lastPathComponent(folder))
        }

        var tensors: [SourceTensor] = []
        for source in try weightTensors(folder: folder) {
            if let t = try mapped(source, hfName: source.name, arch: arch, file: folder) { tensors.append(t) }
        }
        // A tied model may still ship lm_head; keep it only when it is really a separate matrix.
        if metadata.bool("\(arch.name).tie_embeddings") == true {
            tensors.removeAll { $0.name == "output.weight" }
        }
        return ImportedModel(architecture: arch.name, sourceFormat: "safetensors", sourcePath: folder,
                             metadata: metadata, tensors: tensors)
    }

    /// `source` under its `.tslm` name (Hugging Face name `hfName` through `arch`'s map, with
    /// GPT-2's Conv1D transposes), nil for a tensor the architecture drops; a name it does not
    /// know is `unmappedTensor`.
    static func mapped(_ source: SourceTensor, hfName: String, arch: any Architecture.Type, file: String) throws -> SourceTensor? {
        switch arch.mapHuggingFaceName(hfName) {
        case .drop:
            return nil
        case .unknown:
            throw TSLMError.unmappedTensor(file: file, architecture: arch.name, tensor: source.name)
        case let .map(name, transform):
            var t = source
            t.name = name
            if transform == .transpose {
                guard t.shape.count == 2 else {
                    throw TSLMError.invalidShape(file: file, tensor: source.name, shape: t.shape, reason: "expected a 2-D Conv1D weight")
                }
                let (load, dtype, shape) = (source.load, source.dtype, source.shape)
                t.shape = [shape[1], shape[0]]
                t.load = { try TensorTransforms.transpose2D(try load(), dtype: dtype, shape: shape, file: file, tensor: source.name) }
            }
            return t
        }
    }

    /// A single `.safetensors` file without a config: architecture `raw`, names kept.
    public static func loadSafetensorsFile(path: String) throws -> ImportedModel {
        ImportedModel(architecture: "raw", sourceFormat: "safetensors", sourcePath: path,
                      tensors: try safetensorsTensors(path: path))
    }

    /// The weight tensors of a folder under their Hugging Face names.
    static func weightTensors(folder: String) throws -> [SourceTensor] {
        let files = (FileSystem.directoryEntries(folder) ?? []).sorted()
        var shards: [String]
        if files.contains("model.safetensors.index.json") {
            let indexPath = folder + "/model.safetensors.index.json"
            guard let map = try readJSONObject(indexPath)["weight_map"]?.objectValue,
                  case let values = map.pairs.compactMap({ $0.value.stringValue }), values.count == map.count else {
                throw TSLMError.missingKey(file: indexPath, key: "weight_map")
            }
            shards = Array(Set(values)).sorted()
            for s in shards where s.contains("/") || !files.contains(s) {
                throw TSLMError.io(file: folder + "/" + s, operation: "open (shard named in model.safetensors.index.json)", errno: ENOENT)
            }
        } else {
            shards = files.filter { $0.hasSuffix(".safetensors") }
        }
        var out: [SourceTensor] = []
        if !shards.isEmpty {
            for s in shards { out += try safetensorsTensors(path: folder + "/" + s) }
        } else {
            let bins = files.filter { $0.hasPrefix("pytorch_model") && $0.hasSuffix(".bin") }
            guard !bins.isEmpty else {
                throw TSLMError.io(file: folder, operation: "find weights (*.safetensors or pytorch_model*.bin)", errno: ENOENT)
            }
            for b in bins { out += try PyTorchImporter.load(path: folder + "/" + b).tensors }
        }
        var seen = Set<String>()
        for t in out where !seen.insert(t.name).inserted {
            throw TSLMError.duplicateTensor(file: folder, name: t.name)
        }
        return out
    }

    static func safetensorsTensors(path: String) throws -> [SourceTensor] {
        let file = try SafetensorsFile(path: path)
        return file.tensors.map { e in
            SourceTensor(name: e.name, dtype: e.dtype, shape: e.shape) { try file.load(e) }
        }
    }

    /// Reads a JSON object file, with errors naming it.
    static func readJSONObject(_ path: String) throws -> JSONObject {
        let bytes = try FileReader(path: path).readAll()
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw error.tslmError(file: path)
        }
        guard let obj = value.objectValue else {
            throw TSLMError.malformed(file: path, reason: "not a JSON object")
        }
        return obj
    }
}
