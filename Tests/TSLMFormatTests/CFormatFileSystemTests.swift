import Foundation
import XCTest
import TSLMFormat
import TSLMTestSupport

/// `String(cFormat:)` prints what Foundation's `String(format:)` printed for the conversions the
/// CLI uses, and the `FileSystem` helpers match Foundation's path and directory answers.
final class CFormatFileSystemTests: XCTestCase {
    func testCFormatMatchesFoundation() {
        for v in [0.0, -0.0, 1, 0.5, 2.5, 1.0 / 3, -12.345678, 1e-7, 123456789.987654321, 1e300, .infinity, -.infinity, .nan] {
            for f in ["%.1f", "%.2f", "%.3f", "%.4f", "%.5f", "%.6f", "%g", "%.6g", " %8.1f", "%14.1f"] {
                XCTAssertEqual(String(cFormat: f, v), String(format: f, v), "\(f) of \(v)")
            }
        }
        for (r, c) in [(576, 1536), (49152, 576), (1, 123456)] {
            XCTAssertEqual(String(cFormat: "%5ldx%-5ld ", r, c), String(format: "%5dx%-5d ", r, c))
        }
        XCTAssertEqual(String(cFormat: "pp%ld %.1f tok/s | tg%ld %.1f tok/s | peak RSS %.2f GiB", 512, 1234.56, 128, 98.76, 0.4321),
                       String(format: "pp%d %.1f tok/s | tg%d %.1f tok/s | peak RSS %.2f GiB", 512, 1234.56, 128, 98.76, 0.4321))
        XCTAssertEqual(String(cFormat: "%ld tokens scored, %.1f s (%.1f tok/s)", 2_000_000_000, 1.25, 3.75),
                       String(format: "%d tokens scored, %.1f s (%.1f tok/s)", 2_000_000_000, 1.25, 3.75))
        // Foundation's %d read an Int as 32 bits; %ld prints all of it.
        XCTAssertEqual(String(cFormat: "%ld", Int.max), "9223372036854775807")
        // Longer than the first buffer.
        let long = String(cFormat: "%300.3f|%ld", 1.5, 7)
        XCTAssertEqual(long.count, 302)
        XCTAssertTrue(long.hasSuffix("1.500|7"))
    }

    func testPathComponentsMatchFoundation() {
        for p in ["/a/b/c.pt", "a/b/", "c.pt", "/", "/top", "models/SmolLM2-135M/", "x//y"] {
            XCTAssertEqual(FileSystem.lastPathComponent(p), URL(fileURLWithPath: p).lastPathComponent, p)
        }
        XCTAssertEqual(FileSystem.deletingLastPathComponent("a/b/c.pt"), "a/b")
        XCTAssertEqual(FileSystem.deletingLastPathComponent("/c.pt"), "/")
        XCTAssertEqual(FileSystem.deletingLastPathComponent("c.pt"), ".")
    }

    func testDirectoryEntriesWriteAndExists() throws {
        let dir = try makeTemporaryDirectory(self).path
        let bytes: [UInt8] = Array("hello".utf8)
        try bytes.withUnsafeBytes { try FileSystem.writeFile($0, to: dir + "/a.txt") }
        try bytes.withUnsafeBytes { try FileSystem.writeFile($0, to: dir + "/b.bin") }
        XCTAssertEqual(FileSystem.directoryEntries(dir)?.sorted(), ["a.txt", "b.bin"])
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/a.txt"), Data(bytes))
        XCTAssertTrue(FileSystem.exists(dir + "/a.txt"))
        XCTAssertFalse(FileSystem.exists(dir + "/missing"))
        XCTAssertNil(FileSystem.directoryEntries(dir + "/missing"))
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try FileSystem.writeFile($0, to: dir + "/missing/x") })
    }

    /// writeFile replaces a file whole, and a write that fails (the path is a non-empty folder,
    /// so the rename fails) leaves what was there and no temporary file.
    func testWriteFileReplacesThroughARename() throws {
        let dir = try makeTemporaryDirectory(self).path
        try Array("old".utf8).withUnsafeBytes { try FileSystem.writeFile($0, to: dir + "/out.txt") }
        try Array("new text".utf8).withUnsafeBytes { try FileSystem.writeFile($0, to: dir + "/out.txt") }
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/out.txt"), Data("new text".utf8))
        try FileManager.default.createDirectory(atPath: dir + "/folder", withIntermediateDirectories: false)
        try Array("x".utf8).withUnsafeBytes { try FileSystem.writeFile($0, to: dir + "/folder/keep") }
        XCTAssertThrowsError(try Array("y".utf8).withUnsafeBytes { try FileSystem.writeFile($0, to: dir + "/folder") })
        XCTAssertEqual(FileSystem.directoryEntries(dir)?.sorted(), ["folder", "out.txt"], "no temporary file left")
        XCTAssertEqual(FileSystem.directoryEntries(dir + "/folder"), ["keep"])
    }
}
