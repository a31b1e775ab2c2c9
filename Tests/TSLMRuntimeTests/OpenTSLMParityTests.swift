import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
@testable import TSLMKernels
@testable import TSLMRuntime

/// OpenTSLM SoftPrompt and Flamingo against the PyTorch reference (fixtures:
/// `tools/make_opentslm_fixtures.py`, see tools/README-fixtures.md): each case is converted from
/// its official-layout `model_checkpoint.pt` on top of its `base/` folder, then the encoder
/// outputs, soft tokens or perceiver latents, the logits and 16 greedy tokens are compared.
final class OpenTSLMParityTests: XCTestCase {
    /// f32 tolerance relative to the largest |value| of what is compared (accumulation order
    /// differs from PyTorch's; nothing else should).
    static let relativeTolerance: Float = 1e-4

    struct Golden: Decodable {
        struct TokenIDs: Decodable {
            let bos_id: Int32
            let eos_id: Int32
            let pre_prompt: [Int32]
            let series_descriptions: [[Int32]]
            let post_prompt: [Int32]
            let input_ids: [Int32]?
            let media_token_id: Int?
            let endofchunk_token_id: Int?
        }
        struct Series: Decodable {
            let raw: [[Float]]
            let lengths: [Int]
            let mean: [Double]
            let std: [Double]
            let normalized: [[Float]]
            let padded_length: Int
        }
        struct Sums: Decodable { let sum: Double; let abs_sum: Double }
        struct Encoder: Decodable {
            let patches_per_series: Int
            let first_rows: [[[Float]]]
            let sums: [Sums]
        }
        struct SoftTokens: Decodable {
            let hidden: Int
            let first_rows: [[[Float]]]
            let sums: [Sums]
        }
        struct Perceiver: Decodable {
            let first_rows: [[Float]]
            let sums: Sums
            let media_tokens: Int
        }
        struct Sequence: Decodable { let length: Int }
        struct LoRA: Decodable { let r: Int; let alpha: Double; let scale: Double }
        let architecture: String
        let backbone: String
        let token_ids: TokenIDs
        let series: Series
        let encoder: Encoder
        let soft_tokens: SoftTokens?
        let perceiver: Perceiver?
        let text_time: [Int]?
        let generated_text_time: Int?
        let sequence: Sequence
        let logits_last: [Float]
        let logits_all_argmax: [Int]
        let logits_rows_positions: [Int]
        let logits_rows: [[Float]]
        let greedy_ids: [Int32]
        let lora: LoRA?
    }

    struct Case {
        let name: String
        let folder: String
        let golden: Golden
        let file: TSLMFile
        let loaded: LoadedModel
        /// The family under test (its building blocks are what the parity checks compare).
        let ts: OpenTSLMFamily
        var backbone: any TextModel { ts.backbone }
    }

    static func folder(_ name: String) throws -> String {
        let url = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/opentslm/\(name)")
        guard FileManager.default.fileExists(atPath: url.path + "/golden.json") else {
            throw RuntimeError.invalidArgument(name: "fixture", reason: "missing \(url.path)/golden.json")
        }
        return url.path
    }

    static func golden(_ name: String) throws -> Golden {
        try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: folder(name) + "/golden.json")))
    }

    /// Converts a case (checkpoint + base, with `extra` metadata) to a temporary `.tslm`; the
    /// caller deletes it.
    static func convert(_ name: String, type: TargetType = .source, metadata extra: Metadata = Metadata()) throws -> String {
        let folder = try folder(name)
        let golden = try golden(name)
        var options = OpenTSLMImporter.Options()
        options.mediaTokenID = golden.token_ids.media_token_id
        options.endOfChunkTokenID = golden.token_ids.endofchunk_token_id
        var model = try Converter.importModel(path: folder + "/model_checkpoint.pt", base: folder + "/base", openTSLM: options)
        for (k, v) in extra.entries { model.metadata[k] = v }
        let out = NSTemporaryDirectory() + "tslm-\(name)-\(UUID().uuidString).tslm"
        try Converter.write(model, to: out, options: ConvertOptions(target: type))
        return out
    }

    /// Converts a case and loads it.
    /// The fixtures have no tokenizer (the checks pass token ids); the family needs one, so the
    /// session tests' test tokenizer (`<tN>` is id N) is added.
    static func load(_ name: String, type: TargetType = .source, metadata extra: Metadata = Metadata()) throws -> Case {
        let folder = try folder(name)
        let golden = try golden(name)
        var metadata = OpenTSLMSessionTests.tokenizerMetadata(vocabulary: golden.logits_last.count, golden: golden)
        for (k, v) in extra.entries { metadata[k] = v }
        let out = try convert(name, type: type, metadata: metadata)
        let file = try TSLMFile(path: out)
        unlink(out)  // the mapping stays valid
        let loaded = try LoadedModel(file: file)
        return Case(name: name, folder: folder, golden: golden, file: file, loaded: loaded,
                    ts: try XCTUnwrap(loaded.family as? OpenTSLMFamily))
    }

    /// max |a − b| / max |b|.
    static func relativeError(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }

    func checkClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        guard a.count == b.count else { return }
        XCTAssertLessThanOrEqual(Self.relativeError(a, b), Self.relativeTolerance, what, file: file, line: line)
    }

    func checkSums(_ values: [Float], _ s: Golden.Sums, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let sum = values.reduce(0.0) { $0 + Double($1) }, abs = values.reduce(0.0) { $0 + Swift.abs(Double($1)) }
        XCTAssertEqual(abs, s.abs_sum, accuracy: s.abs_sum * 1e-5, "\(what) abs-sum", file: file, line: line)
        XCTAssertEqual(sum, s.sum, accuracy: s.abs_sum * 1e-5, "\(what) sum", file: file, line: line)
    }

    static func argmax(_ row: ArraySlice<Float>) -> Int {
        Array(row).withUnsafeBufferPointer { Sampler.argmaxIndex($0) }
    }

    /// The golden series padded to the common length (as the reference's collate).
    static func padded(_ g: Golden) -> [[Float]] {
        g.series.normalized.map { $0 + Array(repeating: 0, count: g.series.padded_length - $0.count) }
    }

    // MARK: - Encoder

    func checkEncoder(_ c: Case, pool: ThreadPool?) throws {
        let g = c.golden
        for (i, s) in Self.padded(g).enumerated() {
            let enc = try c.ts.encode(s, pool: pool)
            XCTAssertEqual(enc.count, g.encoder.patches_per_series * 128, "\(c.name) series \(i) patches")
            for (r, row) in g.encoder.first_rows[i].enumerated() {
                checkClose(Array(enc[(r * 128)..<((r + 1) * 128)]), row, "\(c.name) encoder series \(i) row \(r)")
            }
            checkSums(enc, g.encoder.sums[i], "\(c.name) encoder series \(i)")
        }
    }

    /// The HAR preset's normalization reproduces the reference's normalized values and statistics.
    func checkNormalization(_ g: Golden, _ name: String) {
        for (i, raw) in g.series.raw.enumerated() {
            let p = SeriesPreset.har.prepare(raw[...], channel: i, template: "{mean} {std}")
            XCTAssertEqual(p.values.count, g.series.normalized[i].count)
            XCTAssertLessThanOrEqual(Self.relativeError(p.values, g.series.normalized[i]), 1e-6, "\(name) series \(i) normalization")
            XCTAssertEqual(p.mean, g.series.mean[i], accuracy: 1e-12)
            XCTAssertEqual(p.std, g.series.std[i], accuracy: 1e-12)
            XCTAssertEqual(p.description, String(format: "%.4f %.4f", g.series.mean[i], g.series.std[i]))
        }
    }

    // MARK: - Whole prompts

    /// The prompt rows of a case, logits at every position, and the greedy continuation: the
    /// family builds the rows (and Flamingo's media item in the session's state) and the session
    /// — the runtime's one forward driver — runs them.
    func runCase(_ c: Case, pool: ThreadPool?) throws -> (rows: PromptRows, logits: [Float], greedy: [Int32], conditioning: FlamingoConditioning?) {
        let g = c.golden
        let session = try TextSession(c.loaded, contextLength: 128, pool: pool)
        session.batchSize = 7
        let conditioning = session.promptState as? FlamingoConditioning
        let rows: PromptRows
        if g.architecture == "softprompt" {
            XCTAssertNil(conditioning)
            var parts: [OpenTSLMFamily.SoftPromptPart] = [.tokens(g.token_ids.pre_prompt)]
            for (d, s) in zip(g.token_ids.series_descriptions, g.series.normalized) { parts += [.tokens(d), .series(s)] }
            parts.append(.tokens(g.token_ids.post_prompt))
            rows = try c.ts.rows(softPrompt: parts, pool: pool)
        } else {
            rows = PromptRows(tokens: try XCTUnwrap(g.token_ids.input_ids))
            try c.ts.condition(try XCTUnwrap(conditioning), on: g.series.normalized, pool: pool)
        }
        let logits = try session.run(rows, output: .allLogits)
        // Cached greedy decoding, EOS ignored.
        let v = c.backbone.config.vocabularySize
        var last = Array(logits[((rows.tokens.count - 1) * v)...])
        var greedy: [Int32] = []
        while greedy.count < g.greedy_ids.count {
            let next = Int32(Self.argmax(last[...]))
            greedy.append(next)
            if greedy.count == g.greedy_ids.count { break }
            last = try session.run(PromptRows(tokens: [next]))
        }
        XCTAssertEqual(session.tokens.count, rows.tokens.count + greedy.count - 1)
        return (rows, logits, greedy, conditioning)
    }

    func checkCase(_ name: String) throws {
        let c = try Self.load(name)
        let g = c.golden
        checkNormalization(g, name)
        for pool in [nil, ThreadPool(threads: 2)] {
            try checkEncoder(c, pool: pool)
            if let st = g.soft_tokens {
                for (i, s) in Self.padded(g).enumerated() {
                    let soft = try c.ts.softTokens(s, pool: pool)
                    for (r, row) in st.first_rows[i].enumerated() {
                        checkClose(Array(soft[(r * st.hidden)..<((r + 1) * st.hidden)]), row, "\(name) soft token series \(i) row \(r)")
                    }
                    checkSums(soft, st.sums[i], "\(name) soft tokens series \(i)")
                }
            }
            if let p = g.perceiver {
                let latents = try c.ts.latents(g.series.normalized, pool: pool)
                for (r, row) in p.first_rows.enumerated() {
                    checkClose(Array(latents[(r * 128)..<((r + 1) * 128)]), row, "\(name) latent row \(r)")
                }
                checkSums(latents, p.sums, "\(name) latents")
                XCTAssertEqual(p.media_tokens, g.series.normalized.count * g.encoder.patches_per_series)
            }
            let (rows, logits, greedy, conditioning) = try runCase(c, pool: pool)
            let v = c.backbone.config.vocabularySize
            let n = rows.tokens.count
            XCTAssertEqual(n, g.sequence.length, "\(name) sequence length")
            checkClose(Array(logits[((n - 1) * v)..<(n * v)]), g.logits_last, "\(name) last logits")
            for (p, row) in zip(g.logits_rows_positions, g.logits_rows) {
                checkClose(Array(logits[(p * v)..<((p + 1) * v)]), row, "\(name) logits at \(p)")
            }
            XCTAssertEqual((0..<n).map { Self.argmax(logits[($0 * v)..<(($0 + 1) * v)]) }, g.logits_all_argmax, "\(name) argmax")
            XCTAssertEqual(greedy, g.greedy_ids, "\(name) greedy tokens")
            if let t = g.text_time, let conditioning {
                XCTAssertEqual(conditioning.cachedMediaCount, g.generated_text_time, "\(name) generated text time")
                XCTAssertEqual(c.ts.makeConditioning()?.textTimes(forCall: rows.tokens), t, "\(name) text times")
            }
        }
    }

    func testSoftPromptLlamaOneSeries() throws { try checkCase("sp_llama_1series") }
    func testSoftPromptLlamaThreeSeries() throws { try checkCase("sp_llama_3series") }
    func testSoftPromptGemma3ThreeSeries() throws { try checkCase("sp_gemma3_3series") }
    func testSoftPromptLlamaLoRA() throws { try checkCase("sp_llama_lora") }
    func testFlamingoLlamaOneSeries() throws { try checkCase("flamingo_llama_1series") }
    func testFlamingoLlamaThreeSeries() throws { try checkCase("flamingo_llama_3series") }
    func testFlamingoGemma3ThreeSeries() throws { try checkCase("flamingo_gemma3_3series") }

    /// The converter read the LoRA hyperparameters from the PEFT `LoraConfig` object in the
    /// checkpoint and merged the adapters (without them the logits move, see `sensitivity`).
    func testLoRAIsMergedWithTheConfigsScale() throws {
        let c = try Self.load("sp_llama_lora")
        let lora = try XCTUnwrap(c.golden.lora)
        XCTAssertEqual(c.file.metadata.bool("opentslm.lora.merged"), true)
        XCTAssertEqual(c.file.metadata.int("opentslm.lora.rank"), lora.r)
        XCTAssertEqual(c.file.metadata.double("opentslm.lora.alpha") ?? 0, lora.alpha, accuracy: 1e-6)
        XCTAssertEqual(c.file.metadata.double("opentslm.lora.scale") ?? 0, lora.scale, accuracy: 1e-6)
        XCTAssertEqual(c.file.metadata.int("opentslm.lora.target_count"), 7 * c.backbone.config.layers)
        // The merged weights differ from the base's.
        let base = try BackboneRegistry.load(try TSLMFile(path: try convertBase("sp_llama_lora")))
        let x = FloatBuffer(c.backbone.config.hidden), y = FloatBuffer(c.backbone.config.hidden)
        try c.backbone.embed([5], into: x.pointer)
        try base.embed([5], into: y.pointer)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: x.pointer, count: 64)), Array(UnsafeBufferPointer(start: y.pointer, count: 64)),
                       "LoRA does not touch the embeddings")
        let merged = try (c.backbone as? LlamaModel).map { m in try XCTUnwrap(m.weights.file.entry("blk.0.attn_q.weight")) }
        let plain = try XCTUnwrap(try TSLMFile(path: try convertBase("sp_llama_lora")).entry("blk.0.attn_q.weight"))
        XCTAssertNotEqual(merged?.checksum, plain.checksum)
    }

    /// The base alone as a `.tslm` (for comparisons); returns its path (deleted at teardown).
    func convertBase(_ name: String) throws -> String {
        let out = NSTemporaryDirectory() + "tslm-base-\(name)-\(UUID().uuidString).tslm"
        try Converter.write(try Converter.importModel(path: try Self.folder(name) + "/base"), to: out, options: ConvertOptions())
        addTeardownBlock { unlink(out) }
        return out
    }

    /// q8_0 storage keeps the encoder and the prompt close to f32.
    func testQuantizedSoftPromptStaysClose() throws {
        let c = try Self.load("sp_llama_3series", type: .type(.q8_0))
        let (rows, logits, _, _) = try runCase(c, pool: nil)
        let v = c.backbone.config.vocabularySize
        let n = rows.tokens.count
        XCTAssertLessThan(Self.relativeError(Array(logits[((n - 1) * v)..<(n * v)]), c.golden.logits_last), 0.1)
    }
}
