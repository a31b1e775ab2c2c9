import TSLMFormat

/// A forecaster's sidecar JSON object (an LSTM's `forecast.json`, a Time-LLM's `timellm.json`),
/// read with the project's JSON parser; every accessor's error names the file and the key.
struct SidecarJSON {
    let path: String
    let object: JSONMembers

    init(path: String) throws {
        guard let o = try JSONValue.parseFile(path, maxBytes: 16 << 20).value.objectValue else {
            throw TSLMError.malformed(file: path, reason: "not a JSON object")
        }
        self.path = path
        object = o
    }

    func bad(_ reason: String) -> TSLMError { .malformed(file: path, reason: reason) }

    func has(_ key: String) -> Bool { object[key] != nil }

    func int(_ key: String) throws -> Int {
        guard let v = object[key]?.intValue, v > 0, v <= 1 << 20 else { throw bad("needs a positive integer '\(key)'") }
        return v
    }

    func string(_ key: String) throws -> String {
        guard let v = object[key]?.stringValue else { throw bad("needs a string '\(key)'") }
        return v
    }

    func names(_ key: String) throws -> [String] {
        guard let a = object[key]?.arrayValue, !a.isEmpty else { throw bad("needs a non-empty array of strings '\(key)'") }
        let v = a.compactMap(\.stringValue)
        guard v.count == a.count else { throw bad("needs a non-empty array of strings '\(key)'") }
        return v
    }

    func floats(_ key: String, count: Int, positive: Bool) throws -> [Float] {
        guard let a = object[key]?.arrayValue else { throw bad("needs '\(key)': \(count) numbers") }
        let v = a.compactMap(\.doubleValue)
        guard v.count == a.count, v.count == count else { throw bad("needs '\(key)': \(count) numbers") }
        if let x = v.first(where: { !$0.isFinite || (positive && $0 <= 0) }) {
            throw bad("'\(key)' holds \(x), not a \(positive ? "positive " : "")finite number")
        }
        return v.map(Float.init)
    }
}
