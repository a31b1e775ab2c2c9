#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import TSLMFormat
import TSLMKernels

/// A 64-byte aligned f32 buffer owned by the caller's scope.
final class FloatBuffer {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(_ count: Int) {
        self.count = count
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64).bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }
}

/// y [n, rows] = x [n, cols] · Wᵀ (+ bias).
@inline(__always)
func linear(_ w: WeightMatrix, _ x: UnsafePointer<Float>, n: Int, _ y: UnsafeMutablePointer<Float>,
            bias: UnsafePointer<Float>? = nil, pool: ThreadPool?) {
    if n == 1 {
        Kernels.matvec(w, x, y, pool: pool)
    } else {
        Kernels.matmul(w, x, n: n, y, pool: pool)
    }
    if let bias {
        for i in 0..<n { Kernels.add(y + i * w.rows, bias, count: w.rows) }
    }
}

/// y_g [n, rows_g] = x [n, cols] · W_gᵀ (+ bias_g) for matrices that read the same input
/// (q, k, v; gate, up): one parallel job for all of them when decoding.
@inline(__always)
func linear(group: [(WeightMatrix, UnsafeMutablePointer<Float>, UnsafePointer<Float>?)], _ x: UnsafePointer<Float>, n: Int,
            pool: ThreadPool?) {
    Kernels.matmul(group: group.map(\.0), x, n: n, group.map(\.1), pool: pool)
    for (w, y, bias) in group {
        if let bias {
            for i in 0..<n { Kernels.add(y + i * w.rows, bias, count: w.rows) }
        }
    }
}

/// Runs `body` on chunks of `0..<count` in parallel when there is enough work (prefill's
/// activations: n × feed-forward values), else on the calling thread.
@inline(__always)
func elementwise(_ count: Int, pool: ThreadPool?, _ body: (_ start: Int, _ count: Int) -> Void) {
    let minChunk = 16 * 1024
    if let pool, count >= 2 * minChunk {
        // Chunk bounds on multiples of 8 keep every chunk but the last on whole vectors.
        let chunks = min(pool.threads, count / minChunk)
        pool.parallelFor(chunks, grain: 1) { range in
            for c in range {
                let lo = (count * c / chunks) & ~7, hi = c == chunks - 1 ? count : (count * (c + 1) / chunks) & ~7
                body(lo, hi - lo)
            }
        }
    } else {
        body(0, count)
    }
}

/// Rotary position embedding in Hugging Face's rotate-half layout: dimension i pairs with
/// i + headDim/2. Inverse frequencies are computed once (with "llama3" scaling if configured).
struct Rope {
    let headDim: Int
    /// [headDim/2] inverse frequencies.
    let invFreq: [Float]

    init(headDim: Int, base: Float, scaling: TextModelConfig.RopeScaling?) {
        self.headDim = headDim
        let half = headDim / 2
        var inv = (0..<half).map { i -> Float in
            // As PyTorch: base ** (arange(0, dim, 2).float() / dim), in f32.
            let exponent = Float(2 * i) / Float(headDim)
            return 1 / powf(base, exponent)
        }
        if let s = scaling, s.type == "llama3" {
            let lowWavelen = Float(s.originalContextLength) / s.lowFreqFactor
            let highWavelen = Float(s.originalContextLength) / s.highFreqFactor
            inv = inv.map { f in
                let wavelen = 2 * Float.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / s.factor }
                let smooth = (Float(s.originalContextLength) / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor)
                return (1 - smooth) * f / s.factor + smooth * f
            }
        }
        invFreq = inv
    }

    /// Rotates `heads` vectors of headDim in `x` (one position) by `position`.
    func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, position: Int) {
        let half = headDim / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * half) { cs in
            for i in 0..<half {
                let angle = Float(position) * invFreq[i]
                cs[i] = cosf(angle)
                cs[half + i] = sinf(angle)
            }
            for h in 0..<heads {
                let v = x + h * headDim
                for i in 0..<half {
                    let (c, s) = (cs[i], cs[half + i])
                    let (a, b) = (v[i], v[i + half])
                    v[i] = a * c - b * s
                    v[i + half] = b * c + a * s
                }
            }
        }
    }
}

/// Causal (optionally sliding-window) attention of n queries at positions start..<start+n over
/// the cache, which already holds keys and values up to start+n.
/// q: [n, heads·headDim] → out: [n, heads·headDim].
func attention(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, n: Int, start: Int,
               cache: KVCache, layer: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float,
               window: Int?, pool: ThreadPool?) {
    if n >= Kernels.gemmMinTokens && Kernels.prefillGemm {
        blockAttention(q: q, out: out, n: n, start: start, cache: cache, layer: layer, heads: heads, kvHeads: kvHeads,
                       headDim: headDim, scale: scale, window: window, pool: pool)
        return
    }
    if Kernels.prefillGemm {
        splitAttention(q: q, out: out, n: n, start: start, cache: cache, layer: layer, heads: heads, kvHeads: kvHeads,
                       headDim: headDim, scale: scale, window: window, pool: pool)
        return
    }
    oneQueryAttention(q: q, out: out, n: n, start: start, cache: cache, layer: layer, heads: heads, kvHeads: kvHeads,
                      headDim: headDim, scale: scale, window: window, pool: pool)
}

/// `attention` one query, head and position at a time (a dot product and an axpy per cached
/// position): the plain twin of `splitAttention` and `blockAttention`, which the tests compare
/// them against (`Kernels.prefillGemm = false` selects it).
func oneQueryAttention(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, n: Int, start: Int,
                       cache: KVCache, layer: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float,
                       window: Int?, pool: ThreadPool?) {
    let group = heads / kvHeads
    let width = cache.width
    let keys = cache.keys(layer), values = cache.values(layer)
    let half = cache.half
    let work = n * heads
    let body: (Range<Int>) -> Void = { range in
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: start + n)
        defer { scores.deallocate() }
        for item in range {
            let (i, h) = (item / heads, item % heads)
            let pos = start + i
            let lo = window.map { max(0, pos - $0 + 1) } ?? 0
            let qh = q + i * heads * headDim + h * headDim
            let kvOffset = (h / group) * headDim
            let count = pos - lo + 1
            for j in lo...pos {
                let s: Float
                if half {
                    s = Kernels.dotF16(qh, keys.assumingMemoryBound(to: UInt16.self) + j * width + kvOffset, count: headDim)
                } else {
                    s = Kernels.dot(qh, keys.assumingMemoryBound(to: Float.self) + j * width + kvOffset, count: headDim)
                }
                scores[j - lo] = s * scale
            }
            Kernels.softmax(scores, count: count)
            let o = out + i * heads * headDim + h * headDim
            o.initialize(repeating: 0, count: headDim)
            for j in lo...pos {
                if half {
                    Kernels.axpyF16(o, values.assumingMemoryBound(to: UInt16.self) + j * width + kvOffset, scale: scores[j - lo], count: headDim)
                } else {
                    Kernels.axpy(o, values.assumingMemoryBound(to: Float.self) + j * width + kvOffset, scale: scores[j - lo], count: headDim)
                }
            }
        }
    }
    // Short contexts run on the calling thread: waking the pool costs more than the work (a
    // decode step over a few hundred positions is a few hundred thousand multiply–adds).
    let macs = work * (start + n) * headDim * 2
    if let pool, work > 1, macs >= 1 << 18 {
        pool.parallelFor(work, grain: 1, body)
    } else {
        body(0..<work)
    }
}

/// `attention` for a few queries (decoding), split over the cached positions as flash-decoding
/// does: each item is one query position, one key/value head and a part of at most
/// `splitLength` keys, for all the query heads that share that key/value head. An item computes
/// the scores of its part with the GEMM micro-kernel (keys read in place from the cache), their
/// softmax before normalization (`Kernels.softmaxPart`) and the weighted sum of its value rows
/// (`Kernels.weightedRowSum`); the parts of a row are then merged with their maxima and sums.
/// The items keep both threads busy however few key/value heads a model has (SmolLM2 has 3).
/// Same result as `oneQueryAttention` up to summation order.
func splitAttention(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, n: Int, start: Int,
                    cache: KVCache, layer: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float,
                    window: Int?, pool: ThreadPool?) {
    let group = heads / kvHeads
    let width = cache.width, rowWidth = heads * headDim
    let (kvType, elementSize) = (cache.elementType, cache.elementSize)
    let keyStride = width * elementSize
    let keys = cache.keys(layer), values = cache.values(layer)
    // Keys of query i: lo(i) ... start + i.
    let lo: (Int) -> Int = { i in window.map { max(0, start + i - $0 + 1) } ?? 0 }
    let parts = (start + n - lo(0) + splitLength - 1) / splitLength
    let items = n * kvHeads * parts
    // Per item: `group` rows of headDim (unnormalized output), then `group` maxima and sums.
    let itemFloats = group * (headDim + 2)
    let partials = UnsafeMutablePointer<Float>.allocate(capacity: items * itemFloats)
    defer { partials.deallocate() }
    let body: (_ next: () -> Int?) -> Void = { next in
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: group * splitLength)
        defer { scores.deallocate() }
        while let item = next() {
            let (i, kvHead, part) = (item / (kvHeads * parts), item / parts % kvHeads, item % parts)
            let o = partials + item * itemFloats
            let maxima = o + group * headDim, sums = maxima + group
            let first = lo(i) + part * splitLength, end = min(start + i + 1, lo(i) + (part + 1) * splitLength)
            guard first < end else {
                // A part past this query's last key (later queries see more): weight 0.
                o.update(repeating: 0, count: group * headDim)
                maxima.update(repeating: -.infinity, count: group)
                sums.update(repeating: 0, count: group)
                continue
            }
            let count = end - first
            let offset = (first * width + kvHead * headDim) * elementSize
            let k = WeightMatrix(dtype: kvType, rows: count, cols: headDim, data: keys + offset)
            // The query heads of this key/value head are `group` consecutive rows of q.
            Kernels.gemm(k, rowStride: keyStride, q + i * rowWidth + kvHead * group * headDim, n: group, scores)
            for g in 0..<group {
                (maxima[g], sums[g]) = Kernels.softmaxPart(scores + g * count, count: count, scale: scale)
            }
            Kernels.weightedRowSum(UnsafeRawPointer(values + offset), half: cache.half, rowStride: keyStride, count: count,
                                   dim: headDim, weights: scores, weightStride: count, heads: group, out: o)
        }
    }
    // Short contexts run on the calling thread: waking the pool costs more than the work.
    let macs = n * heads * (start + n) * headDim * 2
    ThreadPool.forEachItem(items, pool: macs >= 1 << 18 ? pool : nil, body)
    // Merge the parts of each (query, head): weights e^(m_p − M) with M the largest maximum.
    for i in 0..<n {
        for kvHead in 0..<kvHeads {
            let base = (i * kvHeads + kvHead) * parts
            for g in 0..<group {
                var m = -Float.infinity
                for p in 0..<parts { m = max(m, partials[(base + p) * itemFloats + group * headDim + g]) }
                let o = out + i * rowWidth + (kvHead * group + g) * headDim
                o.update(repeating: 0, count: headDim)
                var total: Float = 0
                for p in 0..<parts {
                    let item = partials + (base + p) * itemFloats
                    let (mp, sp) = (item[group * headDim + g], item[group * headDim + group + g])
                    guard sp > 0 else { continue }
                    let w = expf(mp - m)
                    total += w * sp
                    Kernels.axpy(o, item + g * headDim, scale: w, count: headDim)
                }
                Kernels.scale(o, by: 1 / total, count: headDim)
            }
        }
    }
}

/// The most keys per item of `splitAttention`.
let splitLength = 256

/// `attention` for many queries (prefill) as matrix products: per key/value head and block of
/// `attentionBlock` positions, `AttentionBlock.attend` (Q·Kᵀ and P·V through the GEMM
/// micro-kernel). The keys are read in place from the cache (the GEMM converts them to f32
/// panels itself); the values are transposed once per call (`TransposedHeads`); the queries
/// of all the heads that share a key/value head are stacked as rows of one block. The causal /
/// sliding-window mask is applied as each query's softmax range. Same result as the one-query
/// path up to summation order.
func blockAttention(q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, n: Int, start: Int,
                    cache: KVCache, layer: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float,
                    window: Int?, pool: ThreadPool?) {
    let group = heads / kvHeads
    let width = cache.width, rowWidth = heads * headDim
    let (kvType, elementSize) = (cache.elementType, cache.elementSize)
    let total = start + n
    // The first key any query sees.
    let first = window.map { max(0, start - $0 + 1) } ?? 0
    // The outer-product kernels read the keys transposed and the values in place; the GEMM
    // path reads the keys in place and the values transposed.
    let outer = Kernels.outerProductAttention(headDim: headDim)
    let transposed = TransposedHeads(dtype: kvType, base: outer ? cache.keys(layer) : cache.values(layer),
                                      positionStride: width * elementSize, headStride: headDim * elementSize, heads: kvHeads,
                                      headDim: headDim, positions: first..<total, pool: pool)
    defer { transposed.deallocate() }
    let keys = cache.keys(layer), cachedValues = cache.values(layer)
    let blocks = (n + attentionBlock - 1) / attentionBlock
    // Items (key/value head, block) taken one at a time: later blocks see more keys.
    ThreadPool.forEachItem(kvHeads * blocks, pool: pool) { next in
        let a = AttentionBlock(maxKeys: total, headDim: headDim, maxQueries: attentionBlock * group)
        defer { a.deallocate() }
        while let item = next() {
            // Longest blocks first, so that the last items to be taken are short.
            let (b, kvHead) = (blocks - 1 - item / kvHeads, item % kvHeads)
            let q0 = b * attentionBlock, count = min(n, q0 + attentionBlock) - q0
            // Keys lo ..< lo + length: from the first query's window start to the last query's position.
            let lo = window.map { max(0, start + q0 - $0 + 1) } ?? 0
            let length = start + q0 + count - lo
            // Row g·count + t: head kvHead·group + g, position q0 + t.
            a.loadQueries(count: count * group) { r in q + (q0 + r % count) * rowWidth + (kvHead * group + r / count) * headDim }
            let range = { (r: Int) -> (Int, Int) in
                let pos = start + q0 + r % count
                return ((window.map { max(0, pos - $0 + 1) } ?? 0) - lo, pos - lo)
            }
            if outer {
                let keysT = transposed.view(head: kvHead, from: lo, length: length)
                a.attendOuter(count: count * group, keysT: keysT.data.assumingMemoryBound(to: Float.self), keyStride: transposed.total,
                              length: length, values: cachedValues + (lo * width + kvHead * headDim) * elementSize,
                              valueStride: width * elementSize, half: kvType == .f16, scale: scale, range: range)
            } else {
                let k = WeightMatrix(dtype: kvType, rows: length, cols: headDim, data: keys + (lo * width + kvHead * headDim) * elementSize)
                a.attend(count: count * group, keys: k, keyStride: width * elementSize,
                         values: transposed.view(head: kvHead, from: lo, length: length), valueStride: transposed.rowStride,
                         scale: scale, range: range)
            }
            for r in 0..<count * group {
                (out + (q0 + r % count) * rowWidth + (kvHead * group + r / count) * headDim).update(from: a.ob + r * headDim, count: headDim)
            }
        }
    }
}

/// Positions per block in `blockAttention` and queries per block in the encoders' attention.
let attentionBlock = 64

/// The values (or keys) of every head over some positions, transposed to f32 `[heads, headDim,
/// total]` (head h's row d holds component d of every position): for the GEMM path, P·V as a
/// GEMM whose "weights" are a head's value rows; for the outer-product kernels, Q·Kᵀ with 16
/// keys' components in one load. Positions outside `positions` are not written.
struct TransposedHeads {
    let data: UnsafeMutablePointer<Float>
    let headDim: Int
    /// Floats per row: the positions' upper bound.
    let total: Int

    /// Value (h, j) is `headDim` elements of `dtype` at `base + j·positionStride + h·headStride`.
    init(dtype: DType, base: UnsafeRawPointer, positionStride: Int, headStride: Int, heads: Int, headDim: Int,
         positions: Range<Int>, pool: ThreadPool?) {
        self.headDim = headDim
        total = positions.upperBound
        data = .allocate(capacity: max(1, heads * headDim * total))
        let chunk = 256
        let chunks = (positions.count + chunk - 1) / chunk
        let (data, total) = (self.data, self.total)
        let body: (Range<Int>) -> Void = { range in
            let row = UnsafeMutablePointer<Float>.allocate(capacity: headDim)
            defer { row.deallocate() }
            for item in range {
                let (h, c) = (item / chunks, item % chunks)
                let out = data + h * headDim * total
                let from = positions.lowerBound + c * chunk
                for j in from..<min(positions.upperBound, from + chunk) {
                    let source = WeightMatrix(dtype: dtype, rows: 1, cols: headDim, data: base + j * positionStride + h * headStride)
                    Kernels.dequantizeRow(source, row: 0, into: row)
                    for d in 0..<headDim { out[d * total + j] = row[d] }
                }
            }
        }
        let items = heads * chunks
        if let pool, items > 1, positions.count * heads * headDim >= 1 << 16 {
            pool.parallelFor(items, grain: 1, body)
        } else {
            body(0..<items)
        }
    }

    /// Bytes between the rows of a `view`.
    var rowStride: Int { total * 4 }

    /// Head `head`'s values of positions `from ..< from + length` as `[headDim, length]` rows
    /// `rowStride` bytes apart.
    func view(head: Int, from: Int, length: Int) -> WeightMatrix {
        WeightMatrix(dtype: .f32, rows: headDim, cols: length, data: data + head * headDim * total + from)
    }

    func deallocate() { data.deallocate() }
}

/// One thread's buffers for attention as matrix products, and the product itself: a block of
/// queries `qb` [count, headDim], scores `sb` [count, length], output `ob` [count, headDim].
struct AttentionBlock {
    let headDim: Int
    let qb, sb, ob: UnsafeMutablePointer<Float>

    init(maxKeys: Int, headDim: Int, maxQueries: Int = attentionBlock) {
        self.headDim = headDim
        qb = .allocate(capacity: maxQueries * headDim)
        sb = .allocate(capacity: maxQueries * maxKeys)
        ob = .allocate(capacity: maxQueries * headDim)
    }

    func deallocate() {
        for p in [qb, sb, ob] { p.deallocate() }
    }

    /// Copies `count` queries (`query(t)` points at query t's headDim values) into `qb`.
    @inline(__always)
    func loadQueries(count: Int, _ query: (Int) -> UnsafePointer<Float>) {
        for t in 0..<count { (qb + t * headDim).update(from: query(t), count: headDim) }
    }

    /// `attend` through the AVX-512 outer-product kernels: `keysT` [headDim, length] rows
    /// `keyStride` floats apart, the value rows in the cache (`valueStride` bytes apart, f16 with
    /// `half`).
    @inline(__always)
    func attendOuter(count: Int, keysT: UnsafePointer<Float>, keyStride: Int, length: Int, values: UnsafeRawPointer, valueStride: Int,
                     half: Bool, scale: Float, range: (Int) -> (first: Int, last: Int)) {
        Kernels.attentionScores(keysT: keysT, keyStride: keyStride, length: length, dim: headDim, q: qb, ldq: headDim,
                                queries: count, s: sb, lds: length)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { inverse in
            normalizeScores(count: count, length: length, scale: scale, inverse: inverse.baseAddress!, range: range)
            Kernels.weightedValues(p: sb, ldp: length, queries: count, length: length, values: values, valueStride: valueStride,
                                   half: half, dim: headDim, out: ob, ldo: headDim)
            for t in 0..<count { Kernels.scale(ob + t * headDim, by: inverse[t], count: headDim) }
        }
    }

    /// Row t of `sb`: exp(scale·s − max) over keys `range(t)`, 0 elsewhere; `inverse[t]` = 1 / Σ.
    @inline(__always)
    func normalizeScores(count: Int, length: Int, scale: Float, inverse: UnsafeMutablePointer<Float>, range: (Int) -> (first: Int, last: Int)) {
        for t in 0..<count {
            let (first, last) = range(t)
            let s = sb + t * length
            inverse[t] = 1 / Kernels.softmaxPart(s + first, count: last - first + 1, scale: scale).sum
            if first > 0 { s.update(repeating: 0, count: first) }
            if last + 1 < length { (s + last + 1).update(repeating: 0, count: length - last - 1) }
        }
    }

    /// `ob` = softmax(scale · `qb`·Kᵀ) · V over keys `range(t)` (first, last; inclusive) of query
    /// t; keys outside it get weight 0. `keys` is [length, headDim] with rows `keyStride` bytes
    /// apart, `values` the transposed values [headDim, length] with rows `valueStride` bytes apart.
    @inline(__always)
    func attend(count: Int, keys: WeightMatrix, keyStride: Int, values: WeightMatrix, valueStride: Int, scale: Float,
                range: (Int) -> (first: Int, last: Int)) {
        let length = keys.rows
        Kernels.gemm(keys, rowStride: keyStride, qb, n: count, sb)
        // Scaling, the maximum and the exponentials in one pass over the scores
        // (`softmaxPart`); the division by the sum is left to the output row, which is headDim
        // values long rather than `length`.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: count) { inverse in
            normalizeScores(count: count, length: length, scale: scale, inverse: inverse.baseAddress!, range: range)
            Kernels.gemm(values, rowStride: valueStride, sb, n: count, ob)
            for t in 0..<count { Kernels.scale(ob + t * headDim, by: inverse[t], count: headDim) }
        }
    }
}

/// Checks that `tokens` can be embedded.
func checkTokens(_ tokens: [Int32], vocabularySize: Int) throws {
    for t in tokens where t < 0 || Int(t) >= vocabularySize {
        throw RuntimeError.tokenOutOfRange(id: t, vocabularySize: vocabularySize)
    }
}

/// Checks a forward call's positions against the cache.
func checkPositions(n: Int, start: Int, cache: KVCache) throws {
    guard n > 0 else { throw RuntimeError.emptyPrompt }
    guard start >= 0, start + n <= cache.capacity else { throw RuntimeError.contextFull(context: cache.capacity) }
}
