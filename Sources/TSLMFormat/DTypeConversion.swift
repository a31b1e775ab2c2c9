/// Conversion of tensor data between dtypes. Every conversion goes through f32: decoding to
/// f32 is exact for f16, bf16 and the block types; encoding rounds as `formats/tslm.md` says.
public enum DTypeConversion {
    /// Decodes `count` elements of `dtype` into f32.
    public static func toFloat32(_ src: UnsafeRawBufferPointer, dtype: DType, count: Int,
                                 into dst: UnsafeMutableBufferPointer<Float>) {
        guard count > 0, let s = src.baseAddress else { return }
        switch dtype {
        case .f32: dst.baseAddress!.update(from: s.assumingMemoryBound(to: Float.self), count: count)
        case .f16: for i in 0..<count { dst[i] = halfToFloat(loadU16(s + 2 * i)) }
        case .bf16: for i in 0..<count { dst[i] = bf16ToFloat(loadU16(s + 2 * i)) }
        case .f64: for i in 0..<count { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: s.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case .i8: for i in 0..<count { dst[i] = Float(s.load(fromByteOffset: i, as: Int8.self)) }
        case .u8, .bool: for i in 0..<count { dst[i] = Float(s.load(fromByteOffset: i, as: UInt8.self)) }
        case .i16: for i in 0..<count { dst[i] = Float(Int16(littleEndian: s.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
        case .i32: for i in 0..<count { dst[i] = Float(Int32(littleEndian: s.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .i64: for i in 0..<count { dst[i] = Float(Int64(littleEndian: s.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
        case .q8_0: BlockQuantization.dequantizeQ8_0(src, into: UnsafeMutableBufferPointer(rebasing: dst[0..<count]))
        case .q4_0: BlockQuantization.dequantizeQ4_0(src, into: UnsafeMutableBufferPointer(rebasing: dst[0..<count]))
        case .q4_1: BlockQuantization.dequantizeQ4_1(src, into: UnsafeMutableBufferPointer(rebasing: dst[0..<count]))
        case .q4_k: KQuants.dequantizeQ4_K(src, into: UnsafeMutableBufferPointer(rebasing: dst[0..<count]))
        case .q5_k: KQuants.dequantizeQ5_K(src, into: UnsafeMutableBufferPointer(rebasing: dst[0..<count]))
        case .q6_k: KQuants.dequantizeQ6_K(src, into: UnsafeMutableBufferPointer(rebasing: dst[0..<count]))
        }
    }

    /// Encodes f32 values as `dtype` (floating-point types only). `dst` must hold exactly
    /// `dtype.byteCount(shape: [values.count])` bytes. `quantizer` chooses how q4_0 and q4_1
    /// blocks are found (the other types have one encoding; q4_k, q5_k and q6_k always search,
    /// `KQuantization.swift`); the search weighs element g
    /// (counted from `firstIndex`) by `importance[g % importance.count]` when given.
    public static func fromFloat32(_ values: UnsafeBufferPointer<Float>, to dtype: DType,
                                   into dst: UnsafeMutableRawBufferPointer,
                                   quantizer: BlockQuantizer = .roundToNearest,
                                   importance: UnsafeBufferPointer<Float>? = nil, firstIndex: Int = 0) {
        guard !values.isEmpty, let d = dst.baseAddress else { return }
        switch dtype {
        case .f32: d.copyMemory(from: values.baseAddress!, byteCount: values.count * 4)
        case .f16: for i in 0..<values.count { storeU16(floatToHalf(values[i]), d + 2 * i) }
        case .bf16: for i in 0..<values.count { storeU16(floatToBF16(values[i]), d + 2 * i) }
        case .f64: for i in 0..<values.count { d.storeBytes(of: Double(values[i]).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self) }
        case .q8_0: BlockQuantization.quantizeQ8_0(values, into: dst)
        case .q4_0:
            if quantizer == .search { BlockQuantization.quantizeQ4_0Search(values, into: dst, importance: importance, firstIndex: firstIndex) } else { BlockQuantization.quantizeQ4_0(values, into: dst) }
        case .q4_1:
            if quantizer == .search { BlockQuantization.quantizeQ4_1Search(values, into: dst, importance: importance, firstIndex: firstIndex) } else { BlockQuantization.quantizeQ4_1(values, into: dst) }
        case .q4_k: KQuants.quantizeQ4_K(values, into: dst, importance: importance, firstIndex: firstIndex)
        case .q5_k: KQuants.quantizeQ5_K(values, into: dst, importance: importance, firstIndex: firstIndex)
        case .q6_k: KQuants.quantizeQ6_K(values, into: dst, importance: importance, firstIndex: firstIndex)
        case .i8, .i16, .i32, .i64, .u8, .bool: break  // not reached: callers convert floats only
        }
    }

    /// Converts a whole tensor from `from` to `to`. Identical types are copied byte for byte.
    /// Throws `unsupportedDType` for conversions to or from integer types (they are kept as is).
    public static func convert(_ src: UnsafeRawBufferPointer, from: DType, to: DType, shape: [Int],
                               file: String, tensor: String, quantizer: BlockQuantizer = .roundToNearest,
                               importance: [Float]? = nil) throws -> TensorData {
        let outSize = try to.validatedByteCount(shape: shape.map { UInt64($0) }, file: file, tensor: tensor)
        let out = TensorData(allocating: Int(outSize))
        if from == to {
            guard src.count == Int(outSize) else {
                throw TSLMError.sizeMismatch(file: file, tensor: tensor, expected: outSize, actual: UInt64(src.count))
            }
            if src.count > 0 { out.mutableBytes.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: src.count) }
            return out
        }
        guard from.isFloatingPoint, to.isFloatingPoint else {
            throw TSLMError.unsupportedDType(file: file, tensor: tensor, dtype: "\(from) → \(to)")
        }
        let count = shape.reduce(1, *)
        guard count > 0 else { return out }
        let inSize = try from.validatedByteCount(shape: shape.map { UInt64($0) }, file: file, tensor: tensor)
        guard src.count == Int(inSize) else {
            throw TSLMError.sizeMismatch(file: file, tensor: tensor, expected: inSize, actual: UInt64(src.count))
        }
        // Convert in chunks of 2^20 elements (a whole number of 32-blocks, and every row is a
        // whole number of blocks) so the f32 pivot stays small for large tensors.
        let chunkElems = 1 << 20
        let pivot = UnsafeMutableBufferPointer<Float>.allocate(capacity: min(chunkElems, count))
        defer { pivot.deallocate() }
        let impStorage = UnsafeMutableBufferPointer<Float>.allocate(capacity: importance?.count ?? 0)
        defer { impStorage.deallocate() }
        if let importance { _ = impStorage.initialize(from: importance) }
        let imp: UnsafeBufferPointer<Float>? = importance.map { _ in UnsafeBufferPointer(impStorage) }
        var done = 0
        while done < count {
            let n = min(chunkElems, count - done)
            let inBytes = from.byteCount(shape: [n])!, inStart = from.byteCount(shape: [done])!
            let outBytes = to.byteCount(shape: [n])!, outStart = to.byteCount(shape: [done])!
            let p = UnsafeMutableBufferPointer(rebasing: pivot[0..<n])
            toFloat32(UnsafeRawBufferPointer(rebasing: src[inStart..<(inStart + inBytes)]), dtype: from, count: n, into: p)
            fromFloat32(UnsafeBufferPointer(p), to: to,
                        into: UnsafeMutableRawBufferPointer(rebasing: out.mutableBytes[outStart..<(outStart + outBytes)]),
                        quantizer: quantizer, importance: imp, firstIndex: done)
            done += n
        }
        return out
    }
}
