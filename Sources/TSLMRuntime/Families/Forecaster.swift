import TSLMKernels

/// A family that forecasts a series' future from its history (`tslm_forecast`, `tslm forecast`).
/// Families that cannot forecast do not adopt it, and the C API answers `TSLM_ERR_WRONG_KIND`.
public protocol Forecaster: ModelFamily {
    /// What the model reads and writes.
    var forecastShape: ForecastShape { get }
    func forecast(_ request: ForecastRequest, pool: ThreadPool?) throws -> Forecast
    /// Whether a history may have missing values (NaN); false by default.
    var acceptsMissingValues: Bool { get }
    /// Whether it draws sampled paths (so it has quantiles, and `samples`, `seed` and `greedy`
    /// matter); false for point forecasters.
    var drawsSamples: Bool { get }
}

extension Forecaster {
    public var acceptsMissingValues: Bool { false }
    public var drawsSamples: Bool { false }
}

/// The inputs and outputs of a forecaster.
public struct ForecastShape: Sendable, Equatable {
    /// Input channel names, in order (their count is what a history must have), or nil when any
    /// number of channels is forecast independently.
    public var inputs: [String]?
    /// Output channel names, in order, or nil when they are the history's channels.
    public var outputs: [String]?
    /// History steps the model reads (the last ones), nil when it reads any length.
    public var window: Int?
    /// The most steps it forecasts (also the default horizon), nil when unlimited.
    public var horizon: Int?

    public init(inputs: [String]?, outputs: [String]?, window: Int?, horizon: Int?) {
        self.inputs = inputs
        self.outputs = outputs
        self.window = window
        self.horizon = horizon
    }
}

/// What a forecast is asked for.
public struct ForecastRequest: Sendable {
    /// [channel][step]: one or more channels of equal length, finite values.
    public var history: [[Float]]
    /// Steps to forecast.
    public var horizon: Int
    /// Levels in (0, 1) of the quantiles wanted, e.g. [0.1, 0.9].
    public var quantileLevels: [Float]
    /// Sampled paths for sampling forecasters; 0 = the model's default.
    public var samples: Int
    public var seed: UInt64
    /// Sampling forecasters: one deterministic (argmax) path instead of sampled ones.
    public var greedy: Bool
    /// Text context knowledge for forecasters that read it (ChatTime); nil = none.
    public var context: String?
    /// The history at float64 precision, when the caller has it (a CSV's text, a float64 array):
    /// families that compute in float64 as their reference code does (ChatTime's scaler) read it
    /// instead of `history`. Same shape as `history`.
    public var preciseHistory: [[Double]]?

    public init(history: [[Float]], horizon: Int, quantileLevels: [Float] = [], samples: Int = 0, seed: UInt64 = 0,
                greedy: Bool = false, context: String? = nil) {
        self.history = history
        self.horizon = horizon
        self.quantileLevels = quantileLevels
        self.samples = samples
        self.seed = seed
        self.greedy = greedy
        self.context = context
    }

    /// Checks the request; errors name the argument at fault. `allowMissing`: NaN marks a
    /// missing value (for forecasters that accept them), though not every value of a channel.
    public func validate(allowMissing: Bool = false) throws {
        guard !history.isEmpty else { throw RuntimeError.invalidArgument(name: "history", reason: "has no channels") }
        guard let length = history.first?.count, length > 0 else {
            throw RuntimeError.invalidArgument(name: "history", reason: "is empty")
        }
        for (c, channel) in history.enumerated() {
            guard channel.count == length else {
                throw RuntimeError.invalidArgument(name: "history", reason: "channel \(c) has \(channel.count) values, channel 0 has \(length)")
            }
            if let t = channel.firstIndex(where: { allowMissing ? $0.isInfinite : !$0.isFinite }) {
                throw RuntimeError.invalidArgument(name: "history", reason: "value \(channel[t]) at channel \(c), step \(t) is not finite")
            }
            if allowMissing, !channel.contains(where: { !$0.isNaN }) {
                throw RuntimeError.invalidArgument(name: "history", reason: "all values of channel \(c) are missing (NaN)")
            }
            if let precise = preciseHistory, c >= precise.count || precise[c].count != length {
                throw RuntimeError.invalidArgument(name: "precise history", reason: "channel \(c) does not have the history's \(length) values")
            }
        }
        guard horizon > 0, horizon <= 1 << 20 else {
            throw RuntimeError.invalidArgument(name: "horizon", reason: "\(horizon) must be in 1...\(1 << 20)")
        }
        for (i, q) in quantileLevels.enumerated() where !(q > 0 && q < 1) {
            throw RuntimeError.invalidArgument(name: "quantile level \(i)", reason: "\(q) is not in (0, 1)")
        }
        guard samples >= 0 else { throw RuntimeError.invalidArgument(name: "samples", reason: "\(samples) must be ≥ 0") }
    }
}

/// A forecast: per channel the point forecast and the asked quantiles.
public struct Forecast: Sendable, Equatable {
    /// [channel][step]
    public var point: [[Float]]
    /// [channel][quantile][step], in the order of `ForecastRequest.quantileLevels`.
    public var quantiles: [[[Float]]]

    public init(point: [[Float]], quantiles: [[[Float]]] = []) {
        self.point = point
        self.quantiles = quantiles
    }
}
