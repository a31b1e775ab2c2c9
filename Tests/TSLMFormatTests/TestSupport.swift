import Foundation
import XCTest
@testable import TSLMFormat

/// Helpers of the TSLMFormat tests: fixtures and byte/float views. The seeded RNG
/// (`SplitMix64`), `makeTemporaryDirectory` and `assertThrows` come from TSLMTestSupport.

enum Fixtures {
    /// The bytes of `Fixtures/<name>` (resources of the test target).
    static func data(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> [UInt8] {
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        guard let url = Bundle.module.url(forResource: parts[0], withExtension: parts.count > 1 ? parts[1] : nil,
                                          subdirectory: "Fixtures") else {
            XCTFail("fixture \(name) not found; run tools/make_format_fixtures.py", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        return [UInt8](try Data(contentsOf: url))
    }

    /// A fixture of little-endian f32 values.
    static func floats(_ name: String) throws -> [Float] {
        let b = try data(name)
        return stride(from: 0, to: b.count, by: 4).map { i in
            Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
        }
    }
}

extension Array where Element == UInt8 {
    func u16(at o: Int) -> UInt16 { UInt16(self[o]) | UInt16(self[o + 1]) << 8 }
    func u32(at o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[o + $1]) << (8 * $1) } }
    func u64(at o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[o + $1]) << (8 * $1) } }
    mutating func setU32(_ v: UInt32, at o: Int) { for i in 0..<4 { self[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
    mutating func setU64(_ v: UInt64, at o: Int) { for i in 0..<8 { self[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
}

/// Float arrays as raw bytes and back.
func bytesOf<T>(_ a: [T]) -> [UInt8] { a.withUnsafeBytes { Array($0) } }
func floatsOf(_ p: UnsafeRawBufferPointer) -> [Float] {
    (0..<(p.count / 4)).map { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
}

/// Bitwise equality of floats, with every NaN equal to every NaN.
func sameFloat(_ a: Float, _ b: Float) -> Bool { (a.isNaN && b.isNaN) || a.bitPattern == b.bitPattern }
