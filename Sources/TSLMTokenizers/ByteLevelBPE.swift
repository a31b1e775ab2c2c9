import TSLMFormat

/// Byte-level BPE (GPT-2, Llama-3, SmolLM2, DeepSeek, Qwen): each pre-token's UTF-8 bytes
/// become the vocabulary's single-byte tokens (via the GPT-2 byte ↔ Unicode map), which are
/// then merged by rank.
///
/// A byte whose token is missing from the vocabulary is dropped, as Hugging Face `tokenizers`
/// does for a BPE model without an unknown token (SmolLM2's vocabulary lacks 8 bytes).
struct ByteLevelBPE: Sendable {
    /// The token id of each byte, or -1.
    let byteIDs: [Int32]
    let merges: MergeTable
    /// Hugging Face's `ignore_merges` (Llama-3): a pre-token that is itself in the
    /// vocabulary becomes that token without merging.
    let ignoreMerges: Bool
    let vocab: [UTF8Key: Int32]

    /// Builds from the vocabulary and the `"left right"` merges, in rank order.
    init(vocabulary v: Vocabulary, merges mergeStrings: [String], ignoreMerges: Bool) throws {
        var byteIDs = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            byteIDs[b] = v.id(String(ByteLevel.byteToScalar[b])) ?? -1
        }
        var table = MergeTable()
        for (rank, m) in mergeStrings.enumerated() {
            // Split at the first space that leaves two non-empty halves (a half may not hold a
            // space: byte-level vocabularies spell the space byte as `Ġ`).
            guard let (left, right) = MergeTable.split(m) else {
                throw TokenizerError.malformed(key: "tokenizer.merges", reason: "merge #\(rank) '\(m)' is not two tokens separated by a space")
            }
            guard let l = v.id(left), let r = v.id(right) else {
                throw TokenizerError.malformed(key: "tokenizer.merges", reason: "merge #\(rank) '\(m)' references a token that is not in the vocabulary")
            }
            guard let merged = v.id(left + right) else {
                throw TokenizerError.malformed(key: "tokenizer.merges", reason: "merge #\(rank) '\(m)' produces '\(left + right)', which is not in the vocabulary")
            }
            table.add(left: l, right: r, rank: Int32(truncatingIfNeeded: rank), merged: merged)
        }
        self.byteIDs = byteIDs
        self.merges = table
        self.ignoreMerges = ignoreMerges
        self.vocab = ignoreMerges ? v.ids : [:]
    }

    /// Appends the ids of one pre-token (its UTF-8 bytes).
    func encode(_ bytes: [UInt8], into out: inout [Int32], cache: inout [[UInt8]: [Int32]]) {
        if let hit = cache[bytes] {
            out.append(contentsOf: hit)
            return
        }
        if ignoreMerges, let id = vocab[UTF8Key(ByteLevel.encode(bytes))] {
            out.append(id)
            cache[bytes] = [id]
            return
        }
        var ids: [Int32] = []
        ids.reserveCapacity(bytes.count)
        for b in bytes where byteIDs[Int(b)] >= 0 { ids.append(byteIDs[Int(b)]) }
        merges.merge(&ids)
        out.append(contentsOf: ids)
        if cache.count < 100_000 { cache[bytes] = ids }
    }
}
