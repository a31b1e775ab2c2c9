import TSLMFormat

/// What `--type` asks for.
public enum TargetType: Equatable, Sendable, CustomStringConvertible {
    /// Keep each tensor's source type where `.tslm` has it.
    case source
    /// Store floating-point matrices as this type (see the policy below).
    case type(DType)
    /// llama.cpp's "_M" mixes of a K type (`q4_k_m`, `q5_k_m`): the base type, with q6_k for
    /// the attention value and FFN down matrices of a subset of layers (`QuantizationPolicy`).
    case kMix(DType)

    /// The storage types `--type` and `--keep` accept.
    static let storable: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q4_k, .q5_k, .q6_k]

    /// Parses `source`, a name of `storable`, `q4_k_m` or `q5_k_m`.
    public init?(name: String) {
        let name = name.lowercased()
        if name == "source" { self = .source; return }
        if name == "q4_k_m" { self = .kMix(.q4_k); return }
        if name == "q5_k_m" { self = .kMix(.q5_k); return }
        guard let t = DType(name: name), TargetType.storable.contains(t) else { return nil }
        self = .type(t)
    }

    public static let names = ["source"] + storable.map(\.description) + ["q4_k_m", "q5_k_m"]

    public var description: String {
        switch self {
        case .source: "source"
        case let .type(t): t.description
        case let .kMix(t): t.description + "_m"
        }
    }

    /// Whether the target stores K types (whose quantizer always searches).
    public var usesKQuants: Bool {
        switch self {
        case .source: false
        case let .type(t): t.isKQuant
        case .kMix: true
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

    /// Parses `PATTERN=TYPE` with TYPE one of `TargetType.storable`; nil otherwise.
    public init?(parsing text: String) {
        guard let eq = text.lastIndex(of: "=") else { return nil }
        let pattern = String(text[..<eq]), name = String(text[text.index(after: eq)...])
        guard !pattern.isEmpty, let t = DType(name: name), TargetType.storable.contains(t) else { return nil }
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
    public static let summary = "1-D tensors f32; non-float unchanged; quantized types need rows of whole blocks (K types: 256; else q4_k→q4_1, q5_k/q6_k→q8_0; else f16); token_embd/output q8_0 under q4_0/q4_1, q6_k under K types; *_m mixes: attn_v/ffn_down q6_k in layers i < n/8, i ≥ 7n/8 and every third between; ts.* (time-series encoder, projector, perceiver) f16 under quantized types"

    /// Tensors that keep more bits when the target is a 4-bit or K type.
    public static let highPrecisionTensors: Set<String> = ["token_embd.weight", "output.weight"]

    /// The storage type for a tensor of `dtype` and `shape` named `name` in a model of
    /// `layerCount` transformer blocks. The first of `keep` whose pattern matches decides a
    /// floating-point matrix's type (a block type that does not fit its rows falls back as the
    /// policy does); other tensors follow the policy.
    public static func storageType(name: String, dtype: DType, shape: [Int], target: TargetType, keep: [KeepRule],
                                   layerCount: Int = 0) -> DType {
        guard dtype.isFloatingPoint, shape.count >= 2, let rule = keep.first(where: { $0.matches(name) }) else {
            return storageType(name: name, dtype: dtype, shape: shape, target: target, layerCount: layerCount)
        }
        return fitting(rule.type, shape: shape)
    }

    /// The storage type for a tensor of `dtype` and `shape` named `name`.
    public static func storageType(name: String, dtype: DType, shape: [Int], target: TargetType, layerCount: Int = 0) -> DType {
        guard dtype.isFloatingPoint else { return dtype }
        let t: DType, mix: Bool
        switch target {
        case .source:
            return dtype == .f64 ? .f32 : dtype
        case let .type(type):
            t = type
            mix = false
        case let .kMix(type):
            t = type
            mix = true
        }
        if shape.count < 2 { return .f32 }
        guard t.isQuantized else { return t }
        // The time-series encoder, projector and perceiver (OpenTSLM), the patch embedding,
        // prototypes, reprogramming and head (Time-LLM) are small and feed every soft token,
        // latent or forecast: they keep f16 under block quantization.
        if name.hasPrefix(TensorNames.OpenTSLM.prefix) || name.hasPrefix(TensorNames.TimeLLM.prefix) { return .f16 }
        // An LSTM forecaster is a few thousand weights whose errors compound over the steps:
        // it stays f32.
        if name.hasPrefix(TensorNames.LSTM.prefix) { return .f32 }
        var wanted = t
        if highPrecisionTensors.contains(name) {
            if t.isKQuant { wanted = .q6_k } else if t == .q4_0 || t == .q4_1 { wanted = .q8_0 }
        } else if mix, let layer = layerIndex(name), name.hasSuffix(".attn_v.weight") || name.hasSuffix(".ffn_down.weight"),
                  moreBits(layer: layer, of: layerCount) {
            wanted = .q6_k
        }
        return fitting(wanted, shape: shape)
    }

    /// `type`, or what replaces it when a row is not a whole number of its blocks: q4_k gives
    /// q4_1, q5_k and q6_k give q8_0 (the nearest 32-weight types at or above their bits), and a
    /// row that is not a whole number of 32-blocks gives f16.
    static func fitting(_ type: DType, shape: [Int]) -> DType {
        guard type.isQuantized else { return type }
        guard let inner = shape.last, inner > 0 else { return .f16 }
        if inner % type.blockSize == 0 { return type }
        let fallback: DType = type == .q4_k ? .q4_1 : .q8_0
        return type.isKQuant && inner % fallback.blockSize == 0 ? fallback : .f16
    }

    /// N of a `blk.N.…` name.
    static func layerIndex(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: ".") else { return nil }
        return Int(rest[..<dot])
    }

    /// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third
    /// layer in between.
    static func moreBits(layer i: Int, of n: Int) -> Bool {
        guard n > 0 else { return false }
        return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }

    /// The number of transformer blocks among `names` (one more than the largest `blk.N.`).
    public static func layerCount(_ names: [String]) -> Int {
        names.compactMap(layerIndex).max().map { $0 + 1 } ?? 0
    }
}
