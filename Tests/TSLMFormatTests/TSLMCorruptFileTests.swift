import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// The corrupt-file matrix: every way a `.tslm` file can be wrong raises its own `TSLMError`
/// case (matched by pattern), never a crash; then a seeded fuzz loop.
final class TSLMCorruptFileTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self, inMemory: true)
    }

    /// Writes `bytes` to a file of the test's directory and returns its path.
    func write(_ bytes: [UInt8], _ name: String = "f.tslm") throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    /// Asserts that opening `bytes` (mapped and read) throws an error matching `matches`.
    func assertOpenFails(_ what: String, _ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line,
                         _ matches: @escaping (TSLMError) -> Bool) throws {
        let path = try write(bytes)
        for mmap in [true, false] {
            let e = assertThrows(TSLMError.self, "\(what) (mmap: \(mmap))", { try TSLMFile(path: path, mmap: mmap) }, file: file, line: line, matches)
            // Every message names the file.
            if let e { XCTAssertTrue(e.description.contains(path), "\(e)", file: file, line: line) }
        }
    }

    /// The reference file with one change to its raw description.
    func variant(_ change: (inout RawTSLM) -> Void) -> [UInt8] {
        var r = RawTSLM.reference()
        change(&r)
        return r.bytes()
    }

    // MARK: the reference file itself

    func testReferenceFileIsValid() throws {
        let path = try write(RawTSLM.reference().bytes())
        for mmap in [true, false] {
            let f = try TSLMFile(path: path, mmap: mmap)
            XCTAssertEqual(f.tensors.map(\.name), ["a", "b", "z", "e"])
            XCTAssertEqual(f.metadata.string("general.architecture"), "raw")
            XCTAssertEqual(f.metadata["test.flags"], .array(.bool([true, false, true])))
            XCTAssertEqual(try f.tensorData("z").array, [UInt8](repeating: 0, count: 1024))
            XCTAssertEqual(try f.tensorData("e").array, [])
            XCTAssertEqual(try f.tensorData("a").array.withUnsafeBytes { floatsOf($0) }, (0..<16).map { Float($0) * 0.25 - 1 })
            XCTAssertEqual(f.entry("b")?.storedSize, 34)
            XCTAssertEqual(f.entry("z")?.compressed, true)
            try f.verify()
        }
    }

    func testWriterProducesTheSameBytesAsTheRawBuilder() throws {
        // The independent builder and TSLMWriter agree byte for byte on the reference file:
        // the layout in formats/tslm.md is what the writer writes.
        let ref = RawTSLM.reference()
        let path = dir.appendingPathComponent("w.tslm").path
        var md = Metadata()
        md["general.architecture"] = .string("raw")
        md["test.count"] = .u32(7)
        md["test.flags"] = .array(.bool([true, false, true]))
        let w = try TSLMWriter(path: path, metadata: md)
        let region = ref.paddedDataRegion()
        try region.withUnsafeBytes { r in
            try w.addTensor(name: "a", dtype: .f32, shape: [2, 8], data: UnsafeRawBufferPointer(rebasing: r[0..<64]))
            try w.addTensor(name: "b", dtype: .q8_0, shape: [1, 32], data: UnsafeRawBufferPointer(rebasing: r[64..<98]))
        }
        try [UInt8](repeating: 0, count: 1024).withUnsafeBytes {
            try w.addTensor(name: "z", dtype: .f32, shape: [256], data: $0, compress: true)
        }
        // The writer puts an empty tensor at the current (aligned) position, past "z".
        try [UInt8]().withUnsafeBytes { try w.addTensor(name: "e", dtype: .f16, shape: [0, 4], data: $0) }
        try w.finish()
        var expected = ref
        expected.tensors[3].offset = UInt64(64 + region.count)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), expected.bytes())
    }

    // MARK: header

    func testTooShortFiles() throws {
        for n in 0..<4 {
            try assertOpenFails("\(n)-byte file", Array("TSLM".utf8.prefix(n))) {
                if case .truncated = $0 { return true } else { return false }
            }
        }
        let full = RawTSLM.reference().bytes()
        for n in [4, 8, 32, 56, 63] {
            try assertOpenFails("header cut at \(n)", Array(full[0..<n])) {
                if case .truncated = $0 { return true } else { return false }
            }
        }
    }

    func testMissingFileAndDirectory() throws {
        let missing = dir.appendingPathComponent("absent.tslm").path
        for mmap in [true, false] {
            assertThrows(TSLMError.self, "missing file", { try TSLMFile(path: missing, mmap: mmap) }) {
                if case let .io(file, _, errno) = $0 { return file == missing && errno == ENOENT } else { return false }
            }
            assertThrows(TSLMError.self, "a directory", { try TSLMFile(path: self.dir.path, mmap: mmap) }) {
                if case .io = $0 { return true } else { return false }
            }
        }
    }

    func testBadMagic() throws {
        var f = RawTSLM.reference().bytes()
        f[0] = UInt8(ascii: "G")
        try assertOpenFails("bad magic", RawTSLM.resealHeader(f)) {
            if case let .badMagic(_, _, found) = $0 { return found == Array("GSLM".utf8) } else { return false }
        }
        try assertOpenFails("short file with a bad magic", Array("GGUF\u{3}\0\0\0".utf8)) {
            if case .badMagic = $0 { return true } else { return false }
        }
    }

    func testUnsupportedVersions() throws {
        for v: UInt32 in [0, 2, 0xFFFF_FFFF] {
            var f = RawTSLM.reference().bytes()
            f.setU32(v, at: 4)
            try assertOpenFails("version \(v)", RawTSLM.resealHeader(f)) {
                if case let .unsupportedVersion(_, version, _) = $0 { return version == UInt64(v) } else { return false }
            }
        }
    }

    func testHeaderChecksumWrong() throws {
        let good = RawTSLM.reference().bytes()
        for byte in [8, 20, 40, 44, 50, 56, 63] {
            var f = good
            f[byte] ^= 0x10
            try assertOpenFails("header byte \(byte) flipped", f) {
                if case .checksumMismatch(_, "header", _, _) = $0 { return true } else { return false }
            }
        }
    }

    func testIndexChecksumWrong() throws {
        let good = RawTSLM.reference().bytes()
        let indexOffset = Int(good.u64(at: 24))
        for pos in [indexOffset, indexOffset + 20, good.count - 1] {
            var f = good
            f[pos] ^= 0x01
            try assertOpenFails("index byte \(pos) flipped", f) {
                if case .checksumMismatch(_, "index", _, _) = $0 { return true } else { return false }
            }
        }
        var f = good
        f.setU64(f.u64(at: 48) ^ 1, at: 48)
        try assertOpenFails("stored index checksum changed", RawTSLM.resealHeader(f)) {
            if case .checksumMismatch(_, "index", _, _) = $0 { return true } else { return false }
        }
    }

    func testFileSizeMismatch() throws {
        let good = RawTSLM.reference().bytes()
        var bigger = good
        bigger.setU64(UInt64(good.count + 64), at: 8)
        try assertOpenFails("file_size larger than the file", RawTSLM.resealHeader(bigger)) {
            if case .truncated = $0 { return true } else { return false }
        }
        try assertOpenFails("bytes appended after the index", good + [UInt8](repeating: 0, count: 64)) {
            if case let .malformed(_, reason) = $0 { return reason.contains("header says") } else { return false }
        }
    }

    func testTruncatedInDataAndIndex() throws {
        let good = RawTSLM.reference().bytes()
        let indexOffset = Int(good.u64(at: 24))
        for n in [64, 65, 100, 128, 200, indexOffset - 1, indexOffset, indexOffset + 7, indexOffset + 30, good.count - 1] {
            try assertOpenFails("cut at \(n) of \(good.count)", Array(good[0..<n])) {
                if case .truncated = $0 { return true } else { return false }
            }
        }
    }

    func testHeaderLayoutFields() throws {
        let good = RawTSLM.reference().bytes()
        func field(_ name: String, _ change: (inout [UInt8]) -> Void) throws {
            var f = good
            change(&f)
            try assertOpenFails(name, RawTSLM.reseal(f, keepFileSize: true)) {
                if case .malformed = $0 { return true } else { return false }
            }
        }
        try field("alignment 32") { $0.setU32(32, at: 40) }
        try field("data_offset 128") { $0.setU64(128, at: 16) }
        try field("flags 1") { $0.setU32(1, at: 44) }
        try field("index_offset not aligned") { $0.setU64($0.u64(at: 24) - 8, at: 24) }
        try field("index_offset past the end") { $0.setU64(UInt64($0.count + 64), at: 24) }
        try field("index_offset before data") { $0.setU64(0, at: 24) }
        var f = good
        f.setU64(f.u64(at: 32) + 1, at: 32)
        try assertOpenFails("index_size inconsistent", RawTSLM.resealHeader(f)) {
            if case .malformed = $0 { return true } else { return false }
        }
    }

    // MARK: tensor directory

    func testTensorChecksumWrongFailsVerifyOnly() throws {
        var f = RawTSLM.reference().bytes()
        f[64 + 5] ^= 0xFF  // a byte of tensor "a"
        let path = try write(f)
        for mmap in [true, false] {
            let file = try TSLMFile(path: path, mmap: mmap)  // open does not read tensor bytes
            XCTAssertEqual(try file.tensorData("a").array.count, 64)  // uncompressed data is served as is
            assertThrows(TSLMError.self, "verify", { try file.verify() }) {
                if case let .checksumMismatch(_, what, _, _) = $0 { return what.contains("'a'") } else { return false }
            }
        }
        // A compressed tensor's checksum is checked whenever it is decompressed.
        var g = RawTSLM.reference().bytes()
        g[192 + 6] ^= 0x01
        let gp = try write(g, "g.tslm")
        let file = try TSLMFile(path: gp)
        assertThrows(TSLMError.self, "tensorData of a corrupt compressed tensor", { try file.tensorData("z") }) {
            if case let .checksumMismatch(_, what, _, _) = $0 { return what.contains("'z'") } else { return false }
        }
        assertThrows(TSLMError.self, "verify", { try file.verify() }) {
            if case .checksumMismatch = $0 { return true } else { return false }
        }
    }

    func testTensorOutOfBounds() throws {
        let good = RawTSLM.reference()
        let indexOffset = UInt64(64 + good.paddedDataRegion().count)
        for (what, offset) in [("offset at the index", indexOffset), ("offset 0 (in the header)", 0),
                               ("offset wraps around", UInt64.max - 63), ("offset far past the end", 1 << 40)] as [(String, UInt64)] {
            try assertOpenFails(what, variant { $0.tensors[0].offset = offset }) {
                if case let .tensorOutOfBounds(_, tensor, _, _, _) = $0 { return tensor == "a" } else { return false }
            }
        }
        // A compressed tensor whose stored size runs past the index.
        try assertOpenFails("stored_size past the index", variant { $0.tensors[2].storedSize = 1 << 20 }) {
            if case .tensorOutOfBounds(_, "z", _, _, _) = $0 { return true } else { return false }
        }
    }

    func testMisalignedTensorOffset() throws {
        try assertOpenFails("offset 72", variant { $0.tensors[1].offset = 72 }) {
            if case let .malformed(_, reason) = $0 { return reason.contains("'b'") && reason.contains("multiple") } else { return false }
        }
    }

    func testOverlappingTensors() throws {
        try assertOpenFails("b on top of a", variant { $0.tensors[1].offset = 64 }) {
            if case let .overlappingTensors(_, first, second) = $0 { return Set([first, second]) == ["a", "b"] } else { return false }
        }
        // Zero-sized tensors overlap nothing (the reference already has "e" at 64, inside "a").
        XCTAssertNoThrow(try TSLMFile(path: write(RawTSLM.reference().bytes())))
    }

    func testSizeOverflow() throws {
        let cases: [(String, [UInt64])] = [
            ("element count overflows", [1 << 32, 1 << 32]),
            ("byte count overflows", [1 << 62]),
            ("single dim above Int.max", [1 << 63]),
            ("overflow in a later dim", [3, 1 << 62, 2]),
            ("max dims", [UInt64.max]),
        ]
        for (what, dims) in cases {
            try assertOpenFails(what, variant { $0.tensors[0].dims = dims; $0.tensors[0].size = 64 }) {
                if case let .sizeOverflow(_, tensor, shape) = $0 { return tensor == "a" && shape == dims } else { return false }
            }
        }
    }

    func testHugeSingleDimension() throws {
        // 2^40 f32 elements: a valid size (4 TiB) that cannot lie in this file.
        try assertOpenFails("huge dim, honest size", variant {
            $0.tensors[0].dims = [1 << 40]; $0.tensors[0].size = 1 << 42; $0.tensors[0].storedSize = 1 << 42
        }) {
            if case .tensorOutOfBounds(_, "a", _, _, _) = $0 { return true } else { return false }
        }
        try assertOpenFails("huge dim, size of the real bytes", variant { $0.tensors[0].dims = [1 << 40] }) {
            if case .sizeMismatch(_, "a", 1 << 42, 64) = $0 { return true } else { return false }
        }
    }

    /// A compressed tensor that declares a huge uncompressed size must be rejected without
    /// trying to allocate it (a crafted index could otherwise make the reader allocate and
    /// zero terabytes, or trap on a failed allocation).
    func testCompressedTensorWithAbsurdSizeIsRejectedBeforeAllocating() throws {
        let bytes = variant { $0.tensors[2].dims = [1 << 40]; $0.tensors[2].size = 1 << 42 }
        let path = try write(bytes)
        for mmap in [true, false] {
            do {
                let f = try TSLMFile(path: path, mmap: mmap)
                assertThrows(TSLMError.self, "tensorData", { try f.tensorData("z") }) { _ in true }
            } catch let e as TSLMError {
                guard case let .malformed(_, reason) = e else { return XCTFail("\(e)") }
                XCTAssertTrue(reason.contains("'z'"), reason)
            }
        }
    }

    func testSizeAndStoredSizeMismatches() throws {
        try assertOpenFails("size not the dtype's", variant { $0.tensors[0].size = 60; $0.tensors[0].storedSize = 60 }) {
            if case .sizeMismatch(_, "a", 64, 60) = $0 { return true } else { return false }
        }
        try assertOpenFails("uncompressed stored_size != size", variant { $0.tensors[0].storedSize = 32 }) {
            if case .sizeMismatch(_, "a", 64, 32) = $0 { return true } else { return false }
        }
        try assertOpenFails("q8_0 row of 40", variant { $0.tensors[1].dims = [1, 40]; $0.tensors[1].size = 34 }) {
            if case .invalidShape(_, "b", [1, 40], _) = $0 { return true } else { return false }
        }
        try assertOpenFails("q8_0 scalar", variant { $0.tensors[1].dims = []; $0.tensors[1].size = 34 }) {
            if case .invalidShape(_, "b", [], _) = $0 { return true } else { return false }
        }
    }

    func testDuplicateTensorNames() throws {
        try assertOpenFails("two tensors named a", variant { $0.tensors[1].name = Array("a".utf8) }) {
            if case .duplicateTensor(_, "a") = $0 { return true } else { return false }
        }
    }

    func testBadTensorNames() throws {
        for (what, name) in [("invalid byte", [0x61, 0xFF]), ("lone continuation", [0x80]), ("overlong '/'", [0xC0, 0xAF]),
                             ("UTF-16 surrogate", [0xED, 0xA0, 0x80]), ("cut sequence", [0x61, 0xE2, 0x82])] as [(String, [UInt8])] {
            try assertOpenFails("tensor name: \(what)", variant { $0.tensors[0].name = name }) {
                if case let .invalidUTF8(_, context) = $0 { return context.contains("tensor 0 name") } else { return false }
            }
        }
        try assertOpenFails("empty tensor name", variant { $0.tensors[0].name = [] }) {
            if case .malformed = $0 { return true } else { return false }
        }
        try assertOpenFails("257-byte tensor name", variant { $0.tensors[0].name = [UInt8](repeating: 0x61, count: 257) }) {
            if case .malformed = $0 { return true } else { return false }
        }
        XCTAssertNoThrow(try TSLMFile(path: write(variant { $0.tensors[0].name = [UInt8](repeating: 0x61, count: 256) })))
    }

    func testUnknownDType() throws {
        for id: UInt32 in [10, 15, 22, 0xFFFF_FFFF] {
            try assertOpenFails("dtype \(id)", variant { $0.tensors[0].dtype = id }) {
                if case let .unsupportedDType(_, tensor, dtype) = $0 { return tensor == "a" && dtype.contains("\(id)") } else { return false }
            }
        }
    }

    func testTooManyDims() throws {
        try assertOpenFails("n_dims 9", variant { $0.tensors[0].dims = [1, 1, 1, 1, 1, 1, 1, 2, 8] }) {
            if case let .malformed(_, reason) = $0 { return reason.contains("9 dimensions") } else { return false }
        }
        try assertOpenFails("n_dims 2^32-1", variant { $0.tensors[0].nDims = 0xFFFF_FFFF }) {
            if case .malformed = $0 { return true } else { return false }
        }
        // 8 dims is fine.
        XCTAssertNoThrow(try TSLMFile(path: write(variant { $0.tensors[0].dims = [1, 1, 1, 1, 1, 1, 2, 8] })))
    }

    func testUnknownCompressionAndReserved() throws {
        try assertOpenFails("compression 2", variant { $0.tensors[2].compression = 2 }) {
            if case let .malformed(_, reason) = $0 { return reason.contains("'z'") && reason.contains("compression") } else { return false }
        }
        try assertOpenFails("reserved 1", variant { $0.tensors[0].reserved = 1 }) {
            if case .malformed = $0 { return true } else { return false }
        }
    }

    func testCorruptCompressedFrame() throws {
        // The frame is damaged but its checksum is recomputed, so zstd itself must object.
        let frame = RawTSLM.zerosFrame
        for (what, damage) in [
            ("bad frame magic", { (f: inout [UInt8]) in f[0] ^= 0xFF }),
            ("cut frame", { (f: inout [UInt8]) in f.removeLast(3) }),
            ("garbage block", { (f: inout [UInt8]) in for i in 6..<f.count { f[i] = 0xA5 } }),
        ] as [(String, (inout [UInt8]) -> Void)] {
            var bad = frame
            damage(&bad)
            let bytes = variant { r in
                r.data = Array(r.data[0..<128]) + bad
                r.tensors[2].storedSize = UInt64(bad.count)
            }
            let path = try write(bytes)
            for mmap in [true, false] {
                let f = try TSLMFile(path: path, mmap: mmap)
                assertThrows(TSLMError.self, "\(what): tensorData", { try f.tensorData("z") }) {
                    if case .compression(_, "z", _) = $0 { return true } else { return false }
                }
                assertThrows(TSLMError.self, "\(what): verify", { try f.verify() }) {
                    if case .compression(_, "z", _) = $0 { return true } else { return false }
                }
            }
        }
        // A valid frame of the wrong length: 1024 bytes where the entry says f32 [512] (2048).
        let path = try write(variant { $0.tensors[2].dims = [512]; $0.tensors[2].size = 2048 })
        let f = try TSLMFile(path: path)
        assertThrows(TSLMError.self, "frame shorter than size", { try f.tensorData("z") }) {
            if case .compression(_, "z", _) = $0 { return true } else { return false }
        }
    }

    func testAbsurdTensorCount() throws {
        for n: UInt64 in [5, 1 << 40, UInt64.max] {
            try assertOpenFails("tensor count \(n)", variant { $0.tensorCount = n }) {
                if case .truncated = $0 { return true } else { return false }
            }
        }
    }

    func testTrailingBytesAfterDirectory() throws {
        try assertOpenFails("8 stray bytes", variant { $0.indexTrailer = [UInt8](repeating: 0, count: 8) }) {
            if case let .malformed(_, reason) = $0 { return reason.contains("unexpected bytes") } else { return false }
        }
    }

    /// Cutting the index at every byte (and re-sealing) always gives `truncated`.
    func testIndexCutAtEveryByte() throws {
        let r = RawTSLM.reference()
        let index = r.indexBytes()
        for n in 0..<index.count {
            let bytes = RawTSLM.seal(header: RawTSLM.defaultHeader(), body: r.paddedDataRegion(), index: Array(index[0..<n]))
            try assertOpenFails("index cut at \(n) of \(index.count)", bytes) {
                if case .truncated = $0 { return true } else { return false }
            }
        }
    }

    // MARK: metadata

    func testDuplicateMetadataKeys() throws {
        try assertOpenFails("test.count twice", variant { $0.metadata.append(RawTSLM.kv("test.count", .string("x"))) }) {
            if case .duplicateKey(_, "test.count") = $0 { return true } else { return false }
        }
    }

    func testBadUTF8InMetadata() throws {
        try assertOpenFails("key", variant { $0.metadata[1] = RawTSLM.rawKV(key: [0x74, 0xFF], type: 4, value: [7, 0, 0, 0]) }) {
            if case let .invalidUTF8(_, context) = $0 { return context.contains("metadata key 1") } else { return false }
        }
        try assertOpenFails("string value", variant {
            $0.metadata[0] = RawTSLM.rawKV(key: Array("general.architecture".utf8), type: 8, value: RawTSLM.string([0x72, 0xC3]))
        }) {
            if case let .invalidUTF8(_, context) = $0 { return context.contains("general.architecture") } else { return false }
        }
        var arr: [UInt8] = []
        arr.appendLE(UInt32(8)); arr.appendLE(UInt64(2))
        arr += RawTSLM.string(Array("ok".utf8)) + RawTSLM.string([0xED, 0xB0, 0x80])
        try assertOpenFails("string array element", variant { $0.metadata.append(RawTSLM.rawKV(key: Array("t.s".utf8), type: 9, value: arr)) }) {
            if case let .invalidUTF8(_, context) = $0 { return context.contains("element 1") } else { return false }
        }
    }

    func testInvalidKeySyntax() throws {
        for key in ["General.architecture", "a..b", ".a", "a.", "a-b", "a b", "", "ä.b", String(repeating: "k", count: 257)] {
            try assertOpenFails("key '\(key)'", variant { $0.metadata[1] = RawTSLM.rawKV(key: Array(key.utf8), type: 4, value: [7, 0, 0, 0]) }) {
                if case let .malformed(_, reason) = $0 { return reason.contains("lower_snake_case") } else { return false }
            }
        }
    }

    func testBoolBytes() throws {
        try assertOpenFails("bool 2", variant { $0.metadata[1] = RawTSLM.rawKV(key: Array("t.b".utf8), type: 7, value: [2]) }) {
            if case let .malformed(_, reason) = $0 { return reason.contains("bool byte 2") } else { return false }
        }
        var arr: [UInt8] = []
        arr.appendLE(UInt32(7)); arr.appendLE(UInt64(3)); arr += [1, 0, 0xFF]
        try assertOpenFails("bool array element 255", variant { $0.metadata[2] = RawTSLM.rawKV(key: Array("t.b".utf8), type: 9, value: arr) }) {
            if case let .malformed(_, reason) = $0 { return reason.contains("bool byte 255") } else { return false }
        }
    }

    func testUnknownValueTypes() throws {
        try assertOpenFails("value type 13", variant { $0.metadata[1] = RawTSLM.rawKV(key: Array("t.x".utf8), type: 13, value: [0]) }) {
            if case let .malformed(_, reason) = $0 { return reason.contains("unknown value type 13") } else { return false }
        }
        var arr: [UInt8] = []
        arr.appendLE(UInt32(0xFFFF)); arr.appendLE(UInt64(0))
        try assertOpenFails("array element type 65535", variant { $0.metadata[1] = RawTSLM.rawKV(key: Array("t.x".utf8), type: 9, value: arr) }) {
            if case let .malformed(_, reason) = $0 { return reason.contains("element type") } else { return false }
        }
    }

    func testNestedArray() throws {
        var arr: [UInt8] = []
        arr.appendLE(UInt32(9)); arr.appendLE(UInt64(1))
        arr.appendLE(UInt32(4)); arr.appendLE(UInt64(1)); arr.appendLE(UInt32(5))
        try assertOpenFails("array of arrays", variant { $0.metadata[1] = RawTSLM.rawKV(key: Array("t.x".utf8), type: 9, value: arr) }) {
            if case let .malformed(_, reason) = $0 { return reason.contains("array of arrays") } else { return false }
        }
    }

    func testAbsurdMetadataCount() throws {
        for n: UInt64 in [1 << 20, 1 << 40, UInt64.max] {
            try assertOpenFails("metadata count \(n)", variant { $0.metadataCount = n }) {
                if case .truncated = $0 { return true } else { return false }
            }
        }
    }

    func testAbsurdArrayCounts() throws {
        for (elem, n) in [(UInt32(0), UInt64.max), (4, 1 << 40), (8, 1 << 61), (8, UInt64.max), (12, 1 << 62), (7, 1000)] {
            var arr: [UInt8] = []
            arr.appendLE(elem); arr.appendLE(n)
            try assertOpenFails("array type \(elem) count \(n)", variant { $0.metadata[1] = RawTSLM.rawKV(key: Array("t.x".utf8), type: 9, value: arr) }) {
                if case .truncated = $0 { return true } else { return false }
            }
        }
    }

    func testAbsurdStringLengths() throws {
        var v: [UInt8] = []
        v.appendLE(UInt64.max)
        try assertOpenFails("string value of 2^64-1 bytes", variant { $0.metadata[0] = RawTSLM.rawKV(key: Array("t.s".utf8), type: 8, value: v) }) {
            if case .truncated = $0 { return true } else { return false }
        }
        try assertOpenFails("tensor name of 2^40 bytes", variant { r in
            r.tensors = []
            r.tensorCount = 1
            var t: [UInt8] = []
            t.appendLE(UInt64(1) << 40)
            t += [UInt8](repeating: 0x61, count: 64)
            r.indexTrailer = t
        }) {
            if case .truncated = $0 { return true } else { return false }
        }
    }

    // MARK: fuzzing

    /// Opens, reads every tensor and verifies; any outcome but a crash is acceptable, but an
    /// error must be a `TSLMError`.
    func exercise(_ bytes: [UInt8], mmap: Bool, outcome: inout [String: Int]) throws {
        let path = try write(bytes, "fuzz.tslm")
        do {
            let f = try TSLMFile(path: path, mmap: mmap)
            var sum: UInt64 = 0
            for e in f.tensors {
                if let d = try? f.tensorData(e) {
                    withExtendedLifetime(d) { for b in d.bytes { sum &+= UInt64(b) } }
                }
                _ = f.storedBytes(e).reduce(0) { $0 &+ UInt64($1) }
            }
            try f.verify()
            outcome["ok", default: 0] += 1
        } catch let e as TSLMError {
            outcome[Mirror(reflecting: e).children.first?.label ?? "\(e)", default: 0] += 1
        }
    }

    func testFuzzRawMutationsNeverCrash() throws {
        var rng = SplitMix64(seed: 0xF022)
        let good = RawTSLM.reference().bytes()
        var outcome: [String: Int] = [:]
        for i in 0..<2000 {
            var f = good
            switch rng.next() % 4 {
            case 0: f = Array(f[0..<Int(rng.next() % UInt64(f.count))])
            case 1: f += rng.bytes(Int(rng.next() % 100) + 1)
            default:
                for _ in 0...(rng.next() % 4) { f[Int(rng.next() % UInt64(f.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            try exercise(f, mmap: i % 2 == 0, outcome: &outcome)
        }
        XCTAssertEqual(outcome.values.reduce(0, +), 2000)
        XCTAssertGreaterThan(outcome.count, 3, "\(outcome)")
    }

    /// Structured edits of directory fields with interesting values, keeping `size` consistent
    /// with dtype and dims most of the time so that the later checks (bounds, overlap,
    /// compression, allocation) are reached too.
    func testFuzzStructuredFieldEditsNeverCrash() throws {
        var rng = SplitMix64(seed: 0xD1_2EC7)
        let interesting: [UInt64] = [0, 1, 31, 32, 64, 96, 128, 192, 256, 1 << 20, 1 << 31, 1 << 32, 1 << 40, 1 << 62, 1 << 63, UInt64.max]
        func pick() -> UInt64 { interesting[Int(rng.next() % UInt64(interesting.count))] }
        var outcome: [String: Int] = [:]
        for i in 0..<2000 {
            var r = RawTSLM.reference()
            for _ in 0...(rng.next() % 3) {
                let t = Int(rng.next() % UInt64(r.tensors.count))
                switch rng.next() % 6 {
                case 0:
                    r.tensors[t].dims = (0..<Int(rng.next() % 4)).map { _ in rng.next() % 2 == 0 ? pick() : rng.next() % 300 }
                case 1: r.tensors[t].offset = rng.next() % 2 == 0 ? pick() : 64 * (rng.next() % 6)
                case 2: r.tensors[t].storedSize = rng.next() % 2 == 0 ? pick() : rng.next() % 2000
                case 3: r.tensors[t].compression = UInt32(rng.next() % 3)
                case 4: r.tensors[t].dtype = UInt32(rng.next() % 20)
                default: r.tensors[t].size = pick()
                }
                if rng.next() % 10 < 7, let dt = DType(rawValue: r.tensors[t].dtype), let n = dt.byteCount(shape: r.tensors[t].dims) {
                    r.tensors[t].size = n
                    if r.tensors[t].compression == 0 { r.tensors[t].storedSize = n }
                }
            }
            try exercise(r.bytes(), mmap: i % 2 == 0, outcome: &outcome)
        }
        XCTAssertEqual(outcome.values.reduce(0, +), 2000)
        XCTAssertGreaterThan(outcome.count, 6, "\(outcome)")
    }

    /// Mutations of the index, re-sealed so that they get past the checksums and reach the
    /// parser: every field of every structure gets hit.
    func testFuzzResealedIndexMutationsNeverCrash() throws {
        var rng = SplitMix64(seed: 0x5EA1)
        let good = RawTSLM.reference().bytes()
        let indexOffset = Int(good.u64(at: 24))
        var outcome: [String: Int] = [:]
        for i in 0..<3000 {
            var f = good
            let n = f.count - indexOffset
            switch rng.next() % 6 {
            case 0:  // cut the index
                f = Array(f[0..<(indexOffset + Int(rng.next() % UInt64(n)))])
            case 1:  // overwrite a little-endian u64 somewhere with an interesting value
                let vals: [UInt64] = [0, 1, 63, 64, 65, 1 << 31, 1 << 32, 1 << 40, 1 << 62, 1 << 63, UInt64.max, UInt64.max - 63]
                let at = indexOffset + Int(rng.next() % UInt64(n - 7))
                f.setU64(vals[Int(rng.next() % UInt64(vals.count))], at: at)
            case 2:  // overwrite a u32 (types, n_dims, compression) with small values
                let at = indexOffset + Int(rng.next() % UInt64(n - 3))
                f.setU32(UInt32(rng.next() % 20), at: at)
            case 3:  // insert random bytes
                let at = indexOffset + Int(rng.next() % UInt64(n))
                f.insert(contentsOf: rng.bytes(Int(rng.next() % 16) + 1), at: at)
            default:  // flip a few bytes
                for _ in 0...(rng.next() % 3) { f[indexOffset + Int(rng.next() % UInt64(n))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            }
            try exercise(RawTSLM.reseal(f), mmap: i % 2 == 1, outcome: &outcome)
        }
        XCTAssertEqual(outcome.values.reduce(0, +), 3000)
        XCTAssertGreaterThan(outcome.count, 6, "\(outcome)")
    }
}
