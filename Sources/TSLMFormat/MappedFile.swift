#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only file mapped into memory (or read into an owned buffer when mapping is off).
/// The bytes live as long as the object.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    private let mapped: Bool

    /// Opens and maps `path`. With `mmap: false` the whole file is read into memory instead.
    public init(path: String, mmap useMmap: Bool = true) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TSLMError.io(file: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TSLMError.io(file: path, operation: "stat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw TSLMError.io(file: path, operation: "open (not a regular file)", errno: EISDIR)
        }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            mapped = false
            return
        }
        if useMmap {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else { throw TSLMError.io(file: path, operation: "mmap", errno: errno) }
            bytes = UnsafeRawBufferPointer(start: p, count: size)
            mapped = true
        } else {
            let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
            var done = 0
            while done < size {
                let n = pread(fd, p + done, size - done, off_t(done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    p.deallocate()
                    throw TSLMError.io(file: path, operation: "read", errno: n < 0 ? errno : EIO)
                }
                done += n
            }
            bytes = UnsafeRawBufferPointer(start: p, count: size)
            mapped = false
        }
    }

    /// Tells the kernel these pages are no longer needed (keeps peak RSS down while streaming).
    public func release(offset: Int, count: Int) {
        guard mapped, let base = bytes.baseAddress, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (offset / page) * page
        let end = min(bytes.count, offset + count)
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    deinit {
        guard let base = bytes.baseAddress else { return }
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }
}
