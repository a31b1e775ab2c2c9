import TSLMFormat
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
        guard let reader = try? FileReader(path: path) else { throw bad("cannot be read") }
        guard reader.size <= UInt64(maxBytes) else { throw bad("is larger than \(maxBytes >> 20) MiB") }
        guard let bytes = try? reader.readAll() else { throw bad("cannot be read") }
        return try parse(bytes, path: path)
    }

    /// Parses the bytes of a series file (`path` names it in errors).
    public static func parse(_ data: some Sequence<UInt8>, path: String) throws -> SeriesFile {
        func bad(_ reason: String) -> RuntimeError { .invalidArgument(name: "series file \(path)", reason: reason) }
        let bytes = Array(data)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw bad("is not UTF-8 text") }
        let file: SeriesFile
        if text.first(where: { !$0.isWhitespace }) == "[" {
            file = try readJSON(bytes, path: path, bad: bad)
        } else {
            file = try readCSV(text, path: path, bad: bad)
        }
        guard !file.channels.isEmpty, file.length > 0 else { throw bad("holds no samples") }
        return file
    }

    private static func readJSON(_ bytes: [UInt8], path: String, bad: (String) -> RuntimeError) throws -> SeriesFile {
        /// The array's numbers when it is an array of numbers only.
        func numbers(_ v: JSONValue) -> [Double]? {
            guard let items = v.arrayValue else { return nil }
            let values = items.compactMap(\.doubleValue)
            return values.count == items.count ? values : nil
        }
        let root = try? JSONValue.parse(bytes)
        let channels: [[Double]]
        if let root, let flat = numbers(root) {
            channels = [flat]
        } else if let items = root?.arrayValue, case let nested = items.compactMap(numbers), nested.count == items.count {
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
            let line = raw.trimmingHorizontalSpace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingHorizontalSpace() }
            let values = fields.map { Double($0) }
            if columns.isEmpty && names == nil && values.contains(where: { $0 == nil }) {
                names = fields.map { f in String(f.trimming(while: { $0 == "\"" })) }
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
            lines.append("  \(name): mean \(String(cFormat: "%.4f", s.mean)), std \(String(cFormat: "%.4f", s.std))")
        }
        return lines.joined(separator: "\n")
    }
}

extension StringProtocol {
    /// The text without the leading and trailing characters that satisfy `predicate`.
    public func trimming(while predicate: (Character) -> Bool) -> SubSequence {
        guard let first = firstIndex(where: { !predicate($0) }), let last = lastIndex(where: { !predicate($0) }) else {
            return self[endIndex...]
        }
        return self[first...last]
    }

    /// The text without leading and trailing spaces and tabs (what Foundation's
    /// `trimmingCharacters(in: .whitespaces)` removes: tab and the space separators, not line
    /// breaks).
    public func trimmingHorizontalSpace() -> String {
        String(trimming(while: \.isHorizontalSpace))
    }
}

extension Character {
    /// A tab or a Unicode space separator (general category Zs): Foundation's
    /// `CharacterSet.whitespaces`.
    public var isHorizontalSpace: Bool {
        unicodeScalars.allSatisfy { $0 == "\t" || $0.properties.generalCategory == .spaceSeparator }
    }
}
