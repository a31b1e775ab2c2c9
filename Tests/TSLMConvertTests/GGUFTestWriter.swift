import Foundation
import TSLMFormat

/// A tiny GGUF writer for tests: builds well-formed files and, through its override knobs,
/// every kind of corrupt file the importer must reject.
struct GGUFTestWriter {
    /// One tensor to write.
    struct Tensor {
        var name: [UInt8]
        /// Dimensions outermost first (written innermost first, as GGUF stores them).
        var shape: [UInt64]
        var type: UInt32
        var data: [UInt8]
        /// Written instead of the computed (relative) offset; the data stays where it was laid out.
        var offsetOverride: UInt64? = nil
        /// Written instead of `shape.count`.
        var nDimsOverride: UInt32? = nil
    }

    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    var tensorCountOverride: Int64? = nil
    var metadataCountOverride: Int64? = nil
    /// Layout alignment of the data blob (also write `general.alignment` to tell the reader).
    var alignment: Int = 32
    /// Encoded key/value pairs (key string, type, value).
    var kvs: [[UInt8]] = []
    var tensors: [Tensor] = []

    /// Adds a metadata pair with a typed value.
    mutating func add(_ key: String, _ value: MetadataValue) {
        var out: [UInt8] = []
        MetadataCodec.write(key: key, value: value, to: &out)
        kvs.append(out)
    }

    /// Adds a metadata pair from raw key bytes, a raw type and raw value bytes.
    mutating func addRaw(key: [UInt8], type: UInt32, value: [UInt8]) {
        var out: [UInt8] = []
        out.appendLE(UInt64(key.count))
        out.append(contentsOf: key)
        out.appendLE(type)
        out.append(contentsOf: value)
        kvs.append(out)
    }

    /// Adds an f32 tensor with the given values.
    mutating func addF32(_ name: String, shape: [UInt64], values: [Float]) {
        var data: [UInt8] = []
        for v in values { data.appendLE(v.bitPattern) }
        tensors.append(Tensor(name: Array(name.utf8), shape: shape, type: 0, data: data))
    }

    /// Adds a tensor of any ggml type from raw bytes.
    mutating func addRawTensor(_ name: String, shape: [UInt64], type: UInt32, data: [UInt8]) {
        tensors.append(Tensor(name: Array(name.utf8), shape: shape, type: type, data: data))
    }

    /// The file bytes.
    func build() -> [UInt8] {
        var out: [UInt8] = magic
        out.appendLE(version)
        out.appendLE(tensorCountOverride ?? Int64(tensors.count))
        out.appendLE(metadataCountOverride ?? Int64(kvs.count))
        for kv in kvs { out.append(contentsOf: kv) }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            out.appendLE(UInt64(t.name.count))
            out.append(contentsOf: t.name)
            out.appendLE(t.nDimsOverride ?? UInt32(t.shape.count))
            for d in t.shape.reversed() { out.appendLE(d) }
            out.appendLE(t.type)
            out.appendLE(t.offsetOverride ?? UInt64(off))
        }
        while out.count % alignment != 0 { out.append(0) }
        let blobStart = out.count
        for (t, off) in zip(tensors, offsets) {
            while out.count < blobStart + off { out.append(0) }
            out.append(contentsOf: t.data)
        }
        while (out.count - blobStart) % alignment != 0 { out.append(0) }
        return out
    }

    /// Writes the file into `dir` and returns its path.
    func write(to dir: URL, name: String = "test.gguf") throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(build()).write(to: url)
        return url.path
    }
}
