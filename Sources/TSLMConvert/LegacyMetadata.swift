import TSLMFormat

/// Files written before model families (tslm 0.1) describe OpenTSLM with `timeseries.*` keys
/// (`timeseries.model` = `opentslm_sp` / `opentslm_flamingo`, `timeseries.patch_size`, …) and
/// have no `general.family`. The runtime refuses them with a message to re-convert; converting
/// such a file (`tslm convert old.tslm -o new.tslm`, `tslm quantize`) renames the keys
/// (formats/tslm.md, version history).
public enum LegacyMetadata {
    /// The family a legacy file's `timeseries.model` stands for, if it has one.
    public static func family(_ m: Metadata) -> String? {
        switch m.string("timeseries.model") {
        case "opentslm_sp": ModelFamilyName.openTSLMSoftPrompt.rawValue
        case "opentslm_flamingo": ModelFamilyName.openTSLMFlamingo.rawValue
        case let other?: other
        case nil: nil
        }
    }

    /// Renames legacy keys in place: `timeseries.model` becomes `general.family`, every other
    /// `timeseries.K` becomes `opentslm.K`. Metadata without legacy keys is left as it is.
    public static func migrate(_ m: inout Metadata) {
        let legacy = m.entries.filter { $0.key.hasPrefix(MetadataKeys.legacyTimeSeriesPrefix) }
        guard !legacy.isEmpty else { return }
        if m[MetadataKeys.family] == nil, let family = family(m) { m[MetadataKeys.family] = .string(family) }
        for (key, value) in legacy {
            m[key] = nil
            guard key != "timeseries.model" else { continue }
            let renamed = MetadataKeys.OpenTSLM.prefix + key.dropFirst(MetadataKeys.legacyTimeSeriesPrefix.count)
            if m[renamed] == nil { m[renamed] = value }
        }
    }
}
