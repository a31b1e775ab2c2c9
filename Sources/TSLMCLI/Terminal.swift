#if canImport(Glibc)
import Glibc
#endif

/// stderr output: messages and a progress bar (drawn only on a terminal).
enum Terminal {
    static let isTTY = isatty(2) != 0

    static func error(_ s: String) { write(s + "\n") }

    /// Writes straight to file descriptor 2 (unbuffered).
    static func write(_ s: String) {
        var bytes = Array(s.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// A one-line progress bar: `[#########.........]  45/273  blk.4.attn_q.weight`.
    static func progress(_ done: Int, _ total: Int, _ label: String) {
        guard isTTY, total > 0 else { return }
        let width = 30
        let filled = done * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let name = label.count > 40 ? String(label.prefix(37)) + "..." : label
        var line = "\r[\(bar)] \(String(done).leftPad(String(total).count))/\(total) \(name)"
        line += String(repeating: " ", count: max(0, 40 - name.count))
        write(line)
        if done == total { write("\r" + String(repeating: " ", count: line.count) + "\r") }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
    func rightPad(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
    /// Exactly `n` characters: cut, or padded with spaces on the right.
    func padded(to n: Int) -> String { String(prefix(n)).rightPad(n) }
}

/// 1234567 → "1.18 MiB".
func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(n) B" : String(format2: v) + " " + units[i]
}

/// 134515008 → "134.5M".
func formatCount(_ n: Int) -> String {
    if n >= 1_000_000_000 { return String(format2: Double(n) / 1e9) + "B" }
    if n >= 1_000_000 { return String(format2: Double(n) / 1e6) + "M" }
    if n >= 1_000 { return String(format2: Double(n) / 1e3) + "K" }
    return "\(n)"
}

extension String {
    /// Two decimals, without Foundation.
    init(format2 v: Double) {
        let r = (v * 100).rounded() / 100
        let whole = Int(r)
        let frac = Int(((r - Double(whole)) * 100).rounded())
        self = "\(whole).\(frac < 10 ? "0" : "")\(frac)"
    }
}
