import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// Write with `TSLMWriter`, read back with `TSLMFile` (mapped and read), and compare entries,
/// bytes, alignment and checksums; plus the compression decision.
final class TSLMRoundTripTests: XCTestCase {
    struct Spec { let name: String; let dtype: DType; let shape: [Int]; let data: [UInt8]; let compress: Bool }

    /// Every dtype, a scalar, zero-sized tensors, compressible and incompressible data.
    static func specs() -> [Spec] {
        var rng = SplitMix64(seed: 11)
        var s: [Spec] = []
        for (i, dt) in DType.allCases.enumerated() {
            let shape = dt.isQuantized ? [3, 2 * dt.blockSize] : [5, 7]
            var data = rng.bytes(dt.byteCount(shape: shape)!)
            if dt == .bool { data = data.map { $0 & 1 } }
            s.append(Spec(name: "t\(i).\(dt)", dtype: dt, shape: shape, data: data, compress: false))
        }
        s.append(Spec(name: "scalar.f32", dtype: .f32, shape: [], data: bytesOf([Float(3.25)]), compress: false))
        s.append(Spec(name: "scalar.i64", dtype: .i64, shape: [], data: bytesOf([Int64.min]), compress: true))
        s.append(Spec(name: "empty.f32", dtype: .f32, shape: [0], data: [], compress: false))
        s.append(Spec(name: "empty.q8_0", dtype: .q8_0, shape: [0, 32], data: [], compress: true))
        s.append(Spec(name: "empty.odd", dtype: .q4_1, shape: [4, 0], data: [], compress: false))
        // Compressible: a smooth ramp of f16 and lots of zeros.
        s.append(Spec(name: "zip.zeros", dtype: .f32, shape: [64, 64], data: [UInt8](repeating: 0, count: 64 * 64 * 4), compress: true))
        s.append(Spec(name: "zip.ramp", dtype: .f16, shape: [4096], data: bytesOf((0..<4096).map { floatToHalf(Float($0 % 64)) }), compress: true))
        // Incompressible: random bytes, asked to compress.
        s.append(Spec(name: "zip.random", dtype: .u8, shape: [8191], data: rng.bytes(8191), compress: true))
        // Small (under 64 bytes) compressible data is never compressed.
        s.append(Spec(name: "zip.tiny", dtype: .u8, shape: [63], data: [UInt8](repeating: 7, count: 63), compress: true))
        s.append(Spec(name: "blk.0.attn_q.weight", dtype: .bf16, shape: [1, 1, 1, 1, 1, 1, 1, 3], data: rng.bytes(6), compress: false))
        return s
    }

    static func metadata() -> Metadata {
        var md = MetadataTests.everyType()
        md["general.architecture"] = .string("raw")
        // Large string arrays: a 50,000-entry vocabulary and merges.
        md["tokenizer.tokens"] = .array(.string((0..<50_000).map { "tok_\($0)_\(String(repeating: "x", count: $0 % 13))" }))
        md["tokenizer.merges"] = .array(.string((0..<20_000).map { "a\($0) b\($0)" }))
        md["tokenizer.scores"] = .array(.f32((0..<50_000).map { -Float($0) / 7 }))
        md["tokenizer.huggingface.json"] = .string(String(repeating: "{\"k\": \"v\"}, ", count: 10_000))
        return md
    }

    func write(_ specs: [Spec], metadata: Metadata, to path: String) throws {
        let w = try TSLMWriter(path: path, metadata: metadata)
        for s in specs {
            try s.data.withUnsafeBytes { try w.addTensor(name: s.name, dtype: s.dtype, shape: s.shape, data: $0, compress: s.compress) }
        }
        XCTAssertEqual(w.entries.map(\.name), specs.map(\.name))
        try w.finish()
    }

    func testRoundTripEverything() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir.appendingPathComponent("all.tslm").path
        let specs = Self.specs(), md = Self.metadata()
        try write(specs, metadata: md, to: path)
        let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        for mmap in [true, false] {
            let f = try TSLMFile(path: path, mmap: mmap)
            XCTAssertEqual(f.fileSize, UInt64(raw.count))
            XCTAssertEqual(f.metadata, md)
            XCTAssertEqual(f.tensors.map(\.name), specs.map(\.name), "directory order is write order")
            for s in specs {
                guard let e = f.entry(s.name) else { XCTFail("missing \(s.name)"); continue }
                XCTAssertEqual(e.dtype, s.dtype)
                XCTAssertEqual(e.shape, s.shape)
                XCTAssertEqual(e.size, UInt64(s.data.count))
                XCTAssertEqual(e.offset % 64, 0, "\(s.name) offset \(e.offset) not aligned")
                XCTAssertGreaterThanOrEqual(e.offset, 64)
                XCTAssertEqual(try f.tensorData(e).array, s.data, "\(s.name) bytes")
                XCTAssertEqual(e.checksum, XXHash64.hash(Array(raw[Int(e.offset)..<Int(e.offset + e.storedSize)])))
                XCTAssertEqual(Array(f.storedBytes(e)), Array(raw[Int(e.offset)..<Int(e.offset + e.storedSize)]))
                if !e.compressed {
                    XCTAssertEqual(e.storedSize, e.size)
                    // Uncompressed data is served zero-copy from 64-byte aligned memory.
                    let d = try f.tensorData(e)
                    if e.size > 0 { XCTAssertEqual(Int(bitPattern: d.bytes.baseAddress!) % 64, 0) }
                }
            }
            var progress: [Int] = []
            try f.verify { done, total in XCTAssertEqual(total, specs.count); progress.append(done) }
            XCTAssertEqual(progress, Array(1...specs.count))
            assertThrows(TSLMError.self, "missing tensor", { try f.tensorData("nope") }) {
                if case .missingTensor(_, "nope") = $0 { return true } else { return false }
            }
        }
        // Header fields as documented.
        XCTAssertEqual(Array(raw[0..<4]), Array("TSLM".utf8))
        XCTAssertEqual(raw.u32(at: 4), 1)
        XCTAssertEqual(raw.u64(at: 8), UInt64(raw.count))
        XCTAssertEqual(raw.u64(at: 16), 64)
        XCTAssertEqual(raw.u64(at: 24) % 64, 0)
        XCTAssertEqual(raw.u64(at: 24) + raw.u64(at: 32), UInt64(raw.count))
        XCTAssertEqual(raw.u32(at: 40), 64)
        XCTAssertEqual(raw.u32(at: 44), 0)
        XCTAssertEqual(raw.u64(at: 48), XXHash64.hash(Array(raw[Int(raw.u64(at: 24))...])))
        XCTAssertEqual(raw.u64(at: 56), XXHash64.hash(Array(raw[0..<56])))
        // Padding between tensors is zero.
        let f = try TSLMFile(path: path)
        let ranges = f.tensors.filter { $0.storedSize > 0 }.map { Int($0.offset)..<Int($0.offset + $0.storedSize) }.sorted { $0.lowerBound < $1.lowerBound }
        var pos = 64
        for r in ranges {
            XCTAssertTrue(raw[pos..<r.lowerBound].allSatisfy { $0 == 0 }, "padding before \(r)")
            XCTAssertLessThan(r.lowerBound - pos, 64)
            pos = r.upperBound
        }
    }

    func testCompressionDecision() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir.appendingPathComponent("z.tslm").path
        let specs = Self.specs()
        try write(specs, metadata: Metadata(), to: path)
        let f = try TSLMFile(path: path, mmap: false)
        let byName = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0) })
        for name in ["zip.zeros", "zip.ramp"] {
            let e = f.entry(name)!
            XCTAssertTrue(e.compressed, name)
            XCTAssertLessThan(e.storedSize, e.size, name)
            XCTAssertLessThanOrEqual(e.storedSize, e.size - e.size / 20, "saves at least 5%")
            XCTAssertEqual(try f.tensorData(e).array, byName[name]!.data, "\(name) decompresses bit-identical")
            // Decompressed buffers are owned and 64-byte aligned too.
            XCTAssertEqual(Int(bitPattern: try f.tensorData(e).bytes.baseAddress!) % 64, 0)
        }
        for name in ["zip.random", "zip.tiny", "scalar.i64", "empty.q8_0"] {
            let e = f.entry(name)!
            XCTAssertFalse(e.compressed, "\(name) must be stored raw")
            XCTAssertEqual(e.storedSize, e.size)
        }
        // Nothing is compressed unless asked.
        XCTAssertFalse(f.entry("t0.f32")!.compressed)
    }

    func testEmptyFile() throws {
        // No metadata, no tensors: a 64-byte header followed by a 16-byte index.
        let dir = try makeTemporaryDirectory(self)
        let path = dir.appendingPathComponent("e.tslm").path
        let w = try TSLMWriter(path: path)
        try w.finish()
        let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(raw.count, 80)
        XCTAssertEqual(Array(raw[64...]), [UInt8](repeating: 0, count: 16))
        let f = try TSLMFile(path: path)
        XCTAssertEqual(f.metadata.count, 0)
        XCTAssertEqual(f.tensors.count, 0)
        try f.verify()
    }

    func testTensorDataOutlivesTheFileObject() throws {
        // A TensorData borrowed from a mapping keeps the mapping alive.
        let dir = try makeTemporaryDirectory(self)
        let path = dir.appendingPathComponent("l.tslm").path
        let payload = bytesOf((0..<256).map { Float($0) })
        let w = try TSLMWriter(path: path)
        try payload.withUnsafeBytes { try w.addTensor(name: "x", dtype: .f32, shape: [256], data: $0) }
        try w.finish()
        var d: TensorData? = try TSLMFile(path: path).tensorData("x")
        XCTAssertEqual(d?.array, payload)
        d = nil
    }
}
