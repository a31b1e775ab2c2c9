#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels

/// `tslm bench --kernels`: the matrix kernels alone on random weights of the backbones' shapes,
/// best of several runs (the least disturbed by other work on the machine):
/// decode (matrix × one vector) in GB/s of weights streamed, prefill (× 128 tokens) in GFLOP/s,
/// the GEMM path next to the row-dot path it replaced.
enum KernelBench {
    struct Shape { let name: String; let rows: Int; let cols: Int }

    static let shapes = [
        Shape(name: "SmolLM2 q/o", rows: 576, cols: 576),
        Shape(name: "SmolLM2 gate/up", rows: 1536, cols: 576),
        Shape(name: "SmolLM2 down", rows: 576, cols: 1536),
        Shape(name: "1B q/o", rows: 2048, cols: 2048),
        Shape(name: "1B gate/up", rows: 8192, cols: 2048),
        Shape(name: "1B down", rows: 2048, cols: 8192),
    ]

    nonisolated(unsafe) static var threadsInUse = 1

    static func run(threads: Int, repetitions: Int, tokens: Int, only: String?) {
        threadsInUse = threads
        let pool = ThreadPool(threads: threads)
        print("matrix kernels, \(threads) thread(s), best of \(repetitions) (\(threads == 1 ? "thread CPU time" : "wall-clock")); decode: GB/s of weights, prefill (\(tokens) tokens): GFLOP/s")
        print("shape                       dtype   decode GB/s   prefill GEMM   prefill row-dot")
        var rng: UInt64 = 7
        for s in shapes where only.map({ s.name.lowercased().contains($0.lowercased()) }) ?? true {
            let values = (0..<(s.rows * s.cols)).map { _ -> Float in
                rng = rng &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: rng) >> 40) / Float(1 << 23) * 0.05
            }
            let x = (0..<(tokens * s.cols)).map { i in sinf(Float(i) * 0.37) }
            var y = [Float](repeating: 0, count: tokens * s.rows)
            // The K types where a row is whole 256-weight super-blocks (not SmolLM2's 576).
            for dtype in [DType.f16, .q8_0, .q4_0] + (s.cols % 256 == 0 ? [.q4_k, .q5_k, .q6_k] : []) {
                let bytes = dtype.byteCount(shape: [s.rows, s.cols])!
                let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
                defer { storage.deallocate() }
                values.withUnsafeBufferPointer {
                    DTypeConversion.fromFloat32($0, to: dtype, into: UnsafeMutableRawBufferPointer(start: storage, count: bytes))
                }
                let w = WeightMatrix(dtype: dtype, rows: s.rows, cols: s.cols, data: storage)
                // Decode: enough calls per sample for ~2 ms.
                let calls = max(1, 2_000_000 / max(1, bytes / 10))
                let decode = best(repetitions) {
                    x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                        for _ in 0..<calls { Kernels.matvec(w, xp.baseAddress!, yp.baseAddress!, pool: pool) }
                    } }
                } / Double(calls)
                func prefill(gemm: Bool) -> Double {
                    Kernels.prefillGemm = gemm
                    defer { Kernels.prefillGemm = true }
                    return best(repetitions) {
                        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                            Kernels.matmul(w, xp.baseAddress!, n: tokens, yp.baseAddress!, pool: pool)
                        } }
                    }
                }
                let flops = 2 * Double(s.rows) * Double(s.cols) * Double(tokens)
                let gemm = prefill(gemm: true), rowdot = prefill(gemm: false)
                let label = (s.name + String(repeating: " ", count: 16)).prefix(16) + String(cFormat: "%5ldx%-5ld ", s.rows, s.cols)
                print(label + (dtype.description + "     ").prefix(6) + String(cFormat: " %8.1f %14.1f %15.1f",
                             Double(bytes) / decode / 1e9, flops / gemm / 1e9, flops / rowdot / 1e9))
            }
        }
    }

    /// The shortest of `n` timings of `body`, in seconds.
    static func best(_ n: Int, _ body: () -> Void) -> Double {
        // One thread: the thread's CPU time (robust when other work shares the cores); more:
        // wall-clock time.
        let clock = threadsInUse == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC
        body()  // warm-up
        var t = Double.infinity
        for _ in 0..<n {
            var a = timespec(), b = timespec()
            clock_gettime(clock, &a)
            body()
            clock_gettime(clock, &b)
            t = min(t, Double(b.tv_sec - a.tv_sec) + Double(b.tv_nsec - a.tv_nsec) * 1e-9)
        }
        return t
    }
}
