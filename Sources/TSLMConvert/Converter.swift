import TSLMFormat

#if canImport(Glibc)
import Glibc
#endif

/// The version written into `general.converter`.
public let tslmVersion = "0.1.0"

/// Options of `tslm convert` / `tslm quantize`.
public struct ConvertOptions {
    public var target: TargetType = .source
    /// Store tensors zstd-compressed where that saves at least 5%.
    public var compress = false
    /// Called before each tensor: (index, count, name).
    public var progress: ((Int, Int, String) -> Void)?
    /// `general.name` to write (default: the source's name, else the input's file name).
    public var name: String?
    /// How q4_0/q4_1 blocks are found (`BlockQuantizer`).
    public var quantizer: BlockQuantizer = .roundToNearest
    /// `--keep PATTERN=TYPE` rules, first match wins (`QuantizationPolicy.storageType`).
    public var keep: [KeepRule] = []
    /// Per-column importance of matrices by name (an imatrix: mean square of the activations
    /// each column multiplies), weighting the search quantizer's error; used for a matrix whose
    /// row length equals the vector's.
    public var importance: [String: [Float]] = [:]

    public init(target: TargetType = .source, compress: Bool = false) {
        self.target = target
        self.compress = compress
    }
}

/// What a conversion wrote.
public struct ConvertSummary: Sendable {
    public var tensorCount: Int
    public var parameterCount: Int
    public var bytesWritten: UInt64
    /// Tensors per storage type.
    public var typeCounts: [DType: Int]
}

/// The input formats `tslm convert` recognizes.
public enum InputFormat: String, Sendable {
    case huggingFaceFolder = "huggingface"
    case safetensors, pytorch, gguf, tslm
}

/// Imports any supported checkpoint and writes `.tslm` files.
public enum Converter {
    /// Detects the format of `path` from its type (folder) or its first bytes.
    public static func detectFormat(path: String) throws -> InputFormat {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TSLMError.io(file: path, operation: "open", errno: errno) }
        if (st.st_mode & S_IFMT) == S_IFDIR { return .huggingFaceFolder }
        let reader = try FileReader(path: path)
        let n = Int(min(reader.size, 16))
        let head = try reader.read(offset: 0, count: n, what: "file header").array
        if head.starts(with: Array("GGUF".utf8)) { return .gguf }
        if head.starts(with: TSLMFormat.magic) { return .tslm }
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06]) { return .pytorch }
        if head.count >= 9 {
            let len = head.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
            if len > 1, len <= reader.size - 8, head[8] == UInt8(ascii: "{") { return .safetensors }
        }
        if head.first == 0x80 {
            throw TSLMError.malformed(file: path, reason: "this is a legacy (pre-1.6) PyTorch pickle file; re-save it with torch.save in a current PyTorch")
        }
        throw TSLMError.malformed(file: path, reason: "unrecognized input: not a Hugging Face folder, safetensors, PyTorch zip, GGUF or .tslm file")
    }

    /// Imports `path` in whatever supported format it is. With `base`, `path` is a model built
    /// on top of another one (an OpenTSLM checkpoint: see `OpenTSLMImporter`), and `base` is
    /// that backbone (a Hugging Face folder, GGUF or `.tslm` file).
    public static func importModel(path: String, base: String?, openTSLM: OpenTSLMImporter.Options = OpenTSLMImporter.Options()) throws -> ImportedModel {
        guard let base else {
            let model = try importModel(path: path)
            if model.sourceFormat == "pytorch", let ck = try? OpenTSLMImporter.open(path), let v = OpenTSLMImporter.variant(of: ck) {
                throw TSLMError.invalidArgument(name: "--base", reason: "\(path) is an OpenTSLM \(v == .softPrompt ? "SoftPrompt" : "Flamingo") checkpoint: it holds only the time-series parts\(v == .softPrompt ? " (and LoRA adapters)" : ""); give the LLM it was trained on with --base (a Hugging Face folder, GGUF or .tslm file)")
            }
            if model.sourceFormat == "pytorch", TimeLLMImporter.looksLikeTimeLLM(model.tensors.map(\.name)) {
                throw TSLMError.invalidArgument(name: "--forecast-config", reason: "\(path) is a Time-LLM state dict: give its timellm.json with --forecast-config and the LLM it was trained on with --base")
            }
            if model.sourceFormat == "pytorch", LSTMImporter.looksLikeLSTM(model.tensors.map(\.name)) {
                throw TSLMError.invalidArgument(name: "--forecast-config", reason: "\(path) is an nn.LSTM state dict: give its forecast.json (window, horizon, channels, scaling) with --forecast-config")
            }
            return model
        }
        guard try detectFormat(path: path) == .pytorch else {
            throw TSLMError.invalidArgument(name: "--base", reason: "only an OpenTSLM checkpoint (a PyTorch .pt file) is converted on top of a base; \(path) is not one")
        }
        return try OpenTSLMImporter.load(checkpoint: path, base: base, options: openTSLM)
    }

    /// Imports a forecaster's PyTorch state dict with its sidecar `config`: Time-LLM (which needs
    /// the LLM it was trained on, `base`) or an LSTM (which has none). The checkpoint is opened once.
    public static func importForecaster(path: String, config: String, base: String?) throws -> ImportedModel {
        let raw = try PyTorchImporter.load(path: path)
        if TimeLLMImporter.looksLikeTimeLLM(raw.tensors.map(\.name)) {
            guard let base else {
                throw TSLMError.invalidArgument(name: "--base", reason: "\(path) is a Time-LLM checkpoint: give the LLM it was trained on with --base")
            }
            return try TimeLLMImporter.load(raw, config: config, base: base)
        }
        guard base == nil else { throw TSLMError.invalidArgument(name: "--base", reason: "an LSTM forecaster has no base LLM") }
        return try LSTMImporter.load(raw, config: config)
    }

    /// Imports `path` in whatever supported format it is.
    public static func importModel(path: String) throws -> ImportedModel {
        switch try detectFormat(path: path) {
        case .huggingFaceFolder: return try HuggingFaceImporter.load(folder: path)
        case .safetensors: return try HuggingFaceImporter.loadSafetensorsFile(path: path)
        case .pytorch: return try PyTorchImporter.load(path: path)
        case .gguf: return try GGUFImporter.load(path: path)
        case .tslm: return try TSLMImporter.load(path: path)
        }
    }

    /// Writes `model` to `output` under `options`: one tensor in memory at a time, into a
    /// temporary file that is renamed into place only when everything succeeded.
    @discardableResult
    public static func write(_ model: ImportedModel, to output: String, options: ConvertOptions) throws -> ConvertSummary {
        if let arch = Architectures.named(model.architecture) {
            // A time-series family adds its own tensors to the backbone's.
            let family = (model.metadata.string(MetadataKeys.family) ?? LegacyMetadata.family(model.metadata)).flatMap(ModelFamilyName.init)
            func familyTensor(_ name: String) -> Bool {
                switch family {
                case .openTSLMSoftPrompt?, .openTSLMFlamingo?: OpenTSLMNames.isTimeSeriesName(name)
                case .timeLLM?: name.hasPrefix(TensorNames.TimeLLM.prefix)
                default: false
                }
            }
            for t in model.tensors where !arch.isCanonicalName(t.name) && !familyTensor(t.name) {
                throw TSLMError.unmappedTensor(file: model.sourcePath, architecture: arch.name, tensor: t.name)
            }
        } else if model.architecture == LSTMImporter.noBackbone {
            // A family without a text backbone keeps all its tensors under its own prefix.
            guard model.metadata.string(MetadataKeys.family) == ModelFamilyName.lstm.rawValue else {
                throw TSLMError.unknownArchitecture(file: model.sourcePath, architecture: "none (without a backbone-less family)")
            }
            for t in model.tensors where !t.name.hasPrefix(TensorNames.LSTM.prefix) {
                throw TSLMError.unmappedTensor(file: model.sourcePath, architecture: "none", tensor: t.name)
            }
        } else if model.architecture != "raw" {
            throw TSLMError.unknownArchitecture(file: model.sourcePath, architecture: model.architecture)
        }
        var seen = Set<String>()
        for t in model.tensors where !seen.insert(t.name).inserted {
            throw TSLMError.duplicateTensor(file: model.sourcePath, name: t.name)
        }

        var metadata = Metadata()
        metadata[MetadataKeys.architecture] = .string(model.architecture)
        // The family the runtime builds: the importer's (OpenTSLM), else a runnable backbone is a
        // text model; `raw` files have none (they are not runnable).
        var source = model.metadata
        LegacyMetadata.migrate(&source)
        if let family = source.string(MetadataKeys.family) {
            metadata[MetadataKeys.family] = .string(family)
        } else if ChatTimeImport.hasValueTokens(source) {
            metadata[MetadataKeys.family] = .string(ModelFamilyName.chatTime.rawValue)
            for (k, v) in ChatTimeImport.defaults where source[k] == nil { metadata[k] = v }
        } else if model.architecture != "raw" && model.architecture != LSTMImporter.noBackbone {
            metadata[MetadataKeys.family] = .string(ModelFamilyName.text.rawValue)
        }
        metadata["general.file_type"] = .string(options.target.description)
        metadata["general.converter"] = .string("tslm \(tslmVersion)")
        let baseName = model.sourcePath.split(separator: "/").last.map(String.init) ?? model.sourcePath
        metadata["general.name"] = .string(options.name ?? model.metadata.string("general.name") ?? baseName)
        if model.sourceFormat != "tslm" || model.metadata["general.source.path"] == nil {
            metadata["general.source.path"] = .string(model.sourcePath)
            metadata["general.source.format"] = .string(model.sourceFormat)
        }
        var policy = QuantizationPolicy.summary
        if !options.keep.isEmpty { policy += "; --keep " + options.keep.map(\.description).joined(separator: " ") }
        metadata["general.quantization_policy"] = .string(policy)
        metadata["general.quantizer"] = .string(options.quantizer.rawValue + (options.importance.isEmpty ? "" : "+imatrix"))
        for (k, v) in source.entries where metadata[k] == nil { metadata[k] = v }

        let writer = try TSLMWriter(path: output, metadata: metadata)
        var params = 0
        var typeCounts: [DType: Int] = [:]
        let layerCount = QuantizationPolicy.layerCount(model.tensors.map(\.name))
        for (i, t) in model.tensors.enumerated() {
            options.progress?(i, model.tensors.count, t.name)
            let target = QuantizationPolicy.storageType(name: t.name, dtype: t.dtype, shape: t.shape, target: options.target,
                                                        keep: options.keep, layerCount: layerCount)
            let data = try t.load()
            guard let expected = t.dtype.byteCount(shape: t.shape), expected == data.bytes.count else {
                throw TSLMError.sizeMismatch(file: model.sourcePath, tensor: t.name,
                                             expected: UInt64(t.dtype.byteCount(shape: t.shape) ?? 0), actual: UInt64(data.bytes.count))
            }
            if target.isQuantized && t.dtype != target {
                try checkFinite(data, dtype: t.dtype, count: t.shape.reduce(1, *), file: model.sourcePath, tensor: t.name)
            }
            let importance = options.importance[t.name].flatMap { $0.count == t.shape.last ? $0 : nil }
            let out = try data.withUnsafeBytes {
                try DTypeConversion.convert($0, from: t.dtype, to: target, shape: t.shape, file: model.sourcePath, tensor: t.name,
                                           quantizer: options.quantizer, importance: importance)
            }
            try out.withUnsafeBytes {
                try writer.addTensor(name: t.name, dtype: target, shape: t.shape, data: $0, compress: options.compress)
            }
            if t.dtype.isFloatingPoint { params += t.shape.reduce(1, *) }
            typeCounts[target, default: 0] += 1
        }
        options.progress?(model.tensors.count, model.tensors.count, "")
        writer.metadata["general.parameter_count"] = .u64(UInt64(params))
        try writer.finish()
        let size = (try? FileReader(path: output).size) ?? 0
        return ConvertSummary(tensorCount: model.tensors.count, parameterCount: params, bytesWritten: size, typeCounts: typeCounts)
    }

    /// Quantizing NaN or Inf would silently produce garbage blocks: refuse, naming the tensor.
    static func checkFinite(_ data: TensorData, dtype: DType, count: Int, file: String, tensor: String) throws {
        guard count > 0 else { return }
        let chunk = 1 << 16
        let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: min(chunk, count))
        defer { buf.deallocate() }
        let inner = dtype.isQuantized ? dtype.blockSize : 1
        var done = 0
        while done < count {
            let n = min(chunk - chunk % max(inner, 1), count - done)
            let start = dtype.byteCount(shape: [done])!, len = dtype.byteCount(shape: [n])!
            DTypeConversion.toFloat32(UnsafeRawBufferPointer(rebasing: data.bytes[start..<(start + len)]), dtype: dtype, count: n,
                                      into: UnsafeMutableBufferPointer(rebasing: buf[0..<n]))
            for i in 0..<n where !buf[i].isFinite {
                throw TSLMError.malformed(file: file, reason: "tensor '\(tensor)' holds NaN or Inf at element \(done + i); it cannot be quantized")
            }
            done += n
        }
    }
}
