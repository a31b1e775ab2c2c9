import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// The block layouts (`BlockLayouts.swift`) against `MemoryLayout`, `DType`, and the bytes the
/// reference quantizers write.
final class BlockLayoutTests: XCTestCase {
    func testSizesAndOffsetsMatchMemoryLayout() {
        XCTAssertEqual(MemoryLayout<BlockQ8_0>.size, BlockQ8_0.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ8_0>.stride, BlockQ8_0.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ8_0>.offset(of: \.d), 0)
        XCTAssertEqual(MemoryLayout<BlockQ8_0>.offset(of: \.qs), BlockQ8_0.qsOffset)
        XCTAssertEqual(MemoryLayout.size(ofValue: BlockQ8_0(d: 0, qs: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                                                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).qs),
                       BlockQ8_0.weights)

        XCTAssertEqual(MemoryLayout<BlockQ4_0>.size, BlockQ4_0.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ4_0>.stride, BlockQ4_0.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ4_0>.offset(of: \.d), 0)
        XCTAssertEqual(MemoryLayout<BlockQ4_0>.offset(of: \.qs), BlockQ4_0.qsOffset)
        XCTAssertEqual(BlockQ4_0.byteCount - BlockQ4_0.qsOffset, BlockQ4_0.weights / 2)

        XCTAssertEqual(MemoryLayout<BlockQ4_1>.size, BlockQ4_1.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ4_1>.stride, BlockQ4_1.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ4_1>.offset(of: \.d), 0)
        XCTAssertEqual(MemoryLayout<BlockQ4_1>.offset(of: \.m), BlockQ4_1.mOffset)
        XCTAssertEqual(MemoryLayout<BlockQ4_1>.offset(of: \.qs), BlockQ4_1.qsOffset)
        XCTAssertEqual(BlockQ4_1.byteCount - BlockQ4_1.qsOffset, BlockQ4_1.weights / 2)

        // ggml's numbers, and DType's view of them.
        XCTAssertEqual([BlockQ8_0.byteCount, BlockQ4_0.byteCount, BlockQ4_1.byteCount], [34, 18, 20])
        XCTAssertEqual([BlockQ8_0.weights, BlockQ4_0.weights, BlockQ4_1.weights], [32, 32, 32])
        XCTAssertEqual([DType.q8_0, .q4_0, .q4_1].map(\.bytesPerBlock), [34, 18, 20])
        XCTAssertEqual([DType.q8_0, .q4_0, .q4_1].map(\.blockSize), [32, 32, 32])
        XCTAssertEqual(BlockQuantization.blockSize, 32)
        XCTAssertEqual(DType.q4_1.byteCount(shape: [3, 64]), 3 * 2 * 20)
    }

    /// A block written by the reference quantizer, loaded as the struct, decodes to what the
    /// reference dequantizer gives: the struct fields sit where the byte code writes them.
    func testQuantizerBytesLoadAsTheStructs() {
        var rng = SplitMix64(seed: 34_18_20)
        let x = (0..<64).map { _ in rng.normal() * 3 }
        func run(_ bytesPerBlock: Int, _ q: (UnsafeBufferPointer<Float>, UnsafeMutableRawBufferPointer) -> Void,
                 _ dq: (UnsafeRawBufferPointer, UnsafeMutableBufferPointer<Float>) -> Void) -> (bytes: [UInt8], values: [Float]) {
            var bytes = [UInt8](repeating: 0, count: x.count / 32 * bytesPerBlock)
            var values = [Float](repeating: .nan, count: x.count)
            x.withUnsafeBufferPointer { src in bytes.withUnsafeMutableBytes { q(src, $0) } }
            bytes.withUnsafeBytes { src in values.withUnsafeMutableBufferPointer { dq(src, $0) } }
            return (bytes, values)
        }

        let q8 = run(BlockQ8_0.byteCount, BlockQuantization.quantizeQ8_0, BlockQuantization.dequantizeQ8_0)
        for b in 0..<2 {
            let block = q8.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: b * BlockQ8_0.byteCount, as: BlockQ8_0.self) }
            let qs = withUnsafeBytes(of: block.qs) { Array($0.bindMemory(to: Int8.self)) }
            let d = halfToFloat(UInt16(littleEndian: block.d))
            XCTAssertEqual(qs.map { Float($0) * d }, Array(q8.values[(32 * b)..<(32 * b + 32)]))
        }

        let q40 = run(BlockQ4_0.byteCount, BlockQuantization.quantizeQ4_0, BlockQuantization.dequantizeQ4_0)
        for b in 0..<2 {
            let block = q40.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: b * BlockQ4_0.byteCount, as: BlockQ4_0.self) }
            let qs = withUnsafeBytes(of: block.qs) { Array($0) }
            let d = halfToFloat(UInt16(littleEndian: block.d))
            let expected = qs.map { Float(Int($0 & 0x0F) - 8) * d } + qs.map { Float(Int($0 >> 4) - 8) * d }
            XCTAssertEqual(expected, Array(q40.values[(32 * b)..<(32 * b + 32)]))
        }

        let q41 = run(BlockQ4_1.byteCount, BlockQuantization.quantizeQ4_1, BlockQuantization.dequantizeQ4_1)
        for b in 0..<2 {
            let block = q41.bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: b * BlockQ4_1.byteCount, as: BlockQ4_1.self) }
            let qs = withUnsafeBytes(of: block.qs) { Array($0) }
            let d = halfToFloat(UInt16(littleEndian: block.d)), m = halfToFloat(UInt16(littleEndian: block.m))
            let expected = qs.map { Float($0 & 0x0F) * d + m } + qs.map { Float($0 >> 4) * d + m }
            XCTAssertEqual(expected, Array(q41.values[(32 * b)..<(32 * b + 32)]))
        }
    }
}

final class KQuantLayoutTests: XCTestCase {
    func testKQuantSizesAndOffsetsMatchMemoryLayout() {
        XCTAssertEqual(MemoryLayout<BlockQ4_K>.size, BlockQ4_K.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ4_K>.stride, BlockQ4_K.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ4_K>.offset(of: \.dmin), BlockQ4_K.dminOffset)
        XCTAssertEqual(MemoryLayout<BlockQ4_K>.offset(of: \.scales), BlockQ4_K.scalesOffset)
        XCTAssertEqual(MemoryLayout<BlockQ4_K>.offset(of: \.qs), BlockQ4_K.qsOffset)

        XCTAssertEqual(MemoryLayout<BlockQ5_K>.size, BlockQ5_K.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ5_K>.stride, BlockQ5_K.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ5_K>.offset(of: \.dmin), BlockQ5_K.dminOffset)
        XCTAssertEqual(MemoryLayout<BlockQ5_K>.offset(of: \.scales), BlockQ5_K.scalesOffset)
        XCTAssertEqual(MemoryLayout<BlockQ5_K>.offset(of: \.qh), BlockQ5_K.qhOffset)
        XCTAssertEqual(MemoryLayout<BlockQ5_K>.offset(of: \.qs), BlockQ5_K.qsOffset)

        XCTAssertEqual(MemoryLayout<BlockQ6_K>.size, BlockQ6_K.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ6_K>.stride, BlockQ6_K.byteCount)
        XCTAssertEqual(MemoryLayout<BlockQ6_K>.offset(of: \.ql), BlockQ6_K.qlOffset)
        XCTAssertEqual(MemoryLayout<BlockQ6_K>.offset(of: \.qh), BlockQ6_K.qhOffset)
        XCTAssertEqual(MemoryLayout<BlockQ6_K>.offset(of: \.scales), BlockQ6_K.scalesOffset)
        XCTAssertEqual(MemoryLayout<BlockQ6_K>.offset(of: \.d), BlockQ6_K.dOffset)

        // ggml's numbers (GGUF type ids 12, 13, 14), and DType's view of them.
        XCTAssertEqual([DType.q4_k, .q5_k, .q6_k].map(\.bytesPerBlock), [144, 176, 210])
        XCTAssertEqual([DType.q4_k, .q5_k, .q6_k].map(\.blockSize), [256, 256, 256])
        XCTAssertEqual([DType.q4_k, .q5_k, .q6_k].map(\.rawValue), [19, 20, 21])
        XCTAssertEqual(DType.q6_k.byteCount(shape: [3, 512]), 3 * 2 * 210)
        XCTAssertNil(DType.q4_k.byteCount(shape: [3, 576]))  // rows must be whole super-blocks
        XCTAssertEqual(DType(name: "Q4_K"), .q4_k)
        XCTAssertTrue(DType.q5_k.isKQuant && DType.q5_k.isQuantized && DType.q5_k.isFloatingPoint)
        XCTAssertFalse(DType.q4_1.isKQuant)
    }
}
