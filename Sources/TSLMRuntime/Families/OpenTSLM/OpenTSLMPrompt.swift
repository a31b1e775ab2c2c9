import TSLMFormat

extension TextSession {
    /// Appends a recording in the prompt an OpenTSLM model was trained with — the one place that
    /// recipe lives (the CLI's `run` and `eval`, the C API's `tslm_session_append_recording` and
    /// so the C and C++ examples use it): the text before the series (with BOS), one series per
    /// channel described by the series template, the text after the series (with BOS).
    ///
    /// - Parameters:
    ///   - channels: [channel][sample], each channel one series (channels may differ in length).
    ///   - names: the channels' names (e.g. CSV column names; `{name}`, `{sensor}`, `{axis}`), or
    ///     nil for the names the model was trained with, when they are stored and as many.
    ///   - prompt: the prompt to use; nil: the model's (`opentslm.prompt.*`). Its parts may be
    ///     overridden one by one with `pre`, `template` and `post`.
    ///   - preset: the normalization; nil: the model's preset, else custom.
    public func appendRecording(_ channels: [[Float]], names: [String?]? = nil, prompt: TrainedPrompt? = nil,
                                pre: String? = nil, template: String? = nil, post: String? = nil,
                                preset: SeriesPreset? = nil) throws {
        guard !channels.isEmpty else { throw RuntimeError.invalidArgument(name: "recording", reason: "has no channels") }
        if let names, names.count != channels.count {
            throw RuntimeError.invalidArgument(name: "channel names", reason: "\(names.count) names for \(channels.count) channels")
        }
        for (c, values) in channels.enumerated() {
            guard !values.isEmpty else { throw RuntimeError.invalidArgument(name: "recording", reason: "channel \(c) is empty") }
            if let t = values.firstIndex(where: { !$0.isFinite }) {
                throw RuntimeError.invalidArgument(name: "recording", reason: "value \(values[t]) at channel \(c), sample \(t) is not finite")
            }
        }
        guard let family = loaded.family as? OpenTSLMFamily else {
            throw RuntimeError.wrongKind(operation: "appending a recording", kind: loaded.kind.rawValue)
        }
        let trained = prompt ?? family.trainedPrompt
        let channelNames: [String?]? = names ?? trained?.channels.flatMap { $0.count == channels.count ? $0 : nil }
        let before = pre ?? trained?.pre ?? ""
        let after = post ?? trained?.post ?? ""
        let description = template ?? trained?.series
        let snapshot = checkpoint()
        do {
            if !before.isEmpty { try appendText(before, addSpecial: true) }
            for (c, values) in channels.enumerated() {
                try appendSeries(values, length: values.count, channels: 1, description: description,
                                 preset: preset, names: channelNames.map { [$0[c]] })
            }
            if !after.isEmpty { try appendText(after, addSpecial: true) }
        } catch {
            restore(snapshot)
            throw error
        }
    }
}

/// The answer in a model's text: what follows the last "Answer: ", without a final period,
/// trimmed; the whole text trimmed when there is no "Answer: ".
public func extractAnswer(_ text: String) -> String {
    var answer = Substring(text)
    if let r = text.ranges(of: "Answer: ").last { answer = text[r.upperBound...] }
    var trimmed = trimmingWhitespace(answer)
    if trimmed.hasSuffix(".") { trimmed.removeLast() }
    return String(trimmingWhitespace(trimmed))
}

/// `s` without leading and trailing white space and line breaks (Foundation's
/// `.whitespacesAndNewlines`: tab, U+000A–U+000D, U+0085 and the Unicode separators).
func trimmingWhitespace<S: StringProtocol>(_ s: S) -> Substring {
    func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x85: return true
        default:
            switch c.properties.generalCategory {
            case .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
            default: return false
            }
        }
    }
    let scalars = Substring(s).unicodeScalars
    guard let first = scalars.firstIndex(where: { !isSpace($0) }), let last = scalars.lastIndex(where: { !isSpace($0) }) else {
        return ""
    }
    return Substring(scalars[first...last])
}
