/// The prompt an OpenTSLM model was trained with: the text before the series, the description
/// template of each series, the text after them and, when known, the channel names in prompt
/// order. Stored in the model file as `opentslm.prompt.pre`, `.series`, `.post` and `.channels`
/// (written by `tslm convert --prompt`), read by the runtime (`TextSession.appendRecording`), so
/// that programs rebuild the prompt from the model file alone.
public struct TrainedPrompt: Sendable, Equatable {
    public var pre: String
    public var series: String
    public var post: String
    /// The channel names in the order the model saw them (e.g. "accelerometer_x"), if recorded.
    public var channels: [String]?

    public init(pre: String, series: String, post: String, channels: [String]? = nil) {
        self.pre = pre
        self.series = series
        self.post = post
        self.channels = channels
    }

    /// The prompt stored in `metadata`, nil when it has none. A partial prompt (some of pre /
    /// series / post missing) is an error naming the missing key.
    public init?(metadata m: Metadata) throws {
        typealias K = MetadataKeys.OpenTSLM
        let keys = [K.promptPre, K.promptSeries, K.promptPost]
        let values = keys.map { m.string($0) }
        if values.allSatisfy({ $0 == nil }) { return nil }
        for (k, v) in zip(keys, values) where v == nil {
            throw TSLMError.malformed(file: "metadata", reason: "'\(k)' is missing or not a string (the prompt keys go together)")
        }
        self.init(pre: values[0]!, series: values[1]!, post: values[2]!, channels: m.strings(K.promptChannels))
    }

    /// Writes the prompt's keys into `metadata`.
    public func write(into m: inout Metadata) {
        typealias K = MetadataKeys.OpenTSLM
        m[K.promptPre] = .string(pre)
        m[K.promptSeries] = .string(series)
        m[K.promptPost] = .string(post)
        if let channels { m[K.promptChannels] = .array(.string(channels)) }
    }
}
