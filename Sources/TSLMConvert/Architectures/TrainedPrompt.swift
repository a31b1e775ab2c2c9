import Foundation
import TSLMFormat

extension TrainedPrompt {
    /// Reads a JSON object with `pre_prompt`, `series_description_template` and `post_prompt`
    /// (strings) and optional `channels` (strings, the channel names in prompt order); other keys
    /// are ignored (tools/basicmotions.py writes such a file next to the demo).
    public init(jsonFile path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TSLMError.io(file: path, operation: "read", errno: FileManager.default.fileExists(atPath: path) ? EIO : ENOENT)
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TSLMError.malformed(file: path, reason: "not a JSON object")
        }
        func text(_ key: String) throws -> String {
            guard let v = object[key] as? String else {
                throw TSLMError.malformed(file: path, reason: "needs a string '\(key)'")
            }
            return v
        }
        var channels: [String]?
        if let c = object["channels"] {
            guard let names = c as? [String] else { throw TSLMError.malformed(file: path, reason: "'channels' must be an array of strings") }
            channels = names
        }
        self.init(pre: try text("pre_prompt"), series: try text("series_description_template"), post: try text("post_prompt"),
                  channels: channels)
    }
}
