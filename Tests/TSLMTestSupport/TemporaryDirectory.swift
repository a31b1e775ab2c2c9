// XCTest is importable when tests are built (`swift build --build-tests`, `swift test`), not in a
// plain release build (`swift build -c release`, `make release`), which compiles this target too.
#if canImport(XCTest)
import Foundation
import XCTest

/// A fresh temporary directory, removed when `test` ends (also when made in `setUp`). With
/// `inMemory`, it is made under /dev/shm when that exists (for tests that write thousands of
/// small files).
public func makeTemporaryDirectory(_ test: XCTestCase, prefix: String = "tslm-tests", inMemory: Bool = false) throws -> URL {
    let base = inMemory && access("/dev/shm", W_OK) == 0
        ? URL(fileURLWithPath: "/dev/shm", isDirectory: true) : FileManager.default.temporaryDirectory
    let dir = base.appendingPathComponent("\(prefix)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}
#endif
