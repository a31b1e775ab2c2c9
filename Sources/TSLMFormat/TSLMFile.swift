/// Constants of the `.tslm` format, version 1.
public enum TSLMFormat {
    public static let magic: [UInt8] = Array("TSLM".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 64
    public static let alignment = 64
    public static let maxDims = 8
    public static let maxNameBytes = 256
    /// The most a single zstd frame can expand (`size <= stored_size * 32768` for compressed tensors).
    public static let maxCompressionRatio: UInt64 = 32768
}

/// One entry of the tensor directory.
public struct TensorEntry: Sendable, Equatable {
    public var name: String
    public var dtype: DType
    /// Dimensions, outermost first.
    public var shape: [Int]
    /// Absolute file offset of the stored bytes.
    public var offset: UInt64
    /// Bytes in the file (compressed size when compressed).
    public var storedSize: UInt64
    /// Bytes of the uncompressed data.
    public var size: UInt64
    public var compressed: Bool
    /// xxHash64 of the stored bytes.
    public var checksum: UInt64

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A `.tslm` file opened for reading. All structure is validated on open; tensor bytes are
/// served from the mapping (uncompressed) or from owned buffers (compressed).
public final class TSLMFile: @unchecked Sendable {
    public let path: String
    public let metadata: Metadata
    public let tensors: [TensorEntry]
    public let fileSize: UInt64
    private let file: MappedFile
    private let byName: [String: Int]
    /// `index_offset`: tensor data and padding lie in [data_offset, indexOffset).
    private let indexOffset: Int
    /// Called before each `tensorData` read while set; throwing stops the read with that error.
    /// Set only by the thread that builds a model from a freshly opened file, before the file is
    /// shared (`LoadedModel`'s load progress), and cleared after.
    public var tensorReadObserver: ((TensorEntry) throws -> Void)?

    /// Opens and validates `path`. With `mmap: false` the file is read into memory.
    public init(path: String, mmap: Bool = true) throws {
        self.path = path
        file = try MappedFile(path: path, mmap: mmap)
        let bytes = file.bytes
        fileSize = UInt64(bytes.count)
        guard bytes.count >= 4 else { throw TSLMError.truncated(file: path, what: "header") }
        let magic = Array(bytes[0..<4])
        guard magic == TSLMFormat.magic else {
            throw TSLMError.badMagic(file: path, expected: "\"TSLM\"", found: magic)
        }
        guard bytes.count >= TSLMFormat.headerSize else { throw TSLMError.truncated(file: path, what: "header") }
        var c = ByteCursor(bytes, file: path, offset: 4)
        let version = try c.u32("version")
        guard version == TSLMFormat.version else {
            throw TSLMError.unsupportedVersion(file: path, version: UInt64(version), supported: "version \(TSLMFormat.version)")
        }
        let declaredSize = try c.u64("file_size")
        let dataOffset = try c.u64("data_offset")
        let indexOffset = try c.u64("index_offset")
        let indexSize = try c.u64("index_size")
        let alignment = try c.u32("alignment")
        let flags = try c.u32("flags")
        let indexChecksum = try c.u64("index_checksum")
        let headerChecksum = try c.u64("header_checksum")
        let computedHeader = XXHash64.hash(UnsafeRawBufferPointer(rebasing: bytes[0..<56]))
        guard computedHeader == headerChecksum else {
            throw TSLMError.checksumMismatch(file: path, what: "header", expected: headerChecksum, actual: computedHeader)
        }
        guard declaredSize == fileSize else {
            if declaredSize > fileSize {
                throw TSLMError.truncated(file: path, what: "file (header says \(declaredSize) bytes, found \(fileSize))")
            }
            throw TSLMError.malformed(file: path, reason: "header says \(declaredSize) bytes, file has \(fileSize)")
        }
        guard alignment == UInt32(TSLMFormat.alignment), dataOffset == UInt64(TSLMFormat.headerSize) else {
            throw TSLMError.malformed(file: path, reason: "alignment \(alignment) / data_offset \(dataOffset) (version 1 requires 64 / 64)")
        }
        guard flags == 0 else { throw TSLMError.malformed(file: path, reason: "unknown header flags 0x\(String(flags, radix: 16))") }
        guard indexOffset >= dataOffset, indexOffset % UInt64(alignment) == 0,
              indexOffset <= fileSize, indexSize == fileSize - indexOffset else {
            throw TSLMError.malformed(file: path, reason: "index at \(indexOffset) size \(indexSize) does not end the \(fileSize)-byte file")
        }
        let index = UnsafeRawBufferPointer(rebasing: bytes[Int(indexOffset)...])
        let computedIndex = XXHash64.hash(index)
        guard computedIndex == indexChecksum else {
            throw TSLMError.checksumMismatch(file: path, what: "index", expected: indexChecksum, actual: computedIndex)
        }

        var ic = ByteCursor(index, file: path)
        metadata = try Self.readMetadata(&ic)
        let tensorCount = try ic.u64("tensor count")
        // Every tensor info takes at least 48 bytes: reject absurd counts before allocating.
        guard tensorCount <= UInt64(ic.remaining / 48) else {
            throw TSLMError.truncated(file: path, what: "tensor directory (\(tensorCount) tensors)")
        }
        var entries: [TensorEntry] = []
        entries.reserveCapacity(Int(tensorCount))
        var names: [String: Int] = [:]
        for i in 0..<Int(tensorCount) {
            let name = try ic.string64("tensor \(i) name")
            guard !name.isEmpty, name.utf8.count <= TSLMFormat.maxNameBytes else {
                throw TSLMError.malformed(file: path, reason: "tensor \(i) name is empty or longer than \(TSLMFormat.maxNameBytes) bytes")
            }
            guard names[name] == nil else { throw TSLMError.duplicateTensor(file: path, name: name) }
            let rawType = try ic.u32("tensor '\(name)' dtype")
            guard let dtype = DType(rawValue: rawType) else {
                throw TSLMError.unsupportedDType(file: path, tensor: name, dtype: "id \(rawType)")
            }
            let nDims = try ic.u32("tensor '\(name)' n_dims")
            guard nDims <= UInt32(TSLMFormat.maxDims) else {
                throw TSLMError.malformed(file: path, reason: "tensor '\(name)' has \(nDims) dimensions (at most \(TSLMFormat.maxDims))")
            }
            var dims: [UInt64] = []
            for d in 0..<Int(nDims) { dims.append(try ic.u64("tensor '\(name)' dim \(d)")) }
            let offset = try ic.u64("tensor '\(name)' offset")
            let storedSize = try ic.u64("tensor '\(name)' stored_size")
            let size = try ic.u64("tensor '\(name)' size")
            let compression = try ic.u32("tensor '\(name)' compression")
            let reserved = try ic.u32("tensor '\(name)' reserved")
            let checksum = try ic.u64("tensor '\(name)' checksum")
            let expected = try dtype.validatedByteCount(shape: dims, file: path, tensor: name)
            guard size == expected else { throw TSLMError.sizeMismatch(file: path, tensor: name, expected: expected, actual: size) }
            guard compression <= 1, reserved == 0 else {
                throw TSLMError.malformed(file: path, reason: "tensor '\(name)' has unknown compression \(compression) or reserved \(reserved)")
            }
            if compression == 0 && storedSize != size {
                throw TSLMError.sizeMismatch(file: path, tensor: name, expected: size, actual: storedSize)
            }
            // One zstd frame expands at most 32768-fold (a 4-byte RLE block yields 128 KiB): a
            // larger declared size is a lie, rejected before tensorData() would allocate it.
            let (maxSize, big) = storedSize.multipliedReportingOverflow(by: TSLMFormat.maxCompressionRatio)
            if compression == 1 && !big && size > maxSize {
                throw TSLMError.malformed(file: path, reason: "tensor '\(name)' claims \(size) bytes from a \(storedSize)-byte zstd frame (at most \(TSLMFormat.maxCompressionRatio)x)")
            }
            let (end, overflow) = offset.addingReportingOverflow(storedSize)
            guard offset >= dataOffset, !overflow, end <= indexOffset else {
                throw TSLMError.tensorOutOfBounds(file: path, tensor: name, offset: offset, size: storedSize, limit: indexOffset)
            }
            guard offset % UInt64(alignment) == 0 else {
                throw TSLMError.malformed(file: path, reason: "tensor '\(name)' offset \(offset) is not a multiple of \(alignment)")
            }
            names[name] = i
            entries.append(TensorEntry(name: name, dtype: dtype, shape: dims.map { Int($0) }, offset: offset,
                                       storedSize: storedSize, size: size, compressed: compression == 1, checksum: checksum))
        }
        guard ic.remaining == 0 else {
            throw TSLMError.malformed(file: path, reason: "\(ic.remaining) unexpected bytes after the tensor directory")
        }
        // Overlap check on the sorted ranges (zero-sized tensors overlap nothing).
        let sorted = entries.filter { $0.storedSize > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.storedSize > b.offset {
            throw TSLMError.overlappingTensors(file: path, first: a.name, second: b.name)
        }
        tensors = entries
        byName = names
        self.indexOffset = Int(indexOffset)
    }

    /// Reads the metadata section (also used by tests to build files by hand).
    static func readMetadata(_ c: inout ByteCursor) throws -> Metadata {
        let count = try c.u64("metadata count")
        // Each pair takes at least 8 (key length) + 4 (type) + 1 bytes.
        guard count <= UInt64(c.remaining / 13) else {
            throw TSLMError.truncated(file: c.file, what: "metadata (\(count) keys)")
        }
        var md = Metadata()
        for i in 0..<Int(count) {
            let key = try c.string64("metadata key \(i)")
            guard Metadata.isValidKey(key) else {
                throw TSLMError.malformed(file: c.file, reason: "metadata key '\(key)' is not lower_snake_case words joined by dots")
            }
            let rawType = try c.u32("metadata '\(key)' type")
            guard let type = MetadataValueType(rawValue: rawType) else {
                throw TSLMError.malformed(file: c.file, reason: "metadata '\(key)' has unknown value type \(rawType)")
            }
            let value = try MetadataCodec.readValue(type, &c, key: key)
            guard md.insertNew(key, value) else { throw TSLMError.duplicateKey(file: c.file, key: key) }
        }
        return md
    }

    /// The entry for `name`, or nil.
    public func entry(_ name: String) -> TensorEntry? { byName[name].map { tensors[$0] } }

    /// The stored bytes of a tensor as they lie in the file (compressed when compressed).
    public func storedBytes(_ e: TensorEntry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[Int(e.offset)..<Int(e.offset + e.storedSize)])
    }

    /// The uncompressed bytes of a tensor: mapped (zero-copy) when stored uncompressed;
    /// otherwise decompressed into an owned buffer after its checksum is verified.
    public func tensorData(_ e: TensorEntry) throws -> TensorData {
        try tensorReadObserver?(e)
        let stored = storedBytes(e)
        guard e.compressed else { return TensorData(borrowing: stored, owner: file) }
        let sum = XXHash64.hash(stored)
        guard sum == e.checksum else {
            throw TSLMError.checksumMismatch(file: path, what: "tensor '\(e.name)'", expected: e.checksum, actual: sum)
        }
        let out = TensorData(allocating: Int(e.size))
        try Zstd.decompress(stored, into: out.mutableBytes, file: path, tensor: e.name)
        return out
    }

    /// `tensorData` by name.
    public func tensorData(_ name: String) throws -> TensorData {
        guard let e = entry(name) else { throw TSLMError.missingTensor(file: path, tensor: name) }
        return try tensorData(e)
    }

    /// Verifies every tensor's checksum (and that compressed tensors decompress). `progress`
    /// is called after each tensor with (done, total); an error it throws stops the check.
    public func verify(progress: ((Int, Int) throws -> Void)? = nil) throws {
        for (i, e) in tensors.enumerated() {
            let stored = storedBytes(e)
            let sum = XXHash64.hash(stored)
            guard sum == e.checksum else {
                throw TSLMError.checksumMismatch(file: path, what: "tensor '\(e.name)'", expected: e.checksum, actual: sum)
            }
            if e.compressed { _ = try tensorData(e) }
            file.release(offset: Int(e.offset), count: Int(e.storedSize))
            try progress?(i + 1, tensors.count)
        }
        try verifyPadding()
    }

    /// The bytes no checksum covers, the padding around the tensors in [data_offset,
    /// index_offset), must be zero as the format says: a flipped bit there is found too.
    func verifyPadding() throws {
        let bytes = file.bytes
        var at = TSLMFormat.headerSize
        for e in tensors.filter({ $0.storedSize > 0 }).sorted(by: { $0.offset < $1.offset }) {
            try zeroCheck(bytes, at, Int(e.offset))
            at = max(at, Int(e.offset + e.storedSize))
        }
        try zeroCheck(bytes, at, indexOffset)
    }

    private func zeroCheck(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) throws {
        guard from < to else { return }
        if let i = bytes[from..<to].firstIndex(where: { $0 != 0 }) {
            throw TSLMError.malformed(file: path, reason: "padding byte at offset \(i) is 0x\(String(bytes[i], radix: 16)), not zero")
        }
    }

    /// Drops the pages of a tensor from memory (useful while streaming through a big file).
    public func release(_ e: TensorEntry) { file.release(offset: Int(e.offset), count: Int(e.storedSize)) }
}

/// Uncompressed tensor bytes: either borrowed from a mapping (kept alive by `owner`) or owned.
public final class TensorData: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject?
    private let owned: UnsafeMutableRawPointer?

    init(borrowing bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.bytes = bytes
        self.owner = owner
        owned = nil
    }

    /// A zero-filled owned buffer of `count` bytes, 64-byte aligned.
    public init(allocating count: Int) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        owned = p
        owner = nil
        bytes = UnsafeRawBufferPointer(start: p, count: count)
    }

    public var mutableBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(mutating: bytes)
    }

    /// Calls `body` with the bytes while keeping this object (and so the bytes) alive.
    /// Use this whenever the `TensorData` is a local value: Swift may release an object right
    /// after its last use, so a pointer taken from `bytes` must not outlive that use.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) { try body(bytes) }
    }

    /// The bytes as an array (a copy).
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }

    deinit { owned?.deallocate() }
}
