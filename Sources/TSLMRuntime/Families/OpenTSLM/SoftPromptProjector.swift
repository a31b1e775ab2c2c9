import TSLMFormat
import TSLMKernels

/// OpenTSLM-SoftPrompt's projector (`MLPProjector`): LayerNorm(dim) → Linear(dim → hidden, with
/// bias) → exact GELU (→ Dropout(0)). There is no second linear layer: the soft tokens come
/// straight out of the GELU.
final class SoftPromptProjector {
    let norm: LayerNormWeights
    /// [hidden, dim]
    let weight: WeightMatrix
    /// [hidden]
    let bias: UnsafePointer<Float>
    let dim: Int
    let hidden: Int
    let eps: Float

    init(weights w: ModelWeights, config c: OpenTSLMConfig, hidden: Int) throws {
        dim = c.encoderDim
        self.hidden = hidden
        eps = c.layerNormEpsilon
        norm = try LayerNormWeights(w, TensorNames.OpenTSLM.projectorNorm, count: dim)
        weight = try w.matrix(TensorNames.OpenTSLM.projectorWeight, rows: hidden, cols: dim)
        bias = try w.vector(TensorNames.OpenTSLM.projectorBias, count: hidden)
    }

    /// encoded: [n, dim] → out: [n, hidden] soft tokens.
    func project(_ encoded: UnsafePointer<Float>, count n: Int, into out: UnsafeMutablePointer<Float>, pool: ThreadPool?) {
        let normed = FloatBuffer(n * dim)
        norm.apply(encoded, rows: n, eps: eps, out: normed.pointer)
        linear(weight, normed.pointer, n: n, out, bias: bias, pool: pool)
        Kernels.geluErf(out, count: n * hidden)
    }
}
