import ArgumentParser
import TSLMFormat
import TSLMKernels
import TSLMRuntime

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify a folder of labelled recordings with a time-series model and score it.",
        discussion: """
        Runs every <idx>_<label>.csv in --dir (see `tslm run --series` for the CSV format) through \
        the prompt that --prompt describes, greedily, and prints each recording's prediction (the \
        text after the last "Answer: ", final period dropped, lowercased), then the accuracy and the \
        macro-F1 over the labels (prompt.json "labels", else the labels of the files). Labels are \
        compared lowercased and exactly.

        prompt.json: "pre_prompt", "post_prompt", "series_description_template" (placeholders as \
        in `tslm run --series-text`; {mean:.4f} and {std:.4f} are accepted), optional "channels" \
        (the channel names, in prompt order: CSV columns are picked by these names when the file \
        has a header), "normalization": {"name": preset} or "preset", and "labels".

        Example:
          tslm eval -m basicmotions.tslm --dir demo/basicmotions/test --prompt demo/basicmotions/prompt.json
        """
    )

    @Option(name: .shortAndLong, help: "A time-series .tslm model.")
    var model: String

    @Option(name: .long, help: "A folder of <idx>_<label>.csv recordings.")
    var dir: String

    @Option(name: .long, help: "The prompt description (JSON).")
    var prompt: String

    @Option(name: .short, help: "Maximum number of tokens to generate per recording.")
    var n: Int = 200

    @Option(name: .shortAndLong, help: "Worker threads (default: all cores).")
    var threads: Int = activeProcessorCount()

    @Option(name: .customLong("kv"), help: "KV cache precision: auto (f16 for quantized weights, f32 for float ones), f32 or f16.")
    var kv: KVPrecision = .auto

    @Option(name: .long, help: "Evaluate only the first N recordings.")
    var limit: Int?

    @Flag(name: .shortAndLong, help: "Print each recording's generated text.")
    var verbose = false

    /// What prompt.json says.
    struct PromptSpec {
        var pre: String
        var post: String
        var template: String?
        var channels: [String]?
        var preset: SeriesPreset?
        var labels: [String]?

        init(path: String) throws {
            func bad(_ r: String) -> RuntimeError { .invalidArgument(name: "--prompt \(path)", reason: r) }
            guard let data = readFile(path) else { throw bad("cannot be read") }
            guard let o = (try? JSONValue.parse(data))?.objectValue else { throw bad("is not a JSON object") }
            /// The value when it is an array of strings only.
            func strings(_ v: JSONValue?) -> [String]? {
                guard let items = v?.arrayValue else { return nil }
                let s = items.compactMap(\.stringValue)
                return s.count == items.count ? s : nil
            }
            pre = o["pre_prompt"]?.stringValue ?? ""
            post = o["post_prompt"]?.stringValue ?? ""
            template = o["series_description_template"]?.stringValue ?? o["series_template"]?.stringValue
            channels = strings(o["channels"])
            labels = strings(o["labels"])?.map { $0.lowercased() }
            let name = o["normalization"]?["name"]?.stringValue ?? o["normalization"]?.stringValue ?? o["preset"]?.stringValue
            if let name {
                guard let p = SeriesPreset(rawValue: name) else {
                    throw bad("normalization '\(name)' is not a preset (\(SeriesPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                preset = p
            }
        }
    }

    func run() throws {
        guard threads >= 1, threads <= 1024 else { throw ValidationError("--threads must be in 1...1024") }
        guard n >= 0 else { throw ValidationError("-n must be ≥ 0") }
        try runReportingErrors {
            let spec = try PromptSpec(path: prompt)
            let recordings = try listRecordings()
            let loaded = try LoadedModel(path: model)
            guard loaded.kind == .classifier else {
                throw RuntimeError.wrongKind(operation: "tslm eval", kind: loaded.kind.rawValue)
            }
            let session = try TextSession(loaded, kv: kv, pool: ThreadPool(threads: threads))
            var golds: [String] = [], preds: [String] = []
            let t0 = ContinuousClock.now
            var generated = 0
            for (index, label, path) in recordings.prefix(limit ?? .max) {
                var file = try SeriesFile.read(path)
                if let wanted = spec.channels { file = try select(wanted, from: file) }
                session.reset()
                try session.appendRecording(file.channels, names: file.names, pre: spec.pre, template: spec.template,
                                            post: spec.post, preset: spec.preset)
                let r = try session.generate(maxTokens: n)
                generated += r.generatedTokens
                let prediction = extractAnswer(r.text).lowercased()
                golds.append(label)
                preds.append(prediction)
                say("\(index)\t\(label)\t\(prediction)\t\(prediction == label ? "ok" : "WRONG")")
                if verbose { say("  " + r.text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }.joined(separator: "\n  ")) }
            }
            let labels = spec.labels ?? Array(Set(golds)).sorted()
            let correct = zip(preds, golds).filter { $0 == $1 }.count
            let accuracy = golds.isEmpty ? 0 : Double(correct) / Double(golds.count)
            say("accuracy \(String(cFormat: "%.3f", accuracy)) (\(correct)/\(golds.count))  macro-F1 \(String(cFormat: "%.3f", macroF1(preds, golds, labels: labels)))")
            let seconds = elapsedSeconds(since: t0)
            Terminal.error("\(golds.count) recordings in \(String(cFormat: "%.1f", seconds)) s, \(generated) tokens generated")
        }
    }

    /// `<idx>_<label>.csv` files of --dir, by index.
    func listRecordings() throws -> [(Int, String, String)] {
        guard let names = FileSystem.directoryEntries(dir) else {
            throw RuntimeError.invalidArgument(name: "--dir", reason: "\(dir) cannot be listed")
        }
        let found: [(Int, String, String)] = names.compactMap { n in
            guard n.hasSuffix(".csv"), let cut = n.firstIndex(of: "_"), let i = Int(n[..<cut]) else { return nil }
            let label = String(n[n.index(after: cut)..<n.index(n.endIndex, offsetBy: -4)]).lowercased()
            return label.isEmpty ? nil : (i, label, dir + "/" + n)
        }
        guard !found.isEmpty else { throw RuntimeError.invalidArgument(name: "--dir", reason: "\(dir) has no <idx>_<label>.csv files") }
        return found.sorted { $0.0 < $1.0 }
    }

    /// The channels named in prompt.json, in that order (by CSV header when there is one).
    func select(_ wanted: [String], from file: SeriesFile) throws -> SeriesFile {
        guard let names = file.names else {
            guard file.channels.count == wanted.count else {
                throw RuntimeError.invalidArgument(name: "series file \(file.path)", reason: "\(file.channels.count) channels, the prompt has \(wanted.count)")
            }
            return SeriesFile(path: file.path, names: wanted, channels: file.channels)
        }
        let channels = try wanted.map { w -> [Float] in
            guard let i = names.firstIndex(of: w) else {
                throw RuntimeError.invalidArgument(name: "series file \(file.path)", reason: "no column '\(w)' (has \(names.joined(separator: ", ")))")
            }
            return file.channels[i]
        }
        return SeriesFile(path: file.path, names: wanted, channels: channels)
    }
}

/// Macro-F1: the mean over `labels` of each label's F1 (0 for a label never predicted nor true).
func macroF1(_ preds: [String], _ golds: [String], labels: [String]) -> Double {
    guard !labels.isEmpty else { return 0 }
    let f1s = labels.map { c -> Double in
        let tp = zip(preds, golds).filter { $0 == c && $1 == c }.count
        let fp = zip(preds, golds).filter { $0 == c && $1 != c }.count
        let fn = zip(preds, golds).filter { $0 != c && $1 == c }.count
        let p = tp + fp > 0 ? Double(tp) / Double(tp + fp) : 0
        let r = tp + fn > 0 ? Double(tp) / Double(tp + fn) : 0
        return p + r > 0 ? 2 * p * r / (p + r) : 0
    }
    return f1s.reduce(0, +) / Double(f1s.count)
}
