import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
@testable import TSLMKernels
@testable import TSLMRuntime

/// OpenTSLM through the session API (`appendText`, `appendSeries`, `generate`), the one the C API
/// calls: raw series in, the preset's normalization, the prompt layout of each variant, greedy
/// tokens equal to the PyTorch reference; and every kind of bad input.
///
/// The fixtures have no tokenizer, so the tests give them one where every token is an added
/// token `<tN>` (id N) and spaces normalize away: the text `"<t5><t9>"` is the ids [5, 9], and
/// Flamingo's `"pre <image> desc <|endofchunk|> post"` is exactly the reference's id list.
final class OpenTSLMSessionTests: XCTestCase {
    typealias Golden = OpenTSLMParityTests.Golden

    /// Token metadata: id i is `<ti>` (or the Flamingo token of that id), all user-defined;
    /// BOS as the fixture's, no EOS (the reference decodes 16 tokens ignoring EOS).
    static func tokenizerMetadata(vocabulary: Int, golden: Golden) -> Metadata {
        var tokens = (0..<vocabulary).map { "<t\($0)>" }
        if let m = golden.token_ids.media_token_id { tokens[m] = "<image>" }
        if let e = golden.token_ids.endofchunk_token_id { tokens[e] = "<|endofchunk|>" }
        var m = Metadata()
        m["tokenizer.model"] = .string("gpt2")
        m["tokenizer.tokens"] = .array(.string(tokens))
        m["tokenizer.token_type"] = .array(.i32(Array(repeating: 4, count: vocabulary)))
        m["tokenizer.merges"] = .array(.string([]))
        m["tokenizer.bos_token_id"] = .u32(UInt32(golden.token_ids.bos_id))
        m["tokenizer.add_bos_token"] = .bool(true)
        m["tokenizer.huggingface.json"] = .string("""
        {"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": ""},
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
         "added_tokens": []}
        """)
        return m
    }

    static func text(_ ids: some Sequence<Int32>) -> String { ids.map { "<t\($0)>" }.joined() }

    /// A case converted with the test tokenizer, loaded as the C API loads models.
    static func loaded(_ name: String) throws -> (LoadedModel, Golden) {
        let golden = try OpenTSLMParityTests.golden(name)
        let vocab = golden.logits_last.count
        let out = try OpenTSLMParityTests.convert(name, metadata: tokenizerMetadata(vocabulary: vocab, golden: golden))
        defer { unlink(out) }
        return (try LoadedModel(path: out), golden)
    }

    // MARK: - Parity through the session

    func checkSession(_ name: String) throws {
        let (loaded, g) = try Self.loaded(name)
        XCTAssertEqual(loaded.kind, .classifier)
        let session = try TextSession(loaded, contextLength: 128, pool: ThreadPool(threads: 2))
        session.batchSize = 5
        let flamingo = g.architecture == "flamingo"
        try session.appendText(Self.text(g.token_ids.pre_prompt.dropFirst()), addSpecial: true)
        for (i, raw) in g.series.raw.enumerated() {
            let desc = flamingo ? g.token_ids.series_descriptions[i][...] : g.token_ids.series_descriptions[i].dropFirst()
            try session.appendSeries(raw, length: raw.count, channels: 1, description: Self.text(desc), preset: .har)
        }
        let post = flamingo ? g.token_ids.post_prompt[...] : g.token_ids.post_prompt.dropFirst()
        try session.appendText(Self.text(post), addSpecial: !flamingo)
        // The preset normalized the raw values as the reference did.
        XCTAssertEqual(session.pendingSeries.count, g.series.raw.count)
        for (p, ref) in zip(session.pendingSeries, g.series.normalized) {
            XCTAssertLessThanOrEqual(OpenTSLMParityTests.relativeError(p.values, ref), 1e-6)
        }
        XCTAssertTrue(session.tokens.isEmpty, "the prompt runs at generate")
        let r = try session.generate(maxTokens: g.greedy_ids.count)
        XCTAssertEqual(r.tokens, g.greedy_ids, "\(name): greedy tokens through the session")
        XCTAssertEqual(r.promptTokens, g.sequence.length)
        XCTAssertEqual(r.stopReason, .maxTokens)
        if let ids = g.token_ids.input_ids {
            XCTAssertEqual(Array(session.tokens.prefix(ids.count)), ids, "\(name): the Flamingo prompt text tokenizes to the reference ids")
        } else {
            XCTAssertEqual(session.tokens.filter { $0 < 0 }.count, g.series.raw.count * g.encoder.patches_per_series, "soft positions")
        }
        XCTAssertTrue(session.pendingSeries.isEmpty)
        // reset() starts over and gives the same tokens again.
        session.reset()
        XCTAssertTrue(session.tokens.isEmpty)
        try session.appendText(Self.text(g.token_ids.pre_prompt.dropFirst()), addSpecial: true)
        for (i, raw) in g.series.raw.enumerated() {
            let desc = flamingo ? g.token_ids.series_descriptions[i][...] : g.token_ids.series_descriptions[i].dropFirst()
            try session.appendSeries(raw, length: raw.count, channels: 1, description: Self.text(desc), preset: .har)
        }
        try session.appendText(Self.text(post), addSpecial: !flamingo)
        XCTAssertEqual(try session.generate(maxTokens: 4).tokens, Array(g.greedy_ids.prefix(4)))
    }

    func testSoftPromptSessionMatchesReference() throws { try checkSession("sp_llama_3series") }
    func testSoftPromptGemma3SessionMatchesReference() throws { try checkSession("sp_gemma3_3series") }
    func testFlamingoSessionMatchesReference() throws { try checkSession("flamingo_llama_3series") }
    func testFlamingoGemma3SessionMatchesReference() throws { try checkSession("flamingo_gemma3_3series") }

    /// Several channels of one length in one call are the same as one call per channel.
    func testMultiChannelAppendEqualsOneCallPerChannel() throws {
        let (loaded, g) = try Self.loaded("sp_llama_3series")
        let length = 20
        let channels = g.series.raw.map { Array($0.prefix(length)) }
        func run(_ append: (TextSession) throws -> Void) throws -> GenerationResult {
            let s = try TextSession(loaded, contextLength: 128)
            try s.appendText(Self.text([Int32(41), 12]), addSpecial: true)
            try append(s)
            try s.appendText(Self.text([Int32(30), 45]), addSpecial: true)
            return try s.generate(maxTokens: 6)
        }
        let one = try run { s in
            try s.appendSeries(channels.flatMap { $0 }, length: length, channels: 3, description: "<t245><t72>", preset: .har)
        }
        let each = try run { s in
            for ch in channels { try s.appendSeries(ch, length: length, channels: 1, description: "<t245><t72>", preset: .har) }
        }
        XCTAssertEqual(one.tokens, each.tokens)
        XCTAssertEqual(one.promptTokens, each.promptTokens)
        XCTAssertEqual(one.promptTokens, 3 + 3 * (3 + 5) + 3)  // BOS+2, per channel BOS+2 and 20/4 soft tokens, BOS+2
    }

    /// A Flamingo prompt's text times: the generated tokens after three series get text time 3,
    /// i.e. the uniform average of the latents' values, as upstream.
    func testFlamingoGenerationUsesTheCachedMediaCount() throws {
        let (loaded, g) = try Self.loaded("flamingo_llama_3series")
        let session = try TextSession(loaded, contextLength: 128)
        try session.appendText(Self.text(g.token_ids.pre_prompt.dropFirst()), addSpecial: true)
        for (i, raw) in g.series.raw.enumerated() {
            try session.appendSeries(raw, length: raw.count, channels: 1, description: Self.text(g.token_ids.series_descriptions[i]), preset: .har)
        }
        try session.appendText(Self.text(g.token_ids.post_prompt), addSpecial: false)
        _ = try session.generate(maxTokens: 3)
        XCTAssertEqual(session.flamingoTextTime, g.generated_text_time)
    }

    // MARK: - Bad input

    func expect(_ body: @autoclosure () throws -> Any, _ check: (RuntimeError) -> Bool,
                file: StaticString = #filePath, line: UInt = #line) {
        assertThrows(RuntimeError.self, try body(), file: file, line: line, check)
    }

    func argument(_ name: String) -> (RuntimeError) -> Bool {
        { if case let .invalidArgument(n, _) = $0 { n == name } else { false } }
    }

    func testBadSeriesAreRejectedAndLeaveTheSessionUnchanged() throws {
        let (loaded, _) = try Self.loaded("sp_llama_1series")
        let s = try TextSession(loaded, contextLength: 64)
        let ok = (0..<12).map { Float($0) }
        expect(try s.appendSeries(ok.map { $0 == 3 ? .nan : $0 }, length: 12, channels: 1, description: nil, preset: .har), argument("series values"))
        expect(try s.appendSeries(ok.map { $0 == 3 ? .infinity : $0 }, length: 12, channels: 1, description: nil, preset: .har), argument("series values"))
        expect(try s.appendSeries(ok.map { $0 == 3 ? -.infinity : $0 }, length: 12, channels: 1, description: nil, preset: .har), argument("series values"))
        expect(try s.appendSeries([], length: 0, channels: 1, description: nil, preset: .har), argument("series length"))
        expect(try s.appendSeries(ok, length: 12, channels: 0, description: nil, preset: .har), argument("channel count"))
        expect(try s.appendSeries(ok, length: 5, channels: 2, description: nil, preset: .har), argument("series values"))   // 12 ≠ 2·5
        expect(try s.appendSeries(ok, length: 4, channels: 4, description: nil, preset: .har), argument("series values"))   // 12 ≠ 16
        // The fixture's encoder has 16 positions of 4 samples: 65 samples is one too many.
        let long = [Float](repeating: 1, count: 65)
        expect(try s.appendSeries(long, length: 65, channels: 1, description: nil, preset: .har), argument("series length"))
        // More series than a prompt may hold.
        let many = OpenTSLMFamily.maxSeriesPerPrompt + 1
        expect(try s.appendSeries([Float](repeating: 1, count: 4 * many), length: 4, channels: many, description: nil, preset: .har),
               argument("channel count"))
        // Beyond the context: 64 positions hold BOS + description + 16 soft tokens a few times only.
        expect(try s.appendSeries([Float](repeating: 1, count: 64 * 5), length: 64, channels: 5, description: "<t9>", preset: .har)) {
            $0 == .promptTooLong(tokens: 5 * (2 + 16), context: 64)
        }
        XCTAssertTrue(s.pendingSeries.isEmpty, "a rejected call adds nothing")
        XCTAssertTrue(s.tokens.isEmpty)
        // Nothing appended: generate has no prompt.
        expect(try s.generate(maxTokens: 1)) { $0 == .emptyPrompt }
        // A valid series still works after all that.
        try s.appendSeries(ok, length: 12, channels: 1, description: "<t9>", preset: .har)
        XCTAssertEqual(s.pendingSeries.count, 1)
        XCTAssertEqual(try s.generate(maxTokens: 2).promptTokens, 2 + 3)
    }

    func testTextModelsCheckTheArgumentsThenRefuseSeries() throws {
        let folder = try OpenTSLMParityTests.folder("sp_llama_1series")
        let g = try OpenTSLMParityTests.golden("sp_llama_1series")
        var model = try Converter.importModel(path: folder + "/base")
        for (k, v) in Self.tokenizerMetadata(vocabulary: 256, golden: g).entries { model.metadata[k] = v }
        let out = NSTemporaryDirectory() + "tslm-text-\(UUID().uuidString).tslm"
        try Converter.write(model, to: out, options: ConvertOptions())
        defer { unlink(out) }
        let loaded = try LoadedModel(path: out)
        XCTAssertEqual(loaded.kind, .text)
        XCTAssertTrue(loaded.family is TextFamily)
        XCTAssertEqual(loaded.file.metadata.string("general.family"), "text")
        let s = try TextSession(loaded, contextLength: 32)
        expect(try s.appendSeries([1, .nan], length: 2, channels: 1, description: nil, preset: .custom), argument("series values"))
        expect(try s.appendSeries([1, 2], length: 2, channels: 1, description: nil, preset: .custom)) {
            if case .wrongKind = $0 { true } else { false }
        }
        // Text still works as before (run at once).
        try s.appendText("<t5><t6>", addSpecial: true)
        XCTAssertEqual(s.tokens, [1, 5, 6])
    }

    // MARK: - Presets

    func testPresetDescriptionsAndNormalizations() {
        let x: [Float] = [1, 2, 3, 4, 6]
        let mean = 3.2, pop = (((1 - mean) * (1 - mean) + (2 - mean) * (2 - mean) + (3 - mean) * (3 - mean) + (4 - mean) * (4 - mean) + (6 - mean) * (6 - mean)) / 5).squareRoot()
        let unbiased = pop * (5.0 / 4).squareRoot()
        let har = SeriesPreset.har.prepare(x[...], channel: 1, template: nil)
        XCTAssertEqual(har.description, String(format: "The following is the accelerometer data on the y-axis, it has mean %.4f and std %.4f:", mean, unbiased))
        XCTAssertEqual(har.values[4], Float((6 - mean) / unbiased), accuracy: 1e-6)
        let sleep = SeriesPreset.sleep.prepare(x[...], channel: 0, template: nil)
        XCTAssertEqual(sleep.description, String(format: "The following is the EEG time series, it has mean %.4f and std %.4f:", mean, pop))
        XCTAssertEqual(sleep.values[0], Float((1 - mean) / pop), accuracy: 1e-6)
        XCTAssertEqual(SeriesPreset.ecg.prepare(x[...], channel: 3, template: nil).description,
                       String(format: "This is ECG Lead aVR, it has mean %.4f and std %.4f:", mean, pop))
        XCTAssertEqual(SeriesPreset.ecg.prepare(x[...], channel: 12, template: nil).description.prefix(18), "This is ECG Lead 1")
        let tsqa = SeriesPreset.tsqa.prepare(x[...], channel: 0, template: nil)
        XCTAssertEqual(tsqa.description, String(format: "This is the time series, it has mean %.4f and std %.4f.", mean, unbiased))
        XCTAssertEqual(tsqa.values[1], Float((2 - mean) / (unbiased + 1e-8)), accuracy: 1e-6)
        let custom = SeriesPreset.custom.prepare(x[...], channel: 7, template: "ch {channel} ({axis}) {mean}/{std}")
        XCTAssertEqual(custom.values, x, "custom leaves the values as they are")
        XCTAssertEqual(custom.description, String(format: "ch 7 (7) %.4f/%.4f", mean, unbiased))
        // Flat series: the floors and guards of each task.
        let flat: [Float] = [2, 2, 2, 2]
        XCTAssertEqual(SeriesPreset.har.prepare(flat[...], channel: 0, template: "{std}").description, "0.0000")
        XCTAssertEqual(SeriesPreset.har.prepare(flat[...], channel: 0, template: nil).values, [0, 0, 0, 0])
        XCTAssertEqual(SeriesPreset.m4.prepare(flat[...], channel: 0, template: nil).values, [0, 0, 0, 0])
        XCTAssertEqual(SeriesPreset.ecg.prepare(flat[...], channel: 0, template: nil).values, [0, 0, 0, 0])
        XCTAssertTrue(SeriesPreset.sleep.prepare(flat[...], channel: 0, template: nil).values.allSatisfy { $0 == 0 })
        // One sample: torch's unbiased std is NaN; the values stay finite.
        let one = SeriesPreset.har.prepare([5][...], channel: 0, template: "{std}")
        XCTAssertTrue(one.values.allSatisfy(\.isFinite))
    }

    func testExtractAnswer() {
        XCTAssertEqual(extractAnswer("The signal is periodic. Answer: walking."), "walking")
        XCTAssertEqual(extractAnswer("Answer: a. Then Answer: running "), "running")
        XCTAssertEqual(extractAnswer("no answer here."), "no answer here")
    }
}
