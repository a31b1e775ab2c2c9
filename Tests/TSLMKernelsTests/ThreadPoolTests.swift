import XCTest
import Synchronization
@testable import TSLMKernels

final class ThreadPoolTests: XCTestCase {
    /// Runs parallelFor and checks that every index is visited exactly once, that chunks are
    /// contiguous, at most `threads` of them, and at least `grain` long when n allows.
    func checkCoverage(_ pool: ThreadPool, n: Int, grain: Int, file: StaticString = #filePath, line: UInt = #line) {
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(1, n))
        counts.initialize(repeating: 0, count: max(1, n))
        defer { counts.deallocate() }
        let chunks = Atomic<Int>(0)
        let shortChunks = Atomic<Int>(0)
        pool.parallelFor(n, grain: grain) { range in
            chunks.add(1, ordering: .relaxed)
            if range.count < min(grain, n) { shortChunks.add(1, ordering: .relaxed) }
            for i in range { counts[i] += 1 }
        }
        for i in 0..<n where counts[i] != 1 {
            XCTFail("n=\(n) grain=\(grain) threads=\(pool.threads): index \(i) visited \(counts[i]) times", file: file, line: line)
            return
        }
        XCTAssertLessThanOrEqual(chunks.load(ordering: .relaxed), pool.threads, file: file, line: line)
        XCTAssertEqual(shortChunks.load(ordering: .relaxed), 0, "n=\(n) grain=\(grain)", file: file, line: line)
        if n == 0 { XCTAssertEqual(chunks.load(ordering: .relaxed), 0, file: file, line: line) }
    }

    func testEveryIndexExactlyOnce() {
        for threads in [1, 2, 3, 4] {
            let pool = ThreadPool(threads: threads)
            XCTAssertEqual(pool.threads, threads)
            for n in [0, 1, 2, 3, 7, 64, 100, 1001] {
                for grain in [1, 2, 5, 64, 2000] { checkCoverage(pool, n: n, grain: grain) }
            }
        }
    }

    func testForEachItemTakesEveryItemOnce() {
        for pool in [nil, ThreadPool(threads: 1), ThreadPool(threads: 2), ThreadPool(threads: 4)] {
            for n in [0, 1, 2, 5, 97, 1000] {
                let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(1, n))
                counts.initialize(repeating: 0, count: max(1, n))
                defer { counts.deallocate() }
                let calls = Atomic<Int>(0)
                ThreadPool.forEachItem(n, pool: pool) { next in
                    calls.add(1, ordering: .relaxed)
                    while let i = next() { counts[i] += 1 }
                }
                for i in 0..<n where counts[i] != 1 {
                    XCTFail("n=\(n) threads=\(pool?.threads ?? 0): item \(i) taken \(counts[i]) times")
                }
                // One body call per thread (one inline without a pool or for a single item).
                let expected = n == 0 ? 0 : n == 1 || pool == nil ? 1 : pool!.threads
                XCTAssertEqual(calls.load(ordering: .relaxed), expected, "n=\(n) threads=\(pool?.threads ?? 0)")
            }
        }
        // Items of unequal cost: a thread that is kept busy takes fewer of them.
        let pool = ThreadPool(threads: 2)
        let perThread = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        perThread.initialize(repeating: 0, count: 2)
        defer { perThread.deallocate() }
        let slot = Atomic<Int>(0)
        ThreadPool.forEachItem(40, pool: pool) { next in
            let me = slot.add(1, ordering: .relaxed).oldValue
            while next() != nil {
                perThread[me] += 1
                if me == 0 { usleep(2_000) }
            }
        }
        XCTAssertEqual(perThread[0] + perThread[1], 40)
        XCTAssertGreaterThan(perThread[1], perThread[0])
    }

    func testUsesWorkersWhenAllowed() {
        let pool = ThreadPool(threads: 2)
        let chunks = Atomic<Int>(0)
        pool.parallelFor(100, grain: 10) { _ in chunks.add(1, ordering: .relaxed) }
        XCTAssertEqual(chunks.load(ordering: .relaxed), 2)
    }

    func testRepeatedCalls() {
        let pool = ThreadPool(threads: 2)
        let total = Atomic<Int>(0)
        for i in 0..<10_000 {
            let n = 1 + i % 97
            pool.parallelFor(n) { range in total.add(range.count, ordering: .relaxed) }
        }
        let expected = (0..<10_000).reduce(0) { $0 + 1 + $1 % 97 }
        XCTAssertEqual(total.load(ordering: .relaxed), expected)
        checkCoverage(pool, n: 1000, grain: 1)
    }

    func testNestedCallsRunInline() {
        let pool = ThreadPool(threads: 2)
        let total = Atomic<Int>(0)
        pool.parallelFor(8) { outer in
            for _ in outer {
                pool.parallelFor(10) { inner in total.add(inner.count, ordering: .relaxed) }
            }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 80)
    }

    func testPoolsCanBeCreatedAndDropped() {
        for _ in 0..<50 {
            let pool = ThreadPool(threads: 3)
            checkCoverage(pool, n: 30, grain: 1)
        }
        XCTAssertEqual(ThreadPool(threads: 0).threads, 1)
    }

    func testConcurrentSubmittersShareOnePool() {
        let pool = ThreadPool(threads: 2)
        let total = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<500 { pool.parallelFor(16) { total.add($0.count, ordering: .relaxed) } }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 4 * 500 * 16)
    }
}
