import XCTest
@testable import TSLMConvert
@testable import TSLMFormat
import TSLMTestSupport

/// `tslm quantize --quantizer` and `--keep PATTERN=TYPE`: the rules' parsing and matching, the
/// policy with rules, and a conversion that applies both.
final class QuantizeOptionsTests: XCTestCase {
    func testKeepRuleParsing() {
        XCTAssertEqual(KeepRule(parsing: "blk.*.attn_v.weight=q8_0"), KeepRule(pattern: "blk.*.attn_v.weight", type: .q8_0))
        XCTAssertEqual(KeepRule(parsing: "a=b=f16"), KeepRule(pattern: "a=b", type: .f16))
        XCTAssertNil(KeepRule(parsing: "output.weight"))
        XCTAssertNil(KeepRule(parsing: "=q8_0"))
        XCTAssertNil(KeepRule(parsing: "output.weight=q5_0"))
        XCTAssertNil(KeepRule(parsing: "output.weight=i8"))
        XCTAssertEqual(KeepRule(pattern: "blk.*.ffn_down.weight", type: .q8_0).description, "blk.*.ffn_down.weight=q8_0")
    }

    func testKeepRuleMatching() {
        let r = KeepRule(pattern: "blk.*.attn_v.weight", type: .q8_0)
        XCTAssertTrue(r.matches("blk.0.attn_v.weight"))
        XCTAssertTrue(r.matches("blk.29.attn_v.weight"))
        XCTAssertFalse(r.matches("blk.0.attn_q.weight"))
        XCTAssertFalse(r.matches("blk.0.attn_v.weight.extra"))
        XCTAssertTrue(KeepRule(pattern: "*", type: .f16).matches(""))
        XCTAssertTrue(KeepRule(pattern: "blk.0.*", type: .f16).matches("blk.0.ffn_up.weight"))
        XCTAssertFalse(KeepRule(pattern: "blk.0.*", type: .f16).matches("blk.10.ffn_up.weight"))
        XCTAssertTrue(KeepRule(pattern: "*output*", type: .f16).matches("output.weight"))
        XCTAssertTrue(KeepRule(pattern: "a**b", type: .f16).matches("ab"))
    }

    func testPolicyWithRules() {
        let P = QuantizationPolicy.self
        let keep = [KeepRule(pattern: "blk.*.attn_v.weight", type: .q8_0), KeepRule(pattern: "blk.*", type: .f16),
                    KeepRule(pattern: "odd.weight", type: .q4_0)]
        XCTAssertEqual(P.storageType(name: "blk.3.attn_v.weight", dtype: .f32, shape: [64, 64], target: .type(.q4_0), keep: keep), .q8_0)
        XCTAssertEqual(P.storageType(name: "blk.3.attn_q.weight", dtype: .f32, shape: [64, 64], target: .type(.q4_0), keep: keep), .f16)
        // 1-D tensors and integer tensors follow the policy whatever the rules say.
        XCTAssertEqual(P.storageType(name: "blk.3.attn_norm.weight", dtype: .f32, shape: [64], target: .type(.q4_0), keep: keep), .f32)
        XCTAssertEqual(P.storageType(name: "blk.3.ids", dtype: .i32, shape: [4, 64], target: .type(.q4_0), keep: keep), .i32)
        // A block type that does not fit the rows gives f16.
        XCTAssertEqual(P.storageType(name: "odd.weight", dtype: .f32, shape: [4, 48], target: .type(.q8_0), keep: keep), .f16)
        // No match: the policy (4-bit target keeps the embedding at q8_0).
        XCTAssertEqual(P.storageType(name: "token_embd.weight", dtype: .f32, shape: [40, 64], target: .type(.q4_0), keep: keep), .q8_0)
        XCTAssertEqual(P.storageType(name: "output.weight", dtype: .f32, shape: [40, 64], target: .type(.q4_0), keep: []), .q8_0)
    }

    func testConversionAppliesQuantizerAndRules() throws {
        let dir = try makeTemporaryDirectory(self, prefix: "tslm-quantopts").path
        var metadata = Metadata()
        metadata[MetadataKeys.architecture] = .string("raw")
        let writer = try TSLMWriter(path: dir + "/in.tslm", metadata: metadata)
        var s: UInt64 = 7
        func values(_ n: Int) -> [Float] {
            (0..<n).map { _ in
                s = s &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 1e6 * 0.1
            }
        }
        let a = values(8 * 64), v = values(4 * 64)
        for (name, x, shape) in [("blk.0.ffn_up.weight", a, [8, 64]), ("blk.0.attn_v.weight", v, [4, 64])] {
            try x.withUnsafeBytes { try writer.addTensor(name: name, dtype: .f32, shape: shape, data: $0, compress: false) }
        }
        try writer.finish()
        var options = ConvertOptions(target: .type(.q4_0))
        options.quantizer = .search
        options.keep = [KeepRule(pattern: "blk.*.attn_v.weight", type: .q8_0)]
        try Converter.write(try Converter.importModel(path: dir + "/in.tslm"), to: dir + "/out.tslm", options: options)
        let out = try TSLMFile(path: dir + "/out.tslm")
        XCTAssertEqual(out.entry("blk.0.ffn_up.weight")?.dtype, .q4_0)
        XCTAssertEqual(out.entry("blk.0.attn_v.weight")?.dtype, .q8_0)
        var want = [UInt8](repeating: 0, count: 8 * 2 * BlockQ4_0.byteCount)
        a.withUnsafeBufferPointer { src in want.withUnsafeMutableBytes { BlockQuantization.quantizeQ4_0Search(src, into: $0) } }
        XCTAssertEqual(try out.tensorData("blk.0.ffn_up.weight").array, want)
        var rtn = want
        a.withUnsafeBufferPointer { src in rtn.withUnsafeMutableBytes { BlockQuantization.quantizeQ4_0(src, into: $0) } }
        XCTAssertNotEqual(rtn, want, "the search changes some blocks of normal data")
        XCTAssertEqual(out.metadata.string("general.quantizer"), "search")
        XCTAssertTrue(out.metadata.string("general.quantization_policy")?.hasSuffix("; --keep blk.*.attn_v.weight=q8_0") ?? false)
    }
}
