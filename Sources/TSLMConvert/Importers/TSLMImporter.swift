import TSLMFormat

/// Reads a `.tslm` file as an import source (what `tslm quantize` does), so re-quantizing goes
/// through the same conversion path as importing.
public enum TSLMImporter {
    /// Keys the converter writes anew.
    static let regenerated: Set<String> = [
        "general.file_type", "general.converter", "general.quantization_policy", "general.parameter_count",
    ]

    public static func load(path: String) throws -> ImportedModel {
        let file = try TSLMFile(path: path)
        guard let arch = file.metadata.string("general.architecture") else {
            throw TSLMError.missingKey(file: path, key: "general.architecture")
        }
        var metadata = Metadata()
        for (k, v) in file.metadata.entries where !regenerated.contains(k) { metadata[k] = v }
        let tensors = file.tensors.map { e in
            SourceTensor(name: e.name, dtype: e.dtype, shape: e.shape) {
                // Copy out of the mapping and drop the mapped pages, so RSS stays at one tensor.
                let data = try file.tensorData(e)
                let copy = TensorData(allocating: data.bytes.count)
                data.withUnsafeBytes { src in
                    if src.count > 0 { copy.mutableBytes.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: src.count) }
                }
                file.release(e)
                return copy
            }
        }
        return ImportedModel(architecture: arch, sourceFormat: "tslm", sourcePath: path, metadata: metadata, tensors: tensors)
    }
}
