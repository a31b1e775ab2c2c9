import Foundation
import XCTest
@testable import TSLMConvert
@testable import TSLMFormat

/// What OpenTSLM checkpoints need from the restricted unpickler: PEFT's `LoraConfig` object (and
/// its enums and `set`s) recorded as inert data only when asked for, and state dicts that carry
/// `_metadata`; plus how the converter reads the LoRA scale from them.
final class OpenTSLMPickleTests: XCTestCase {
    let file = "test.pkl"

    /// `{"lora_config": {"default": LoraConfig(r=4, lora_alpha=8, use_rslora=False,
    /// target_modules={"q_proj", "v_proj"}, task_type=TaskType("CAUSAL_LM"))}}` the way pickle
    /// protocol 2 writes it (NEWOBJ + BUILD, set and enum through REDUCE).
    func loraConfigPickle() -> [UInt8] {
        var p = PickleBuilder()
        p.op(0x7D)  // EMPTY_DICT
        p.str("lora_config")
        p.op(0x7D)
        p.str("default")
        p.global("peft.tuners.lora.config", "LoraConfig")
        p.op(0x29, 0x81)  // EMPTY_TUPLE, NEWOBJ
        p.op(0x7D, 0x28)  // state: EMPTY_DICT, MARK
        p.str("r"); p.int(4)
        p.str("lora_alpha"); p.int(8)
        p.str("use_rslora"); p.op(0x89)  // NEWFALSE
        p.str("target_modules")
        p.global("__builtin__", "set")
        p.op(0x5D, 0x28)  // EMPTY_LIST, MARK
        p.str("q_proj"); p.str("v_proj")
        p.op(0x65, 0x85, 0x52)  // APPENDS, TUPLE1, REDUCE
        p.str("task_type")
        p.global("peft.utils.peft_types", "TaskType")
        p.str("CAUSAL_LM")
        p.op(0x85, 0x52)  // TUPLE1, REDUCE
        p.op(0x75, 0x62)  // SETITEMS, BUILD
        p.op(0x73, 0x73, 0x2E)  // SETITEM, SETITEM, STOP
        return p.bytes
    }

    func testPEFTConfigIsForbiddenByDefault() {
        XCTAssertThrowsError(try RestrictedUnpickler.decode(loraConfigPickle(), file: file)) { e in
            XCTAssertEqual(e as? TSLMError, .forbiddenGlobal(file: file, module: "peft.tuners.lora.config", name: "LoraConfig"))
        }
    }

    func testPEFTConfigIsReadAsInertData() throws {
        let v = try RestrictedUnpickler.decode(loraConfigPickle(), file: file, options: .init(dataObjects: true))
        guard case let .object(o)? = v["lora_config"]?["default"] else { return XCTFail("no LoraConfig object in \(v)") }
        XCTAssertEqual(o.module, "peft.tuners.lora.config")
        XCTAssertEqual(o.name, "LoraConfig")
        XCTAssertEqual(o.arguments, [])
        XCTAssertEqual(o.state["r"], .int(4))
        XCTAssertEqual(o.state["lora_alpha"], .int(8))
        XCTAssertEqual(o.state["target_modules"], .set([.string("q_proj"), .string("v_proj")]))
        XCTAssertEqual(o.state["task_type"], .object(PickleObject(module: "peft.utils.peft_types", name: "TaskType",
                                                                     arguments: [.string("CAUSAL_LM")], state: .none)))
        let (scale, alpha) = try OpenTSLMImporter.loraScale(v["lora_config"], adapter: "default", rank: 4, path: file)
        XCTAssertEqual(scale, 2)
        XCTAssertEqual(alpha, 8)
    }

    func testDataObjectsDoNotOpenOtherGlobals() {
        for (module, name) in [("os", "system"), ("builtins", "eval"), ("__builtin__", "getattr"), ("numpy.core.multiarray", "_reconstruct")] {
            var p = PickleBuilder()
            p.global(module, name)
            p.op(0x2E)
            XCTAssertThrowsError(try RestrictedUnpickler.decode(p.bytes, file: file, options: .init(dataObjects: true))) { e in
                XCTAssertEqual(e as? TSLMError, .forbiddenGlobal(file: file, module: module, name: name))
            }
        }
        // set() only takes a list, tuple or nothing.
        var p = PickleBuilder()
        p.global("builtins", "set")
        p.int(3)
        p.op(0x85, 0x52, 0x2E)
        XCTAssertThrowsError(try RestrictedUnpickler.decode(p.bytes, file: file, options: .init(dataObjects: true)))
    }

    /// `module.state_dict()` is an OrderedDict whose `_metadata` attribute pickles as BUILD state.
    func testStateDictMetadataIsAcceptedAndDropped() throws {
        var p = PickleBuilder()
        p.global("collections", "OrderedDict")
        p.op(0x29, 0x52)  // EMPTY_TUPLE, REDUCE
        p.str("a"); p.int(1); p.op(0x73)
        p.op(0x7D)  // state {"_metadata": {"": {"version": 1}}}
        p.str("_metadata")
        p.op(0x7D); p.str(""); p.op(0x7D); p.str("version"); p.int(1); p.op(0x73, 0x73)
        p.op(0x73, 0x62, 0x2E)  // SETITEM, BUILD, STOP
        let v = try RestrictedUnpickler.decode(p.bytes, file: file)
        XCTAssertEqual(v, .dict([PickleDictItem(key: .string("a"), value: .int(1))]))
        // Any other state is still refused.
        var q = PickleBuilder()
        q.global("collections", "OrderedDict")
        q.op(0x29, 0x52)
        q.int(5)
        q.op(0x62, 0x2E)
        XCTAssertThrowsError(try RestrictedUnpickler.decode(q.bytes, file: file))
    }

    func testLoRAScaleSources() throws {
        // A plain dict, flat or per adapter.
        XCTAssertEqual(try OpenTSLMImporter.loraScale(.dict([PickleDictItem(key: .string("r"), value: .int(16)),
                                                             PickleDictItem(key: .string("lora_alpha"), value: .int(32))]),
                                                      adapter: "default", rank: 16, path: file).scale, 2)
        // rsLoRA: alpha / √r.
        let rs = PickleValue.dict([PickleDictItem(key: .string("default"), value: .dict([
            PickleDictItem(key: .string("r"), value: .int(16)), PickleDictItem(key: .string("lora_alpha"), value: .float(32)),
            PickleDictItem(key: .string("use_rslora"), value: .bool(true))]))])
        XCTAssertEqual(try OpenTSLMImporter.loraScale(rs, adapter: "default", rank: 16, path: file).scale, 8)
        // No config: OpenTSLM's alpha = 2r.
        XCTAssertEqual(try OpenTSLMImporter.loraScale(nil, adapter: "default", rank: 4, path: file).scale, 2)
        // A config that contradicts the tensors.
        XCTAssertThrowsError(try OpenTSLMImporter.loraScale(.dict([PickleDictItem(key: .string("r"), value: .int(8))]),
                                                            adapter: "default", rank: 4, path: file))
        XCTAssertThrowsError(try OpenTSLMImporter.loraScale(nil, adapter: "default", rank: 0, path: file))
    }

    /// W' = W + scale·B·A, stored back in W's type (f32 exactly; q8_0 within its rounding).
    func testLoRAMerge() throws {
        let (rows, cols, r) = (3, 32, 2)
        let w = (0..<(rows * cols)).map { Float($0 % 7) * 0.25 - 0.5 }
        let a = (0..<(r * cols)).map { Float(($0 * 5) % 11) * 0.1 - 0.5 }
        let b = (0..<(rows * r)).map { Float($0) * 0.3 - 0.4 }
        func tensor(_ name: String, _ v: [Float], _ shape: [Int], _ dtype: DType = .f32) throws -> SourceTensor {
            let data = try v.withUnsafeBytes { try DTypeConversion.convert($0, from: .f32, to: dtype, shape: shape, file: "t", tensor: name) }
            return SourceTensor(name: name, dtype: dtype, shape: shape) { data }
        }
        var expected = w
        for o in 0..<rows { for j in 0..<cols { for k in 0..<r { expected[o * cols + j] += 2 * b[o * r + k] * a[k * cols + j] } } }
        for dtype in [DType.f32, .q8_0] {
            let merged = OpenTSLMImporter.merged(try tensor("w", w, [rows, cols], dtype), a: try tensor("a", a, [r, cols]),
                                                 b: try tensor("b", b, [rows, r]), scale: 2, file: "t")
            XCTAssertEqual(merged.dtype, dtype)
            let data = try merged.load()
            var got = [Float](repeating: 0, count: rows * cols)
            got.withUnsafeMutableBufferPointer { g in data.withUnsafeBytes { DTypeConversion.toFloat32($0, dtype: dtype, count: rows * cols, into: g) } }
            let tolerance: Float = dtype == .f32 ? 1e-6 : 0.02
            for (x, y) in zip(got, expected) { XCTAssertEqual(x, y, accuracy: tolerance, "\(dtype)") }
        }
    }

    func testTimeSeriesNames() {
        for n in ["ts.enc.pos_embd.weight", "ts.enc.blk.5.attn_qkv.bias", "ts.proj.weight", "ts.perceiver.latents",
                  "ts.perceiver.blk.0.attn_kv.weight", "blk.15.xattn_gate", "blk.3.xattn_ffn_down.weight"] {
            XCTAssertTrue(OpenTSLMNames.isTimeSeriesName(n), n)
        }
        for n in ["ts.enc.blk.x.attn_qkv.bias", "ts.enc.blk.0.attn_q.weight", "blk.0.attn_q.weight", "ts.other", "blk.1.xattn"] {
            XCTAssertFalse(OpenTSLMNames.isTimeSeriesName(n), n)
        }
        XCTAssertEqual(OpenTSLMNames.encoderName("encoder.layers.3.self_attn.in_proj_weight"), "ts.enc.blk.3.attn_qkv.weight")
        XCTAssertEqual(OpenTSLMNames.encoderName("encoder.layers.0.norm2.bias"), "ts.enc.blk.0.ffn_norm.bias")
        XCTAssertNil(OpenTSLMNames.encoderName("encoder.layers.0.dropout.weight"))
        XCTAssertEqual(OpenTSLMNames.perceiverName("layers.1.1.3.weight"), "ts.perceiver.blk.1.ffn_down.weight")
        XCTAssertEqual(OpenTSLMNames.crossAttentionSuffix("attn.to_kv.weight"), "xattn_kv.weight")
    }
}
