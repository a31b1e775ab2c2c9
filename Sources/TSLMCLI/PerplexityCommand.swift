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
import TSLMTokenizers

/// `tslm perplexity`: llama-perplexity's protocol on a text file, and the KL divergence of a
/// model's next-token distributions to a reference model's (saved by `--save-logits`).
struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Perplexity of a model on a text (llama-perplexity's protocol), and KL divergence to a reference.",
        discussion: """
        The text is tokenized once (BOS first when the model's tokenizer adds one; special-token \
        text stays text) and cut into non-overlapping windows of --ctx tokens; a remainder shorter \
        than a window is dropped. Each window runs from an empty cache, its first token replaced \
        by BOS when the tokenizer adds one; the tokens of its second half are scored (the logits \
        at positions ctx/2 ... ctx-2 predict the tokens after them), so every scored token has at \
        least ctx/2 tokens of context. The running estimate is printed after each window \
        ("[window]ppl,"), then the final estimate PPL = exp(mean NLL) ± the standard error \
        (ppl · sd(NLL) / √(count − 1)), as llama-perplexity prints them.

        --save-logits REF.bin writes the scored positions' log-probabilities (f16, with the token \
        ids and --ctx) so that another run, of a quantized model on the same text, can report \
        --kl-divergence REF.bin: mean KL(reference ‖ model) ± its standard error, the maximum, \
        and how often both pick the same top token.

        --save-imatrix FILE collects, over the run, the mean square of the activations that \
        multiply each column of every matrix: the importance matrix of `tslm quantize \
        --quantizer search --imatrix FILE` (run it on a calibration text, not the test text).

        Examples (tools/fetch_perplexity_text.sh fetches the texts; tools/perplexity_eval.sh
        runs the README's table):
          tslm perplexity -m f16.tslm -f text.txt --save-logits f16.logp
          tslm perplexity -m q4_0.tslm -f text.txt --kl-divergence f16.logp
          tslm perplexity -m f16.tslm -f calib.txt --chunks 8 --save-imatrix f16.imatrix
        """
    )

    @Option(name: .shortAndLong, help: "A .tslm model with a tokenizer.")
    var model: String

    @Option(name: .shortAndLong, help: "The text file (UTF-8).")
    var file: String

    @Option(name: .long, help: "Window length in tokens.")
    var ctx: Int = 512

    @Option(name: .long, help: "Score at most this many windows (default: all).")
    var chunks: Int?

    @Option(name: .shortAndLong, help: "Worker threads (default: all cores).")
    var threads: Int = activeProcessorCount()

    @Option(name: .customLong("kv"), help: "KV cache precision: auto (f16 for quantized weights, f32 for float ones), f32 or f16.")
    var kv: KVPrecision = .auto

    @Option(name: .customLong("save-logits"), help: "Write the scored log-probabilities to this file (a reference for --kl-divergence).")
    var saveLogits: String?

    @Option(name: .customLong("kl-divergence"), help: "A file from --save-logits (same text, --ctx and tokenizer): report KL divergence to it.")
    var klDivergence: String?

    @Option(name: .customLong("save-imatrix"), help: "Write the mean square of each matrix's input columns over the run (an importance matrix for `tslm quantize --imatrix`).")
    var saveImatrix: String?

    @Flag(name: .long, help: "Print the final estimate as one JSON line on stdout.")
    var json = false

    func run() throws {
        guard ctx >= 4, ctx <= 1 << 20 else { throw ValidationError("--ctx must be in 4...1048576") }
        guard threads >= 1, threads <= 1024 else { throw ValidationError("--threads must be in 1...1024") }
        guard chunks.map({ $0 >= 1 }) ?? true else { throw ValidationError("--chunks must be ≥ 1") }
        guard saveLogits == nil || klDivergence == nil else { throw ValidationError("--save-logits and --kl-divergence do not go together") }
        try runReportingErrors {
            guard let data = readFile(file) else {
                throw RuntimeError.invalidArgument(name: "-f", reason: "\(file) cannot be read")
            }
            guard let text = String(validating: data, as: UTF8.self) else {
                throw RuntimeError.invalidArgument(name: "-f", reason: "\(file) is not UTF-8 text")
            }
            try LoadedModel.checkCPU()
            let loaded = try LoadedModel(path: model)
            let tokenizer = try loaded.tokenizer
            let session = try TextSession(loaded, contextLength: ctx, kv: kv, pool: ThreadPool(threads: threads))
            let vocab = session.model.config.vocabularySize
            let tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
            let available = tokens.count / ctx
            guard available >= 1 else {
                throw RuntimeError.invalidArgument(name: "-f", reason: "\(tokens.count) tokens: at least --ctx (\(ctx)) are needed")
            }
            let windows = min(available, chunks ?? available)
            let bos: Int32? = tokenizer.addBOS ? tokenizer.bosID : nil
            let first = ctx / 2
            let scoredPerWindow = ctx - 1 - first

            var reference: LogProbFile?
            if let klDivergence {
                let r = try LogProbFile(reading: klDivergence, vocab: vocab)
                guard r.ctx == ctx, r.windows >= windows, Array(r.tokens.prefix(windows * ctx)) == Array(tokens.prefix(windows * ctx)) else {
                    throw RuntimeError.invalidArgument(name: "--kl-divergence", reason: "\(klDivergence) was saved for another text, tokenizer, --ctx or fewer windows (ctx \(r.ctx), \(r.windows) windows)")
                }
                reference = r
            }
            let writer = try saveLogits.map { try LogProbFile.Writer(path: $0, ctx: ctx, windows: windows, vocab: vocab, tokens: Array(tokens.prefix(windows * ctx))) }

            Terminal.error("\(tokens.count) tokens, \(windows) windows of \(ctx) (\(scoredPerWindow) scored each), BOS \(bos.map { "\($0) first in each window" } ?? "not added")")
            var stats = NLLStats(), kl = KLStats()
            var logProbs = [Float](repeating: 0, count: vocab)
            if saveImatrix != nil { Kernels.activationStatistics = ActivationStatistics() }
            let t0 = ContinuousClock.now
            for w in 0..<windows {
                var ids = Array(tokens[(w * ctx)..<((w + 1) * ctx)])
                if let bos { ids[0] = bos }
                session.reset()
                let logits = try session.run(PromptRows(tokens: ids), output: .allLogits)
                for j in first..<(ctx - 1) {
                    let target = Int(tokens[w * ctx + j + 1])
                    logits.withUnsafeBufferPointer { all in
                        logSoftmax(UnsafeBufferPointer(rebasing: all[(j * vocab)..<((j + 1) * vocab)]), into: &logProbs)
                    }
                    stats.add(-Double(logProbs[target]))
                    try writer?.append(logProbs)
                    if let reference {
                        kl.add(reference: reference.row(window: w, position: j - first, scored: scoredPerWindow), model: logProbs)
                    }
                }
                Terminal.write("[\(w + 1)]\(String(cFormat: "%.4f", stats.perplexity))," + (w + 1 == windows ? "\n" : ""))
            }
            try writer?.finish()
            if let saveImatrix, let stats = Kernels.activationStatistics {
                Kernels.activationStatistics = nil
                try ImportanceMatrixFile.write(stats, file: loaded.file, to: saveImatrix)
            }
            let seconds = elapsedSeconds(since: t0)
            let tokPerSec = Double(windows * ctx) / seconds
            let line = String(cFormat: "Final estimate: PPL = %.4f +/- %.5f", stats.perplexity, stats.perplexityError)
            if json {
                var obj: [String: JSONOutput] = [
                    "ppl": .double(stats.perplexity), "ppl_error": .double(stats.perplexityError), "tokens_scored": .int(stats.count),
                    "windows": .int(windows), "ctx": .int(ctx), "model": .string(model), "text": .string(file),
                ]
                if reference != nil {
                    obj["kld_mean"] = .double(kl.mean); obj["kld_error"] = .double(kl.error); obj["kld_max"] = .double(kl.maximum)
                    obj["same_top_fraction"] = .double(kl.sameTopFraction)
                }
                writeStdout(JSONOutput.object(obj).text() + "\n")
            } else {
                say(line)
                if reference != nil {
                    say(String(cFormat: "KL divergence to reference: mean %.6f +/- %.6f, max %.4f; same top token %.2f%%",
                               kl.mean, kl.error, kl.maximum, 100 * kl.sameTopFraction))
                }
            }
            Terminal.error(String(cFormat: "%ld tokens scored, %.1f s (%.1f tok/s)", stats.count, seconds, tokPerSec))
        }
    }
}

/// log softmax of one row of logits, in double sums (as llama-perplexity: max subtracted,
/// the exponentials summed in double).
func logSoftmax(_ logits: UnsafeBufferPointer<Float>, into out: inout [Float]) {
    var mx = -Float.infinity
    for v in logits { mx = max(mx, v) }
    var sum = 0.0
    for v in logits { sum += Double(exp(v - mx)) }
    let lse = Float(log(sum))
    for i in 0..<logits.count { out[i] = logits[i] - mx - lse }
}

/// Running negative log-likelihood statistics, as llama-perplexity accumulates them.
struct NLLStats {
    private(set) var count = 0
    private var sum = 0.0, sumSquares = 0.0

    mutating func add(_ nll: Double) {
        count += 1
        sum += nll
        sumSquares += nll * nll
    }

    var perplexity: Double { exp(sum / Double(max(count, 1))) }

    /// ppl · sqrt(var(NLL) / (count − 1)): llama-perplexity's "±" (0 with fewer than 2 tokens).
    var perplexityError: Double {
        guard count > 1 else { return 0 }
        let mean = sum / Double(count)
        let variance = sumSquares / Double(count) - mean * mean
        return variance > 0 ? (variance / Double(count - 1)).squareRoot() * perplexity : 0
    }
}

/// KL(reference ‖ model) per scored token, and how often the top tokens agree.
struct KLStats {
    private(set) var count = 0
    private var sum = 0.0, sumSquares = 0.0, sameTop = 0
    private(set) var maximum = 0.0

    mutating func add(reference: UnsafeBufferPointer<UInt16>, model: [Float]) {
        var kld = 0.0
        var refTop = 0, refBest = -Float.infinity, modelTop = 0, modelBest = -Float.infinity
        for i in 0..<model.count {
            let r = halfToFloat(reference[i])
            if r > refBest { refBest = r; refTop = i }
            if model[i] > modelBest { modelBest = model[i]; modelTop = i }
            let p = exp(Double(r))
            if p > 0 { kld += p * (Double(r) - Double(model[i])) }
        }
        count += 1
        sum += kld
        sumSquares += kld * kld
        maximum = max(maximum, kld)
        if refTop == modelTop { sameTop += 1 }
    }

    var mean: Double { sum / Double(max(count, 1)) }
    var error: Double {
        guard count > 1 else { return 0 }
        let v = sumSquares / Double(count) - mean * mean
        return v > 0 ? (v / Double(count - 1)).squareRoot() : 0
    }
    var sameTopFraction: Double { Double(sameTop) / Double(max(count, 1)) }
}

/// The `--save-logits` file: "TSLMLOGP" magic, u32 version 1, u32 ctx, u32 windows, u32 vocab,
/// windows·ctx i32 token ids, then for each window its (ctx − 1 − ctx/2) scored positions'
/// log-probabilities as f16 [vocab], all little-endian.
struct LogProbFile {
    static let magic = Array("TSLMLOGP".utf8)
    let ctx: Int, windows: Int, vocab: Int
    let tokens: [Int32]
    private let file: MappedFile
    private let dataOffset: Int

    init(reading path: String, vocab expectedVocab: Int) throws {
        file = try MappedFile(path: path)
        let bytes = file.bytes
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        guard bytes.count >= 24, Array(bytes[0..<8]) == LogProbFile.magic, u32(8) == 1 else {
            throw RuntimeError.invalidArgument(name: "--kl-divergence", reason: "\(path) is not a tslm --save-logits file")
        }
        ctx = u32(12); windows = u32(16); vocab = u32(20)
        guard vocab == expectedVocab, ctx >= 4 else {
            throw RuntimeError.invalidArgument(name: "--kl-divergence", reason: "\(path) holds vocabulary \(vocab), the model has \(expectedVocab)")
        }
        let nTok = windows * ctx
        dataOffset = 24 + 4 * nTok
        let scored = ctx - 1 - ctx / 2
        guard bytes.count == dataOffset + windows * scored * vocab * 2 else {
            throw RuntimeError.invalidArgument(name: "--kl-divergence", reason: "\(path) is truncated or has trailing bytes")
        }
        tokens = (0..<nTok).map { Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 24 + 4 * $0, as: Int32.self)) }
    }

    /// The reference log-probabilities of scored position `position` of `window`.
    func row(window: Int, position: Int, scored: Int) -> UnsafeBufferPointer<UInt16> {
        let start = dataOffset + ((window * scored + position) * vocab) * 2
        let raw = UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + vocab * 2)])
        return raw.bindMemory(to: UInt16.self)
    }

    final class Writer {
        private var fd: Int32
        private let path: String
        private var buffer: [UInt16]

        init(path: String, ctx: Int, windows: Int, vocab: Int, tokens: [Int32]) throws {
            self.path = path
            fd = open(path + ".part", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
            guard fd >= 0 else {
                throw RuntimeError.invalidArgument(name: "--save-logits", reason: "\(path) cannot be written")
            }
            buffer = [UInt16](repeating: 0, count: vocab)
            var header = LogProbFile.magic
            for v in [1, ctx, windows, vocab] { withUnsafeBytes(of: UInt32(v).littleEndian) { header.append(contentsOf: $0) } }
            for t in tokens { withUnsafeBytes(of: t.littleEndian) { header.append(contentsOf: $0) } }
            try header.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path + ".part") }
        }

        deinit { if fd >= 0 { close(fd) } }

        func append(_ logProbs: [Float]) throws {
            for i in 0..<logProbs.count { buffer[i] = floatToHalf(logProbs[i]).littleEndian }
            try buffer.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path + ".part") }
        }

        func finish() throws {
            let closed = close(fd)
            fd = -1
            guard closed == 0, rename(path + ".part", path) == 0 else {
                throw RuntimeError.invalidArgument(name: "--save-logits", reason: "\(path) cannot be written")
            }
        }
    }
}

/// The `--save-imatrix` file: "TSLMIMAT" magic, u32 version 1, u32 matrix count, then per matrix
/// u32 name length, the UTF-8 name, u32 columns, u64 input vectors, columns × f32 mean squares;
/// all little-endian.
enum ImportanceMatrixFile {
    static let magic = Array("TSLMIMAT".utf8)

    static func write(_ stats: ActivationStatistics, file: TSLMFile, to path: String) throws {
        var names: [Int: String] = [:]
        for e in file.tensors where !e.compressed && e.shape.count == 2 {
            if let p = file.storedBytes(e).baseAddress { names[Int(bitPattern: p)] = e.name }
        }
        var out = magic
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out.append(contentsOf: $0) } }
        let entries = stats.byMatrix.compactMap { key, c in names[key].map { ($0, c) } }.sorted { $0.0 < $1.0 }
        u32(1); u32(entries.count)
        for (name, c) in entries {
            u32(name.utf8.count); out.append(contentsOf: Array(name.utf8))
            u32(c.sumSquares.count)
            withUnsafeBytes(of: UInt64(c.count).littleEndian) { out.append(contentsOf: $0) }
            for s in c.sumSquares { withUnsafeBytes(of: Float(s / Double(max(c.count, 1))).bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        }
        guard writeFile(out, to: path) else {
            throw RuntimeError.invalidArgument(name: "--save-imatrix", reason: "\(path) cannot be written")
        }
        Terminal.error("wrote \(path): \(entries.count) matrices")
    }

    static func read(_ path: String) throws -> [String: [Float]] {
        func bad(_ why: String) -> RuntimeError { RuntimeError.invalidArgument(name: "--imatrix", reason: "\(path): \(why)") }
        guard let b = readFile(path) else { throw bad("cannot be read") }
        var at = 0
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, at + n <= b.count else { throw bad("truncated") }
            defer { at += n }
            return b[at..<(at + n)]
        }
        func u32() throws -> Int { Int(try take(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
        guard Array(try take(8)) == magic, try u32() == 1 else { throw bad("not a tslm --save-imatrix file") }
        var out: [String: [Float]] = [:]
        for _ in 0..<(try u32()) {
            let name = String(decoding: try take(try u32()), as: UTF8.self)
            let cols = try u32()
            _ = try take(8)
            let raw = try take(4 * cols)
            out[name] = stride(from: raw.startIndex, to: raw.endIndex, by: 4).map { (i: Int) -> Float in
                let lo = UInt32(b[i]) | UInt32(b[i + 1]) << 8
                let hi = UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
                return Float(bitPattern: lo | hi)
            }
        }
        guard at == b.count else { throw bad("trailing bytes") }
        return out
    }
}
