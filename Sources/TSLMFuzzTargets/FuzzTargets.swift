import Foundation
import TSLMConvert
import TSLMFormat
import TSLMRuntime
import TSLMSeriesInput
import TSLMTokenizers

/// The parsers that untrusted input reaches, one fuzz target each. `run` feeds one input to a
/// target; a thrown error is a correct rejection, anything else (a trap, a sanitizer report, an
/// allocation beyond libFuzzer's limit, a hang) is a bug. The libFuzzer harness (`TSLMFuzz`,
/// `make fuzz`) and the corpus replay tests (`TSLMFuzzTests`) both call it.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// `.tslm` open + verify + model load; the input is tried as it is and again with its header
    /// and index checksums fixed up (so that mutations reach the index parser).
    case tslm
    /// A safetensors file: header JSON, tensor entries, tensor reads, the importer.
    case safetensors
    /// A GGUF file: header, metadata, tensor infos, tensor reads and dequantization, the importer.
    case gguf
    /// A PyTorch zip checkpoint: ZIP reader + restricted unpickler + tensor reads.
    case pytorch
    /// A raw pickle through the restricted unpickler (what the zip's `data.pkl` holds).
    case pickle
    /// A `tokenizer.json` imported (TokenizerImport), built into a Tokenizer, used.
    case tokenizerJSON = "tokenizer-json"
    /// A SentencePiece `tokenizer.model` parsed, imported, built into a Tokenizer, used.
    case sentencepiece
    /// A series CSV / JSON file (`tslm run --series`, `tslm eval`).
    case series
    /// Chat-template detection and rendering: a Jinja text and messages.
    case chatTemplate = "chat-template"
    /// A forecast request (history values with NaN/Inf, channel counts, horizon, quantile levels,
    /// samples, greedy, context text) given to the forecaster families (LSTM, Time-LLM, ChatTime;
    /// tiny fixture models converted once per process), and ChatTime's value parser fed the input
    /// as model output text.
    case forecast

    /// Runs one input. Errors thrown by the parsers are expected and swallowed.
    public func run(_ bytes: [UInt8]) {
        do { try body(bytes) } catch {}
    }

    /// Runs one input and returns the error a parser rejected it with (nil: accepted all the way),
    /// so that seeds can be checked to reach the code behind the parser.
    public func rejection(_ bytes: [UInt8]) -> Error? {
        do { try body(bytes); return nil } catch { return error }
    }

    func body(_ bytes: [UInt8]) throws {
        switch self {
        case .tslm:
            try Self.tslmInput(bytes)
            if let fixed = Self.fixingChecksums(bytes), fixed != bytes { try Self.tslmInput(fixed) }
        case .safetensors:
            let path = try Scratch.write(bytes, name: "in.safetensors")
            if let f = try? SafetensorsFile(path: path) {
                for e in f.tensors { _ = try? f.load(e) }
            }
            try consume(HuggingFaceImporter.loadSafetensorsFile(path: path))
        case .gguf:
            let path = try Scratch.write(bytes, name: "in.gguf")
            let f = try GGUFFile(path: path)
            for t in f.tensors {
                _ = try? f.readBytes(t)
                if t.type.isFloatingPoint { _ = try? f.readFloat32(t) }
            }
            try consume(GGUFImporter.load(f))
        case .pytorch:
            let path = try Scratch.write(bytes, name: "in.pt")
            let ckpt = try PyTorchCheckpoint(path: path)
            for t in try ckpt.tensors() { _ = try? t.load() }
            try consume(PyTorchImporter.load(path: path))
        case .pickle:
            _ = try RestrictedUnpickler.decode(bytes, file: "fuzz.pkl")
            _ = try RestrictedUnpickler.decode(bytes, file: "fuzz.pkl", options: .init(dataObjects: true))
        case .tokenizerJSON:
            let dir = try Scratch.folder(with: bytes, name: "tokenizer.json")
            try Self.useTokenizer(TokenizerImport.metadata(folder: dir))
        case .sentencepiece:
            _ = try? SentencePieceModel(bytes: bytes, file: "fuzz.model")
            let dir = try Scratch.folder(with: bytes, name: "tokenizer.model")
            try Self.useTokenizer(TokenizerImport.metadata(folder: dir))
        case .series:
            let f = try SeriesFile.parse(Data(bytes), path: "fuzz.csv")
            _ = f.summary()
        case .chatTemplate:
            Self.chat(bytes)
        case .forecast:
            try Self.forecast(bytes)
        }
    }

    /// Loads every tensor of an import, as the converter does.
    func consume(_ model: ImportedModel) throws {
        for t in model.tensors { _ = try? t.load() }
    }

    static func tslmInput(_ bytes: [UInt8]) throws {
        let path = try Scratch.write(bytes, name: "in.tslm")
        for mmap in [true, false] {
            guard let file = try? TSLMFile(path: path, mmap: mmap) else { continue }
            try? file.verify()
            for e in file.tensors { _ = try? file.tensorData(e) }
            if mmap {
                _ = try? Tokenizer(metadata: file.metadata).encode("Hello, world! 123 <|im_end|>")
                _ = try? LoadedModel(file: file)
            }
        }
    }

    /// The input with its header's index checksum and header checksum recomputed, when the
    /// header names an index inside the input; nil otherwise.
    static func fixingChecksums(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= TSLMFormat.headerSize else { return nil }
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }
        var out = bytes
        func put(_ v: UInt64, at: Int) { for i in 0..<8 { out[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        // The file size the header states is made true, so that the fuzzer needs not guess it.
        put(UInt64(bytes.count), at: 8)
        let indexOffset = u64(24), indexSize = u64(32)
        if indexOffset <= UInt64(bytes.count), indexSize <= UInt64(bytes.count) - indexOffset {
            let lo = Int(indexOffset), hi = Int(indexOffset + indexSize)
            put(XXHash64.hash(Array(out[lo..<hi])), at: 48)
        }
        put(XXHash64.hash(Array(out[0..<56])), at: 56)
        return out
    }

    /// The forecaster fixture models, converted on first use into the scratch folder (paths of
    /// those that converted). Each input loads its model afresh: a model kept in a static for the
    /// process's life would be reported by LeakSanitizer at exit, as Swift's enum payloads hide
    /// the pointers to its metadata from the leak scan.
    static let forecasterPaths: [String] = {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/TSLMRuntimeTests/Fixtures").path
        let imports: [() throws -> ImportedModel] = [
            { let f = fixtures + "/lstm/two_layer_multivariate"
              return try LSTMImporter.load(checkpoint: f + "/model.pt", config: f + "/forecast.json") },
            { let f = fixtures + "/timellm_model/gpt2"
              return try TimeLLMImporter.load(checkpoint: f + "/checkpoint.pt", config: f + "/timellm.json", base: f + "/base") },
            { try HuggingFaceImporter.load(folder: fixtures + "/chattime/model") },
        ]
        return imports.enumerated().compactMap { i, make in
            guard let path = try? Scratch.write([], name: "forecaster-\(i).tslm"),
                  let model = try? make(), (try? Converter.write(model, to: path, options: ConvertOptions())) != nil
            else { return nil }
            return path
        }
    }()

    /// Decodes a forecast request from the input: [model, horizon, channels, flags, quantile
    /// levels…, context length, context…, float32 values…] and runs it; also parses the input as
    /// ChatTime output text.
    static func forecast(_ bytes: [UInt8]) throws {
        _ = ChatTimeValues.parse(String(decoding: bytes, as: UTF8.self))
        guard bytes.count >= 4, !forecasterPaths.isEmpty else { return }
        let model = try LoadedModel(path: forecasterPaths[Int(bytes[0]) % forecasterPaths.count])
        let horizon = bytes[1] == 255 ? Int.max : Int(Int8(bitPattern: bytes[1])) % 40
        let channels = Int(bytes[2] & 7) % 5
        let flags = bytes[3]
        var at = 4
        var levels: [Float] = []
        for _ in 0..<Int(flags >> 2 & 3) where at < bytes.count {
            levels.append(Float(bytes[at]) / 255)
            at += 1
        }
        var context: String?
        if flags & 2 != 0, at < bytes.count {
            let n = min(Int(bytes[at]), bytes.count - at - 1)
            context = String(decoding: bytes[(at + 1)..<(at + 1 + n)], as: UTF8.self)
            at += 1 + n
        }
        var values: [Float] = []
        while at + 4 <= bytes.count, values.count < 512 {
            values.append(Float(bitPattern: UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24))
            at += 4
        }
        var history: [[Float]] = []
        if channels > 0 {
            let length = values.count / channels
            history = (0..<channels).map { Array(values[($0 * length)..<(($0 + 1) * length)]) }
            if bytes[2] & 0x80 != 0, let last = history.last, !last.isEmpty { history[channels - 1].removeLast() }
        }
        var samples = 1 + Int(flags >> 4 & 3) % 3
        var steps = horizon
        if model.family is ChatTimeFamily {
            // ChatTime generates ~2 tokens per step per channel and path: one input stays well
            // under the 1 s limit (under ASan and coverage) with at most 2 channels of 32 values,
            // 8 steps and 1 path (a 24-byte input with 4 channels × 3 paths × 35 steps took 17 s).
            history = history.prefix(2).map { Array($0.prefix(32)) }
            if steps > 8 && steps != Int.max { steps = 8 }
            samples = 1
        }
        var request = ForecastRequest(history: history, horizon: steps, quantileLevels: levels,
                                      samples: samples, seed: UInt64(bytes[0]),
                                      greedy: flags & 1 != 0, context: context)
        if flags & 0x40 != 0 { request.preciseHistory = history.map { $0.map(Double.init) } }
        _ = try model.forecast(request)
    }

    /// Builds a tokenizer from imported metadata and round-trips a few texts through it.
    static func useTokenizer(_ metadata: Metadata) throws {
        let tok = try Tokenizer(metadata: metadata)
        for text in ["Hello, world! 123", " \u{00e9}t\u{00e9} \u{1F600}\t\n  x", "<|im_start|>user\nhi<|im_end|>", ""] {
            let ids = tok.encode(text)
            _ = tok.decode(ids)
            _ = tok.decode(ids, skipSpecial: true)
        }
        _ = tok.decode([0, 1, 2, 3, Int32(tok.vocabularySize - 1)])
    }

    /// Splits the input at NUL bytes: the Jinja text, then alternating role and content.
    static func chat(_ bytes: [UInt8]) {
        let parts = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        let jinja = parts.first ?? ""
        var messages: [ChatTemplate.Message] = []
        var i = 1
        while i + 1 < parts.count {
            messages.append(.init(role: parts[i], content: parts[i + 1]))
            i += 2
        }
        let system = ChatTemplate.defaultSystemMessage(jinja: jinja)
        let detected = ChatTemplate.detect(jinja: jinja)
        for t in ChatTemplate.allCases {
            _ = t.render(messages, defaultSystem: system, bosToken: "<s>")
            _ = t.endOfTurn
        }
        _ = detected?.render(messages)
    }
}

/// A per-process scratch folder for inputs the parsers read by path (in /dev/shm when there).
enum Scratch {
    nonisolated(unsafe) static var root: String?

    static func dir() throws -> String {
        if let r = root { return r }
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
        let r = "\(base)/tslm-fuzz-\(getpid())"
        mkdir(r, 0o700)
        root = r
        atexit { if let r = Scratch.root { _ = try? FileManager.default.removeItem(atPath: r) } }
        return r
    }

    static func write(_ bytes: [UInt8], name: String, in folder: String? = nil) throws -> String {
        let path = try (folder ?? dir()) + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        var done = 0
        try bytes.withUnsafeBytes { raw in
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                guard n > 0 else { throw CocoaError(.fileWriteUnknown) }
                done += n
            }
        }
        return path
    }

    /// A folder holding only `name` with `bytes`.
    static func folder(with bytes: [UInt8], name: String) throws -> String {
        let d = try dir() + "/folder"
        mkdir(d, 0o700)
        for other in ["tokenizer.json", "tokenizer.model"] where other != name { unlink(d + "/" + other) }
        _ = try write(bytes, name: name, in: d)
        return d
    }
}
