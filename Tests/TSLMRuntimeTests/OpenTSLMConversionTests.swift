import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
@testable import TSLMRuntime

/// Converting OpenTSLM checkpoints: what is stored, and the clear errors for a missing or wrong
/// base, missing Flamingo token ids, and inconsistent files.
final class OpenTSLMConversionTests: XCTestCase {
    func folder(_ name: String) throws -> String { try OpenTSLMParityTests.folder(name) }

    func expectError(_ body: @autoclosure () throws -> Any, file: StaticString = #filePath, line: UInt = #line,
                     _ check: (TSLMError) -> Bool) {
        assertThrows(TSLMError.self, try body(), file: file, line: line, check)
    }

    func testStoredLayout() throws {
        let sp = try OpenTSLMParityTests.load("sp_llama_3series")
        let m = sp.file.metadata
        XCTAssertEqual(m.string("general.architecture"), "llama", "the backbone's architecture is kept")
        XCTAssertEqual(m.string("general.family"), "opentslm-sp")
        XCTAssertEqual(m.int("opentslm.encoder.max_patches"), 16, "read from pos_embed")
        XCTAssertEqual(m.int("opentslm.encoder.block_count"), 2)
        XCTAssertEqual(m.int("opentslm.encoder.feed_forward_length"), 64)
        XCTAssertEqual(m.int("opentslm.patch_size"), 4)
        XCTAssertEqual(sp.file.entry("ts.enc.patch_embd.weight")?.shape, [128, 4])
        XCTAssertEqual(sp.file.entry("ts.enc.pos_embd.weight")?.shape, [16, 128])
        XCTAssertEqual(sp.file.entry("ts.enc.blk.1.attn_qkv.weight")?.shape, [384, 128])
        XCTAssertNil(m["opentslm.lora.merged"])
        let fl = try OpenTSLMParityTests.load("flamingo_llama_3series")
        let f = fl.file.metadata
        XCTAssertEqual(f.string("general.family"), "opentslm-flamingo")
        XCTAssertEqual(f.int("opentslm.media_token_id"), 257)
        XCTAssertEqual(f.int("opentslm.end_of_chunk_token_id"), 256)
        XCTAssertEqual(f.int("opentslm.perceiver.latent_count"), 64)
        XCTAssertEqual(f.int("opentslm.perceiver.key_length"), 4)
        XCTAssertEqual(f.int("opentslm.xattn.every_n_layers"), 1)
        XCTAssertEqual(f.int("llama.vocab_size"), 259)
        XCTAssertEqual(fl.file.entry("blk.1.xattn_kv.weight")?.shape, [64, 128])
        // One copy of every tensor: no llm.* duplicates, no aliases.
        XCTAssertFalse(fl.file.tensors.contains { $0.name.contains("old_decoder") || $0.name.contains("llm") })
        XCTAssertEqual(Set(fl.file.tensors.map(\.name)).count, fl.file.tensors.count)
    }

    /// The trained embedding table inside a Flamingo checkpoint replaces the base's.
    func testFlamingoCheckpointEmbeddingsReplaceTheBase() throws {
        let fl = try OpenTSLMParityTests.load("flamingo_llama_1series")
        let base = try Converter.importModel(path: try folder("flamingo_llama_1series") + "/base")
        let baseEmbedding = try XCTUnwrap(base.tensors.first { $0.name == "token_embd.weight" }).load()
        let stored = try fl.file.tensorData("token_embd.weight")
        XCTAssertEqual(stored.bytes.count, baseEmbedding.bytes.count)
        XCTAssertNotEqual(Array(stored.bytes), Array(baseEmbedding.bytes))
    }

    /// A `.tslm` base gives the same file as the Hugging Face folder it came from (LoRA included).
    func testTSLMBaseEqualsHuggingFaceBase() throws {
        let f = try folder("sp_llama_lora")
        let baseTSLM = NSTemporaryDirectory() + "tslm-base-\(UUID().uuidString).tslm"
        try Converter.write(try Converter.importModel(path: f + "/base"), to: baseTSLM, options: ConvertOptions())
        defer { unlink(baseTSLM) }
        var checksums: [[String: UInt64]] = []
        for base in [f + "/base", baseTSLM] {
            let out = NSTemporaryDirectory() + "tslm-sp-\(UUID().uuidString).tslm"
            try Converter.write(try Converter.importModel(path: f + "/model_checkpoint.pt", base: base), to: out, options: ConvertOptions())
            defer { unlink(out) }
            let file = try TSLMFile(path: out)
            checksums.append(Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.checksum) }))
        }
        XCTAssertEqual(checksums[0], checksums[1])
    }

    func testMissingBaseIsAClearError() throws {
        for name in ["sp_llama_1series", "flamingo_llama_1series"] {
            expectError(try Converter.importModel(path: try folder(name) + "/model_checkpoint.pt", base: nil)) {
                if case let .invalidArgument(n, reason) = $0 { return n == "--base" && reason.contains("OpenTSLM") }
                return false
            }
        }
    }

    func testWrongBaseIsAClearError() throws {
        let gpt2 = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/backbones/gpt2").path
        expectError(try Converter.importModel(path: try folder("sp_llama_1series") + "/model_checkpoint.pt", base: gpt2)) {
            if case .unknownArchitecture = $0 { return true }
            return false
        }
        // A 3-layer base under a checkpoint trained on 2 layers.
        let gemma = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/backbones/gemma3").path
        var options = OpenTSLMImporter.Options()
        options.mediaTokenID = 257
        options.endOfChunkTokenID = 256
        XCTAssertThrowsError(try Converter.importModel(path: try folder("flamingo_llama_1series") + "/model_checkpoint.pt", base: gemma, openTSLM: options))
        // A base folder that is not a model at all.
        expectError(try Converter.importModel(path: try folder("sp_llama_1series") + "/model_checkpoint.pt", base: "/nonexistent/base")) {
            if case .io = $0 { return true }
            return false
        }
        // Something else than a checkpoint on top of a base.
        expectError(try Converter.importModel(path: try folder("sp_llama_1series") + "/golden.json", base: try folder("sp_llama_1series") + "/base")) { _ in true }
    }

    func testFlamingoWithoutTokenizerNeedsTheTokenIDs() throws {
        let f = try folder("flamingo_llama_1series")
        expectError(try Converter.importModel(path: f + "/model_checkpoint.pt", base: f + "/base")) {
            if case let .malformed(_, reason) = $0 { return reason.contains("--media-token-id") }
            return false
        }
        var options = OpenTSLMImporter.Options()
        options.mediaTokenID = 400
        options.endOfChunkTokenID = 256
        expectError(try Converter.importModel(path: f + "/model_checkpoint.pt", base: f + "/base", openTSLM: options)) {
            if case .invalidArgument = $0 { return true }
            return false
        }
    }

    /// With a tokenizer, Flamingo's tokens are added as upstream's add_special_tokens does.
    func testFlamingoTokensAreAddedToTheTokenizer() throws {
        var m = Metadata()
        m["tokenizer.tokens"] = .array(.string(["a", "b", "c"]))
        m["tokenizer.token_type"] = .array(.i32([1, 1, 3]))
        let ids = try OpenTSLMImporter.addFlamingoTokens(&m, rows: 6, options: OpenTSLMImporter.Options(), path: "x")
        XCTAssertEqual(ids.end, 3)
        XCTAssertEqual(ids.media, 4)
        XCTAssertEqual(m.strings("tokenizer.tokens"), ["a", "b", "c", "<|endofchunk|>", "<image>", "<PAD>"])
        XCTAssertEqual(m.int("tokenizer.pad_token_id"), 5)
        if case let .array(.i32(t))? = m["tokenizer.token_type"] { XCTAssertEqual(t, [1, 1, 3, 3, 3, 3]) } else { XCTFail("token types") }
        // A pad token already there: two tokens; "<image>" already there: reused.
        var n = Metadata()
        n["tokenizer.tokens"] = .array(.string(["<pad>", "<image>", "x"]))
        n["tokenizer.pad_token_id"] = .u32(0)
        let ids2 = try OpenTSLMImporter.addFlamingoTokens(&n, rows: 4, options: OpenTSLMImporter.Options(), path: "x")
        XCTAssertEqual(ids2.media, 1)
        XCTAssertEqual(ids2.end, 3)
        // More tokens than embedding rows.
        var o = Metadata()
        o["tokenizer.tokens"] = .array(.string(["a", "b", "c"]))
        XCTAssertThrowsError(try OpenTSLMImporter.addFlamingoTokens(&o, rows: 5, options: OpenTSLMImporter.Options(), path: "x"))
    }

    /// A Flamingo checkpoint that leaves out the frozen language model (embedding table
    /// included) gets the base's tables grown with a zero row per added token, as f32.
    func testFlamingoWithoutEmbeddingsAppendsZeroRows() throws {
        func tensor(_ name: String, _ values: [Float], rows: Int) -> SourceTensor {
            let halves = values.map { Float16($0) }
            return SourceTensor(name: name, dtype: .f16, shape: [rows, 2]) {
                let d = TensorData(allocating: halves.count * 2)
                halves.withUnsafeBytes { d.mutableBytes.copyMemory(from: $0) }
                return d
            }
        }
        var model = ImportedModel(architecture: "llama", sourceFormat: "safetensors", sourcePath: "base")
        model.metadata["tokenizer.tokens"] = .array(.string(["a", "b", "c"]))
        model.tensors = [tensor("token_embd.weight", [1, 2, 3, 4, 5, 6], rows: 3), tensor("output.weight", [-1, -2, -3, -4, -5, -6], rows: 3)]
        let (rows, media, end) = try OpenTSLMImporter.appendZeroRows(for: &model, hidden: 2, options: OpenTSLMImporter.Options(), path: "ck.pt")
        XCTAssertEqual(rows, 6, "3 tokens + <|endofchunk|>, <image>, <PAD>")
        XCTAssertEqual(end, 3)
        XCTAssertEqual(media, 4)
        for (name, first) in [("token_embd.weight", [Float(1), 2, 3, 4, 5, 6]), ("output.weight", [-1, -2, -3, -4, -5, -6])] {
            let t = try XCTUnwrap(model.tensors.first { $0.name == name })
            XCTAssertEqual(t.dtype, .f32)
            XCTAssertEqual(t.shape, [6, 2])
            let values = try t.load().withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            XCTAssertEqual(values, first + Array(repeating: 0, count: 6), name)
        }
        // A base whose output table does not match its embedding table is an error.
        model.tensors = [tensor("token_embd.weight", [1, 2, 3, 4, 5, 6], rows: 3), tensor("output.weight", [1, 2, 3, 4], rows: 2)]
        model.metadata["tokenizer.tokens"] = .array(.string(["a", "b", "c"]))
        expectError(try OpenTSLMImporter.appendZeroRows(for: &model, hidden: 2, options: OpenTSLMImporter.Options(), path: "ck.pt")) {
            if case let .invalidShape(_, tensor, _, _) = $0 { return tensor == "output.weight" }
            return false
        }
    }

    /// A `.tslm` whose `opentslm.*` metadata contradicts its tensors does not load.
    func testInconsistentFilesAreRejected() throws {
        func load(_ edit: (inout Metadata) -> Void) throws {
            var extra = Metadata()
            edit(&extra)
            _ = try OpenTSLMParityTests.load("sp_llama_1series", metadata: extra)
        }
        XCTAssertThrowsError(try load { $0["opentslm.encoder.block_count"] = .u32(1) })
        XCTAssertThrowsError(try load { $0["opentslm.encoder.max_patches"] = .u32(64) })
        XCTAssertThrowsError(try load { $0["opentslm.encoder.head_count"] = .u32(7) })
        XCTAssertThrowsError(try load { $0["general.family"] = .string("opentslm-other") })
        XCTAssertThrowsError(try load { $0["opentslm.patch_size"] = .u32(0) })
        XCTAssertNoThrow(try load { _ in })
    }
}
