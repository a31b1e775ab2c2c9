import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// `verify()` covers every byte of a file (issue 14): the header and index by their checksums,
/// tensors by theirs, and the padding between tensors (which no checksum covers) by requiring
/// it to be zero, as the format says. Every single-bit flip of a small file is detected.
final class TSLMPaddingVerifyTests: XCTestCase {
    /// Two tensors of 20 and 36 bytes: 44 + 28 bytes of padding before the index.
    func makeFile(_ dir: URL) throws -> (path: String, bytes: [UInt8]) {
        let path = dir.appendingPathComponent("padded.tslm").path
        var md = Metadata()
        md["general.architecture"] = .string("raw")
        let w = try TSLMWriter(path: path, metadata: md)
        try [UInt8](repeating: 7, count: 20).withUnsafeBytes { try w.addTensor(name: "a", dtype: .f32, shape: [5], data: $0) }
        try [UInt8](repeating: 9, count: 36).withUnsafeBytes { try w.addTensor(name: "b", dtype: .f32, shape: [9], data: $0) }
        try w.finish()
        return (path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    func testPaddingFlipIsDetected() throws {
        let dir = try makeTemporaryDirectory(self)
        let (path, bytes) = try makeFile(dir)
        try TSLMFile(path: path).verify()
        let padding = [64 + 20, 64 + 63, 128 + 36, 128 + 63]
        for at in padding {
            XCTAssertEqual(bytes[at], 0)
            var damaged = bytes
            damaged[at] ^= 0x10
            try Data(damaged).write(to: URL(fileURLWithPath: path))
            let file = try TSLMFile(path: path)  // opening does not read the padding
            XCTAssertThrowsError(try file.verify(), "padding byte \(at)") { error in
                XCTAssertTrue("\(error)".contains("padding byte at offset \(at)"), "\(error)")
            }
        }
    }

    func testEverySingleBitFlipIsDetected() throws {
        let dir = try makeTemporaryDirectory(self, inMemory: true)
        let (path, bytes) = try makeFile(dir)
        var undetected: [(Int, Int)] = []
        for at in bytes.indices {
            for bit in 0..<8 {
                var damaged = bytes
                damaged[at] ^= UInt8(1 << bit)
                try Data(damaged).write(to: URL(fileURLWithPath: path))
                if (try? TSLMFile(path: path).verify()) != nil { undetected.append((at, bit)) }
            }
        }
        XCTAssertTrue(undetected.isEmpty, "\(undetected.count) of \(bytes.count * 8) flips undetected, first \(undetected.prefix(5))")
    }
}
