/// A dictionary key that compares strings by their exact UTF-8 bytes.
///
/// Swift's `String` equality is canonical equivalence ("é" == "e\u{301}"), but JSON object keys
/// and vocabulary tokens whose bytes differ are different: a vocabulary holds "▁が" (U+304C)
/// and "▁か\u{3099}" (U+304B U+3099) as two tokens.
public struct UTF8Key: Hashable, Sendable {
    public let string: String

    public init(_ s: String) {
        var s = s
        s.makeContiguousUTF8()
        string = s
    }

    public static func == (a: UTF8Key, b: UTF8Key) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    public func hash(into h: inout Hasher) {
        if let done: Void = string.utf8.withContiguousStorageIfAvailable({ h.combine(bytes: UnsafeRawBufferPointer($0)) }) {
            return done
        }
        for b in string.utf8 { h.combine(b) }
    }
}
