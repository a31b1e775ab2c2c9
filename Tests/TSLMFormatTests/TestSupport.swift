import Foundation
import XCTest
@testable import TSLMFormat

/// Shared helpers of the TSLMFormat tests: fixtures, a seeded RNG, temporary directories and
/// an assertion that an expression throws one specific `TSLMError` case.

/// SplitMix64: a tiny seeded generator so that every "random" test input is reproducible.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A standard normal sample (Box–Muller), as Float.
    mutating func normal() -> Float {
        let u1 = Double(next() >> 11 | 1) / Double(1 << 53)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }

    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

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

/// A fresh temporary directory, removed when the test ends. With `inMemory`, it is made under
/// /dev/shm when that exists (for tests that write thousands of small files).
func makeTemporaryDirectory(_ test: XCTestCase, inMemory: Bool = false) throws -> URL {
    let base = inMemory && access("/dev/shm", W_OK) == 0
        ? URL(fileURLWithPath: "/dev/shm", isDirectory: true) : FileManager.default.temporaryDirectory
    let dir = base.appendingPathComponent("tslm-format-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

/// Asserts that `body` throws a `TSLMError` for which `matches` is true (a pattern match on
/// the specific case), and returns the error for further checks.
@discardableResult
func assertThrowsTSLM<T>(_ what: String, _ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line,
                         _ matches: (TSLMError) -> Bool) -> TSLMError? {
    do {
        _ = try body()
        XCTFail("\(what): expected an error, nothing was thrown", file: file, line: line)
        return nil
    } catch let e as TSLMError {
        XCTAssertTrue(matches(e), "\(what): unexpected error case: \(e)", file: file, line: line)
        return e
    } catch {
        XCTFail("\(what): expected a TSLMError, got \(error)", file: file, line: line)
        return nil
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
