import XCTest
@testable import TSLMRuntime

/// Absurd context lengths are refused before anything is allocated (issue 14, limits).
final class KVCacheLimitTests: XCTestCase {
    func testContextOfOneBillionPositionsIsRefused() {
        XCTAssertThrowsError(try KVCache(layers: 30, capacity: 1_000_000_000, width: 192, half: true)) { error in
            XCTAssertTrue("\(error)".contains("too large"), "\(error)")
        }
        XCTAssertThrowsError(try KVCache(layers: Int.max / 2, capacity: 3, width: 3, half: false))
    }

    func testCacheLargerThanPhysicalMemoryIsRefused() throws {
        // 2^36 elements (the element cap) of f32: 256 GiB.
        let bytes = (1 << 36) * 4
        try XCTSkipIf(KVCache.physicalMemory >= bytes, "this machine has \(KVCache.physicalMemory) bytes of memory")
        XCTAssertThrowsError(try KVCache(layers: 1, capacity: 1 << 30, width: 32, half: false)) { error in
            XCTAssertTrue("\(error)".contains("more than this machine's"), "\(error)")
        }
    }

    func testOrdinaryCacheIsAllocated() throws {
        let cache = try KVCache(layers: 2, capacity: 64, width: 32, half: true)
        XCTAssertEqual(cache.byteCount, 2 * 2 * 64 * 32 * 2)
    }
}
