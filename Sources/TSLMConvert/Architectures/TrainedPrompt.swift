import TSLMFormat

extension TrainedPrompt {
    /// Reads a JSON object with `pre_prompt`, `series_description_template` and `post_prompt`
    /// (strings) and optional `channels` (strings, the channel names in prompt order); other keys
    /// are ignored (tools/basicmotions.py writes such a file next to the demo).
    public init(jsonFile path: String) throws {
        guard let object = try JSONValue.parseFile(path).value.objectValue else {
            throw TSLMError.malformed(file: path, reason: "not a JSON object")
        }
        func text(_ key: String) throws -> String {
            guard let v = object[key]?.stringValue else {
                throw TSLMError.malformed(file: path, reason: "needs a string '\(key)'")
            }
            return v
        }
        var channels: [String]?
        if let c = object["channels"] {
            guard let names = c.stringArrayValue else { throw TSLMError.malformed(file: path, reason: "'channels' must be an array of strings") }
            channels = names
        }
        self.init(pre: try text("pre_prompt"), series: try text("series_description_template"), post: try text("post_prompt"),
                  channels: channels)
    }
}
