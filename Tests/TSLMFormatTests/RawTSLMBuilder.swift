import XCTest
@testable import TSLMFormat

/// Builds `.tslm` bytes field by field, independently of `TSLMWriter`, so that tests can write
/// exactly the (in)valid structure they want, and re-seals mutated files (recomputes the
/// header's sizes and both header-level checksums) so that the intended check fires rather than
/// a checksum.
struct RawTSLM {
    /// One raw tensor-directory entry; every field is written as given.
    struct Tensor {
        var name: [UInt8]
        var dtype: UInt32
        var dims: [UInt64]
        var nDims: UInt32? = nil  // overrides dims.count when set
        var offset: UInt64
        var storedSize: UInt64
        var size: UInt64
        var compression: UInt32 = 0
        var reserved: UInt32 = 0
        var checksum: UInt64? = nil  // nil: XXH64 of the stored bytes (when they are in the file)

        init(_ name: String, dtype: DType, dims: [UInt64], offset: UInt64, storedSize: UInt64? = nil,
             size: UInt64? = nil, compression: UInt32 = 0) {
            self.name = Array(name.utf8)
            self.dtype = dtype.rawValue
            self.dims = dims
            self.offset = offset
            let s = size ?? dtype.byteCount(shape: dims) ?? 0
            self.size = s
            self.storedSize = storedSize ?? s
            self.compression = compression
        }
    }

    /// Raw metadata key/value encodings (key string + type + value), in order.
    var metadata: [[UInt8]] = []
    var metadataCount: UInt64? = nil
    var tensors: [Tensor] = []
    var tensorCount: UInt64? = nil
    /// Bytes from offset 64 up to the index (tensor data and padding); padded to 64 by `bytes()`.
    var data: [UInt8] = []
    /// Bytes appended after the tensor directory.
    var indexTrailer: [UInt8] = []

    // MARK: encoders

    static func string(_ s: [UInt8]) -> [UInt8] { var o: [UInt8] = []; o.appendLE(UInt64(s.count)); o += s; return o }
    static func kv(_ key: String, _ value: MetadataValue) -> [UInt8] {
        var o: [UInt8] = []
        MetadataCodec.write(key: key, value: value, to: &o)
        return o
    }
    /// A key/value pair with a raw key, a raw type and raw value bytes.
    static func rawKV(key: [UInt8], type: UInt32, value: [UInt8]) -> [UInt8] {
        var o = string(key)
        o.appendLE(type)
        return o + value
    }

    func indexBytes() -> [UInt8] {
        var ix: [UInt8] = []
        ix.appendLE(metadataCount ?? UInt64(metadata.count))
        for kv in metadata { ix += kv }
        ix.appendLE(tensorCount ?? UInt64(tensors.count))
        let paddedData = paddedDataRegion()
        for t in tensors {
            ix += Self.string(t.name)
            ix.appendLE(t.dtype)
            ix.appendLE(t.nDims ?? UInt32(t.dims.count))
            for d in t.dims { ix.appendLE(d) }
            ix.appendLE(t.offset)
            ix.appendLE(t.storedSize)
            ix.appendLE(t.size)
            ix.appendLE(t.compression)
            ix.appendLE(t.reserved)
            var sum = t.checksum ?? 0
            if t.checksum == nil, t.offset >= 64, t.storedSize <= UInt64(paddedData.count),
               t.offset - 64 <= UInt64(paddedData.count) - t.storedSize {
                let s = Int(t.offset - 64)
                sum = XXHash64.hash(Array(paddedData[s..<(s + Int(t.storedSize))]))
            }
            ix.appendLE(sum)
        }
        return ix + indexTrailer
    }

    func paddedDataRegion() -> [UInt8] {
        data + [UInt8](repeating: 0, count: (64 - data.count % 64) % 64)
    }

    /// The whole file, with a consistent header and correct header and index checksums.
    func bytes() -> [UInt8] {
        let body = paddedDataRegion()
        return Self.seal(header: Self.defaultHeader(), body: body, index: indexBytes())
    }

    static func defaultHeader() -> [UInt8] {
        var h = TSLMFormat.magic
        h.appendLE(TSLMFormat.version)
        h += [UInt8](repeating: 0, count: 56)
        h.setU64(64, at: 16)  // data_offset
        h.setU32(64, at: 40)  // alignment
        return h
    }

    static func seal(header: [UInt8], body: [UInt8], index: [UInt8]) -> [UInt8] {
        var f = Array(header.prefix(64)) + body
        let indexOffset = UInt64(f.count)
        f += index
        f.setU64(indexOffset, at: 24)
        return reseal(f)
    }

    /// Recomputes file_size and index_size from the real length (index_offset is kept) and
    /// both checksums. Use after mutating the index (or the header fields other than these).
    static func reseal(_ file: [UInt8], keepFileSize: Bool = false) -> [UInt8] {
        var f = file
        let indexOffset = Int(clamping: f.u64(at: 24))
        if !keepFileSize { f.setU64(UInt64(f.count), at: 8) }
        if indexOffset <= f.count {
            f.setU64(UInt64(f.count - indexOffset), at: 32)
            f.setU64(XXHash64.hash(Array(f[indexOffset...])), at: 48)
        }
        f.setU64(XXHash64.hash(Array(f[0..<56])), at: 56)
        return f
    }

    /// Only the header checksum.
    static func resealHeader(_ file: [UInt8]) -> [UInt8] {
        var f = file
        f.setU64(XXHash64.hash(Array(f[0..<56])), at: 56)
        return f
    }
}

extension RawTSLM {
    /// The reference small file of the corrupt-file tests:
    /// - metadata: `general.architecture` = "raw", `test.count` = u32 7, `test.flags` = bool[3]
    /// - `a`: f32 [2, 8] at 64 (64 bytes), `b`: q8_0 [1, 32] at 128 (34 bytes),
    ///   `z`: f32 [256] of zeros stored as one zstd frame at 192, `e`: f16 [0, 4] at 64 (empty).
    static func reference() -> RawTSLM {
        var r = RawTSLM()
        r.metadata = [kv("general.architecture", .string("raw")), kv("test.count", .u32(7)),
                      kv("test.flags", .array(.bool([true, false, true])))]
        let a = (0..<16).map { Float($0) * 0.25 - 1 }
        var b = [UInt8](repeating: 0, count: 34)
        b.setU32(0x3C00, at: 0)  // d = 1.0 (low two bytes), then q = 1, 2, ...
        for i in 0..<32 { b[2 + i] = UInt8(bitPattern: Int8(i - 16)) }
        let z = zerosFrame
        r.data = bytesOf(a) + b + [UInt8](repeating: 0, count: 30) + z
        r.tensors = [
            Tensor("a", dtype: .f32, dims: [2, 8], offset: 64),
            Tensor("b", dtype: .q8_0, dims: [1, 32], offset: 128),
            Tensor("z", dtype: .f32, dims: [256], offset: 192, storedSize: UInt64(z.count), compression: 1),
            Tensor("e", dtype: .f16, dims: [0, 4], offset: 64),
        ]
        return r
    }

    /// One zstd frame holding 1024 zero bytes (f32 [256]).
    static var zerosFrame: [UInt8] {
        [UInt8](repeating: 0, count: 1024).withUnsafeBytes { Zstd.compress($0)! }
    }
}
