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
let rows = args.count > 1 ? Int(args[1]) ?? 2048 : 2048
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
for dtype in [DType.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1] {
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
do {
    let pool = pools[1]
    var sink = 0
    let calls = 200_000
    let t0 = now()
    for _ in 0..<calls { pool.parallelFor(2) { r in if r.lowerBound == 7 { sink += 1 } } }
    let per = (now() - t0) / Double(calls) * 1e9
    print("parallelFor(2 threads) overhead: " + String(format: "%.0f ns/call", per) + (sink == 0 ? "" : "!"))
}
