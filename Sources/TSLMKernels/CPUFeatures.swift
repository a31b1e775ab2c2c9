#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CCPUFeatures

/// The instruction-set extensions the SIMD kernels of this build use, and whether this CPU has
/// them. x86-64 builds use AVX2, FMA and F16C (Haswell / Zen or newer) unless built with
/// `TSLM_PORTABLE=1`; a model load on a CPU without them is refused (never SIGILL) by
/// `CPUFeatures.missing`, which the runtime checks before any kernel runs.
public struct CPUFeatures: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let avx2 = CPUFeatures(rawValue: CPUFEAT_AVX2)
    public static let fma = CPUFeatures(rawValue: CPUFEAT_FMA)
    public static let f16c = CPUFeatures(rawValue: CPUFEAT_F16C)
    /// Not required: the prefill GEMM uses it where present (`Kernels.gemmAVX512`).
    public static let avx512f = CPUFeatures(rawValue: CPUFEAT_AVX512F)
    /// Not required: the integer prefill GEMM of q4_0 and q8_0 uses it where present
    /// (`Kernels.integerGemm`). Detected only together with AVX-512F.
    public static let avx512vnni = CPUFeatures(rawValue: CPUFEAT_AVX512VNNI)

    public var names: [String] {
        [(CPUFeatures.avx2, "AVX2"), (.fma, "FMA"), (.f16c, "F16C"), (.avx512f, "AVX-512F"), (.avx512vnni, "AVX-512 VNNI")].filter { contains($0.0) }.map(\.1)
    }

    public var description: String { names.isEmpty ? "none" : names.joined(separator: ", ") }

    /// What this build's kernels execute.
    public static var required: CPUFeatures {
        #if TSLM_X86_AVX2
        [.avx2, .fma, .f16c]
        #else
        []
        #endif
    }

    /// What the CPU and OS support (cpuid and XCR0, read once), less the features named in the
    /// environment variable `TSLM_CPU_FEATURES_MASK` (comma-separated, e.g. `avx2,fma`): a test
    /// hook that simulates an older CPU.
    public static var detected: CPUFeatures {
        var f = hardware
        if let p = getenv("TSLM_CPU_FEATURES_MASK") {
            for name in String(cString: p).lowercased().split(separator: ",") {
                switch name.trimmingWhitespace {
                case "avx2": f.remove(.avx2)
                case "fma": f.remove(.fma)
                case "f16c": f.remove(.f16c)
                case "avx512f": f.remove([.avx512f, .avx512vnni])
                case "avx512vnni": f.remove(.avx512vnni)
                default: break
                }
            }
        }
        return f
    }

    private static let hardware = CPUFeatures(rawValue: cpufeat_x86_detect())

    /// Required features this CPU lacks (empty: the kernels can run).
    public static var missing: CPUFeatures { required.subtracting(detected) }
}

extension Substring {
    fileprivate var trimmingWhitespace: Substring {
        var s = self
        while let c = s.first, c == " " { s.removeFirst() }
        while let c = s.last, c == " " { s.removeLast() }
        return s
    }
}
