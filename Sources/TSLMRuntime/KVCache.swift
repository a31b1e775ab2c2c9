#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels

/// How a session stores its keys and values.
public enum KVPrecision: String, Sendable, CaseIterable {
    /// f16 where the backbone's weight matrices are quantized (q8_0, q4_0, the K types ...),
    /// f32 where they are floats. The f16 rounding of keys and values (2⁻¹¹ relative) is far
    /// below what 8- and 4-bit weights already cost: the demos keep every answer at q8_0 with
    /// either cache, while at f32 weights one near-tie recording of 1,109 flips (README,
    /// "Speed"). f16 halves the cache and reads faster in decode over long contexts.
    case auto
    case f32
    case f16

    /// Whether this precision stores f16 for a model loaded from `file`.
    public func isHalf(for file: TSLMFile) -> Bool {
        switch self {
        case .f32: return false
        case .f16: return true
        case .auto: return Self.quantizedBackbone(file)
        }
    }

    /// Whether the backbone's layer matrices (`blk.*`, 2-D) are mostly of a quantized dtype.
    static func quantizedBackbone(_ file: TSLMFile) -> Bool {
        let matrices = file.tensors.filter { $0.name.hasPrefix("blk.") && $0.shape.count == 2 }
        let quantized = matrices.filter { $0.dtype.isQuantized }.count
        return !matrices.isEmpty && 2 * quantized > matrices.count
    }
}

/// Keys and values of every layer for up to `capacity` positions, and the session's activation
/// buffers (`Scratch`) that forward calls reuse. Layout per layer: [capacity, kvHeads·headDim],
/// f32 or f16.
public final class KVCache: Memory, @unchecked Sendable {
    public let layers: Int
    public let capacity: Int
    /// kvHeads · headDim.
    public let width: Int
    public let half: Bool
    /// Per layer: keys then values, each capacity·width elements.
    private let storage: UnsafeMutableRawPointer
    /// Bytes per key or value element: 2 (f16) or 4 (f32).
    let elementSize: Int
    /// f16 or f32.
    var elementType: DType { half ? .f16 : .f32 }
    /// Activation buffers of the forward calls that use this cache (one session's).
    public let scratch = Scratch()

    public init(layers: Int, capacity: Int, width: Int, half: Bool) throws {
        let (elements, o1) = (layers * 2).multipliedReportingOverflow(by: capacity)
        let (total, o2) = elements.multipliedReportingOverflow(by: width)
        guard layers > 0, capacity > 0, width > 0, !o1, !o2, total <= (1 << 36) else {
            throw RuntimeError.invalidArgument(name: "context length", reason: "a KV cache of \(capacity) positions × \(layers) layers × \(width) is too large")
        }
        // A cache larger than the machine's memory is refused before allocating (a context of
        // 10^9 positions must not end in an out-of-memory kill).
        let bytes = total * (half ? 2 : 4)
        guard bytes <= Self.physicalMemory else {
            throw RuntimeError.invalidArgument(name: "context length", reason: "a KV cache of \(capacity) positions × \(layers) layers × \(width) needs \(bytes) bytes, more than this machine's \(Self.physicalMemory)")
        }
        self.layers = layers
        self.capacity = capacity
        self.width = width
        self.half = half
        elementSize = half ? 2 : 4
        // Anonymous pages: zero, and taken from the OS only as positions are written, so a
        // session's resident memory grows with the positions it uses, not with its capacity
        // (a zero fill here made all of it resident at once: 360 MiB for SmolLM2 at 8192
        // positions in f32, most of it never used by a 300-position prompt).
        #if canImport(Darwin)
        let anonymous = MAP_ANON
        #else
        let anonymous = MAP_ANONYMOUS
        #endif
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | anonymous, -1, 0)
        guard let p, p != MAP_FAILED else {
            throw RuntimeError.invalidArgument(name: "context length", reason: "a KV cache of \(bytes) bytes could not be mapped (errno \(errno))")
        }
        storage = p
    }

    deinit { munmap(storage, byteCount) }

    /// Bytes of physical memory (`Int.max` when unknown).
    static let physicalMemory: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return Int.max }
        let (b, o) = pages.multipliedReportingOverflow(by: size)
        return o ? Int.max : b
    }()

    /// Bytes of the keys and values.
    public var byteCount: Int { layers * 2 * capacity * width * elementSize }

    /// Positions are overwritten as a new sequence runs: nothing to clear.
    public func reset() {}

    @inline(__always) func keys(_ layer: Int) -> UnsafeMutableRawPointer {
        storage + (layer * 2) * capacity * width * elementSize
    }

    @inline(__always) func values(_ layer: Int) -> UnsafeMutableRawPointer {
        storage + (layer * 2 + 1) * capacity * width * elementSize
    }

    /// Stores k and v rows [n, width] at positions start..<start+n.
    func store(layer: Int, start: Int, count n: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        for (src, dst) in [(k, keys(layer)), (v, values(layer))] {
            if half {
                Kernels.toHalf(src, count: n * width, into: (dst + start * width * 2).assumingMemoryBound(to: UInt16.self))
            } else {
                (dst + start * width * 4).copyMemory(from: src, byteCount: n * width * 4)
            }
        }
    }
}
