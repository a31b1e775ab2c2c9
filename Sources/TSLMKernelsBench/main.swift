// Matrix–vector benchmark: GB/s of weight bytes read, per dtype, 1 and 2 threads.
// Run: swift run -c release TSLMKernelsBench [rows] [cols]
import TSLMFormat
import Foundation
import TSLMKernels
#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

let args = CommandLine.arguments
// `TSLMKernelsBench q8act`: only the q8_0 activation comparison at the end.
let onlyQ8Activations = args.count > 1 && args[1] == "q8act"
let rows = onlyQ8Activations ? 32 : (args.count > 1 ? Int(args[1]) ?? 2048 : 2048)
let cols = args.count > 2 ? Int(args[2]) ?? 8192 : 8192
let ntok = args.count > 3 ? Int(args[3]) ?? 64 : 64
var state: UInt64 = 12345
@MainActor func rnd() -> Float {
    state = state &* 6364136223846793005 &+ 1442695040888963407
    return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
}
let values = (0..<(rows * cols)).map { _ in rnd() }
let x = (0..<(cols * ntok)).map { _ in rnd() }
var y = [Float](repeating: 0, count: rows * ntok)
let pools = [ThreadPool(threads: 1), ThreadPool(threads: 2)]
for dtype in onlyQ8Activations ? [] : [DType.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1] {
    let bytes = dtype.byteCount(shape: [rows, cols])!
    let storage = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    values.withUnsafeBufferPointer { DTypeConversion.fromFloat32($0, to: dtype, into: UnsafeMutableRawBufferPointer(start: storage, count: bytes)) }
    let w = WeightMatrix(dtype: dtype, rows: rows, cols: cols, data: storage)
    var line = "\(dtype)".padding(toLength: 6, withPad: " ", startingAt: 0) + " \(bytes / 1024) KiB:"
    for pool in pools {
        // matvec
        var best = Double.infinity
        for _ in 0..<5 {
            let reps = 20
            let t0 = now()
            for _ in 0..<reps { Kernels.matvec(w, x, &y, pool: pool) }
            best = min(best, (now() - t0) / Double(reps))
        }
        let gbs = Double(bytes) / best / 1e9
        let us = best * 1e6
        line += "  mv \(pool.threads)t " + String(format: "%6.2f GB/s (%5.0f µs)", gbs, us)
        // matmul
        var bestMM = Double.infinity
        for _ in 0..<2 {
            let t0 = now()
            Kernels.matmul(w, x, n: ntok, &y, pool: pool)
            bestMM = min(bestMM, now() - t0)
        }
        let gflops = 2 * Double(rows * cols * ntok) / bestMM / 1e9
        line += "  mm \(pool.threads)t " + String(format: "%6.1f GFLOP/s", gflops)
    }
    print(line)
    storage.deallocate()
}
// Thread-pool dispatch overhead: an almost empty job, back to back.
if !onlyQ8Activations {
    let pool = pools[1]
    var sink = 0
    let calls = 200_000
    let t0 = now()
    for _ in 0..<calls { pool.parallelFor(2) { r in if r.lowerBound == 7 { sink += 1 } } }
    let per = (now() - t0) / Double(calls) * 1e9
    print("parallelFor(2 threads) overhead: " + String(format: "%.0f ns/call", per) + (sink == 0 ? "" : "!"))
}

// q8_0 with 16-bit activations (the default) against 8-bit ones, interleaved, best of 15, at
// SmolLM2-135M's shapes: decode (1 token) and prefill (128 tokens).
print("q8_0 activations: 16-bit vs 8-bit (best of 15, interleaved)")
for (r, c) in [(576, 576), (1536, 576), (576, 1536)] {
    let vals = (0..<(r * c)).map { _ in rnd() }
    let xs = (0..<(c * 128)).map { _ in rnd() }
    var ys = [Float](repeating: 0, count: r * 128)
    let bytes = DType.q8_0.byteCount(shape: [r, c])!
    let st = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
    vals.withUnsafeBufferPointer { DTypeConversion.fromFloat32($0, to: .q8_0, into: UnsafeMutableRawBufferPointer(start: st, count: bytes)) }
    let w = WeightMatrix(dtype: .q8_0, rows: r, cols: c, data: st)
    for pool in pools {
        for n in [1, 128] {
            var best = [Double.infinity, Double.infinity]
            for _ in 0..<15 {
                for (k, wide) in [true, false].enumerated() {
                    Kernels.q8_0WideActivations = wide
                    let reps = n == 1 ? 50 : 2
                    let t0 = now()
                    for _ in 0..<reps { Kernels.matmul(w, xs, n: n, &ys, pool: pool) }
                    best[k] = min(best[k], (now() - t0) / Double(reps))
                }
            }
            print(String(format: "  %4dx%-4d n=%-3d %dt: 16-bit %8.1f µs, 8-bit %8.1f µs, ratio (8-bit time / 16-bit time) %.3f",
                         r, c, n, pool.threads, best[0] * 1e6, best[1] * 1e6, best[1] / best[0]))
        }
    }
    Kernels.q8_0WideActivations = true
    st.deallocate()
}
