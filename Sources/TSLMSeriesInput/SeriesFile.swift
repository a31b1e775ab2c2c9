import Foundation
import TSLMRuntime

/// A recording read from a file: channels of equal length, and their names when the file has
/// them.
///
/// - CSV: one column per channel, one row per sample; a first row that is not all numbers is
///   the header (the channel names). Empty lines are skipped; `#` starts a comment line.
/// - JSON: an array of numbers (one channel) or an array of arrays of numbers (one per channel).
public struct SeriesFile: Sendable {
    public let path: String
    public let names: [String]?
    /// [channel][sample], as float32 (what the models compute with).
    public let channels: [[Float]]
    /// [channel][sample] as the file's text spells them (float64): for families that compute in
    /// float64, as their reference code does (ChatTime's scaler).
    public let values: [[Double]]

    public var length: Int { channels.first?.count ?? 0 }

    public init(path: String, names: [String]?, channels: [[Float]]) {
        self.init(path: path, names: names, values: channels.map { $0.map(Double.init) })
    }

    public init(path: String, names: [String]?, values: [[Double]]) {
        self.path = path
        self.names = names
        self.values = values
        channels = values.map { $0.map(Float.init) }
    }

    /// The largest file read (a recording is a few MB at most).
    public static let maxBytes = 256 << 20

    public static func read(_ path: String) throws -> SeriesFile {
        func bad(_ reason: String) -> RuntimeError { .invalidArgument(name: "series file \(path)", reason: reason) }
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path) else { throw bad("cannot be read") }
        guard (attrs[.size] as? Int ?? 0) <= maxBytes else { throw bad("is larger than \(maxBytes >> 20) MiB") }
        guard let data = FileManager.default.contents(atPath: path) else { throw bad("cannot be read") }
        return try parse(data, path: path)
    }

    /// Parses the bytes of a series file (`path` names it in errors).
    public static func parse(_ data: Data, path: String) throws -> SeriesFile {
        func bad(_ reason: String) -> RuntimeError { .invalidArgument(name: "series file \(path)", reason: reason) }
        guard let text = String(data: data, encoding: .utf8) else { throw bad("is not UTF-8 text") }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let file: SeriesFile
        if trimmed.hasPrefix("[") {
            file = try readJSON(data, path: path, bad: bad)
        } else {
            file = try readCSV(text, path: path, bad: bad)
        }
        guard !file.channels.isEmpty, file.length > 0 else { throw bad("holds no samples") }
        return file
    }

    private static func readJSON(_ data: Data, path: String, bad: (String) -> RuntimeError) throws -> SeriesFile {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .throw
        let channels: [[Double]]
        if let flat = try? decoder.decode([Double].self, from: data) {
            channels = [flat]
        } else if let nested = try? decoder.decode([[Double]].self, from: data) {
            guard Set(nested.map(\.count)).count <= 1 else { throw bad("channels have different lengths \(nested.map(\.count))") }
            channels = nested
        } else {
            throw bad("is neither a JSON array of numbers nor an array of arrays of numbers")
        }
        try checkFinite(channels, bad: bad)
        return SeriesFile(path: path, names: nil, values: channels)
    }

    /// Names the first non-finite value (JSON cannot hold one, but a CSV "nan" or "1e99" can).
    private static func checkFinite(_ channels: [[Double]], bad: (String) -> RuntimeError) throws {
        for (c, ch) in channels.enumerated() {
            if let t = ch.firstIndex(where: { !Float($0).isFinite }) {
                throw bad("channel \(c), sample \(t): \(ch[t]) is not finite")
            }
        }
    }

    private static func readCSV(_ text: String, path: String, bad: (String) -> RuntimeError) throws -> SeriesFile {
        var names: [String]?
        var columns: [[Double]] = []
        var lineNumber = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let values = fields.map { Double($0) }
            if columns.isEmpty && names == nil && values.contains(where: { $0 == nil }) {
                names = fields.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
                continue
            }
            if columns.isEmpty { columns = Array(repeating: [], count: fields.count) }
            guard fields.count == columns.count, names == nil || names?.count == fields.count else {
                throw bad("line \(lineNumber) has \(fields.count) fields, expected \(names?.count ?? columns.count)")
            }
            for (c, v) in values.enumerated() {
                guard let v else { throw bad("line \(lineNumber), column \(c + 1): '\(fields[c].prefix(32))' is not a number") }
                guard Float(v).isFinite else { throw bad("line \(lineNumber), column \(c + 1): '\(fields[c].prefix(32))' is not finite") }
                columns[c].append(v)
            }
        }
        return SeriesFile(path: path, names: names, values: columns)
    }

    /// Raw mean and unbiased std of each channel, for the summary.
    public var statistics: [(mean: Double, std: Double)] {
        channels.map { x in
            let n = Double(x.count)
            let mean = x.reduce(0.0) { $0 + Double($1) } / n
            let ss = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) }
            return (mean, x.count > 1 ? (ss / (n - 1)).squareRoot() : 0)
        }
    }

    /// "rec.csv: 3 channels × 100 samples" and one line per channel.
    public func summary() -> String {
        var lines = ["series \(path): \(channels.count) channel\(channels.count == 1 ? "" : "s") × \(length) samples"]
        for (c, s) in statistics.enumerated() {
            let name = names?[c] ?? "channel \(c)"
            lines.append("  \(name): mean \(String(format: "%.4f", s.mean)), std \(String(format: "%.4f", s.std))")
        }
        return lines.joined(separator: "\n")
    }
}
