import Synchronization
import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// A model family: what the runtime builds from a `.tslm` file whose `general.family` names it.
/// The family owns its configuration, its parts, how its inputs enter the model, its per-session
/// state and its capabilities. Each lives in its own folder under `Families/`; adding one is a
/// folder plus one line in `FamilyRegistry.builtIn` (formats/tslm.md, "Model families").
///
/// Capabilities are protocols a family adopts:
/// - `PromptFamily`: its inputs become a prompt for a text backbone, so `TextSession` can run
///   and generate with it (text models, OpenTSLM; later ChatTime).
/// - `Forecaster`: a history in, a forecast out (later Time-LLM, LSTM, ChatTime).
public protocol ModelFamily: AnyObject, Sendable {
    /// Its `general.family` value.
    var name: String { get }
    /// What the family does (the C API's `TSLM_KIND_*`).
    var kind: ModelKind { get }
    /// The text backbone and its tokenizer, when the family has them (an LSTM has neither).
    var language: LanguageModel? { get }
}

/// A text backbone and its tokenizer.
public struct LanguageModel: @unchecked Sendable {
    public let backbone: any TextModel
    public let tokenizer: Tokenizer

    public init(backbone: any TextModel, tokenizer: Tokenizer) {
        self.backbone = backbone
        self.tokenizer = tokenizer
    }

    /// Builds the backbone of `file`'s `general.architecture` and its tokenizer.
    public init(file: TSLMFile) throws {
        backbone = try BackboneRegistry.load(file)
        do {
            tokenizer = try Tokenizer(metadata: file.metadata)
        } catch {
            throw RuntimeError.tokenizer("\(error)")
        }
    }
}

/// What a model does with its inputs.
public enum ModelKind: String, Sendable {
    /// Text in, text out.
    case text
    /// Series and text in, a rationale ending in "Answer: ..." out (OpenTSLM).
    case classifier
    /// A series' history in, its forecast out (ChatTime, Time-LLM, LSTM).
    case forecaster
}

/// Maps `general.family` to the family's constructor.
public enum FamilyRegistry {
    public typealias Constructor = @Sendable (TSLMFile) throws -> any ModelFamily

    /// The families this build runs.
    static let builtIn: [ModelFamilyName: Constructor] = [
        .text: { try TextFamily(file: $0) },
        .openTSLMSoftPrompt: { try OpenTSLMFamily(file: $0, variant: .softPrompt) },
        .openTSLMFlamingo: { try OpenTSLMFamily(file: $0, variant: .flamingo) },
        .lstm: { try LSTMFamily(file: $0) },
        .timeLLM: { try TimeLLMFamily(file: $0) },
        .chatTime: { try ChatTimeFamily(file: $0) },
    ]

    /// Families registered at run time (by an embedding program or a test), by name.
    private static let registered = Mutex<[String: Constructor]>([:])

    /// Registers a family under `name` (a name not in `ModelFamilyName` or not built in); a later
    /// registration of the same name replaces it.
    public static func register(_ name: String, _ make: @escaping Constructor) {
        registered.withLock { $0[name] = make }
    }

    /// The names this build can load.
    public static var names: [String] {
        (builtIn.keys.map(\.rawValue) + registered.withLock { Array($0.keys) }).sorted()
    }

    /// Builds the family `file`'s `general.family` names. A missing key, an unknown name and a
    /// reserved family this build cannot run are errors naming the key and value.
    public static func load(_ file: TSLMFile) throws -> any ModelFamily {
        guard let name = file.metadata.string(MetadataKeys.family) else {
            // A `raw` file (tensors under their source names) has no family: it is not runnable.
            if file.metadata.string(MetadataKeys.architecture) == "raw" { throw RuntimeError.unknownArchitecture("raw") }
            let legacy = file.metadata.entries.contains { $0.key.hasPrefix(MetadataKeys.legacyTimeSeriesPrefix) }
            throw RuntimeError.missingFamily(legacyTimeSeries: legacy)
        }
        if let known = ModelFamilyName(rawValue: name), let make = builtIn[known] { return try make(file) }
        if let make = registered.withLock({ $0[name] }) { return try make(file) }
        throw RuntimeError.unknownFamily(name, reserved: ModelFamilyName(rawValue: name) != nil)
    }
}
