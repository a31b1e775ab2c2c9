import TSLMFormat

/// Imports a GGUF file (version 2 or 3) as an `ImportedModel`.
///
/// - Metadata: `<arch>.*` keys and `general.name` are copied as they are (`.tslm` uses GGUF's
///   names); `tokenizer.ggml.X` becomes `tokenizer.X` (`padding_token_id` becomes
///   `pad_token_id`); other `tokenizer.*` keys (`tokenizer.chat_template`, …) are kept; other
///   `general.*` string keys are kept, except the ones the converter writes itself. GGUF-internal
///   keys (`general.alignment`, `general.file_type`, `general.quantization_version`) and keys
///   that are not valid `.tslm` keys are dropped.
/// - Tensors keep their names (GGUF names are `.tslm`'s canonical names). F32, F16, BF16, F64,
///   Q8_0, Q4_0, Q4_1 and the integer types are passed through byte for byte; every other type
///   (Q5_0, Q5_1, Q2_K … Q8_K) is dequantized to f32 when loaded.
/// - For `llama` files the q/k row permutation of llama.cpp's converter is undone (see
///   `GGUFRowPermutation`), so q and k rows are in Hugging Face (rotate-half) order.
///
/// Tensor bytes are read on demand by each `SourceTensor.load`, one tensor at a time.
public enum GGUFImporter {
    /// Keys that never become `.tslm` metadata: GGUF-internal ones and the ones the converter
    /// writes itself.
    public static let droppedKeys: Set<String> = [
        "general.alignment", "general.file_type", "general.quantization_version",
        "general.architecture", "general.converter", "general.source.path", "general.source.format",
        "general.quantization_policy", "general.parameter_count",
    ]

    /// Loads the header of `path` and prepares loaders for its tensors.
    public static func load(path: String) throws -> ImportedModel {
        try load(GGUFFile(path: path))
    }

    /// Builds the `ImportedModel` of an opened GGUF file.
    public static func load(_ gguf: GGUFFile) throws -> ImportedModel {
        let file = gguf.path
        guard let archValue = gguf.metadata["general.architecture"] else {
            throw TSLMError.missingKey(file: file, key: "general.architecture")
        }
        guard let arch = archValue.stringValue else {
            throw TSLMError.wrongKeyType(file: file, key: "general.architecture", expected: "string", found: "\(archValue.type)")
        }
        if let splits = gguf.metadata["split.count"]?.intValue, splits > 1 {
            throw TSLMError.malformed(file: file, reason: "split GGUF (\(splits) shards) is not supported; merge it first with llama-gguf-split --merge")
        }
        let metadata = mapMetadata(gguf.metadata, architecture: arch)

        var tensors: [SourceTensor] = []
        tensors.reserveCapacity(gguf.tensors.count)
        for info in gguf.tensors {
            let heads = try permutationHeads(for: info.name, architecture: arch, metadata: gguf.metadata, file: file)
            tensors.append(try sourceTensor(info, in: gguf, unpermuteHeads: heads))
        }
        return ImportedModel(architecture: arch, sourceFormat: "gguf", sourcePath: file,
                             metadata: metadata, tensors: tensors)
    }

    /// The `.tslm` name of a GGUF metadata key, or `nil` when the key is dropped.
    public static func mappedKey(_ key: String, architecture: String, value: MetadataValue) -> String? {
        guard !droppedKeys.contains(key) else { return nil }
        let out: String
        if key.hasPrefix(architecture + ".") || key == "general.name" {
            out = key
        } else if key.hasPrefix("tokenizer.ggml.") {
            let rest = key.dropFirst("tokenizer.ggml.".count)
            out = rest == "padding_token_id" ? "tokenizer.pad_token_id" : "tokenizer." + rest
        } else if key.hasPrefix("tokenizer.") {
            out = key
        } else if key.hasPrefix("general."), value.type == .string {
            out = key
        } else {
            return nil
        }
        return Metadata.isValidKey(out) ? out : nil
    }

    /// Maps the raw GGUF metadata to `.tslm` metadata (see the type's documentation).
    public static func mapMetadata(_ raw: Metadata, architecture: String) -> Metadata {
        var out = Metadata()
        for (key, value) in raw.entries {
            guard let k = mappedKey(key, architecture: architecture, value: value) else { continue }
            out.insertNew(k, value)  // on a clash (two source keys, one name) the first wins
        }
        return out
    }

    /// The head count whose RoPE row permutation must be undone for tensor `name`, or `nil`
    /// when the tensor is not permuted. Only `llama` files' `blk.N.attn_q` and `blk.N.attn_k`
    /// weights and biases are.
    static func permutationHeads(for name: String, architecture: String, metadata: Metadata,
                                 file: String) throws -> Int? {
        guard architecture == "llama", name.hasPrefix("blk.") else { return nil }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[1].allSatisfy(\.isNumber), parts[3] == "weight" || parts[3] == "bias" else { return nil }
        let qKey = "llama.attention.head_count", kvKey = "llama.attention.head_count_kv"
        func heads(_ key: String) throws -> Int {
            guard let v = metadata[key] else { throw TSLMError.missingKey(file: file, key: key) }
            guard let n = v.intValue, n > 0 else {
                throw TSLMError.wrongKeyType(file: file, key: key, expected: "positive integer", found: v.summary)
            }
            return n
        }
        switch parts[2] {
        case "attn_q": return try heads(qKey)
        case "attn_k": return try metadata[kvKey] == nil ? heads(qKey) : heads(kvKey)
        default: return nil
        }
    }

    /// The `SourceTensor` for one tensor info.
    static func sourceTensor(_ info: GGUFTensorInfo, in gguf: GGUFFile, unpermuteHeads heads: Int?) throws -> SourceTensor {
        let shape = info.intShape
        // Pass through when `.tslm` has the type, except 1-D block tensors that must be
        // permuted (their elements are not whole rows): those are decoded.
        var passThrough = info.type.tslmDType
        if heads != nil, shape.count < 2, info.type.blockSize > 1 { passThrough = nil }
        let dtype = passThrough ?? .f32
        guard passThrough != nil || info.type.isFloatingPoint else {
            throw TSLMError.unsupportedDType(file: gguf.path, tensor: info.name, dtype: "\(info.type)")
        }
        if let heads {
            _ = try GGUFRowPermutation.rowLayout(shape: shape, dtype: dtype, heads: heads, file: gguf.path, tensor: info.name)
        }
        let decode = passThrough == nil
        return SourceTensor(name: info.name, dtype: dtype, shape: shape) {
            let data = decode ? try gguf.readFloat32(info) : try gguf.readBytes(info)
            guard let heads else { return data }
            return try data.withUnsafeBytes {
                try GGUFRowPermutation.apply($0, shape: shape, dtype: dtype, heads: heads, inverse: true,
                                             file: gguf.path, tensor: info.name)
            }
        }
    }
}

/// llama.cpp's q/k row permutation for RoPE.
///
/// Hugging Face Llama checkpoints rotate pairs `(i, i + head_dim/2)` of each head
/// ("rotate-half"); llama.cpp's converter reorders the rows of `attn_q`/`attn_k` so that the
/// pairs are adjacent `(2i, 2i + 1)`. In NumPy terms the forward permutation is
/// `w.reshape(heads, 2, rows/heads/2, *rest).swapaxes(1, 2).reshape(w.shape)` and its inverse
/// `w.reshape(heads, rows/heads/2, 2, *rest).swapaxes(1, 2).reshape(w.shape)`.
///
/// Only the outermost dimension (rows) moves, and each row moves as a whole, so this is exact
/// for every dtype, block-quantized ones included (blocks run along the innermost dimension).
public enum GGUFRowPermutation {
    /// Rows and bytes per row of a tensor to permute with `heads` heads; throws `invalidShape`
    /// when the row count is not a multiple of `2·heads` or the bytes do not split into rows.
    public static func rowLayout(shape: [Int], dtype: DType, heads: Int, file: String,
                                 tensor: String) throws(TSLMError) -> (rows: Int, rowBytes: Int) {
        guard let rows = shape.first, heads > 0, heads <= rows, rows % heads == 0, (rows / heads) % 2 == 0 else {
            throw TSLMError.invalidShape(file: file, tensor: tensor, shape: shape,
                                         reason: "rows are not a multiple of 2 × \(heads) heads (RoPE permutation)")
        }
        let rowShape = shape.count > 1 ? Array(shape.dropFirst()) : []
        guard let rowBytes = dtype.byteCount(shape: rowShape.isEmpty ? [1] : rowShape) else {
            throw TSLMError.invalidShape(file: file, tensor: tensor, shape: shape,
                                         reason: "a row is not a whole number of \(dtype) blocks")
        }
        return (rows, rowBytes)
    }

    /// The source row of destination row `r`: for the forward permutation (HF → GGUF),
    /// destination `(h, i, t)` comes from source `(h, t, i)`; the inverse swaps the roles.
    @inline(__always)
    public static func sourceRow(_ r: Int, rows: Int, heads: Int, inverse: Bool) -> Int {
        let perHead = rows / heads, half = perHead / 2
        let h = r / perHead, w = r % perHead
        if inverse {
            // destination (h, t, i) of HF order comes from GGUF row (h, i, t)
            let t = w / half, i = w % half
            return h * perHead + i * 2 + t
        } else {
            // destination (h, i, t) of GGUF order comes from HF row (h, t, i)
            let i = w / 2, t = w % 2
            return h * perHead + t * half + i
        }
    }

    /// Returns the rows of `src`, tensor `tensor` of `file` with `shape` and `dtype`, permuted
    /// forward (HF → llama.cpp) or, with `inverse`, back (llama.cpp → HF).
    ///
    /// Throws `invalidShape` naming the tensor and its shape when the rows do not split into
    /// `2·heads` groups (see `rowLayout`) or when `src` does not hold exactly the bytes the shape
    /// gives; it never returns the rows unpermuted.
    public static func apply(_ src: UnsafeRawBufferPointer, shape: [Int], dtype: DType, heads: Int, inverse: Bool,
                             file: String, tensor: String) throws(TSLMError) -> TensorData {
        let (rows, rowBytes) = try rowLayout(shape: shape, dtype: dtype, heads: heads, file: file, tensor: tensor)
        let (total, overflow) = rows.multipliedReportingOverflow(by: rowBytes)
        guard !overflow, src.count == total else {
            throw TSLMError.invalidShape(file: file, tensor: tensor, shape: shape,
                                         reason: "\(src.count) bytes of data, but \(rows) rows of \(rowBytes) bytes (\(dtype)) need \(overflow ? "more than Int.max" : String(total)) (RoPE permutation)")
        }
        let out = TensorData(allocating: src.count)
        guard total > 0, let s = src.baseAddress, let d = out.mutableBytes.baseAddress else { return out }
        for r in 0..<rows {
            let from = sourceRow(r, rows: rows, heads: heads, inverse: inverse)
            (d + r * rowBytes).copyMemory(from: s + from * rowBytes, byteCount: rowBytes)
        }
        return out
    }
}
