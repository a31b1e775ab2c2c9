// swift-tools-version:6.1
import Foundation
import PackageDescription

// The kernels use AVX2, FMA and F16C on x86-64 (int8 dot products through vpmaddubsw, f16 loads
// through vcvtph2ps): Swift's portable SIMD types do not generate them. Such a build needs a
// Haswell / Zen or newer CPU. Other architectures use the portable SIMD path.
// TSLM_PORTABLE=1 in the environment of `swift build` forces the portable SIMD path on x86-64 too
// (`make test-portable` tests it there, as aarch64 devices run it).
let portable = ProcessInfo.processInfo.environment["TSLM_PORTABLE"] == "1"
// TSLM_FUZZ=1 (set by `make fuzz`, mk/reliability.mk, with --sanitize fuzzer): TSLMFuzz is built
// without its main.swift, as libFuzzer supplies `main`.
let fuzzing = ProcessInfo.processInfo.environment["TSLM_FUZZ"] == "1"
#if arch(x86_64)
let kernelSettings: [SwiftSetting] = portable ? [] : [
    .define("TSLM_X86_AVX2"),
    .unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"]),
]
// The prefill GEMM's and softmax's AVX-512 loops live in their own module, compiled for AVX-512F, and
// run only where the CPU has it (`CPUFeatures.avx512f`, checked at run time).
let avx512Settings: [SwiftSetting] = portable ? [] : [
    .define("TSLM_X86_AVX512"),
    .unsafeFlags(["-Xcc", "-mavx512f", "-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"]),
]
// The integer prefill GEMM's VNNI micro-kernels (vpdpbusd, vpdpwssd) likewise, compiled for AVX-512F and
// AVX-512 VNNI, run only where the CPU has both (`CPUFeatures.avx512vnni`).
let vnniSettings: [SwiftSetting] = portable ? [] : [
    .define("TSLM_X86_AVX512"),
    .unsafeFlags(["-Xcc", "-mavx512f", "-Xcc", "-mavx512vnni", "-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"]),
]
#else
let kernelSettings: [SwiftSetting] = []
let avx512Settings: [SwiftSetting] = []
let vnniSettings: [SwiftSetting] = []
#endif

// The library modules (libtslm.so) and the CLI's (TSLMConvert, TSLMSeriesInput, TSLMCLI) use only
// the standard library and libc, no Foundation (a static CLI with Foundation's ICU data was 58 MiB):
// a file may use only what it imports itself.
let runtimeSettings: [SwiftSetting] = [.enableUpcomingFeature("MemberImportVisibility")]

/// This package's folder (linker flags need absolute paths).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

let package = Package(
    name: "tslm",
    products: [
        .executable(name: "tslm", targets: ["TSLMCLI"]),
        .library(name: "TSLMFormat", targets: ["TSLMFormat"]),
        .library(name: "TSLMConvert", targets: ["TSLMConvert"]),
        .library(name: "TSLMRuntime", targets: ["TSLMRuntime"]),
        // The C interface of include/tslm.h as libtslmc.so (its soname is libtslm.so: `make lib`
        // and `make install` give it that name; the product name `tslm` is the CLI's).
        .library(name: "tslmc", type: .dynamic, targets: ["TSLMCAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // libzstd from the system (Debian: libzstd-dev).
        .systemLibrary(name: "CZstd", path: "Sources/CZstd",
                       providers: [.apt(["libzstd-dev"])]),
        // The .tslm format: dtypes, block quantization, metadata, reader, writer, checksums.
        .target(name: "TSLMFormat", dependencies: ["CZstd"], swiftSettings: runtimeSettings),
        // Importers (safetensors, PyTorch zip, GGUF), architecture name maps, the quantizer.
        .target(name: "TSLMConvert", dependencies: ["TSLMFormat"], swiftSettings: runtimeSettings),
        // Compute kernels: scalar references and SIMD versions, the worker pool.
        // cpuid / XCR0 reading for the kernels' CPU check (no tslm_ symbols: kept local).
        .target(name: "CCPUFeatures"),
        .target(name: "TSLMKernelsAVX512", swiftSettings: avx512Settings + runtimeSettings),
        .target(name: "TSLMKernelsVNNI", dependencies: ["CCPUFeatures"], swiftSettings: vnniSettings + runtimeSettings),
        .target(name: "TSLMKernels", dependencies: ["TSLMFormat", "CCPUFeatures", "TSLMKernelsAVX512", "TSLMKernelsVNNI"],
                swiftSettings: kernelSettings + runtimeSettings),
        // `swift run -c release TSLMKernelsBench [rows] [cols] [tokens]`: kernel GB/s and GFLOP/s.
        .executableTarget(name: "TSLMKernelsBench", dependencies: ["TSLMKernels", "TSLMFormat"],
                          swiftSettings: kernelSettings),
        // Tokenizers: byte-level BPE, SentencePiece BPE, added/special tokens, streaming decode.
        .target(name: "TSLMTokenizers", dependencies: ["TSLMFormat"], swiftSettings: runtimeSettings),
        // Models (one file per architecture), KV cache, sampling, chat templates, generation.
        .target(name: "TSLMRuntime", dependencies: ["TSLMFormat", "TSLMKernels", "TSLMTokenizers"], swiftSettings: runtimeSettings),
        // include/tslm.h as a Clang module, so that Swift implements exactly its declarations.
        .target(name: "CTSLM", path: "include", publicHeadersPath: "."),
        // The C interface (`@c @implementation` of include/tslm.h). Exports only tslm_* symbols.
        .target(name: "TSLMCAPI", dependencies: ["CTSLM", "TSLMRuntime", "TSLMFormat", "TSLMTokenizers"],
                swiftSettings: runtimeSettings,
                linkerSettings: [.unsafeFlags(["-Xlinker", "--version-script=\(packageRoot)/include/tslm.map",
                                               "-Xlinker", "-soname=libtslm.so"])]),
        // Series CSV / JSON files (`tslm run --series`, `tslm eval`): a library so that the fuzz
        // harness reaches the parser.
        .target(name: "TSLMSeriesInput", dependencies: ["TSLMRuntime", "TSLMFormat"], swiftSettings: runtimeSettings),
        // The fuzz targets (one per parser untrusted input reaches), shared by the libFuzzer
        // harness and the corpus replay tests.
        .target(name: "TSLMFuzzTargets", dependencies: ["TSLMConvert", "TSLMFormat", "TSLMRuntime",
                                                        "TSLMSeriesInput", "TSLMTokenizers"]),
        // The libFuzzer harness (`make fuzz`; TSLM_FUZZ_TARGET picks the target). Built without
        // the fuzzer, it replays the files given as arguments.
        .executableTarget(name: "TSLMFuzz", dependencies: ["TSLMFuzzTargets"],
                          exclude: fuzzing ? ["main.swift"] : [],
                          swiftSettings: fuzzing ? [.unsafeFlags(["-parse-as-library"])] : []),
        // The `tslm` command-line tool.
        .executableTarget(name: "TSLMCLI", dependencies: [
            "TSLMConvert", "TSLMFormat", "TSLMKernels", "TSLMRuntime", "TSLMSeriesInput", "TSLMTokenizers",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: runtimeSettings),
        // Helpers the test targets share (SplitMix64, assertThrows, temporary directories, a
        // GGUF metadata reader); a plain target under Tests/ that imports XCTest.
        .target(name: "TSLMTestSupport", dependencies: ["TSLMFormat"], path: "Tests/TSLMTestSupport"),
        .testTarget(name: "TSLMFormatTests", dependencies: ["TSLMFormat", "TSLMTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TSLMConvertTests", dependencies: ["TSLMConvert", "TSLMFormat", "TSLMTestSupport"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TSLMKernelsTests", dependencies: ["TSLMKernels", "TSLMFormat", "TSLMTestSupport"]),
        .testTarget(name: "TSLMTokenizersTests", dependencies: ["TSLMTokenizers", "TSLMFormat", "TSLMTestSupport"],
                    resources: [.copy("Fixtures")]),
        // Every committed fuzz corpus and regression input (fuzz/) replayed through its target.
        .testTarget(name: "TSLMFuzzTests", dependencies: ["TSLMFuzzTargets", "TSLMConvert", "TSLMFormat", "TSLMTestSupport"]),
        .testTarget(name: "TSLMRuntimeTests", dependencies: ["TSLMRuntime", "TSLMConvert", "TSLMFormat", "TSLMTestSupport"],
                    resources: [.copy("Fixtures")]),
    ]
)
