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

/// One `--keep PATTERN=TYPE` rule: floating-point matrices whose name matches `pattern` are
/// stored as `type` instead of what the policy would choose (`formats/tslm.md`, "Quantization
/// policy"). `*` in the pattern matches any run of characters (dots included); the rest must
/// match exactly.
public struct KeepRule: Equatable, Sendable, CustomStringConvertible {
    public var pattern: String
    public var type: DType

    public init(pattern: String, type: DType) {
        self.pattern = pattern
        self.type = type
    }

    /// Parses `PATTERN=TYPE` with TYPE one of f32, f16, bf16, q8_0, q4_0, q4_1; nil otherwise.
    public init?(parsing text: String) {
        guard let eq = text.lastIndex(of: "=") else { return nil }
        let pattern = String(text[..<eq]), name = String(text[text.index(after: eq)...])
        guard !pattern.isEmpty, let t = DType(name: name), [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1].contains(t) else { return nil }
        self.init(pattern: pattern, type: t)
    }

    public var description: String { "\(pattern)=\(type)" }

    /// Whether `name` matches the pattern (`*` = any run of characters).
    public func matches(_ name: String) -> Bool {
        KeepRule.glob(Array(pattern.utf8)[...], Array(name.utf8)[...])
    }

    static func glob(_ p: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>) -> Bool {
        guard let c = p.first else { return s.isEmpty }
        if c == UInt8(ascii: "*") {
            let rest = p.dropFirst()
            var t = s
            while true {
                if glob(rest, t) { return true }
                guard !t.isEmpty else { return false }
                t = t.dropFirst()
            }
        }
        guard let d = s.first, d == c else { return false }
        return glob(p.dropFirst(), s.dropFirst())
    }
}

/// The per-tensor storage policy of `tslm convert --type` and `tslm quantize`
/// (`formats/tslm.md`, "Quantization policy").
public enum QuantizationPolicy {
    /// A one-line statement of the policy, stored as `general.quantization_policy`.
    public static let summary = "1-D tensors f32; non-float unchanged; quantized types need rows of whole 32-blocks (else f16); token_embd/output q8_0 under 4-bit types; ts.* (time-series encoder, projector, perceiver) f16 under quantized types"

    /// Tensors that keep 8 bits when the target is a 4-bit type.
    public static let highPrecisionTensors: Set<String> = ["token_embd.weight", "output.weight"]

    /// The storage type for a tensor of `dtype` and `shape` named `name`. The first of `keep`
    /// whose pattern matches decides a floating-point matrix's type (f16 when a block type does
    /// not fit its rows); other tensors follow the policy.
    public static func storageType(name: String, dtype: DType, shape: [Int], target: TargetType, keep: [KeepRule]) -> DType {
        guard dtype.isFloatingPoint, shape.count >= 2, let rule = keep.first(where: { $0.matches(name) }) else {
            return storageType(name: name, dtype: dtype, shape: shape, target: target)
        }
        guard rule.type.isQuantized else { return rule.type }
        guard let inner = shape.last, inner > 0, inner % rule.type.blockSize == 0 else { return .f16 }
        return rule.type
    }

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
