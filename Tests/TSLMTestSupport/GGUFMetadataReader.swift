import Foundation
import TSLMFormat

/// A minimal GGUF (v2/v3) metadata reader for the tests: reads the key/value section of a GGUF
/// file and returns the `tokenizer.ggml.*` keys renamed to `.tslm`'s `tokenizer.*` (so that test
/// targets need not depend on TSLMConvert). Bounds-checked; throws on anything odd.
public enum GGUFMetadataReader {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    public static func tokenizerMetadata(path: String) throws -> Metadata {
        guard let fh = FileHandle(forReadingAtPath: path) else { throw Failure(description: "cannot open \(path)") }
        defer { try? fh.close() }
        let data = [UInt8](fh.readData(ofLength: 32 << 20))
        var p = 0
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, p + n <= data.count else { throw Failure(description: "\(path): truncated metadata") }
            defer { p += n }
            return data[p..<(p + n)]
        }
        func u32() throws -> UInt32 { try take(4).reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        func u64() throws -> UInt64 { try take(8).reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        func string() throws -> String {
            let n = try u64()
            guard n < UInt64(data.count) else { throw Failure(description: "\(path): string too long") }
            return String(decoding: try take(Int(n)), as: UTF8.self)
        }
        guard Array(try take(4)) == Array("GGUF".utf8) else { throw Failure(description: "\(path): not GGUF") }
        let version = try u32()
        guard version == 2 || version == 3 else { throw Failure(description: "\(path): GGUF version \(version)") }
        _ = try u64()  // tensor count
        let kvCount = try u64()
        guard kvCount < 100_000 else { throw Failure(description: "\(path): \(kvCount) keys") }
        var m = Metadata()
        func scalar(_ type: UInt32) throws -> MetadataValue {
            switch type {
            case 0: return .u8(try take(1).first!)
            case 1: return .i8(Int8(bitPattern: try take(1).first!))
            case 2: let v = try take(2); return .u16(UInt16(v[v.startIndex]) | UInt16(v[v.startIndex + 1]) << 8)
            case 3: let v = try take(2); return .i16(Int16(bitPattern: UInt16(v[v.startIndex]) | UInt16(v[v.startIndex + 1]) << 8))
            case 4: return .u32(try u32())
            case 5: return .i32(Int32(bitPattern: try u32()))
            case 6: return .f32(Float(bitPattern: try u32()))
            case 7: return .bool(try take(1).first! != 0)
            case 8: return .string(try string())
            case 10: return .u64(try u64())
            case 11: return .i64(Int64(bitPattern: try u64()))
            case 12: return .f64(Double(bitPattern: try u64()))
            default: throw Failure(description: "\(path): value type \(type)")
            }
        }
        for _ in 0..<kvCount {
            let key = try string()
            let type = try u32()
            let value: MetadataValue
            if type == 9 {
                let et = try u32()
                let n = try u64()
                guard n < UInt64(data.count) else { throw Failure(description: "\(path): array too long") }
                var values: [MetadataValue] = []
                values.reserveCapacity(Int(n))
                for _ in 0..<Int(n) { values.append(try scalar(et)) }
                switch et {
                case 8: value = .array(.string(values.compactMap(\.stringValue)))
                case 5: value = .array(.i32(values.map { if case let .i32(v) = $0 { v } else { 0 } }))
                case 6: value = .array(.f32(values.map { if case let .f32(v) = $0 { v } else { 0 } }))
                default: continue
                }
            } else {
                value = try scalar(type)
            }
            guard key.hasPrefix("tokenizer.") else { continue }
            var name = key.replacingOccurrences(of: "tokenizer.ggml.", with: "tokenizer.")
            if name == "tokenizer.padding_token_id" { name = "tokenizer.pad_token_id" }
            m[name] = value
        }
        return m
    }
}
