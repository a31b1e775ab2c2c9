#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CTSLM
import Synchronization
import TSLMFormat
import TSLMKernels
import TSLMRuntime

// Opaque handles. A handle is the address of a Swift object that the registry keeps alive until
// its *_free; every call looks the address up first, so NULL, freed and foreign handles are
// refused with TSLM_ERR_INVALID_ARGUMENT instead of being dereferenced.

/// A loaded model as C sees it.
final class ModelHandle: @unchecked Sendable {
    let loaded: LoadedModel
    /// Shared by the model's sessions: a job submitted while another runs runs inline, so
    /// concurrent sessions are safe (and get the same numbers: rows never split differently).
    let pool: ThreadPool
    /// Context length of new sessions when they ask for 0.
    let defaultContext: Int
    /// `general.architecture` as a C string the model owns (tslm_model_architecture).
    let architecture: OwnedCString

    init(loaded: LoadedModel, pool: ThreadPool, defaultContext: Int) {
        self.loaded = loaded
        self.pool = pool
        self.defaultContext = defaultContext
        architecture = OwnedCString(loaded.file.metadata.string(MetadataKeys.architecture) ?? "")
    }
}

/// A NUL-terminated copy of a string, allocated by Swift and freed with its owner (never a
/// fallback to static storage that a free would corrupt).
final class OwnedCString: @unchecked Sendable {
    let pointer: UnsafePointer<CChar>
    private let storage: UnsafeMutablePointer<CChar>

    init(_ s: String) {
        let bytes = Array(s.utf8CString)
        storage = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        storage.initialize(from: bytes, count: bytes.count)
        pointer = UnsafePointer(storage)
    }

    deinit { storage.deallocate() }
}

/// A session as C sees it.
final class SessionHandle: @unchecked Sendable {
    let model: ModelHandle
    let session: TextSession
    /// The last generation (text, tokens, statistics); nil before the first.
    var last: GenerationResult?
    /// Set while a call runs on this session, to catch two threads using it at once.
    let busy = Atomic<Bool>(false)

    init(model: ModelHandle, session: TextSession) {
        self.model = model
        self.session = session
    }
}

struct Registry: ~Copyable {
    var models: [UInt: ModelHandle] = [:]
    var sessions: [UInt: SessionHandle] = [:]
    /// Live sessions per model.
    var sessionCounts: [UInt: Int] = [:]
}

let registry = Locked(Registry())

/// The handle of an object: its address.
func handle(_ object: AnyObject) -> OpaquePointer { OpaquePointer(Unmanaged.passUnretained(object).toOpaque()) }

/// The registry key of a handle.
func key(_ handle: OpaquePointer) -> UInt { UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle))) }

/// The live model behind `handle`.
func model(_ handle: OpaquePointer?) throws -> ModelHandle {
    guard let handle else { throw CAPIError.invalid("model", "is NULL") }
    guard let m = registry.withLock({ $0.models[key(handle)] }) else {
        throw CAPIError.invalid("model", "is not a live tslm_model (freed already, or never returned by tslm_model_load)")
    }
    return m
}

/// Runs `body` with the live session behind `handle`, refusing a session busy on another thread.
func withSession<R>(_ handle: OpaquePointer?, _ body: (SessionHandle) throws -> R) throws -> R {
    guard let handle else { throw CAPIError.invalid("session", "is NULL") }
    guard let s = registry.withLock({ $0.sessions[key(handle)] }) else {
        throw CAPIError.invalid("session", "is not a live tslm_session (freed already, or never returned by tslm_session_new)")
    }
    guard s.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
        throw CAPIError.invalid("session", "is in use by another thread (a session is used by one thread at a time)")
    }
    defer { s.busy.store(false, ordering: .releasing) }
    return try body(s)
}

// MARK: - Arguments from C

/// A NUL-terminated UTF-8 argument as a Swift string.
func string(_ p: UnsafePointer<CChar>?, _ name: String) throws -> String {
    guard let p else { throw CAPIError.invalid(name, "is NULL") }
    guard let s = String(validatingCString: p) else { throw CAPIError.invalid(name, "is not valid UTF-8") }
    return s
}

/// A UTF-8 argument of `length` bytes (NUL bytes allowed) as a Swift string.
func string(_ p: UnsafePointer<CChar>?, length: Int, _ name: String) throws -> String {
    guard length >= 0, length <= 1 << 30 else { throw CAPIError.invalid("\(name)_len", "\(length) is out of range") }
    guard length > 0 else { return "" }
    guard let p else { throw CAPIError.invalid(name, "is NULL but \(name)_len is \(length)") }
    let bytes = UnsafeRawBufferPointer(start: p, count: length).bindMemory(to: UInt8.self)
    guard let s = String(validating: bytes, as: UTF8.self) else { throw CAPIError.invalid(name, "is not valid UTF-8") }
    return s
}

/// An optional string argument (NULL = nil).
func optionalString(_ p: UnsafePointer<CChar>?, _ name: String) throws -> String? {
    guard let p else { return nil }
    return try string(p, name)
}

/// Writes `text` and its NUL into `buf` under the (buf, buf_size, out_len) convention:
/// *out_len = bytes needed without the NUL; too small a buffer writes nothing.
func copyOut(_ text: String, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int, _ outLen: UnsafeMutablePointer<Int>?) throws {
    let bytes = Array(text.utf8)
    outLen?.pointee = bytes.count
    guard size > bytes.count else {
        throw CAPIError(status: TSLM_ERR_BUFFER_TOO_SMALL,
                        message: "buffer too small: \(bytes.count + 1) bytes needed (with the NUL), \(size) given")
    }
    guard let buf else { throw CAPIError.invalid("buf", "is NULL but buf_size is \(size)") }
    bytes.withUnsafeBufferPointer { src in
        if let base = src.baseAddress, src.count > 0 {
            UnsafeMutableRawPointer(buf).copyMemory(from: base, byteCount: src.count)
        }
    }
    buf[bytes.count] = 0
}
