import ArgumentParser
import TSLMConvert
import TSLMFormat
import TSLMRuntime

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint to a .tslm file.",
        discussion: """
        Inputs: a Hugging Face folder (config.json + *.safetensors or pytorch_model*.bin + tokenizer
        files), a single .safetensors file, a PyTorch .pt/.bin zip checkpoint (read by a restricted
        unpickler that never runs code), a GGUF v2/v3 file, or a .tslm file.

        Storage types (--type): source (keep each tensor's type; the default), f32, f16, bf16,
        q8_0, q4_0, q4_1, the K types q4_k, q5_k, q6_k (256-weight super-blocks, as GGUF's Q4_K,
        Q5_K, Q6_K, which are imported as they are) and the mixes q4_k_m, q5_k_m (llama.cpp's:
        q6_k for the attention value and FFN down matrices of some layers). Norms, biases and
        other 1-D tensors stay f32; under q4_0/q4_1 the embedding and output matrices keep q8_0,
        under K types q6_k; a row that is not a whole number of 256-blocks falls back to q4_1
        (q4_k) or q8_0 (q5_k, q6_k). See formats/tslm.md, "Quantization policy".

        An OpenTSLM checkpoint (model_checkpoint.pt, SoftPrompt or Flamingo) holds only the
        time-series parts (and LoRA adapters): give the LLM it was trained on with --base. The
        output is one file: the backbone (LoRA merged; Flamingo's resized embedding table and
        added tokens) plus the encoder, projector or perceiver and cross-attention blocks.

        Forecasters need --forecast-config: an LSTM (a PyTorch state dict of nn.LSTM + a linear
        head) its forecast.json (window, horizon, channel names, input/output scaling, as
        tools/lstm_reference.py writes it); a Time-LLM checkpoint (upstream state dict) its
        timellm.json (tools/timellm_model.py) and, with --base, the LLM it was trained on.

        Examples:
          tslm convert SmolLM2-135M-Instruct.Q4_1.gguf -o smollm2-q8.tslm --type q8_0
          tslm convert ./Llama-3.2-1B/ -o llama-1b-f16.tslm --type f16
          tslm convert model_checkpoint.pt -o raw.tslm
          tslm convert demo/forecast/model.pt --forecast-config demo/forecast/forecast.json -o airline-lstm.tslm
          tslm convert llama-3.2-1b-har-sp/model_checkpoint.pt --base ./Llama-3.2-1B/ -o har-sp.tslm --preset har
          tslm convert demo/basicmotions/model_checkpoint.pt --base SmolLM2-135M-Instruct.Q4_1.gguf \\
               --preset har --prompt demo/basicmotions/prompt.json -o basicmotions.tslm --type q8_0
        """
    )

    @Argument(help: "Input checkpoint (file or Hugging Face folder).")
    var input: String

    @Option(name: .shortAndLong, help: "Output .tslm path.")
    var output: String

    @Option(name: .long, help: "Storage type: \(TargetType.names.joined(separator: ", ")).")
    var type: String = "source"

    @Flag(name: .long, help: "Store tensors zstd-compressed where that saves at least 5% (slower to load, not mappable).")
    var compress = false

    @Option(name: .long, help: "general.name to store (default: from the source).")
    var name: String?

    @Option(name: .long, help: "The base LLM of an OpenTSLM checkpoint (Hugging Face folder, GGUF or .tslm).")
    var base: String?

    @Option(name: .long, help: "OpenTSLM: the preset (task) the model was trained for, stored as its default: \(SeriesPresetName.all).")
    var preset: String?

    @Option(name: .long, help: ArgumentHelp(
        "OpenTSLM: a JSON file with the prompt the model was trained with, stored in the file.",
        discussion: "Keys pre_prompt, series_description_template, post_prompt and optional channels (as tools/basicmotions.py writes them); stored as opentslm.prompt.pre / .series / .post / .channels so that applications (tslm run, tslm_session_append_recording in the C API) rebuild the prompt from the model alone."))
    var prompt: String?

    @Option(name: .customLong("media-token-id"), help: "OpenTSLM-Flamingo with a base that has no tokenizer: the <image> token id.")
    var mediaTokenID: Int?

    @Option(name: .customLong("end-of-chunk-token-id"), help: "OpenTSLM-Flamingo with a base that has no tokenizer: the <|endofchunk|> token id.")
    var endOfChunkTokenID: Int?

    @Option(name: .customLong("forecast-config"), help: "A forecaster's sidecar: an LSTM's forecast.json or a Time-LLM's timellm.json.")
    var forecastConfig: String?

    @Flag(name: .shortAndLong, help: "No progress bar or summary.")
    var quiet = false

    func run() throws {
        guard let target = TargetType(name: type) else {
            throw ValidationError("unknown --type '\(type)'; expected one of \(TargetType.names.joined(separator: ", "))")
        }
        if let preset, !SeriesPresetName.names.contains(preset) {
            throw ValidationError("unknown --preset '\(preset)'; expected one of \(SeriesPresetName.all)")
        }
        guard forecastConfig == nil || (preset == nil && prompt == nil && mediaTokenID == nil && endOfChunkTokenID == nil) else {
            throw ValidationError("--preset, --prompt, --media-token-id and --end-of-chunk-token-id apply to OpenTSLM checkpoints, not forecasters (--forecast-config)")
        }
        guard base != nil || (preset == nil && prompt == nil && mediaTokenID == nil && endOfChunkTokenID == nil) else {
            throw ValidationError("--preset, --prompt, --media-token-id and --end-of-chunk-token-id apply to an OpenTSLM checkpoint with --base")
        }
        try runReportingErrors {
            if let forecastConfig {
                let model = try Converter.importForecaster(path: input, config: forecastConfig, base: base)
                try convertAndReport(model, output: output, target: target, compress: compress, name: name, quiet: quiet)
                return
            }
            var options = OpenTSLMImporter.Options()
            options.preset = preset
            if let prompt { options.prompt = try TrainedPrompt(jsonFile: prompt) }
            options.mediaTokenID = mediaTokenID
            options.endOfChunkTokenID = endOfChunkTokenID
            let model = try Converter.importModel(path: input, base: base, openTSLM: options)
            try convertAndReport(model, output: output, target: target, compress: compress, name: name, quiet: quiet)
        }
    }
}

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-store a .tslm file's tensors under another type.",
        discussion: """
        Same per-tensor policy as `tslm convert --type`. The input is never modified; the output is
        written to a temporary file and renamed when complete.

        --quantizer rtn (the default) is ggml's round-to-nearest, bit-identical to the gguf
        package; --quantizer search picks each q4_0/q4_1 block's scale (and offset) to minimize
        its squared error (formats/tslm.md, "Quantizers"). The K types (q4_k, q5_k, q6_k and the
        _m mixes) always search; --imatrix FILE weights their search too. --keep PATTERN=TYPE stores the
        matrices whose name matches PATTERN (`*` = anything) as TYPE; repeat it, the first match
        wins (formats/tslm.md, "Quantization policy").

        Examples:
          tslm quantize smollm2-f16.tslm smollm2-q4.tslm --type q4_0
          tslm quantize smollm2-f16.tslm smollm2-q4s.tslm --type q4_0 --quantizer search \\
               --keep 'blk.*.attn_v.weight=q8_0'
          tslm quantize llama-1b-f16.tslm llama-1b-q4km.tslm --type q4_k_m --imatrix llama.imatrix
        """
    )

    @Argument(help: "Input .tslm file.")
    var input: String

    @Argument(help: "Output .tslm file.")
    var output: String

    @Option(name: .long, help: "Storage type: \(TargetType.names.joined(separator: ", ")).")
    var type: String

    @Flag(name: .long, help: "Store tensors zstd-compressed where that saves at least 5%.")
    var compress = false

    @Option(name: .long, help: "How 4-bit blocks are found: \(BlockQuantizer.allCases.map(\.rawValue).joined(separator: ", ")).")
    var quantizer: String = BlockQuantizer.roundToNearest.rawValue

    @Option(name: .long, help: "PATTERN=TYPE: store matching matrices as TYPE (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k); repeatable, first match wins.")
    var keep: [String] = []

    @Option(name: .long, help: "An importance matrix from `tslm perplexity --save-imatrix` weighting --quantizer search's error per column.")
    var imatrix: String?

    @Option(name: .customLong("forecast-config"), help: "A forecaster's sidecar: an LSTM's forecast.json or a Time-LLM's timellm.json.")
    var forecastConfig: String?

    @Flag(name: .shortAndLong, help: "No progress bar or summary.")
    var quiet = false

    func run() throws {
        guard let target = TargetType(name: type) else {
            throw ValidationError("unknown --type '\(type)'; expected one of \(TargetType.names.joined(separator: ", "))")
        }
        guard let method = BlockQuantizer(rawValue: quantizer) else {
            throw ValidationError("unknown --quantizer '\(quantizer)'; expected one of \(BlockQuantizer.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let rules = try keep.map { text in
            guard let rule = KeepRule(parsing: text) else {
                throw ValidationError("--keep '\(text)': expected PATTERN=TYPE with TYPE one of f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k")
            }
            return rule
        }
        guard imatrix == nil || method == .search || target.usesKQuants || rules.contains(where: { $0.type.isKQuant }) else {
            throw ValidationError("--imatrix needs --quantizer search (or a K type: q4_k, q5_k, q6_k, q4_k_m, q5_k_m)")
        }
        try runReportingErrors {
            guard try Converter.detectFormat(path: input) == .tslm else {
                throw TSLMError.badMagic(file: input, expected: "a .tslm file (use `tslm convert` for other formats)", found: [])
            }
            let model = try TSLMImporter.load(path: input)
            let importance = try imatrix.map { try ImportanceMatrixFile.read($0) } ?? [:]
            try convertAndReport(model, output: output, target: target, compress: compress, name: nil, quiet: quiet,
                                 quantizer: method, keep: rules, importance: importance)
        }
    }
}

func convertAndReport(_ model: ImportedModel, output: String, target: TargetType, compress: Bool, name: String?, quiet: Bool,
                      quantizer: BlockQuantizer = .roundToNearest, keep: [KeepRule] = [], importance: [String: [Float]] = [:]) throws {
    var options = ConvertOptions(target: target, compress: compress)
    options.name = name
    options.quantizer = quantizer
    options.keep = keep
    options.importance = importance
    if !quiet { options.progress = Terminal.progress }
    let summary = try Converter.write(model, to: output, options: options)
    if !quiet {
        let types = summary.typeCounts.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        Terminal.error("wrote \(output): \(summary.tensorCount) tensors (\(types)), \(formatCount(summary.parameterCount)) parameters, \(formatBytes(summary.bytesWritten))")
    }
}

/// The preset names of `tslm run --preset` (the runtime's `SeriesPreset`).
enum SeriesPresetName {
    static let names = SeriesPreset.allCases.map(\.rawValue)
    static var all: String { names.joined(separator: ", ") }
}
