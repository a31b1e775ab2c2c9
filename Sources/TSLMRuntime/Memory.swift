/// What a session keeps between calls so that the next step does not recompute the past
/// (llama.cpp's memory interface): the KV cache of a Transformer (`KVCache`) is one kind, the
/// hidden and cell state of a recurrent network (`RecurrentState`) another.
public protocol Memory: AnyObject {
    /// Steps (positions) the memory can hold; `Int.max` for a recurrent state, which folds every
    /// step into a fixed-size state.
    var capacity: Int { get }
    /// Bytes it holds.
    var byteCount: Int { get }
    /// Forgets everything (a new sequence starts).
    func reset()
}

/// Activation buffers reused across forward calls of one session (llama2.c's `RunState`):
/// allocated on first use, grown when a call needs more, never shrunk or shared between threads.
public final class Scratch {
    private var buffers: [FloatBuffer] = []

    public init() {}

    /// Buffer `slot` with room for at least `count` floats. Its contents are undefined: callers
    /// write before they read.
    func buffer(_ slot: Int, _ count: Int) -> FloatBuffer {
        while buffers.count <= slot { buffers.append(FloatBuffer(0)) }
        if buffers[slot].count < count { buffers[slot] = FloatBuffer(count) }
        return buffers[slot]
    }

    /// Bytes held.
    public var byteCount: Int { buffers.reduce(0) { $0 + max($1.count, 1) * 4 } }
}

/// The state of a stacked recurrent network (e.g. PyTorch `nn.LSTM`): per layer a hidden vector
/// h and a cell vector c of `width` floats, zero at the start of a sequence.
public final class RecurrentState: Memory {
    public let layers: Int
    public let width: Int
    private let storage: FloatBuffer

    public init(layers: Int, width: Int) throws {
        let (total, overflow) = (2 * layers).multipliedReportingOverflow(by: width)
        guard layers > 0, width > 0, !overflow, total <= 1 << 30 else {
            throw RuntimeError.invalidArgument(name: "recurrent state", reason: "\(layers) layers × \(width) is not a valid size")
        }
        self.layers = layers
        self.width = width
        storage = FloatBuffer(total)
    }

    public var capacity: Int { Int.max }
    public var byteCount: Int { 2 * layers * width * 4 }

    /// h of `layer` [width].
    public func hidden(_ layer: Int) -> UnsafeMutablePointer<Float> { storage.pointer + (2 * layer) * width }
    /// c of `layer` [width].
    public func cell(_ layer: Int) -> UnsafeMutablePointer<Float> { storage.pointer + (2 * layer + 1) * width }

    public func reset() { storage.pointer.update(repeating: 0, count: 2 * layers * width) }
}
