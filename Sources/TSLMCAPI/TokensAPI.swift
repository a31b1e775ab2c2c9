import CTSLM
import TSLMRuntime
import TSLMTokenizers

// Tokens and chat templates (tslm.h, "Tokens and chat templates").

@c @implementation
public func tslm_tokenize(_ model: OpaquePointer!, _ text: UnsafePointer<CChar>!, _ addSpecial: Bool, _ parseSpecial: Bool,
                          _ tokens: UnsafeMutablePointer<Int32>!, _ maxTokens: Int, _ outCount: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let m = try TSLMCAPI.model(model)
        let text = try string(text, "text")
        let ids = try m.loaded.tokenizer.encode(text, addSpecial: addSpecial, parseSpecial: parseSpecial)
        outCount?.pointee = ids.count
        guard maxTokens >= ids.count else {
            throw CAPIError(status: TSLM_ERR_BUFFER_TOO_SMALL,
                            message: "buffer too small: the text needs \(ids.count) tokens, max_tokens is \(maxTokens)")
        }
        guard !ids.isEmpty else { return }
        guard let tokens else { throw CAPIError.invalid("tokens", "is NULL but max_tokens is \(maxTokens)") }
        for (i, id) in ids.enumerated() { tokens[i] = id }
    }
}

@c @implementation
public func tslm_detokenize(_ model: OpaquePointer!, _ tokens: UnsafePointer<Int32>!, _ nTokens: Int, _ skipSpecial: Bool,
                            _ buf: UnsafeMutablePointer<CChar>!, _ bufSize: Int, _ outLen: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let m = try TSLMCAPI.model(model)
        guard nTokens >= 0, nTokens <= 1 << 30 else { throw CAPIError.invalid("n_tokens", "\(nTokens) is out of range") }
        var ids: [Int32] = []
        if nTokens > 0 {
            guard let tokens else { throw CAPIError.invalid("tokens", "is NULL but n_tokens is \(nTokens)") }
            ids = Array(UnsafeBufferPointer(start: tokens, count: nTokens))
        }
        let vocab = try m.loaded.tokenizer.vocabularySize
        if let (i, bad) = ids.enumerated().first(where: { $0.element < 0 || Int($0.element) >= vocab }) {
            throw CAPIError.invalid("tokens[\(i)]", "token id \(bad) is out of range (vocabulary size \(vocab))")
        }
        try copyOut(try m.loaded.tokenizer.decode(ids, skipSpecial: skipSpecial), buf, bufSize, outLen)
    }
}

@c @implementation
public func tslm_chat_apply_template(_ model: OpaquePointer!, _ messages: UnsafePointer<tslm_chat_message>!, _ nMessages: Int,
                                     _ buf: UnsafeMutablePointer<CChar>!, _ bufSize: Int, _ outLen: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus {
        let m = try TSLMCAPI.model(model)
        guard nMessages >= 0, nMessages <= 1 << 20 else { throw CAPIError.invalid("n_messages", "\(nMessages) is out of range") }
        var list: [ChatTemplate.Message] = []
        if nMessages > 0 {
            guard let messages else { throw CAPIError.invalid("messages", "is NULL but n_messages is \(nMessages)") }
            for i in 0..<nMessages {
                list.append(ChatTemplate.Message(role: try string(messages[i].role, "messages[\(i)].role"),
                                                 content: try string(messages[i].content, "messages[\(i)].content")))
            }
        }
        try copyOut(m.loaded.renderChat(list).prompt, buf, bufSize, outLen)
    }
}
