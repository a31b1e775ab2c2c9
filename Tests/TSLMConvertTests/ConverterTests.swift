import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
import TSLMTestSupport

/// End-to-end conversion: Hugging Face folders written in-test, the policy, errors.
final class ConverterTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self, prefix: "tslm-conv").path
    }

    /// Deterministic pseudo-random floats.
    func values(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed &* 6364136223846793005 &+ 1442695040888963407
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 1e6 * 0.5
        }
    }

    func bytes(_ v: [Float], as dtype: DType) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: dtype.byteCount(shape: [v.count])!)
        v.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { DTypeConversion.fromFloat32(src, to: dtype, into: $0) } }
        return out
    }

    /// A tiny Llama: hidden 64, 2 layers, 4 heads / 2 kv heads, ffn 96, vocab 40.
    func writeTinyLlama(dtype: DType, tie: Bool = false, extraTensor: String? = nil) throws -> [String: (DType, [Int], [UInt8])] {
        let config: [String: Any] = [
            "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 40, "max_position_embeddings": 128,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": tie,
        ]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
        var shapes: [(String, [Int])] = [("model.embed_tokens.weight", [40, 64]), ("model.norm.weight", [64])]
        if !tie { shapes.append(("lm_head.weight", [40, 64])) }
        for i in 0..<2 {
            let p = "model.layers.\(i)."
            shapes += [(p + "input_layernorm.weight", [64]), (p + "post_attention_layernorm.weight", [64]),
                       (p + "self_attn.q_proj.weight", [64, 64]), (p + "self_attn.k_proj.weight", [32, 64]),
                       (p + "self_attn.v_proj.weight", [32, 64]), (p + "self_attn.o_proj.weight", [64, 64]),
                       (p + "mlp.gate_proj.weight", [96, 64]), (p + "mlp.up_proj.weight", [96, 64]),
                       (p + "mlp.down_proj.weight", [64, 96])]
        }
        if let extra = extraTensor { shapes.append((extra, [4])) }
        var tensors: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])] = []
        var expected: [String: (DType, [Int], [UInt8])] = [:]
        for (i, (name, shape)) in shapes.enumerated() {
            let b = bytes(values(shape.reduce(1, *), seed: UInt64(i + 1)), as: dtype)
            tensors.append((name, dtype, shape, b))
            expected[name] = (dtype, shape, b)
        }
        // Two shards with an index, as large checkpoints come.
        let half = tensors.count / 2
        try SafetensorsWriter.write(path: dir + "/model-00001-of-00002.safetensors", tensors: Array(tensors[..<half]), metadata: ["format": "pt"])
        try SafetensorsWriter.write(path: dir + "/model-00002-of-00002.safetensors", tensors: Array(tensors[half...]), metadata: [:])
        var map: [String: String] = [:]
        for (i, t) in tensors.enumerated() { map[t.name] = i < half ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors" }
        try JSONSerialization.data(withJSONObject: ["metadata": [:], "weight_map": map])
            .write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        return expected
    }

    func convert(_ input: String, _ target: TargetType, to name: String = "out.tslm") throws -> TSLMFile {
        let out = dir + "/" + name
        try Converter.write(try Converter.importModel(path: input), to: out, options: ConvertOptions(target: target))
        return try TSLMFile(path: out)
    }

    func testHuggingFaceFolderRoundTripIsBitIdentical() throws {
        for dtype in [DType.f32, .f16, .bf16] {
            try setUpWithError()
            let expected = try writeTinyLlama(dtype: dtype)
            let file = try convert(dir, .source)
            XCTAssertEqual(file.metadata.string("general.architecture"), "llama")
            XCTAssertEqual(file.metadata.int("llama.block_count"), 2)
            XCTAssertEqual(file.metadata.int("llama.attention.head_count_kv"), 2)
            XCTAssertEqual(file.tensors.count, expected.count)
            for (hfName, (dt, shape, b)) in expected {
                guard case let .map(name, _) = LlamaArchitecture.mapHuggingFaceName(hfName) else { return XCTFail(hfName) }
                let e = try XCTUnwrap(file.entry(name), name)
                XCTAssertEqual(e.dtype, dt, name)
                XCTAssertEqual(e.shape, shape, name)
                XCTAssertEqual(try file.tensorData(e).array, b, "\(name) \(dtype)")
            }
            try file.verify()
        }
    }

    func testPolicyKeepsTimeSeriesTensorsAtF16AndEmbeddingsAt8Bits() {
        let p = QuantizationPolicy.self
        for t in [DType.q8_0, .q4_0, .q4_1] {
            XCTAssertEqual(p.storageType(name: "ts.enc.blk.0.attn_qkv.weight", dtype: .f32, shape: [384, 128], target: .type(t)), .f16)
            XCTAssertEqual(p.storageType(name: "ts.proj.fc.weight", dtype: .f32, shape: [576, 128], target: .type(t)), .f16)
            XCTAssertEqual(p.storageType(name: "blk.0.attn_q.weight", dtype: .f32, shape: [576, 576], target: .type(t)), t)
            XCTAssertEqual(p.storageType(name: "ts.enc.norm.weight", dtype: .f32, shape: [128], target: .type(t)), .f32)
        }
        XCTAssertEqual(p.storageType(name: "token_embd.weight", dtype: .f32, shape: [256, 64], target: .type(.q4_0)), .q8_0)
        XCTAssertEqual(p.storageType(name: "ts.enc.blk.0.attn_qkv.weight", dtype: .f32, shape: [384, 128], target: .type(.bf16)), .bf16)
    }

    func testQuantizedConversionMatchesReferenceQuantizer() throws {
        let expected = try writeTinyLlama(dtype: .f32)
        for target in [DType.q8_0, .q4_0, .q4_1] {
            let file = try convert(dir, .type(target), to: "\(target).tslm")
            for (hfName, (_, shape, b)) in expected {
                guard case let .map(name, _) = LlamaArchitecture.mapHuggingFaceName(hfName) else { return XCTFail(hfName) }
                let e = try XCTUnwrap(file.entry(name))
                let want = QuantizationPolicy.storageType(name: name, dtype: .f32, shape: shape, target: .type(target))
                XCTAssertEqual(e.dtype, want, name)
                // The stored bytes are exactly what the scalar reference quantizer makes of the source.
                let ref = try b.withUnsafeBytes { try DTypeConversion.convert($0, from: .f32, to: want, shape: shape, file: "", tensor: name) }
                XCTAssertEqual(try file.tensorData(e).array, ref.array, name)
                // And the dequantized values are close to the source.
                if want.isQuantized {
                    let n = shape.reduce(1, *)
                    var deq = [Float](repeating: 0, count: n)
                    let data = try file.tensorData(e)
                    deq.withUnsafeMutableBufferPointer { out in data.withUnsafeBytes { DTypeConversion.toFloat32($0, dtype: want, count: n, into: out) } }
                    let src = b.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    let maxErr = zip(src, deq).map { abs($0 - $1) }.max()!
                    // Values lie in ±0.5: q8_0 errs by at most d/2 = 0.5/127/2 (+ f16 rounding of d);
                    // 4-bit types by at most |d| = 0.5/8 where the clamp at 15 applies.
                    XCTAssertLessThan(maxErr, want == .q8_0 ? 0.0025 : 0.0630, name)
                }
            }
        }
    }

    func testKQuantPolicyAndMixes() {
        let P = { (name: String, shape: [Int], target: TargetType) in
            QuantizationPolicy.storageType(name: name, dtype: .f32, shape: shape, target: target, layerCount: 16)
        }
        XCTAssertEqual(TargetType(name: "q4_k_m"), .kMix(.q4_k))
        XCTAssertEqual(TargetType(name: "Q5_K_M"), .kMix(.q5_k))
        XCTAssertEqual(TargetType(name: "q6_k"), .type(.q6_k))
        XCTAssertNil(TargetType(name: "q6_k_m"))
        XCTAssertEqual(TargetType.kMix(.q4_k).description, "q4_k_m")
        XCTAssertTrue(TargetType.names.contains("q4_k_m") && TargetType.names.contains("q5_k"))
        // Uniform K types; rows of whole 256-blocks keep the type, others fall back.
        XCTAssertEqual(P("blk.3.attn_q.weight", [512, 512], .type(.q4_k)), .q4_k)
        XCTAssertEqual(P("blk.3.attn_v.weight", [512, 512], .type(.q4_k)), .q4_k)  // no mix: no q6_k
        XCTAssertEqual(P("blk.3.attn_q.weight", [576, 576], .type(.q4_k)), .q4_1)
        XCTAssertEqual(P("blk.3.attn_q.weight", [576, 576], .type(.q5_k)), .q8_0)
        XCTAssertEqual(P("blk.3.attn_q.weight", [576, 576], .type(.q6_k)), .q8_0)
        XCTAssertEqual(P("blk.3.attn_q.weight", [576, 100], .type(.q4_k)), .f16)
        XCTAssertEqual(P("blk.3.attn_norm.weight", [512], .type(.q4_k)), .f32)
        XCTAssertEqual(P("token_embd.weight", [1000, 512], .type(.q4_k)), .q6_k)
        XCTAssertEqual(P("output.weight", [1000, 576], .kMix(.q4_k)), .q8_0)
        XCTAssertEqual(P("ts.proj.fc.weight", [512, 512], .kMix(.q4_k)), .f16)
        // q4_k_m on 16 layers: attn_v and ffn_down get q6_k in layers 0, 1, 4, 7, 10, 13, 14, 15
        // (llama.cpp's use_more_bits: i < n/8, i >= 7n/8, (i - n/8) % 3 == 2).
        let more = (0..<16).filter { P("blk.\($0).attn_v.weight", [256, 512], .kMix(.q4_k)) == .q6_k }
        XCTAssertEqual(more, [0, 1, 4, 7, 10, 13, 14, 15])
        XCTAssertEqual((0..<16).filter { P("blk.\($0).ffn_down.weight", [512, 1536], .kMix(.q5_k)) == .q6_k }, more)
        XCTAssertEqual(P("blk.2.attn_v.weight", [256, 512], .kMix(.q4_k)), .q4_k)
        XCTAssertEqual(P("blk.0.attn_q.weight", [512, 512], .kMix(.q4_k)), .q4_k)
        XCTAssertEqual(P("blk.0.ffn_down.weight", [576, 1536], .kMix(.q4_k)), .q6_k)
        XCTAssertEqual(P("blk.0.attn_v.weight", [192, 576], .kMix(.q4_k)), .q8_0)  // q6_k does not fit: q8_0
        XCTAssertEqual(QuantizationPolicy.layerCount(["token_embd.weight", "blk.0.x", "blk.11.attn_v.weight", "blk.3.y"]), 12)
        // --keep with a K type falls back like the policy.
        let keep = [KeepRule(parsing: "blk.*.attn_v.weight=q6_k")!]
        XCTAssertEqual(QuantizationPolicy.storageType(name: "blk.2.attn_v.weight", dtype: .f32, shape: [64, 512],
                                                      target: .type(.q4_0), keep: keep), .q6_k)
        XCTAssertEqual(QuantizationPolicy.storageType(name: "blk.2.attn_v.weight", dtype: .f32, shape: [64, 64],
                                                      target: .type(.q4_0), keep: keep), .q8_0)
    }

    func testPolicy() {
        let P: (String, DType, [Int], TargetType) -> DType = { QuantizationPolicy.storageType(name: $0, dtype: $1, shape: $2, target: $3) }
        XCTAssertEqual(P("blk.0.attn_norm.weight", .f32, [64], .type(.q4_0)), .f32)
        XCTAssertEqual(P("blk.0.attn_q.weight", .f32, [64, 64], .type(.q4_0)), .q4_0)
        XCTAssertEqual(P("token_embd.weight", .f32, [40, 64], .type(.q4_0)), .q8_0)
        XCTAssertEqual(P("output.weight", .f16, [40, 64], .type(.q4_1)), .q8_0)
        XCTAssertEqual(P("token_embd.weight", .f32, [40, 64], .type(.q8_0)), .q8_0)
        XCTAssertEqual(P("conv.weight", .f32, [128, 1, 4], .type(.q8_0)), .f16)  // rows of 4: not a whole block
        XCTAssertEqual(P("ids", .i64, [10, 64], .type(.q4_0)), .i64)
        XCTAssertEqual(P("x", .f64, [10, 64], .source), .f32)
        XCTAssertEqual(P("x", .q4_1, [10, 64], .source), .q4_1)
        XCTAssertEqual(P("x", .bf16, [10, 64], .type(.f16)), .f16)
    }

    func testQuantizeFromTSLMIsTheSamePath() throws {
        _ = try writeTinyLlama(dtype: .f32)
        let f32 = try convert(dir, .source, to: "f32.tslm")
        let direct = try convert(dir, .type(.q4_0), to: "direct.tslm")
        let requant = try convert(f32.path, .type(.q4_0), to: "requant.tslm")
        XCTAssertEqual(direct.tensors.map(\.name), requant.tensors.map(\.name))
        for e in direct.tensors {
            XCTAssertEqual(try direct.tensorData(e).array, try requant.tensorData(e.name).array, e.name)
        }
        XCTAssertEqual(requant.metadata.string("general.file_type"), "q4_0")
        XCTAssertEqual(requant.metadata.string("general.source.format"), "safetensors")
    }

    func testTiedModelDropsDuplicateOutput() throws {
        _ = try writeTinyLlama(dtype: .f32, tie: true)
        let file = try convert(dir, .source)
        XCTAssertNil(file.entry("output.weight"))
        XCTAssertEqual(file.metadata.bool("llama.tie_embeddings"), true)
    }

    func testUnknownTensorIsAnErrorAndOutputIsUntouched() throws {
        _ = try writeTinyLlama(dtype: .f32, extraTensor: "model.mystery.weight")
        let out = dir + "/existing.tslm"
        try Data("keep".utf8).write(to: URL(fileURLWithPath: out))
        XCTAssertThrowsError(try Converter.write(try Converter.importModel(path: dir), to: out, options: ConvertOptions())) { e in
            guard case let TSLMError.unmappedTensor(_, arch, tensor) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(arch, "llama")
            XCTAssertEqual(tensor, "model.mystery.weight")
        }
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "keep")
    }

    func testUnknownArchitectureIsNamed() throws {
        _ = try writeTinyLlama(dtype: .f32)
        try JSONSerialization.data(withJSONObject: ["model_type": "falcon9000"]).write(to: URL(fileURLWithPath: dir + "/config.json"))
        XCTAssertThrowsError(try Converter.importModel(path: dir)) { e in
            guard case let TSLMError.unknownArchitecture(_, arch) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(arch, "falcon9000")
        }
    }

    func testFailureMidConversionLeavesNoFiles() throws {
        _ = try writeTinyLlama(dtype: .f32)
        var model = try Converter.importModel(path: dir)
        model.tensors[3].load = { throw TSLMError.truncated(file: "shard", what: "tensor data") }
        let out = dir + "/sub/out.tslm"
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        XCTAssertThrowsError(try Converter.write(model, to: out, options: ConvertOptions(target: .type(.q8_0))))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/sub"), [])
    }

    func testNaNIsRefusedWhenQuantizing() throws {
        _ = try writeTinyLlama(dtype: .f32)
        var model = try Converter.importModel(path: dir)
        let i = model.tensors.firstIndex { $0.name == "blk.0.attn_q.weight" }!
        let inner = model.tensors[i].load
        model.tensors[i].load = {
            let d = try inner()
            d.mutableBytes.storeBytes(of: Float.nan, toByteOffset: 40, as: Float.self)
            return d
        }
        XCTAssertThrowsError(try Converter.write(model, to: dir + "/nan.tslm", options: ConvertOptions(target: .type(.q4_0)))) { e in
            XCTAssertTrue("\(e)".contains("blk.0.attn_q.weight"), "\(e)")
        }
        // f16 storage keeps NaN as NaN instead.
        XCTAssertNoThrow(try Converter.write(model, to: dir + "/nan16.tslm", options: ConvertOptions(target: .type(.f16))))
    }

    func testGPT2ConvWeightsAreTransposed() throws {
        let config: [String: Any] = ["model_type": "gpt2", "n_embd": 8, "n_positions": 16, "n_layer": 1, "n_head": 2, "vocab_size": 10]
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let w = values(8 * 24, seed: 7)  // c_attn: [in 8, out 24]
        let tensors: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])] = [
            ("transformer.wte.weight", .f32, [10, 8], bytes(values(80, seed: 1), as: .f32)),
            ("transformer.h.0.attn.c_attn.weight", .f32, [8, 24], bytes(w, as: .f32)),
            ("transformer.h.0.attn.bias", .f32, [1, 1, 16, 16], bytes(values(256, seed: 2), as: .f32)),
        ]
        try SafetensorsWriter.write(path: dir + "/model.safetensors", tensors: tensors, metadata: [:])
        let file = try convert(dir, .source)
        XCTAssertNil(file.entry("blk.0.attn.bias"))
        let e = try XCTUnwrap(file.entry("blk.0.attn_qkv.weight"))
        XCTAssertEqual(e.shape, [24, 8])
        let got = try file.tensorData(e).array.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        for o in 0..<24 { for i in 0..<8 { XCTAssertEqual(got[o * 8 + i], w[i * 24 + o]) } }
    }
}

/// `tslm convert` of a real `torch.save` checkpoint (fixture from tools/make_pt_fixtures.py).
final class PyTorchConversionTests: XCTestCase {
    struct Expected: Decodable { let name: String; let dtype: String; let shape: [Int]; let hex: String }

    func testPtCheckpointConvertsBitIdentical() throws {
        let fixtures = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/pt")
        let expected = try JSONDecoder().decode([Expected].self, from: Data(contentsOf: fixtures.appendingPathComponent("state_dict.expected.json")))
        let out = NSTemporaryDirectory() + "tslm-pt-\(UUID().uuidString).tslm"
        defer { unlink(out) }
        let model = try Converter.importModel(path: fixtures.appendingPathComponent("state_dict.pt").path)
        XCTAssertEqual(model.architecture, "raw")
        try Converter.write(model, to: out, options: ConvertOptions(target: .source))
        let file = try TSLMFile(path: out)
        XCTAssertEqual(file.metadata.string("general.source.format"), "pytorch")
        var checked = Set<String>()
        for e in expected {
            let entry = try XCTUnwrap(file.entry(e.name), e.name)
            // `source` keeps every type but f64, which becomes f32 (formats/tslm.md, policy rule 3).
            if e.dtype == "f64" { XCTAssertEqual(entry.dtype, .f32); continue }
            XCTAssertEqual(entry.dtype.description, e.dtype, e.name)
            XCTAssertEqual(entry.shape, e.shape, e.name)
            let bytes = stride(from: 0, to: e.hex.count, by: 2).map { i -> UInt8 in
                let s = e.hex.index(e.hex.startIndex, offsetBy: i)
                return UInt8(e.hex[s...e.hex.index(after: s)], radix: 16)!
            }
            XCTAssertEqual(try file.tensorData(entry).array, bytes, e.name)
            if ["f32", "f16", "bf16"].contains(e.dtype) { checked.insert(e.dtype) }
        }
        XCTAssertEqual(checked, ["f32", "f16", "bf16"])
        XCTAssertEqual(file.tensors.count, expected.count)
    }
}
