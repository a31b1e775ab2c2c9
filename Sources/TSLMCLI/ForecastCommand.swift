import ArgumentParser
import Foundation
import TSLMFormat
import TSLMKernels
import TSLMRuntime

struct ForecastCmd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "Forecast a series with a forecasting model; plot it, or evaluate it on the series' last windows.",
        discussion: """
        --series is a CSV (one column per channel, optional header row of channel names) or JSON \
        file (see `tslm run --series`). When the model names its input channels and the CSV has a \
        header, the columns are picked by name; otherwise the file must have as many columns as the \
        model reads. The model reads the last steps of the history (its window); the horizon \
        defaults to the model's.

        Output: a table of the forecast (step, one column per output channel), or JSON with \
        --json. --plot writes an SVG file (history, forecast, and with --eval the actual values of \
        the last window) that a browser shows.

        --eval forecasts the last --windows non-overlapping windows of --horizon steps of the \
        series, each from the history before it, and reports MAE, RMSE, sMAPE (%) and MASE \
        (scaled by the in-sample seasonal-naive error of each window's history, season --season) \
        for the model and for the seasonal-naive baseline: means over the windows, RMSE over all \
        errors pooled.

        Examples:
          tslm forecast -m lstm.tslm --series airline.csv --horizon 12
          tslm forecast -m lstm.tslm --series airline.csv --json --plot next.svg
          tslm forecast -m lstm.tslm --series airline.csv --eval --windows 2 --season 12
        """
    )

    @Option(name: .shortAndLong, help: "A forecasting .tslm model.")
    var model: String

    @Option(name: .long, help: "The history: CSV or JSON, one series per channel.")
    var series: String

    @Option(name: .long, help: "Steps to forecast (default: the model's).")
    var horizon: Int?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @Option(name: .long, help: "Write an SVG plot to this file.")
    var plot: String?

    @Flag(name: .long, help: "Evaluate on the series' last windows instead of forecasting past its end.")
    var eval = false

    @Option(name: .long, help: "--eval: how many windows.")
    var windows: Int = 3

    @Option(name: .long, help: "--eval: the season of the seasonal-naive baseline and of MASE's scale (1 = naive).")
    var season: Int = 1

    @Option(name: .shortAndLong, help: "Worker threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        guard threads >= 1, threads <= 1024 else { throw ValidationError("--threads must be in 1...1024") }
        if let horizon, horizon < 1 { throw ValidationError("--horizon must be ≥ 1") }
        guard windows >= 1 else { throw ValidationError("--windows must be ≥ 1") }
        guard season >= 1 else { throw ValidationError("--season must be ≥ 1") }
        try runReportingErrors {
            let loaded = try LoadedModel(path: model)
            guard let forecaster = loaded.family as? any Forecaster else {
                throw RuntimeError.wrongKind(operation: "tslm forecast", kind: loaded.kind.rawValue)
            }
            let shape = forecaster.forecastShape
            let file = try SeriesFile.read(series)
            let (names, history) = try inputs(file, shape: shape)
            let h = horizon ?? shape.horizon ?? 12
            let pool = ThreadPool(threads: threads)
            let outputs = shape.outputs ?? names
            let title = loaded.file.metadata.string(MetadataKeys.name) ?? model
            if eval {
                try evaluate(loaded, history: history, names: names, outputs: outputs, horizon: h, window: shape.window ?? 1,
                             title: title, pool: pool)
                return
            }
            let f = try loaded.forecast(ForecastRequest(history: history, horizon: h), pool: pool)
            if json {
                try printJSON(["model": model, "family": loaded.family.name, "horizon": h, "channels": outputs,
                               "point": f.point.map { $0.map(Double.init) }])
            } else {
                say("step\t" + outputs.joined(separator: "\t"))
                for t in 0..<h { say("\(t + 1)\t" + f.point.map { format($0[t]) }.joined(separator: "\t")) }
            }
            if let plot {
                let panels = f.point.enumerated().map { o, row in
                    ForecastPlot(title: title, channel: outputs[o], history: history[names.firstIndex(of: outputs[o]) ?? min(o, history.count - 1)],
                                 forecast: row, xLabel: "step", yLabel: outputs[o])
                }
                try write(try ForecastPlot.multi(panels, title: title), to: plot)
            }
        }
    }

    /// The history's channels in the order the model reads them, and their names.
    func inputs(_ file: SeriesFile, shape: ForecastShape) throws -> ([String], [[Float]]) {
        let names = file.names ?? file.channels.indices.map { "channel \($0)" }
        guard let wanted = shape.inputs else { return (names, file.channels) }
        if let fileNames = file.names, Set(wanted).isSubset(of: Set(fileNames)) {
            return (wanted, wanted.map { file.channels[fileNames.firstIndex(of: $0)!] })
        }
        guard file.channels.count == wanted.count else {
            throw RuntimeError.invalidArgument(name: "--series \(file.path)", reason: "\(file.channels.count) column(s); the model reads \(wanted.count): \(wanted.joined(separator: ", "))")
        }
        return (wanted, file.channels)
    }

    /// Rolling-origin evaluation of the model and the seasonal-naive baseline.
    func evaluate(_ loaded: LoadedModel, history: [[Float]], names: [String], outputs: [String], horizon: Int, window: Int,
                  title: String, pool: ThreadPool) throws {
        let length = history[0].count
        let ranges = try ForecastMetrics.rollingWindows(length: length, window: max(window, season + 1), horizon: horizon, count: windows)
        var scores: [String: [String: [Double]]] = ["model": [:], "seasonal_naive": [:]]
        var lastPanels: [ForecastPlot] = []
        for r in ranges {
            let past = history.map { Array($0[..<r.lowerBound]) }
            let f = try loaded.forecast(ForecastRequest(history: past, horizon: horizon), pool: pool)
            for (o, row) in f.point.enumerated() {
                guard let i = names.firstIndex(of: outputs[o]) ?? (f.point.count == history.count ? o : nil) else {
                    throw RuntimeError.invalidArgument(name: "--eval", reason: "output '\(outputs[o])' is not one of the series' channels (\(names.joined(separator: ", ")))")
                }
                let actual = Array(history[i][r])
                let naive = try ForecastMetrics.seasonalNaive(history: past[i], horizon: horizon, season: season)
                for (who, forecast) in [("model", row), ("seasonal_naive", naive)] {
                    scores[who, default: [:]]["mae", default: []].append(try ForecastMetrics.mae(actual: actual, forecast: forecast))
                    scores[who, default: [:]]["rmse", default: []].append(try ForecastMetrics.rmse(actual: actual, forecast: forecast))
                    scores[who, default: [:]]["smape", default: []].append(try ForecastMetrics.smape(actual: actual, forecast: forecast))
                    scores[who, default: [:]]["mase", default: []].append(try ForecastMetrics.mase(actual: actual, forecast: forecast, training: past[i], season: season))
                }
                if r == ranges.last {
                    lastPanels.append(ForecastPlot(title: title, channel: outputs[o], history: past[i], forecast: row, actual: actual,
                                                   xLabel: "step", yLabel: outputs[o]))
                }
            }
        }
        // Windows have equal lengths: MAE, sMAPE and MASE are the means of the windows' scores,
        // RMSE is over all errors pooled (the root of the windows' mean squared errors).
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(v.count, 1)) }
        for who in Array(scores.keys) {
            if let r = scores[who]?["rmse"] { scores[who]?["rmse"] = [mean(r.map { $0 * $0 }).squareRoot()] }
        }
        let metrics = ["mae", "rmse", "smape", "mase"]
        if json {
            try printJSON(["model": model, "family": loaded.family.name, "horizon": horizon, "season": season,
                           "windows": ranges.map { ["origin": $0.lowerBound, "end": $0.upperBound] },
                           "scores": scores.mapValues { s in Dictionary(uniqueKeysWithValues: metrics.map { ($0, mean(s[$0] ?? [])) }) }])
        } else {
            say("\(ranges.count) window(s) of \(horizon) steps (origins \(ranges.map { String($0.lowerBound) }.joined(separator: ", "))), season \(season)")
            say("forecaster".padding(toLength: 16, withPad: " ", startingAt: 0) + metrics.map { $0.uppercased().padding(toLength: 12, withPad: " ", startingAt: 0) }.joined())
            for who in ["model", "seasonal_naive"] {
                let label = who == "model" ? loaded.family.name : "seasonal-naive"
                say(label.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + metrics.map { String(format: "%.4f", mean(scores[who]?[$0] ?? [])).padding(toLength: 12, withPad: " ", startingAt: 0) }.joined())
            }
        }
        if let plot { try write(try ForecastPlot.multi(lastPanels, title: "\(title): last evaluation window"), to: plot) }
    }

    func format(_ v: Float) -> String { String(format: "%.6g", Double(v)) }

    func printJSON(_ object: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        FileHandle.standardOutput.write(data)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    /// Writes `text` to `path` through a temporary file renamed into place.
    func write(_ text: String, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)) else {
            throw RuntimeError.invalidArgument(name: "--plot", reason: "cannot write \(path)")
        }
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw RuntimeError.invalidArgument(name: "--plot", reason: "cannot write \(path)")
        }
    }
}
