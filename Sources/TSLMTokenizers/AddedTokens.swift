/// Special and added tokens, found in raw text before the model runs.
///
/// A byte trie over the tokens' UTF-8 spellings finds, at the leftmost position where any token
/// starts, the LONGEST token that starts there (Hugging Face's leftmost-longest matching;
/// llama.cpp's longest-first scan gives the same split). Control tokens (type 3) are matched only
/// when special tokens are parsed; user-defined tokens (type 4) always, as both references do
/// for non-special added tokens. Matching is linear in the text for realistic vocabularies: a
/// bitmap of first bytes skips positions where no token can start.
struct AddedTokens: Sendable {
    /// `node << 8 | byte` → child node.
    private var children: [UInt64: Int32] = [:]
    /// The token id that ends at each node, or -1; and whether it is a control token.
    private var terminal: [Int32] = [-1]
    private var terminalIsControl: [Bool] = [false]
    private var firstBytes = [Bool](repeating: false, count: 256)

    var isEmpty: Bool { children.isEmpty }

    /// Adds a token; an empty spelling is ignored, a repeated one keeps the first id.
    mutating func insert(_ text: String, id: Int32, control: Bool) {
        let bytes = Array(text.utf8)
        guard let first = bytes.first else { return }
        firstBytes[Int(first)] = true
        var node: Int32 = 0
        for b in bytes {
            let key = UInt64(UInt32(node)) << 8 | UInt64(b)
            if let c = children[key] {
                node = c
            } else {
                let c = Int32(terminal.count)
                terminal.append(-1)
                terminalIsControl.append(false)
                children[key] = c
                node = c
            }
        }
        if terminal[Int(node)] < 0 {
            terminal[Int(node)] = id
            terminalIsControl[Int(node)] = control
        }
    }

    /// One piece of split text: a stretch of ordinary text (UTF-8 byte range) or a token.
    enum Segment: Equatable {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Splits UTF-8 text into ordinary stretches and tokens.
    func split(_ utf8: [UInt8], parseControl: Bool) -> [Segment] {
        guard !isEmpty else { return utf8.isEmpty ? [] : [.text(0..<utf8.count)] }
        var out: [Segment] = []
        var textStart = 0
        var p = 0
        let n = utf8.count
        while p < n {
            let b = utf8[p]
            // Tokens start on scalar boundaries only.
            guard firstBytes[Int(b)], b & 0xC0 != 0x80 else { p += 1; continue }
            var node: Int32 = 0
            var q = p
            var best: (end: Int, id: Int32)? = nil
            while q < n, let c = children[UInt64(UInt32(node)) << 8 | UInt64(utf8[q])] {
                node = c
                q += 1
                let id = terminal[Int(c)]
                if id >= 0 && (parseControl || !terminalIsControl[Int(c)]) { best = (q, id) }
            }
            if let best {
                if textStart < p { out.append(.text(textStart..<p)) }
                out.append(.token(best.id))
                p = best.end
                textStart = p
            } else {
                p += 1
            }
        }
        if textStart < n { out.append(.text(textStart..<n)) }
        return out
    }
}
