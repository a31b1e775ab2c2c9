import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
import TSLMTestSupport

/// Tests of the PyTorch zip-checkpoint importer: the zip reader, the restricted unpickler and
/// the tensor materialization, against fixtures written by `tools/make_pt_fixtures.py`
/// (torch 2.13) and against archives and pickles crafted or damaged in the tests.
final class PyTorchTests: XCTestCase {
    // MARK: - Fixtures and helpers

    private struct ExpectedTensor: Decodable {
        let name: String
        let dtype: String
        let shape: [Int]
        let hex: String
    }

    private func fixture(_ name: String) throws -> String {
        let base = (name as NSString).deletingPathExtension
        let ext = (name as NSString).pathExtension
        guard let url = Bundle.module.url(forResource: base, withExtension: ext, subdirectory: "Fixtures/pt") else {
            throw XCTSkip("missing fixture \(name)")
        }
        return url.path
    }

    private var tempDir: URL!

    override func setUpWithError() throws {
        tempDir = try makeTemporaryDirectory(self, prefix: "tslm-pt-tests")
    }

    private func write(_ bytes: [UInt8], name: String = "ck.pt") throws -> String {
        let url = tempDir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func bytes(of path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// A copy of a tensor's bytes (the buffer lives only as long as its `TensorData`).
    private func contents(_ d: TensorData) -> [UInt8] {
        withExtendedLifetime(d) { Array(d.bytes) }
    }

    private func hex(_ b: [UInt8]) -> String {
        b.map { String(format: "%02x", $0) }.joined()
    }

    /// Loads every tensor of `path` (listing and reading); returns name → (dtype, shape, hex).
    private func loadAll(_ path: String) throws -> [(String, DType, [Int], String)] {
        let model = try PyTorchImporter.load(path: path)
        return try model.tensors.map { t in
            let data = try t.load()
            return (t.name, t.dtype, t.shape, hex(contents(data)))
        }
    }

    private func isMalformed(_ e: TSLMError, _ fragment: String) -> Bool {
        if case let .malformed(_, reason) = e { return reason.contains(fragment) }
        return false
    }

    private func isTruncated(_ e: TSLMError) -> Bool {
        if case .truncated = e { return true }
        return false
    }

    /// The fixture's entries (names without the top folder) and its prefix.
    private func fixtureEntries(_ path: String) throws -> (prefix: String, entries: [(String, [UInt8])]) {
        let reader = try FileReader(path: path)
        let zip = try ZipArchive(reader: reader)
        let ck = try PyTorchCheckpoint(path: path)
        return (ck.prefix, try zip.entries.map { e in
            (String(e.name.dropFirst(ck.prefix.count + 1)), try zip.readStored(e, reader: reader))
        })
    }

    // MARK: - The torch fixture

    func testStateDictTensorsAreBitIdenticalToTorch() throws {
        let path = try fixture("state_dict.pt")
        let json = try Data(contentsOf: URL(fileURLWithPath: try fixture("state_dict.expected.json")))
        let expected = try JSONDecoder().decode([ExpectedTensor].self, from: json)
        XCTAssertEqual(expected.count, 27)
        let got = try loadAll(path)
        XCTAssertEqual(got.map(\.0), expected.map(\.name), "names and order")
        for (g, e) in zip(got, expected) {
            XCTAssertEqual(g.1.description, e.dtype, e.name)
            XCTAssertEqual(g.2, e.shape, e.name)
            XCTAssertEqual(g.3, e.hex, e.name)
        }
        let model = try PyTorchImporter.load(path: path)
        XCTAssertEqual(model.architecture, "raw")
        XCTAssertEqual(model.sourceFormat, "pytorch")
        XCTAssertEqual(model.sourcePath, path)
    }

    func testCheckpointTreeViewsAndSubDictionaries() throws {
        let ck = try PyTorchCheckpoint(path: try fixture("state_dict.pt"))
        XCTAssertEqual(ck.prefix, "state_dict")
        XCTAssertEqual(ck.root["epoch"], .int(3))
        XCTAssertEqual(ck.root["lr"], .float(0.125))
        XCTAssertEqual(ck.root["note"], .string("not a tensor"))
        XCTAssertEqual(ck.root["nothing"], PickleValue.none)
        XCTAssertEqual(ck.root["flags"], .list([.bool(true), .int(2), .float(3.0)]))

        guard case let .tensor(param)? = ck.root["param"] else { return XCTFail("param is not a tensor") }
        XCTAssertTrue(param.isParameter)
        XCTAssertTrue(param.requiresGrad)
        guard case let .tensor(a)? = ck.root["tied.a"], case let .tensor(b)? = ck.root["tied.b"],
              case let .tensor(tr)? = ck.root["transposed"], case let .tensor(sl)? = ck.root["slice"] else {
            return XCTFail("views missing")
        }
        XCTAssertEqual(a.storage.key, b.storage.key, "tied tensors share one storage")
        XCTAssertEqual(a.storage.key, tr.storage.key)
        XCTAssertEqual(tr.stride, [1, 6])
        XCTAssertEqual(sl.storageOffset, 6)
        XCTAssertEqual(a.storage.typeName, "torch.FloatStorage")

        XCTAssertEqual(try ck.tensors(at: ["nested", "inner"]).map(\.name), ["w", "b"])
        XCTAssertEqual(try ck.tensors(at: ["nested", "list"], namePrefix: "enc").map(\.name), ["enc.0", "enc.1.x"])
        XCTAssertEqual(try ck.tensors(at: ["nested", "intkeys"]).map(\.name), ["0", "7"])
        XCTAssertNotNil(ck.value(at: ["nested", "list", "1", "x"]))
        XCTAssertNil(ck.value(at: ["nested", "list", "9"]))
        assertThrows(TSLMError.self, try ck.tensors(at: ["encoder_state"])) {
            if case let .missingKey(_, key) = $0 { return key == "encoder_state" }
            return false
        }
        let only = try ck.tensors(at: ["nested", "tuple", "0"])
        XCTAssertEqual(only.map(\.name), ["tensor"])
    }

    func testTensorBytesAreReadLazily() throws {
        let original = try bytes(of: try fixture("state_dict.pt"))
        let path = try write(original)
        let model = try PyTorchImporter.load(path: path)
        guard let byteTensor = model.tensors.first(where: { $0.name == "byte" }) else { return XCTFail("no 'byte'") }
        // Overwrite that storage in place after listing: load() must see the new bytes.
        let reader = try FileReader(path: path)
        let zip = try ZipArchive(reader: reader)
        let ck = try PyTorchCheckpoint(path: path)
        guard case let .tensor(t)? = ck.root["byte"],
              let entry = zip.entry(named: "\(ck.prefix)/data/\(t.storage.key)") else { return XCTFail("no storage") }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: entry.dataOffset)
        try handle.write(contentsOf: Data([9, 8, 7, 6]))
        try handle.close()
        XCTAssertEqual(contents(try byteTensor.load()), [9, 8, 7, 6])
    }

    func testProtocol4CheckpointWithSetsBytesAndBigInts() throws {
        let ck = try PyTorchCheckpoint(path: try fixture("protocol4.pt"))
        XCTAssertEqual(ck.root["big"], .bigInt([0, 0, 0, 0, 0, 0, 0, 0, 0x40]))  // 2**70
        XCTAssertEqual(ck.root["neg"], .int(-300))
        XCTAssertEqual(ck.root["i64min"], .int(Int64.min))
        XCTAssertEqual(ck.root["raw"], .bytes(Array("abc".utf8)))
        XCTAssertEqual(ck.root["set"], .set([.int(1), .int(2)]))
        XCTAssertEqual(ck.root["frozen"], .set([.string("x")]))
        XCTAssertEqual(ck.root["unicode"], .string("grüße ✓"))
        let tensors = try loadAllTensors(ck)
        XCTAssertEqual(tensors.map(\.0), ["w", "shared.0", "shared.1"])
        XCTAssertEqual(tensors[0].1, [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40])  // [1.0, 2.0] f32
        XCTAssertEqual(tensors[1].1, tensors[0].1, "a memoized tensor referenced twice")
        XCTAssertEqual(tensors[2].1, tensors[0].1)
    }

    private func loadAllTensors(_ ck: PyTorchCheckpoint) throws -> [(String, [UInt8])] {
        try ck.tensors().map { ($0.name, contents(try $0.load())) }
    }

    // MARK: - Rejected files

    func testForbiddenGlobalFixtureIsRejected() throws {
        let path = try fixture("forbidden_global.pt")
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) {
            $0 == .forbiddenGlobal(file: path, module: "os", name: "system")
        }
    }

    func testEveryOtherGlobalIsForbidden() throws {
        let cases: [(String, String)] = [
            ("builtins", "eval"), ("posix", "system"), ("subprocess", "Popen"), ("os", "system"),
            ("torch.nn.modules.linear", "Linear"), ("numpy.core.multiarray", "_reconstruct"),
            ("__builtin__", "set"), ("torch._utils", "_rebuild_device_tensor_from_numpy"),
            ("torch", "load"), ("collections", "defaultdict"), ("torch._tensor", "_rebuild_from_type_v2"),
        ]
        for (module, name) in cases {
            // GLOBAL, STACK_GLOBAL (protocol 4) and INST all check the allow-list.
            var g = PickleBuilder()
            g.global(module, name)
            g.op(0x2E)
            var s = PickleBuilder(protocol: 4)
            s.str(module)
            s.str(name)
            s.op(0x93, 0x2E)
            var i = PickleBuilder()
            i.op(0x28)
            i.raw(Array("i\(module)\n\(name)\n".utf8))
            i.op(0x2E)
            for p in [g, s, i] {
                let path = try write(checkpoint(pickle: p.bytes))
                assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) {
                    $0 == .forbiddenGlobal(file: path, module: module, name: name)
                }
            }
        }
    }

    func testLegacyFormatIsRejected() throws {
        let path = try fixture("legacy.pt")
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) { self.isMalformed($0, "legacy (pre-1.6)") }
    }

    func testTorchScriptArchiveIsRejected() throws {
        let path = try fixture("torchscript.pt")
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) { self.isMalformed($0, "TorchScript") }
    }

    func testZipWithoutDataPickleIsRejected() throws {
        let path = try write(ZipBuilder.make([("stuff/readme.txt", Array("hi".utf8))]))
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) { self.isMalformed($0, "no <folder>/data.pkl") }
    }

    func testNonZipIsRejected() throws {
        let path = try write(Array("hello, this is not a checkpoint".utf8))
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) {
            if case let .badMagic(_, _, found) = $0 { return found == Array("hello, t".utf8) }
            return false
        }
    }

    func testBigEndianCheckpointIsRejected() throws {
        let path = try write(checkpoint(pickle: tensorPickle(numel: 2, size: [2], stride: [1]),
                                        storages: ["0": [UInt8](repeating: 0, count: 8)], byteorder: "big"))
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) { self.isMalformed($0, "byte order") }
    }

    // MARK: - Zip reader

    func testZip64ArchiveLoadsLikeTheOriginal() throws {
        let path = try fixture("state_dict.pt")
        let (prefix, entries) = try fixtureEntries(path)
        let rezipped = ZipBuilder.make(entries.map { ("archive/\($0.0)", $0.1) }, zip64: true)
        let p64 = try write(rezipped, name: "zip64.pt")
        let zip = try ZipArchive(reader: try FileReader(path: p64))
        XCTAssertEqual(zip.entries.count, entries.count)
        XCTAssertEqual(try PyTorchCheckpoint(path: p64).prefix, "archive")
        XCTAssertNotEqual(prefix, "archive")
        let a = try loadAll(path), b = try loadAll(p64)
        XCTAssertEqual(a.map(\.0), b.map(\.0))
        XCTAssertEqual(a.map(\.3), b.map(\.3))
    }

    func testCompressedEntriesAreRejected() throws {
        let (_, entries) = try fixtureEntries(try fixture("state_dict.pt"))
        let zipped = ZipBuilder.make(entries.map { ("ck/\($0.0)", $0.1, $0.0.hasPrefix("data/") ? UInt16(8) : 0) })
        let path = try write(zipped)
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) { self.isMalformed($0, "is compressed (deflate)") }
        let allZipped = ZipBuilder.make(entries.map { ("ck/\($0.0)", $0.1, UInt16(8)) })
        let path2 = try write(allZipped, name: "all.pt")
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: path2)) { self.isMalformed($0, "ck/byteorder' is compressed") }
    }

    func testDuplicateEntryNamesAreRejected() throws {
        let pkl = tensorPickle(numel: 2, size: [2], stride: [1])
        let path = try write(ZipBuilder.make([("ck/data.pkl", pkl), ("ck/data/0", [UInt8](repeating: 0, count: 8)),
                                              ("ck/data/0", [UInt8](repeating: 1, count: 8))]))
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) { self.isMalformed($0, "two entries named 'ck/data/0'") }
    }

    func testTruncatedFilesAreRejected() throws {
        let good = try bytes(of: try fixture("state_dict.pt"))
        for cut in [0, 1, 3, 4, 30, 100, good.count / 3, good.count / 2, good.count - 120, good.count - 22, good.count - 1] {
            let path = try write(Array(good.prefix(cut)), name: "cut\(cut).pt")
            assertThrows(TSLMError.self, try loadAll(path)) { e in
                if cut < 4, case .badMagic = e { return true }
                return cut >= 4 && self.isTruncated(e)
            }
        }
    }

    func testBadZipMagicAndMissingEndRecord() throws {
        let good = try bytes(of: try fixture("state_dict.pt"))
        var bad = good
        bad[0] = 0x51
        assertThrows(TSLMError.self, try loadAll(try write(bad, name: "magic.pt"))) {
            if case .badMagic = $0 { return true }
            return false
        }
        var noEnd = good
        let eocd = try XCTUnwrap(lastIndex(of: [0x50, 0x4b, 0x05, 0x06], in: noEnd))
        noEnd[eocd + 2] = 0x07
        assertThrows(TSLMError.self, try loadAll(try write(noEnd, name: "noend.pt"))) { self.isTruncated($0) }
    }

    func testEntryOffsetPastEndIsRejected() throws {
        var b = try bytes(of: try fixture("state_dict.pt"))
        // The first central-directory header: patch its local-header offset (bytes 42..<46).
        let cd = try XCTUnwrap(firstIndex(of: [0x50, 0x4b, 0x01, 0x02], in: b))
        b.replaceSubrange((cd + 42)..<(cd + 46), with: [0xF0, 0xFF, 0xFF, 0x7F])
        assertThrows(TSLMError.self, try loadAll(try write(b))) { self.isMalformed($0, "local header offset 2147483632 lies past") }
        // And an entry whose data size runs past the central directory.
        var c = try bytes(of: try fixture("state_dict.pt"))
        c.replaceSubrange((cd + 20)..<(cd + 28), with: [0, 0, 0, 1, 0, 0, 0, 1])
        assertThrows(TSLMError.self, try loadAll(try write(c, name: "size.pt"))) { self.isMalformed($0, "extends past the entries' end") }
    }

    // MARK: - Tensor validation

    func testStorageTooSmallForTheView() throws {
        // size (3, 4) needs 12 elements; the storage declares 10.
        let path = try write(checkpoint(pickle: tensorPickle(numel: 10, size: [3, 4], stride: [4, 1]),
                                        storages: ["0": [UInt8](repeating: 0, count: 40)]))
        assertThrows(TSLMError.self, try loadAll(path)) {
            $0 == .tensorOutOfBounds(file: path, tensor: "w", offset: 0, size: 48, limit: 40)
        }
        // Offset pushes a small view past the end.
        let path2 = try write(checkpoint(pickle: tensorPickle(numel: 4, offset: 3, size: [2], stride: [1]),
                                         storages: ["0": [UInt8](repeating: 0, count: 16)]), name: "off.pt")
        assertThrows(TSLMError.self, try loadAll(path2)) {
            $0 == .tensorOutOfBounds(file: path2, tensor: "w", offset: 12, size: 8, limit: 16)
        }
        // The persistent id claims 100 elements but the entry holds only 4.
        let path3 = try write(checkpoint(pickle: tensorPickle(numel: 100, size: [10], stride: [1]),
                                         storages: ["0": [UInt8](repeating: 0, count: 16)]), name: "short.pt")
        assertThrows(TSLMError.self, try loadAll(path3)) {
            $0 == .tensorOutOfBounds(file: path3, tensor: "w", offset: 0, size: 40, limit: 16)
        }
        // A stride that jumps past the end.
        let path4 = try write(checkpoint(pickle: tensorPickle(numel: 4, size: [2, 2], stride: [3, 1]),
                                         storages: ["0": [UInt8](repeating: 0, count: 16)]), name: "stride.pt")
        assertThrows(TSLMError.self, try loadAll(path4)) { if case .tensorOutOfBounds = $0 { return true } else { return false } }
    }

    func testSizeAndStrideOverflow() throws {
        let big = Int64(1) << 40
        let path = try write(checkpoint(pickle: tensorPickle(numel: 4, size: [big, big], stride: [1, 1]),
                                        storages: ["0": [UInt8](repeating: 0, count: 16)]))
        assertThrows(TSLMError.self, try loadAll(path)) {
            $0 == .sizeOverflow(file: path, tensor: "w", shape: [UInt64(big), UInt64(big)])
        }
        let huge = Int64(1) << 62
        let path2 = try write(checkpoint(pickle: tensorPickle(numel: 9, size: [3, 3], stride: [huge, huge]),
                                         storages: ["0": [UInt8](repeating: 0, count: 36)]), name: "stride.pt")
        assertThrows(TSLMError.self, try loadAll(path2)) {
            if case let .tensorOutOfBounds(_, tensor, _, size, _) = $0 { return tensor == "w" && size == UInt64.max }
            return false
        }
        let path3 = try write(checkpoint(pickle: tensorPickle(numel: 4, size: [-1, 4], stride: [4, 1]),
                                         storages: ["0": [UInt8](repeating: 0, count: 16)]), name: "neg.pt")
        assertThrows(TSLMError.self, try loadAll(path3)) { if case .invalidShape(_, "w", _, _) = $0 { return true } else { return false } }
    }

    func testMissingStorageEntry() throws {
        let path = try write(checkpoint(pickle: tensorPickle(key: "7", numel: 2, size: [2], stride: [1]),
                                        storages: ["0": [UInt8](repeating: 0, count: 8)]))
        assertThrows(TSLMError.self, try loadAll(path)) { self.isMalformed($0, "no archive entry 'ck/data/7'") }
    }

    func testStridedViewsMaterializeRowMajor() throws {
        // A 3x4 f32 storage 0...11; view rows 1..2, columns 0 and 2: offset 4, size (2,2), stride (4,2).
        let storage = (0..<12).flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian, Array.init) }
        let path = try write(checkpoint(pickle: tensorPickle(numel: 12, offset: 4, size: [2, 2], stride: [4, 2]),
                                        storages: ["0": storage]))
        let t = try XCTUnwrap(try PyTorchImporter.load(path: path).tensors.first)
        XCTAssertEqual(t.shape, [2, 2])
        let floats = floatArray(contents(try t.load()))
        XCTAssertEqual(floats, [4, 6, 8, 10])
        // A size-1 dimension with an absurd stride is harmless.
        let path2 = try write(checkpoint(pickle: tensorPickle(numel: 12, size: [1, 3], stride: [Int64(1) << 62, 2]),
                                         storages: ["0": storage]), name: "one.pt")
        let t2 = try XCTUnwrap(try PyTorchImporter.load(path: path2).tensors.first)
        XCTAssertEqual(floatArray(contents(try t2.load())), [0, 2, 4])
    }

    func testUntypedStorageWithDTypeAndUnsupportedDTypes() throws {
        let storage = [1.0, -2.0].flatMap { (f: Float) in withUnsafeBytes(of: f.bitPattern.littleEndian, Array.init) }
        // _rebuild_tensor_v3(UntypedStorage (numel in bytes), 0, (2,), (1,), False, OrderedDict(), torch.float32)
        let v3 = tensorPickle(storageModule: "torch.storage", storageType: "UntypedStorage", numel: 8,
                              size: [2], stride: [1], v3DType: "float32")
        let path = try write(checkpoint(pickle: v3, storages: ["0": storage]))
        let got = try loadAll(path)
        XCTAssertEqual(got.first?.1, .f32)
        XCTAssertEqual(got.first?.3, "0000803f000000c0")

        let u16 = tensorPickle(storageModule: "torch.storage", storageType: "UntypedStorage", numel: 8,
                               size: [4], stride: [1], v3DType: "uint16")
        let path2 = try write(checkpoint(pickle: u16, storages: ["0": storage]), name: "u16.pt")
        assertThrows(TSLMError.self, try loadAll(path2)) { $0 == .unsupportedDType(file: path2, tensor: "w", dtype: "uint16") }

        let complex = tensorPickle(storageType: "ComplexFloatStorage", numel: 1, size: [1], stride: [1])
        let path3 = try write(checkpoint(pickle: complex, storages: ["0": storage]), name: "c.pt")
        assertThrows(TSLMError.self, try loadAll(path3)) { $0 == .unsupportedDType(file: path3, tensor: "w", dtype: "complex64") }
    }

    func testDuplicateNamesParameterStateAndOrderedDictPairs() throws {
        let storage = [3.0, 4.0].flatMap { (f: Float) in withUnsafeBytes(of: f.bitPattern.littleEndian, Array.init) }
        // {"a.b": t, "a": {"b": t}}: two paths that join to the same name.
        var p = PickleBuilder()
        p.op(0x7D)
        p.str("a.b")
        emitTensor(&p, numel: 2, size: [2], stride: [1])
        p.op(0x71, 9, 0x73)  // BINPUT 9, SETITEM
        p.str("a")
        p.op(0x7D)
        p.str("b")
        p.op(0x68, 9, 0x73, 0x73, 0x2E)  // BINGET 9, SETITEM, SETITEM, STOP
        let dup = try write(checkpoint(pickle: p.bytes, storages: ["0": storage]))
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: dup)) { $0 == .duplicateTensor(file: dup, name: "a.b") }

        // OrderedDict([("p", _rebuild_parameter_with_state(t, True, OrderedDict(), {}))])
        var q = PickleBuilder()
        q.global("collections", "OrderedDict")
        q.op(0x5D)  // EMPTY_LIST
        q.str("p")
        q.global("torch._utils", "_rebuild_parameter_with_state")
        q.op(0x28)
        emitTensor(&q, numel: 2, size: [2], stride: [1])
        q.op(0x88)
        q.global("collections", "OrderedDict")
        q.op(0x29, 0x52, 0x7D, 0x74, 0x52)  // (), REDUCE, {}, TUPLE, REDUCE
        q.op(0x86, 0x61, 0x85, 0x52, 0x2E)  // TUPLE2, APPEND, TUPLE1, REDUCE, STOP
        let path = try write(checkpoint(pickle: q.bytes, storages: ["0": storage]), name: "state.pt")
        let ck = try PyTorchCheckpoint(path: path)
        guard case let .tensor(t)? = ck.root["p"] else { return XCTFail("no parameter") }
        XCTAssertTrue(t.isParameter)
        XCTAssertTrue(t.requiresGrad)
        XCTAssertEqual(try loadAll(path).map(\.3), ["0000404000008040"])
    }

    // MARK: - Unpickler misuse

    func testMalformedPicklesAreRejectedSpecifically() throws {
        let f = "t.pkl"
        func decode(_ body: [UInt8]) throws -> PickleValue {
            try RestrictedUnpickler.decode([0x80, 0x02] + body, file: f)
        }
        let malformedCases: [([UInt8], String)] = [
            ([0x52, 0x2E], "stack underflow"),                              // REDUCE on an empty stack
            ([0x2E], "stack underflow"),                                    // STOP on an empty stack
            ([0x4B, 1, 0x61, 0x2E], "stack underflow"),                     // APPEND needs two values
            ([0x4B, 1, 0x28, 0x85, 0x2E], "stack underflow"),                       // TUPLE1 cannot reach below MARK
            ([0x7D, 0x4B, 1, 0x4B, 2, 0x75, 0x2E], "needs a MARK"),         // SETITEMS without MARK
            ([0x31, 0x2E], "needs a MARK"),                                 // POP_MARK without MARK
            ([0x7D, 0x28, 0x4B, 1, 0x75, 0x2E], "odd number"),              // SETITEMS with a lone key
            ([0x68, 5, 0x2E], "memo index 5 was never stored"),             // BINGET of nothing
            ([0x6A, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E], "memo index 4294967295"),
            ([0x4B, 1, 0x4B, 2, 0x61, 0x2E], "APPEND(S) on a int"),         // APPEND to an int
            ([0x5D, 0x4B, 1, 0x4B, 2, 0x73, 0x2E], "not a dict"),           // SETITEM on a list
            ([0xFF], "unknown pickle opcode 0xff"),
            ([0x8B, 0xFF, 0xFF, 0xFF, 0xFF], "negative length"),            // LONG4
            ([0x82, 1], "extension-registry"),
            ([0x97], "out-of-band"),
            ([0x50, 0x30, 0x0A, 0x2E], "PERSID"),
            ([0x4B, 1, 0x4B, 2, 0x52, 0x2E], "REDUCE arguments are a int"),
            ([0x4B, 1, 0x29, 0x52, 0x2E], "call of a int"),
            ([0x4B, 1, 0x51, 0x2E], "persistent id"),                       // BINPERSID of an int
            ([0x4B, 1, 0x4E, 0x62, 0x2E], "BUILD"),                         // BUILD on an int
        ]
        for (body, fragment) in malformedCases {
            assertThrows(TSLMError.self, try decode(body)) { self.isMalformed($0, fragment) }
        }
        var g = PickleBuilder()
        g.global("torch", "FloatStorage")
        g.op(0x29, 0x52, 0x2E)  // calling a storage type
        assertThrows(TSLMError.self, try RestrictedUnpickler.decode(g.bytes, file: f)) { self.isMalformed($0, "only tensor-rebuild functions") }
        var n = PickleBuilder()
        n.global("torch._utils", "_rebuild_tensor_v2")
        n.op(0x29, 0x81, 0x2E)  // NEWOBJ of a function
        assertThrows(TSLMError.self, try RestrictedUnpickler.decode(n.bytes, file: f)) { self.isMalformed($0, "only collections.OrderedDict") }
        var r = PickleBuilder()
        r.global("torch._utils", "_rebuild_tensor_v2")
        r.op(0x4B, 1, 0x85, 0x52, 0x2E)  // wrong argument count
        assertThrows(TSLMError.self, try RestrictedUnpickler.decode(r.bytes, file: f)) { self.isMalformed($0, "takes 6 or 7 arguments") }

        let truncatedCases: [[UInt8]] = [
            [0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x61],  // BINUNICODE longer than the pickle
            [0x8D, 0, 0, 0, 0, 0, 0, 0, 0x80],    // BINUNICODE8 with an absurd length
            [0x4A, 1, 2],                          // BININT cut short
            [0x95, 0xFF, 0, 0, 0, 0, 0, 0, 0],     // FRAME longer than the rest
            [0x63, 0x6F, 0x73],                    // GLOBAL without newline
            [0x4B, 1],                             // no STOP
        ]
        for body in truncatedCases {
            assertThrows(TSLMError.self, try decode(body)) { self.isTruncated($0) }
        }
        // Bad UTF-8 in a BINUNICODE key.
        assertThrows(TSLMError.self, try decode([0x7D, 0x58, 2, 0, 0, 0, 0xFF, 0xFE, 0x4B, 1, 0x73, 0x2E])) {
            if case .invalidUTF8 = $0 { return true } else { return false }
        }
        assertThrows(TSLMError.self, try decode([0x8C, 3, 0xE2, 0x82, 0x2E])) {  // a cut multi-byte sequence
            if case .invalidUTF8 = $0 { return true } else { return false }
        }
    }

    func testBadUTF8KeyAndStackUnderflowInsideACheckpoint() throws {
        let key = try write(checkpoint(pickle: [0x80, 2, 0x7D, 0x58, 2, 0, 0, 0, 0xC3, 0x28, 0x4B, 1, 0x73, 0x2E]))
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: key)) { if case .invalidUTF8 = $0 { return true } else { return false } }
        let under = try write(checkpoint(pickle: [0x80, 2, 0x52, 0x2E]), name: "under.pt")
        assertThrows(TSLMError.self, try PyTorchImporter.load(path: under)) { self.isMalformed($0, "stack underflow") }
    }

    func testTruncatedPickleInsideTheArchive() throws {
        let (_, entries) = try fixtureEntries(try fixture("state_dict.pt"))
        let pkl = try XCTUnwrap(entries.first { $0.0 == "data.pkl" }?.1)
        for cut in [1, 2, 40, pkl.count / 2, pkl.count - 1] {
            let rebuilt = entries.map { ($0.0 == "data.pkl" ? "ck/data.pkl" : "ck/\($0.0)", $0.0 == "data.pkl" ? Array(pkl.prefix(cut)) : $0.1) }
            let path = try write(ZipBuilder.make(rebuilt), name: "cut\(cut).pt")
            assertThrows(TSLMError.self, try PyTorchImporter.load(path: path)) { self.isTruncated($0) }
        }
    }

    func testNestingAndExpansionAreCapped() throws {
        let f = "t.pkl"
        // 100k nested lists: a deep chain, not a stack overflow.
        let lists = [UInt8](repeating: 0x5D, count: 100_000) + [UInt8](repeating: 0x61, count: 99_999) + [0x2E]
        assertThrows(TSLMError.self, try RestrictedUnpickler.decode(lists, file: f)) { self.isMalformed($0, "nest deeper") }
        // 100k nested tuples.
        let tuples = [0x29] + [UInt8](repeating: 0x85, count: 100_000) + [0x2E]
        assertThrows(TSLMError.self, try RestrictedUnpickler.decode(tuples, file: f)) { self.isMalformed($0, "tuples nest deeper") }
        // A list that contains itself.
        assertThrows(TSLMError.self, try RestrictedUnpickler.decode([0x80, 2, 0x5D, 0x71, 0, 0x68, 0, 0x61, 0x2E], file: f)) {
            self.isMalformed($0, "nest deeper")
        }
        // A list shared 2^45 times over (each level holds the previous one twice).
        var shared: [UInt8] = [0x80, 2, 0x5D]
        for _ in 0..<45 { shared += [0x71, 0, 0x5D, 0x68, 0, 0x68, 0, 0x86, 0x61] }
        shared += [0x2E]
        assertThrows(TSLMError.self, try RestrictedUnpickler.decode(shared, file: f)) { self.isMalformed($0, "too large") }
    }

    // MARK: - Fuzzing

    func testRandomMutationsNeverCrash() throws {
        let good = try bytes(of: try fixture("state_dict.pt"))
        let (_, entries) = try fixtureEntries(try fixture("state_dict.pt"))
        let pkl = try XCTUnwrap(entries.first { $0.0 == "data.pkl" }?.1)
        let pklStart = try XCTUnwrap(firstIndex(of: pkl, in: good))
        var rng = SplitMix64(seed: 0x7E57_0001)
        var failures = 0
        for i in 0..<300 {
            var b = good
            for _ in 0..<(1 + Int(rng.next() % 6)) {
                // Half the mutations hit the pickle, the rest anywhere (headers, data, directory).
                let at = i % 2 == 0 ? pklStart + Int(rng.next() % UInt64(pkl.count)) : Int(rng.next() % UInt64(b.count))
                b[at] = rng.next() % 4 == 0 ? [0x00, 0xFF, 0x7F, 0x80][Int(rng.next() % 4)] : UInt8(truncatingIfNeeded: rng.next())
            }
            let path = try write(b, name: "m\(i).pt")
            do {
                _ = try loadAll(path)
            } catch is TSLMError {
                failures += 1
            } catch {
                XCTFail("mutation \(i) threw a non-TSLMError: \(error)")
            }
            try FileManager.default.removeItem(atPath: path)
        }
        XCTAssertGreaterThan(failures, 0)
    }

    func testRandomPickleMutationsNeverCrash() throws {
        let (_, entries) = try fixtureEntries(try fixture("state_dict.pt"))
        let pkl = try XCTUnwrap(entries.first { $0.0 == "data.pkl" }?.1)
        var rng = SplitMix64(seed: 42)
        for _ in 0..<3000 {
            var b = pkl
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 3 {
                case 0: b[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: b.remove(at: at)
                default: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                }
            }
            do {
                _ = try RestrictedUnpickler.decode(b, file: "fuzz.pkl")
            } catch {
                XCTAssertTrue(error is TSLMError, "\(error)")
            }
        }
    }

    // MARK: - Builders

    private func floatArray(_ b: [UInt8]) -> [Float] {
        stride(from: 0, to: b.count, by: 4).map { i in
            Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
        }
    }

    private func firstIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        return (0...(hay.count - needle.count)).first { hay[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    private func lastIndex(of needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        return (0...(hay.count - needle.count)).last { hay[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    /// A torch-style zip: `ck/data.pkl`, `ck/data/<key>`, `ck/byteorder`, `ck/version`.
    private func checkpoint(pickle: [UInt8], storages: [String: [UInt8]] = [:], byteorder: String = "little") -> [UInt8] {
        var entries: [(String, [UInt8])] = [("ck/data.pkl", pickle), ("ck/byteorder", Array(byteorder.utf8))]
        for (k, v) in storages.sorted(by: { $0.key < $1.key }) { entries.append(("ck/data/\(k)", v)) }
        entries.append(("ck/version", Array("3\n".utf8)))
        return ZipBuilder.make(entries)
    }

    /// `{"w": _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())}`
    /// (or `_rebuild_tensor_v3(..., torch.<v3DType>)`).
    private func tensorPickle(storageModule: String = "torch", storageType: String = "FloatStorage", key: String = "0",
                              numel: Int64, offset: Int64 = 0, size: [Int64], stride: [Int64],
                              v3DType: String? = nil) -> [UInt8] {
        var p = PickleBuilder()
        p.op(0x7D)
        p.str("w")
        emitTensor(&p, storageModule: storageModule, storageType: storageType, key: key, numel: numel,
                   offset: offset, size: size, stride: stride, v3DType: v3DType)
        p.op(0x73, 0x2E)  // SETITEM, STOP
        return p.bytes
    }

    /// Pushes `_rebuild_tensor_v2(...)` (or `_v3`) onto the pickle stack.
    private func emitTensor(_ p: inout PickleBuilder, storageModule: String = "torch", storageType: String = "FloatStorage",
                            key: String = "0", numel: Int64, offset: Int64 = 0, size: [Int64], stride: [Int64],
                            v3DType: String? = nil) {
        p.global("torch._utils", v3DType == nil ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3")
        p.op(0x28)
        p.op(0x28)
        p.str("storage")
        p.global(storageModule, storageType)
        p.str(key)
        p.str("cpu")
        p.int(numel)
        p.op(0x74, 0x51)  // TUPLE, BINPERSID
        p.int(offset)
        p.op(0x28)
        size.forEach { p.int($0) }
        p.op(0x74, 0x28)
        stride.forEach { p.int($0) }
        p.op(0x74, 0x89)
        p.global("collections", "OrderedDict")
        p.op(0x29, 0x52)
        if let v3DType { p.global("torch", v3DType) }
        p.op(0x74, 0x52)  // TUPLE, REDUCE
    }
}

/// Assembles pickle opcodes by hand.
struct PickleBuilder {
    var bytes: [UInt8]

    init(protocol proto: UInt8 = 2) { bytes = [0x80, proto] }

    mutating func op(_ codes: UInt8...) { bytes += codes }
    mutating func raw(_ b: [UInt8]) { bytes += b }

    mutating func str(_ s: String) {
        let u = Array(s.utf8)
        bytes.append(0x58)
        bytes += le(UInt64(u.count), 4)
        bytes += u
    }

    mutating func int(_ v: Int64) {
        if (0...255).contains(v) {
            bytes += [0x4B, UInt8(v)]
        } else {
            bytes += [0x8A, 8] + le(UInt64(bitPattern: v), 8)  // LONG1
        }
    }

    mutating func global(_ module: String, _ name: String) {
        bytes.append(0x63)
        bytes += Array("\(module)\n\(name)\n".utf8)
    }
}

func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

/// Writes minimal zip archives (CRCs left zero: the reader does not check them).
enum ZipBuilder {
    static func make(_ entries: [(String, [UInt8])], zip64: Bool = false) -> [UInt8] {
        make(entries.map { ($0.0, $0.1, UInt16(0)) }, zip64: zip64)
    }

    static func make(_ entries: [(String, [UInt8], UInt16)], zip64: Bool = false) -> [UInt8] {
        var out: [UInt8] = [], central: [UInt8] = []
        for (name, data, method) in entries {
            let n = Array(name.utf8)
            let offset = UInt64(out.count)
            let size32: UInt64 = zip64 ? 0xFFFF_FFFF : UInt64(data.count)
            let localExtra: [UInt8] = zip64 ? le(1, 2) + le(16, 2) + le(UInt64(data.count), 8) + le(UInt64(data.count), 8) : []
            out += le(0x0403_4b50, 4) + le(zip64 ? 45 : 20, 2) + le(0, 2) + le(UInt64(method), 2) + le(0, 2) + le(0x21, 2)
            out += le(0, 4) + le(size32, 4) + le(size32, 4) + le(UInt64(n.count), 2) + le(UInt64(localExtra.count), 2)
            out += n + localExtra + data
            let centralExtra: [UInt8] = zip64
                ? le(1, 2) + le(24, 2) + le(UInt64(data.count), 8) + le(UInt64(data.count), 8) + le(offset, 8) : []
            central += le(0x0201_4b50, 4) + le(45, 2) + le(zip64 ? 45 : 20, 2) + le(0, 2) + le(UInt64(method), 2)
            central += le(0, 2) + le(0x21, 2) + le(0, 4) + le(size32, 4) + le(size32, 4)
            central += le(UInt64(n.count), 2) + le(UInt64(centralExtra.count), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4)
            central += le(zip64 ? 0xFFFF_FFFF : offset, 4) + n + centralExtra
        }
        let cdOffset = UInt64(out.count), cdSize = UInt64(central.count), count = UInt64(entries.count)
        out += central
        if zip64 {
            let record = UInt64(out.count)
            out += le(0x0606_4b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4)
            out += le(count, 8) + le(count, 8) + le(cdSize, 8) + le(cdOffset, 8)
            out += le(0x0706_4b50, 4) + le(0, 4) + le(record, 8) + le(1, 4)
            out += le(0x0605_4b50, 4) + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2)
            out += le(0xFFFF_FFFF, 4) + le(0xFFFF_FFFF, 4) + le(0, 2)
        } else {
            out += le(0x0605_4b50, 4) + le(0, 2) + le(0, 2) + le(count, 2) + le(count, 2)
            out += le(cdSize, 4) + le(cdOffset, 4) + le(0, 2)
        }
        return out
    }
}

