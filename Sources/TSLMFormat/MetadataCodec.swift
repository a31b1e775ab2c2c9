/// Binary encoding of metadata values, shared by the `.tslm` reader/writer and the GGUF
/// importer (the two formats use the same value typing).
public enum MetadataCodec {
    /// Reads one value of `type`. Arrays of arrays are rejected.
    public static func readValue(_ type: MetadataValueType, _ c: inout ByteCursor, key: String,
                                 allowNestedArrays: Bool = false) throws -> MetadataValue {
        switch type {
        case .u8: return .u8(try c.u8(key))
        case .i8: return .i8(Int8(bitPattern: try c.u8(key)))
        case .u16: return .u16(try c.u16(key))
        case .i16: return .i16(Int16(bitPattern: try c.u16(key)))
        case .u32: return .u32(try c.u32(key))
        case .i32: return .i32(try c.i32(key))
        case .u64: return .u64(try c.u64(key))
        case .i64: return .i64(try c.i64(key))
        case .f32: return .f32(try c.f32(key))
        case .f64: return .f64(try c.f64(key))
        case .bool:
            let b = try c.u8(key)
            guard b <= 1 else { throw TSLMError.malformed(file: c.file, reason: "metadata '\(key)': bool byte \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case .string: return .string(try c.string64("metadata '\(key)' value"))
        case .array:
            let rawElem = try c.u32("metadata '\(key)' array type")
            guard let elem = MetadataValueType(rawValue: rawElem) else {
                throw TSLMError.malformed(file: c.file, reason: "metadata '\(key)' has unknown array element type \(rawElem)")
            }
            let n = try c.u64("metadata '\(key)' array count")
            if elem == .array {
                throw TSLMError.malformed(file: c.file, reason: "metadata '\(key)' is an array of arrays (not supported)")
            }
            // Every element takes at least one byte (strings eight): reject absurd counts early.
            let minSize: UInt64 = elem == .string ? 8 : UInt64(fixedSize(elem))
            guard n <= UInt64(c.remaining) / minSize else {
                throw TSLMError.truncated(file: c.file, what: "metadata '\(key)' array of \(n) elements")
            }
            let count = Int(n)
            func many<T>(_ read: (inout ByteCursor) throws -> T) throws -> [T] {
                var a: [T] = []
                a.reserveCapacity(count)
                for _ in 0..<count { a.append(try read(&c)) }
                return a
            }
            switch elem {
            case .u8: return .array(.u8(Array(try c.slice(count, key))))
            case .i8: return .array(.i8(try many { Int8(bitPattern: try $0.u8(key)) }))
            case .u16: return .array(.u16(try many { try $0.u16(key) }))
            case .i16: return .array(.i16(try many { Int16(bitPattern: try $0.u16(key)) }))
            case .u32: return .array(.u32(try many { try $0.u32(key) }))
            case .i32: return .array(.i32(try many { try $0.i32(key) }))
            case .u64: return .array(.u64(try many { try $0.u64(key) }))
            case .i64: return .array(.i64(try many { try $0.i64(key) }))
            case .f32: return .array(.f32(try many { try $0.f32(key) }))
            case .f64: return .array(.f64(try many { try $0.f64(key) }))
            case .bool:
                return .array(.bool(try many {
                    let b = try $0.u8(key)
                    guard b <= 1 else { throw TSLMError.malformed(file: $0.file, reason: "metadata '\(key)': bool byte \(b)") }
                    return b == 1
                }))
            case .string:
                var i = 0
                return .array(.string(try many { c2 in
                    defer { i += 1 }
                    return try c2.string64("metadata '\(key)' element \(i)")
                }))
            case .array: throw TSLMError.malformed(file: c.file, reason: "metadata '\(key)' is an array of arrays")
            }
        }
    }

    static func fixedSize(_ t: MetadataValueType) -> Int {
        switch t {
        case .u8, .i8, .bool: 1
        case .u16, .i16: 2
        case .u32, .i32, .f32: 4
        case .u64, .i64, .f64: 8
        case .string: 8
        case .array: 12
        }
    }

    /// Appends a key/value pair in the `.tslm` encoding.
    public static func write(key: String, value: MetadataValue, to out: inout [UInt8]) {
        out.appendString64(key)
        out.appendLE(value.type.rawValue)
        writeValue(value, to: &out)
    }

    static func writeValue(_ v: MetadataValue, to out: inout [UInt8]) {
        switch v {
        case let .u8(x): out.append(x)
        case let .i8(x): out.append(UInt8(bitPattern: x))
        case let .u16(x): out.appendLE(x)
        case let .i16(x): out.appendLE(x)
        case let .u32(x): out.appendLE(x)
        case let .i32(x): out.appendLE(x)
        case let .u64(x): out.appendLE(x)
        case let .i64(x): out.appendLE(x)
        case let .f32(x): out.appendLE(x.bitPattern)
        case let .f64(x): out.appendLE(x.bitPattern)
        case let .bool(x): out.append(x ? 1 : 0)
        case let .string(s): out.appendString64(s)
        case let .array(a):
            out.appendLE(a.elementType.rawValue)
            out.appendLE(UInt64(a.count))
            switch a {
            case let .u8(xs): out.append(contentsOf: xs)
            case let .i8(xs): for x in xs { out.append(UInt8(bitPattern: x)) }
            case let .u16(xs): for x in xs { out.appendLE(x) }
            case let .i16(xs): for x in xs { out.appendLE(x) }
            case let .u32(xs): for x in xs { out.appendLE(x) }
            case let .i32(xs): for x in xs { out.appendLE(x) }
            case let .u64(xs): for x in xs { out.appendLE(x) }
            case let .i64(xs): for x in xs { out.appendLE(x) }
            case let .f32(xs): for x in xs { out.appendLE(x.bitPattern) }
            case let .f64(xs): for x in xs { out.appendLE(x.bitPattern) }
            case let .bool(xs): for x in xs { out.append(x ? 1 : 0) }
            case let .string(xs): for x in xs { out.appendString64(x) }
            }
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends a fixed-width integer, little-endian.
    @inline(__always)
    public mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    /// Appends a u64 length and the UTF-8 bytes.
    public mutating func appendString64(_ s: String) {
        appendLE(UInt64(s.utf8.count))
        append(contentsOf: s.utf8)
    }
}
