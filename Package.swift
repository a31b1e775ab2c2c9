// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "tslm",
    products: [
        .executable(name: "tslm", targets: ["TSLMCLI"]),
        .library(name: "TSLMFormat", targets: ["TSLMFormat"]),
        .library(name: "TSLMConvert", targets: ["TSLMConvert"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // libzstd from the system (Debian: libzstd-dev).
        .systemLibrary(name: "CZstd", path: "Sources/CZstd",
                       providers: [.apt(["libzstd-dev"])]),
        // The .tslm format: dtypes, block quantization, metadata, reader, writer, checksums.
        .target(name: "TSLMFormat", dependencies: ["CZstd"]),
        // Importers (safetensors, PyTorch zip, GGUF), architecture name maps, the quantizer.
        .target(name: "TSLMConvert", dependencies: ["TSLMFormat"]),
        // The `tslm` command-line tool.
        .executableTarget(name: "TSLMCLI", dependencies: [
            "TSLMConvert", "TSLMFormat",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "TSLMFormatTests", dependencies: ["TSLMFormat"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TSLMConvertTests", dependencies: ["TSLMConvert", "TSLMFormat"],
                    resources: [.copy("Fixtures")]),
    ]
)
