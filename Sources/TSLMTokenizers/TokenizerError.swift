/// Every error the tokenizers raise. Messages name the metadata key or token at fault.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A tokenizer model, pre-tokenizer or normalizer this build does not implement.
    case unsupported(String)
    /// A required metadata key is missing or has the wrong type.
    case missingKey(String)
    /// The metadata is inconsistent (counts differ, a merge names an unknown token, …).
    case malformed(key: String, reason: String)
    /// A token id outside `0..<vocabularySize`.
    case invalidTokenID(id: Int32, vocabularySize: Int)

    public var description: String {
        switch self {
        case let .unsupported(what): "tokenizer: unsupported \(what)"
        case let .missingKey(key): "tokenizer: required metadata key '\(key)' is missing or has the wrong type"
        case let .malformed(key, reason): "tokenizer: malformed '\(key)': \(reason)"
        case let .invalidTokenID(id, n): "tokenizer: token id \(id) is outside the vocabulary (0..<\(n))"
        }
    }
}
