import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// Metadata: key rules, the ordered-dictionary behaviour, accessors, and a round trip of every
/// value and array type through `TSLMWriter` and `TSLMFile`.
final class MetadataTests: XCTestCase {
    func testKeyValidity() {
        let valid = ["general.architecture", "a", "a.b.c", "llama.attention.head_count_kv", "x_1.y2", "_", "0.9",
                     "tokenizer.huggingface.json", String(repeating: "a", count: 256),
                     String(repeating: "a.", count: 127) + "ab"]
        for k in valid { XCTAssertTrue(Metadata.isValidKey(k), "'\(k)' should be valid") }
        let invalid = ["", ".", "a.", ".a", "a..b", "A", "general.Architecture", "a-b", "a b", "a/b", "a:b",
                       "é", "a.\u{0}", "\u{301}a", String(repeating: "a", count: 257), "tokenizer.ggml.tokens ", "a\n"]
        for k in invalid { XCTAssertFalse(Metadata.isValidKey(k), "'\(k.debugDescription)' should be invalid") }
        // The limit is in bytes, not characters.
        XCTAssertEqual(String(repeating: "a", count: 256).utf8.count, 256)
    }

    func testOrderInsertNewReplaceAndRemove() {
        var md = Metadata()
        XCTAssertTrue(md.insertNew("b.key", .u32(1)))
        XCTAssertTrue(md.insertNew("a.key", .string("x")))
        XCTAssertFalse(md.insertNew("b.key", .u32(2)), "insertNew must refuse an existing key")
        XCTAssertEqual(md["b.key"], .u32(1), "and must not change its value")
        XCTAssertEqual(md.keys, ["b.key", "a.key"], "insertion order is kept")
        md["b.key"] = .u32(3)  // replacing keeps the position
        XCTAssertEqual(md.keys, ["b.key", "a.key"])
        XCTAssertEqual(md["b.key"], .u32(3))
        md["c.key"] = .bool(true)
        md["b.key"] = nil  // removal re-indexes the rest
        XCTAssertEqual(md.keys, ["a.key", "c.key"])
        XCTAssertEqual(md["c.key"], .bool(true))
        XCTAssertNil(md["b.key"])
        XCTAssertTrue(md.insertNew("b.key", .u8(9)))
        XCTAssertEqual(md.keys, ["a.key", "c.key", "b.key"])
        md["absent.key"] = nil
        XCTAssertEqual(md.count, 3)
        // Equality is order-sensitive.
        var other = Metadata()
        other["c.key"] = .bool(true); other["a.key"] = .string("x"); other["b.key"] = .u8(9)
        XCTAssertNotEqual(md, other)
    }

    func testAccessors() {
        var md = Metadata()
        md["a.u64big"] = .u64(.max)
        md["a.u64"] = .u64(42)
        md["a.i8"] = .i8(-5)
        md["a.f32"] = .f32(1.5)
        md["a.s"] = .string("hi")
        md["a.b"] = .bool(false)
        md["a.arr"] = .array(.string(["x", "y"]))
        md["a.ints"] = .array(.u64([1, .max]))
        XCTAssertNil(md.int("a.u64big"), "u64 above Int.max is not an Int")
        XCTAssertEqual(md.int("a.u64"), 42)
        XCTAssertEqual(md.int("a.i8"), -5)
        XCTAssertEqual(md.double("a.i8"), -5)
        XCTAssertEqual(md.double("a.f32"), 1.5)
        XCTAssertNil(md.int("a.f32"))
        XCTAssertEqual(md.string("a.s"), "hi")
        XCTAssertNil(md.string("a.b"))
        XCTAssertEqual(md.bool("a.b"), false)
        XCTAssertEqual(md.strings("a.arr"), ["x", "y"])
        XCTAssertNil(md.strings("a.ints"))
        XCTAssertNil(md.array("a.ints")?.intValues, "an element above Int.max makes the whole array non-Int")
        XCTAssertEqual(MetadataArray.i16([-1, 2]).intValues, [-1, 2])
        XCTAssertEqual(md.array("a.arr")?.count, 2)
        XCTAssertEqual(md.array("a.arr")?.elementType, .string)
        XCTAssertEqual(MetadataValue.array(.f64([])).type, .array)
    }

    /// Every scalar type and every array type, with extreme values, through a real file.
    static func everyType() -> Metadata {
        var md = Metadata()
        md["t.u8"] = .u8(255)
        md["t.i8"] = .i8(-128)
        md["t.u16"] = .u16(65535)
        md["t.i16"] = .i16(-32768)
        md["t.u32"] = .u32(.max)
        md["t.i32"] = .i32(.min)
        md["t.u64"] = .u64(.max)
        md["t.i64"] = .i64(.min)
        md["t.f32"] = .f32(-.leastNonzeroMagnitude)
        md["t.f64"] = .f64(.pi)
        md["t.f32_inf"] = .f32(.infinity)
        md["t.bool_t"] = .bool(true)
        md["t.bool_f"] = .bool(false)
        md["t.string"] = .string("héllo, 世界 🌍 \u{0} end")
        md["t.empty_string"] = .string("")
        md["t.a.u8"] = .array(.u8([0, 1, 255]))
        md["t.a.i8"] = .array(.i8([-128, 0, 127]))
        md["t.a.u16"] = .array(.u16([0, 65535]))
        md["t.a.i16"] = .array(.i16([-32768, 32767]))
        md["t.a.u32"] = .array(.u32([0, .max]))
        md["t.a.i32"] = .array(.i32([.min, -1, .max]))
        md["t.a.u64"] = .array(.u64([0, .max]))
        md["t.a.i64"] = .array(.i64([.min, .max]))
        md["t.a.f32"] = .array(.f32([0, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -.infinity]))
        md["t.a.f64"] = .array(.f64([.leastNormalMagnitude, -1e308]))
        md["t.a.bool"] = .array(.bool([true, false, false, true]))
        md["t.a.string"] = .array(.string(["", "a b", "ünï", "left right"]))
        md["t.a.empty"] = .array(.i32([]))
        md["t.a.empty_strings"] = .array(.string([]))
        return md
    }

    func testEveryTypeRoundTripsThroughWriterAndReader() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir.appendingPathComponent("m.tslm").path
        let md = Self.everyType()
        let w = try TSLMWriter(path: path, metadata: md)
        try w.finish()
        for mmap in [true, false] {
            let f = try TSLMFile(path: path, mmap: mmap)
            XCTAssertEqual(f.metadata, md)
            XCTAssertEqual(f.metadata.keys, md.keys)
            XCTAssertEqual(f.tensors, [])
            // Bit patterns of floats survive (−0, the smallest subnormal).
            if case let .array(.f32(a))? = f.metadata["t.a.f32"] {
                XCTAssertEqual(a.map(\.bitPattern), [0, 0x8000_0000, 1, 0x7F7F_FFFF, 0xFF80_0000])
            } else { XCTFail("t.a.f32") }
        }
    }

    func testNaNValuesRoundTripBitwise() throws {
        // NaN != NaN, so compare bit patterns explicitly.
        let dir = try makeTemporaryDirectory(self)
        let path = dir.appendingPathComponent("nan.tslm").path
        var md = Metadata()
        md["n.f32"] = .f32(Float(bitPattern: 0x7FC0_1234))
        md["n.f64"] = .array(.f64([Double(bitPattern: 0xFFF8_0000_0000_0001)]))
        let w = try TSLMWriter(path: path, metadata: md)
        try w.finish()
        let f = try TSLMFile(path: path)
        guard case let .f32(x)? = f.metadata["n.f32"], case let .array(.f64(y))? = f.metadata["n.f64"] else { return XCTFail() }
        XCTAssertEqual(x.bitPattern, 0x7FC0_1234)
        XCTAssertEqual(y.map(\.bitPattern), [0xFFF8_0000_0000_0001])
    }

    func testEncodingIsTheDocumentedOne() {
        // key "a.b", u32 7: u64 length 3, "a.b", type 4, value 7 — all little-endian.
        var out: [UInt8] = []
        MetadataCodec.write(key: "a.b", value: .u32(7), to: &out)
        XCTAssertEqual(out, [3, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x2E, 0x62, 4, 0, 0, 0, 7, 0, 0, 0])
        out = []
        MetadataCodec.write(key: "k", value: .array(.string(["xy"])), to: &out)
        XCTAssertEqual(out, [1, 0, 0, 0, 0, 0, 0, 0, 0x6B, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0,
                             2, 0, 0, 0, 0, 0, 0, 0, 0x78, 0x79])
    }

    func testInvalidKeysAreRejectedByTheWriter() throws {
        let dir = try makeTemporaryDirectory(self)
        for key in ["Bad.Key", "a..b", ""] {
            let path = dir.appendingPathComponent("k.tslm").path
            var md = Metadata()
            md["good.key"] = .u8(1)
            md[key] = .u8(2)
            let w = try TSLMWriter(path: path, metadata: md)
            assertThrows(TSLMError.self, "key '\(key)'", { try w.finish() }) {
                if case let .invalidArgument(_, reason) = $0 { return reason.contains("'\(key)'") } else { return false }
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        }
    }
}
