/// Byte-pair merges: the table and the merge loop shared by both BPE models.
///
/// The loop reproduces Hugging Face `tokenizers`' `Word::merge_all`: among the adjacent pairs
/// that have a merge, the one with the LOWEST RANK is merged first; equal ranks (the same
/// pair at several places) merge the LEFTMOST first; stale queue entries are skipped. This
/// is also what llama.cpp's BPE and SentencePiece tokenizers compute.
struct MergeTable: Sendable {
    /// `left << 32 | right` → `rank << 32 | merged`.
    private var table: [UInt64: UInt64] = [:]

    var count: Int { table.count }

    /// Adds a merge unless the pair already has one (the first, lowest rank wins).
    mutating func add(left: Int32, right: Int32, rank: Int32, merged: Int32) {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        if table[key] == nil {
            table[key] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
        }
    }

    /// The two halves of a `"left right"` merge string, split at the first U+0020 scalar that
    /// leaves a non-empty left half; nil when there is none. Scalars, not `Character`s: a space
    /// followed by a combining mark ("▁か ゙", U+3099) is one `Character`, so a `Character`
    /// search would miss the separator.
    static func split(_ merge: String) -> (left: String, right: String)? {
        let scalars = merge.unicodeScalars
        guard let sp = scalars.firstIndex(of: " "), sp != scalars.startIndex else { return nil }
        return (String(scalars[..<sp]), String(scalars[scalars.index(after: sp)...]))
    }

    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> (rank: UInt32, merged: Int32)? {
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        guard let v = table[key] else { return nil }
        return (UInt32(truncatingIfNeeded: v >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
    }

    /// Merges `ids` in place (see the type's documentation for the order).
    func merge(_ ids: inout [Int32]) {
        let n = ids.count
        guard n >= 2 else { return }
        if n <= 24 {
            mergeSmall(&ids)
            return
        }
        var next = [Int32](repeating: -1, count: n)
        var prev = [Int32](repeating: -1, count: n)
        for i in 0..<n {
            next[i] = i + 1 < n ? Int32(i + 1) : -1
            prev[i] = Int32(i - 1)
        }
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        for i in 0..<(n - 1) {
            if let m = lookup(ids[i], ids[i + 1]) { heap.push(UInt64(m.rank) << 32 | UInt64(i)) }
        }
        while let top = heap.pop() {
            let rank = UInt32(truncatingIfNeeded: top >> 32)
            let pos = Int(UInt32(truncatingIfNeeded: top))
            guard alive[pos] else { continue }
            let nx = Int(next[pos])
            guard nx >= 0, let m = lookup(ids[pos], ids[nx]), m.rank == rank else { continue }
            ids[pos] = m.merged
            alive[nx] = false
            next[pos] = next[nx]
            if next[nx] >= 0 { prev[Int(next[nx])] = Int32(pos) }
            let pv = Int(prev[pos])
            if pv >= 0, let m2 = lookup(ids[pv], ids[pos]) { heap.push(UInt64(m2.rank) << 32 | UInt64(pv)) }
            let nn = Int(next[pos])
            if nn >= 0, let m3 = lookup(ids[pos], ids[nn]) { heap.push(UInt64(m3.rank) << 32 | UInt64(pos)) }
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i = 0
        while i >= 0 && i < n {
            out.append(ids[i])
            i = Int(next[i])
        }
        ids = out
    }

    /// The same order for short words: repeatedly merge the lowest-rank, leftmost pair.
    private func mergeSmall(_ ids: inout [Int32]) {
        while ids.count >= 2 {
            var best = UInt32.max
            var bestPos = -1
            var bestID: Int32 = 0
            for i in 0..<(ids.count - 1) {
                if let m = lookup(ids[i], ids[i + 1]), m.rank < best {
                    best = m.rank
                    bestPos = i
                    bestID = m.merged
                }
            }
            guard bestPos >= 0 else { return }
            ids[bestPos] = bestID
            ids.remove(at: bestPos + 1)
        }
    }
}

/// A binary min-heap of `UInt64` keys.
struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ v: UInt64) {
        items.append(v)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if items[p] <= items[i] { break }
            items.swapAt(p, i)
            i = p
        }
    }

    mutating func pop() -> UInt64? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && items[l] < items[m] { m = l }
                if r < n && items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}
