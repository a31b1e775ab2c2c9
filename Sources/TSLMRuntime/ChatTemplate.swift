import TSLMFormat
import TSLMTokenizers

/// Chat templates of the models we ship, implemented by name (no Jinja interpreter): the
/// template is chosen from the file's `tokenizer.chat_template` text.
public enum ChatTemplate: String, Sendable, CaseIterable {
    case chatml, llama3, gemma, alpaca

    public struct Message: Sendable, Equatable {
        public var role: String
        public var content: String
        public init(role: String, content: String) {
            self.role = role
            self.content = content
        }
    }

    /// Recognizes the template family from its Jinja text.
    public static func detect(jinja: String?) -> ChatTemplate? {
        guard let t = jinja else { return nil }
        if t.contains("<|im_start|>") { return .chatml }
        if t.contains("<|start_header_id|>") { return .llama3 }
        if t.contains("<start_of_turn>") { return .gemma }
        if t.contains("### Instruction") { return .alpaca }
        return nil
    }

    /// The default system message a ChatML template inserts when the conversation has none
    /// (SmolLM2's does: "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
    public static func defaultSystemMessage(jinja: String) -> String? {
        for marker in ["<|im_start|>system\\n", "<|im_start|>system\n"] {
            guard let r = jinja.firstRange(of: marker) else { continue }
            let rest = jinja[r.upperBound...]
            guard let end = rest.firstRange(of: "<|im_end|>") else { continue }
            let text = String(rest[..<end.lowerBound])
            if text.contains("{{") || text.contains("{%") { continue }
            return text
        }
        return nil
    }

    /// Renders messages and the assistant prefix that starts the reply.
    public func render(_ messages: [Message], defaultSystem: String? = nil, bosToken: String = "") -> String {
        var s = ""
        switch self {
        case .chatml:
            if let sys = defaultSystem, messages.first?.role != "system" {
                s += "<|im_start|>system\n\(sys)<|im_end|>\n"
            }
            for m in messages { s += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            s += "<|im_start|>assistant\n"
        case .llama3:
            s += bosToken
            for m in messages { s += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content)<|eot_id|>" }
            s += "<|start_header_id|>assistant<|end_header_id|>\n\n"
        case .gemma:
            s += bosToken
            var pendingSystem = ""
            for m in messages {
                if m.role == "system" { pendingSystem = m.content + "\n\n"; continue }
                let role = m.role == "assistant" ? "model" : m.role
                s += "<start_of_turn>\(role)\n\(pendingSystem)\(m.content)<end_of_turn>\n"
                pendingSystem = ""
            }
            s += "<start_of_turn>model\n"
        case .alpaca:
            for m in messages {
                switch m.role {
                case "system": s += m.content + "\n\n"
                case "assistant": s += "### Response:\n\(m.content)\n\n"
                default: s += "### Instruction:\n\(m.content)\n\n"
                }
            }
            s += "### Response:\n"
        }
        return s
    }

    /// Text that ends an assistant turn (a stop string besides EOS).
    public var endOfTurn: String? {
        switch self {
        case .chatml: "<|im_end|>"
        case .llama3: "<|eot_id|>"
        case .gemma: "<end_of_turn>"
        case .alpaca: nil
        }
    }
}

extension LoadedModel {
    /// Renders `messages` with the model's chat template, as the model's own template would:
    /// with its default system message (ChatML) and its BOS text where the template writes one.
    /// Tokenize the result without adding BOS again. Also returns the end-of-turn stop string.
    public func renderChat(_ messages: [ChatTemplate.Message]) throws -> (prompt: String, endOfTurn: String?) {
        guard let template = chatTemplate else { throw RuntimeError.noChatTemplate }
        for (i, m) in messages.enumerated() where !["system", "user", "assistant"].contains(m.role) {
            throw RuntimeError.invalidArgument(name: "messages[\(i)].role", reason: "'\(m.role)' is not system, user or assistant")
        }
        let jinja = file.metadata.string("tokenizer.chat_template") ?? ""
        let tokenizer = try self.tokenizer
        let bos = tokenizer.bosID.flatMap { tokenizer.piece($0) } ?? ""
        let prompt = template.render(messages, defaultSystem: ChatTemplate.defaultSystemMessage(jinja: jinja), bosToken: bos)
        return (prompt, template.endOfTurn)
    }
}
