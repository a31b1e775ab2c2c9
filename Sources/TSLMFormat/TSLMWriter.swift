#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a `.tslm` file tensor by tensor.
///
/// Data goes to a temporary file next to the destination; `finish()` writes the index and the
/// header, syncs and renames it into place. If `finish()` is never reached (an error, or the
/// writer is dropped), the temporary file is removed and the destination is untouched.
public final class TSLMWriter {
    public let path: String
    /// Metadata written by `finish()`; may be changed until then.
    public var metadata: Metadata
    public private(set) var entries: [TensorEntry] = []
    private let tempPath: String
    private var fd: Int32
    private var position: UInt64
    private var names: Set<String> = []
    private var finished = false

    /// Creates the temporary file for `path`.
    public init(path: String, metadata: Metadata = Metadata()) throws {
        self.path = path
        self.metadata = metadata
        // Not mkstemp: its files are 0600, and the rename would hand the user a private model
        // file. O_EXCL with mode 0666 gives the same uniqueness with the umask applied.
        var fd: Int32 = -1
        var temp = ""
        for _ in 0..<100 {
            temp = path + ".tmp-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
            fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw TSLMError.io(file: path, operation: "create temporary file", errno: errno) }
        self.fd = fd
        tempPath = temp
        position = 0
        do {
            try writeZeros(TSLMFormat.headerSize)
        } catch {
            abort()
            throw error
        }
    }

    deinit { if !finished { abort() } }

    /// Appends a tensor. `data` is the uncompressed bytes; with `compress`, a zstd frame is
    /// stored instead when it saves at least 5%.
    public func addTensor(name: String, dtype: DType, shape: [Int], data: UnsafeRawBufferPointer,
                          compress: Bool = false) throws {
        guard !finished else { throw TSLMError.invalidArgument(name: "writer", reason: "already finished") }
        guard !name.isEmpty, name.utf8.count <= TSLMFormat.maxNameBytes else {
            throw TSLMError.invalidArgument(name: "tensor name", reason: "'\(name)' is empty or longer than \(TSLMFormat.maxNameBytes) bytes")
        }
        guard !names.contains(name) else { throw TSLMError.duplicateTensor(file: path, name: name) }
        guard shape.count <= TSLMFormat.maxDims, shape.allSatisfy({ $0 >= 0 }) else {
            throw TSLMError.invalidShape(file: path, tensor: name, shape: shape, reason: "at most \(TSLMFormat.maxDims) non-negative dimensions")
        }
        let size = try dtype.validatedByteCount(shape: shape.map { UInt64($0) }, file: path, tensor: name)
        guard size == UInt64(data.count) else {
            throw TSLMError.sizeMismatch(file: path, tensor: name, expected: size, actual: UInt64(data.count))
        }
        try pad()
        let offset = position
        var stored = data
        var compressedBytes: [UInt8] = []
        if compress, data.count >= 64, let z = Zstd.compress(data), z.count <= data.count - data.count / 20 {
            compressedBytes = z
        }
        let isCompressed = !compressedBytes.isEmpty
        try compressedBytes.withUnsafeBytes { z in
            if isCompressed { stored = z }
            do {
                try writeAll(stored)
            } catch {
                abort()  // the file position is unknown now: nothing more can be written
                throw error
            }
            let entry = TensorEntry(name: name, dtype: dtype, shape: shape, offset: offset,
                                    storedSize: UInt64(stored.count), size: size,
                                    compressed: isCompressed, checksum: XXHash64.hash(stored))
            entries.append(entry)
        }
        names.insert(name)
    }

    /// Writes the index and the header, syncs, and renames the file into place.
    public func finish() throws {
        guard !finished else { return }
        do {
            for key in metadata.keys where !Metadata.isValidKey(key) {
                throw TSLMError.invalidArgument(name: "metadata key", reason: "'\(key)' is not lower_snake_case words joined by dots")
            }
            try pad()
            let indexOffset = position
            var index: [UInt8] = []
            index.appendLE(UInt64(metadata.count))
            for (k, v) in metadata.entries { MetadataCodec.write(key: k, value: v, to: &index) }
            index.appendLE(UInt64(entries.count))
            for e in entries {
                index.appendString64(e.name)
                index.appendLE(e.dtype.rawValue)
                index.appendLE(UInt32(e.shape.count))
                for d in e.shape { index.appendLE(UInt64(d)) }
                index.appendLE(e.offset)
                index.appendLE(e.storedSize)
                index.appendLE(e.size)
                index.appendLE(UInt32(e.compressed ? 1 : 0))
                index.appendLE(UInt32(0))
                index.appendLE(e.checksum)
            }
            try index.withUnsafeBytes { try writeAll($0) }
            var header: [UInt8] = TSLMFormat.magic
            header.appendLE(TSLMFormat.version)
            header.appendLE(position)  // file_size
            header.appendLE(UInt64(TSLMFormat.headerSize))
            header.appendLE(indexOffset)
            header.appendLE(UInt64(index.count))
            header.appendLE(UInt32(TSLMFormat.alignment))
            header.appendLE(UInt32(0))
            header.appendLE(index.withUnsafeBytes { XXHash64.hash($0) })
            header.appendLE(XXHash64.hash(header))
            let written = header.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            guard written == TSLMFormat.headerSize else { throw TSLMError.io(file: tempPath, operation: "write header", errno: errno) }
            guard fsync(fd) == 0 else { throw TSLMError.io(file: tempPath, operation: "fsync", errno: errno) }
            close(fd)
            fd = -1
            guard rename(tempPath, path) == 0 else { throw TSLMError.io(file: path, operation: "rename", errno: errno) }
            finished = true
        } catch {
            abort()
            throw error
        }
    }

    /// Removes the temporary file; the destination is untouched.
    public func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        if !finished { unlink(tempPath) }
        finished = true
    }

    private func pad() throws {
        let a = UInt64(TSLMFormat.alignment)
        let rem = Int((a - position % a) % a)
        if rem > 0 { try writeZeros(rem) }
    }

    private func writeZeros(_ n: Int) throws {
        let zeros = [UInt8](repeating: 0, count: n)
        try zeros.withUnsafeBytes { try writeAll($0) }
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, min(bytes.count - done, 1 << 30))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TSLMError.io(file: tempPath, operation: "write", errno: n < 0 ? errno : EIO) }
            done += n
        }
        position += UInt64(bytes.count)
    }
}
