import Foundation
import TSLMFormat

/// The prompt an OpenTSLM model was trained with: the text before the series, the description
/// template of each series and the text after them. Stored in the model file as
/// `timeseries.prompt.pre`, `timeseries.prompt.series`, `timeseries.prompt.post`.
public struct TrainedPrompt: Sendable, Equatable {
    public var pre: String
    public var series: String
    public var post: String

    public init(pre: String, series: String, post: String) {
        self.pre = pre
        self.series = series
        self.post = post
    }

    /// Reads a JSON object with `pre_prompt`, `series_description_template` and `post_prompt`
    /// (strings; other keys are ignored).
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
        self.init(pre: try text("pre_prompt"), series: try text("series_description_template"), post: try text("post_prompt"))
    }
}
