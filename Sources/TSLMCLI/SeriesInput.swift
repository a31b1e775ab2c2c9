// The series file parser (SeriesFile) lives in the TSLMSeriesInput library, so that the fuzz
// harness (Sources/TSLMFuzzTargets) reaches it; re-exported for the commands here.
@_exported import TSLMSeriesInput
