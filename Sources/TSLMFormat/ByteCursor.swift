/// A bounds-checked little-endian reader over bytes that never reads past its end: every read
/// checks the remaining length first and throws `TSLMError.truncated` naming what was read.
public struct ByteCursor {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset: Int
    public let file: String

    public init(_ bytes: UnsafeRawBufferPointer, file: String, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
        self.file = file
    }

    public var remaining: Int { bytes.count - offset }

    @inline(__always)
    public mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else { throw TSLMError.truncated(file: file, what: what()) }
    }

    public mutating func skip(_ n: Int, _ what: @autoclosure () -> String) throws {
        try need(n, what())
        offset += n
    }

    @inline(__always)
    public mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        let n = MemoryLayout<T>.size
        try need(n, what())
        let v = T(littleEndian: bytes.baseAddress!.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += n
        return v
    }

    public mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 { try read(UInt8.self, what()) }
    public mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 { try read(UInt16.self, what()) }
    public mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try read(UInt32.self, what()) }
    public mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try read(UInt64.self, what()) }
    public mutating func i32(_ what: @autoclosure () -> String) throws -> Int32 { try read(Int32.self, what()) }
    public mutating func i64(_ what: @autoclosure () -> String) throws -> Int64 { try read(Int64.self, what()) }
    public mutating func f32(_ what: @autoclosure () -> String) throws -> Float { Float(bitPattern: try u32(what())) }
    public mutating func f64(_ what: @autoclosure () -> String) throws -> Double { Double(bitPattern: try u64(what())) }

    /// Raw bytes, without copying.
    public mutating func slice(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try need(n, what())
        let s = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
        offset += n
        return s
    }

    /// A UTF-8 string of `length` bytes; invalid UTF-8 throws `invalidUTF8`.
    public mutating func utf8(length: UInt64, _ what: @autoclosure () -> String) throws -> String {
        let w = what()
        guard length <= UInt64(remaining) else { throw TSLMError.truncated(file: file, what: w) }
        let s = try slice(Int(length), w)
        guard let str = String(validatingUTF8Bytes: s) else { throw TSLMError.invalidUTF8(file: file, context: w) }
        return str
    }

    /// A string prefixed with a u64 length (the .tslm and GGUF encoding).
    public mutating func string64(_ what: @autoclosure () -> String) throws -> String {
        let w = what()
        let n = try u64(w + " length")
        return try utf8(length: n, w)
    }
}

extension String {
    /// Decodes UTF-8 bytes, returning nil (never repairing) on invalid input.
    public init?(validatingUTF8Bytes bytes: UnsafeRawBufferPointer) {
        let buf = bytes.bindMemory(to: UInt8.self)
        var it = buf.makeIterator()
        var codec = UTF8()
        var scalars = String.UnicodeScalarView()
        loop: while true {
            switch codec.decode(&it) {
            case let .scalarValue(s): scalars.append(s)
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self = String(scalars)
    }
}
