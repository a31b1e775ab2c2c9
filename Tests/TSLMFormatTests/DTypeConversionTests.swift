import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// `DTypeConversion.convert`: identity copies, float round trips, rejection of integer types,
/// and chunking across the 1M-element pivot boundary.
final class DTypeConversionTests: XCTestCase {
    func convert(_ src: [UInt8], _ from: DType, _ to: DType, _ shape: [Int]) throws -> [UInt8] {
        try src.withUnsafeBytes { try DTypeConversion.convert($0, from: from, to: to, shape: shape, file: "t", tensor: "x").array }
    }

    func encode(_ x: [Float], _ dtype: DType) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: dtype.byteCount(shape: [x.count])!)
        x.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { DTypeConversion.fromFloat32(src, to: dtype, into: $0) } }
        return out
    }

    func decode(_ b: [UInt8], _ dtype: DType, count: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: count)
        b.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { DTypeConversion.toFloat32(src, dtype: dtype, count: count, into: $0) } }
        return out
    }

    func testIdentityConversionsAreByteForByte() throws {
        var rng = SplitMix64(seed: 1)
        for dtype in DType.allCases {
            for shape in [[64], [3, 64], [2, 2, 32], [0, 32], []] where dtype.byteCount(shape: shape) != nil {
                // Arbitrary bytes, NaN payloads and invalid bool bytes included: nothing is decoded.
                let src = rng.bytes(dtype.byteCount(shape: shape)!)
                XCTAssertEqual(try convert(src, dtype, dtype, shape), src, "\(dtype) \(shape)")
            }
        }
    }

    func testIdentityWithWrongSizeThrowsSizeMismatch() {
        assertThrows(TSLMError.self, "f32 [4] from 15 bytes", { try self.convert([UInt8](repeating: 0, count: 15), .f32, .f32, [4]) }) {
            if case .sizeMismatch(_, "x", 16, 15) = $0 { return true } else { return false }
        }
        assertThrows(TSLMError.self, "f32→f16 [4] from 15 bytes", { try self.convert([UInt8](repeating: 0, count: 15), .f32, .f16, [4]) }) {
            if case .sizeMismatch(_, "x", 16, 15) = $0 { return true } else { return false }
        }
    }

    func testFloatRoundTrips() throws {
        var rng = SplitMix64(seed: 2)
        let x = (0..<256).map { _ in rng.normal() * 10 }
        let f32 = bytesOf(x)
        // f32 → f16 → f32 equals halfToFloat(floatToHalf(x)); f16 → f32 → f16 is the identity.
        let h = try convert(f32, .f32, .f16, [256])
        XCTAssertEqual(h, bytesOf(x.map(floatToHalf)))
        let back = try convert(h, .f16, .f32, [256])
        XCTAssertEqual(back, bytesOf(x.map { halfToFloat(floatToHalf($0)) }))
        XCTAssertEqual(try convert(back, .f32, .f16, [256]), h)
        // bf16 likewise.
        let b = try convert(f32, .f32, .bf16, [256])
        XCTAssertEqual(b, bytesOf(x.map(floatToBF16)))
        XCTAssertEqual(try convert(try convert(b, .bf16, .f32, [256]), .f32, .bf16, [256]), b)
        // f16 → bf16 goes through f32 and rounds once.
        XCTAssertEqual(try convert(h, .f16, .bf16, [256]), bytesOf(x.map { floatToBF16(halfToFloat(floatToHalf($0))) }))
        // f32 → f64 → f32 is exact.
        let d = try convert(f32, .f32, .f64, [256])
        XCTAssertEqual(d, bytesOf(x.map { Double($0) }))
        XCTAssertEqual(try convert(d, .f64, .f32, [256]), f32)
        // f64 → f32 rounds to nearest.
        let doubles: [Double] = [1 + 0x1p-24, 1 + 0x1p-24 + 0x1p-40, 1e300, -1e-300]
        XCTAssertEqual(try convert(bytesOf(doubles), .f64, .f32, [4]), bytesOf(doubles.map { Float($0) }))
    }

    func testAllHalfPatternsSurviveF16ToF32ToF16() throws {
        let all = (0...0xFFFF).map { UInt16($0) }.filter { !halfToFloat($0).isNaN }
        let src = bytesOf(all)
        let f = try convert(src, .f16, .f32, [all.count])
        XCTAssertEqual(try convert(f, .f32, .f16, [all.count]), src)
    }

    func testQuantizedConversionsMatchTheReferenceQuantizers() throws {
        var rng = SplitMix64(seed: 3)
        let x = (0..<(8 * 64)).map { _ in rng.normal() }
        for q in [DType.q8_0, .q4_0, .q4_1] {
            let direct = encode(x, q)
            XCTAssertEqual(try convert(bytesOf(x), .f32, q, [8, 64]), direct, "f32 → \(q)")
            // Dequantizing is exact into f32, and into f16 rounds that value once.
            let deq = decode(direct, q, count: x.count)
            XCTAssertEqual(try convert(direct, q, .f32, [8, 64]), bytesOf(deq))
            XCTAssertEqual(try convert(direct, q, .f16, [8, 64]), bytesOf(deq.map(floatToHalf)))
            // Requantizing to another block type goes through f32.
            for q2 in [DType.q8_0, .q4_0, .q4_1] where q2 != q {
                XCTAssertEqual(try convert(direct, q, q2, [8, 64]), encode(deq, q2), "\(q) → \(q2)")
            }
        }
        // f16 source into a block type.
        let h = bytesOf(x.map(floatToHalf))
        XCTAssertEqual(try convert(h, .f16, .q8_0, [8, 64]), encode(x.map { halfToFloat(floatToHalf($0)) }, .q8_0))
    }

    func testIntegerConversionsAreRejected() {
        let ints: [DType] = [.i8, .i16, .i32, .i64, .u8, .bool]
        for a in ints {
            for b in DType.allCases where b != a {
                let src = [UInt8](repeating: 0, count: a.byteCount(shape: [256])!)
                assertThrows(TSLMError.self, "\(a) → \(b)", { try self.convert(src, a, b, [256]) }) {
                    if case let .unsupportedDType(_, tensor, dtype) = $0 { return tensor == "x" && dtype.contains("\(a)") } else { return false }
                }
                let fsrc = [UInt8](repeating: 0, count: b.byteCount(shape: [256])!)
                assertThrows(TSLMError.self, "\(b) → \(a)", { try self.convert(fsrc, b, a, [256]) }) {
                    if case .unsupportedDType = $0 { return true } else { return false }
                }
            }
        }
    }

    func testBadShapesAreRejected() {
        assertThrows(TSLMError.self, "q8_0 with an inner dim of 40", { try self.convert([UInt8](repeating: 0, count: 160), .f32, .q8_0, [40]) }) {
            if case .invalidShape(_, "x", [40], _) = $0 { return true } else { return false }
        }
        assertThrows(TSLMError.self, "q4_0 scalar", { try self.convert([0, 0, 0, 0], .f32, .q4_0, []) }) {
            if case .invalidShape = $0 { return true } else { return false }
        }
    }

    func testZeroSizedConversion() throws {
        XCTAssertEqual(try convert([], .f32, .q8_0, [0, 32]), [])
        XCTAssertEqual(try convert([], .f16, .f32, [5, 0]), [])
    }

    /// Chunking: the pivot holds ⌊2²⁰ / inner⌋ rows; conversions that span several chunks must
    /// equal a one-shot conversion of the whole tensor.
    func testChunkBoundariesForQuantizedTypes() throws {
        var rng = SplitMix64(seed: 4)
        let shapes: [[Int]] = [
            [1_048_576 + 64],        // one long row: a single chunk the size of the row
            [32_770, 32],            // 32,768 rows per chunk, then 2 more
            [10_930, 96],            // 10,922 rows of 96 per chunk (1,048,512 elements), then 8
        ]
        for shape in shapes {
            let n = shape.reduce(1, *)
            XCTAssertGreaterThan(n, 1 << 20)
            let x = (0..<n).map { _ in rng.normal() }
            let src = bytesOf(x)
            for q in [DType.q8_0, .q4_0, .q4_1] {
                let whole = encode(x, q)
                let viaConvert = try convert(src, .f32, q, shape)
                XCTAssertTrue(viaConvert == whole, "f32 → \(q) \(shape)")
                // And back, plus block → f16 (two chunked passes of the other direction).
                let deq = try convert(whole, q, .f32, shape)
                XCTAssertTrue(deq == bytesOf(decode(whole, q, count: n)), "\(q) → f32 \(shape)")
            }
            let h = try convert(src, .f32, .f16, shape)
            XCTAssertTrue(h == bytesOf(x.map(floatToHalf)), "f32 → f16 \(shape)")
            XCTAssertTrue(try convert(h, .f16, .q8_0, shape) == encode(x.map { halfToFloat(floatToHalf($0)) }, .q8_0))
        }
    }
}
