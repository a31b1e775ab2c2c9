/// GPT-2's reversible byte ↔ Unicode mapping used by byte-level BPE vocabularies.
///
/// The printable bytes `!`…`~`, `¡`…`¬` and `®`…`ÿ` map to the scalar with the same value; the
/// other 68 bytes (controls, space, DEL, NBSP, soft hyphen, …) map, in increasing byte order, to
/// U+0100, U+0101, … . So the space byte 0x20 becomes `Ġ` (U+0120) and `\n` becomes `Ċ` (U+010A).
enum ByteLevel {
    /// The scalar that stands for each byte.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next) ?? "\0"
                next += 1
            }
        }
        return table
    }()

    /// The byte each mapped scalar stands for, indexed by scalar value (0..<324); -1 elsewhere.
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in byteToScalar.enumerated() where Int(s.value) < table.count {
            table[Int(s.value)] = Int16(b)
        }
        return table
    }()

    /// The byte-level string for raw bytes.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var view = String.UnicodeScalarView()
        for b in bytes { view.append(byteToScalar[Int(b)]) }
        return String(view)
    }

    /// The raw bytes a byte-level string stands for, or nil if a scalar is not in the mapping.
    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            let v = Int(s.value)
            guard v < scalarToByte.count, scalarToByte[v] >= 0 else { return nil }
            out.append(UInt8(scalarToByte[v]))
        }
        return out
    }
}
