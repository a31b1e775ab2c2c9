/// The regular expressions that pre-tokenizers split text with.
///
/// The patterns that real tokenizers use are implemented as hand-written scanners over Unicode
/// scalars and their general categories (see `ScalarClass`), with the exact leftmost-first,
/// backtracking semantics of the Oniguruma engine Hugging Face `tokenizers` uses — including
/// the `\s+(?!\S)` look-ahead, which leaves the last whitespace scalar of a run for the next
/// word. Any other pattern from a `tokenizer.json` falls back to Swift `Regex`, matched on
/// Unicode scalars.
enum SplitPattern {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    case gpt2
    /// Llama-3 (`maxDigits` 3) and Qwen2 (`maxDigits` 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|`
    /// ` ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    case llama3(maxDigits: Int)
    /// DeepSeek-V3's word pattern:
    /// `[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|`
    /// ` ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    case deepseekV3Words
    /// `\p{N}{1,max}` (`max` nil: `\p{N}+`).
    case numbers(max: Int?)
    /// A run of scalars in the given ranges, e.g. `[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+`.
    case scalarRun([ClosedRange<UInt32>])
    /// A literal string.
    case literal([Unicode.Scalar])
    /// Any other pattern.
    case regex(RegexBox)

    /// Recognizes the patterns that have a scanner; others compile to a `Regex`.
    static func parse(regex pattern: String) throws -> SplitPattern {
        switch pattern {
        case KnownPatterns.gpt2: return .gpt2
        case KnownPatterns.llama3: return .llama3(maxDigits: 3)
        case KnownPatterns.qwen2: return .llama3(maxDigits: 1)
        case KnownPatterns.deepseekV3Words: return .deepseekV3Words
        case "\\p{N}{1,3}": return .numbers(max: 3)
        case "\\p{N}+": return .numbers(max: nil)
        case "\\p{N}": return .numbers(max: 1)
        case KnownPatterns.deepseekV3CJK: return .scalarRun(KnownPatterns.deepseekV3CJKRanges)
        default:
            do {
                return .regex(RegexBox(try Regex(pattern).matchingSemantics(.unicodeScalar)))
            } catch {
                throw TokenizerError.unsupported("pre-tokenizer regex '\(pattern)': \(error)")
            }
        }
    }

    /// The non-overlapping matches within `range`, left to right.
    func matches(in t: ScannedText, range: Range<Int>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        switch self {
        case .regex(let box):
            var view = String.UnicodeScalarView()
            view.append(contentsOf: t.scalars[range])
            let s = String(view)
            // Map String indices back to scalar offsets by walking once.
            var offsets: [String.Index: Int] = [:]
            var i = 0
            for idx in s.unicodeScalars.indices { offsets[idx] = i; i += 1 }
            offsets[s.endIndex] = i
            for m in s.matches(of: box.regex) where !m.range.isEmpty {
                if let a = offsets[m.range.lowerBound], let b = offsets[m.range.upperBound] {
                    out.append((range.lowerBound + a)..<(range.lowerBound + b))
                }
            }
        default:
            var p = range.lowerBound
            let end = range.upperBound
            while p < end {
                if let e = match(at: p, in: t, end: end), e > p {
                    out.append(p..<e)
                    p = e
                } else {
                    p += 1
                }
            }
        }
        return out
    }

    /// The end of the match that starts exactly at `p`, or nil (scanner patterns only).
    func match(at p: Int, in t: ScannedText, end: Int) -> Int? {
        switch self {
        case .gpt2: return Scan.gpt2(t, p, end)
        case .llama3(let maxDigits): return Scan.llama3(t, p, end, maxDigits: maxDigits)
        case .deepseekV3Words: return Scan.deepseekV3(t, p, end)
        case .numbers(let max):
            guard t.classes[p].contains(.number) else { return nil }
            let e = Scan.run(t, from: p, end: end) { $0.contains(.number) }
            if let max { return min(e, p + max) }
            return e
        case .scalarRun(let ranges):
            var e = p
            while e < end, ranges.contains(where: { $0.contains(t.scalars[e].value) }) { e += 1 }
            return e > p ? e : nil
        case .literal(let lit):
            guard !lit.isEmpty, p + lit.count <= end else { return nil }
            for (k, s) in lit.enumerated() where t.scalars[p + k] != s { return nil }
            return p + lit.count
        case .regex:
            return nil
        }
    }
}

/// A compiled Swift regex (a class so that the enum stays cheap to copy).
final class RegexBox: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>
    init(_ regex: Regex<AnyRegexOutput>) { self.regex = regex }
}

/// The pattern strings, exactly as `tokenizer.json` files spell them.
enum KnownPatterns {
    static let gpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
    static let llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    static let qwen2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
    static let deepseekV3Words = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
    static let deepseekV3CJK = "[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]+"
    static let deepseekV3CJKRanges: [ClosedRange<UInt32>] = [0x4E00...0x9FA5, 0x3040...0x309F, 0x30A0...0x30FF]
}

/// The hand-written scanners. Each returns the end of the match starting at `p`, or nil.
enum Scan {
    @inline(__always)
    static func run(_ t: ScannedText, from p: Int, end: Int, while pred: (ScalarClass) -> Bool) -> Int {
        var e = p
        while e < end && pred(t.classes[e]) { e += 1 }
        return e
    }

    /// `[^\s\p{L}\p{N}]`
    @inline(__always)
    static func isOther(_ c: ScalarClass) -> Bool {
        c.isDisjoint(with: [.whitespace, .letter, .number])
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally ignoring case (Unicode simple folding: `ſ` is `s`).
    static func contraction(_ t: ScannedText, _ p: Int, _ end: Int, ignoreCase: Bool) -> Int? {
        guard t.scalars[p] == "'", p + 1 < end else { return nil }
        func fold(_ s: Unicode.Scalar) -> Unicode.Scalar {
            guard ignoreCase else { return s }
            if s == "\u{17F}" { return "s" }
            if s.value >= 0x41 && s.value <= 0x5A, let l = Unicode.Scalar(s.value + 32) { return l }
            return s
        }
        let a = fold(t.scalars[p + 1])
        if a == "s" || a == "t" || a == "m" || a == "d" { return p + 2 }
        guard p + 2 < end else { return nil }
        let b = fold(t.scalars[p + 2])
        if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return p + 3 }
        return nil
    }

    /// `\s*[\r\n]+`: the whitespace run from `p` up to and including its last `\r` or `\n`.
    static func whitespaceToNewline(_ t: ScannedText, _ p: Int, _ end: Int) -> Int? {
        var e = p
        var lastNewline = -1
        while e < end && t.classes[e].contains(.whitespace) {
            if t.classes[e].contains(.newline) { lastNewline = e }
            e += 1
        }
        return lastNewline >= 0 ? lastNewline + 1 : nil
    }

    /// `\s+(?!\S)|\s+`: a whitespace run, less its last scalar when a non-space follows and the
    /// run is longer than one.
    static func whitespace(_ t: ScannedText, _ p: Int, _ end: Int) -> Int? {
        guard t.classes[p].contains(.whitespace) else { return nil }
        let e = run(t, from: p, end: end) { $0.contains(.whitespace) }
        if e == end || e - p == 1 { return e }
        return e - 1
    }

    static func gpt2(_ t: ScannedText, _ p: Int, _ end: Int) -> Int? {
        if let e = contraction(t, p, end, ignoreCase: false) { return e }
        let spaceFirst = t.scalars[p] == " " && p + 1 < end
        let c0 = t.classes[p]
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`, in that order.
        let c1: ScalarClass = spaceFirst ? t.classes[p + 1] : []
        if spaceFirst && c1.contains(.letter) { return run(t, from: p + 1, end: end) { $0.contains(.letter) } }
        if c0.contains(.letter) { return run(t, from: p, end: end) { $0.contains(.letter) } }
        if spaceFirst && c1.contains(.number) { return run(t, from: p + 1, end: end) { $0.contains(.number) } }
        if c0.contains(.number) { return run(t, from: p, end: end) { $0.contains(.number) } }
        if spaceFirst && isOther(c1) { return run(t, from: p + 1, end: end, while: isOther) }
        if isOther(c0) { return run(t, from: p, end: end, while: isOther) }
        return whitespace(t, p, end)
    }

    static func llama3(_ t: ScannedText, _ p: Int, _ end: Int, maxDigits: Int) -> Int? {
        if let e = contraction(t, p, end, ignoreCase: true) { return e }
        let c0 = t.classes[p]
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if c0.contains(.letter) { return run(t, from: p, end: end) { $0.contains(.letter) } }
        if c0.isDisjoint(with: [.newline, .letter, .number]) && p + 1 < end && t.classes[p + 1].contains(.letter) {
            return run(t, from: p + 1, end: end) { $0.contains(.letter) }
        }
        // `\p{N}{1,max}`
        if c0.contains(.number) {
            return min(run(t, from: p, end: end) { $0.contains(.number) }, p + maxDigits)
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var start = -1
        if t.scalars[p] == " " && p + 1 < end && isOther(t.classes[p + 1]) { start = p + 1 } else if isOther(c0) { start = p }
        if start >= 0 {
            let e = run(t, from: start, end: end, while: isOther)
            return run(t, from: e, end: end) { $0.contains(.newline) }
        }
        if let e = whitespaceToNewline(t, p, end) { return e }
        return whitespace(t, p, end)
    }

    @inline(__always)
    static func isASCIIPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        return (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v) || (0x7B...0x7E).contains(v)
    }

    @inline(__always)
    static func isASCIILetter(_ s: Unicode.Scalar) -> Bool {
        let v = s.value | 0x20
        return v >= 0x61 && v <= 0x7A
    }

    static func deepseekV3(_ t: ScannedText, _ p: Int, _ end: Int) -> Int? {
        let c0 = t.classes[p]
        // `[ASCII punctuation][A-Za-z]+`
        if isASCIIPunctuation(t.scalars[p]) && p + 1 < end && isASCIILetter(t.scalars[p + 1]) {
            var e = p + 1
            while e < end && isASCIILetter(t.scalars[e]) { e += 1 }
            return e
        }
        // `[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+`
        let letterOrMark: (ScalarClass) -> Bool = { !$0.isDisjoint(with: [.letter, .mark]) }
        if c0.isDisjoint(with: [.newline, .letter, .punctuation, .symbol]) && p + 1 < end && letterOrMark(t.classes[p + 1]) {
            return run(t, from: p + 1, end: end, while: letterOrMark)
        }
        if letterOrMark(c0) { return run(t, from: p, end: end, while: letterOrMark) }
        // ` ?[\p{P}\p{S}]+[\r\n]*`
        let punctOrSymbol: (ScalarClass) -> Bool = { !$0.isDisjoint(with: [.punctuation, .symbol]) }
        var start = -1
        if t.scalars[p] == " " && p + 1 < end && punctOrSymbol(t.classes[p + 1]) { start = p + 1 } else if punctOrSymbol(c0) { start = p }
        if start >= 0 {
            let e = run(t, from: start, end: end, while: punctOrSymbol)
            return run(t, from: e, end: end) { $0.contains(.newline) }
        }
        if let e = whitespaceToNewline(t, p, end) { return e }
        return whitespace(t, p, end)
    }
}
