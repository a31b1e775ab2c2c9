import ArgumentParser
import Foundation
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
                let data = try JSONSerialization.data(withJSONObject: report.json, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
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

    var tokenizerSummary: [String: Any] {
        let m = file.metadata
        var t: [String: Any] = [:]
        if let v = m.string("tokenizer.model") { t["model"] = v }
        if let v = m.string("tokenizer.pre") { t["pre"] = v }
        if let a = m.array("tokenizer.tokens") { t["tokens"] = a.count }
        if let a = m.array("tokenizer.merges") { t["merges"] = a.count }
        if let a = m.array("tokenizer.scores") { t["scores"] = a.count }
        for k in ["bos_token_id", "eos_token_id", "pad_token_id", "unknown_token_id"] {
            if let v = m.int("tokenizer." + k) { t[k] = v }
        }
        for k in ["add_bos_token", "add_eos_token"] { if let v = m.bool("tokenizer." + k) { t[k] = v } }
        if let s = m.string("tokenizer.chat_template") { t["chat_template_bytes"] = s.utf8.count }
        if let s = m.string("tokenizer.huggingface.json") { t["huggingface_json_bytes"] = s.utf8.count }
        return t
    }

    var json: [String: Any] {
        var metadata: [String: Any] = [:]
        for (k, v) in file.metadata.entries { metadata[k] = jsonValue(v) }
        let tensors: [[String: Any]] = file.tensors.map {
            ["name": $0.name, "dtype": $0.dtype.description, "shape": $0.shape, "bytes": $0.size,
             "stored_bytes": $0.storedSize, "compressed": $0.compressed, "offset": $0.offset]
        }
        return [
            "file": file.path, "file_size": file.fileSize, "format_version": Int(TSLMFormat.version),
            "architecture": architecture, "family": file.metadata.string(MetadataKeys.family) ?? NSNull(), "parameter_count": parameterCount,
            "tokenizer": tokenizerSummary, "metadata": metadata, "tensors": tensors,
            "tensor_count": file.tensors.count,
            "tensor_bytes": file.tensors.reduce(UInt64(0)) { $0 + $1.size },
        ]
    }

    /// Arrays longer than 16 elements are summarized as {type, count}.
    func jsonValue(_ v: MetadataValue) -> Any {
        switch v {
        case let .string(s): return s
        case let .bool(b): return b
        case let .f32(f): return Double(f)
        case let .f64(d): return d
        case let .array(a):
            if a.count > 16 { return ["type": a.elementType.description, "count": a.count] }
            switch a {
            case let .string(s): return s
            case let .f32(f): return f.map(Double.init)
            case let .f64(f): return f
            case let .bool(b): return b
            default: return a.intValues ?? []
            }
        default: return v.intValue ?? 0
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
            for k in t.keys.sorted() { row(k, "\(t[k]!)") }
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
