#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat

// What the commands need from the system, over libc: the CLI links no Foundation (its ICU data
// alone is most of a statically linked binary's size).

/// Writes `s` to stdout unbuffered (straight to file descriptor 1), so that it stays in order
/// with streamed text and with stderr.
func writeStdout(_ s: String) {
    var bytes = Array(s.utf8)
    bytes.withUnsafeMutableBytes { raw in
        var done = 0
        while done < raw.count {
            let n = write(1, raw.baseAddress! + done, raw.count - done)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            done += n
        }
    }
}

/// Writes a line to stdout unbuffered, so it stays in order with streamed text and stderr.
func say(_ s: String) {
    writeStdout(s + "\n")
}

/// The number of CPUs this process may run on (its affinity mask, as Foundation's
/// `ProcessInfo.activeProcessorCount` counts them on Linux; else the online CPUs): the default
/// of `--threads`.
func activeProcessorCount() -> Int {
    #if os(Linux)
    // sched_getaffinity is declared only for _GNU_SOURCE, which Swift's Glibc module lacks:
    // looked up by name (RTLD_DEFAULT is the null handle).
    typealias GetAffinity = @convention(c) (Int32, Int, UnsafeMutableRawPointer?) -> Int32
    if let symbol = dlsym(nil, "sched_getaffinity") {
        let getAffinity = unsafeBitCast(symbol, to: GetAffinity.self)
        var mask = [UInt64](repeating: 0, count: 16)  // 1024 CPUs, glibc's cpu_set_t
        if mask.withUnsafeMutableBytes({ getAffinity(0, $0.count, $0.baseAddress) }) == 0 {
            let n = mask.reduce(0) { $0 + $1.nonzeroBitCount }
            if n > 0 { return n }
        }
    }
    #endif
    return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
}

/// Seconds elapsed since `start` (a monotonic clock).
func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// The bytes of the file at `path`, nil when it cannot be read.
func readFile(_ path: String) -> [UInt8]? {
    try? FileReader(path: path).readAll()
}

/// Writes the bytes of `elements` to `path` (a temporary file renamed into place: nothing
/// half-written on failure); false when it cannot.
func writeFile<T>(_ elements: [T], to path: String) -> Bool {
    (try? elements.withUnsafeBytes { try FileSystem.writeFile($0, to: path) }) != nil
}

/// JSON the commands print (`--json`): object members in sorted key order, as Foundation's
/// `JSONSerialization` with `.sortedKeys` wrote them; numbers as Swift's shortest round-trip
/// spelling (non-finite ones as null, which JSON has no spelling for).
enum JSONOutput {
    case null
    case bool(Bool)
    case int(Int)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONOutput])
    case object([String: JSONOutput])

    /// A string as itself (no quotes), anything else as its JSON text: for text reports.
    var plainText: String {
        if case let .string(s) = self { return s }
        return text()
    }

    /// Compact text, or with `pretty` one value per line indented by two spaces (as
    /// `JSONSerialization`'s `.prettyPrinted`).
    func text(pretty: Bool = false) -> String {
        var out = ""
        write(into: &out, pretty: pretty, indent: 0)
        return out
    }

    private func write(into out: inout String, pretty: Bool, indent: Int) {
        let newline = pretty ? "\n" : ""
        let pad = pretty ? String(repeating: " ", count: indent + 2) : ""
        let close = pretty ? String(repeating: " ", count: indent) : ""
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(n): out += String(n)
        case let .uint(n): out += String(n)
        case let .double(d): out += d.isFinite ? "\(d)" : "null"
        case let .string(s): out += JSONValue.quote(s)
        case let .array(items):
            guard !items.isEmpty else { out += "[]"; return }
            out += "[" + newline
            for (i, v) in items.enumerated() {
                out += (i > 0 ? "," + newline : "") + pad
                v.write(into: &out, pretty: pretty, indent: indent + 2)
            }
            out += newline + close + "]"
        case let .object(members):
            guard !members.isEmpty else { out += "{}"; return }
            out += "{" + newline
            for (i, key) in members.keys.sorted().enumerated() {
                out += (i > 0 ? "," + newline : "") + pad + JSONValue.quote(key) + (pretty ? " : " : ":")
                members[key]!.write(into: &out, pretty: pretty, indent: indent + 2)
            }
            out += newline + close + "}"
        }
    }
}
