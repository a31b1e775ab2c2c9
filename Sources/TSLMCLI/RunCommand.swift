import ArgumentParser
import TSLMFormat
import TSLMKernels
import TSLMRuntime
import TSLMTokenizers

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text with a .tslm model, streaming it to stdout.",
        discussion: """
        Greedy by default; --temp > 0 samples (with --top-k, --top-p, --min-p, --seed). \
        With --chat the prompt is wrapped in the model's chat template (ChatML, Llama-3, Gemma or \
        Alpaca, chosen from the file's tokenizer.chat_template) and generation stops at the end of \
        the assistant's turn. A last line on stderr reports prompt and generation speed.

        Time-series models (OpenTSLM): --series gives a recording (CSV: one column per channel, \
        optional header row of channel names; JSON: an array of numbers or an array of arrays), each \
        channel one series. The prompt is --pre, then every channel's description and series, then \
        -p (--pre, the descriptions and -p default to the prompt stored by `tslm convert --prompt`). \
        Each channel is normalized as --preset says (default: the model's preset, else custom: \
        as given) and described by --series-text (default: the preset's text), a template where \
        {mean} and {std} become the channel's raw mean and std (4 decimals), {channel} its index, \
        {name} its CSV column name, {sensor}/{axis} the parts of a name like "accelerometer_x", \
        {axis} otherwise x/y/z and {lead} the ECG lead. The output is a series summary, the \
        generated rationale, and a final "Answer: ..." line.

        ChatTime models: --series (one single-column file) with -p QUESTION answers a \
        multiple-choice question about the series, as the official code does: --samples answers \
        (default the model's 8, top-k 100, temperature 1, seeded by --seed) or one --greedy \
        answer, each cut at its first ".", its first (a), (b) or (c) taken, and the majority \
        printed as "Answer: (x)" (the votes go to stderr). Forecast with `tslm forecast`.

        Examples:
          tslm run -m smollm2.tslm -p "What is the capital of France?" --chat -n 32
          tslm run -m model.tslm -p "Once upon a time" -n 100 --temp 0.8 --top-p 0.95 --seed 7
          tslm run -m har-sp.tslm --series walk.csv --preset har --pre "$(cat har_pre.txt)" -p "Rationale:" -n 300
          tslm run -m chattime.tslm --series load.csv -p "Is the trend (a) upward (b) downward (c) flat?"
        """
    )

    @Option(name: .shortAndLong, help: "A .tslm model file.")
    var model: String

    @Option(name: .shortAndLong, help: "The prompt text.")
    var prompt: String = ""

    @Option(name: .customLong("token-ids"), help: "The prompt as comma-separated token ids instead of text (no BOS is added).")
    var tokenIDs: String?

    @Option(name: .customLong("logits-out"), help: "Write the logits of every prompt position to this file (f32 little-endian, [positions, vocab]).")
    var logitsOut: String?

    @Option(name: .short, help: "Maximum number of tokens to generate.")
    var n: Int = 128

    @Option(name: .customLong("temp"), help: "Sampling temperature (0 = greedy).")
    var temperature: Float = 0

    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0 = off).")
    var topK: Int = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold (1 = off).")
    var topP: Float = 1

    @Option(name: .customLong("min-p"), help: "Minimum probability relative to the best token (0 = off).")
    var minP: Float = 0

    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1 = off).")
    var repeatPenalty: Float = 1

    @Option(name: .long, help: "Random seed for sampling.")
    var seed: UInt64 = 0x5EED

    @Option(name: .shortAndLong, help: "Worker threads (default: all cores).")
    var threads: Int = activeProcessorCount()

    @Option(name: .customLong("ctx"), help: "Context length (KV cache positions; default min(model, 4096)).")
    var contextLength: Int?

    @Option(name: .customLong("kv"), help: "KV cache precision: auto (f16 for quantized weights, f32 for float ones), f32 or f16.")
    var kv: KVPrecision = .auto

    @Flag(name: .customLong("kv-f16"), help: "Same as --kv f16.")
    var halfCache = false

    @Flag(name: .long, help: "Wrap the prompt in the model's chat template.")
    var chat = false

    @Option(name: .long, help: "A system message for --chat.")
    var system: String?

    @Option(name: .long, help: "A stop string (repeatable).")
    var stop: [String] = []

    @Option(name: .long, help: "A recording for a time-series model: CSV or JSON, one series per channel (repeatable).")
    var series: [String] = []

    @Option(name: .long, help: "The series' normalization and default description: \(SeriesPreset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var preset: String?

    @Option(name: .customLong("series-text"), help: "Description template of every channel ({mean} {std} {channel} {name} {sensor} {axis} {lead}).")
    var seriesText: String?

    @Option(name: .long, help: "Text before the series (time-series models).")
    var pre: String?

    @Option(name: .long, help: "ChatTime analysis: sampled answers (default: the model's).")
    var samples: Int?

    @Flag(name: .long, help: "ChatTime analysis: one deterministic (argmax) answer.")
    var greedy = false

    func run() throws {
        guard threads >= 1, threads <= 1024 else { throw ValidationError("--threads must be in 1...1024") }
        guard n >= 0 else { throw ValidationError("-n must be ≥ 0") }
        if let preset, SeriesPreset(rawValue: preset) == nil {
            throw ValidationError("unknown --preset '\(preset)'; expected one of \(SeriesPreset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try runReportingErrors {
            let loaded = try LoadedModel(path: model)
            let pool = ThreadPool(threads: threads)
            if let chatTime = loaded.family as? ChatTimeFamily, !series.isEmpty {
                try runAnalysis(chatTime, pool: pool)
                return
            }
            if samples != nil || greedy { throw ValidationError("--samples and --greedy are for ChatTime analysis (--series with a ChatTime model)") }
            let session = try TextSession(loaded, contextLength: contextLength, kv: halfCache ? .f16 : kv, pool: pool)
            if !series.isEmpty || pre != nil || loaded.kind == .classifier {
                // Flags of the text path must not be silently ignored.
                if tokenIDs != nil { throw ValidationError("--token-ids applies to text prompts, not to a time-series prompt (--series)") }
                if logitsOut != nil { throw ValidationError("--logits-out applies to text prompts, not to a time-series prompt (--series)") }
                if chat { throw ValidationError("--chat applies to text prompts; a time-series model uses the prompt it was trained with") }
                try runSeries(loaded, session)
                return
            }
            var text = prompt
            var stops = stop
            if chat {
                guard let template = loaded.chatTemplate else { throw RuntimeError.noChatTemplate }
                var messages: [ChatTemplate.Message] = []
                if let system { messages.append(.init(role: "system", content: system)) }
                messages.append(.init(role: "user", content: prompt))
                let jinja = loaded.file.metadata.string("tokenizer.chat_template") ?? ""
                let bos = session.tokenizer.bosID.flatMap { session.tokenizer.piece($0) } ?? ""
                text = template.render(messages, defaultSystem: ChatTemplate.defaultSystemMessage(jinja: jinja), bosToken: bos)
                if let end = template.endOfTurn { stops.append(end) }
            }
            var ids: [Int32]
            if let tokenIDs {
                ids = try tokenIDs.split(separator: ",").map {
                    guard let v = Int32($0.trimmingHorizontalSpace()) else {
                        throw RuntimeError.invalidArgument(name: "--token-ids", reason: "'\($0)' is not an integer")
                    }
                    return v
                }
            } else {
                ids = session.tokenizer.encode(text, addSpecial: true, parseSpecial: true)
            }
            guard !ids.isEmpty else { throw RuntimeError.emptyPrompt }
            if let logitsOut { try writePromptLogits(loaded, ids, pool: pool, to: logitsOut) }
            let result = try session.generate(promptTokens: ids, maxTokens: n, sampler: samplerParams, stop: stops) { piece in
                writeStdout(piece)
                return true
            }
            print("")
            let pp = Double(result.promptTokens) / max(result.promptSeconds, 1e-9)
            let tg = Double(result.generatedTokens) / max(result.generateSeconds, 1e-9)
            Terminal.error("prompt: \(result.promptTokens) tokens, \(fmt(pp)) tok/s | generation: \(result.generatedTokens) tokens, \(fmt(tg)) tok/s | stop: \(result.stopReason.rawValue) | threads \(threads)")
        }
    }

    func fmt(_ v: Double) -> String { String(cFormat: "%.1f", v) }

    /// ChatTime: a multiple-choice question (-p) about one series (--series).
    func runAnalysis(_ chatTime: ChatTimeFamily, pool: ThreadPool) throws {
        for (flag, given) in [("--token-ids", tokenIDs != nil), ("--logits-out", logitsOut != nil), ("--chat", chat), ("--pre", pre != nil),
                              ("--preset", preset != nil), ("--series-text", seriesText != nil), ("--temp", temperature != 0),
                              ("--top-k", topK != 0), ("--top-p", topP != 1), ("--min-p", minP != 0), ("--stop", !stop.isEmpty)] where given {
            throw ValidationError("\(flag) does not apply to a ChatTime analysis (-p QUESTION --series FILE [--samples N | --greedy] [--seed S])")
        }
        if let samples, samples < 1 || samples > 1024 { throw ValidationError("--samples must be in 1...1024") }
        if greedy, samples != nil { throw ValidationError("--greedy draws one answer: drop --samples") }
        guard !prompt.isEmpty else { throw ValidationError("a ChatTime analysis needs the question: -p \"... (a) ... (b) ... (c) ...\"") }
        guard series.count == 1 else { throw ValidationError("a ChatTime analysis reads one series: give one --series file") }
        let file = try SeriesFile.read(series[0])
        guard file.channels.count == 1 else {
            throw ValidationError("--series \(series[0]) has \(file.channels.count) columns; a ChatTime analysis reads one")
        }
        let sampling = chatTime.sampling(samples: samples ?? 0, greedy: greedy)
        let seed = seed == 0x5EED ? 0 : seed
        let a = try chatTime.analyze(series: file.values[0], question: prompt, sampling: sampling, seed: seed, pool: pool)
        var counts: [String: Int] = [:]
        for c in a.choices { counts[c ?? "none", default: 0] += 1 }
        let summary = counts.keys.sorted().map { "\($0) \(counts[$0]!)" }.joined(separator: ", ")
        Terminal.error("votes of \(a.choices.count) answer(s): \(summary)")
        say("Answer: \(a.answer)")
    }

    var samplerParams: SamplerParams {
        var params = SamplerParams()
        params.temperature = temperature
        params.topK = topK
        params.topP = topP
        params.minP = minP
        params.repetitionPenalty = repeatPenalty
        params.seed = seed
        return params
    }

    /// A prompt of text and recordings: summary, streamed rationale, then the answer line. The
    /// prompt is the one the model was trained with (`TextSession.appendRecording`), with
    /// --pre, --series-text and -p replacing its parts; every channel of every file is one
    /// series, and placeholders follow the series' position in the prompt.
    func runSeries(_ loaded: LoadedModel, _ session: TextSession) throws {
        let files = try series.map(SeriesFile.read)
        for f in files { say(f.summary()) }
        let channels = files.flatMap(\.channels)
        let names: [String?] = files.flatMap { f in f.channels.indices.map { f.names?[$0] } }
        try session.appendRecording(channels, names: names.allSatisfy { $0 == nil } ? nil : names,
                                    pre: pre, template: seriesText, post: prompt.isEmpty ? nil : prompt,
                                    preset: preset.flatMap(SeriesPreset.init(rawValue:)))
        let result = try session.generate(maxTokens: n, sampler: samplerParams, stop: stop) { piece in
            writeStdout(piece)
            return true
        }
        say("")
        say("Answer: \(extractAnswer(result.text))")
        let pp = Double(result.promptTokens) / max(result.promptSeconds, 1e-9)
        let tg = Double(result.generatedTokens) / max(result.generateSeconds, 1e-9)
        Terminal.error("prompt: \(result.promptTokens) positions, \(fmt(pp)) pos/s | generation: \(result.generatedTokens) tokens, \(fmt(tg)) tok/s | stop: \(result.stopReason.rawValue) | threads \(threads)")
    }

    /// Logits of every prompt position, for comparisons with reference implementations (a
    /// session of its own, sized to the prompt).
    func writePromptLogits(_ loaded: LoadedModel, _ ids: [Int32], pool: ThreadPool, to path: String) throws {
        let session = try TextSession(loaded, contextLength: ids.count, pool: pool)
        let logits = try session.run(PromptRows(tokens: ids), output: .allLogits)
        guard writeFile(logits, to: path) else {
            throw RuntimeError.invalidArgument(name: "--logits-out", reason: "cannot write \(path)")
        }
    }
}
