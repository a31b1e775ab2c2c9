#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat

/// A `.safetensors` file: its validated tensor directory and `__metadata__`, with tensors read
/// one at a time by positional reads (nothing is mapped).
///
/// Layout: a little-endian `u64` header length `N`, `N` bytes of UTF-8 JSON
/// (`{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, …,
/// "__metadata__": {"key": "value"}}`), then the data region; offsets are relative to the
/// data region's start (the byte after the header).
///
/// `init` checks everything before any tensor byte is read: the header length against the file
/// size and a 100 MB cap, the JSON (UTF-8, grammar, no duplicate keys), every entry's fields and
/// types, each dtype, each shape's byte count (with overflow checks) against its offsets, every
/// range against the data region, and that no two ranges overlap. Gaps between tensors are
/// allowed. `tensors` keeps the header's order.
public struct SafetensorsFile: Sendable {
    /// One tensor of the directory.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        /// Dimensions, outermost first (as safetensors and PyTorch store them).
        public let shape: [Int]
        /// Absolute offset of the first byte in the file.
        public let offset: UInt64
        /// Bytes of data (`dtype` × `shape`).
        public let byteCount: Int
    }

    /// The largest header this reader accepts (the Python reference rejects more than 100 MB).
    public static let maxHeaderBytes: UInt64 = 100_000_000

    /// The path as given.
    public let path: String
    /// The tensors, in the order of the header.
    public let tensors: [Entry]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// Absolute offset of the data region (8 + header length).
    public let dataOffset: UInt64
    private let reader: FileReader

    /// Opens `path` and validates its header (see the type's documentation).
    public init(path: String) throws {
        let reader = try FileReader(path: path)
        self.path = path
        self.reader = reader
        guard reader.size >= 8 else { throw TSLMError.truncated(file: path, what: "safetensors header length") }
        let lengthBytes = try reader.read(offset: 0, count: 8, what: "safetensors header length")
        let headerLength = UInt64(littleEndian: lengthBytes.bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= Self.maxHeaderBytes else {
            throw TSLMError.malformed(file: path, reason: "header length \(headerLength) exceeds the \(Self.maxHeaderBytes)-byte limit")
        }
        guard headerLength <= reader.size - 8 else {
            throw TSLMError.truncated(file: path, what: "safetensors header (\(headerLength) bytes)")
        }
        let headerData = try reader.read(offset: 8, count: Int(headerLength), what: "safetensors header")
        let headerBytes = Array(headerData.bytes.bindMemory(to: UInt8.self))
        dataOffset = 8 + headerLength
        let dataSize = reader.size - dataOffset

        let root: JSONValue
        do {
            root = try JSONValue.parse(headerBytes)
        } catch {
            if case let .duplicateKey(key, depth) = error.kind, depth == 1, key != "__metadata__" {
                throw TSLMError.duplicateTensor(file: path, name: key)
            }
            throw error.tslmError(file: path, what: "safetensors header JSON")
        }
        guard let top = root.objectValue else {
            throw TSLMError.malformed(file: path, reason: "safetensors header is a JSON \(root.kindName), not an object")
        }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        var ranges: [(begin: UInt64, end: UInt64, name: String)] = []
        entries.reserveCapacity(top.count)
        for (name, value) in top.pairs {
            if name == "__metadata__" {
                guard let m = value.objectValue else {
                    throw TSLMError.malformed(file: path, reason: "__metadata__ is a JSON \(value.kindName), not an object")
                }
                for (k, v) in m.pairs {
                    guard let s = v.stringValue else {
                        throw TSLMError.malformed(file: path, reason: "__metadata__ value for '\(k)' is a JSON \(v.kindName), not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            let (entry, begin, end) = try Self.entry(name: name, value: value, file: path,
                                                     dataOffset: dataOffset, dataSize: dataSize)
            entries.append(entry)
            ranges.append((begin, end, name))
        }

        // No two non-empty ranges may share a byte.
        let sorted = ranges.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for i in sorted.indices.dropFirst() where sorted[i].begin < sorted[i - 1].end {
            throw TSLMError.overlappingTensors(file: path, first: sorted[i - 1].name, second: sorted[i].name)
        }
        tensors = entries
        self.metadata = metadata
    }

    /// Validates one directory entry; returns it with its range relative to the data region.
    private static func entry(name: String, value: JSONValue, file: String, dataOffset: UInt64,
                              dataSize: UInt64) throws -> (Entry, UInt64, UInt64) {
        func bad(_ reason: String) -> TSLMError { .malformed(file: file, reason: "tensor '\(name)': \(reason)") }
        guard let fields = value.objectValue else { throw bad("entry is a JSON \(value.kindName), not an object") }
        guard let dtypeName = fields["dtype"]?.stringValue else { throw bad("missing or non-string 'dtype'") }
        guard let dims = fields["shape"]?.arrayValue else { throw bad("missing or non-array 'shape'") }
        guard let offsets = fields["data_offsets"]?.arrayValue else { throw bad("missing or non-array 'data_offsets'") }
        guard let dtype = dtypeFromName[dtypeName] else {
            throw TSLMError.unsupportedDType(file: file, tensor: name, dtype: dtypeName)
        }
        guard dims.count <= 8 else { throw bad("\(dims.count) dimensions (at most 8 are supported)") }
        var shape: [UInt64] = []
        for d in dims {
            guard let v = d.uint64Value else { throw bad("shape element \(d.serialized) is not a non-negative 64-bit integer") }
            shape.append(v)
        }
        guard offsets.count == 2, let begin = offsets[0].uint64Value, let end = offsets[1].uint64Value else {
            throw bad("'data_offsets' is not two non-negative 64-bit integers")
        }
        let expected = try dtype.validatedByteCount(shape: shape, file: file, tensor: name)
        guard begin <= end else { throw bad("data_offsets begin \(begin) is after end \(end)") }
        guard end - begin == expected else {
            throw TSLMError.sizeMismatch(file: file, tensor: name, expected: expected, actual: end - begin)
        }
        guard end <= dataSize else {
            // Report absolute offsets; the sums cannot overflow since begin ≤ end and the
            // offsets fit in 64 bits only when they are sane, so saturate instead of trapping.
            let (absolute, o) = dataOffset.addingReportingOverflow(begin)
            throw TSLMError.tensorOutOfBounds(file: file, tensor: name, offset: o ? UInt64.max : absolute,
                                              size: end - begin, limit: dataOffset + dataSize)
        }
        // expected ≤ Int.max (validatedByteCount) and every dimension ≤ Int.max.
        let entry = Entry(name: name, dtype: dtype, shape: shape.map { Int($0) },
                          offset: dataOffset + begin, byteCount: Int(expected))
        return (entry, begin, end)
    }

    /// Reads one tensor's bytes. `bool` tensors are checked to hold only 0 and 1.
    public func load(_ entry: Entry) throws -> TensorData {
        let data = try reader.read(offset: entry.offset, count: entry.byteCount, what: "tensor '\(entry.name)'")
        if entry.dtype == .bool, data.bytes.contains(where: { $0 > 1 }) {
            throw TSLMError.malformed(file: path, reason: "tensor '\(entry.name)': bool value other than 0 or 1")
        }
        return data
    }

    /// The tensor named `name`.
    public func entry(named name: String) throws -> Entry {
        guard let e = tensors.first(where: { $0.name == name }) else { throw TSLMError.missingTensor(file: path, tensor: name) }
        return e
    }

    /// safetensors dtype names this reader supports. Others (F8_E4M3, F8_E5M2, U16, U32, U64,
    /// C64, …) raise `unsupportedDType`.
    static let dtypeFromName: [String: DType] = [
        "F64": .f64, "F32": .f32, "F16": .f16, "BF16": .bf16,
        "I64": .i64, "I32": .i32, "I16": .i16, "I8": .i8, "U8": .u8, "BOOL": .bool,
    ]

    /// The safetensors name of a plain dtype; nil for block-quantized types.
    static func name(of dtype: DType) -> String? {
        dtypeFromName.first(where: { $0.value == dtype })?.key
    }
}

/// Writes small `.safetensors` files (tests and tools; the whole file is built in memory).
/// Tensors are stored contiguously in the order given; the header is padded with spaces to a
/// multiple of 8 bytes, as the Python package does.
public enum SafetensorsWriter {
    public static func write(path: String, tensors: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])],
                             metadata: [String: String] = [:]) throws {
        var header: [String] = []
        if !metadata.isEmpty {
            let members = metadata.sorted { $0.key < $1.key }
                .map { JSONValue.quote($0.key) + ":" + JSONValue.quote($0.value) }
            header.append("\"__metadata__\":{" + members.joined(separator: ",") + "}")
        }
        var names = Set<String>()
        var position = 0
        for t in tensors {
            guard names.insert(t.name).inserted else { throw TSLMError.duplicateTensor(file: path, name: t.name) }
            guard let dtypeName = SafetensorsFile.name(of: t.dtype) else {
                throw TSLMError.unsupportedDType(file: path, tensor: t.name, dtype: t.dtype.description)
            }
            guard let size = t.dtype.byteCount(shape: t.shape) else {
                throw TSLMError.invalidShape(file: path, tensor: t.name, shape: t.shape, reason: "negative or overflowing dimensions")
            }
            guard size == t.bytes.count else {
                throw TSLMError.sizeMismatch(file: path, tensor: t.name, expected: UInt64(size), actual: UInt64(t.bytes.count))
            }
            let shape = t.shape.map(String.init).joined(separator: ",")
            header.append(JSONValue.quote(t.name) + ":{\"dtype\":\"\(dtypeName)\",\"shape\":[\(shape)],"
                          + "\"data_offsets\":[\(position),\(position + size)]}")
            position += size
        }
        var json = Array(("{" + header.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var file: [UInt8] = []
        file.reserveCapacity(8 + json.count + position)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file += json
        for t in tensors { file += t.bytes }
        try writeFile(path: path, bytes: file)
    }

    /// Writes `bytes` to `path`, replacing it.
    static func writeFile(path: String, bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TSLMError.io(file: path, operation: "create", errno: errno) }
        defer { close(fd) }
        var done = 0
        try bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let n = posixWrite(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw TSLMError.io(file: path, operation: "write", errno: errno) }
                done += n
            }
        }
    }
}

/// `write(2)`, named apart from `SafetensorsWriter.write`.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
