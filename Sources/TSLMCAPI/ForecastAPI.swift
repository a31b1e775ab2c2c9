import CTSLM
import TSLMRuntime

// Forecasting (tslm.h, "Forecasting"). The arguments are checked for every model, then the
// model's family forecasts (`Forecaster`, see LoadedModel.forecast); families that cannot
// forecast answer TSLM_ERR_WRONG_KIND.

@c @implementation
public func tslm_forecast_default_params() -> tslm_forecast_params {
    tslm_forecast_params(horizon: 16, quantile_levels: nil, n_quantiles: 0, n_samples: 0, seed: 0, greedy: false, context: nil)
}

@c @implementation
public func tslm_model_forecast_info(_ model: OpaquePointer!, _ outInfo: UnsafeMutablePointer<tslm_forecast_info>!) -> Int32 {
    withStatus {
        guard let outInfo else { throw CAPIError.invalid("out_info", "is NULL") }
        let m = try TSLMCAPI.model(model)
        guard let f = m.loaded.family as? any Forecaster else {
            throw RuntimeError.wrongKind(operation: "forecasting", kind: m.loaded.kind.rawValue)
        }
        let s = f.forecastShape
        outInfo.pointee = tslm_forecast_info(input_channels: Int32(clamping: s.inputs?.count ?? 0),
                                             output_channels: Int32(clamping: s.outputs?.count ?? 0),
                                             window: Int32(clamping: s.window ?? 0), max_horizon: Int32(clamping: s.horizon ?? 0))
    }
}

@c @implementation
public func tslm_forecast(_ model: OpaquePointer!, _ history: UnsafePointer<Float>!, _ length: Int64,
                          _ params: tslm_forecast_params, _ outPoint: UnsafeMutablePointer<Float>!,
                          _ outQuantiles: UnsafeMutablePointer<Float>!) -> Int32 {
    withStatus { try forecast(model, history, length, 1, params, outPoint, outQuantiles, singleOutput: true) }
}

@c @implementation
public func tslm_forecast_channels(_ model: OpaquePointer!, _ history: UnsafePointer<Float>!, _ length: Int64,
                                   _ nChannels: Int32, _ params: tslm_forecast_params,
                                   _ outPoint: UnsafeMutablePointer<Float>!, _ outQuantiles: UnsafeMutablePointer<Float>!) -> Int32 {
    withStatus { try forecast(model, history, length, nChannels, params, outPoint, outQuantiles, singleOutput: false) }
}

/// Both forecast calls: the arguments checked in order, then the family forecasts. With
/// `singleOutput` (tslm_forecast) a model with several output channels is refused, since the
/// caller's buffer holds one.
func forecast(_ model: OpaquePointer?, _ history: UnsafePointer<Float>?, _ length: Int64, _ nChannels: Int32,
              _ params: tslm_forecast_params, _ outPoint: UnsafeMutablePointer<Float>?,
              _ outQuantiles: UnsafeMutablePointer<Float>?, singleOutput: Bool) throws {
    let m = try TSLMCAPI.model(model)
    guard nChannels > 0, nChannels <= 4096 else { throw CAPIError.invalid("n_channels", "\(nChannels) must be in 1...4096") }
    let (total, overflow) = length.multipliedReportingOverflow(by: Int64(nChannels))
    guard length > 0, !overflow, total <= Int64(maxSeriesValues) else {
        throw CAPIError.invalid("length", "\(length) must be in 1...\(maxSeriesValues / Int(nChannels))")
    }
    guard let history else { throw CAPIError.invalid("history", "is NULL") }
    let values = UnsafeBufferPointer(start: history, count: Int(total))
    let missingAllowed = (m.loaded.family as? any Forecaster)?.acceptsMissingValues ?? false
    if let bad = values.firstIndex(where: { missingAllowed ? $0.isInfinite : !$0.isFinite }) {
        throw CAPIError.invalid("history", "value \(values[bad]) at channel \(bad / Int(length)), step \(bad % Int(length)) is not finite")
    }
    guard params.horizon > 0, params.horizon <= 1 << 20 else {
        throw CAPIError.invalid("params.horizon", "\(params.horizon) must be in 1...\(1 << 20)")
    }
    guard let outPoint else { throw CAPIError.invalid("out_point", "is NULL") }
    guard params.n_quantiles >= 0, params.n_quantiles <= 1024 else {
        throw CAPIError.invalid("params.n_quantiles", "\(params.n_quantiles) must be in 0...1024")
    }
    var levels: [Float] = []
    if params.n_quantiles > 0 {
        guard let p = params.quantile_levels else {
            throw CAPIError.invalid("params.quantile_levels", "is NULL but n_quantiles is \(params.n_quantiles)")
        }
        levels = Array(UnsafeBufferPointer(start: p, count: Int(params.n_quantiles)))
        for (i, q) in levels.enumerated() where !(q > 0 && q < 1) {
            throw CAPIError.invalid("params.quantile_levels[\(i)]", "\(q) is not in (0, 1)")
        }
        guard outQuantiles != nil else { throw CAPIError.invalid("out_quantiles", "is NULL but quantiles are asked for") }
    }
    guard params.n_samples >= 0 else { throw CAPIError.invalid("params.n_samples", "\(params.n_samples) must be ≥ 0") }
    if singleOutput, let f = m.loaded.family as? any Forecaster, let outputs = f.forecastShape.outputs, outputs.count != 1 {
        throw CAPIError.invalid("model", "forecasts \(outputs.count) channels (\(outputs.joined(separator: ", "))): use tslm_forecast_channels")
    }
    let n = Int(length)
    let channels = (0..<Int(nChannels)).map { Array(values[($0 * n)..<(($0 + 1) * n)]) }
    let context = try params.context.map { try string($0, "params.context") }
    let request = ForecastRequest(history: channels, horizon: Int(params.horizon), quantileLevels: levels,
                                  samples: Int(params.n_samples), seed: params.seed, greedy: params.greedy, context: context)
    let result = try m.loaded.forecast(request, pool: m.pool)
    let horizon = Int(params.horizon)
    for (o, row) in result.point.enumerated() {
        for t in 0..<horizon { outPoint[o * horizon + t] = row[t] }
    }
    if let outQuantiles, !levels.isEmpty {
        for (o, perChannel) in result.quantiles.enumerated() {
            for (q, row) in perChannel.enumerated() {
                for t in 0..<horizon { outQuantiles[(o * levels.count + q) * horizon + t] = row[t] }
            }
        }
    }
}

// Analysis (tslm.h, "Analysis"): ChatTime's multiple-choice answers about a series.

@c @implementation
public func tslm_analyze_default_params() -> tslm_analyze_params {
    tslm_analyze_params(n_samples: 0, seed: 0, greedy: false)
}

@c @implementation
public func tslm_model_analyze(_ model: OpaquePointer!, _ values: UnsafePointer<Float>!, _ length: Int64,
                               _ question: UnsafePointer<CChar>!, _ params: tslm_analyze_params,
                               _ buf: UnsafeMutablePointer<CChar>!, _ bufSize: Int, _ outLen: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let m = try TSLMCAPI.model(model)
        guard length > 0, length <= Int64(maxSeriesValues) else {
            throw CAPIError.invalid("length", "\(length) must be in 1...\(maxSeriesValues)")
        }
        guard let values else { throw CAPIError.invalid("values", "is NULL") }
        let series = UnsafeBufferPointer(start: values, count: Int(length)).map(Double.init)
        let text = try string(question, "question")
        guard params.n_samples >= 0, params.n_samples <= 1024 else {
            throw CAPIError.invalid("params.n_samples", "\(params.n_samples) must be in 0...1024")
        }
        guard let chatTime = m.loaded.family as? ChatTimeFamily else {
            throw RuntimeError.wrongKind(operation: "analysis (a multiple-choice question about a series)", kind: m.loaded.kind.rawValue)
        }
        let sampling = chatTime.sampling(samples: Int(params.n_samples), greedy: params.greedy)
        let answer = try chatTime.analyze(series: series, question: text, sampling: sampling, seed: params.seed, pool: m.pool)
        try copyOut(answer.answer, buf, bufSize, outLen)
    }
}
