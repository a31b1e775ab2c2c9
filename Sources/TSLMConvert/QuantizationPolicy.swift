import TSLMFormat

/// What `--type` asks for.
public enum TargetType: Equatable, Sendable, CustomStringConvertible {
    /// Keep each tensor's source type where `.tslm` has it.
    case source
    /// Store floating-point matrices as this type (see the policy below).
    case type(DType)

    /// Parses `source`, `f32`, `f16`, `bf16`, `q8_0`, `q4_0`, `q4_1`.
    public init?(name: String) {
        if name == "source" { self = .source; return }
        guard let t = DType(name: name), [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1].contains(t) else { return nil }
        self = .type(t)
    }

    public static let names = ["source", "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1"]

    public var description: String {
        switch self {
        case .source: "source"
        case let .type(t): t.description
        }
    }
}

/// The per-tensor storage policy of `tslm convert --type` and `tslm quantize`
/// (`formats/tslm.md`, "Quantization policy").
public enum QuantizationPolicy {
    /// A one-line statement of the policy, stored as `general.quantization_policy`.
    public static let summary = "1-D tensors f32; non-float unchanged; quantized types need rows of whole 32-blocks (else f16); token_embd/output q8_0 under 4-bit types; ts.* (time-series encoder, projector, perceiver) f16 under quantized types"

    /// Tensors that keep 8 bits when the target is a 4-bit type.
    public static let highPrecisionTensors: Set<String> = ["token_embd.weight", "output.weight"]

    /// The storage type for a tensor of `dtype` and `shape` named `name`.
    public static func storageType(name: String, dtype: DType, shape: [Int], target: TargetType) -> DType {
        guard dtype.isFloatingPoint else { return dtype }
        switch target {
        case .source:
            return dtype == .f64 ? .f32 : dtype
        case let .type(t):
            if shape.count < 2 { return .f32 }
            guard t.isQuantized else { return t }
            // The time-series encoder, projector and perceiver (OpenTSLM), the patch embedding,
            // prototypes, reprogramming and head (Time-LLM) are small and feed every soft token,
            // latent or forecast: they keep f16 under block quantization.
            if name.hasPrefix(TensorNames.OpenTSLM.prefix) || name.hasPrefix(TensorNames.TimeLLM.prefix) { return .f16 }
            // An LSTM forecaster is a few thousand weights whose errors compound over the steps:
            // it stays f32.
            if name.hasPrefix(TensorNames.LSTM.prefix) { return .f32 }
            guard let inner = shape.last, inner > 0, inner % t.blockSize == 0 else { return .f16 }
            if (t == .q4_0 || t == .q4_1) && highPrecisionTensors.contains(name) { return .q8_0 }
            return t
        }
    }
}
