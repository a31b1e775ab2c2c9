#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small file-system helpers over libc (no Foundation), for the converter and the CLI.
public enum FileSystem {
    /// The names in the directory at `path` (without "." and ".."), in the order the file
    /// system returns them; nil when it cannot be opened.
    public static func directoryEntries(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Whether something (a file, a directory, ...) exists at `path`.
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// The last component of `path`, as Foundation's `URL(fileURLWithPath:).lastPathComponent`
    /// gives it: trailing slashes ignored, "/" for the root.
    public static func lastPathComponent(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        if p == "/" { return "/" }
        if let slash = p.lastIndex(of: "/") { return String(p[p.index(after: slash)...]) }
        return String(p)
    }

    /// `path` without its last component ("a/b/c" → "a/b"; "c" → ".").
    public static func deletingLastPathComponent(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "." }
        return slash == p.startIndex ? "/" : String(p[..<slash])
    }

    /// Writes `bytes` to `path` through a temporary file next to it (mode 0666 less the umask)
    /// renamed into place: a failed write leaves whatever was at `path` untouched and no
    /// temporary file behind.
    public static func writeFile(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        let tmp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw TSLMError.io(file: path, operation: "create", errno: errno) }
        var isOpen = true
        do {
            try writeAll(fd, bytes, path: path)
            guard fsync(fd) == 0 else { throw TSLMError.io(file: path, operation: "fsync", errno: errno) }
            isOpen = false
            guard close(fd) == 0 else { throw TSLMError.io(file: path, operation: "close", errno: errno) }
        } catch {
            if isOpen { close(fd) }
            unlink(tmp)
            throw error
        }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw TSLMError.io(file: path, operation: "rename", errno: e)
        }
    }

    /// Writes all of `bytes` to `fd`, retrying short writes and EINTR.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw TSLMError.io(file: path, operation: "write", errno: errno)
            }
            done += n
        }
    }
}
