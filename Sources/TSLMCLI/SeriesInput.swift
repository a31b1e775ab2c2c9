import Foundation
// The series file parser (SeriesFile) lives in the TSLMSeriesInput library, so that the fuzz
// harness (Sources/TSLMFuzzTargets) reaches it; re-exported for the commands here.
@_exported import TSLMSeriesInput

/// Writes a line to stdout unbuffered, so it stays in order with streamed text and stderr.
func say(_ s: String) {
    FileHandle.standardOutput.write(Data((s + "\n").utf8))
}
