import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
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

        Sampling forecasters (ChatTime) draw --samples paths (default the model's, 8 for \
        ChatTime) seeded by --seed, and report their per-step median with the --quantiles band \
        (default 0.1,0.9: the table's and JSON's extra columns, the plot's shaded area); --greedy \
        draws one deterministic path instead. --context passes ChatTime's context knowledge.

        Examples:
          tslm forecast -m lstm.tslm --series airline.csv --horizon 12
          tslm forecast -m chattime.tslm --series sales.csv --horizon 24 --samples 8 --seed 1 --plot sales.svg
          tslm forecast -m chattime.tslm --series sales.csv --horizon 24 --greedy --context "December peaks"
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

    @Option(name: .long, help: "Sampling forecasters: sampled paths (default: the model's).")
    var samples: Int?

    @Option(name: .long, help: "Sampling forecasters: the seed of the paths.")
    var seed: UInt64 = 0

    @Flag(name: .long, help: "Sampling forecasters: one deterministic (argmax) path.")
    var greedy = false

    @Option(name: .long, help: "Sampling forecasters: quantile levels of the band, comma-separated (default 0.1,0.9; 'none' for none).")
    var quantiles: String?

    @Option(name: .long, help: "ChatTime: context knowledge added to the prompt.")
    var context: String?

    @Option(name: .shortAndLong, help: "Worker threads (default: all cores).")
    var threads: Int = activeProcessorCount()

    /// The request for `history` (with its float64 text values, `precise`), with the sampling options.
    func request(_ history: [[Float]], precise: [[Double]]? = nil, horizon: Int, levels: [Float]) -> ForecastRequest {
        var r = ForecastRequest(history: history, horizon: horizon, quantileLevels: levels, samples: samples ?? 0, seed: seed,
                                greedy: greedy, context: context)
        r.preciseHistory = precise
        return r
    }

    /// The quantile levels asked for: --quantiles, else 0.1 and 0.9 for sampling forecasters.
    func levels(_ forecaster: any Forecaster) throws -> [Float] {
        guard let quantiles else { return forecaster.drawsSamples && !greedy ? [0.1, 0.9] : [] }
        if quantiles == "none" { return [] }
        return try quantiles.split(separator: ",").map {
            guard let q = Float($0.trimmingHorizontalSpace()), q > 0, q < 1 else {
                throw ValidationError("--quantiles: '\($0)' is not a level in (0, 1)")
            }
            return q
        }
    }

    func run() throws {
        guard threads >= 1, threads <= 1024 else { throw ValidationError("--threads must be in 1...1024") }
        if let horizon, horizon < 1 { throw ValidationError("--horizon must be ≥ 1") }
        guard windows >= 1 else { throw ValidationError("--windows must be ≥ 1") }
        guard season >= 1 else { throw ValidationError("--season must be ≥ 1") }
        if let samples, samples < 1 || samples > 1024 { throw ValidationError("--samples must be in 1...1024") }
        if greedy, samples != nil { throw ValidationError("--greedy draws one path: drop --samples") }
        try runReportingErrors {
            let loaded = try LoadedModel(path: model)
            guard let forecaster = loaded.family as? any Forecaster else {
                throw RuntimeError.wrongKind(operation: "tslm forecast", kind: loaded.kind.rawValue)
            }
            let shape = forecaster.forecastShape
            if !forecaster.drawsSamples {
                for (flag, given) in [("--samples", samples != nil), ("--greedy", greedy), ("--seed", seed != 0), ("--quantiles", quantiles != nil && quantiles != "none")] where given {
                    throw ValidationError("\(flag) is for sampling forecasters (ChatTime); this \(loaded.family.name) model forecasts one point path")
                }
            }
            if context != nil, !(loaded.family is ChatTimeFamily) {
                throw ValidationError("--context is for ChatTime models; this one is a \(loaded.family.name) model")
            }
            let levels = try levels(forecaster)
            let file = try SeriesFile.read(series)
            let (names, history) = try inputs(file, shape: shape)
            // The file's own float64 values, when its channels are taken as they are.
            let precise = shape.inputs == nil ? file.values : nil
            let h = horizon ?? shape.horizon ?? 12
            let pool = ThreadPool(threads: threads)
            let outputs = shape.outputs ?? names
            let title = loaded.file.metadata.string(MetadataKeys.name) ?? model
            if eval {
                try evaluate(loaded, history: history, precise: precise, names: names, outputs: outputs, horizon: h,
                             window: shape.window ?? 1, title: title, levels: levels, pool: pool)
                return
            }
            let f = try loaded.forecast(request(history, precise: precise, horizon: h, levels: levels), pool: pool)
            if json {
                var object: [String: JSONOutput] = [
                    "model": .string(model), "family": .string(loaded.family.name), "horizon": .int(h),
                    "channels": .array(outputs.map(JSONOutput.string)),
                    "point": .array(f.point.map { .array($0.map(jsonNumber)) }),
                ]
                if !levels.isEmpty {
                    object["quantile_levels"] = .array(levels.map { .double(Double("\($0)") ?? Double($0)) })  // 0.1, not 0.10000000149
                    object["quantiles"] = .array(f.quantiles.map { .array($0.map { .array($0.map(jsonNumber)) }) })
                }
                if forecaster.drawsSamples { object["greedy"] = .bool(greedy); object["seed"] = .uint(seed) }
                printJSON(.object(object))
            } else {
                let bandNames = levels.map { "q" + String(cFormat: "%g", Double($0)) }
                say("step\t" + outputs.flatMap { o in [o] + bandNames.map { "\(o) \($0)" } }.joined(separator: "\t"))
                for t in 0..<h {
                    say("\(t + 1)\t" + f.point.indices.flatMap { o in
                        [format(f.point[o][t])] + levels.indices.map { format(f.quantiles[o][$0][t]) }
                    }.joined(separator: "\t"))
                }
            }
            if let plot {
                let panels = f.point.enumerated().map { o, row in
                    ForecastPlot(title: title, channel: outputs[o], history: history[names.firstIndex(of: outputs[o]) ?? min(o, history.count - 1)],
                                 forecast: row, band: band(f, channel: o, levels: levels), xLabel: "step", yLabel: outputs[o])
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
    func evaluate(_ loaded: LoadedModel, history: [[Float]], precise: [[Double]]?, names: [String], outputs: [String], horizon: Int,
                  window: Int, title: String, levels: [Float], pool: ThreadPool) throws {
        let length = history[0].count
        let ranges = try ForecastMetrics.rollingWindows(length: length, window: max(window, season + 1), horizon: horizon, count: windows)
        var scores: [String: [String: [Double]]] = ["model": [:], "seasonal_naive": [:]]
        var lastPanels: [ForecastPlot] = []
        for r in ranges {
            let past = history.map { Array($0[..<r.lowerBound]) }
            let past64 = precise?.map { Array($0[..<r.lowerBound]) }
            let f = try loaded.forecast(request(past, precise: past64, horizon: horizon, levels: levels), pool: pool)
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
                    lastPanels.append(ForecastPlot(title: title, channel: outputs[o], history: past[i], forecast: row,
                                                   band: band(f, channel: o, levels: levels), actual: actual,
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
            printJSON(.object([
                "model": .string(model), "family": .string(loaded.family.name), "horizon": .int(horizon), "season": .int(season),
                "windows": .array(ranges.map { .object(["origin": .int($0.lowerBound), "end": .int($0.upperBound)]) }),
                "scores": .object(scores.mapValues { s in .object(Dictionary(uniqueKeysWithValues: metrics.map { ($0, .double(mean(s[$0] ?? []))) })) }),
            ]))
        } else {
            say("\(ranges.count) window(s) of \(horizon) steps (origins \(ranges.map { String($0.lowerBound) }.joined(separator: ", "))), season \(season)")
            say("forecaster".padded(to: 16) + metrics.map { $0.uppercased().padded(to: 12) }.joined())
            for who in ["model", "seasonal_naive"] {
                let label = who == "model" ? loaded.family.name : "seasonal-naive"
                say(label.padded(to: 16) + metrics.map { String(cFormat: "%.4f", mean(scores[who]?[$0] ?? [])).padded(to: 12) }.joined())
            }
        }
        if let plot { try write(try ForecastPlot.multi(lastPanels, title: "\(title): last evaluation window"), to: plot) }
    }

    func format(_ v: Float) -> String { String(cFormat: "%.6g", Double(v)) }

    /// NaN (a step no sampled path gave a value for) as JSON null.
    func jsonNumber(_ v: Float) -> JSONOutput { v.isNaN ? .null : .double(Double(v)) }

    /// The plot's band: the outermost of the quantiles asked for.
    func band(_ f: Forecast, channel o: Int, levels: [Float]) -> ForecastPlot.Band? {
        guard levels.count >= 2, o < f.quantiles.count,
              let lo = levels.indices.min(by: { levels[$0] < levels[$1] }),
              let hi = levels.indices.max(by: { levels[$0] < levels[$1] }) else { return nil }
        return ForecastPlot.Band(lower: f.quantiles[o][lo], upper: f.quantiles[o][hi],
                                 label: "\(Int((levels[lo] * 100).rounded()))–\(Int((levels[hi] * 100).rounded()))%")
    }

    func printJSON(_ object: JSONOutput) {
        writeStdout(object.text(pretty: true) + "\n")
    }

    /// Writes `text` to `path` (through a temporary file renamed into place).
    func write(_ text: String, to path: String) throws {
        guard writeFile(Array(text.utf8), to: path) else {
            throw RuntimeError.invalidArgument(name: "--plot", reason: "cannot write \(path)")
        }
    }
}
