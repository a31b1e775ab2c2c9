import ArgumentParser
import TSLMRuntime
import TSLMTokenizers

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the token ids and pieces a model's tokenizer makes of a text.",
        discussion: """
        The text comes from -p or from a file (-f, read as UTF-8 bytes: NUL bytes and newlines \
        are tokenized like any other character). BOS is added when the model's tokenizer adds \
        one (--no-special leaves it out); special-token text such as "<|im_start|>" becomes its \
        token (--no-parse-special keeps it as text).

        Output: one line per token (id, then the piece as the tokenizer's vocabulary spells it), \
        only the ids with --ids-only, or JSON with --json.

        Examples:
          tslm tokenize -m smollm2.tslm -p "The capital of France is"
          tslm tokenize -m smollm2.tslm -f prompt.txt --ids-only
          tslm tokenize -m smollm2.tslm -p "<|im_start|>user" --json
        """
    )

    @Option(name: .shortAndLong, help: "A .tslm model with a tokenizer.")
    var model: String

    @Option(name: .shortAndLong, help: "The text.")
    var prompt: String?

    @Option(name: .shortAndLong, help: "A file holding the text.")
    var file: String?

    @Flag(name: .customLong("ids-only"), help: "Print only the ids, comma-separated.")
    var idsOnly = false

    @Flag(name: .long, help: "Print JSON: {\"ids\": [...], \"pieces\": [...]}.")
    var json = false

    @Flag(name: .customLong("no-special"), help: "Do not add BOS.")
    var noSpecial = false

    @Flag(name: .customLong("no-parse-special"), help: "Keep special-token text as text.")
    var noParseSpecial = false

    func run() throws {
        guard (prompt == nil) != (file == nil) else { throw ValidationError("give the text with exactly one of -p and -f") }
        guard !(idsOnly && json) else { throw ValidationError("--ids-only and --json do not go together") }
        try runReportingErrors {
            var text = prompt ?? ""
            if let file {
                guard let data = readFile(file) else {
                    throw RuntimeError.invalidArgument(name: "-f", reason: "\(file) cannot be read")
                }
                guard let s = String(validating: data, as: UTF8.self) else {
                    throw RuntimeError.invalidArgument(name: "-f", reason: "\(file) is not UTF-8 text")
                }
                text = s
            }
            let loaded = try LoadedModel(path: model)
            let tokenizer = try loaded.tokenizer
            let ids = tokenizer.encode(text, addSpecial: !noSpecial, parseSpecial: !noParseSpecial)
            let pieces = ids.map { tokenizer.piece($0) ?? "" }
            if json {
                let object = JSONOutput.object(["ids": .array(ids.map { .int(Int($0)) }), "pieces": .array(pieces.map(JSONOutput.string))])
                writeStdout(object.text() + "\n")
            } else if idsOnly {
                say(ids.map(String.init).joined(separator: ","))
            } else {
                for (id, piece) in zip(ids, pieces) { say("\(id)\t\(piece.debugDescription)") }
                Terminal.error("\(ids.count) tokens")
            }
        }
    }
}
