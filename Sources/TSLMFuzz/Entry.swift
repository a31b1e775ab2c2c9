import Foundation
import TSLMFuzzTargets

/// The fuzz target of this process: TSLM_FUZZ_TARGET (tslm, safetensors, gguf, pytorch, pickle,
/// tokenizer-json, sentencepiece, series, chat-template, forecast).
let selectedTarget: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["TSLM_FUZZ_TARGET"] ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("TSLM_FUZZ_TARGET must be one of: \(names) (got '\(name)')\n".utf8))
        exit(2)
    }
    return t
}()

/// libFuzzer's entry point (built with `--sanitize fuzzer`, which supplies `main`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selectedTarget.run(bytes)
    return 0
}
