import CTSLM
import Synchronization
import TSLMRuntime

// Sessions: a prompt made of text and series, then generation (tslm.h, "Sessions").

/// The most series values one call takes (1 GiB of floats): a larger count is a caller's bug.
let maxSeriesValues = 1 << 28

@c @implementation
public func tslm_session_default_params() -> tslm_session_params {
    tslm_session_params(context_length: 0, kv_type: TSLM_KV_AUTO)
}

@c @implementation
public func tslm_session_new(_ model: OpaquePointer!, _ params: tslm_session_params,
                             _ outSession: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    outSession?.pointee = nil
    return withStatus {
        guard let outSession else { throw CAPIError.invalid("out_session", "is NULL") }
        let m = try TSLMCAPI.model(model)
        guard params.context_length >= 0 else {
            throw CAPIError.invalid("params.context_length", "\(params.context_length) must be ≥ 0 (0 = the model's default)")
        }
        let context = params.context_length == 0 ? m.defaultContext : Int(params.context_length)
        let kv: KVPrecision
        switch params.kv_type {
        case TSLM_KV_AUTO: kv = .auto
        case TSLM_KV_F32: kv = .f32
        case TSLM_KV_F16: kv = .f16
        default: throw CAPIError.invalid("params.kv_type", "\(params.kv_type) is not TSLM_KV_AUTO (0), TSLM_KV_F32 (1) or TSLM_KV_F16 (2)")
        }
        let session = try TextSession(m.loaded, contextLength: context, kv: kv, pool: m.pool)
        let s = SessionHandle(model: m, session: session)
        let h = handle(s)
        let modelKey = key(handle(m))
        let alive: Bool = registry.withLock { r in
            // The model may have been freed by another thread meanwhile (a documented race).
            guard r.models[modelKey] != nil else { return false }
            r.sessions[key(h)] = s
            r.sessionCounts[modelKey, default: 0] += 1
            return true
        }
        guard alive else { throw CAPIError.invalid("model", "was freed while the session was created") }
        outSession.pointee = h
    }
}

@c @implementation
public func tslm_session_free(_ session: OpaquePointer!) -> Int32 {
    guard let session else { return TSLM_OK }
    return withStatus {
        let k = key(session)
        let found: Bool = registry.withLock { r in
            guard let s = r.sessions.removeValue(forKey: k) else { return false }
            let modelKey = key(handle(s.model))
            r.sessionCounts[modelKey, default: 1] -= 1
            if r.sessionCounts[modelKey] == 0 { r.sessionCounts[modelKey] = nil }
            return true
        }
        guard found else {
            throw CAPIError.invalid("session", "is not a live tslm_session (freed already, or never returned by tslm_session_new)")
        }
    }
}

@c @implementation
public func tslm_session_reset(_ session: OpaquePointer!) -> Int32 {
    withStatus {
        try withSession(session) { s in
            s.session.reset()
            s.last = nil
        }
    }
}

@c @implementation
public func tslm_session_position(_ session: OpaquePointer!) -> Int32 {
    do {
        return try withSession(session) { Int32(clamping: $0.session.tokens.count) }
    } catch {
        return fail(error)
    }
}

@c @implementation
public func tslm_session_append_text(_ session: OpaquePointer!, _ text: UnsafePointer<CChar>!, _ addSpecial: Bool) -> Int32 {
    withStatus {
        try withSession(session) { s in
            try s.session.appendText(try string(text, "text"), addSpecial: addSpecial)
        }
    }
}

/// The channel-major values of a recording, checked: n_channels × length finite-or-not floats
/// (finiteness is the session's check, which names channel and sample).
func seriesValues(_ values: UnsafePointer<Float>?, _ length: Int64, _ nChannels: Int32) throws -> [Float] {
    guard length > 0 else { throw CAPIError.invalid("length", "\(length) must be > 0") }
    guard nChannels > 0 else { throw CAPIError.invalid("n_channels", "\(nChannels) must be > 0") }
    let (total, overflow) = length.multipliedReportingOverflow(by: Int64(nChannels))
    guard !overflow, total <= Int64(maxSeriesValues) else {
        throw CAPIError.invalid("length", "\(nChannels) channels × \(length) samples is more than \(maxSeriesValues) values")
    }
    guard let values else { throw CAPIError.invalid("values", "is NULL") }
    return Array(UnsafeBufferPointer(start: values, count: Int(total)))
}

@c @implementation
public func tslm_session_append_text_n(_ session: OpaquePointer!, _ text: UnsafePointer<CChar>!, _ textLen: Int,
                                       _ addSpecial: Bool) -> Int32 {
    withStatus {
        try withSession(session) { s in
            try s.session.appendText(try string(text, length: textLen, "text"), addSpecial: addSpecial)
        }
    }
}

@c @implementation
public func tslm_session_last_tokens(_ session: OpaquePointer!, _ tokens: UnsafeMutablePointer<Int32>!, _ maxTokens: Int,
                                     _ outCount: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let ids = try withSession(session) { $0.last?.tokens ?? [] }
        try copyOut(ids, tokens, maxTokens, outCount, what: "the last generation has \(ids.count) tokens")
    }
}

@c @implementation
public func tslm_session_context_tokens(_ session: OpaquePointer!, _ tokens: UnsafeMutablePointer<Int32>!, _ maxTokens: Int,
                                        _ outCount: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let ids = try withSession(session) { $0.session.tokens }
        try copyOut(ids, tokens, maxTokens, outCount, what: "the context has \(ids.count) positions")
    }
}

@c @implementation
public func tslm_session_logits(_ session: OpaquePointer!, _ logits: UnsafeMutablePointer<Float>!, _ maxLogits: Int,
                                _ outCount: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let values = try withSession(session) { s -> [Float] in
            guard let l = s.session.logits else {
                throw CAPIError.invalid("session", "has no logits now: it ran no position since its last sampled token (or its time-series prompt runs at tslm_session_generate)")
            }
            return l
        }
        try copyOut(values, logits, maxLogits, outCount, what: "the vocabulary has \(values.count) logits")
    }
}

@c @implementation
public func tslm_session_append_series(_ session: OpaquePointer!, _ values: UnsafePointer<Float>!, _ length: Int64,
                                       _ nChannels: Int32, _ description: UnsafePointer<CChar>!,
                                       _ preset: UnsafePointer<CChar>!) -> Int32 {
    withStatus {
        try withSession(session) { s in
            let array = try seriesValues(values, length, nChannels)
            // NULL: the preset the model was trained with (`opentslm.preset`), else custom.
            var chosen: SeriesPreset?
            if let name = try optionalString(preset, "preset") {
                guard let p = SeriesPreset(rawValue: name) else {
                    throw CAPIError.invalid("preset", "'\(name)' is not one of \(SeriesPreset.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                chosen = p
            }
            let text = try optionalString(description, "description")
            try s.session.appendSeries(array, length: Int(length), channels: Int(nChannels), description: text, preset: chosen)
        }
    }
}

@c @implementation
public func tslm_session_append_recording(_ session: OpaquePointer!, _ values: UnsafePointer<Float>!, _ length: Int64,
                                          _ nChannels: Int32, _ channelNames: UnsafePointer<UnsafePointer<CChar>?>!,
                                          _ question: UnsafePointer<CChar>!) -> Int32 {
    withStatus {
        try withSession(session) { s in
            let array = try seriesValues(values, length, nChannels)
            let names = try channelNames.map { list in
                try (0..<Int(nChannels)).map { try string(list[$0], "channel_names[\($0)]") }
            }
            let pre = try optionalString(question, "question")
            let n = Int(length)
            let channels = (0..<Int(nChannels)).map { Array(array[($0 * n)..<(($0 + 1) * n)]) }
            try s.session.appendRecording(channels, names: names, pre: pre)
        }
    }
}

@c @implementation
public func tslm_sampler_default_params() -> tslm_sampler_params {
    let d = SamplerParams()
    return tslm_sampler_params(temperature: 0, top_k: 0, top_p: 1, min_p: 0, repeat_penalty: 1,
                               repeat_window: Int32(d.repetitionWindow), seed: d.seed)
}

@c @implementation
public func tslm_generate_default_params() -> tslm_generate_params {
    tslm_generate_params(max_tokens: 256, sampler: tslm_sampler_default_params(), stop: nil, n_stop: 0)
}

/// The sampler settings of a C struct, checked.
func samplerParams(_ c: tslm_sampler_params) throws -> SamplerParams {
    var p = SamplerParams()
    p.temperature = c.temperature
    p.topK = Int(c.top_k)
    p.topP = c.top_p
    p.minP = c.min_p
    p.repetitionPenalty = c.repeat_penalty
    p.repetitionWindow = Int(c.repeat_window)
    p.seed = c.seed
    do {
        try p.validate()
    } catch {
        throw CAPIError.invalid("params.sampler", "\(error)")
    }
    return p
}

@c @implementation
public func tslm_session_generate(_ session: OpaquePointer!, _ params: tslm_generate_params,
                                  _ callback: tslm_token_callback!, _ userData: UnsafeMutableRawPointer!) -> Int32 {
    withStatus {
        try withSession(session) { s in
            guard params.max_tokens >= 0 else { throw CAPIError.invalid("params.max_tokens", "\(params.max_tokens) must be ≥ 0") }
            guard params.n_stop >= 0, params.n_stop <= 1024 else {
                throw CAPIError.invalid("params.n_stop", "\(params.n_stop) must be in 0...1024")
            }
            var stops: [String] = []
            if params.n_stop > 0 {
                guard let list = params.stop else { throw CAPIError.invalid("params.stop", "is NULL but n_stop is \(params.n_stop)") }
                for i in 0..<Int(params.n_stop) {
                    let stop = try string(list[i], "params.stop[\(i)]")
                    guard !stop.isEmpty else { throw CAPIError.invalid("params.stop[\(i)]", "is empty") }
                    stops.append(stop)
                }
            }
            let sampler = try samplerParams(params.sampler)
            let onText: ((String) -> Bool)? = callback.map { cb in
                { piece in piece.withCString { cb($0, userData) } }
            }
            let result = try s.session.generate(maxTokens: Int(params.max_tokens), sampler: sampler, stop: stops, onText: onText)
            s.last = result
            if result.stopReason == .cancelled {
                throw CAPIError(status: TSLM_ERR_CANCELLED,
                                message: "generation cancelled by the callback after \(result.generatedTokens) tokens")
            }
            if result.stopReason == .aborted {
                throw CAPIError(status: TSLM_ERR_ABORTED,
                                message: "generation stopped by the abort callback after \(result.generatedTokens) tokens")
            }
        }
    }
}

@c @implementation
public func tslm_session_last_text(_ session: OpaquePointer!, _ buf: UnsafeMutablePointer<CChar>!, _ bufSize: Int,
                                   _ outLen: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let text = try withSession(session) { $0.last?.text ?? "" }
        try copyOut(text, buf, bufSize, outLen)
    }
}

@c @implementation
public func tslm_session_last_answer(_ session: OpaquePointer!, _ buf: UnsafeMutablePointer<CChar>!, _ bufSize: Int,
                                     _ outLen: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let text = try withSession(session) { $0.last?.text ?? "" }
        try copyOut(extractAnswer(text), buf, bufSize, outLen)
    }
}

@c @implementation
public func tslm_session_last_stats(_ session: OpaquePointer!, _ outStats: UnsafeMutablePointer<tslm_generation_stats>!) -> Int32 {
    withStatus {
        guard let outStats else { throw CAPIError.invalid("out_stats", "is NULL") }
        let last = try withSession(session) { $0.last }
        guard let r = last else {
            outStats.pointee = tslm_generation_stats(prompt_tokens: 0, generated_tokens: 0, prompt_seconds: 0,
                                                     generate_seconds: 0, stop_reason: TSLM_STOP_EOS)
            return
        }
        let reason: Int32 = switch r.stopReason {
        case .endOfSequence: TSLM_STOP_EOS
        case .stopString: TSLM_STOP_STRING
        case .maxTokens: TSLM_STOP_LENGTH
        case .cancelled: TSLM_STOP_CANCELLED
        case .aborted: TSLM_STOP_ABORTED
        case .contextFull: TSLM_STOP_CONTEXT
        }
        outStats.pointee = tslm_generation_stats(prompt_tokens: Int32(clamping: r.promptTokens),
                                                 generated_tokens: Int32(clamping: r.generatedTokens),
                                                 prompt_seconds: r.promptSeconds, generate_seconds: r.generateSeconds,
                                                 stop_reason: reason)
    }
}

@c @implementation
public func tslm_session_set_progress_callback(_ session: OpaquePointer!, _ callback: tslm_progress_callback!,
                                               _ userData: UnsafeMutableRawPointer!) -> Int32 {
    let user = userData
    return updateControl(session) { $0.progress = callback.map { cb in { done, total in cb(Int64(done), Int64(total), user) } } }
}

@c @implementation
public func tslm_session_set_abort_callback(_ session: OpaquePointer!, _ callback: tslm_abort_callback!,
                                            _ userData: UnsafeMutableRawPointer!) -> Int32 {
    let user = userData
    return updateControl(session) { $0.shouldAbort = callback.map { cb in { cb(user) } } }
}

/// Changes the session's `RunControl` (made on first use).
func updateControl(_ session: OpaquePointer?, _ change: (RunControl) -> Void) -> Int32 {
    withStatus {
        try withSession(session) { s in
            let control = s.session.control ?? RunControl()
            change(control)
            s.session.control = control
        }
    }
}
