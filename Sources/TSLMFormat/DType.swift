/// Storage types of tensor data in a `.tslm` file (see `formats/tslm.md`, "Data types").
public enum DType: UInt32, CaseIterable, Sendable, CustomStringConvertible {
    case f32 = 0, f16 = 1, bf16 = 2, f64 = 3
    case i8 = 4, i16 = 5, i32 = 6, i64 = 7, u8 = 8, bool = 9
    /// 32 weights per block: `f16 d; int8 q[32]` (`BlockQ8_0`).
    case q8_0 = 16
    /// 32 weights per block: `f16 d; uint8 qs[16]`, x = d·(q − 8) (`BlockQ4_0`).
    case q4_0 = 17
    /// 32 weights per block: `f16 d; f16 m; uint8 qs[16]`, x = d·q + m (`BlockQ4_1`).
    case q4_1 = 18
    /// 256 weights per super-block (8 sub-blocks of 32 with 6-bit scales and mins):
    /// `f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128]`, x = d·sc·q − dmin·m (`BlockQ4_K`).
    case q4_k = 19
    /// 256 weights: Q4_K plus a fifth bit per weight in `uint8 qh[32]` (`BlockQ5_K`).
    case q5_k = 20
    /// 256 weights in 16 sub-blocks of 16 with int8 scales: `uint8 ql[128]; uint8 qh[64];
    /// int8 scales[16]; f16 d`, x = d·sc·(q − 32) (`BlockQ6_K`).
    case q6_k = 21

    /// The lower-case name used in the CLI and in `general.file_type`.
    public var description: String {
        switch self {
        case .f32: "f32"
        case .f16: "f16"
        case .bf16: "bf16"
        case .f64: "f64"
        case .i8: "i8"
        case .i16: "i16"
        case .i32: "i32"
        case .i64: "i64"
        case .u8: "u8"
        case .bool: "bool"
        case .q8_0: "q8_0"
        case .q4_0: "q4_0"
        case .q4_1: "q4_1"
        case .q4_k: "q4_k"
        case .q5_k: "q5_k"
        case .q6_k: "q6_k"
        }
    }

    /// Parses a name as printed by `description`.
    public init?(name: String) {
        guard let t = DType.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = t
    }

    /// Elements per block (1 for plain types).
    public var blockSize: Int {
        switch self {
        case .q8_0: BlockQ8_0.weights
        case .q4_0: BlockQ4_0.weights
        case .q4_1: BlockQ4_1.weights
        case .q4_k, .q5_k, .q6_k: KQuants.superBlockSize
        default: 1
        }
    }

    /// Bytes per block.
    public var bytesPerBlock: Int {
        switch self {
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .f64, .i64: 8
        case .i8, .u8, .bool: 1
        case .q8_0: BlockQ8_0.byteCount
        case .q4_0: BlockQ4_0.byteCount
        case .q4_1: BlockQ4_1.byteCount
        case .q4_k: BlockQ4_K.byteCount
        case .q5_k: BlockQ5_K.byteCount
        case .q6_k: BlockQ6_K.byteCount
        }
    }

    /// True for block-quantized types.
    public var isQuantized: Bool { blockSize > 1 }

    /// True for types that hold real numbers (floats and quantized floats).
    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .q8_0, .q4_0, .q4_1, .q4_k, .q5_k, .q6_k: true
        default: false
        }
    }

    /// True for the 256-weight super-block types (q4_k, q5_k, q6_k).
    public var isKQuant: Bool { blockSize == KQuants.superBlockSize }

    /// The byte size of a tensor of this type and shape (outermost dimension first).
    ///
    /// Returns `nil` when the count overflows 64 bits or when the innermost dimension is not a
    /// whole number of blocks.
    public func byteCount(shape: [UInt64]) -> UInt64? {
        var elements: UInt64 = 1
        for d in shape {
            let (p, o) = elements.multipliedReportingOverflow(by: d)
            if o { return nil }
            elements = p
        }
        if blockSize > 1 && elements != 0 {
            guard let inner = shape.last, inner % UInt64(blockSize) == 0 else { return nil }
        }
        let blocks = elements / UInt64(blockSize)
        let (b, o) = blocks.multipliedReportingOverflow(by: UInt64(bytesPerBlock))
        return o ? nil : b
    }

    /// `byteCount(shape:)` for `Int` shapes; `nil` on negative dimensions too.
    public func byteCount(shape: [Int]) -> Int? {
        guard shape.allSatisfy({ $0 >= 0 }) else { return nil }
        guard let n = byteCount(shape: shape.map { UInt64($0) }), n <= UInt64(Int.max) else { return nil }
        return Int(n)
    }
}

extension DType {
    /// The byte size of a tensor of this type, validated for use as memory sizes: throws
    /// `sizeOverflow` when the element or byte count (or a dimension) exceeds `Int.max`, and
    /// `invalidShape` when a block type's innermost dimension is not a whole number of blocks.
    public func validatedByteCount(shape: [UInt64], file: String, tensor: String) throws -> UInt64 {
        var elements: UInt64 = 1
        var overflow = false
        for d in shape {
            let r = elements.multipliedReportingOverflow(by: d)
            elements = r.partialValue
            overflow = overflow || r.overflow || d > UInt64(Int.max)
        }
        guard !overflow, elements <= UInt64(Int.max) else {
            throw TSLMError.sizeOverflow(file: file, tensor: tensor, shape: shape)
        }
        if isQuantized && elements > 0, (shape.last ?? 1) % UInt64(blockSize) != 0 || shape.isEmpty {
            throw TSLMError.invalidShape(file: file, tensor: tensor, shape: shape.map { Int($0) },
                                         reason: "innermost dimension is not a multiple of the \(self) block size \(blockSize)")
        }
        guard let bytes = byteCount(shape: shape), bytes <= UInt64(Int.max) else {
            throw TSLMError.sizeOverflow(file: file, tensor: tensor, shape: shape)
        }
        return bytes
    }
}
