#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Positional reads from a file into owned buffers (no mapping, so pages do not accumulate in
/// the process's resident set while a converter streams through a large checkpoint).
public final class FileReader: @unchecked Sendable {
    public let path: String
    public let size: UInt64
    private let fd: Int32

    public init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TSLMError.io(file: path, operation: "open", errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw TSLMError.io(file: path, operation: "stat", errno: e)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw TSLMError.io(file: path, operation: "open (not a regular file)", errno: EISDIR)
        }
        size = UInt64(st.st_size)
    }

    deinit { close(fd) }

    /// Reads `count` bytes at `offset`; throws `truncated` if the file is shorter.
    public func read(offset: UInt64, count: Int, what: @autoclosure () -> String) throws -> TensorData {
        let (end, o) = offset.addingReportingOverflow(UInt64(count))
        guard count >= 0, !o, end <= size else { throw TSLMError.truncated(file: path, what: what()) }
        let out = TensorData(allocating: count)
        try read(offset: offset, into: out.mutableBytes, what: what())
        return out
    }

    /// Reads exactly `into.count` bytes at `offset`.
    public func read(offset: UInt64, into dst: UnsafeMutableRawBufferPointer, what: @autoclosure () -> String) throws {
        var done = 0
        while done < dst.count {
            let n = pread(fd, dst.baseAddress! + done, min(dst.count - done, 1 << 30), off_t(offset) + off_t(done))
            if n < 0 && errno == EINTR { continue }
            if n == 0 { throw TSLMError.truncated(file: path, what: what()) }
            guard n > 0 else { throw TSLMError.io(file: path, operation: "read", errno: errno) }
            done += n
        }
    }

    /// Reads the whole file (for small files: JSON, pickles).
    public func readAll() throws -> [UInt8] {
        guard size <= UInt64(Int.max) else { throw TSLMError.sizeOverflow(file: path, tensor: "(file)", shape: [size]) }
        var out = [UInt8](repeating: 0, count: Int(size))
        try out.withUnsafeMutableBytes { try read(offset: 0, into: $0, what: "file") }
        return out
    }
}
