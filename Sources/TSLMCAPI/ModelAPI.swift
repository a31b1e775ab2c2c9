import CTSLM
import TSLMFormat
import TSLMKernels
import Synchronization
import TSLMRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Models: load, free, queries (tslm.h, "Models").

@c @implementation
public func tslm_model_default_params() -> tslm_model_params {
    tslm_model_params(n_threads: 0, use_mmap: true, verify_checksums: false, context_length: 0)
}

@c @implementation
public func tslm_model_load(_ path: UnsafePointer<CChar>!, _ params: tslm_model_params,
                            _ outModel: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    loadModel(path, params, outModel, progress: nil)
}

@c @implementation
public func tslm_model_load_with_progress(_ path: UnsafePointer<CChar>!, _ params: tslm_model_params,
                                          _ progress: tslm_load_progress_callback!, _ userData: UnsafeMutableRawPointer!,
                                          _ outModel: UnsafeMutablePointer<OpaquePointer?>!) -> Int32 {
    loadModel(path, params, outModel, progress: progress.map { callback in { done, total in callback(Int64(done), Int64(total), userData) } })
}

/// Both loads. `progress(done, total)`: the model's tensors read while it is built, then, with
/// `verify_checksums`, each tensor checked; false stops the load (TSLM_ERR_ABORTED).
func loadModel(_ path: UnsafePointer<CChar>?, _ params: tslm_model_params, _ outModel: UnsafeMutablePointer<OpaquePointer?>?,
               progress: ((Int, Int) -> Bool)?) -> Int32 {
    outModel?.pointee = nil
    return withStatus {
        guard let outModel else { throw CAPIError.invalid("out_model", "is NULL") }
        let path = try string(path, "path")
        guard params.n_threads >= 0, params.n_threads <= 1024 else {
            throw CAPIError.invalid("params.n_threads", "\(params.n_threads) must be in 0...1024 (0 = all cores)")
        }
        guard params.context_length >= 0 else {
            throw CAPIError.invalid("params.context_length", "\(params.context_length) must be ≥ 0 (0 = the model's, at most 4096)")
        }
        let loaded: LoadedModel
        if let progress {
            let file = try TSLMFile(path: path, mmap: params.use_mmap)
            let steps = file.tensors.count * (params.verify_checksums ? 2 : 1)
            loaded = try LoadedModel(file: file) { done, _ in progress(done, steps) }
            if params.verify_checksums {
                try file.verify { done, total in
                    guard progress(total + done, steps) else {
                        throw RuntimeError.loadAborted(file: path, done: total + done, total: steps)
                    }
                }
            }
        } else {
            loaded = try LoadedModel(path: path, mmap: params.use_mmap)
            if params.verify_checksums { try loaded.file.verify() }
        }
        // Families with a text backbone have a context; others (a recurrent forecaster) none.
        let modelContext = loaded.family.language?.backbone.config.contextLength
        let context = params.context_length == 0 ? min(modelContext ?? 0, 4096) : Int(params.context_length)
        if let modelContext, context > modelContext {
            throw CAPIError.invalid("params.context_length", "\(context) exceeds the model's context length \(modelContext)")
        }
        let threads = params.n_threads == 0 ? availableCores() : Int(params.n_threads)
        let m = ModelHandle(loaded: loaded, pool: ThreadPool(threads: threads), defaultContext: context)
        let h = handle(m)
        registry.withLock { $0.models[key(h)] = m }
        outModel.pointee = h
        log(TSLM_LOG_INFO, "loaded \(path): \(loaded.family.name) (\(loaded.file.metadata.string(MetadataKeys.architecture) ?? "?")), \(loaded.file.tensors.count) tensors, \(threads) threads")
    }
}

/// Cores this process may run on.
func availableCores() -> Int {
    let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
    return n > 0 ? Int(n) : 1
}

@c @implementation
public func tslm_model_free(_ model: OpaquePointer!) -> Int32 {
    guard let model else { return TSLM_OK }
    return withStatus {
        let k = key(model)
        // The model is released (unmapped, its workers joined) after the lock is let go.
        let removed: Result<ModelHandle, CAPIError> = registry.withLock { r in
            guard let m = r.models[k] else {
                return .failure(.invalid("model", "is not a live tslm_model (freed already, or never returned by tslm_model_load)"))
            }
            if let n = r.sessionCounts[k], n > 0 {
                return .failure(.invalid("model", "has \(n) live session(s): free them first"))
            }
            r.models[k] = nil
            return .success(m)
        }
        _ = try removed.get()
    }
}

@c @implementation
public func tslm_model_kind(_ model: OpaquePointer!) -> Int32 {
    do {
        switch try TSLMCAPI.model(model).loaded.kind {
        case .text: return TSLM_KIND_TEXT
        case .classifier: return TSLM_KIND_CLASSIFIER
        case .forecaster: return TSLM_KIND_FORECASTER
        }
    } catch {
        return fail(error)
    }
}

@c @implementation
public func tslm_model_architecture(_ model: OpaquePointer!) -> UnsafePointer<CChar>! {
    do {
        return try TSLMCAPI.model(model).architecture.pointer
    } catch {
        _ = fail(error)
        return nil
    }
}

@c @implementation
public func tslm_model_context_length(_ model: OpaquePointer!) -> Int32 {
    do {
        return Int32(clamping: try TSLMCAPI.model(model).loaded.backbone.config.contextLength)
    } catch {
        return fail(error)
    }
}

@c @implementation
public func tslm_model_vocab_size(_ model: OpaquePointer!) -> Int32 {
    do {
        return Int32(clamping: try TSLMCAPI.model(model).loaded.backbone.config.vocabularySize)
    } catch {
        return fail(error)
    }
}

@c @implementation
public func tslm_model_meta(_ model: OpaquePointer!, _ key: UnsafePointer<CChar>!, _ buf: UnsafeMutablePointer<CChar>!,
                            _ bufSize: Int, _ outLen: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let m = try TSLMCAPI.model(model)
        let key = try string(key, "key")
        guard let value = m.loaded.file.metadata[key] else {
            throw CAPIError.invalid("key", "the model has no metadata key '\(key)'")
        }
        try copyOut(render(value), buf, bufSize, outLen)
    }
}

/// A metadata value as text: strings as they are, numbers in decimal, booleans as true/false,
/// arrays as "[type] x count".
func render(_ value: MetadataValue) -> String {
    switch value {
    case let .string(s): s
    case let .bool(b): b ? "true" : "false"
    case let .f32(v): "\(v)"
    case let .f64(v): "\(v)"
    case let .array(a): "[\(a.elementType)] x \(a.count)"
    default: value.intValue.map(String.init) ?? value.summary
    }
}
