#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind a pthread mutex: the C API's registry of handles and its log sink.
///
/// Not `Synchronization.Mutex`: on Linux a contended Mutex is handed over inside the kernel
/// (futex PI operations in the standard library's uninstrumented code), which ThreadSanitizer
/// cannot see, so `make tsan`'s load/free churn reported the registry's accesses (all under the
/// lock) as races. ThreadSanitizer intercepts pthread mutexes, so its verdict stays meaningful.
final class Locked<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: consuming Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
