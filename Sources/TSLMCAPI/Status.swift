#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CTSLM
import Synchronization
import TSLMFormat
import TSLMRuntime

// Versions, status codes, the per-thread last error and the log callback (tslm.h, first section).

/// The library version, kept in step with `tslm --version` and the converter's provenance.
let libraryVersion = "0.1.0"

/// A C string allocated once and never freed (static storage for the C caller).
struct StaticCString: @unchecked Sendable {
    let pointer: UnsafePointer<CChar>
    init(_ s: String) {
        let p = strdup(s) ?? UnsafeMutablePointer<CChar>(mutating: ("" as StaticString).utf8Start.withMemoryRebound(to: CChar.self, capacity: 1) { $0 })
        pointer = UnsafePointer(p)
    }
}

let versionCString = StaticCString(libraryVersion)
let emptyCString = StaticCString("")
let statusNames: [Int32: StaticCString] = [
    TSLM_OK: StaticCString("TSLM_OK"),
    TSLM_ERR_IO: StaticCString("TSLM_ERR_IO"),
    TSLM_ERR_FORMAT: StaticCString("TSLM_ERR_FORMAT"),
    TSLM_ERR_INVALID_ARGUMENT: StaticCString("TSLM_ERR_INVALID_ARGUMENT"),
    TSLM_ERR_UNSUPPORTED: StaticCString("TSLM_ERR_UNSUPPORTED"),
    TSLM_ERR_WRONG_KIND: StaticCString("TSLM_ERR_WRONG_KIND"),
    TSLM_ERR_CONTEXT_FULL: StaticCString("TSLM_ERR_CONTEXT_FULL"),
    TSLM_ERR_BUFFER_TOO_SMALL: StaticCString("TSLM_ERR_BUFFER_TOO_SMALL"),
    TSLM_ERR_CANCELLED: StaticCString("TSLM_ERR_CANCELLED"),
    TSLM_ERR_INTERNAL: StaticCString("TSLM_ERR_INTERNAL"),
    TSLM_ERR_NO_ANSWER: StaticCString("TSLM_ERR_NO_ANSWER"),
    TSLM_ERR_ABORTED: StaticCString("TSLM_ERR_ABORTED"),
]
let unknownStatusName = StaticCString("TSLM_ERR_UNKNOWN")

/// An error of the C layer itself: a status and the message for tslm_last_error().
struct CAPIError: Error {
    let status: Int32
    let message: String

    static func invalid(_ argument: String, _ reason: String) -> CAPIError {
        CAPIError(status: TSLM_ERR_INVALID_ARGUMENT, message: "invalid argument \(argument): \(reason)")
    }
}

/// The status a Swift error maps to.
func status(of error: Error) -> Int32 {
    switch error {
    case let e as CAPIError:
        return e.status
    case let e as TSLMError:
        switch e {
        case .io: return TSLM_ERR_IO
        case .invalidArgument: return TSLM_ERR_INVALID_ARGUMENT
        case .unknownArchitecture, .unsupportedDType: return TSLM_ERR_UNSUPPORTED
        default: return TSLM_ERR_FORMAT
        }
    case let e as RuntimeError:
        switch e {
        case .unknownArchitecture, .unsupportedDType, .noChatTemplate, .unknownFamily, .unsupportedCPU: return TSLM_ERR_UNSUPPORTED
        case .missingTensor, .badTensorShape, .badHyperparameter, .tokenizer, .missingFamily, .missingValueTokens: return TSLM_ERR_FORMAT
        case .noChoice: return TSLM_ERR_NO_ANSWER
        case .aborted, .loadAborted: return TSLM_ERR_ABORTED
        case .emptyPrompt, .tokenOutOfRange, .invalidArgument: return TSLM_ERR_INVALID_ARGUMENT
        case .promptTooLong, .contextFull: return TSLM_ERR_CONTEXT_FULL
        case .wrongKind: return TSLM_ERR_WRONG_KIND
        }
    default:
        return TSLM_ERR_INTERNAL
    }
}

// MARK: - The last error, one per thread

/// Thread-specific storage of the last error message (a malloc'd C string, freed at thread exit).
let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    _ = pthread_key_create(&key) { free($0) }
    return key
}()

/// Stores `message` as this thread's last error.
func setLastError(_ message: String) {
    let old = pthread_getspecific(lastErrorKey)
    _ = pthread_setspecific(lastErrorKey, strdup(message))
    free(old)
}

/// Records `error` as this thread's last error, logs it, and returns its status.
func fail(_ error: Error) -> Int32 {
    let code = status(of: error)
    let message = (error as? CAPIError)?.message ?? "\(error)"
    setLastError(message)
    log(TSLM_LOG_ERROR, message)
    return code
}

/// Runs `body`, turning a thrown error into its status (and the last error message).
func withStatus(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return TSLM_OK
    } catch {
        return fail(error)
    }
}

// MARK: - Logging

struct LogSink: @unchecked Sendable {
    var callback: tslm_log_callback?
    var userData: UnsafeMutableRawPointer?
}

let logSink = Locked(LogSink())

/// Sends a line to the log callback, if one is set. The library never prints.
func log(_ level: Int32, _ message: @autoclosure () -> String) {
    let sink = logSink.withLock { $0 }
    guard let callback = sink.callback else { return }
    message().withCString { callback(level, $0, sink.userData) }
}

// MARK: - C functions

@c @implementation
public func tslm_version() -> UnsafePointer<CChar>! { versionCString.pointer }

@c @implementation
public func tslm_abi_version() -> UInt32 { UInt32(TSLM_ABI_VERSION) }

@c @implementation
public func tslm_status_name(_ status: Int32) -> UnsafePointer<CChar>! {
    (statusNames[status] ?? unknownStatusName).pointer
}

@c @implementation
public func tslm_last_error() -> UnsafePointer<CChar>! {
    guard let p = pthread_getspecific(lastErrorKey) else { return emptyCString.pointer }
    return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
}

@c @implementation
public func tslm_set_log_callback(_ callback: tslm_log_callback!, _ userData: UnsafeMutableRawPointer!) {
    logSink.withLock { $0 = LogSink(callback: callback, userData: userData) }
}
