import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels
import TSLMRuntime

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt (prefill) and generation (decode) speed, like llama-bench.",
        discussion: """
        Runs a prompt of -p tokens, then -n single-token decode steps, -r times, and prints the \
        median tokens/s of each. Token ids are fixed pseudo-random ids (speed does not depend on \
        them). Peak RSS of the process is printed too.

        With --kernels (no model), the matrix kernels alone run on random weights of the \
        SmolLM2-135M and Llama-3.2-1B shapes at f16, q8_0 and q4_0: decode (one vector) in GB/s \
        of weights streamed, prefill (-p tokens, default 128) in GFLOP/s for the GEMM path and \
        the row-dot path; best of -r runs.

        Examples:
          tslm bench -m smollm2-q4_0.tslm -p 128 -n 64 -t 2
          tslm bench --kernels -t 1 -r 9
          tslm bench --kernels --shape smollm2 -t 2
        """
    )

    @Option(name: .shortAndLong, help: "A .tslm model file.")
    var model: String?

    @Flag(name: .long, help: "Benchmark the matrix kernels alone (no model).")
    var kernels = false

    @Option(name: .long, help: "With --kernels: only shapes whose name contains this (e.g. smollm2, 1b, down).")
    var shape: String?

    @Option(name: .short, help: "Prompt tokens.")
    var p: Int = 128

    @Option(name: .short, help: "Generated tokens.")
    var n: Int = 64

    @Option(name: .short, help: "Repetitions (the median is reported).")
    var r: Int = 3

    @Option(name: .shortAndLong, help: "Worker threads.")
    var threads: Int = activeProcessorCount()

    @Option(name: .customLong("kv"), help: "KV cache precision: auto (f16 for quantized weights, f32 for float ones), f32 or f16.")
    var kv: KVPrecision = .auto

    @Flag(name: .long, help: "Same as --kv f16.")
    var halfCache = false

    func run() throws {
        guard p >= 1, n >= 0, r >= 1, threads >= 1 else { throw ValidationError("-p ≥ 1, -n ≥ 0, -r ≥ 1, -t ≥ 1") }
        if kernels {
            try runReportingErrors { try LoadedModel.checkCPU() }
            KernelBench.run(threads: threads, repetitions: r, tokens: p, only: shape)
            return
        }
        guard let model else { throw ValidationError("--model is required (or --kernels)") }
        try runReportingErrors {
            try LoadedModel.checkCPU()
            let file = try TSLMFile(path: model)
            let m = try BackboneRegistry.load(file)
            let c = m.config
            let pool = ThreadPool(threads: threads)
            let half = (halfCache ? KVPrecision.f16 : kv).isHalf(for: file)
            let cache = try m.makeCache(capacity: p + n, half: half)
            var state: UInt64 = 42
            let ids: [Int32] = (0..<(p + n)).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Int32((state >> 33) % UInt64(c.vocabularySize))
            }
            var logits = [Float](repeating: 0, count: c.vocabularySize)
            var pp: [Double] = [], tg: [Double] = []
            for _ in 0..<r {
                let x = UnsafeMutablePointer<Float>.allocate(capacity: p * c.hidden)
                defer { x.deallocate() }
                try m.embed(Array(ids[0..<p]), into: x)
                let t0 = ContinuousClock.now
                try logits.withUnsafeMutableBufferPointer {
                    try m.forward(x, count: p, start: 0, cache: cache, pool: pool, output: .lastLogits, into: $0.baseAddress!)
                }
                pp.append(Double(p) / elapsedSeconds(since: t0))
                let t1 = ContinuousClock.now
                for i in 0..<n {
                    try m.embed([ids[p + i]], into: x)
                    try logits.withUnsafeMutableBufferPointer {
                        try m.forward(x, count: 1, start: p + i, cache: cache, pool: pool, output: .lastLogits, into: $0.baseAddress!)
                    }
                }
                if n > 0 { tg.append(Double(n) / elapsedSeconds(since: t1)) }
            }
            func median(_ a: [Double]) -> Double { a.sorted()[a.count / 2] }
            let dtypes = Set(file.tensors.filter { $0.shape.count == 2 }.map(\.dtype.description)).sorted().joined(separator: "+")
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            print("model \(model) (\(c.architecture), \(dtypes), \(String(cFormat: "%.1f", Double(file.fileSize) / 1e6)) MB) threads \(threads) kv \(half ? "f16" : "f32")")
            print(String(cFormat: "pp%ld %.1f tok/s | tg%ld %.1f tok/s | peak RSS %.2f GiB", p, median(pp), n, n > 0 ? median(tg) : 0,
                         Double(usage.ru_maxrss) * 1024 / Double(1 << 30)))
        }
    }
}
