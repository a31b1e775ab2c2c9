/// Point-forecast accuracy measures, the seasonal-naive baseline and rolling-origin evaluation
/// windows (`tslm forecast --eval`).
///
/// Every measure takes the observed values (`actual`, y) and the forecast (ŷ) of one window as
/// `Float`, computes in `Double` and returns `Double`. Inputs must be non-empty, of equal length
/// and finite; anything else throws `RuntimeError.invalidArgument` naming the argument. How the
/// scores of several windows are combined (mean of per-window scores, or one score over all
/// errors pooled) is the caller's choice.
public enum ForecastMetrics {
    /// The largest horizon `seasonalNaive` produces (the same bound as `ForecastRequest`).
    public static let maxHorizon = 1 << 20

    /// Mean absolute error: mean of |y − ŷ|.
    public static func mae(actual: [Float], forecast: [Float]) throws -> Double {
        try checkPair(actual, forecast)
        var sum = 0.0
        for i in actual.indices { sum += (Double(actual[i]) - Double(forecast[i])).magnitude }
        return sum / Double(actual.count)
    }

    /// Root mean squared error: √(mean of (y − ŷ)²).
    public static func rmse(actual: [Float], forecast: [Float]) throws -> Double {
        try checkPair(actual, forecast)
        var sum = 0.0
        for i in actual.indices {
            let d = Double(actual[i]) - Double(forecast[i])
            sum += d * d
        }
        return (sum / Double(actual.count)).squareRoot()
    }

    /// Symmetric mean absolute percentage error in percent (0…200): mean of
    /// 200·|y − ŷ| / (|y| + |ŷ|), a term with y = ŷ = 0 (0/0) counting as 0 (the M4 definition).
    public static func smape(actual: [Float], forecast: [Float]) throws -> Double {
        try checkPair(actual, forecast)
        var sum = 0.0
        for i in actual.indices {
            let y = Double(actual[i]), f = Double(forecast[i])
            let denominator = y.magnitude + f.magnitude
            if denominator > 0 { sum += 200 * (y - f).magnitude / denominator }
        }
        return sum / Double(actual.count)
    }

    /// Mean absolute scaled error: `mae(actual:forecast:)` divided by
    /// `naiveScale(training:season:)`, the in-sample MAE of the seasonal-naive forecast on the
    /// training series (the history before the forecast origin). Below 1: better than the
    /// seasonal-naive forecast was in sample.
    public static func mase(actual: [Float], forecast: [Float], training: [Float], season: Int = 1) throws -> Double {
        let scale = try naiveScale(training: training, season: season)
        return try mae(actual: actual, forecast: forecast) / scale
    }

    /// MASE's denominator: the mean over t = m..<n of |x_t − x_{t−m}| on the training series x of
    /// length n with season m ≥ 1. Throws when n < m + 1 (no term), when a value is not finite,
    /// and when the scale is 0 (a series that repeats exactly with period m, e.g. a constant one:
    /// MASE is undefined there).
    public static func naiveScale(training: [Float], season: Int) throws -> Double {
        guard season >= 1 else {
            throw RuntimeError.invalidArgument(name: "season", reason: "\(season) must be ≥ 1")
        }
        try checkFinite(training, name: "training")
        guard training.count > season else {
            throw RuntimeError.invalidArgument(
                name: "training",
                reason: "has \(training.count) values; MASE with season \(season) needs at least \(season + 1)")
        }
        var sum = 0.0
        for t in season..<training.count {
            sum += (Double(training[t]) - Double(training[t - season])).magnitude
        }
        let scale = sum / Double(training.count - season)
        guard scale > 0 else {
            throw RuntimeError.invalidArgument(
                name: "training",
                reason: "the in-sample seasonal-naive MAE (season \(season)) is 0: the series repeats exactly, MASE is undefined")
        }
        return scale
    }

    /// The seasonal-naive forecast: the last `season` values of `history` repeated,
    /// ŷ[i] = history[n − m + (i mod m)] for i in 0..<horizon (n = history.count, m = season).
    /// Season 1 is the naive forecast (the last value repeated). Needs n ≥ m ≥ 1, finite history,
    /// horizon in 1...`maxHorizon`.
    public static func seasonalNaive(history: [Float], horizon: Int, season: Int = 1) throws -> [Float] {
        guard season >= 1 else {
            throw RuntimeError.invalidArgument(name: "season", reason: "\(season) must be ≥ 1")
        }
        guard horizon >= 1, horizon <= maxHorizon else {
            throw RuntimeError.invalidArgument(name: "horizon", reason: "\(horizon) must be in 1...\(maxHorizon)")
        }
        guard !history.isEmpty else {
            throw RuntimeError.invalidArgument(name: "history", reason: "is empty")
        }
        try checkFinite(history, name: "history")
        guard history.count >= season else {
            throw RuntimeError.invalidArgument(
                name: "history", reason: "has \(history.count) values, fewer than the season \(season)")
        }
        let start = history.count - season
        return (0..<horizon).map { history[start + $0 % season] }
    }

    /// Rolling-origin evaluation windows over a series of `length` steps: the last `count`
    /// non-overlapping windows of `horizon` steps that end the series, in time order.
    ///
    /// Each returned range `r` is the evaluation target: the model forecasts `r.count == horizon`
    /// steps from the forecast origin `r.lowerBound`, its history is the series' steps
    /// `0..<r.lowerBound`, and its score compares the forecast with the steps in `r`. The last
    /// window ends at `length` (`r.upperBound == length`); each earlier one ends where the next
    /// begins (origins `length − k·horizon`, k = count…1). A window is kept only when its history
    /// has at least `window` steps (`r.lowerBound >= window`; a model with a fixed input window
    /// reads `r.lowerBound − window ..< r.lowerBound`), so a short series gives fewer than `count`
    /// windows: exactly min(count, (length − window) / horizon) of them (integer division).
    ///
    /// Example: length 20, window 8, horizon 4, count 3 → [8..<12, 12..<16, 16..<20];
    /// with count 5 the same three (a fourth would start at 4 < window).
    ///
    /// Throws when window, horizon or count is below 1, length is negative, or not even one
    /// window fits (length < window + horizon).
    public static func rollingWindows(length: Int, window: Int, horizon: Int, count: Int) throws -> [Range<Int>] {
        guard window >= 1 else { throw RuntimeError.invalidArgument(name: "window", reason: "\(window) must be ≥ 1") }
        guard horizon >= 1 else { throw RuntimeError.invalidArgument(name: "horizon", reason: "\(horizon) must be ≥ 1") }
        guard count >= 1 else { throw RuntimeError.invalidArgument(name: "count", reason: "\(count) must be ≥ 1") }
        guard length >= 0 else { throw RuntimeError.invalidArgument(name: "length", reason: "\(length) must be ≥ 0") }
        guard length - window >= horizon else {
            throw RuntimeError.invalidArgument(
                name: "length",
                reason: "a series of \(length) steps holds no evaluation window: it needs at least window \(window) + horizon \(horizon) steps")
        }
        let windows = min(count, (length - window) / horizon)
        return (0..<windows).map { j in
            let origin = length - (windows - j) * horizon
            return origin..<(origin + horizon)
        }
    }

    static func checkFinite(_ values: [Float], name: String) throws {
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw RuntimeError.invalidArgument(name: name, reason: "value \(values[i]) at index \(i) is not finite")
        }
    }

    static func checkPair(_ actual: [Float], _ forecast: [Float]) throws {
        guard !actual.isEmpty else { throw RuntimeError.invalidArgument(name: "actual", reason: "is empty") }
        guard forecast.count == actual.count else {
            throw RuntimeError.invalidArgument(
                name: "forecast", reason: "has \(forecast.count) values, actual has \(actual.count)")
        }
        try checkFinite(actual, name: "actual")
        try checkFinite(forecast, name: "forecast")
    }
}
