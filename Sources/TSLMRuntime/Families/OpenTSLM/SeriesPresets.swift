import TSLMFormat

/// A task's normalization and series description (OpenTSLM's curriculum tasks), or `custom`.
public enum SeriesPreset: String, CaseIterable, Sendable {
    case custom, har, sleep, ecg, tsqa, m4
}

/// One channel made ready for an OpenTSLM prompt: its normalized values and its description.
public struct PreparedSeries: Sendable, Equatable {
    /// The values the encoder sees (normalized as the preset says).
    public var values: [Float]
    /// The description text, placeholders filled in.
    public var description: String
    /// The raw mean and the std the description shows.
    public var mean: Double
    public var std: Double
}

extension SeriesPreset {
    /// The description template a preset uses when the caller gives none. Placeholders:
    /// `{mean}`, `{std}` (4 decimals), `{channel}` (0-based index), `{axis}` (x, y, z for
    /// channels 0–2, else the index), `{lead}` (the 12 ECG lead names I … V6, else the index).
    public var defaultDescription: String {
        switch self {
        case .custom, .m4: "This is the time series, it has mean {mean} and std {std}:"
        case .tsqa: "This is the time series, it has mean {mean} and std {std}."
        case .har: "The following is the accelerometer data on the {axis}-axis, it has mean {mean} and std {std}:"
        case .sleep: "The following is the EEG time series, it has mean {mean} and std {std}:"
        case .ecg: "This is ECG Lead {lead}, it has mean {mean} and std {std}:"
        }
    }

    /// How the preset's task normalizes a channel (OpenTSLM's curriculum datasets):
    ///
    /// | preset | std | values | std shown |
    /// |---|---|---|---|
    /// | custom | unbiased | unchanged (the caller normalized them) | raw |
    /// | tsqa | unbiased | (x − mean) / (std + 1e-8) | raw |
    /// | m4 | unbiased | (x − mean) / std, or x − mean when std = 0 | raw |
    /// | har | unbiased, floored at 1e-6 | (x − mean) / std | floored |
    /// | sleep | population, floored at 1e-6 | (x − mean) / std | floored |
    /// | ecg | population | (x − mean) / std, or x − mean when std ≤ 1e-6 | raw |
    ///
    /// Statistics are computed in float64 from the float32 samples and `{mean}`/`{std}` are
    /// formatted with 4 decimals, as upstream. (Upstream's HAR, TSQA and M4 datasets compute them
    /// in float32 with PyTorch, so in rare cases their 4th decimal rounds the other way.)
    public func prepare(_ x: ArraySlice<Float>, channel: Int, template: String?) -> PreparedSeries {
        let n = Double(x.count)
        var sum = 0.0
        for v in x { sum += Double(v) }
        let mean = x.isEmpty ? 0 : sum / n
        var ss = 0.0
        for v in x { let d = Double(v) - mean; ss += d * d }
        let population = x.isEmpty ? 0 : (ss / n).squareRoot()
        let unbiased = x.count > 1 ? (ss / (n - 1)).squareRoot() : .nan  // torch.std of one value is NaN
        let shownMean = mean
        var std: Double
        var values: [Float]
        switch self {
        case .custom:
            std = unbiased
            values = Array(x)
        case .tsqa:
            std = unbiased
            let div = (std.isNaN ? 0 : std) + 1e-8
            values = x.map { Float((Double($0) - mean) / div) }
        case .m4:
            std = unbiased
            let s = std.isNaN ? 0 : std
            values = x.map { s > 0 ? Float((Double($0) - mean) / s) : Float(Double($0) - mean) }
        case .har:
            std = max(unbiased.isNaN ? 0 : unbiased, 1e-6)
            values = x.map { Float((Double($0) - mean) / std) }
        case .sleep:
            std = max(population, 1e-6)
            values = x.map { Float((Double($0) - mean) / std) }
        case .ecg:
            std = population
            values = x.map { std > 1e-6 ? Float((Double($0) - mean) / std) : Float(Double($0) - mean) }
        }
        let text = Self.fill(template ?? defaultDescription, channel: channel, mean: shownMean, std: std)
        return PreparedSeries(values: values, description: text, mean: shownMean, std: std)
    }

    static let ecgLeads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]

    /// Fills a description template's placeholders (see `defaultDescription`); `{mean:.4f}` and
    /// `{std:.4f}` (Python's spelling) are accepted for `{mean}` and `{std}`.
    public static func fill(_ template: String, channel: Int, mean: Double, std: Double) -> String {
        func fixed4(_ v: Double) -> String { v.isNaN ? "nan" : formatFixed(v, decimals: 4) }
        return fillChannel(template, channel: channel, name: nil)
            .replacing("{mean:.4f}", with: fixed4(mean))
            .replacing("{std:.4f}", with: fixed4(std))
            .replacing("{mean}", with: fixed4(mean))
            .replacing("{std}", with: fixed4(std))
    }

    /// Fills the placeholders that depend on the channel only, leaving `{mean}` and `{std}`:
    /// `{channel}`, `{lead}`, `{axis}`, and, given a channel name, `{name}` and, for names like
    /// "accelerometer_x", `{sensor}` (before the first "_") and `{axis}` (after it).
    public static func fillChannel(_ template: String, channel: Int, name: String?) -> String {
        var t = template
        if let name {
            t = t.replacing("{name}", with: name)
            if let cut = name.firstIndex(of: "_") {
                t = t.replacing("{sensor}", with: String(name[..<cut]))
                    .replacing("{axis}", with: String(name[name.index(after: cut)...]))
            }
        }
        let axis = channel >= 0 && channel < 3 ? ["x", "y", "z"][channel] : String(channel)
        let lead = channel >= 0 && channel < ecgLeads.count ? ecgLeads[channel] : String(channel)
        return t.replacing("{channel}", with: String(channel))
            .replacing("{axis}", with: axis)
            .replacing("{lead}", with: lead)
    }
}

/// `v` with `decimals` digits after the point, as C's (and Python's) `%.Nf` rounds it: the exact
/// binary value rounded half to even.
func formatFixed(_ v: Double, decimals: Int) -> String {
    String(cFormat: "%.\(max(0, min(decimals, 40)))f", v)
}
