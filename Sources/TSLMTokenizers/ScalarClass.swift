/// The Unicode classes the pre-tokenizer patterns test, as one bit set per scalar.
///
/// The patterns follow Oniguruma / Rust-regex meanings: `\p{L}` letters (Lu Ll Lt Lm Lo),
/// `\p{N}` numbers (Nd Nl No), `\p{M}` marks, `\p{P}` punctuation, `\p{S}` symbols, and `\s`
/// the Unicode White_Space property.
struct ScalarClass: OptionSet, Sendable {
    let rawValue: UInt8
    static let letter = ScalarClass(rawValue: 1)
    static let number = ScalarClass(rawValue: 2)
    static let mark = ScalarClass(rawValue: 4)
    static let punctuation = ScalarClass(rawValue: 8)
    static let symbol = ScalarClass(rawValue: 16)
    static let whitespace = ScalarClass(rawValue: 32)
    /// `\r` or `\n`.
    static let newline = ScalarClass(rawValue: 64)

    /// Classes of the 128 ASCII scalars, computed once.
    private static let ascii: [ScalarClass] = (0..<128).map { compute(Unicode.Scalar(UInt8($0))) }

    static func of(_ s: Unicode.Scalar) -> ScalarClass {
        s.value < 128 ? ascii[Int(s.value)] : compute(s)
    }

    private static func compute(_ s: Unicode.Scalar) -> ScalarClass {
        var c: ScalarClass = []
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            c.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            c.insert(.number)
        case .nonspacingMark, .spacingMark, .enclosingMark:
            c.insert(.mark)
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            c.insert(.punctuation)
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            c.insert(.symbol)
        default:
            break
        }
        if s.properties.isWhitespace { c.insert(.whitespace) }
        if s == "\n" || s == "\r" { c.insert(.newline) }
        return c
    }
}

/// Text as Unicode scalars with their classes, the input every pre-tokenizer pattern scans.
struct ScannedText {
    var scalars: [Unicode.Scalar]
    var classes: [ScalarClass]

    init(_ scalars: [Unicode.Scalar]) {
        self.scalars = scalars
        self.classes = scalars.map(ScalarClass.of)
    }
}
