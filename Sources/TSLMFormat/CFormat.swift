#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension String {
    /// Text formatted by C's `vsnprintf`: `String(cFormat: "%.3f", x)` prints what Foundation's
    /// `String(format:)` prints for the same conversions (`%d`/`%ld`, `%f`, `%g`, `%e`, `%s`
    /// with a C string, widths, flags), without Foundation. Pass a Swift `Int` with `%ld` (`%d`
    /// reads only its low 32 bits, as Foundation's did) and a `Double` with `%f`/`%g`/`%e` (a
    /// `Float` must be converted to `Double`). `%@` is not supported.
    public init(cFormat format: String, _ arguments: any CVarArg...) {
        self.init(cFormat: format, arguments: arguments)
    }

    /// `init(cFormat:_:)` with the arguments as an array.
    public init(cFormat format: String, arguments: [any CVarArg]) {
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            let n = withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) }
            guard n >= 0 else {
                self = format
                return
            }
            if Int(n) < buffer.count {
                self = String(decoding: buffer.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                return
            }
            buffer = [CChar](repeating: 0, count: Int(n) + 1)
        }
    }
}
