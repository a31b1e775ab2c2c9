import ArgumentParser
import TSLMConvert
import TSLMFormat

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a .tslm file's architecture, hyperparameters, tokenizer and tensors.",
        discussion: """
        Examples:
          tslm info model.tslm
          tslm info model.tslm --json | python3 -m json.tool
        """
    )

    @Argument(help: "A .tslm file.")
    var model: String

    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false

    @Flag(name: .long, help: "Do not list every tensor (text output).")
    var noTensors = false

    func run() throws {
        try runReportingErrors {
            let file = try TSLMFile(path: model)
            let report = ModelReport(file: file)
            if json {
                print(report.json.text(pretty: true))
            } else {
                print(report.text(listTensors: !noTensors), terminator: "")
            }
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a .tslm file's header, index and every tensor checksum.",
        discussion: "Exit status 0 when the file is intact, 1 with a message naming the first fault otherwise.\n\nExample:\n  tslm verify model.tslm"
    )

    @Argument(help: "A .tslm file.")
    var model: String

    func run() throws {
        try runReportingErrors {
            let file = try TSLMFile(path: model)
            try file.verify(progress: { Terminal.progress($0, $1, "verifying") })
            print("\(model): OK (\(file.tensors.count) tensors, \(file.metadata.count) metadata keys, \(formatBytes(file.fileSize)))")
        }
    }
}

/// What `tslm info` shows, built once for both renderings.
struct ModelReport {
    let file: TSLMFile

    var architecture: String { file.metadata.string(MetadataKeys.architecture) ?? "?" }

    /// `general.family`, or a note that the file predates families.
    var family: String { file.metadata.string(MetadataKeys.family) ?? "(none: written before model families; re-convert to run)" }

    var parameterCount: Int {
        file.tensors.filter { $0.dtype.isFloatingPoint }.reduce(0) { $0 + $1.elementCount }
    }

    /// The families' key prefixes.
    static let familyPrefixes = [MetadataKeys.OpenTSLM.prefix, MetadataKeys.LSTM.prefix, MetadataKeys.TimeLLM.prefix]

    func isHyperparameter(_ key: String) -> Bool {
        key.hasPrefix(architecture + ".") || Self.familyPrefixes.contains { key.hasPrefix($0) }
    }

    /// Keys shown under "hyperparameters": the architecture's own and the family's.
    var hyperparameters: [(String, MetadataValue)] {
        file.metadata.entries.filter { isHyperparameter($0.key) }
    }

    var tokenizerSummary: [String: JSONOutput] {
        let m = file.metadata
        var t: [String: JSONOutput] = [:]
        if let v = m.string("tokenizer.model") { t["model"] = .string(v) }
        if let v = m.string("tokenizer.pre") { t["pre"] = .string(v) }
        if let a = m.array("tokenizer.tokens") { t["tokens"] = .int(a.count) }
        if let a = m.array("tokenizer.merges") { t["merges"] = .int(a.count) }
        if let a = m.array("tokenizer.scores") { t["scores"] = .int(a.count) }
        for k in ["bos_token_id", "eos_token_id", "pad_token_id", "unknown_token_id"] {
            if let v = m.int("tokenizer." + k) { t[k] = .int(v) }
        }
        for k in ["add_bos_token", "add_eos_token"] { if let v = m.bool("tokenizer." + k) { t[k] = .bool(v) } }
        if let s = m.string("tokenizer.chat_template") { t["chat_template_bytes"] = .int(s.utf8.count) }
        if let s = m.string("tokenizer.huggingface.json") { t["huggingface_json_bytes"] = .int(s.utf8.count) }
        return t
    }

    var json: JSONOutput {
        var metadata: [String: JSONOutput] = [:]
        for (k, v) in file.metadata.entries { metadata[k] = jsonValue(v) }
        let tensors: [JSONOutput] = file.tensors.map {
            .object(["name": .string($0.name), "dtype": .string($0.dtype.description), "shape": .array($0.shape.map(JSONOutput.int)),
                     "bytes": .uint($0.size), "stored_bytes": .uint($0.storedSize), "compressed": .bool($0.compressed),
                     "offset": .uint($0.offset)])
        }
        return .object([
            "file": .string(file.path), "file_size": .uint(file.fileSize), "format_version": .int(Int(TSLMFormat.version)),
            "architecture": .string(architecture), "family": file.metadata.string(MetadataKeys.family).map(JSONOutput.string) ?? .null,
            "parameter_count": .int(parameterCount),
            "tokenizer": .object(tokenizerSummary), "metadata": .object(metadata), "tensors": .array(tensors),
            "tensor_count": .int(file.tensors.count),
            "tensor_bytes": .uint(file.tensors.reduce(UInt64(0)) { $0 + $1.size }),
        ])
    }

    /// Arrays longer than 16 elements are summarized as {type, count}.
    func jsonValue(_ v: MetadataValue) -> JSONOutput {
        switch v {
        case let .string(s): return .string(s)
        case let .bool(b): return .bool(b)
        case let .f32(f): return .double(Double(f))
        case let .f64(d): return .double(d)
        case let .array(a):
            if a.count > 16 { return .object(["type": .string(a.elementType.description), "count": .int(a.count)]) }
            switch a {
            case let .string(s): return .array(s.map(JSONOutput.string))
            case let .f32(f): return .array(f.map { .double(Double($0)) })
            case let .f64(f): return .array(f.map(JSONOutput.double))
            case let .bool(b): return .array(b.map(JSONOutput.bool))
            default: return .array((a.intValues ?? []).map(JSONOutput.int))
            }
        default: return .int(v.intValue ?? 0)
        }
    }

    func text(listTensors: Bool) -> String {
        let m = file.metadata
        var out = "\(file.path): .tslm version \(TSLMFormat.version), \(formatBytes(file.fileSize))\n"
        func row(_ k: String, _ v: String) { out += "  " + k.rightPad(44) + v + "\n" }
        out += "general\n"
        row("family", family)
        row("architecture", architecture)
        for k in ["general.name", "general.file_type", "general.converter", "general.source.format", "general.source.path"] {
            if let v = m[k] { row(String(k.dropFirst("general.".count)), v.stringValue ?? v.summary) }
        }
        row("parameters", "\(formatCount(parameterCount)) (\(parameterCount))")
        if !hyperparameters.isEmpty {
            out += "hyperparameters\n"
            for (k, v) in hyperparameters { row(k, v.summary) }
        }
        let t = tokenizerSummary
        if !t.isEmpty {
            out += "tokenizer\n"
            for k in t.keys.sorted() { row(k, t[k]!.plainText) }
        }
        let others = m.entries.filter {
            !$0.key.hasPrefix("general.") && !$0.key.hasPrefix("tokenizer.") && !isHyperparameter($0.key)
        }
        if !others.isEmpty {
            out += "other metadata\n"
            for (k, v) in others { row(k, v.summary) }
        }
        if listTensors {
            out += "tensors (\(file.tensors.count))\n"
            let w = min(48, (file.tensors.map(\.name.count).max() ?? 4) + 2)
            for e in file.tensors {
                var line = "  " + e.name.rightPad(w) + e.dtype.description.rightPad(6) + "\(e.shape)".rightPad(18) + formatBytes(e.size).leftPad(11)
                if e.compressed { line += "  zstd \(formatBytes(e.storedSize))" }
                out += line + "\n"
            }
        }
        out += "totals\n"
        var byType: [DType: (Int, UInt64, Int)] = [:]
        for e in file.tensors {
            let c = byType[e.dtype] ?? (0, 0, 0)
            byType[e.dtype] = (c.0 + 1, c.1 + e.size, c.2 + e.elementCount)
        }
        for (dt, c) in byType.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            row(dt.description, "\(c.0) tensors, \(formatCount(c.2)) elements, \(formatBytes(c.1))")
        }
        row("all", "\(file.tensors.count) tensors, \(formatBytes(file.tensors.reduce(0) { $0 + $1.size }))")
        return out
    }
}
