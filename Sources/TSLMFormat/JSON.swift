// The JSON parser shared by the converter (safetensors headers, tokenizer files) and the
// tokenizers (`tokenizer.huggingface.json`). Standard library only: no Foundation.

/// A parsed JSON document that keeps what importers need and `JSONSerialization` loses: the
/// order of object members, duplicate keys (reported, never merged), numbers as their exact
/// literal text (so 64-bit offsets are not rounded through `Double`), and `true`/`1` as
/// different values.
///
/// Strings and object keys are compared by their exact UTF-8 bytes, never by Swift's `String`
/// equality (canonical equivalence): a vocabulary holds "▁が" (U+304C) and "▁か\u{3099}"
/// (U+304B U+3099) as two different tokens.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's literal text, already checked against the JSON grammar.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONMembers)

    /// A one-word name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [JSONValue]? { if case let .array(a) = self { a } else { nil } }
    public var objectValue: JSONMembers? { if case let .object(o) = self { o } else { nil } }
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The number as a `UInt64` when it is written as a plain non-negative integer (no sign,
    /// fraction or exponent) that fits.
    public var uint64Value: UInt64? {
        guard case let .number(text) = self else { return nil }
        return UInt64(text)
    }

    /// The number as an `Int64` when it is written as a plain integer that fits.
    public var int64Value: Int64? {
        guard case let .number(text) = self else { return nil }
        return Int64(text)
    }

    /// The number as an `Int` when it is written as a plain integer that fits.
    public var intValue: Int? {
        guard case let .number(text) = self else { return nil }
        return Int(text)
    }

    /// The number as a `Double` (any JSON number).
    public var doubleValue: Double? {
        guard case let .number(text) = self else { return nil }
        return Double(text)
    }

    /// Member lookup for objects; `nil` for other kinds or a missing key.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// Equal kinds and contents; strings and keys compare by their UTF-8 bytes.
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.number(x), .number(y)): x.utf8.elementsEqual(y.utf8)
        case let (.string(x), .string(y)): x.utf8.elementsEqual(y.utf8)
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x == y
        default: false
        }
    }
}

/// The members of a JSON object, in document order, with keyed lookup.
public struct JSONMembers: Sendable, Equatable {
    /// Members in the order they appear in the text. Keys are unique by their UTF-8 bytes
    /// (canonically equivalent spellings are different keys).
    public let pairs: [(key: String, value: JSONValue)]
    private let index: [UTF8Key: Int]

    /// Builds an object; returns the first duplicated key (same UTF-8 bytes) instead when there
    /// is one.
    static func make(_ pairs: [(key: String, value: JSONValue)]) -> Result<JSONMembers, DuplicateKey> {
        var index: [UTF8Key: Int] = [:]
        index.reserveCapacity(pairs.count)
        for (i, p) in pairs.enumerated() {
            if index.updateValue(i, forKey: UTF8Key(p.key)) != nil { return .failure(DuplicateKey(key: p.key)) }
        }
        return .success(JSONMembers(pairs: pairs, index: index))
    }

    private init(pairs: [(key: String, value: JSONValue)], index: [UTF8Key: Int]) {
        self.pairs = pairs
        self.index = index
    }

    struct DuplicateKey: Error { let key: String }

    public var count: Int { pairs.count }
    public var keys: [String] { pairs.map(\.key) }
    /// The value of the member whose key has exactly the UTF-8 bytes of `key`.
    public subscript(key: String) -> JSONValue? { index[UTF8Key(key)].map { pairs[$0].value } }

    /// Same members in the same order; keys compare by their UTF-8 bytes.
    public static func == (a: JSONMembers, b: JSONMembers) -> Bool {
        a.pairs.count == b.pairs.count
            && zip(a.pairs, b.pairs).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && $0.value == $1.value }
    }
}

/// Why a JSON text was rejected, with the byte offset where the parser stopped.
public struct JSONParseError: Error, Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        /// The text is not valid UTF-8.
        case invalidUTF8
        /// The text does not follow the JSON grammar; the string says what was expected.
        case syntax(String)
        /// An object repeats a key. `depth` is 1 for members of the top-level object.
        case duplicateKey(String, depth: Int)
        /// Arrays and objects are nested deeper than `JSONValue.maxDepth`.
        case tooDeep
    }

    public let kind: Kind
    public let offset: Int

    /// A message fragment such as "unexpected character at byte 12".
    public var reason: String {
        switch kind {
        case .invalidUTF8: "invalid UTF-8"
        case let .syntax(s): "\(s) at byte \(offset)"
        case let .duplicateKey(k, _): "duplicate key \"\(k)\" at byte \(offset)"
        case .tooDeep: "nesting deeper than \(JSONValue.maxDepth) levels at byte \(offset)"
        }
    }

    /// The matching `TSLMError` for `file`: `invalidUTF8` or `malformed`.
    public func tslmError(file: String, what: String = "JSON text") -> TSLMError {
        if case .invalidUTF8 = kind { return .invalidUTF8(file: file, context: what) }
        return .malformed(file: file, reason: "\(what): \(reason)")
    }
}

extension JSONValue {
    /// Arrays and objects nested deeper than this are rejected (keeps recursion bounded).
    public static let maxDepth = 128

    /// Parses a complete JSON text (RFC 8259). Whitespace may surround the value; nothing else.
    /// Duplicate keys in any object are an error.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw JSONParseError(kind: .invalidUTF8, offset: 0)
        }
        let result: Result<JSONValue, JSONParseError> = bytes.withUnsafeBufferPointer { buf in
            var p = JSONParser(buf)
            do throws(JSONParseError) {
                p.skipWhitespace()
                let v = try p.value(depth: 0)
                p.skipWhitespace()
                guard p.pos == buf.count else { throw p.error("unexpected text after the value") }
                return .success(v)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Reads and parses a JSON file, mapping failures to `TSLMError` naming the file.
    /// Files larger than `maxBytes` are rejected before they are read.
    public static func parseFile(_ path: String, maxBytes: UInt64 = 512 << 20) throws -> (value: JSONValue, text: String) {
        let reader = try FileReader(path: path)
        guard reader.size <= maxBytes else {
            throw TSLMError.malformed(file: path, reason: "JSON file of \(reader.size) bytes exceeds the \(maxBytes)-byte limit")
        }
        let bytes = try reader.readAll()
        do {
            let v = try parse(bytes)
            return (v, String(decoding: bytes, as: UTF8.self))
        } catch {
            throw error.tslmError(file: path)
        }
    }

    /// The value as compact JSON text (members in order; numbers as their literal text).
    public var serialized: String {
        var out = ""
        serialize(into: &out)
        return out
    }

    private func serialize(into out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(n): out += n
        case let .string(s): out += JSONValue.quote(s)
        case let .array(a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                v.serialize(into: &out)
            }
            out += "]"
        case let .object(o):
            out += "{"
            for (i, p) in o.pairs.enumerated() {
                if i > 0 { out += "," }
                out += JSONValue.quote(p.key)
                out += ":"
                p.value.serialize(into: &out)
            }
            out += "}"
        }
    }

    /// `s` as a JSON string literal, quotes included.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// A recursive-descent parser over UTF-8 bytes that were validated beforehand.
private struct JSONParser {
    let buf: UnsafeBufferPointer<UInt8>
    var pos = 0

    init(_ buf: UnsafeBufferPointer<UInt8>) { self.buf = buf }

    func error(_ what: String) -> JSONParseError { JSONParseError(kind: .syntax(what), offset: pos) }

    mutating func skipWhitespace() {
        while pos < buf.count {
            switch buf[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard pos < buf.count else { throw error("unexpected end of text") }
        switch buf[pos] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("unexpected character")
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        guard buf.count - pos >= n else { throw error("unexpected end of text") }
        for i in 0..<n where buf[pos + i] != word.utf8Start[i] { throw error("invalid literal") }
        pos += n
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= JSONValue.maxDepth else { throw JSONParseError(kind: .tooDeep, offset: pos) }
        pos += 1  // {
        var pairs: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if pos < buf.count, buf[pos] == UInt8(ascii: "}") {
            pos += 1
            return .object(try members(pairs, depth: depth))
        }
        while true {
            skipWhitespace()
            guard pos < buf.count, buf[pos] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try string()
            skipWhitespace()
            guard pos < buf.count, buf[pos] == UInt8(ascii: ":") else { throw error("expected ':'") }
            pos += 1
            skipWhitespace()
            let v = try value(depth: depth)
            pairs.append((key, v))
            skipWhitespace()
            guard pos < buf.count else { throw error("unexpected end of text in an object") }
            if buf[pos] == UInt8(ascii: ",") {
                pos += 1
                continue
            }
            guard buf[pos] == UInt8(ascii: "}") else { throw error("expected ',' or '}'") }
            pos += 1
            return .object(try members(pairs, depth: depth))
        }
    }

    func members(_ pairs: [(key: String, value: JSONValue)], depth: Int) throws(JSONParseError) -> JSONMembers {
        switch JSONMembers.make(pairs) {
        case let .success(m): return m
        case let .failure(d): throw JSONParseError(kind: .duplicateKey(d.key, depth: depth), offset: pos)
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth <= JSONValue.maxDepth else { throw JSONParseError(kind: .tooDeep, offset: pos) }
        pos += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if pos < buf.count, buf[pos] == UInt8(ascii: "]") {
            pos += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth))
            skipWhitespace()
            guard pos < buf.count else { throw error("unexpected end of text in an array") }
            if buf[pos] == UInt8(ascii: ",") {
                pos += 1
                continue
            }
            guard buf[pos] == UInt8(ascii: "]") else { throw error("expected ',' or ']'") }
            pos += 1
            return .array(items)
        }
    }

    /// A number literal: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    mutating func number() throws(JSONParseError) -> String {
        let start = pos
        func digits(_ p: inout Int) -> Int {
            let s = p
            while p < buf.count, buf[p] >= 0x30, buf[p] <= 0x39 { p += 1 }
            return p - s
        }
        var p = pos
        if buf[p] == UInt8(ascii: "-") { p += 1 }
        guard p < buf.count, buf[p] >= 0x30, buf[p] <= 0x39 else { pos = p; throw error("invalid number") }
        if buf[p] == UInt8(ascii: "0") {
            p += 1
        } else {
            _ = digits(&p)
        }
        if p < buf.count, buf[p] == UInt8(ascii: ".") {
            p += 1
            guard digits(&p) > 0 else { pos = p; throw error("invalid number: no digits after '.'") }
        }
        if p < buf.count, buf[p] == UInt8(ascii: "e") || buf[p] == UInt8(ascii: "E") {
            p += 1
            if p < buf.count, buf[p] == UInt8(ascii: "+") || buf[p] == UInt8(ascii: "-") { p += 1 }
            guard digits(&p) > 0 else { pos = p; throw error("invalid number: no exponent digits") }
        }
        pos = p
        return String(decoding: UnsafeBufferPointer(rebasing: buf[start..<p]), as: UTF8.self)
    }

    /// A string literal; `pos` is at the opening quote.
    mutating func string() throws(JSONParseError) -> String {
        pos += 1
        let start = pos
        // Fast path: no escapes.
        while pos < buf.count {
            let c = buf[pos]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<pos]), as: UTF8.self)
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in a string") }
            pos += 1
        }
        guard pos < buf.count else { throw error("unterminated string") }
        var bytes = Array(UnsafeBufferPointer(rebasing: buf[start..<pos]))
        while pos < buf.count {
            let c = buf[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                return String(decoding: bytes, as: UTF8.self)
            }
            if c < 0x20 { throw error("control character in a string") }
            if c != UInt8(ascii: "\\") {
                bytes.append(c)
                pos += 1
                continue
            }
            pos += 1
            guard pos < buf.count else { throw error("unterminated escape") }
            let e = buf[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "/"): bytes.append(0x2F)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard buf.count - pos >= 2, buf[pos] == UInt8(ascii: "\\"), buf[pos + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw error("unpaired surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    throw error("unpaired surrogate in \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                bytes.append(contentsOf: UTF8.encode(u).map { Array($0) } ?? [])
            default:
                throw error("invalid escape")
            }
        }
        throw error("unterminated string")
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard buf.count - pos >= 4 else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[pos]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }
}
