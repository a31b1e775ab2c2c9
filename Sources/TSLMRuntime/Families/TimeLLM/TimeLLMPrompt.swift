// Swift standard library only (no Foundation): this file must behave identically on every
// platform, so it formats numbers and computes its trigonometry itself.

/// Time-LLM's prompt-as-prefix (ICLR 2024, upstream `models/TimeLLM.py`): RevIN without affine
/// and the statistics text, reproducing PyTorch's float32 results on x86 CPUs (the reference is
/// `tools/timellm_reference.py`, fixtures `Tests/TSLMRuntimeTests/Fixtures/timellm/`, whose README
/// lists every quirk replicated here).
///
/// Channel independence: each channel is its own sample; `normalize(_:)` and `statistics(_:)`
/// work on one channel. Upstream normalizes all channels of a (1, T, N) batch in one call, and
/// PyTorch then sums each channel in another order: `normalize(channels:)` reproduces that.
///
/// What is bit-exact with PyTorch (torch 2.x, x86 CPU, float32):
/// - the mean: torch's cascade `sum` (8 vector lanes x 4 interleaved accumulators x a 4-level
///   cascade; the sum kernel has no AVX-512 build, so AVX-512 machines use the same AVX2 order)
///   divided by T; the variance: float64 two-pass around the float32 mean (one channel) or a
///   float64 Welford pass (channels normalized together), rounded to float32; std =
///   sqrt(var + 1e-5) in float32 with `torch.sqrt`'s rounding (MKL VML on x86: `SquareRoot`);
///   the normalized values;
/// - min, max, the LOWER median, the trend (`diff(dim=1).sum(dim=1) > 0` with the same cascade
///   sum, which is not always the sign of x[T-1] − x[0]), Python's str() of each number.
///
/// The lags are torch.topk(irfft(rfft(x)·conj(rfft(x))), 5), with irfft's default length
/// 2·(T/2) (T − 1 lags for odd T). The autocorrelation is symmetric, r[k] == r[n−k], so the top 5
/// holds mirrored pairs whose order PyTorch decides by the last bit of its FFT (MKL on x86, a
/// closed library; pocketfft elsewhere) or, when those bits are equal, by torch.topk's tie order.
/// No float32 FFT reproduces MKL's bits, so here the autocorrelation is computed accurately
/// (float64, O(T²) DFT, rounded to float32), r[n−k] is set to exactly r[k], and the ties are
/// ordered exactly as torch.topk orders exact ties (libstdc++ `nth_element` + `sort` for fewer
/// than 320 lags, `partial_sort` from 320 on). The result equals PyTorch's whenever its FFT
/// gives a pair equal bits (about half the pairs); otherwise it differs only in the order within
/// mirrored pairs (k and n−k swapped).
public enum TimeLLMPrompt {
    /// The statistics of one normalized channel that the prompt reports.
    public struct Statistics: Equatable, Sendable {
        public var min: Float
        public var max: Float
        /// torch.median: the lower median (element (T−1)/2 of the sorted values).
        public var median: Float
        /// True when the float32 sum of the consecutive differences (torch's summation order)
        /// is > 0.
        public var upward: Bool
        /// The top-5 lags of the circular autocorrelation.
        public var lags: [Int]
        /// The float32 sum of the consecutive differences (what `upward` tests).
        public var trend: Float

        public init(min: Float, max: Float, median: Float, upward: Bool, lags: [Int], trend: Float = 0) {
            self.min = min
            self.max = max
            self.median = median
            self.upward = upward
            self.lags = lags
            self.trend = trend
        }
    }

    /// RevIN's epsilon, added to the biased variance in float32.
    public static let epsilon: Float = 1e-5
    /// Upstream's `top_k`.
    public static let lagCount = 5

    // MARK: RevIN

    /// How `torch.sqrt` rounds on the machine whose PyTorch is reproduced. x86 PyTorch wheels
    /// compute float32 `sqrt` with MKL VML (`vmsSqrt`, high-accuracy mode), which is not
    /// correctly rounded on every CPU.
    public enum SquareRoot: Sendable, Equatable {
        /// IEEE square root, correctly rounded: PyTorch without MKL (ARM, macOS), on GPUs, and
        /// (up to about 1 value in 1000) MKL's Intel kernels.
        case ieee
        /// MKL VML's generic x86 kernel, which MKL runs on CPUs it does not dispatch to its
        /// Intel-specific kernels (AMD): r = rsqrtps(x), then two Newton–Raphson corrections in
        /// float32 without FMA; rsqrtps as AMD Zen computes it. About 1 value in 6 differs from
        /// the IEEE result by one ulp. The fixtures were made on such a machine (AMD EPYC).
        case mklGenericAMD
    }

    /// The square root the fixtures' PyTorch computes (see `SquareRoot`).
    public static let defaultSquareRoot = SquareRoot.mklGenericAMD

    /// RevIN 'norm' without affine of one channel, as upstream computes it for a (1, T, 1)
    /// batch: mean over time, std = sqrt(biased variance + 1e-5), values = (x − mean) / std.
    /// PyTorch's variance of a (1, T, 1) tensor is two-pass: Σ(x − mean)² in float64 around the
    /// float32 mean, divided by T, rounded to float32. An empty series gives ([], nan, nan)
    /// (torch's mean of nothing).
    public static func normalize(_ x: [Float], squareRoot: SquareRoot = defaultSquareRoot) -> (values: [Float], mean: Float, std: Float) {
        guard !x.isEmpty else { return ([], .nan, .nan) }
        let mean = vectorInnerSum(x) / Float(x.count)
        let m = Double(mean)
        var sum = 0.0
        for v in x {
            let d = Double(v) - m
            sum += d * d
        }
        return normalize(x, mean: mean, variance: Float(sum / Double(x.count)), squareRoot: squareRoot)
    }

    /// RevIN of the channels of one (1, T, N) batch normalized together, as upstream does for
    /// multivariate input. For N > 1 PyTorch sums each channel in another order (the mean can
    /// differ in its last bit from the channel normalized alone) and computes the variance with
    /// a float64 Welford pass instead of two passes. All channels must have the same length.
    public static func normalize(channels: [[Float]], squareRoot: SquareRoot = defaultSquareRoot) throws -> [(values: [Float], mean: Float, std: Float)] {
        guard let first = channels.first else { return [] }
        let t = first.count
        if let bad = channels.firstIndex(where: { $0.count != t }) {
            throw RuntimeError.invalidArgument(name: "channels", reason: "channel \(bad) has \(channels[bad].count) steps, channel 0 has \(t)")
        }
        if channels.count == 1 { return [normalize(first, squareRoot: squareRoot)] }
        guard t > 0 else { return channels.map { _ in ([], Float.nan, Float.nan) } }
        return channelSums(channels).enumerated().map { c, sum in
            let x = channels[c]
            // torch.var over dim 1 of (1, T, N): WelfordOps accumulated in float64.
            var m = 0.0, m2 = 0.0
            for (i, v) in x.enumerated() {
                let d = Double(v) - m
                m += d / Double(i + 1)
                m2 += d * (Double(v) - m)
            }
            return normalize(x, mean: sum / Float(t), variance: Float(m2 / Double(t)), squareRoot: squareRoot)
        }
    }

    private static func normalize(_ x: [Float], mean: Float, variance: Float, squareRoot: SquareRoot) -> (values: [Float], mean: Float, std: Float) {
        let std = torchSqrt(variance + epsilon, squareRoot)
        return (x.map { ($0 - mean) / std }, mean, std)
    }

    /// `torch.sqrt` of one float32 (see `SquareRoot`).
    static func torchSqrt(_ x: Float, _ flavour: SquareRoot) -> Float {
        guard flavour == .mklGenericAMD else { return x.squareRoot() }
        // Zero, subnormals, negatives, the largest finite values, inf and NaN take MKL's
        // special-case path (the IEEE result).
        let bits = x.bitPattern
        guard Int32(bitPattern: bits &+ 0x7f80_0000) <= Int32(bitPattern: 0xfeff_f000) else { return x.squareRoot() }
        let r = amdRsqrt(x)
        let y = x * r
        let h = r * 0.5
        let e = 0.5 - y * h
        let y1 = y * e + y
        let h1 = e * h + h
        let d = x - y1 * y1
        return d * h1 + y1
    }

    /// AMD Zen's `rsqrtps` of a positive normal float32.
    static func amdRsqrt(_ x: Float) -> Float {
        let bits = x.bitPattern
        let exponent = Int((bits >> 23) & 0xff) - 127
        let parity = exponent & 1
        let f = rsqrtTable[parity][Int((bits & 0x7f_ffff) >> 11)]
        // (4096 + F) / 8192 for x scaled into [1, 4), then 2^(−(exponent − parity)/2).
        let scale = -((exponent - parity) / 2)
        let value = Float(4096 + Int(f)) / 8192
        return Float(sign: .plus, exponent: scale + value.exponent, significand: value.significand)
    }

    private static let rsqrtTable: [[UInt16]] = [(rsqrtStart.0, rsqrtSteps0), (rsqrtStart.1, rsqrtSteps1)].map { start, steps in
        var v = start
        var row: [UInt16] = [UInt16(v)]
        row.reserveCapacity(4096)
        for ch in steps.utf8 where ch >= 0x30 && ch <= 0x39 {
            v -= Int(ch - 0x30)
            row.append(UInt16(v))
        }
        return row
    }

    /// AMD Zen's `rsqrtps` for x in [1, 2) (row 0) and [2, 4) (row 1): the result is
    /// (4096 + F) / 8192 where F depends only on the top 12 mantissa bits; row p starts at
    /// F = 4095 / 1696 and each digit is how much F drops from one 12-bit bucket to the next.
    /// Measured on an AMD EPYC (Zen 4) with `_mm_rsqrt_ps` over every bucket (the result does
    /// not depend on the 11 low mantissa bits, and scales exactly with even exponent shifts).
    private static let rsqrtStart = (4095, 1696)
    private static let rsqrtSteps0 = """
        111111101111111211111110111111121111111011111111111111101111111211111110111111121111111011111111
        111111101111111111111110111111121111111011111111111111101111111111111110111111111111111011111111
        111111101111111111111110111111111111111011111110111111101111111111101111111011121110111111101111
        111011111110111211101111111011111110111111101111111011111110111111101111111011111110111111101111
        111011111110111111101111111011111110111111101111111011111110111111101111111011101110111111101111
        111011111110111011101111111011111101111011111011110111101111101211011110111110111101111011111011
        110111101111101111011110111110111101111011111011110111101111101111011110111110111101111011111010
        110111101111101111011110111110111101111011111010110111101111101111011110111110101101111011111011
        110110111011101111011011101110121101101110111011110110111011101111011011101110111101101110111011
        110110111011101111011011101110111101101110111011110110111011101011011011101110111101101110111011
        110110111011101011011011101110111101101110111010110110111011101201101110110110110110111011011011
        011011101101101201101110110110110110111011011011011011101101101101101110110110110110111011011011
        011011101101101101101110110110110110111011011011011011101101101101101110110110110110111011011010
        011011101101101101101110110110111011011010110110101101101011011110110110101101101011011010110111
        101101101011011010110110101101111011011010110110101101101011011010110110101101101011011010110111
        101101101011011010110110101101101011011010110110101101101011011010110110101101101011011010110110
        011010101101101101101010110110110110101011011011011010101101101101101010110110100110101011011011
        011010101101101101101010110110100110101011011011011010101101101001101010110110110110101011011010
        011010101101101101101010110110100110101011011010011010101101101101010110101011010101011010101101
        010101101010110201010110101011010101011010101101010101101010110101010110101011010101011010101101
        010101101010110101010110101011010101011010101101010101101010110101010110101011000101011010101101
        010101101010110101010110101011001010101010101011101010101010101110101010101010101010101010101011
        101010101010101010101010101010111010101010101010101010101010101110101010101010101010101010101011
        101010101010101010101010101010101010101010101011101010101010101010101010101010101010101010101011
        010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101
        010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101
        010101010101010001010101010101010101010101010101010101010101010101010100101010110101010010101010
        010101001010101101010100101010110101010010101010010101001010101101010100101010100101010010101011
        010101001010101001010100101010110101010010101010010101001010101101010100101010100101010010101010
        010101001010101101010100101010101010010101010010101001010101001010100101010100101010010101010011
        101001010101001010100101010100101010010101010010101001010101001010100101010100101010010101010010
        101001010101001010100101010100101010010101010010101001010101001010100101010100101010010101010011
        010010100101010101001010010101010100101001010100010010100101010101001010010101010100101001010101
        010010100101010101001010010101000100101001010101010010100101010101001010010101000100101001010101
        010010100101010101001010010101000100101001010101010010100101010001010010100100110101001010010010
        010100101001001101010010100100100101001010010011010100101001001001010010100100110101001010010010
        010100101001001001010010100100110101001010010010010100101001001001010010100100110101001010010010
        010100101001001001010010100100110100101001010010010010100101001001001010010100100100101001010010
        010010100101001001001010010100100100101001010011010010100101001001001010010100100100101001010010
        010010100101001001001010010100100100101001010010010010100101001001001010010100100100101001010010
        001001010010010100100101001001010010010100100101001001010010010100100101001001000010010100100101
        001001010010010100100101001001010010010100100101001001010010010000100101001001010010010100100101
        001001010010010100100101001001000010010100100101001001010010010
        """
    private static let rsqrtSteps1 = """
        101101101101101110110110110110111011011011011012101101101101101110110110110110101011011011011011
        101101101101101110110110110110111011011011011011101101101101101010110110110110111011011011011011
        101101101101101010110110110110111011011011011010101101101101101101101011011011010110101101101101
        011010110110110201101011011011010110101101101101011010110110110101101011011011010110101101101101
        011010110110110001101011011011010110101101101101011010110110110101101011011011000110101101101101
        011010110110110001101011011011010110101011010102011010101101010101101010110101010110101011010102
        011010101101010101101010110101010110101011010101011010101101010101101010110101010110101011010101
        011010101101010101101010110101010110101011010101011010101101010101101010110101010110101011010101
        011010101010101001101010101010110110101010101011011010101010101001101010101010110110101010101010
        011010101010101101101010101010100110101010101010011010101010101101101010101010100110101010101010
        011010101010101101101010101010100110101010101010011010101010101001010101010101010101010101010101
        010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101
        010101010101010101010101010101000101010101010101010101010101010101010101010101000101010101010101
        010101010101010001010101010101011001010101010010100101010101001110010101010100101001010101010011
        100101010101001010010101010100101001010101010011100101010101001010010101010100101001010101010010
        100101010101001110010101010100101001010101010010100101010101001010010101010100101001010101010010
        010100101010010101010010101001010101001010100101010100101010010101010010101001010101001010100101
        010100101010010101010010101001000101001010100101010100101010010101010010101001010101001010100100
        010100101010010101010010101001010101001010100100010100101010010101010010100101000101001010010101
        010100101001010001010010100101010101001010010100010100101001010101010010100101000101001010010100
        010100101001010101010010100101000101001010010100010100101001010101010010100101000101001010010100
        010100101001010001010010100101010010100100101001001010010010100100101001001010010010100100101001
        001010010010100100101001001010010010100100101001001010010010100100101001001010010010100100101001
        001010010010100100101001001010010010100100101001001010010010100100101001001010000010100100101001
        010010010010010101001001001001010100100100100100010010010010010101001001001001010100100100100101
        010010010010010001001001001001010100100100100100010010010010010101001001001001010100100100100100
        010010010010010101001001001001000100100100100101010010010010010001001001001001000100100100100101
        010010010010010001001001001001010100100100100100010010010010010001001001001001010100100100100100
        010010010010010001001001001001010100100100100100010010010010010001001001001001000100100100100100
        010010010010010101001001001001001001001001000100100100100100010010010010010001001001001001000100
        100100100100010010010010010001001001001001000100100100100100010010010010010001001001001001000100
        100100100100010010010010010001001001001001000100100100100100010010010010010001001001001001000101
        001001000100100000100100010010010010010001001001001001000100100100100100010010010010010001001001
        001001000100100000100100010010010010010001001001001001000100100100100100010010000010010001001001
        001001000100100100100100010010000010010001001001001001000100100100100100010010000010010001001001
        001001000100100000100100010010010010010001001001001001000100100000100100010010010010010001001000
        001001000100100100100100010010000010010001001001001001000100100000100100010010010010010001001000
        001001000100100000100100010010010100010001000100010001000100010101000100010001000100010001000100
        010001000100010101000100010001000100010001000100010001000100010101000100010001000100010001000100
        010001000100010001000100010001010100010001000100010001000100010001000100010001000100010001000101
        010001000100010001000100010001000100010001000100010001000100010001000100010001000100010001000100
        010001000100010101000100010001000100010001000100010001000100010001000100010001000100010001000100
        010001000100010001000100010001000100010001000100010001000100010
        """

    // MARK: Statistics

    /// The prompt statistics of one normalized channel (upstream computes them on the
    /// normalized series). Throws `invalidArgument` for fewer than 6 values (torch.topk of 5
    /// over 2·(T/2) lags fails upstream) and for non-finite values.
    public static func statistics(_ normalized: [Float]) throws -> Statistics {
        let t = normalized.count
        guard 2 * (t / 2) >= lagCount else {
            throw RuntimeError.invalidArgument(name: "normalized", reason: "\(t) values: the top-\(lagCount) lags need at least 6 (upstream's torch.topk fails)")
        }
        if let i = normalized.firstIndex(where: { !$0.isFinite }) {
            throw RuntimeError.invalidArgument(name: "normalized", reason: "value \(pythonString(normalized[i])) at step \(i) is not finite")
        }
        var low = normalized[0], high = normalized[0]
        for v in normalized {
            if v < low { low = v }
            if v > high { high = v }
        }
        let median = normalized.sorted()[(t - 1) / 2]
        let trend = trendSum(normalized)
        let lags = topK(autocorrelation(normalized), lagCount)
        return Statistics(min: low, max: high, median: median, upward: trend > 0, lags: lags, trend: trend)
    }

    /// `x.diff(dim=1).sum(dim=1)` in float32 with torch's summation order.
    static func trendSum(_ x: [Float]) -> Float {
        guard x.count > 1 else { return 0 }
        var d = [Float](repeating: 0, count: x.count - 1)
        for i in 0..<(x.count - 1) { d[i] = x[i + 1] - x[i] }
        return vectorInnerSum(d)
    }

    // MARK: Prompt text

    /// The prompt, concatenated exactly as upstream (no space after the description, "top 5
    /// lags are : ", the odd end marker).
    public static func text(description: String, predictionLength: Int, sequenceLength: Int, statistics s: Statistics) -> String {
        "<|start_prompt|>Dataset description: " + description
            + "Task description: forecast the next \(predictionLength) steps given the previous \(sequenceLength) steps information; "
            + "Input statistics: "
            + "min value " + pythonString(s.min) + ", "
            + "max value " + pythonString(s.max) + ", "
            + "median value " + pythonString(s.median) + ", "
            + "the trend of input is " + (s.upward ? "upward" : "downward") + ", "
            + "top \(lagCount) lags are : " + pythonList(s.lags) + "<|<end_prompt>|>"
    }

    /// Python's `str(list_of_ints)`: "[0, 1, 511, 24, 488]".
    static func pythonList(_ values: [Int]) -> String {
        "[" + values.map { String($0) }.joined(separator: ", ") + "]"
    }

    /// Python's `str()` of a float32 widened to float64: the shortest digits that round-trip the
    /// double, fixed notation from 1e-4 up to (excluding) 1e16 with ".0" on integral values,
    /// otherwise "d.ddde±XX" (at least two exponent digits); "nan", "inf", "-inf", "-0.0".
    public static func pythonString(_ v: Float) -> String {
        pythonString(Double(v))
    }

    /// Python's `repr()`/`str()` of a double (see `pythonString(_: Float)`).
    public static func pythonString(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        let sign = d.sign == .minus ? "-" : ""
        if d == 0 { return sign + "0.0" }
        // Swift's description has the shortest round-trip digits (the closest of them), the same
        // digits as Python's repr; only the layout differs, so take the digits and the decimal
        // exponent from it and lay them out as Python does (format_float_short, mode 'r').
        let description = d.magnitude.description
        var mantissa = Substring(description)
        var exponent = 0
        if let e = description.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = description[..<e]
            exponent = Int(description[description.index(after: e)...]) ?? 0
        }
        var digits: [Character] = []
        var pointAt: Int? = nil
        for ch in mantissa {
            if ch == "." { pointAt = digits.count } else { digits.append(ch) }
        }
        // value = 0.DIGITS × 10^decpt
        var decpt = (pointAt ?? digits.count) + exponent
        while let f = digits.first, f == "0", digits.count > 1 {
            digits.removeFirst()
            decpt -= 1
        }
        while let l = digits.last, l == "0", digits.count > 1 { digits.removeLast() }
        let ds = String(digits)
        if decpt <= -4 || decpt > 16 {
            let e = decpt - 1
            let magnitude = String(e < 0 ? -e : e)
            let exponentText = (e < 0 ? "-" : "+") + (magnitude.count < 2 ? "0" + magnitude : magnitude)
            let head = String(digits[0])
            let tail = digits.count > 1 ? "." + String(digits[1...]) : ""
            return sign + head + tail + "e" + exponentText
        }
        if decpt <= 0 { return sign + "0." + String(repeating: "0", count: -decpt) + ds }
        if decpt >= digits.count { return sign + ds + String(repeating: "0", count: decpt - digits.count) + ".0" }
        return sign + String(digits[..<decpt]) + "." + String(digits[decpt...])
    }

    // MARK: torch's float32 summation order (aten/src/ATen/native/cpu/SumKernel.cpp)

    /// Vector lanes of torch's CPU sum (Vectorized<float> of the AVX2 kernel, which AVX-512
    /// machines also run for `sum`).
    static let sumLanes = 8

    /// c10::CeilLog2.
    private static func ceilLog2(_ x: Int) -> Int {
        if x <= 2 { return 1 }
        return (Int.bitWidth - (x - 1).leadingZeroBitCount)
    }

    /// torch's `multi_row_sum`: `rows` × `lanes` accumulators summed along `size` steps with a
    /// 4-level cascade. `load(i, row, lane)` is the value added at step i.
    private static func multiRowSum(size: Int, rows: Int, lanes: Int, _ load: (Int, Int, Int) -> Float) -> [Float] {
        let levels = 4
        let width = rows * lanes
        let levelPower = Swift.max(4, ceilLog2(size) / levels)
        let levelStep = 1 << levelPower
        let levelMask = levelStep - 1
        var acc = [Float](repeating: 0, count: levels * width)
        var i = 0
        while i + levelStep <= size {
            for _ in 0..<levelStep {
                for r in 0..<rows { for l in 0..<lanes { acc[r * lanes + l] += load(i, r, l) } }
                i += 1
            }
            for j in 1..<levels {
                for w in 0..<width {
                    acc[j * width + w] += acc[(j - 1) * width + w]
                    acc[(j - 1) * width + w] = 0
                }
                if i & (levelMask << (j * levelPower)) != 0 { break }
            }
        }
        while i < size {
            for r in 0..<rows { for l in 0..<lanes { acc[r * lanes + l] += load(i, r, l) } }
            i += 1
        }
        for j in 1..<levels { for w in 0..<width { acc[w] += acc[j * width + w] } }
        return Array(acc[0..<width])
    }

    /// torch's `row_sum` over scalars: 4 interleaved accumulators (each a cascade), the rest
    /// added to the first, then the four combined.
    static func scalarRowSum(_ x: [Float]) -> Float {
        let ilp = 4
        let steps = x.count / ilp
        var partial = steps > 0 ? multiRowSum(size: steps, rows: ilp, lanes: 1) { i, r, _ in x[i * ilp + r] } : [0, 0, 0, 0]
        for i in (steps * ilp)..<x.count { partial[0] += x[i] }
        for k in 1..<ilp { partial[0] += partial[k] }
        return partial[0]
    }

    /// torch's `sum` of one contiguous row (a (1, T, 1) tensor over dim 1): `vectorized_inner_sum`
    /// (8-float vectors, 4 interleaved vector accumulators, the scalar tail, then the 8 lanes in
    /// order) for 8 values or more, otherwise the scalar `row_sum`.
    static func vectorInnerSum(_ x: [Float]) -> Float {
        let lanes = sumLanes
        guard x.count >= lanes else { return scalarRowSum(x) }
        let vectors = x.count / lanes
        let ilp = 4
        let steps = vectors / ilp
        var partial = steps > 0
            ? multiRowSum(size: steps, rows: ilp, lanes: lanes) { i, r, l in x[(i * ilp + r) * lanes + l] }
            : [Float](repeating: 0, count: ilp * lanes)
        for v in (steps * ilp)..<vectors { for l in 0..<lanes { partial[l] += x[v * lanes + l] } }
        for k in 1..<ilp { for l in 0..<lanes { partial[l] += partial[k * lanes + l] } }
        var total: Float = 0
        for i in (vectors * lanes)..<x.count { total += x[i] }
        for l in 0..<lanes { total += partial[l] }
        return total
    }

    /// The per-channel sums torch computes for `mean(dim=1)` of a (1, T, N) tensor, N > 1:
    /// `vectorized_outer_sum` for N ≥ 8 (groups of 32 channels summed step by step with the
    /// cascade, then groups of 8 and single channels with 4 interleaved accumulators),
    /// `scalar_outer_sum` below (groups of 4 step by step, the rest interleaved).
    static func channelSums(_ channels: [[Float]]) -> [Float] {
        let n = channels.count
        let t = channels[0].count
        func sequential(_ x: [Float]) -> Float { multiRowSum(size: t, rows: 1, lanes: 1) { i, _, _ in x[i] }[0] }
        var sums = [Float](repeating: 0, count: n)
        var j = 0
        let group = n >= sumLanes ? 4 * sumLanes : 4
        while j + group <= n {
            for c in j..<(j + group) { sums[c] = sequential(channels[c]) }
            j += group
        }
        while j < n {
            sums[j] = scalarRowSum(channels[j])
            j += 1
        }
        return sums
    }

    // MARK: Autocorrelation

    /// irfft(rfft(x)·conj(rfft(x))) with irfft's default length n = 2·(T/2): y[m] =
    /// (P_0 + P_{n/2}·(−1)^m + 2·Σ_{k=1}^{n/2−1} P_k·cos(2πkm/n)) / n with P_k = |X_k|² of the
    /// length-T DFT. Computed in float64, rounded to float32, r[n−m] set to exactly r[m].
    static func autocorrelation(_ x: [Float]) -> [Float] {
        let t = x.count
        let n = 2 * (t / 2)
        let half = n / 2
        guard n > 0 else { return [] }
        let xs = x.map { Double($0) }
        let forward = unitCircle(t)
        var power = [Double](repeating: 0, count: half + 1)
        for k in 0...half {
            var re = 0.0, im = 0.0
            var j = 0
            for s in 0..<t {
                re += xs[s] * forward[j].cos
                im -= xs[s] * forward[j].sin
                j += k
                if j >= t { j -= t }
            }
            power[k] = re * re + im * im
        }
        let inverse = unitCircle(n)
        var r = [Float](repeating: 0, count: n)
        for m in 0...half {
            var sum = power[0] + (m % 2 == 0 ? power[half] : -power[half])
            var j = m
            var k = 1
            while k < half {
                sum += 2 * power[k] * inverse[j].cos
                j += m
                if j >= n { j -= n }
                k += 1
            }
            r[m] = Float(sum / Double(n))
            if m > 0 && m < half { r[n - m] = r[m] }
        }
        return r
    }

    /// cos and sin of 2πj/n for j in 0..<n.
    private static func unitCircle(_ n: Int) -> [(cos: Double, sin: Double)] {
        (0..<n).map { cosSin(turn: $0, of: n) }
    }

    /// cos and sin of 2π·j/n: exact reduction to an angle in [0, π/4] by integer arithmetic,
    /// then Taylor series (error below 1e-16 there).
    static func cosSin(turn j: Int, of n: Int) -> (cos: Double, sin: Double) {
        let j = ((j % n) + n) % n
        let quadrant = (4 * j) / n
        let rest = 4 * j - quadrant * n              // angle in the quadrant: (π/2)·rest/n
        var c: Double, s: Double
        if 2 * rest <= n {
            let a = (Double.pi / 2) * Double(rest) / Double(n)
            (c, s) = (taylorCos(a), taylorSin(a))
        } else {
            let a = (Double.pi / 2) * Double(n - rest) / Double(n)
            (c, s) = (taylorSin(a), taylorCos(a))
        }
        switch quadrant {
        case 0: return (c, s)
        case 1: return (-s, c)
        case 2: return (-c, -s)
        default: return (s, -c)
        }
    }

    private static func taylorSin(_ a: Double) -> Double {
        let a2 = a * a
        var term = 1.0
        // a·(1 − a²/(2·3)(1 − a²/(4·5)(1 − …)))
        for k in stride(from: 20, through: 2, by: -2) {
            term = 1 - a2 / Double(k * (k + 1)) * term
        }
        return a * term
    }

    private static func taylorCos(_ a: Double) -> Double {
        let a2 = a * a
        var term = 1.0
        for k in stride(from: 20, through: 2, by: -2) {
            term = 1 - a2 / Double((k - 1) * k) * term
        }
        return term
    }

    // MARK: torch.topk's order (aten/src/ATen/native/TopKImpl.h over libstdc++)

    private struct Entry { var value: Float; var index: Int }

    /// The comparator torch.topk(largest) hands to the std algorithms: NaN first, then larger.
    private static func before(_ a: Entry, _ b: Entry) -> Bool {
        (a.value.isNaN && !b.value.isNaN) || a.value > b.value
    }

    /// Indices of the k largest values in torch.topk's order, ties included: for k·64 ≤ n
    /// std::partial_sort, otherwise std::nth_element(k−1) then std::sort of the first k−1
    /// (libstdc++'s algorithms, step by step).
    static func topK(_ values: [Float], _ k: Int) -> [Int] {
        let n = values.count
        let k = Swift.min(k, n)
        guard k > 0 else { return [] }
        var q = values.enumerated().map { Entry(value: $1, index: $0) }
        if k * 64 <= n {
            heapSelect(&q, 0, k, n)
            sortHeap(&q, 0, k)
        } else {
            nthElement(&q, 0, k - 1, n)
            sort(&q, 0, k - 1)
        }
        return q[0..<k].map(\.index)
    }

    private static func floorLog2(_ n: Int) -> Int { Int.bitWidth - 1 - n.leadingZeroBitCount }

    private static func insertionSort(_ q: inout [Entry], _ first: Int, _ last: Int) {
        guard first != last else { return }
        var i = first + 1
        while i < last {
            let value = q[i]
            if before(value, q[first]) {
                var j = i
                while j > first { q[j] = q[j - 1]; j -= 1 }
                q[first] = value
            } else {
                var hole = i, next = i - 1
                while before(value, q[next]) { q[hole] = q[next]; hole = next; next -= 1 }
                q[hole] = value
            }
            i += 1
        }
    }

    /// std::sort: the introsort loop does nothing below 17 elements, so for the k−1 ≤ 16 sorted
    /// here it is the final insertion sort; longer ranges (k > 17) use the full introsort.
    private static func sort(_ q: inout [Entry], _ first: Int, _ last: Int) {
        guard last - first > 1 else { return }
        introsortLoop(&q, first, last, 2 * floorLog2(last - first))
        if last - first > 16 {
            insertionSort(&q, first, first + 16)
            var i = first + 16
            while i < last {     // __unguarded_insertion_sort
                let value = q[i]
                var hole = i, next = i - 1
                while before(value, q[next]) { q[hole] = q[next]; hole = next; next -= 1 }
                q[hole] = value
                i += 1
            }
        } else {
            insertionSort(&q, first, last)
        }
    }

    private static func introsortLoop(_ q: inout [Entry], _ first: Int, _ last: Int, _ depth: Int) {
        var last = last, depth = depth
        while last - first > 16 {
            if depth == 0 {
                heapSelect(&q, first, last, last)
                sortHeap(&q, first, last)
                return
            }
            depth -= 1
            let cut = partitionPivot(&q, first, last)
            introsortLoop(&q, cut, last, depth)
            last = cut
        }
    }

    private static func moveMedianToFirst(_ q: inout [Entry], _ result: Int, _ a: Int, _ b: Int, _ c: Int) {
        let pick: Int
        if before(q[a], q[b]) {
            if before(q[b], q[c]) { pick = b } else if before(q[a], q[c]) { pick = c } else { pick = a }
        } else if before(q[a], q[c]) {
            pick = a
        } else if before(q[b], q[c]) {
            pick = c
        } else {
            pick = b
        }
        q.swapAt(result, pick)
    }

    private static func unguardedPartition(_ q: inout [Entry], _ first: Int, _ last: Int, _ pivot: Int) -> Int {
        var first = first, last = last
        while true {
            while before(q[first], q[pivot]) { first += 1 }
            last -= 1
            while before(q[pivot], q[last]) { last -= 1 }
            if !(first < last) { return first }
            q.swapAt(first, last)
            first += 1
        }
    }

    private static func partitionPivot(_ q: inout [Entry], _ first: Int, _ last: Int) -> Int {
        let mid = first + (last - first) / 2
        moveMedianToFirst(&q, first, first + 1, mid, last - 1)
        return unguardedPartition(&q, first + 1, last, first)
    }

    private static func nthElement(_ q: inout [Entry], _ first: Int, _ nth: Int, _ last: Int) {
        guard first != last, nth != last else { return }
        var first = first, last = last
        var depth = 2 * floorLog2(last - first)
        while last - first > 3 {
            if depth == 0 {
                heapSelect(&q, first, nth + 1, last)
                q.swapAt(first, nth)
                return
            }
            depth -= 1
            let cut = partitionPivot(&q, first, last)
            if cut <= nth { first = cut } else { last = cut }
        }
        insertionSort(&q, first, last)
    }

    private static func pushHeap(_ q: inout [Entry], _ base: Int, _ hole: Int, _ top: Int, _ value: Entry) {
        var hole = hole
        var parent = (hole - 1) / 2
        while hole > top && before(q[base + parent], value) {
            q[base + hole] = q[base + parent]
            hole = parent
            parent = (hole - 1) / 2
        }
        q[base + hole] = value
    }

    private static func adjustHeap(_ q: inout [Entry], _ base: Int, _ hole: Int, _ length: Int, _ value: Entry) {
        let top = hole
        var hole = hole, child = hole
        while child < (length - 1) / 2 {
            child = 2 * (child + 1)
            if before(q[base + child], q[base + child - 1]) { child -= 1 }
            q[base + hole] = q[base + child]
            hole = child
        }
        if length & 1 == 0 && child == (length - 2) / 2 {
            child = 2 * (child + 1)
            q[base + hole] = q[base + child - 1]
            hole = child - 1
        }
        pushHeap(&q, base, hole, top, value)
    }

    private static func makeHeap(_ q: inout [Entry], _ first: Int, _ last: Int) {
        let length = last - first
        guard length >= 2 else { return }
        var parent = (length - 2) / 2
        while true {
            adjustHeap(&q, first, parent, length, q[first + parent])
            if parent == 0 { return }
            parent -= 1
        }
    }

    private static func popHeap(_ q: inout [Entry], _ first: Int, _ last: Int, _ result: Int) {
        let value = q[result]
        q[result] = q[first]
        adjustHeap(&q, first, 0, last - first, value)
    }

    private static func heapSelect(_ q: inout [Entry], _ first: Int, _ middle: Int, _ last: Int) {
        makeHeap(&q, first, middle)
        var i = middle
        while i < last {
            if before(q[i], q[first]) { popHeap(&q, first, middle, i) }
            i += 1
        }
    }

    private static func sortHeap(_ q: inout [Entry], _ first: Int, _ last: Int) {
        var last = last
        while last - first > 1 {
            last -= 1
            popHeap(&q, first, last, last)
        }
    }
}
