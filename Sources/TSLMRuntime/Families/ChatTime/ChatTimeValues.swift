/// ChatTime's value tokens: how a series becomes `###0.1234###` tokens and how generated text
/// becomes values again, exactly as the official code does it (chat-time 0.3.0,
/// `utils/tools.py`: `Discretizer` over scikit-learn's `MinMaxScaler`, and `Serializer`).
///
/// - Scaling: min-max fitted on the whole current series, NaN ignored; a range below
///   10·ε (2.2e-15) counts as 1 (scikit-learn's `_handle_zeros_in_scale`). In float64, in
///   scikit-learn's order of operations: `scale = 1 / range`, `offset = 0 - min·scale`,
///   `scaled = x·scale + offset − 0.5`; inverse `((v + 0.5) − offset) / scale`.
/// - Bins: 10,001 boundaries `i·0.0002 − 1` (numpy's `linspace`, the last exactly 1), 10,000
///   centres `(b[k+1] + b[k]) / 2`, right-closed (`digitize(right=True)`): a value at or below
///   −1 gets the first centre, above 1 the last; NaN stays NaN (`###Nan###`).
/// - Text: each centre printed `%.4f` between `###`, joined by one space.
/// - Parse: every non-greedy match of `###(.*?)###` (`.` not matching a newline), each read with
///   Python's `float()` (whitespace stripped, `_` between digits, `nan`/`inf`/`infinity`, Unicode
///   decimal digits); a match that is not a number is NaN.
public enum ChatTimeValues {
    /// Number of value bins (tokens besides `###Nan###`).
    public static let binCount = 10_000
    public static let nanToken = "###Nan###"

    /// The 10,001 bin boundaries, as numpy's `linspace(-1, 1, 10001)` computes them.
    public static let boundaries: [Double] = {
        let step = 2.0 / Double(binCount)
        var b = (0...binCount).map { Double($0) * step + -1.0 }
        b[binCount] = 1.0
        return b
    }()

    /// The 10,000 bin centres.
    public static let centers: [Double] = (0..<binCount).map { (boundaries[$0 + 1] + boundaries[$0]) / 2 }

    /// `###%.4f###` of each centre: the value tokens' text in bin order.
    public static let tokens: [String] = centers.map { "###" + fourDecimals($0) + "###" }

    /// `%.4f` of a bin centre (each is within 1e-12 of an odd multiple of 0.0001, so rounding its
    /// ten-thousandths to the nearest integer is exact).
    static func fourDecimals(_ x: Double) -> String {
        let m = Int((x * 10_000).rounded())
        let a = abs(m)
        var frac = String(a % 10_000)
        frac = String(repeating: "0", count: 4 - frac.count) + frac
        return (x < 0 ? "-" : "") + "\(a / 10_000)." + frac
    }

    /// A fitted min-max scaler (scikit-learn's `MinMaxScaler` with feature range (0, 1)).
    public struct Scaler: Sendable, Equatable {
        public let scale: Double
        public let offset: Double

        /// Fits on the non-NaN values; nil when there are none.
        public init?(fitting values: [Double]) {
            var lo = Double.infinity, hi = -Double.infinity
            var any = false
            for v in values where !v.isNaN {
                lo = Swift.min(lo, v)
                hi = Swift.max(hi, v)
                any = true
            }
            guard any else { return nil }
            var range = hi - lo
            if range < 10 * Double.ulpOfOne { range = 1 }
            scale = 1 / range
            offset = 0 - lo * scale
        }

        /// The value in the scaled space ChatTime discretizes ([−0.5, 0.5] on the fitted data).
        public func scaled(_ x: Double) -> Double { x * scale + offset - 0.5 }

        /// The inverse of `scaled`.
        public func unscaled(_ v: Double) -> Double { ((v + 0.5) - offset) / scale }
    }

    /// The bin of a scaled value (0..<10,000), nil for NaN.
    public static func bin(ofScaled v: Double) -> Int? {
        guard !v.isNaN else { return nil }
        // searchsorted(boundaries, v, side: left): the first boundary ≥ v.
        var lo = 0, hi = boundaries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if boundaries[mid] < v { lo = mid + 1 } else { hi = mid }
        }
        return Swift.min(Swift.max(lo - 1, 0), binCount - 1)
    }

    /// The bins of a series (nil where NaN) under a scaler fitted on it; nil when all are NaN.
    public static func discretize(_ series: [Double]) -> (bins: [Int?], scaler: Scaler)? {
        guard let scaler = Scaler(fitting: series) else { return nil }
        return (series.map { $0.isNaN ? nil : bin(ofScaled: scaler.scaled($0)) }, scaler)
    }

    /// The series text: value tokens joined by one space.
    public static func serialize(_ bins: [Int?]) -> String {
        bins.map { $0.map { tokens[$0] } ?? nanToken }.joined(separator: " ")
    }

    /// The values of `###…###` matches in `text` (NaN where a match is not a number).
    public static func parse(_ text: String) -> [Double] {
        let u = Array(text.utf8)
        let hash = UInt8(ascii: "#"), newline = UInt8(ascii: "\n")
        func marker(at i: Int) -> Bool { i + 3 <= u.count && u[i] == hash && u[i + 1] == hash && u[i + 2] == hash }
        var out: [Double] = []
        var p = 0
        while p + 6 <= u.count {
            guard marker(at: p) else { p += 1; continue }
            var q = p + 3
            var found: Int? = nil
            while q + 3 <= u.count {
                if marker(at: q) { found = q; break }
                if u[q] == newline { break }
                q += 1
            }
            guard let end = found else { p += 1; continue }
            out.append(pythonFloat(String(decoding: u[(p + 3)..<end], as: UTF8.self)) ?? .nan)
            p = end + 3
        }
        return out
    }

    /// Python's `float(s)`: nil where Python raises `ValueError`.
    public static func pythonFloat(_ s: String) -> Double? {
        var scalars = Array(s.unicodeScalars)
        func isSpace(_ c: Unicode.Scalar) -> Bool {
            switch c.value {
            case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0: return true
            default: return c.properties.generalCategory == .spaceSeparator
                || c.value == 0x2028 || c.value == 0x2029
            }
        }
        while let f = scalars.first, isSpace(f) { scalars.removeFirst() }
        while let l = scalars.last, isSpace(l) { scalars.removeLast() }
        // Unicode decimal digits become ASCII ones (Python does this before parsing).
        var ascii = ""
        for c in scalars {
            if c.value < 0x80 {
                ascii.unicodeScalars.append(c)
            } else if c.properties.numericType == .decimal, let v = c.properties.numericValue, v >= 0, v <= 9 {
                ascii += String(Int(v))
            } else {
                return nil
            }
        }
        var t = Array(ascii.utf8)
        var sign = ""
        if let f = t.first, f == UInt8(ascii: "+") || f == UInt8(ascii: "-") {
            sign = f == UInt8(ascii: "-") ? "-" : ""
            t.removeFirst()
        }
        let word = String(decoding: t, as: UTF8.self).lowercased()
        if word == "inf" || word == "infinity" { return sign == "-" ? -.infinity : .infinity }
        if word == "nan" { return .nan }
        // digits ["." digits] [exponent], or "." digits [exponent]; "_" only between digits.
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        var i = 0
        var clean: [UInt8] = []
        func digits() -> Int {
            var n = 0
            while i < t.count {
                if isDigit(t[i]) {
                    clean.append(t[i]); n += 1; i += 1
                } else if t[i] == UInt8(ascii: "_"), n > 0, i + 1 < t.count, isDigit(t[i + 1]) {
                    i += 1
                } else {
                    break
                }
            }
            return n
        }
        var mantissa = digits()
        if i < t.count, t[i] == UInt8(ascii: ".") {
            clean.append(t[i]); i += 1
            mantissa += digits()
        }
        guard mantissa > 0 else { return nil }
        if i < t.count, t[i] == UInt8(ascii: "e") || t[i] == UInt8(ascii: "E") {
            clean.append(UInt8(ascii: "e")); i += 1
            if i < t.count, t[i] == UInt8(ascii: "+") || t[i] == UInt8(ascii: "-") { clean.append(t[i]); i += 1 }
            guard digits() > 0 else { return nil }
        }
        guard i == t.count else { return nil }
        return Double(sign + String(decoding: clean, as: UTF8.self))
    }
}
