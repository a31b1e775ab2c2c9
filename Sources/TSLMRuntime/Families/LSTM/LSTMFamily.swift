#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels

/// An LSTM forecaster (`general.family` = `lstm`): PyTorch `nn.LSTM` (1–4 layers, gate order
/// input, forget, cell, output) and a linear head, no backbone and no tokenizer (formats/tslm.md,
/// "LSTM forecaster"; the PyTorch reference is tools/lstm_reference.py).
///
/// A forecast reads the last `inputWindow` steps of the history (all `inputChannels`), scales
/// each channel x' = (x − mean) / std, runs the stacked LSTM from a zero state (a
/// `RecurrentState`), applies the head to the last layer's hidden state after the last step, and
/// unscales the [horizon, outputs] result y = y' · std + mean. Dropout and `batch_first` only
/// matter in training: inference is the same for either layout.
public final class LSTMFamily: Forecaster, @unchecked Sendable {
    public let name = ModelFamilyName.lstm.rawValue
    public let kind = ModelKind.forecaster
    public var language: LanguageModel? { nil }
    public let config: LSTMConfig
    let layers: [Layer]
    let head: WeightMatrix
    let headBias: UnsafePointer<Float>
    /// Owns the decoded vectors the layers point into.
    let weights: ModelWeights

    struct Layer {
        /// [4·hidden, inputs]
        let inputWeight: WeightMatrix
        /// [4·hidden, hidden]
        let recurrentWeight: WeightMatrix
        /// b_ih + b_hh [4·hidden], nil when the LSTM has no biases.
        let bias: [Float]?
    }

    public init(file: TSLMFile) throws {
        let c = try LSTMConfig(metadata: file.metadata)
        config = c
        let w = ModelWeights(file: file)
        weights = w
        let h4 = 4 * c.hiddenSize
        layers = try (0..<c.layers).map { k in
            typealias T = TensorNames.LSTM
            let p = T.block(k)
            let inputs = k == 0 ? c.inputChannels.count : c.hiddenSize
            let bi = try w.optionalVector(p + T.inputBias, count: h4)
            let bh = try w.optionalVector(p + T.recurrentBias, count: h4)
            guard (bi == nil) == (bh == nil) else {
                throw RuntimeError.missingTensor(p + (bi == nil ? T.inputBias : T.recurrentBias))
            }
            var bias: [Float]?
            if let bi, let bh { bias = (0..<h4).map { bi[$0] + bh[$0] } }
            return Layer(inputWeight: try w.matrix(p + T.inputWeight, rows: h4, cols: inputs),
                         recurrentWeight: try w.matrix(p + T.recurrentWeight, rows: h4, cols: c.hiddenSize),
                         bias: bias)
        }
        if w.has(TensorNames.LSTM.block(c.layers) + TensorNames.LSTM.inputWeight) {
            throw RuntimeError.badHyperparameter(key: MetadataKeys.LSTM.blockCount,
                                                 reason: "\(c.layers) layers, but the file has a layer \(c.layers)")
        }
        let outputs = c.horizon * c.outputChannels.count
        head = try w.matrix(TensorNames.LSTM.headWeight, rows: outputs, cols: c.hiddenSize)
        headBias = try w.vector(TensorNames.LSTM.headBias, count: outputs)
    }

    /// The last layer's hidden state after running `window` [step][channel] (scaled) from a zero
    /// state, and the state itself (for inspection by tests).
    public func run(scaled window: [[Float]], state: RecurrentState, pool: ThreadPool? = nil) throws -> [Float] {
        let hsz = config.hiddenSize
        guard state.layers == layers.count, state.width == hsz else {
            throw RuntimeError.invalidArgument(name: "recurrent state", reason: "\(state.layers)×\(state.width), the model needs \(layers.count)×\(hsz)")
        }
        state.reset()
        var gates = [Float](repeating: 0, count: 4 * hsz), recurrent = [Float](repeating: 0, count: 4 * hsz)
        for step in window {
            guard step.count == config.inputChannels.count else {
                throw RuntimeError.invalidArgument(name: "history", reason: "a step has \(step.count) channels, the model reads \(config.inputChannels.count)")
            }
            var input = step
            for (k, layer) in layers.enumerated() {
                let h = state.hidden(k), c = state.cell(k)
                input.withUnsafeBufferPointer { x in gates.withUnsafeMutableBufferPointer { g in
                    Kernels.matvec(layer.inputWeight, x.baseAddress!, g.baseAddress!, pool: pool)
                } }
                recurrent.withUnsafeMutableBufferPointer { r in Kernels.matvec(layer.recurrentWeight, h, r.baseAddress!, pool: pool) }
                for i in 0..<(4 * hsz) { gates[i] += recurrent[i] + (layer.bias?[i] ?? 0) }
                for j in 0..<hsz {
                    let ig = sigmoid(gates[j]), fg = sigmoid(gates[hsz + j])
                    let gg = tanhf(gates[2 * hsz + j]), og = sigmoid(gates[3 * hsz + j])
                    c[j] = fg * c[j] + ig * gg
                    h[j] = og * tanhf(c[j])
                }
                input = Array(UnsafeBufferPointer(start: h, count: hsz))
            }
        }
        return Array(UnsafeBufferPointer(start: state.hidden(layers.count - 1), count: hsz))
    }

    public var forecastShape: ForecastShape {
        ForecastShape(inputs: config.inputChannels, outputs: config.outputChannels, window: config.inputWindow, horizon: config.horizon)
    }

    public func forecast(_ request: ForecastRequest, pool: ThreadPool?) throws -> Forecast {
        let c = config
        guard request.history.count == c.inputChannels.count else {
            throw RuntimeError.invalidArgument(name: "history", reason: "\(request.history.count) channel(s) given, the model reads \(c.inputChannels.count) (\(c.inputChannels.joined(separator: ", ")))")
        }
        let length = request.history[0].count
        guard length >= c.inputWindow else {
            throw RuntimeError.invalidArgument(name: "history", reason: "\(length) steps given, the model reads the last \(c.inputWindow) (no padding)")
        }
        guard request.horizon <= c.horizon else {
            throw RuntimeError.invalidArgument(name: "horizon", reason: "\(request.horizon) is more than the model's \(c.horizon) steps")
        }
        guard request.quantileLevels.isEmpty else {
            throw RuntimeError.invalidArgument(name: "quantile levels", reason: "the lstm family gives point forecasts only")
        }
        let window = (length - c.inputWindow..<length).map { t in
            (0..<c.inputChannels.count).map { ch in (request.history[ch][t] - c.inputMean[ch]) / c.inputStd[ch] }
        }
        let last = try run(scaled: window, state: try RecurrentState(layers: c.layers, width: c.hiddenSize), pool: pool)
        let outputs = c.outputChannels.count
        var y = [Float](repeating: 0, count: c.horizon * outputs)
        last.withUnsafeBufferPointer { x in y.withUnsafeMutableBufferPointer { o in Kernels.matvec(head, x.baseAddress!, o.baseAddress!, pool: pool) } }
        let point = (0..<outputs).map { o in
            (0..<request.horizon).map { t in (y[t * outputs + o] + headBias[t * outputs + o]) * c.outputStd[o] + c.outputMean[o] }
        }
        return Forecast(point: point)
    }
}

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

/// Hyperparameters of an LSTM forecaster, read from `lstm.*`; errors name the key.
public struct LSTMConfig: Sendable, Equatable {
    public var inputWindow: Int
    public var horizon: Int
    public var hiddenSize: Int
    public var layers: Int
    public var inputChannels: [String]
    public var outputChannels: [String]
    public var inputMean: [Float], inputStd: [Float], outputMean: [Float], outputStd: [Float]

    public init(metadata m: Metadata) throws {
        typealias K = MetadataKeys.LSTM
        func int(_ key: String, max: Int) throws -> Int {
            guard let v = m.int(key) else { throw RuntimeError.badHyperparameter(key: key, reason: "missing") }
            guard v >= 1, v <= max else { throw RuntimeError.badHyperparameter(key: key, reason: "\(v) is out of range 1...\(max)") }
            return v
        }
        func names(_ key: String) throws -> [String] {
            guard let v = m.strings(key), !v.isEmpty, v.count <= 4096 else {
                throw RuntimeError.badHyperparameter(key: key, reason: "missing or not a non-empty string array")
            }
            return v
        }
        func floats(_ key: String, count: Int, positive: Bool) throws -> [Float] {
            guard case let .f32(v)? = m.array(key) else { throw RuntimeError.badHyperparameter(key: key, reason: "missing or not an f32 array") }
            guard v.count == count else { throw RuntimeError.badHyperparameter(key: key, reason: "\(v.count) values for \(count) channels") }
            if let bad = v.first(where: { !$0.isFinite || (positive && $0 <= 0) }) {
                throw RuntimeError.badHyperparameter(key: key, reason: "\(bad) is not a \(positive ? "positive " : "")finite number")
            }
            return v
        }
        inputWindow = try int(K.inputWindow, max: 1 << 20)
        horizon = try int(K.horizon, max: 1 << 20)
        hiddenSize = try int(K.hiddenSize, max: 1 << 16)
        layers = try int(K.blockCount, max: 16)
        inputChannels = try names(K.inputChannels)
        outputChannels = try names(K.outputChannels)
        inputMean = try floats(K.inputMean, count: inputChannels.count, positive: false)
        inputStd = try floats(K.inputStd, count: inputChannels.count, positive: true)
        outputMean = try floats(K.outputMean, count: outputChannels.count, positive: false)
        outputStd = try floats(K.outputStd, count: outputChannels.count, positive: true)
    }
}
