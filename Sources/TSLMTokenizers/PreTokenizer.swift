/// How a `Split` step treats the pattern's matches (Hugging Face `SplitDelimiterBehavior`).
enum SplitBehavior: String {
    case isolated = "Isolated", removed = "Removed", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// One pre-tokenizer step. A pre-tokenizer is a list of steps; each applies to every piece the
/// previous one produced (Hugging Face's `Sequence`).
enum PreTokenizerStep {
    /// Split on a pattern.
    case split(SplitPattern, SplitBehavior, invert: Bool)
    /// Numbers: every number scalar alone (`individual`) or runs of them, isolated.
    case digits(individual: Bool)
    /// Byte-level: optionally a leading space for pieces that lack one, then the GPT-2 split.
    /// (The byte → Unicode mapping itself is done by the byte-level BPE model.)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// SentencePiece's metaspace: spaces become `replacement`, a prefix per `prependScheme`
    /// ("always", "first", "never"), and optionally a split before each `replacement`.
    case metaspace(replacement: Unicode.Scalar, prependScheme: String, split: Bool)
    /// `\w+|[^\w\s]+`, whitespace removed.
    case whitespace
    /// Split on whitespace, which is removed.
    case whitespaceSplit
}

/// Text split into pieces: ranges over one scalar buffer (steps that insert text rebuild it).
struct PreTokenized {
    var text: ScannedText
    var pieces: [Range<Int>]
    /// Whether the text starts the whole input (Metaspace's "first" prepend scheme).
    var atTextStart = true

    init(_ scalars: [Unicode.Scalar]) {
        text = ScannedText(scalars)
        pieces = scalars.isEmpty ? [] : [0..<scalars.count]
    }

    /// Applies the steps in order.
    mutating func apply(_ steps: [PreTokenizerStep]) {
        for step in steps { apply(step) }
    }

    mutating func apply(_ step: PreTokenizerStep) {
        switch step {
        case let .split(pattern, behavior, invert):
            splitEach(behavior: behavior, invert: invert) { t, r in pattern.matches(in: t, range: r) }
        case let .digits(individual):
            let pattern = SplitPattern.numbers(max: individual ? 1 : nil)
            splitEach(behavior: .isolated, invert: false) { t, r in pattern.matches(in: t, range: r) }
        case let .byteLevel(addPrefixSpace, useRegex):
            if addPrefixSpace { insertPrefix(" ") { _ in true } }
            if useRegex {
                splitEach(behavior: .isolated, invert: false) { t, r in SplitPattern.gpt2.matches(in: t, range: r) }
            }
        case let .metaspace(replacement, scheme, split):
            for i in text.scalars.indices where text.scalars[i] == " " {
                text.scalars[i] = replacement
                text.classes[i] = ScalarClass.of(replacement)
            }
            if scheme == "always" {
                insertPrefix(replacement) { _ in true }
            } else if scheme == "first" {
                let first = atTextStart
                insertPrefix(replacement) { $0 == 0 && first }
            }
            if split {
                let lit = SplitPattern.literal([replacement])
                splitEach(behavior: .mergedWithNext, invert: false) { t, r in lit.matches(in: t, range: r) }
            }
        case .whitespace:
            splitEach(behavior: .removed, invert: true) { t, r in Self.wordMatches(t, r) }
        case .whitespaceSplit:
            splitEach(behavior: .removed, invert: false) { t, r in
                var out: [Range<Int>] = []
                var p = r.lowerBound
                while p < r.upperBound {
                    if t.classes[p].contains(.whitespace) {
                        let e = Scan.run(t, from: p, end: r.upperBound) { $0.contains(.whitespace) }
                        out.append(p..<e)
                        p = e
                    } else { p += 1 }
                }
                return out
            }
        }
    }

    /// `\w+|[^\w\s]+` (word scalars: letters, numbers, marks, connector punctuation).
    private static func wordMatches(_ t: ScannedText, _ r: Range<Int>) -> [Range<Int>] {
        func isWord(_ i: Int) -> Bool {
            !t.classes[i].isDisjoint(with: [.letter, .number, .mark])
                || t.scalars[i].properties.generalCategory == .connectorPunctuation
        }
        var out: [Range<Int>] = []
        var p = r.lowerBound
        while p < r.upperBound {
            if t.classes[p].contains(.whitespace) { p += 1; continue }
            let word = isWord(p)
            var e = p + 1
            while e < r.upperBound && !t.classes[e].contains(.whitespace) && isWord(e) == word { e += 1 }
            out.append(p..<e)
            p = e
        }
        return out
    }

    /// Splits every piece at the matches `find` returns, per Hugging Face's split behaviours.
    private mutating func splitEach(behavior: SplitBehavior, invert: Bool,
                                    _ find: (ScannedText, Range<Int>) -> [Range<Int>]) {
        var out: [Range<Int>] = []
        out.reserveCapacity(pieces.count * 2)
        for piece in pieces {
            let matches = find(text, piece)
            if matches.isEmpty {
                if behavior != .removed || invert == false { out.append(piece) }
                continue
            }
            // The piece as alternating (range, isMatch) parts.
            var parts: [(Range<Int>, Bool)] = []
            var p = piece.lowerBound
            for m in matches {
                if m.lowerBound > p { parts.append((p..<m.lowerBound, invert)) }
                parts.append((m, !invert))
                p = m.upperBound
            }
            if p < piece.upperBound { parts.append((p..<piece.upperBound, invert)) }
            switch behavior {
            case .isolated:
                out.append(contentsOf: parts.map(\.0))
            case .removed:
                out.append(contentsOf: parts.filter { !$0.1 }.map(\.0))
            case .mergedWithPrevious:
                var previousMatch = false
                var local: [Range<Int>] = []
                for (r, isMatch) in parts {
                    if isMatch && !previousMatch, let last = local.last {
                        local[local.count - 1] = last.lowerBound..<r.upperBound
                    } else {
                        local.append(r)
                    }
                    previousMatch = isMatch
                }
                out.append(contentsOf: local)
            case .mergedWithNext:
                var previousMatch = false
                var local: [Range<Int>] = []
                for (r, isMatch) in parts.reversed() {
                    if isMatch && !previousMatch, let last = local.last {
                        local[local.count - 1] = r.lowerBound..<last.upperBound
                    } else {
                        local.append(r)
                    }
                    previousMatch = isMatch
                }
                out.append(contentsOf: local.reversed())
            case .contiguous:
                var previous: Bool? = nil
                var local: [Range<Int>] = []
                for (r, isMatch) in parts {
                    if previous == isMatch, let last = local.last {
                        local[local.count - 1] = last.lowerBound..<r.upperBound
                    } else {
                        local.append(r)
                    }
                    previous = isMatch
                }
                out.append(contentsOf: local)
            }
        }
        pieces = out
    }

    /// Inserts `prefix` before each piece (selected by its start offset) that does not already
    /// start with it, rebuilding the buffer.
    private mutating func insertPrefix(_ prefix: Unicode.Scalar, where select: (Int) -> Bool) {
        let chosen = pieces.map { select($0.lowerBound) && text.scalars[$0.lowerBound] != prefix }
        guard chosen.contains(true) else { return }
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.scalars.count + pieces.count)
        var newPieces: [Range<Int>] = []
        var copied = 0
        for (piece, add) in zip(pieces, chosen) {
            scalars.append(contentsOf: text.scalars[copied..<piece.lowerBound])
            let start = scalars.count
            if add { scalars.append(prefix) }
            scalars.append(contentsOf: text.scalars[piece])
            copied = piece.upperBound
            newPieces.append(start..<scalars.count)
        }
        scalars.append(contentsOf: text.scalars[copied...])
        text = ScannedText(scalars)
        pieces = newPieces
    }
}

/// The named pre-tokenizers of GGUF-style metadata (`tokenizer.pre`).
enum NamedPreTokenizer {
    /// The steps for a `tokenizer.pre` name, or nil if the name is unknown.
    static func steps(for name: String) -> [PreTokenizerStep]? {
        switch name {
        case "gpt2", "gpt-2", "default", "starcoder", "refact", "olmo", "mpt":
            return [.byteLevel(addPrefixSpace: false, useRegex: true)]
        case "smollm":
            // SmolLM2's tokenizer.json: Sequence[Digits(individual_digits), ByteLevel].
            return [.digits(individual: true), .byteLevel(addPrefixSpace: false, useRegex: true)]
        case "llama-bpe", "llama3", "llama-v3", "smaug-bpe", "dbrx":
            return [.split(.llama3(maxDigits: 3), .isolated, invert: false)]
        case "qwen2":
            return [.split(.llama3(maxDigits: 1), .isolated, invert: false)]
        case "deepseek-v3", "deepseek3-llm":
            return [
                .split(.numbers(max: 3), .isolated, invert: false),
                .split(.scalarRun(KnownPatterns.deepseekV3CJKRanges), .isolated, invert: false),
                .split(.deepseekV3Words, .isolated, invert: false),
            ]
        default:
            return nil
        }
    }
}
