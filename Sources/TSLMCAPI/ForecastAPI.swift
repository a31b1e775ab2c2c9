import CTSLM
import TSLMRuntime

// Forecasting (tslm.h, "Forecasting"). The arguments are checked for every model, then the
// model's family forecasts (`Forecaster`, see LoadedModel.forecast); families that cannot
// forecast answer TSLM_ERR_WRONG_KIND. No forecasting family is in this build yet (ChatTime,
// Time-LLM and LSTM are on the roadmap).

@c @implementation
public func tslm_forecast_default_params() -> tslm_forecast_params {
    tslm_forecast_params(horizon: 16, quantile_levels: nil, n_quantiles: 0, n_samples: 0, seed: 0)
}

@c @implementation
public func tslm_forecast(_ model: OpaquePointer!, _ history: UnsafePointer<Float>!, _ length: Int64,
                          _ params: tslm_forecast_params, _ outPoint: UnsafeMutablePointer<Float>!,
                          _ outQuantiles: UnsafeMutablePointer<Float>!) -> Int32 {
    withStatus {
        let m = try TSLMCAPI.model(model)
        guard length > 0, length <= Int64(maxSeriesValues) else {
            throw CAPIError.invalid("length", "\(length) must be in 1...\(maxSeriesValues)")
        }
        guard let history else { throw CAPIError.invalid("history", "is NULL") }
        let values = UnsafeBufferPointer(start: history, count: Int(length))
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw CAPIError.invalid("history", "value \(values[bad]) at index \(bad) is not finite")
        }
        guard params.horizon > 0, params.horizon <= 1 << 20 else {
            throw CAPIError.invalid("params.horizon", "\(params.horizon) must be in 1...\(1 << 20)")
        }
        guard outPoint != nil else { throw CAPIError.invalid("out_point", "is NULL") }
        guard params.n_quantiles >= 0, params.n_quantiles <= 1024 else {
            throw CAPIError.invalid("params.n_quantiles", "\(params.n_quantiles) must be in 0...1024")
        }
        if params.n_quantiles > 0 {
            guard let levels = params.quantile_levels else {
                throw CAPIError.invalid("params.quantile_levels", "is NULL but n_quantiles is \(params.n_quantiles)")
            }
            for i in 0..<Int(params.n_quantiles) where !(levels[i] > 0 && levels[i] < 1) {
                throw CAPIError.invalid("params.quantile_levels[\(i)]", "\(levels[i]) is not in (0, 1)")
            }
            guard outQuantiles != nil else { throw CAPIError.invalid("out_quantiles", "is NULL but quantiles are asked for") }
        }
        guard params.n_samples >= 0 else { throw CAPIError.invalid("params.n_samples", "\(params.n_samples) must be ≥ 0") }
        let levels = params.n_quantiles > 0 ? Array(UnsafeBufferPointer(start: params.quantile_levels, count: Int(params.n_quantiles))) : []
        let request = ForecastRequest(history: [Array(values)], horizon: Int(params.horizon), quantileLevels: levels,
                                      samples: Int(params.n_samples), seed: params.seed)
        // The family forecasts (`Forecaster`); one that cannot answers TSLM_ERR_WRONG_KIND.
        let result = try m.loaded.forecast(request, pool: m.pool)
        let horizon = Int(params.horizon)
        for t in 0..<horizon { outPoint[t] = result.point[0][t] }
        if let outQuantiles, !levels.isEmpty {
            for q in 0..<levels.count { for t in 0..<horizon { outQuantiles[q * horizon + t] = result.quantiles[0][q][t] } }
        }
    }
}
