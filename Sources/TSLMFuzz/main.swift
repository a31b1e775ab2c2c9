import Foundation
import TSLMFuzzTargets

// Without the fuzzer (a plain `swift build`): runs the files given as arguments through the target
// of TSLM_FUZZ_TARGET once each, to reproduce a crash without sanitizers. The fuzzing build
// (`make fuzz`, TSLM_FUZZ=1) leaves this file out: libFuzzer supplies `main`.
let arguments = CommandLine.arguments.dropFirst()
if arguments.isEmpty {
    FileHandle.standardError.write(Data("usage: TSLM_FUZZ_TARGET=<target> TSLMFuzz FILE...\n".utf8))
    exit(2)
}
for path in arguments {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("cannot read \(path)\n".utf8))
        exit(1)
    }
    if let error = selectedTarget.rejection([UInt8](data)) {
        print("\(selectedTarget.rawValue): \(path) ok, rejected: \(error)")
    } else {
        print("\(selectedTarget.rawValue): \(path) ok, accepted")
    }
}
