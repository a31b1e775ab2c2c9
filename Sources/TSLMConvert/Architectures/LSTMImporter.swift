import TSLMFormat

/// Imports an LSTM forecaster: a PyTorch `state_dict` of `nn.LSTM` (any key prefix, e.g.
/// `lstm.weight_ih_l0`, `lstm.weight_hh_l0`, `lstm.bias_ih_l0`, `lstm.bias_hh_l0`, … for 1–4
/// layers; biases optional) plus one linear head (`<name>.weight` [horizon·outputs, hidden],
/// `<name>.bias`), and a sidecar JSON (`forecast.json`, as tools/lstm_reference.py writes it)
/// with what the weights do not record: `window`, `horizon`, `channels`, `output_channels`,
/// `input_mean`, `input_std`, `output_mean`, `output_std` (and `batch_first`, which inference
/// does not need). The file has no backbone: `general.architecture` is `none`,
/// `general.family` is `lstm` (formats/tslm.md, "LSTM forecaster").
public enum LSTMImporter {
    /// What the sidecar says.
    public struct Config: Sendable, Equatable {
        public var window: Int
        public var horizon: Int
        public var channels: [String]
        public var outputChannels: [String]
        public var inputMean: [Float], inputStd: [Float], outputMean: [Float], outputStd: [Float]

        public init(jsonFile path: String) throws {
            let j = try SidecarJSON(path: path)
            window = try j.int("window")
            horizon = try j.int("horizon")
            channels = try j.names("channels")
            outputChannels = j.has("output_channels") ? try j.names("output_channels") : channels
            inputMean = try j.floats("input_mean", count: channels.count, positive: false)
            inputStd = try j.floats("input_std", count: channels.count, positive: true)
            outputMean = try j.floats("output_mean", count: outputChannels.count, positive: false)
            outputStd = try j.floats("output_std", count: outputChannels.count, positive: true)
        }
    }

    /// Whether a state dict's tensor names are an `nn.LSTM`'s.
    public static func looksLikeLSTM(_ names: [String]) -> Bool { names.contains { $0.hasSuffix("weight_ih_l0") } }

    public static func load(checkpoint path: String, config configPath: String) throws -> ImportedModel {
        try load(try PyTorchImporter.load(path: path), config: configPath)
    }

    /// `load(checkpoint:config:)` for a state dict already opened (`PyTorchImporter.load`).
    static func load(_ raw: ImportedModel, config configPath: String) throws -> ImportedModel {
        let path = raw.sourcePath
        let config = try Config(jsonFile: configPath)
        func bad(_ reason: String) -> TSLMError { .malformed(file: path, reason: reason) }
        guard let first = raw.tensors.first(where: { $0.name.hasSuffix("weight_ih_l0") }) else {
            throw bad("not an nn.LSTM state dict: no '*weight_ih_l0' tensor (has \(raw.tensors.prefix(8).map(\.name).joined(separator: ", ")))")
        }
        let prefix = String(first.name.dropLast("weight_ih_l0".count))
        typealias T = TensorNames.LSTM
        var tensors: [SourceTensor] = []
        var rest: [SourceTensor] = []
        var layers = 0
        for t in raw.tensors {
            guard t.name.hasPrefix(prefix), let (kind, layer) = splitLSTMName(String(t.name.dropFirst(prefix.count))) else {
                rest.append(t)
                continue
            }
            layers = max(layers, layer + 1)
            var renamed = t
            renamed.name = T.block(layer) + kind
            tensors.append(renamed)
        }
        guard (1...16).contains(layers) else { throw bad("\(layers) LSTM layers (1...16 supported)") }
        func shape(_ name: String) throws -> [Int] {
            guard let t = tensors.first(where: { $0.name == name }) else { throw bad("missing LSTM tensor for '\(name)'") }
            return t.shape
        }
        let hh = try shape(T.block(0) + T.recurrentWeight)
        guard hh.count == 2, hh[0] == 4 * hh[1] else { throw bad("\(prefix)weight_hh_l0 has shape \(hh), expected [4·hidden, hidden]") }
        let hidden = hh[1]
        for k in 0..<layers {
            let inputs = k == 0 ? config.channels.count : hidden
            guard try shape(T.block(k) + T.inputWeight) == [4 * hidden, inputs] else {
                throw bad("\(prefix)weight_ih_l\(k) has shape \(try shape(T.block(k) + T.inputWeight)), expected [\(4 * hidden), \(inputs)]\(k == 0 ? " (\(inputs) input channels in the config)" : "")")
            }
            guard try shape(T.block(k) + T.recurrentWeight) == [4 * hidden, hidden] else { throw bad("\(prefix)weight_hh_l\(k) is not [\(4 * hidden), \(hidden)]") }
        }
        // The rest is the head: one weight [horizon·outputs, hidden] and its bias.
        let outputs = config.horizon * config.outputChannels.count
        guard rest.count == 2, let w = rest.first(where: { $0.name.hasSuffix("weight") }), let b = rest.first(where: { $0.name.hasSuffix("bias") }) else {
            throw bad("expected the LSTM and one linear head (weight + bias); other tensors: \(rest.map(\.name).joined(separator: ", "))")
        }
        guard w.shape == [outputs, hidden], b.shape == [outputs] else {
            throw bad("head '\(w.name)' has shape \(w.shape) (bias \(b.shape)), expected [\(outputs), \(hidden)] = horizon \(config.horizon) × \(config.outputChannels.count) outputs by hidden \(hidden)")
        }
        var hw = w, hb = b
        hw.name = T.headWeight
        hb.name = T.headBias
        tensors += [hw, hb]

        typealias K = MetadataKeys.LSTM
        var m = Metadata()
        m[MetadataKeys.family] = .string(ModelFamilyName.lstm.rawValue)
        m[K.inputWindow] = .u32(UInt32(config.window))
        m[K.horizon] = .u32(UInt32(config.horizon))
        m[K.hiddenSize] = .u32(UInt32(hidden))
        m[K.blockCount] = .u32(UInt32(layers))
        m[K.inputChannels] = .array(.string(config.channels))
        m[K.outputChannels] = .array(.string(config.outputChannels))
        m[K.inputMean] = .array(.f32(config.inputMean))
        m[K.inputStd] = .array(.f32(config.inputStd))
        m[K.outputMean] = .array(.f32(config.outputMean))
        m[K.outputStd] = .array(.f32(config.outputStd))
        let file = FileSystem.lastPathComponent(path)
        let stem = file.lastIndex(of: ".").flatMap { $0 == file.startIndex ? nil : file[..<$0] } ?? file[...]
        m[MetadataKeys.name] = .string(String(stem))
        return ImportedModel(architecture: noBackbone, sourceFormat: "pytorch", sourcePath: path, metadata: m, tensors: tensors)
    }

    /// `general.architecture` of a family without a text backbone.
    public static let noBackbone = "none"

    /// "weight_ih_l3" → ("weight_ih", 3); nil for other names.
    static func splitLSTMName(_ s: String) -> (String, Int)? {
        for kind in [TensorNames.LSTM.inputWeight, TensorNames.LSTM.recurrentWeight, TensorNames.LSTM.inputBias, TensorNames.LSTM.recurrentBias] {
            if s.hasPrefix(kind + "_l"), let layer = Int(s.dropFirst(kind.count + 2)), layer >= 0 { return (kind, layer) }
        }
        return nil
    }
}
