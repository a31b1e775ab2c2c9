/// XXH64 (seed 0 unless given), the public xxHash 64-bit algorithm, streaming.
public struct XXHash64: Sendable {
    static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    private var v1, v2, v3, v4: UInt64
    private let seed: UInt64
    private var total: UInt64 = 0
    private var buffer: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var buffered = 0

    public init(seed: UInt64 = 0) {
        self.seed = seed
        v1 = seed &+ XXHash64.p1 &+ XXHash64.p2
        v2 = seed &+ XXHash64.p2
        v3 = seed
        v4 = seed &- XXHash64.p1
    }

    /// The hash of `bytes` in one call.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var h = XXHash64(seed: seed)
        h.update(bytes)
        return h.finalize()
    }

    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        var a = acc &+ input &* p2
        a = (a << 31) | (a >> 33)
        return a &* p1
    }

    @inline(__always) static func merge(_ acc: UInt64, _ val: UInt64) -> UInt64 {
        let v = round(0, val)
        return (acc ^ v) &* p1 &+ p4
    }

    /// Feeds more bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var n = bytes.count
        total &+= UInt64(n)
        // Fill a partial stripe first.
        if buffered > 0 {
            let take = min(32 - buffered, n)
            var buf = buffer
            let start = buffered
            withUnsafeMutableBytes(of: &buf) { $0.baseAddress!.advanced(by: start).copyMemory(from: p, byteCount: take) }
            buffer = buf
            buffered += take
            p += take
            n -= take
            if buffered < 32 { return }
            withUnsafeBytes(of: &buf) { b in stripe(b.baseAddress!) }
            buffered = 0
        }
        while n >= 32 {
            stripe(p)
            p += 32
            n -= 32
        }
        if n > 0 {
            var buf = buffer
            withUnsafeMutableBytes(of: &buf) { $0.baseAddress!.copyMemory(from: p, byteCount: n) }
            buffer = buf
            buffered = n
        }
    }

    @inline(__always) private mutating func stripe(_ p: UnsafeRawPointer) {
        v1 = XXHash64.round(v1, UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
        v2 = XXHash64.round(v2, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        v3 = XXHash64.round(v3, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        v4 = XXHash64.round(v4, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
    }

    /// The hash of everything fed so far.
    public func finalize() -> UInt64 {
        var h: UInt64
        if total >= 32 {
            h = ((v1 << 1) | (v1 >> 63)) &+ ((v2 << 7) | (v2 >> 57)) &+ ((v3 << 12) | (v3 >> 52)) &+ ((v4 << 18) | (v4 >> 46))
            h = XXHash64.merge(h, v1)
            h = XXHash64.merge(h, v2)
            h = XXHash64.merge(h, v3)
            h = XXHash64.merge(h, v4)
        } else {
            h = seed &+ XXHash64.p5
        }
        h &+= total
        var tail = buffer
        let n = buffered
        withUnsafeBytes(of: &tail) { buf in
            var p = buf.baseAddress!
            var left = n
            while left >= 8 {
                let k = XXHash64.round(0, UInt64(littleEndian: p.loadUnaligned(as: UInt64.self)))
                h ^= k
                h = ((h << 27) | (h >> 37)) &* XXHash64.p1 &+ XXHash64.p4
                p += 8
                left -= 8
            }
            if left >= 4 {
                h ^= UInt64(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self))) &* XXHash64.p1
                h = ((h << 23) | (h >> 41)) &* XXHash64.p2 &+ XXHash64.p3
                p += 4
                left -= 4
            }
            while left > 0 {
                h ^= UInt64(p.load(as: UInt8.self)) &* XXHash64.p5
                h = ((h << 11) | (h >> 53)) &* XXHash64.p1
                p += 1
                left -= 1
            }
        }
        h ^= h >> 33
        h &*= XXHash64.p2
        h ^= h >> 29
        h &*= XXHash64.p3
        h ^= h >> 32
        return h
    }
}
