/// Typed metadata values (see `formats/tslm.md`, "Metadata"). The numbering matches GGUF.
public enum MetadataValueType: UInt32, Sendable, CustomStringConvertible {
    case u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, bool = 7
    case string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12

    public var description: String {
        switch self {
        case .u8: "u8"
        case .i8: "i8"
        case .u16: "u16"
        case .i16: "i16"
        case .u32: "u32"
        case .i32: "i32"
        case .f32: "f32"
        case .bool: "bool"
        case .string: "string"
        case .array: "array"
        case .u64: "u64"
        case .i64: "i64"
        case .f64: "f64"
        }
    }
}

/// One metadata value. Arrays are homogeneous and never nested.
public enum MetadataValue: Sendable, Equatable {
    case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32)
    case u64(UInt64), i64(Int64), f32(Float), f64(Double), bool(Bool), string(String)
    case array(MetadataArray)

    public var type: MetadataValueType {
        switch self {
        case .u8: .u8
        case .i8: .i8
        case .u16: .u16
        case .i16: .i16
        case .u32: .u32
        case .i32: .i32
        case .u64: .u64
        case .i64: .i64
        case .f32: .f32
        case .f64: .f64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }

    /// The value as a signed integer, for any integer type that fits.
    public var intValue: Int? {
        switch self {
        case let .u8(v): Int(v)
        case let .i8(v): Int(v)
        case let .u16(v): Int(v)
        case let .i16(v): Int(v)
        case let .u32(v): Int(v)
        case let .i32(v): Int(v)
        case let .u64(v): v <= UInt64(Int.max) ? Int(v) : nil
        case let .i64(v): Int(v)
        default: nil
        }
    }

    /// The value as a Double, for any number type.
    public var doubleValue: Double? {
        switch self {
        case let .f32(v): Double(v)
        case let .f64(v): v
        default: intValue.map(Double.init)
        }
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }

    /// A short human-readable rendering (arrays are summarized).
    public var summary: String {
        switch self {
        case let .string(s): return s.count > 80 ? "\"\(s.prefix(77))...\" (\(s.utf8.count) bytes)" : "\"\(s)\""
        case let .array(a): return "[\(a.elementType)] × \(a.count)"
        case let .bool(b): return b ? "true" : "false"
        case let .f32(v): return "\(v)"
        case let .f64(v): return "\(v)"
        default: return intValue.map(String.init) ?? "\(self)"
        }
    }
}

/// A homogeneous metadata array.
public enum MetadataArray: Sendable, Equatable {
    case u8([UInt8]), i8([Int8]), u16([UInt16]), i16([Int16]), u32([UInt32]), i32([Int32])
    case u64([UInt64]), i64([Int64]), f32([Float]), f64([Double]), bool([Bool]), string([String])

    public var elementType: MetadataValueType {
        switch self {
        case .u8: .u8
        case .i8: .i8
        case .u16: .u16
        case .i16: .i16
        case .u32: .u32
        case .i32: .i32
        case .u64: .u64
        case .i64: .i64
        case .f32: .f32
        case .f64: .f64
        case .bool: .bool
        case .string: .string
        }
    }

    public var count: Int {
        switch self {
        case let .u8(a): a.count
        case let .i8(a): a.count
        case let .u16(a): a.count
        case let .i16(a): a.count
        case let .u32(a): a.count
        case let .i32(a): a.count
        case let .u64(a): a.count
        case let .i64(a): a.count
        case let .f32(a): a.count
        case let .f64(a): a.count
        case let .bool(a): a.count
        case let .string(a): a.count
        }
    }

    /// Integer elements as `Int`, for any integer element type.
    public var intValues: [Int]? {
        switch self {
        case let .u8(a): a.map(Int.init)
        case let .i8(a): a.map(Int.init)
        case let .u16(a): a.map(Int.init)
        case let .i16(a): a.map(Int.init)
        case let .u32(a): a.map(Int.init)
        case let .i32(a): a.map(Int.init)
        case let .i64(a): a.map(Int.init)
        case let .u64(a): a.allSatisfy({ $0 <= UInt64(Int.max) }) ? a.map { Int($0) } : nil
        default: nil
        }
    }
}

/// An ordered set of unique keys with typed values.
public struct Metadata: Sendable, Equatable {
    public private(set) var entries: [(key: String, value: MetadataValue)] = []
    private var index: [String: Int] = [:]

    public init() {}

    public static func == (a: Metadata, b: Metadata) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public var count: Int { entries.count }
    public var keys: [String] { entries.map(\.key) }

    public subscript(key: String) -> MetadataValue? {
        get { index[key].map { entries[$0].value } }
        set {
            if let i = index[key] {
                if let v = newValue {
                    entries[i].value = v
                } else {
                    entries.remove(at: i)
                    index = [:]
                    for (j, e) in entries.enumerated() { index[e.key] = j }
                }
            } else if let v = newValue {
                index[key] = entries.count
                entries.append((key, v))
            }
        }
    }

    /// Adds a key that must not exist yet; `false` if it did (the value is not changed).
    @discardableResult
    public mutating func insertNew(_ key: String, _ value: MetadataValue) -> Bool {
        guard index[key] == nil else { return false }
        self[key] = value
        return true
    }

    public func string(_ key: String) -> String? { self[key]?.stringValue }
    public func int(_ key: String) -> Int? { self[key]?.intValue }
    public func double(_ key: String) -> Double? { self[key]?.doubleValue }
    public func bool(_ key: String) -> Bool? { self[key]?.boolValue }
    public func array(_ key: String) -> MetadataArray? { if case let .array(a)? = self[key] { a } else { nil } }
    public func strings(_ key: String) -> [String]? { if case let .string(a)? = array(key) { a } else { nil } }

    /// True when `key` has the form `[a-z0-9_]+(\.[a-z0-9_]+)*` and is at most 256 bytes.
    public static func isValidKey(_ key: String) -> Bool {
        let u = Array(key.utf8)
        guard !u.isEmpty, u.count <= 256 else { return false }
        var prevDot = true
        for c in u {
            if c == UInt8(ascii: ".") {
                if prevDot { return false }
                prevDot = true
            } else if (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F {
                prevDot = false
            } else {
                return false
            }
        }
        return !prevDot
    }
}
