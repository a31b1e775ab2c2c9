import TSLMFormat
import TSLMKernels
import TSLMTokenizers

/// A loaded `.tslm` model: the mapped file and the family built from it (`general.family`).
public final class LoadedModel: @unchecked Sendable {
    public let file: TSLMFile
    public let family: any ModelFamily

    /// Opens, validates and maps `path`, then builds its family.
    public convenience init(path: String, mmap: Bool = true) throws {
        try self.init(file: TSLMFile(path: path, mmap: mmap))
    }

    /// Builds the family of an opened file. A CPU without the instruction-set extensions of this
    /// build's kernels is refused first (`RuntimeError.unsupportedCPU`), before any kernel runs.
    public init(file: TSLMFile) throws {
        try Self.checkCPU()
        self.file = file
        family = try FamilyRegistry.load(file)
    }

    /// Builds the family of an opened file, reporting progress: `progress(done, total)` is called
    /// as the family reads its tensors (total: the file's tensor count; a last call with
    /// (total, total) when the model is built). Returning false stops the load with
    /// `RuntimeError.loadAborted`; nothing of the model stays allocated.
    public init(file: TSLMFile, progress: @escaping (Int, Int) -> Bool) throws {
        try Self.checkCPU()
        self.file = file
        let total = file.tensors.count
        var done = 0
        file.tensorReadObserver = { [unowned file] _ in
            guard progress(done, total) else { throw RuntimeError.loadAborted(file: file.path, done: done, total: total) }
            done = min(done + 1, total)
        }
        defer { file.tensorReadObserver = nil }
        family = try FamilyRegistry.load(file)
        guard progress(total, total) else { throw RuntimeError.loadAborted(file: file.path, done: total, total: total) }
    }

    /// Throws `RuntimeError.unsupportedCPU` naming what the CPU lacks (`CPUFeatures`).
    public static func checkCPU() throws {
        let missing = CPUFeatures.missing
        guard missing.isEmpty else {
            throw RuntimeError.unsupportedCPU(missing: missing.description, required: CPUFeatures.required.description)
        }
    }

    /// What the model does.
    public var kind: ModelKind { family.kind }

    /// The text backbone and tokenizer; a family without them (e.g. an LSTM) throws
    /// `RuntimeError.wrongKind` naming `operation`.
    public func language(for operation: String) throws -> LanguageModel {
        guard let language = family.language else { throw RuntimeError.wrongKind(operation: operation, kind: kind.rawValue) }
        return language
    }

    /// The text backbone (see `language(for:)`).
    public var backbone: any TextModel { get throws { try language(for: "running the text backbone").backbone } }

    /// The tokenizer (see `language(for:)`).
    public var tokenizer: Tokenizer { get throws { try language(for: "tokenizing").tokenizer } }

    /// The chat template named by the file's `tokenizer.chat_template`, if recognized.
    public var chatTemplate: ChatTemplate? { ChatTemplate.detect(jinja: file.metadata.string(MetadataKeys.chatTemplate)) }

    /// Forecasts with the model's family: `RuntimeError.wrongKind` when it cannot forecast; the
    /// request is checked first. The forecast has one row per output channel of the model (for
    /// most models the history's channels).
    public func forecast(_ request: ForecastRequest, pool: ThreadPool? = nil) throws -> Forecast {
        try request.validate(allowMissing: (family as? any Forecaster)?.acceptsMissingValues ?? false)
        guard let forecaster = family as? any Forecaster else {
            throw RuntimeError.wrongKind(operation: "forecasting", kind: kind.rawValue)
        }
        let result = try forecaster.forecast(request, pool: pool)
        guard !result.point.isEmpty, result.point.allSatisfy({ $0.count == request.horizon }),
              result.quantiles.isEmpty && request.quantileLevels.isEmpty
                || result.quantiles.count == result.point.count
                && result.quantiles.allSatisfy({ $0.count == request.quantileLevels.count && $0.allSatisfy { $0.count == request.horizon } })
        else {
            throw RuntimeError.invalidArgument(name: "forecast", reason: "the \(family.name) family returned a forecast of the wrong shape")
        }
        return result
    }
}
