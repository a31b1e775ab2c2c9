import TSLMFormat

/// A ggml tensor type as stored in GGUF tensor infos (the types this reader understands).
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
    case q2_K = 10, q3_K = 11, q4_K = 12, q5_K = 13, q6_K = 14, q8_K = 15
    case i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, bf16 = 30

    /// ggml's upper-case name (`Q4_K`, `F16`, …).
    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q5_1: "Q5_1"
        case .q8_0: "Q8_0"
        case .q2_K: "Q2_K"
        case .q3_K: "Q3_K"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        case .q8_K: "Q8_K"
        case .i8: "I8"
        case .i16: "I16"
        case .i32: "I32"
        case .i64: "I64"
        case .f64: "F64"
        case .bf16: "BF16"
        }
    }

    /// Elements per block (1 for plain types).
    public var blockSize: Int {
        switch self {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: 32
        case .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K: 256
        default: 1
        }
    }

    /// Bytes per block.
    public var bytesPerBlock: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .f64, .i64: 8
        case .i8: 1
        case .q4_0: BlockQ4_0.byteCount
        case .q4_1: BlockQ4_1.byteCount
        case .q5_0: 22
        case .q5_1: 24
        case .q8_0: BlockQ8_0.byteCount
        case .q2_K: 84
        case .q3_K: 110
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        case .q8_K: 292
        }
    }

    /// The `.tslm` type that holds this type's bytes unchanged, or `nil` when the importer must
    /// dequantize it to f32.
    public var tslmDType: DType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .f64: .f64
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q4_K: .q4_k
        case .q5_K: .q5_k
        case .q6_K: .q6_k
        case .i8: .i8
        case .i16: .i16
        case .i32: .i32
        case .i64: .i64
        case .q5_0, .q5_1, .q2_K, .q3_K, .q8_K: nil
        }
    }

    /// True for types that hold real numbers (so that they can be decoded to f32).
    public var isFloatingPoint: Bool {
        switch self {
        case .i8, .i16, .i32, .i64: false
        default: true
        }
    }

    /// Decodes whole blocks of this (floating-point) type into f32; `values.count` elements
    /// from `blocks`, which must hold exactly their bytes. Integer types write nothing.
    public func dequantize(_ blocks: UnsafeRawBufferPointer, into values: UnsafeMutableBufferPointer<Float>) {
        guard values.count > 0 else { return }
        switch self {
        case .q5_0: KQuants.dequantizeQ5_0(blocks, into: values)
        case .q5_1: KQuants.dequantizeQ5_1(blocks, into: values)
        case .q2_K: KQuants.dequantizeQ2_K(blocks, into: values)
        case .q3_K: KQuants.dequantizeQ3_K(blocks, into: values)
        case .q4_K: KQuants.dequantizeQ4_K(blocks, into: values)
        case .q5_K: KQuants.dequantizeQ5_K(blocks, into: values)
        case .q6_K: KQuants.dequantizeQ6_K(blocks, into: values)
        case .q8_K: KQuants.dequantizeQ8_K(blocks, into: values)
        case .f32, .f16, .bf16, .f64, .q8_0, .q4_0, .q4_1:
            if let t = tslmDType { DTypeConversion.toFloat32(blocks, dtype: t, count: values.count, into: values) }
        case .i8, .i16, .i32, .i64:
            break
        }
    }
}

/// One tensor info of a GGUF file, validated against the file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor name as stored (GGUF names are `.tslm`'s canonical names).
    public var name: String
    /// The ggml storage type.
    public var type: GGMLType
    /// Dimensions, OUTERMOST first (GGUF stores them innermost first; this is reversed).
    public var shape: [UInt64]
    /// Absolute file offset of the first byte of the tensor data.
    public var offset: UInt64
    /// Bytes of tensor data (`elementCount / blockSize · bytesPerBlock`).
    public var byteSize: UInt64
    /// Number of elements (product of `shape`, at most `Int.max`).
    public var elementCount: UInt64

    /// The shape as `Int`s (every dimension is known to fit).
    public var intShape: [Int] { shape.map { Int($0) } }
}

/// A parsed, validated GGUF (version 2 or 3) file: its raw metadata (GGUF key names), its
/// tensor infos and positional access to tensor bytes.
///
/// Opening reads only the header (metadata and tensor infos); tensor bytes are read on demand
/// with `pread`, so a large file is never held in memory or mapped as a whole. Everything in
/// the header is validated when the file is opened: structure, UTF-8, unique keys and names,
/// known types, sizes (with overflow checks), alignment, bounds and overlaps of tensor data.
public struct GGUFFile: Sendable {
    /// The path as given.
    public let path: String
    /// The GGUF version (2 or 3).
    public let version: UInt32
    /// The metadata under its GGUF key names, in file order (nested arrays are skipped; see
    /// `skippedKeys`).
    public let metadata: Metadata
    /// Keys whose values were skipped because they are arrays of arrays.
    public let skippedKeys: [String]
    /// Tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// The data alignment (`general.alignment`, default 32).
    public let alignment: UInt64
    /// Absolute offset of the tensor data blob.
    public let dataOffset: UInt64
    /// The file size in bytes.
    public var fileSize: UInt64 { reader.size }

    let reader: FileReader

    /// The GGUF magic, "GGUF".
    public static let magic: [UInt8] = Array("GGUF".utf8)
    /// Versions this reader accepts.
    public static let supportedVersions: [UInt32] = [2, 3]
    /// The default `general.alignment`.
    public static let defaultAlignment: UInt64 = 32
    /// The largest header (metadata and tensor infos) this reader holds in memory.
    public static let maxHeaderBytes: UInt64 = 1 << 30
    /// ggml's limit on tensor dimensions.
    public static let maxDims: UInt32 = 4

    /// Opens and validates `path`.
    public init(path: String) throws {
        let reader = try FileReader(path: path)
        self.path = path
        self.reader = reader

        // The header's size is not stored: parse a prefix, and grow it while the parser runs
        // past its end and the file has more bytes.
        var prefixSize = min(reader.size, 1 << 20)
        while true {
            let prefix = try reader.read(offset: 0, count: Int(prefixSize), what: "GGUF header")
            do {
                let h = try prefix.withUnsafeBytes { try Header.parse($0, file: path, fileSize: reader.size) }
                version = h.version
                metadata = h.metadata
                skippedKeys = h.skippedKeys
                tensors = h.tensors
                alignment = h.alignment
                dataOffset = h.dataOffset
                return
            } catch let f as Final {
                throw f.error
            } catch let TSLMError.truncated(file, what) where prefixSize < reader.size {
                guard prefixSize < GGUFFile.maxHeaderBytes else {
                    throw TSLMError.malformed(file: file, reason: "\(what): header larger than \(GGUFFile.maxHeaderBytes) bytes")
                }
                prefixSize = min(reader.size, prefixSize * 4, GGUFFile.maxHeaderBytes)
            }
        }
    }

    /// The tensor info named `name`.
    public func tensor(named name: String) -> GGUFTensorInfo? { tensors.first { $0.name == name } }

    /// Reads the stored bytes of `info` (exactly `info.byteSize` bytes).
    public func readBytes(_ info: GGUFTensorInfo) throws -> TensorData {
        guard info.byteSize <= UInt64(Int.max) else {
            throw TSLMError.sizeOverflow(file: path, tensor: info.name, shape: info.shape)
        }
        return try reader.read(offset: info.offset, count: Int(info.byteSize), what: "tensor '\(info.name)' data")
    }

    /// Reads `info` and decodes it to f32 (floating-point types only).
    public func readFloat32(_ info: GGUFTensorInfo) throws -> TensorData {
        guard info.type.isFloatingPoint else {
            throw TSLMError.unsupportedDType(file: path, tensor: info.name, dtype: "\(info.type) (not floating point)")
        }
        let raw = try readBytes(info)
        let (bytes, o) = info.elementCount.multipliedReportingOverflow(by: 4)
        guard !o, bytes <= UInt64(Int.max) else {
            throw TSLMError.sizeOverflow(file: path, tensor: info.name, shape: info.shape)
        }
        let out = TensorData(allocating: Int(bytes))
        let values = out.mutableBytes.bindMemory(to: Float.self)
        raw.withUnsafeBytes { info.type.dequantize($0, into: values) }
        return out
    }
}

extension GGUFFile {
    /// Wraps an error that reading a longer prefix of the file cannot cure.
    struct Final: Error {
        let error: TSLMError
        init(_ error: TSLMError) { self.error = error }
    }

    /// The parsed header.
    struct Header {
        var version: UInt32
        var metadata: Metadata
        var skippedKeys: [String]
        var tensors: [GGUFTensorInfo]
        var alignment: UInt64
        var dataOffset: UInt64

        /// Smallest encodings, used to reject absurd counts before allocating.
        static let minMetadataPairBytes: UInt64 = 8 + 4 + 1  // empty key, type, 1-byte value
        static let minTensorInfoBytes: UInt64 = 8 + 4 + 4 + 8  // empty name, n_dims = 0, type, offset

        /// Parses the header from `bytes` (a prefix of the file, or all of it).
        static func parse(_ bytes: UnsafeRawBufferPointer, file: String, fileSize: UInt64) throws -> Header {
            var c = ByteCursor(bytes, file: file)
            try c.need(4, "GGUF magic")
            let magic = Array(try c.slice(4, "GGUF magic"))
            guard magic == GGUFFile.magic else {
                throw TSLMError.badMagic(file: file, expected: "GGUF", found: magic)
            }
            let version = try c.u32("GGUF version")
            guard GGUFFile.supportedVersions.contains(version) else {
                throw TSLMError.unsupportedVersion(file: file, version: UInt64(version), supported: "GGUF 2 and 3")
            }
            let tensorCount = try c.i64("tensor count")
            let metadataCount = try c.i64("metadata count")
            let afterCounts = UInt64(c.offset)
            let remainingInFile = fileSize > afterCounts ? fileSize - afterCounts : 0
            guard metadataCount >= 0 else {
                throw TSLMError.malformed(file: file, reason: "negative metadata count \(metadataCount)")
            }
            guard tensorCount >= 0 else {
                throw TSLMError.malformed(file: file, reason: "negative tensor count \(tensorCount)")
            }
            // Counts the whole file could not hold are final (not a reason to read more).
            guard UInt64(metadataCount) <= remainingInFile / minMetadataPairBytes else {
                throw Final(TSLMError.truncated(file: file, what: "\(metadataCount) metadata pairs"))
            }
            guard UInt64(tensorCount) <= remainingInFile / minTensorInfoBytes else {
                throw Final(TSLMError.truncated(file: file, what: "\(tensorCount) tensor infos"))
            }

            // Metadata.
            var metadata = Metadata()
            var skipped: [String] = []
            for i in 0..<Int(metadataCount) {
                let key = try c.string64("metadata key #\(i)")
                let rawType = try c.u32("metadata '\(key)' type")
                guard let type = MetadataValueType(rawValue: rawType) else {
                    throw TSLMError.malformed(file: file, reason: "metadata '\(key)' has unknown value type \(rawType)")
                }
                guard metadata[key] == nil, !skipped.contains(key) else {
                    throw TSLMError.duplicateKey(file: file, key: key)
                }
                if type == .array, try isNestedArray(c, key: key) {
                    try skipValue(.array, &c, key: key, depth: 0)
                    skipped.append(key)
                    continue
                }
                metadata[key] = try MetadataCodec.readValue(type, &c, key: key)
            }

            // Alignment.
            var alignment = GGUFFile.defaultAlignment
            if let v = metadata["general.alignment"] {
                guard case let .u32(a) = v else {
                    throw TSLMError.wrongKeyType(file: file, key: "general.alignment", expected: "u32", found: "\(v.type)")
                }
                guard a > 0, a & (a - 1) == 0 else {
                    throw TSLMError.malformed(file: file, reason: "general.alignment \(a) is not a power of two")
                }
                alignment = UInt64(a)
            }

            // Tensor infos.
            var tensors: [GGUFTensorInfo] = []
            tensors.reserveCapacity(Int(tensorCount))
            var names = Set<String>()
            var relativeOffsets: [UInt64] = []
            relativeOffsets.reserveCapacity(Int(tensorCount))
            for i in 0..<Int(tensorCount) {
                let name = try c.string64("tensor info #\(i) name")
                guard names.insert(name).inserted else { throw TSLMError.duplicateTensor(file: file, name: name) }
                let nDims = try c.u32("tensor '\(name)' n_dims")
                guard nDims <= GGUFFile.maxDims else {
                    throw TSLMError.malformed(file: file, reason: "tensor '\(name)' has \(nDims) dimensions (at most \(GGUFFile.maxDims))")
                }
                var dims: [UInt64] = []
                for d in 0..<Int(nDims) { dims.append(try c.u64("tensor '\(name)' dim \(d)")) }
                let shape = Array(dims.reversed())
                let rawType = try c.u32("tensor '\(name)' type")
                let offset = try c.u64("tensor '\(name)' offset")
                guard let type = GGMLType(rawValue: rawType) else {
                    throw TSLMError.unsupportedDType(file: file, tensor: name, dtype: "ggml type \(rawType)")
                }
                let (elements, size) = try byteSize(type, shape: shape, file: file, tensor: name)
                guard offset % alignment == 0 else {
                    throw TSLMError.malformed(file: file, reason: "tensor '\(name)' offset \(offset) is not a multiple of the alignment \(alignment)")
                }
                tensors.append(GGUFTensorInfo(name: name, type: type, shape: shape, offset: 0,
                                              byteSize: size, elementCount: elements))
                relativeOffsets.append(offset)
            }

            // The data blob starts at the next multiple of the alignment.
            let headerEnd = UInt64(c.offset)
            let pad = (alignment - headerEnd % alignment) % alignment
            let dataOffset = headerEnd + pad
            for i in tensors.indices {
                let (abs, o1) = dataOffset.addingReportingOverflow(relativeOffsets[i])
                let (end, o2) = abs.addingReportingOverflow(tensors[i].byteSize)
                guard !o1, !o2, end <= fileSize else {
                    throw TSLMError.tensorOutOfBounds(file: file, tensor: tensors[i].name, offset: relativeOffsets[i],
                                                      size: tensors[i].byteSize, limit: fileSize)
                }
                tensors[i].offset = abs
            }

            // No two tensors' data may overlap (empty tensors occupy nothing).
            let order = tensors.indices.filter { tensors[$0].byteSize > 0 }.sorted { tensors[$0].offset < tensors[$1].offset }
            for k in order.indices.dropFirst() {
                let a = tensors[order[k - 1]], b = tensors[order[k]]
                if a.offset + a.byteSize > b.offset {
                    throw TSLMError.overlappingTensors(file: file, first: a.name, second: b.name)
                }
            }
            return Header(version: version, metadata: metadata, skippedKeys: skipped, tensors: tensors,
                          alignment: alignment, dataOffset: dataOffset)
        }

        /// Element count and byte size of a tensor, with overflow and block checks.
        static func byteSize(_ type: GGMLType, shape: [UInt64], file: String, tensor: String) throws -> (UInt64, UInt64) {
            var elements: UInt64 = 1
            for d in shape {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o, d <= UInt64(Int.max) else {
                    throw TSLMError.sizeOverflow(file: file, tensor: tensor, shape: shape)
                }
                elements = p
            }
            guard elements <= UInt64(Int.max) else { throw TSLMError.sizeOverflow(file: file, tensor: tensor, shape: shape) }
            let block = UInt64(type.blockSize)
            if block > 1, elements > 0, (shape.last ?? 1) % block != 0 {
                throw TSLMError.invalidShape(file: file, tensor: tensor, shape: shape.map { Int($0) },
                                             reason: "innermost dimension is not a multiple of the \(type) block size \(block)")
            }
            let (bytes, o) = (elements / block).multipliedReportingOverflow(by: UInt64(type.bytesPerBlock))
            guard !o, bytes <= UInt64(Int.max) else { throw TSLMError.sizeOverflow(file: file, tensor: tensor, shape: shape) }
            // Decoding to f32 must also fit.
            guard elements <= UInt64(Int.max) / 4 else { throw TSLMError.sizeOverflow(file: file, tensor: tensor, shape: shape) }
            return (elements, bytes)
        }

        /// Bytes of a scalar value (the minimum for strings: their length field).
        static func scalarSize(_ t: MetadataValueType) -> Int {
            switch t {
            case .u8, .i8, .bool: 1
            case .u16, .i16: 2
            case .u32, .i32, .f32: 4
            case .u64, .i64, .f64, .string: 8
            case .array: 12
            }
        }

        /// True when the array value at the cursor is an array of arrays (the cursor is not moved).
        static func isNestedArray(_ c: ByteCursor, key: String) throws -> Bool {
            var peek = c
            return try peek.u32("metadata '\(key)' array type") == MetadataValueType.array.rawValue
        }

        /// Skips one value, checking every length against the bytes that remain.
        static func skipValue(_ type: MetadataValueType, _ c: inout ByteCursor, key: String, depth: Int) throws {
            guard depth < 8 else {
                throw TSLMError.malformed(file: c.file, reason: "metadata '\(key)' nests arrays more than 8 deep")
            }
            switch type {
            case .string:
                let n = try c.u64("metadata '\(key)' string length")
                guard n <= UInt64(c.remaining) else { throw TSLMError.truncated(file: c.file, what: "metadata '\(key)' string") }
                try c.skip(Int(n), "metadata '\(key)' string")
            case .array:
                let raw = try c.u32("metadata '\(key)' array type")
                guard let elem = MetadataValueType(rawValue: raw) else {
                    throw TSLMError.malformed(file: c.file, reason: "metadata '\(key)' has unknown array element type \(raw)")
                }
                let n = try c.u64("metadata '\(key)' array count")
                let minSize: UInt64 = elem == .array ? 12 : UInt64(scalarSize(elem))
                guard n <= UInt64(c.remaining) / minSize else {
                    throw TSLMError.truncated(file: c.file, what: "metadata '\(key)' array of \(n) elements")
                }
                if elem == .string || elem == .array {
                    for _ in 0..<Int(n) { try skipValue(elem, &c, key: key, depth: depth + 1) }
                } else {
                    try c.skip(Int(n) * scalarSize(elem), "metadata '\(key)' array")
                }
            default:
                try c.skip(scalarSize(type), "metadata '\(key)'")
            }
        }
    }
}
