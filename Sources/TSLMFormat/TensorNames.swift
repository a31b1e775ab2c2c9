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
}
