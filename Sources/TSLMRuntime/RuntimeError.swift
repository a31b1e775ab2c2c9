/// Errors of model loading and inference. Each names the tensor, key or argument at fault.
public enum RuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownArchitecture(String)
    case missingTensor(String)
    case badTensorShape(tensor: String, expected: [Int], found: [Int])
    case unsupportedDType(tensor: String, dtype: String)
    case badHyperparameter(key: String, reason: String)
    case emptyPrompt
    case promptTooLong(tokens: Int, context: Int)
    case contextFull(context: Int)
    case tokenOutOfRange(id: Int32, vocabularySize: Int)
    case noChatTemplate
    case invalidArgument(name: String, reason: String)
    case tokenizer(String)
    case wrongKind(operation: String, kind: String)
    /// `general.family` is absent; `legacyTimeSeries`: the file has the `timeseries.*` keys of
    /// files written before families.
    case missingFamily(legacyTimeSeries: Bool)
    /// `general.family` names a family this build does not run; `reserved`: a name the format
    /// reserves for a family on the roadmap.
    case unknownFamily(String, reserved: Bool)
    /// The CPU lacks instruction-set extensions this build's kernels use.
    case unsupportedCPU(missing: String, required: String)
    /// A ChatTime model whose vocabulary lacks value tokens (`count` of 10,001 missing, the
    /// first being `first`).
    case missingValueTokens(first: String, count: Int)
    /// None of the sampled analysis answers names a choice `(a)`, `(b)` or `(c)`.
    case noChoice(samples: Int, first: String)
    /// The session's abort check asked to stop a prompt run after `done` of `total` positions.
    case aborted(done: Int, total: Int)
    /// The load's progress callback asked to stop after `done` of `total` tensors of `file`.
    case loadAborted(file: String, done: Int, total: Int)

    public var description: String {
        switch self {
        case let .unknownArchitecture(a): "unknown architecture '\(a)' (this runtime runs: \(BackboneRegistry.names.joined(separator: ", ")))"
        case let .missingTensor(t): "the model has no tensor '\(t)'"
        case let .badTensorShape(t, e, f): "tensor '\(t)' has shape \(f), expected \(e)"
        case let .unsupportedDType(t, d): "tensor '\(t)' has dtype \(d), which the runtime cannot compute with"
        case let .badHyperparameter(k, r): "metadata '\(k)': \(r)"
        case .emptyPrompt: "the prompt is empty (no tokens to run)"
        case let .promptTooLong(n, c): "the prompt has \(n) tokens, more than the context length \(c)"
        case let .contextFull(c): "the context of \(c) tokens is full"
        case let .tokenOutOfRange(id, v): "token id \(id) is out of range (vocabulary size \(v))"
        case .noChatTemplate: "the model has no chat template this runtime knows (ChatML, Llama-3, Gemma, Alpaca)"
        case let .invalidArgument(n, r): "invalid argument \(n): \(r)"
        case let .tokenizer(m): "tokenizer: \(m)"
        case let .wrongKind(op, k): "\(op) needs a model of another kind: this one is a \(k) model"
        case let .missingFamily(legacy):
            "metadata 'general.family' is missing" + (legacy ? " (the file has 'timeseries.*' keys)" : "")
                + ": the file was written before model families (tslm 0.1); re-convert it with `tslm convert` (formats/tslm.md, version history)"
        case let .unsupportedCPU(missing, required):
            "this CPU lacks \(missing), which this build's kernels use (\(required): a Haswell / Zen or newer x86-64); build with TSLM_PORTABLE=1 for the portable kernels"
        case let .missingValueTokens(first, count):
            "the vocabulary lacks \(count) of ChatTime's 10,001 value tokens (the first missing: '\(first)'): this is not a ChatTime model"
        case let .aborted(done, total):
            "aborted by the abort callback after \(done) of \(total) prompt positions (none of them stays in the context)"
        case let .loadAborted(file, done, total):
            "loading \(file) was stopped by the progress callback after \(done) of \(total) steps"
        case let .noChoice(samples, first):
            "none of the \(samples) sampled answers names a choice (a), (b) or (c) before its first '.' (the first answer: '\(first)'); ask a multiple-choice question that lists (a), (b) and (c)"
        case let .unknownFamily(name, reserved):
            "metadata 'general.family' is '\(name)', " + (reserved ? "a family reserved for a model this build cannot run yet" : "not a model family")
                + " (this runtime runs: \(FamilyRegistry.names.joined(separator: ", ")))"
        }
    }
}
