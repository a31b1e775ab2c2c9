/// Names of the tensors a family adds to its backbone's (formats/tslm.md, "Tensor naming" and
/// "OpenTSLM"), shared by the converter that writes them and the runtime that reads them.
/// Backbone tensors follow GGUF's names (`token_embd.weight`, `blk.N.attn_q.weight`, …).
public enum TensorNames {
    /// OpenTSLM's time-series parts: everything under `ts.`.
    public enum OpenTSLM {
        public static let prefix = "ts."
        public static let patchEmbedding = "ts.enc.patch_embd.weight"
        public static let positionEmbedding = "ts.enc.pos_embd.weight"
        /// LayerNorm stems (`.weight`, `.bias`).
        public static let inputNorm = "ts.enc.input_norm"
        /// Prefix of encoder layer N: `ts.enc.blk.N.`.
        public static let encoderBlockPrefix = "ts.enc.blk."
        public static func encoderBlock(_ layer: Int) -> String { "\(encoderBlockPrefix)\(layer)." }
        public static let projectorNorm = "ts.proj.norm"
        public static let projectorWeight = "ts.proj.weight"
        public static let projectorBias = "ts.proj.bias"
        public static let perceiverLatents = "ts.perceiver.latents"
        public static let perceiverOutputNorm = "ts.perceiver.output_norm"
        /// Prefix of perceiver layer N: `ts.perceiver.blk.N.`.
        public static let perceiverBlockPrefix = "ts.perceiver.blk."
        public static func perceiverBlock(_ layer: Int) -> String { "\(perceiverBlockPrefix)\(layer)." }
    }

    /// The LSTM forecaster: PyTorch `nn.LSTM` layer k's `weight_ih_lk`, `weight_hh_lk`,
    /// `bias_ih_lk`, `bias_hh_lk` and the linear head.
    public enum LSTM {
        public static let prefix = "lstm."
        public static func block(_ layer: Int) -> String { "lstm.blk.\(layer)." }
        public static let inputWeight = "weight_ih"
        public static let recurrentWeight = "weight_hh"
        public static let inputBias = "bias_ih"
        public static let recurrentBias = "bias_hh"
        public static let headWeight = "lstm.head.weight"
        public static let headBias = "lstm.head.bias"
    }

    /// Time-LLM's parts on top of its truncated backbone.
    public enum TimeLLM {
        public static let prefix = "timellm."
        /// The patch Conv1d [d_model, patch_len, 3] (no bias).
        public static let patchEmbedding = "timellm.patch_embd.weight"
        /// The text prototypes [prototypes, d_llm]: the mapping layer applied to the word
        /// embeddings, precomputed at conversion.
        public static let prototypes = "timellm.prototypes"
        /// Reprogramming projections (stems: `.weight`, `.bias`).
        public static let query = "timellm.reprog.q"
        public static let key = "timellm.reprog.k"
        public static let value = "timellm.reprog.v"
        public static let output = "timellm.reprog.out"
        public static let headWeight = "timellm.head.weight"
        public static let headBias = "timellm.head.bias"
    }
}
