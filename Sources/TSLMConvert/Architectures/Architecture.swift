import TSLMFormat

/// How a source tensor becomes a `.tslm` tensor.
public enum TensorNameMapping: Equatable, Sendable {
    /// Store under this name, with this transform.
    case map(String, TensorTransform)
    /// Not a weight (e.g. a cached rotary table or an attention mask buffer): left out.
    case drop
    /// Not part of the architecture: the converter stops with `unmappedTensor`.
    case unknown
}

/// A layout change applied while importing.
public enum TensorTransform: Equatable, Sendable {
    case none
    /// Swap the two dimensions of a matrix (GPT-2's Conv1D stores [in, out]).
    case transpose
}

/// One model architecture as the converter sees it: how a Hugging Face `config.json` becomes
/// `<arch>.*` metadata, and how source tensor names become `.tslm` names. The runtime's model
/// code reads the same names (see `formats/tslm.md`, "Tensor naming").
public protocol Architecture {
    /// `general.architecture`.
    static var name: String { get }
    /// The `model_type` values of Hugging Face configs this architecture imports.
    static var huggingFaceModelTypes: [String] { get }
    /// Top-level (non-block) tensor names, e.g. `token_embd.weight`.
    static var globalTensorNames: Set<String> { get }
    /// Per-block tensor suffixes, e.g. `attn_q.weight` for `blk.N.attn_q.weight`.
    static var blockTensorSuffixes: Set<String> { get }
    /// `<arch>.*` metadata from a Hugging Face `config.json`.
    static func metadata(huggingFaceConfig config: JSONObject, file: String) throws -> Metadata
    /// The `.tslm` name for a Hugging Face tensor name.
    static func mapHuggingFaceName(_ name: String) -> TensorNameMapping
}

extension Architecture {
    /// True when `name` is one of this architecture's `.tslm` tensor names.
    public static func isCanonicalName(_ name: String) -> Bool {
        if globalTensorNames.contains(name) { return true }
        guard name.hasPrefix("blk.") else { return false }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), Int(rest[..<dot]) != nil else { return false }
        return blockTensorSuffixes.contains(String(rest[rest.index(after: dot)...]))
    }
}

/// The architectures the converter knows, by name.
public enum Architectures {
    public static let all: [any Architecture.Type] = [LlamaArchitecture.self, Gemma3Architecture.self, GPT2Architecture.self]

    /// The architecture whose `general.architecture` is `name`.
    public static func named(_ name: String) -> (any Architecture.Type)? {
        all.first { $0.name == name }
    }

    /// The architecture for a Hugging Face `model_type`.
    public static func forHuggingFaceModelType(_ type: String) -> (any Architecture.Type)? {
        all.first { $0.huggingFaceModelTypes.contains(type) }
    }
}

/// A parsed JSON object (`JSONValue.parse`), members in document order.
public typealias JSONObject = JSONMembers

extension JSONValue {
    /// The array's elements when it is an array of strings only.
    var stringArrayValue: [String]? {
        guard let items = arrayValue else { return nil }
        let strings = items.compactMap(\.stringValue)
        return strings.count == items.count ? strings : nil
    }
}

/// Typed reads from a Hugging Face config, with errors naming the key.
struct ConfigReader {
    let config: JSONObject
    let file: String

    func int(_ key: String) throws -> Int {
        guard let v = optionalInt(key) else { throw TSLMError.missingKey(file: file, key: key) }
        return v
    }

    func optionalInt(_ key: String) -> Int? {
        if let n = config[key]?.intValue { return n }
        if let d = config[key]?.doubleValue, d == d.rounded(), abs(d) < 1e15 { return Int(d) }
        return nil
    }

    func double(_ key: String) throws -> Double {
        guard let v = optionalDouble(key) else { throw TSLMError.missingKey(file: file, key: key) }
        return v
    }

    func optionalDouble(_ key: String) -> Double? {
        config[key]?.doubleValue
    }

    func optionalBool(_ key: String) -> Bool? { config[key]?.boolValue }

    /// A positive integer within a sane range (guards against absurd configs).
    func dimension(_ key: String, max: Int = 1 << 24) throws -> UInt32 {
        let v = try int(key)
        guard v > 0, v <= max else {
            throw TSLMError.malformed(file: file, reason: "config key '\(key)' = \(v) is out of range 1...\(max)")
        }
        return UInt32(v)
    }
}

/// Splits `model.layers.12.self_attn.q_proj.weight` at the layer index:
/// (`model.layers.`, 12, `self_attn.q_proj.weight`).
func splitLayerName(_ name: String, prefix: String) -> (layer: Int, rest: String)? {
    guard name.hasPrefix(prefix) else { return nil }
    let tail = name.dropFirst(prefix.count)
    guard let dot = tail.firstIndex(of: "."), let n = Int(tail[..<dot]), n >= 0 else { return nil }
    return (n, String(tail[tail.index(after: dot)...]))
}
