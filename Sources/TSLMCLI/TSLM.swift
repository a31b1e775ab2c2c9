import ArgumentParser
import TSLMConvert
import TSLMFormat
import TSLMRuntime

@main
struct TSLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tslm",
        abstract: "Convert, quantize, inspect and run time-series language models.",
        discussion: """
        Examples:
          tslm convert SmolLM2-135M-Instruct.Q4_1.gguf -o smollm2.tslm --type q8_0
          tslm convert ./my-hf-model/ -o model.tslm --type f16
          tslm quantize model.tslm model-q4.tslm --type q4_0
          tslm info model.tslm
          tslm verify model.tslm
        """,
        version: "tslm \(tslmVersion)",
        subcommands: [Convert.self, Quantize.self, Info.self, Verify.self, Run.self, Eval.self, ForecastCmd.self, Tokenize.self, Bench.self, Perplexity.self]
    )
}

/// Runs `body`, turning library errors into a one-line message and exit status 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as TSLMError {
        Terminal.error("error: \(e)")
        throw ExitCode(1)
    } catch let e as RuntimeError {
        Terminal.error("error: \(e)")
        throw ExitCode(1)
    }
}

/// `--kv auto|f32|f16`.
extension KVPrecision: ExpressibleByArgument {}
