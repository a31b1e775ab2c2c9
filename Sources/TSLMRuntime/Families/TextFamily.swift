import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// A text backbone alone (`general.family` = `text`): text in, text out. Text runs through the
/// backbone as it is appended.
public final class TextFamily: PromptFamily, @unchecked Sendable {
    public let name = ModelFamilyName.text.rawValue
    public let kind = ModelKind.text
    public let backbone: any TextModel
    public let tokenizer: Tokenizer

    public init(file: TSLMFile) throws {
        let language = try LanguageModel(file: file)
        backbone = language.backbone
        tokenizer = language.tokenizer
    }

    public var defersPrompt: Bool { false }

    public func makePromptState() -> (any PromptState)? { nil }

    public func prepareSeries(_ values: [Float], length: Int, channels: Int, position: Int, description: String?,
                              names: [String?]?, preset: SeriesPreset?) throws -> [PreparedSeries] {
        throw RuntimeError.wrongKind(operation: "appending a series", kind: kind.rawValue)
    }

    public func promptRows(_ parts: [PromptPart], startsContext: Bool, countOnly: Bool, state: (any PromptState)?,
                           pool: ThreadPool?) throws -> PromptRows {
        try textRows(parts)
    }
}
