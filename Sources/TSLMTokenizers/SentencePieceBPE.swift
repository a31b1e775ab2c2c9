/// SentencePiece BPE (Llama-2, Gemma, ChatTime; `tokenizer.model` "llama").
///
/// The text (already normalized: spaces are `▁`, with the dummy prefix) is one word whose
/// symbols are its Unicode scalars. A scalar with no piece becomes its UTF-8 bytes as
/// `<0xNN>` tokens (byte fallback) when the vocabulary has all of them, else the unknown
/// token (consecutive unknowns fuse into one). Then pairs merge by SCORE, highest first.
///
/// The merge order is exactly the one Hugging Face derives when it converts a SentencePiece
/// model (transformers' `SentencePieceExtractor`): every pair (left, right) of pieces whose
/// concatenation is a piece becomes a merge, ordered by the concatenation's score (highest
/// first), then by its id, then by the ids of left and right; the rank is the position in that
/// order, and the shared merge loop (`MergeTable.merge`) merges the lowest rank first, leftmost
/// on ties. When the metadata has `tokenizer.merges` (a BPE `tokenizer.json` with byte
/// fallback), those ranks are used instead.
struct SentencePieceBPE: Sendable {
    let scalarIDs: [Unicode.Scalar: Int32]
    let byteIDs: [Int32]
    let unknownID: Int32?
    let merges: MergeTable

    init(vocabulary v: Vocabulary, scores: [Float]?, merges mergeStrings: [String]?, unknownID: Int32?) throws {
        var scalarIDs: [Unicode.Scalar: Int32] = [:]
        var byteIDs = [Int32](repeating: -1, count: 256)
        // Pieces the model may produce: everything but user-defined (matched before the model
        // runs, like Hugging Face's added tokens) and unused tokens.
        func usable(_ i: Int) -> Bool {
            let t = v.types[i]
            return t != TokenType.userDefined.rawValue && t != TokenType.unused.rawValue
        }
        for (i, t) in v.tokens.enumerated() where usable(i) {
            var it = t.unicodeScalars.makeIterator()
            if let s = it.next(), it.next() == nil, scalarIDs[s] == nil { scalarIDs[s] = Int32(i) }
            if v.types[i] == TokenType.byte.rawValue, let b = Self.byteValue(t), byteIDs[Int(b)] < 0 {
                byteIDs[Int(b)] = Int32(i)
            }
        }
        var table = MergeTable()
        if let mergeStrings {
            for (rank, m) in mergeStrings.enumerated() {
                guard let (left, right) = MergeTable.split(m) else {
                    throw TokenizerError.malformed(key: "tokenizer.merges", reason: "merge #\(rank) '\(m)' is not two tokens separated by a space")
                }
                guard let l = v.id(left), let r = v.id(right), let merged = v.id(left + right) else {
                    throw TokenizerError.malformed(key: "tokenizer.merges", reason: "merge #\(rank) '\(m)' references a token that is not in the vocabulary")
                }
                table.add(left: l, right: r, rank: Int32(truncatingIfNeeded: rank), merged: merged)
            }
        } else if let scores {
            guard scores.count == v.count else {
                throw TokenizerError.malformed(key: "tokenizer.scores", reason: "\(scores.count) scores for \(v.count) tokens")
            }
            // Ids of usable pieces by string (first wins), as the converter's `vocab` dict.
            var candidates: [(score: Float, merged: Int32, left: Int32, right: Int32)] = []
            for (i, t) in v.tokens.enumerated() where usable(i) && v.id(t) == Int32(i) {
                let scalars = Array(t.unicodeScalars)
                guard scalars.count >= 2 else { continue }
                var local: [(score: Float, merged: Int32, left: Int32, right: Int32)] = []
                for k in 1..<scalars.count {
                    var lv = String.UnicodeScalarView(), rv = String.UnicodeScalarView()
                    lv.append(contentsOf: scalars[..<k])
                    rv.append(contentsOf: scalars[k...])
                    if let l = v.id(String(lv)), usable(Int(l)), let r = v.id(String(rv)), usable(Int(r)) {
                        local.append((scores[i], Int32(i), l, r))
                    }
                }
                local.sort { ($0.left, $0.right) < ($1.left, $1.right) }
                candidates.append(contentsOf: local)
            }
            // A stable sort by score, highest first (ties keep id order, as Python's sort does).
            let order = candidates.indices.sorted {
                let a = candidates[$0], b = candidates[$1]
                if a.score != b.score { return a.score > b.score }
                return $0 < $1
            }
            for (rank, idx) in order.enumerated() {
                let c = candidates[idx]
                table.add(left: c.left, right: c.right, rank: Int32(truncatingIfNeeded: rank), merged: c.merged)
            }
        } else {
            throw TokenizerError.missingKey("tokenizer.scores")
        }
        self.scalarIDs = scalarIDs
        self.byteIDs = byteIDs
        self.unknownID = unknownID
        self.merges = table
    }

    /// The byte of a `<0xNN>` piece.
    static func byteValue(_ piece: String) -> UInt8? {
        let u = Array(piece.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        guard let h = hex(u[3]), let l = hex(u[4]) else { return nil }
        return h << 4 | l
    }

    /// Appends the ids of one normalized piece.
    func encode(_ scalars: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        var ids: [Int32] = []
        ids.reserveCapacity(scalars.count)
        var lastWasUnknown = false
        for s in scalars {
            if let id = scalarIDs[s] {
                ids.append(id)
                lastWasUnknown = false
                continue
            }
            var bytes: [Int32] = []
            for b in String(s).utf8 {
                let id = byteIDs[Int(b)]
                if id < 0 { bytes = []; break }
                bytes.append(id)
            }
            if !bytes.isEmpty {
                ids.append(contentsOf: bytes)
                lastWasUnknown = false
            } else if let unk = unknownID {
                if !lastWasUnknown { ids.append(unk) }
                lastWasUnknown = true
            }
        }
        merges.merge(&ids)
        out.append(contentsOf: ids)
    }
}
