import CZstd
import Foundation
import TSLMFormat
import XCTest

/// Loading the committed fixtures (see tools/make_tokenizer_conformance.py).
enum Fixtures {
    static func url(_ name: String) throws -> URL {
        let base = (name as NSString).deletingPathExtension, ext = (name as NSString).pathExtension
        guard let u = Bundle.module.url(forResource: base, withExtension: ext, subdirectory: "Fixtures") else {
            throw XCTSkip("fixture \(name) is missing")
        }
        return u
    }

    /// The repository root (for `.cache/`), from this source file's path.
    static var repoRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// corpus.txt: one JSON string literal per line. (Read with JSONDecoder: Foundation's
    /// JSONSerialization drops a U+FEFF that starts a string on Linux.)
    static func corpus() throws -> [String] {
        let text = try String(contentsOf: url("corpus.txt"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        return try JSONDecoder().decode([String].self, from: Data(("[" + lines.joined(separator: ",") + "]").utf8))
    }

    /// Decompresses a whole zstd frame that records its size.
    static func zstd(_ name: String) throws -> Data {
        let src = try [UInt8](Data(contentsOf: url(name)))
        let size = src.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
        guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size < 1 << 30 else {
            throw TokenizerTestError("\(name): not a sized zstd frame")
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        try src.withUnsafeBytes { s in
            try out.withUnsafeMutableBytes { d in try Zstd.decompress(s, into: d, file: name, tensor: "-") }
        }
        return Data(out)
    }

    struct ExpectedIDs: Decodable {
        var source: String
        var ids: [[Int32]]
        /// Line index (as a string) → the reference's decode, where it differs from the line.
        var decoded: [String: String]
    }

    static func expectedIDs(_ name: String) throws -> ExpectedIDs {
        try JSONDecoder().decode(ExpectedIDs.self, from: zstd(name))
    }

    struct SentencePieceVocab: Decodable {
        var tokens: [String]
        var scores: [Float]
        var token_type: [Int32]
    }
}

struct TokenizerTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
