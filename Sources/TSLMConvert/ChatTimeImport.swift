import TSLMFormat

/// ChatTime checkpoints (Hugging Face folders of ChengsenWang/ChatTime-1-7B-*, or GGUF builds of
/// them) are Llama models whose vocabulary has ChatTime's value tokens. The converter recognizes
/// them by those tokens and writes `general.family` = `chattime` with the official inference
/// settings (formats/tslm.md, "ChatTime"); the runtime checks all 10,001 tokens when it loads.
public enum ChatTimeImport {
    /// Whether the tokenizer vocabulary in `metadata` has `###Nan###` and the first and last
    /// value tokens.
    public static func hasValueTokens(_ metadata: Metadata) -> Bool {
        guard case let .array(.string(tokens))? = metadata["tokenizer.tokens"] ?? metadata["tokenizer.ggml.tokens"] else {
            return false
        }
        var needed: Set<String> = ["###Nan###", "###-0.9999###", "###0.9999###"]
        for t in tokens where t.utf8.first == UInt8(ascii: "#") {
            needed.remove(t)
            if needed.isEmpty { return true }
        }
        return false
    }

    /// The official inference settings (chat-time 0.3.0 `ChatTime.__init__`).
    public static let defaults: [(String, MetadataValue)] = [
        (MetadataKeys.ChatTime.maxChunk, .u32(16)),
        (MetadataKeys.ChatTime.samples, .u32(8)),
        (MetadataKeys.ChatTime.topK, .u32(100)),
        (MetadataKeys.ChatTime.temperature, .f32(1)),
        (MetadataKeys.ChatTime.answerTokens, .u32(16)),
    ]
}
