#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A persistent pool of worker threads for data-parallel loops.
///
/// The workers are created once (pthreads) and wait between jobs: they spin briefly on a
/// generation counter, then block on a condition variable, so that back-to-back calls (one per
/// matrix–vector product during decoding) cost a few hundred nanoseconds, not a thread wake-up.
///
/// `threads` counts the calling thread: a pool of `threads: 2` has one worker, and the caller
/// runs the first chunk of every job itself. `threads: 1` runs everything inline.
///
/// A job that is submitted while another is running on the same pool (from a worker, from the
/// body itself, or from another thread) runs inline on its caller, so nested use never
/// deadlocks.
public final class ThreadPool: @unchecked Sendable {
    /// Total threads that run a job, the caller included (at least 1).
    public let threads: Int
    private let state: PoolState
    /// Set while a job is in flight; a second submitter runs inline instead.
    private let busy = Atomic<Bool>(false)
    /// The worker threads, joined when the pool goes away (so nothing outlives it).
    private let workers: [pthread_t]

    /// Creates a pool with `threads - 1` workers (values below 1 count as 1).
    public init(threads: Int) {
        let count = max(1, threads)
        var started = 1
        let state = PoolState(workers: count - 1)
        var workers: [pthread_t] = []
        for index in 1..<count {
            let context = WorkerContext(state: state, index: index)
            guard let thread = startWorker(context) else { break }
            workers.append(thread)
            started += 1
        }
        self.workers = workers
        // If the system refused a thread, run with what we got (chunks are per started thread).
        state.workerCount = started - 1
        self.threads = started
        self.state = state
    }

    deinit {
        state.shutDown()
        for thread in workers { pthread_join(thread, nil) }
    }

    /// Splits `0..<n` into at most `threads` contiguous chunks of at least `grain` items (the
    /// last ones may be one item longer), runs `body` on each chunk in parallel and returns
    /// when all chunks are done. The caller runs the first chunk.
    public func parallelFor(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard n > 0 else { return }
        let chunks = min(threads, max(1, n / max(1, grain)))
        if chunks == 1 || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            body(0..<n)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            state.run(n: n, chunks: chunks, body: escapable)
        }
        busy.store(false, ordering: .releasing)
    }

    /// Runs `body` once on each thread of the pool (once inline without a pool or when the pool
    /// is busy); each call takes items from `0..<n` with `next()` until it returns nil, so
    /// items of unequal cost end up balanced however fast each thread runs. `body` sets up its
    /// own scratch once per thread.
    public static func forEachItem(_ n: Int, pool: ThreadPool?, _ body: (_ next: () -> Int?) -> Void) {
        guard n > 0 else { return }
        let counter = ItemCounter()
        let next: () -> Int? = {
            let i = counter.value.add(1, ordering: .relaxed).oldValue
            return i < n ? i : nil
        }
        guard let pool, pool.threads > 1, n > 1 else {
            body(next)
            return
        }
        pool.parallelFor(pool.threads, grain: 1) { range in
            for _ in range { body(next) }
        }
    }
}

/// The shared item counter of `ThreadPool.forEachItem`.
private final class ItemCounter: Sendable {
    let value = Atomic<Int>(0)
}

/// The shared state of a pool: the current job, the counters and the parking lot. Workers keep
/// it alive until they exit, so it outlives the `ThreadPool` object that owns it.
final class PoolState: @unchecked Sendable {
    /// Bumped once per job and once at shutdown; workers wait for it to change.
    let generation = Atomic<Int>(0)
    /// Workers that have not yet finished (or skipped) the current job.
    let remaining = Atomic<Int>(0)
    /// Workers parked on the condition variable.
    let sleepers = Atomic<Int>(0)
    let stopping = Atomic<Bool>(false)
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    let condition: UnsafeMutablePointer<pthread_cond_t>
    var workerCount: Int
    // The job, written by the submitter before `generation` is bumped (release) and read by
    // workers after they see the new generation (acquire).
    var jobN = 0
    var jobChunks = 0
    var jobBody: ((Range<Int>) -> Void)?

    /// Iterations a worker spins (re-reading `generation`) before parking. 20,000 let workers
    /// park within a decode step (the caller's serial work between jobs: attention over a short
    /// context, norms, sampling) and a quarter of decode went to futex wake-ups and context
    /// switches; 200,000 removed them from the profile (SmolLM2 q4_0/q8_0 decode, 2 threads,
    /// 1.0–1.3× in 6 interleaved pairs each). A worker burns at most this spin after the last job.
    static let spinLimit = 200_000

    init(workers: Int) {
        workerCount = workers
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// The bounds of chunk `index` of `chunks` over `0..<n`.
    @inline(__always) static func chunk(_ index: Int, of chunks: Int, n: Int) -> Range<Int> {
        (n * index / chunks)..<(n * (index + 1) / chunks)
    }

    func run(n: Int, chunks: Int, body: @escaping (Range<Int>) -> Void) {
        jobN = n
        jobChunks = chunks
        jobBody = body
        // Every worker acknowledges every job (even with no chunk to run), so that none can
        // still be reading this job's fields when the next job is written.
        remaining.store(workerCount, ordering: .relaxed)
        wake()
        body(PoolState.chunk(0, of: chunks, n: n))
        var spins = 0
        while remaining.load(ordering: .acquiring) != 0 {
            spins += 1
            if spins < 1000 { cpuRelax() } else { sched_yield() }
        }
        jobBody = nil
    }

    /// Publishes a new generation and wakes parked workers.
    private func wake() {
        generation.add(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex)
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
    }

    func shutDown() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        wake()
    }

    /// The worker loop: wait for a new generation, run this worker's chunk, repeat.
    func workerLoop(index: Int) {
        // Generation 0 is the state at creation: a job submitted before this thread got here
        // has generation 1 and is not missed.
        var seen = 0
        while true {
            var current = generation.load(ordering: .acquiring)
            var spins = 0
            while current == seen {
                if spins < PoolState.spinLimit {
                    spins += 1
                    cpuRelax()
                } else {
                    pthread_mutex_lock(mutex)
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen {
                        pthread_cond_wait(condition, mutex)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_unlock(mutex)
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            let chunks = jobChunks
            if index < chunks, let body = jobBody {
                body(PoolState.chunk(index, of: chunks, n: jobN))
            }
            remaining.subtract(1, ordering: .releasing)
        }
    }
}

/// What a worker thread is started with.
final class WorkerContext {
    let state: PoolState
    let index: Int
    init(state: PoolState, index: Int) {
        self.state = state
        self.index = index
    }
}

/// Starts one worker thread; nil if the system refused.
private func startWorker(_ context: WorkerContext) -> pthread_t? {
    let raw = Unmanaged.passRetained(context).toOpaque()
    #if canImport(Glibc)
    var thread = pthread_t()
    #else
    var thread: pthread_t?
    #endif
    let rc = pthread_create(&thread, nil, { arg in
        guard let arg else { return nil }
        let context = Unmanaged<WorkerContext>.fromOpaque(arg).takeRetainedValue()
        context.state.workerLoop(index: context.index)
        return nil
    }, raw)
    if rc != 0 {
        Unmanaged<WorkerContext>.fromOpaque(raw).release()
        return nil
    }
    return thread
}

/// One spin-wait step: nothing, the spin re-loads the atomic; it is bounded, then the thread
/// parks. Measured on this project's machine kind (a 2-vCPU cloud VM, Zen 4): spinning with the
/// x86 `pause` instruction (through a C inline function) made SmolLM2 q4_0 decode with 2
/// threads 3–5× slower (6 vs 22–30 tok/s), as the hypervisor's pause-loop exiting deschedules a
/// vCPU that pauses in a loop.
@inline(__always) func cpuRelax() {}
