#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Sampling parameters. Defaults: greedy (temperature 0).
public struct SamplerParams: Sendable, Equatable {
    /// 0 = greedy (argmax); otherwise logits are divided by it.
    public var temperature: Float = 0
    /// Keep the k most likely tokens; 0 = off.
    public var topK: Int = 0
    /// Keep the smallest set whose probability reaches p; 1 = off.
    public var topP: Float = 1
    /// Drop tokens less likely than minP × the most likely one; 0 = off.
    public var minP: Float = 0
    /// Divide positive logits (multiply negative ones) of tokens seen in the last
    /// `repetitionWindow` tokens by this; 1 = off (as Hugging Face's repetition_penalty).
    public var repetitionPenalty: Float = 1
    public var repetitionWindow: Int = 64
    public var seed: UInt64 = 0x5EED

    public init() {}

    /// Throws for values outside their ranges (negative temperature, top-p outside (0, 1], …).
    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw RuntimeError.invalidArgument(name: "temperature", reason: "\(temperature) must be ≥ 0") }
        guard topK >= 0 else { throw RuntimeError.invalidArgument(name: "top-k", reason: "\(topK) must be ≥ 0") }
        guard topP > 0, topP <= 1 else { throw RuntimeError.invalidArgument(name: "top-p", reason: "\(topP) must be in (0, 1]") }
        guard minP >= 0, minP <= 1 else { throw RuntimeError.invalidArgument(name: "min-p", reason: "\(minP) must be in [0, 1]") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw RuntimeError.invalidArgument(name: "repetition penalty", reason: "\(repetitionPenalty) must be > 0")
        }
        guard repetitionWindow >= 0 else { throw RuntimeError.invalidArgument(name: "repetition window", reason: "must be ≥ 0") }
    }
}

/// Picks the next token from logits: penalty → greedy or temperature → top-k → top-p → min-p →
/// draw from a seeded generator (SplitMix64), so equal seeds give equal text.
public struct Sampler: Sendable {
    public let params: SamplerParams
    private var state: UInt64

    public init(_ params: SamplerParams) throws {
        try params.validate()
        self.params = params
        state = params.seed
    }

    mutating func nextUniform() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 24)
    }

    /// Chooses a token. `logits` is modified (penalty, temperature).
    public mutating func sample(_ logits: UnsafeMutableBufferPointer<Float>, history: [Int32]) -> Int32 {
        let p = params
        if p.repetitionPenalty != 1 {
            for t in Set(history.suffix(p.repetitionWindow)) where t >= 0 && Int(t) < logits.count {
                let l = logits[Int(t)]
                logits[Int(t)] = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty
            }
        }
        if p.temperature == 0 { return Int32(argmax(logits)) }
        var candidates: [(id: Int32, logit: Float)] = []
        candidates.reserveCapacity(logits.count)
        for (i, l) in logits.enumerated() where !l.isNaN { candidates.append((Int32(i), l / p.temperature)) }
        guard !candidates.isEmpty else { return 0 }
        candidates.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) }
        if p.topK > 0 && p.topK < candidates.count { candidates.removeSubrange(p.topK...) }
        let maxLogit = candidates[0].logit
        var probs = candidates.map { expf($0.logit - maxLogit) }
        var total = probs.reduce(0, +)
        if p.topP < 1 {
            var acc: Float = 0
            var keep = probs.count
            for (i, q) in probs.enumerated() {
                acc += q / total
                if acc >= p.topP { keep = i + 1; break }
            }
            probs.removeSubrange(keep...)
            candidates.removeSubrange(keep...)
            total = probs.reduce(0, +)
        }
        if p.minP > 0 {
            let threshold = p.minP * probs[0]
            let keep = max(1, probs.firstIndex { $0 < threshold } ?? probs.count)
            probs.removeSubrange(keep...)
            candidates.removeSubrange(keep...)
            total = probs.reduce(0, +)
        }
        var r = nextUniform() * total
        for (i, q) in probs.enumerated() {
            r -= q
            if r < 0 { return candidates[i].id }
        }
        return candidates[candidates.count - 1].id
    }

    /// Index of the largest logit (the first on ties, as torch.argmax); NaN is never chosen.
    public static func argmaxIndex(_ x: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for (i, v) in x.enumerated() where v > bestValue {
            best = i
            bestValue = v
        }
        return best
    }

    func argmax(_ x: UnsafeMutableBufferPointer<Float>) -> Int { Sampler.argmaxIndex(UnsafeBufferPointer(x)) }
}
