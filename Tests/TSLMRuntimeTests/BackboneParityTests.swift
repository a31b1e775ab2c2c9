import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
@testable import TSLMKernels
@testable import TSLMRuntime

/// Logits parity with Hugging Face `transformers` on tiny random models of each architecture
/// (fixtures: `tools/make_backbone_fixtures.py`).
final class BackboneParityTests: XCTestCase {
    /// f32 tolerance on final logits, relative to the largest |logit| of the row: float32
    /// accumulation order differs from PyTorch's (blocked GEMM), nothing else should.
    static let logitRelativeTolerance: Float = 1e-4

    struct Golden: Decodable {
        let prompt_ids: [Int32]
        let logits_last: [Float]
        let logits_all_argmax: [Int]
        let greedy_ids: [Int32]
    }

    func fixtureFolder(_ name: String) throws -> String {
        let url = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/backbones/\(name)")
        guard FileManager.default.fileExists(atPath: url.path + "/golden.json") else { throw RuntimeError.invalidArgument(name: "fixture", reason: "missing \(url.path)/golden.json") }
        return url.path
    }

    /// Converts the fixture folder to a temporary .tslm of `type` and loads the model.
    func load(_ name: String, type: TargetType = .source) throws -> (any TextModel, Golden, TSLMFile) {
        let folder = try fixtureFolder(name)
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/golden.json")))
        let out = NSTemporaryDirectory() + "tslm-\(name)-\(UUID().uuidString).tslm"
        try Converter.write(try Converter.importModel(path: folder), to: out, options: ConvertOptions(target: type))
        let file = try TSLMFile(path: out)
        unlink(out)  // the mapping stays valid
        return (try BackboneRegistry.load(file), golden, file)
    }

    func runPrompt(_ model: any TextModel, _ ids: [Int32], pool: ThreadPool?, allPositions: Bool = true) throws -> (KVCache, [Float]) {
        let c = model.config
        let cache = try model.makeCache(capacity: 64)
        let x = FloatBuffer(ids.count * c.hidden)
        try model.embed(ids, into: x.pointer)
        var logits = [Float](repeating: 0, count: ids.count * c.vocabularySize)
        try logits.withUnsafeMutableBufferPointer {
            try model.forward(x.pointer, count: ids.count, start: 0, cache: cache, pool: pool, output: allPositions ? .allLogits : .lastLogits, into: $0.baseAddress!)
        }
        return (cache, logits)
    }

    func greedy(_ model: any TextModel, prompt: [Int32], count: Int, cache: KVCache, lastLogits: [Float]) throws -> [Int32] {
        var out: [Int32] = []
        var logits = lastLogits
        var pos = prompt.count
        let x = FloatBuffer(model.config.hidden)
        while out.count < count {
            let next = Int32(logits.withUnsafeBufferPointer { Sampler.argmaxIndex($0) })
            out.append(next)
            if out.count == count { break }
            try model.embed([next], into: x.pointer)
            try logits.withUnsafeMutableBufferPointer {
                try model.forward(x.pointer, count: 1, start: pos, cache: cache, pool: nil, output: .lastLogits, into: $0.baseAddress!)
            }
            pos += 1
        }
        return out
    }

    func checkParity(_ name: String) throws {
        let (model, golden, _) = try load(name)
        let v = model.config.vocabularySize
        for pool in [nil, ThreadPool(threads: 2)] {
            let (cache, logits) = try runPrompt(model, golden.prompt_ids, pool: pool)
            let n = golden.prompt_ids.count
            let last = Array(logits[((n - 1) * v)..<(n * v)])
            let scale = golden.logits_last.map(abs).max()!
            let maxErr = zip(last, golden.logits_last).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(maxErr / scale, Self.logitRelativeTolerance, "\(name): max |Δlogit| \(maxErr) of scale \(scale)")
            let argmaxes = (0..<n).map { i in logits[(i * v)..<((i + 1) * v)].withUnsafeBufferPointer { Sampler.argmaxIndex($0) } }
            XCTAssertEqual(argmaxes, golden.logits_all_argmax, name)
            let continuation = try greedy(model, prompt: golden.prompt_ids, count: golden.greedy_ids.count, cache: cache, lastLogits: last)
            XCTAssertEqual(continuation, golden.greedy_ids, "\(name): greedy continuation")
        }
    }

    func testLlamaParity() throws { try checkParity("llama") }
    func testTiedLlamaParity() throws { try checkParity("llama_tied") }
    func testGemma3Parity() throws { try checkParity("gemma3") }
    func testGPT2Parity() throws { try checkParity("gpt2") }

    /// Quantized storage stays close to f32: f16 weights round by ≤ 2^-11 relative; q8_0
    /// quantizes weights and (in the kernels) activations to 8 bits per 32-block.
    func testQuantizedLlamaStaysClose() throws {
        let (ref, golden, _) = try load("llama")
        let v = ref.config.vocabularySize
        let (_, refLogits) = try runPrompt(ref, golden.prompt_ids, pool: nil)
        func argmaxes(_ l: [Float]) -> [Int] {
            (0..<golden.prompt_ids.count).map { i in l[(i * v)..<((i + 1) * v)].withUnsafeBufferPointer { Sampler.argmaxIndex($0) } }
        }
        for (t, maxRelErr, minAgreement) in [(DType.f16, Float(5e-3), 16), (.q8_0, 0.1, 14)] {
            let (model, _, _) = try load("llama", type: .type(t))
            let (_, logits) = try runPrompt(model, golden.prompt_ids, pool: nil)
            let scale = refLogits.map(abs).max()!
            let err = zip(logits, refLogits).map { abs($0 - $1) }.max()! / scale
            XCTAssertLessThan(err, maxRelErr, "\(t)")
            let agree = zip(argmaxes(logits), argmaxes(refLogits)).filter { $0 == $1 }.count
            XCTAssertGreaterThanOrEqual(agree, minAgreement, "\(t): top-1 agreement \(agree)/16")
        }
    }

    /// `KVPrecision.auto` stores f16 for quantized layer matrices and f32 for float ones; an
    /// explicit precision wins either way.
    func testAutomaticKVPrecisionFollowsTheWeights() throws {
        for (t, half) in [(TargetType.source, false), (.type(.f16), false), (.type(.q8_0), true), (.type(.q4_0), true)] {
            let (model, _, file) = try load("llama", type: t)
            XCTAssertEqual(KVPrecision.auto.isHalf(for: file), half, "\(t)")
            XCTAssertFalse(KVPrecision.f32.isHalf(for: file))
            XCTAssertTrue(KVPrecision.f16.isHalf(for: file))
            XCTAssertEqual(try model.makeCache(capacity: 4, half: KVPrecision.auto.isHalf(for: file)).half, half)
        }
    }

    func testBadInputs() throws {
        let (model, golden, _) = try load("llama")
        let x = FloatBuffer(model.config.hidden * 2)
        XCTAssertThrowsError(try model.embed([Int32(model.config.vocabularySize)], into: x.pointer)) { e in
            XCTAssertEqual(e as? RuntimeError, .tokenOutOfRange(id: Int32(model.config.vocabularySize), vocabularySize: model.config.vocabularySize))
        }
        XCTAssertThrowsError(try model.embed([-1], into: x.pointer))
        let cache = try model.makeCache(capacity: 4)
        var logits = [Float](repeating: 0, count: model.config.vocabularySize)
        try model.embed(Array(golden.prompt_ids.prefix(1)), into: x.pointer)
        XCTAssertThrowsError(try logits.withUnsafeMutableBufferPointer {
            try model.forward(x.pointer, count: 1, start: 4, cache: cache, pool: nil, output: .lastLogits, into: $0.baseAddress!)
        }) { e in XCTAssertEqual(e as? RuntimeError, .contextFull(context: 4)) }
        XCTAssertThrowsError(try logits.withUnsafeMutableBufferPointer {
            try model.forward(x.pointer, count: 0, start: 0, cache: cache, pool: nil, output: .lastLogits, into: $0.baseAddress!)
        }) { e in XCTAssertEqual(e as? RuntimeError, .emptyPrompt) }
    }

    func testUnknownArchitectureIsAnError() throws {
        let dir = NSTemporaryDirectory() + "tslm-arch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var md = Metadata()
        md["general.architecture"] = .string("mamba9")
        let w = try TSLMWriter(path: dir + "/m.tslm", metadata: md)
        try w.finish()
        XCTAssertThrowsError(try BackboneRegistry.load(try TSLMFile(path: dir + "/m.tslm"))) { e in
            XCTAssertEqual(e as? RuntimeError, .unknownArchitecture("mamba9"))
        }
    }
}
