import TSLMFormat

/// A tensor as an importer presents it: already under its `.tslm` name and in PyTorch
/// (outermost-first) shape order, with a loader that produces its bytes on demand, so that the
/// converter holds one tensor in memory at a time.
public struct SourceTensor: @unchecked Sendable {
    /// The `.tslm` name (after the architecture's name map).
    public var name: String
    /// The type of the bytes `load()` returns.
    public var dtype: DType
    /// Dimensions, outermost first.
    public var shape: [Int]
    /// Produces the tensor's bytes (exactly `dtype.byteCount(shape:)` of them).
    public var load: () throws -> TensorData

    public init(name: String, dtype: DType, shape: [Int], load: @escaping () throws -> TensorData) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.load = load
    }
}

/// What every importer produces: an architecture, metadata (hyperparameters, tokenizer,
/// provenance) and the tensors.
public struct ImportedModel {
    /// `general.architecture`: `llama`, `gemma3`, `gpt2`, … or `raw`.
    public var architecture: String
    /// `safetensors`, `pytorch`, `gguf` or `tslm`.
    public var sourceFormat: String
    /// The path the user gave.
    public var sourcePath: String
    /// Hyperparameters (`<arch>.*`), tokenizer (`tokenizer.*`), `general.name`, …
    public var metadata: Metadata
    public var tensors: [SourceTensor]

    public init(architecture: String, sourceFormat: String, sourcePath: String,
                metadata: Metadata = Metadata(), tensors: [SourceTensor] = []) {
        self.architecture = architecture
        self.sourceFormat = sourceFormat
        self.sourcePath = sourcePath
        self.metadata = metadata
        self.tensors = tensors
    }
}
