import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
import TSLMTestSupport

final class SafetensorsTests: XCTestCase {
    private var dir: String = ""

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self, prefix: "tslm-safetensors").path
    }

    // MARK: helpers

    private func bytes(_ d: TensorData) -> [UInt8] { Array(d.bytes.bindMemory(to: UInt8.self)) }

    private func floatBytes(_ v: [Float]) -> [UInt8] { v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

    /// A file from a header text (padded to 8 with spaces unless `pad` is false) and data.
    private func write(header: [UInt8], data: [UInt8], length: UInt64? = nil, name: String = "f.safetensors") throws -> String {
        var h = header
        while h.count % 8 != 0 { h.append(0x20) }
        var file = withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian, Array.init)
        file += h + data
        let path = dir + "/" + name
        try Data(file).write(to: URL(fileURLWithPath: path))
        return path
    }

    private func write(header: String, data: [UInt8], length: UInt64? = nil) throws -> String {
        try write(header: Array(header.utf8), data: data, length: length)
    }

    // MARK: round trip

    func testWriterRoundTrip() throws {
        let path = dir + "/rt.safetensors"
        let f32 = floatBytes([1, -2.5, 3.25, .infinity, -0.0, 7])
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0]
        let bf16: [UInt8] = [0x80, 0x3F, 0x00, 0x40, 0x49, 0x40]
        let i64 = [Int64(-1), Int64.max].flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
        let u8: [UInt8] = [0, 255, 7]
        let tensors: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])] = [
            ("a.weight", .f32, [2, 3], f32), ("b", .f16, [2], f16), ("c \"quoted\"", .bf16, [3], bf16),
            ("d", .i64, [2], i64), ("e", .u8, [3], u8), ("scalar", .i8, [], [0xFE]), ("empty", .f32, [0, 4], []),
            ("flag", .bool, [2], [1, 0]), ("h", .f64, [1], withUnsafeBytes(of: Double.pi.bitPattern.littleEndian, Array.init)),
            ("i16", .i16, [1], [1, 2]), ("i32", .i32, [1], [1, 2, 3, 4]),
        ]
        let meta = ["format": "pt", "quote\"and\\slash": "line\nbreak"]
        try SafetensorsWriter.write(path: path, tensors: tensors, metadata: meta)

        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.metadata, meta)
        XCTAssertEqual(file.tensors.map(\.name), tensors.map(\.name))
        XCTAssertEqual(file.dataOffset % 8, 0, "header padded to 8 bytes")
        var expectedOffset = file.dataOffset
        for (entry, t) in zip(file.tensors, tensors) {
            XCTAssertEqual(entry.dtype, t.dtype, t.name)
            XCTAssertEqual(entry.shape, t.shape, t.name)
            XCTAssertEqual(entry.byteCount, t.bytes.count, t.name)
            XCTAssertEqual(entry.offset, expectedOffset, t.name)
            expectedOffset += UInt64(t.bytes.count)
            XCTAssertEqual(bytes(try file.load(entry)), t.bytes, t.name)
        }
        XCTAssertEqual(try file.entry(named: "d").shape, [2])
        assertThrows(TSLMError.self, "missing tensor", { _ = try file.entry(named: "nope") }) {
            if case .missingTensor = $0 { true } else { false }
        }
    }

    func testWriterRejectsBadInput() {
        assertThrows(TSLMError.self, "size mismatch", { try SafetensorsWriter.write(path: self.dir + "/x", tensors: [("a", .f32, [2], [0, 0, 0])], metadata: [:]) }) {
            if case .sizeMismatch = $0 { true } else { false }
        }
        assertThrows(TSLMError.self, "quantized", { try SafetensorsWriter.write(path: self.dir + "/x", tensors: [("a", .q8_0, [32], [UInt8](repeating: 0, count: 34))], metadata: [:]) }) {
            if case .unsupportedDType = $0 { true } else { false }
        }
        assertThrows(TSLMError.self, "duplicate", { try SafetensorsWriter.write(path: self.dir + "/x", tensors: [("a", .u8, [1], [0]), ("a", .u8, [1], [0])], metadata: [:]) }) {
            if case .duplicateTensor = $0 { true } else { false }
        }
    }

    // MARK: a file from the Python package

    func testPythonWrittenFileReadsBitIdentical() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "safetensors", withExtension: nil, subdirectory: "Fixtures"))
        let file = try SafetensorsFile(path: url.path + "/python.safetensors")
        let expected = try JSONValue.parseFile(url.path + "/expected.json").value
        let tensors = try XCTUnwrap(expected["tensors"]?.arrayValue)
        XCTAssertEqual(tensors.count, 8)
        XCTAssertEqual(file.tensors.count, tensors.count)
        XCTAssertEqual(file.metadata, ["format": "pt"])
        let dtypes: [String: DType] = ["F32": .f32, "F16": .f16, "BF16": .bf16, "I64": .i64, "I32": .i32, "BOOL": .bool]
        for t in tensors {
            let name = try XCTUnwrap(t["name"]?.stringValue)
            let entry = try file.entry(named: name)
            XCTAssertEqual(entry.dtype, dtypes[try XCTUnwrap(t["dtype"]?.stringValue)], name)
            XCTAssertEqual(entry.shape, try XCTUnwrap(t["shape"]?.arrayValue).compactMap(\.intValue), name)
            let hex = try XCTUnwrap(t["hex"]?.stringValue)
            let want = stride(from: 0, to: hex.utf8.count, by: 2).map { i -> UInt8 in
                let s = hex.utf8.dropFirst(i).prefix(2)
                return UInt8(String(decoding: s, as: UTF8.self), radix: 16) ?? 0
            }
            XCTAssertEqual(bytes(try file.load(entry)), want, name)
        }
        // Spot-check values through the dtype conversions.
        let norm = try file.load(try file.entry(named: "model.norm.weight"))
        let halves = Array(norm.bytes.bindMemory(to: UInt16.self))
        XCTAssertEqual(halves.map(halfToFloat), [1.0, -0.5, 65504.0, halfToFloat(halves[3])])
        let head = try file.load(try file.entry(named: "lm_head.weight"))
        XCTAssertEqual(Array(head.bytes.bindMemory(to: UInt16.self)).prefix(3).map(bf16ToFloat), [1.0, -2.0, 0.5])
    }

    // MARK: corrupt files

    private let goodHeader = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}"#
    private let goodData: [UInt8] = Array(0..<12)

    func testGoodBaselineOpens() throws {
        let f = try SafetensorsFile(path: try write(header: goodHeader, data: goodData))
        XCTAssertEqual(f.tensors.map(\.name), ["a", "b"])
        XCTAssertEqual(bytes(try f.load(f.tensors[1])), [8, 9, 10, 11])
    }

    func testTruncatedAtSeveralCutPoints() throws {
        let full = try Array(Data(contentsOf: URL(fileURLWithPath: try write(header: goodHeader, data: goodData))))
        let headerEnd = full.count - goodData.count
        for cut in [0, 3, 7, 8, 9, headerEnd / 2, headerEnd - 1, headerEnd, headerEnd + 5, full.count - 1] {
            let path = dir + "/cut\(cut).safetensors"
            try Data(full.prefix(cut)).write(to: URL(fileURLWithPath: path))
            assertThrows(TSLMError.self, "cut at \(cut)", { _ = try SafetensorsFile(path: path) }) { e in
                if cut < headerEnd {
                    if case .truncated = e { return true }  // header length or header past the end
                    return false
                }
                // Header intact, data short: the last tensor lies past the end.
                if case let .tensorOutOfBounds(_, tensor, _, _, limit) = e {
                    return limit == UInt64(cut) && tensor == (cut < headerEnd + 8 ? "a" : "b")
                }
                return false
            }
        }
    }

    func testHeaderLengthPastEnd() throws {
        let path = try write(header: goodHeader, data: goodData, length: 4096)
        assertThrows(TSLMError.self, "header length past end", { _ = try SafetensorsFile(path: path) }) {
            if case .truncated = $0 { true } else { false }
        }
    }

    func testAbsurdHeaderLength() throws {
        for n: UInt64 in [UInt64.max, 1 << 63, SafetensorsFile.maxHeaderBytes + 1] {
            let path = try write(header: goodHeader, data: goodData, length: n)
            assertThrows(TSLMError.self, "header length \(n)", { _ = try SafetensorsFile(path: path) }) {
                if case let .malformed(_, reason) = $0 { reason.contains("limit") } else { false }
            }
        }
    }

    func testBadJSON() throws {
        for (i, h) in [#"{"a": {"dtype": "F32""#, "[1,2]", "", #"{"a":1} x"#, #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],}}"#].enumerated() {
            let path = try write(header: Array(h.utf8), data: goodData, name: "bad\(i).safetensors")
            assertThrows(TSLMError.self, "bad JSON \(h)", { _ = try SafetensorsFile(path: path) }) {
                if case .malformed = $0 { true } else { false }
            }
        }
    }

    func testBadUTF8InName() throws {
        var h = Array(#"{"a\#u{FFFF}":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#.utf8)
        // Replace the U+FFFF (EF BF BF) with a lone continuation byte and an invalid lead byte.
        let i = try XCTUnwrap(h.firstIndex(of: 0xEF))
        h[i] = 0xFF
        h[i + 1] = 0x80
        let path = try write(header: h, data: [0])
        assertThrows(TSLMError.self, "bad UTF-8", { _ = try SafetensorsFile(path: path) }) {
            if case .invalidUTF8 = $0 { true } else { false }
        }
    }

    func testOffsetsPastEnd() throws {
        let path = try write(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: goodData)
        assertThrows(TSLMError.self, "offsets past end", { _ = try SafetensorsFile(path: path) }) {
            if case let .tensorOutOfBounds(_, tensor, _, size, _) = $0 { tensor == "a" && size == 16 } else { false }
        }
        let huge = try write(header: #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[18446744073709551610,18446744073709551614]}}"#, data: goodData)
        assertThrows(TSLMError.self, "offsets near 2^64", { _ = try SafetensorsFile(path: huge) }) {
            if case .tensorOutOfBounds = $0 { true } else { false }
        }
    }

    func testOverlappingTensors() throws {
        let path = try write(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#, data: goodData)
        assertThrows(TSLMError.self, "overlap", { _ = try SafetensorsFile(path: path) }) {
            if case let .overlappingTensors(_, first, second) = $0 { Set([first, second]) == ["a", "b"] } else { false }
        }
        // Zero-size tensors overlap nothing; gaps are allowed.
        let ok = try write(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#, data: goodData)
        XCTAssertEqual(try SafetensorsFile(path: ok).tensors.count, 2)
    }

    func testSizeOverflow() throws {
        for shape in ["[4294967296,4294967296,16]", "[18446744073709551615]", "[9223372036854775808,0]"] {
            let path = try write(header: #"{"a":{"dtype":"F32","shape":\#(shape),"data_offsets":[0,8]}}"#, data: goodData)
            assertThrows(TSLMError.self, "overflow \(shape)", { _ = try SafetensorsFile(path: path) }) {
                if case let .sizeOverflow(_, tensor, _) = $0 { tensor == "a" } else { false }
            }
        }
        let path = try write(header: #"{"a":{"dtype":"F32","shape":[100000000000000000000],"data_offsets":[0,8]}}"#, data: goodData)
        assertThrows(TSLMError.self, "dimension beyond 64 bits", { _ = try SafetensorsFile(path: path) }) {
            if case .malformed = $0 { true } else { false }
        }
    }

    func testSizeMismatch() throws {
        let path = try write(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: goodData)
        assertThrows(TSLMError.self, "size mismatch", { _ = try SafetensorsFile(path: path) }) {
            if case let .sizeMismatch(_, tensor, expected, actual) = $0 { tensor == "a" && expected == 12 && actual == 8 } else { false }
        }
        let reversed = try write(header: #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}}"#, data: goodData)
        assertThrows(TSLMError.self, "begin after end", { _ = try SafetensorsFile(path: reversed) }) {
            if case .malformed = $0 { true } else { false }
        }
    }

    func testDuplicateNames() throws {
        let path = try write(header: #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"a":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#, data: goodData)
        assertThrows(TSLMError.self, "duplicate", { _ = try SafetensorsFile(path: path) }) {
            if case let .duplicateTensor(_, name) = $0 { name == "a" } else { false }
        }
        let dupField = try write(header: #"{"a":{"dtype":"U8","dtype":"F32","shape":[4],"data_offsets":[0,4]}}"#, data: goodData)
        assertThrows(TSLMError.self, "duplicate field", { _ = try SafetensorsFile(path: dupField) }) {
            if case .malformed = $0 { true } else { false }
        }
    }

    func testUnsupportedDTypes() throws {
        for dtype in ["F8_E4M3", "F8_E5M2", "U16", "U32", "U64", "C64", "F4", "f32", "Q8_0"] {
            let path = try write(header: #"{"w":{"dtype":"\#(dtype)","shape":[2],"data_offsets":[0,2]}}"#, data: goodData)
            assertThrows(TSLMError.self, "dtype \(dtype)", { _ = try SafetensorsFile(path: path) }) {
                if case let .unsupportedDType(_, tensor, name) = $0 { tensor == "w" && name == dtype } else { false }
            }
        }
    }

    func testMalformedEntries() throws {
        let cases = [
            #"{"a":[1,2]}"#,
            #"{"a":{"shape":[1],"data_offsets":[0,1]}}"#,
            #"{"a":{"dtype":"U8","data_offsets":[0,1]}}"#,
            #"{"a":{"dtype":"U8","shape":[1]}}"#,
            #"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#,
            #"{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}"#,
            #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}"#,
            #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}"#,
            #"{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}"#,
            #"{"__metadata__":{"k":1}}"#,
            #"{"__metadata__":[]}"#,
            #"{"__metadata__":{"k":"v","k":"w"}}"#,
        ]
        for (i, h) in cases.enumerated() {
            let path = try write(header: Array(h.utf8), data: goodData, name: "m\(i).safetensors")
            assertThrows(TSLMError.self, h, { _ = try SafetensorsFile(path: path) }) {
                if case .malformed = $0 { true } else { false }
            }
        }
    }

    func testBoolValuesAreChecked() throws {
        let path = try write(header: #"{"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}"#, data: [1, 2, 0])
        let f = try SafetensorsFile(path: path)
        assertThrows(TSLMError.self, "bool 2", { _ = try f.load(f.tensors[0]) }) {
            if case .malformed = $0 { true } else { false }
        }
    }

    func testJSONParser() throws {
        let v = try JSONValue.parse(Array(#" {"b":[true,false,null,-0.5e+3,"\u00e9\ud83d\ude00\n"],"a":{}} "#.utf8))
        XCTAssertEqual(v.objectValue?.keys, ["b", "a"])
        let items = try XCTUnwrap(v["b"]?.arrayValue)
        XCTAssertEqual(items[0], .bool(true))
        XCTAssertEqual(items[2], .null)
        XCTAssertEqual(items[3].doubleValue, -500)
        XCTAssertNil(items[3].intValue)
        XCTAssertEqual(items[4].stringValue, "é😀\n")
        XCTAssertEqual(try JSONValue.parse(Array("18446744073709551615".utf8)).uint64Value, UInt64.max)
        XCTAssertEqual(try JSONValue.parse(Array(v.serialized.utf8)), v)
        for bad in ["{", "[1,]", "01", "1.", "\"\\ud800\"", "\"a\u{01}\"", "tru", "{\"a\" 1}", "\"\\x\"", "[] []"] {
            XCTAssertThrowsError(try JSONValue.parse(Array(bad.utf8)), bad)
        }
        let deep = String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000)
        XCTAssertThrowsError(try JSONValue.parse(Array(deep.utf8))) {
            XCTAssertEqual(($0 as? JSONParseError)?.kind, .tooDeep)
        }
        XCTAssertThrowsError(try JSONValue.parse([0x22, 0xC3, 0x22])) {
            XCTAssertEqual(($0 as? JSONParseError)?.kind, .invalidUTF8)
        }
        XCTAssertThrowsError(try JSONValue.parse(Array(#"{"x":{"k":1,"k":2}}"#.utf8))) {
            XCTAssertEqual(($0 as? JSONParseError)?.kind, .duplicateKey("k", depth: 2))
        }
    }

    /// Object keys are compared by their UTF-8 bytes: "▁が" (U+304C) and "▁か\u{3099}"
    /// (U+304B U+3099) are canonically equivalent Swift strings but two different keys; a key
    /// repeated byte for byte is still a duplicate, whether written raw or as escapes.
    func testJSONKeysCompareByBytes() throws {
        let composed = "\u{2581}\u{304C}", decomposed = "\u{2581}\u{304B}\u{3099}"
        let text = #"{"\#(composed)":1,"\#(decomposed)":2}"#
        let v = try JSONValue.parse(Array(text.utf8))
        let members = try XCTUnwrap(v.objectValue)
        XCTAssertEqual(members.count, 2)
        XCTAssertEqual(members.keys.map { Array($0.utf8) }, [Array(composed.utf8), Array(decomposed.utf8)])
        XCTAssertEqual(v[composed]?.intValue, 1)
        XCTAssertEqual(v[decomposed]?.intValue, 2)
        // The same keys written as \u escapes.
        let escaped = try JSONValue.parse(Array(#"{"\u2581\u304c":1,"\u2581\u304b\u3099":2}"#.utf8))
        XCTAssertEqual(escaped, v)
        XCTAssertEqual(escaped[decomposed]?.intValue, 2)
        // Values compare by bytes too, and serializing keeps both keys.
        XCTAssertNotEqual(JSONValue.string(composed), JSONValue.string(decomposed))
        XCTAssertEqual(try JSONValue.parse(Array(v.serialized.utf8)), v)
        // A true duplicate (same bytes) is still an error, raw or escaped.
        for dup in [#"{"\#(decomposed)":1,"\#(decomposed)":2}"#, #"{"\u2581\u304c":1,"\#(composed)":2}"#] {
            XCTAssertThrowsError(try JSONValue.parse(Array(dup.utf8)), dup) {
                guard case let .duplicateKey(k, depth)? = ($0 as? JSONParseError)?.kind else {
                    return XCTFail("\(dup): \($0)")
                }
                XCTAssertEqual(depth, 1)
                XCTAssertTrue(k == composed || k == decomposed)
            }
        }
    }
}
