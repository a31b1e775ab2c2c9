import CTSLM
import TSLMRuntime
import TSLMTokenizers

// Tokens and chat templates (tslm.h, "Tokens and chat templates").

@c @implementation
public func tslm_tokenize(_ model: OpaquePointer!, _ text: UnsafePointer<CChar>!, _ addSpecial: Bool, _ parseSpecial: Bool,
                          _ tokens: UnsafeMutablePointer<Int32>!, _ maxTokens: Int, _ outCount: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus { try tokenize(model, try string(text, "text"), addSpecial, parseSpecial, tokens, maxTokens, outCount) }
}

@c @implementation
public func tslm_tokenize_n(_ model: OpaquePointer!, _ text: UnsafePointer<CChar>!, _ textLen: Int, _ addSpecial: Bool,
                            _ parseSpecial: Bool, _ tokens: UnsafeMutablePointer<Int32>!, _ maxTokens: Int,
                            _ outCount: UnsafeMutablePointer<Int>!) -> Int32 {
    withStatus { try tokenize(model, try string(text, length: textLen, "text"), addSpecial, parseSpecial, tokens, maxTokens, outCount) }
}

/// Both tokenize calls once the text is read.
func tokenize(_ model: OpaquePointer?, _ text: String, _ addSpecial: Bool, _ parseSpecial: Bool,
              _ tokens: UnsafeMutablePointer<Int32>?, _ maxTokens: Int, _ outCount: UnsafeMutablePointer<Int>?) throws {
    let m = try TSLMCAPI.model(model)
    let ids = try m.loaded.tokenizer.encode(text, addSpecial: addSpecial, parseSpecial: parseSpecial)
    try copyOut(ids, tokens, maxTokens, outCount, what: "the text needs \(ids.count) tokens")
}

/// Copies `values` into a caller's array under the (buf, max, out_count) convention: *out_count
/// = values needed; too small an array writes nothing (TSLM_ERR_BUFFER_TOO_SMALL).
func copyOut<T>(_ values: [T], _ out: UnsafeMutablePointer<T>?, _ max: Int, _ outCount: UnsafeMutablePointer<Int>?, what: String) throws {
    outCount?.pointee = values.count
    guard max >= values.count else {
        throw CAPIError(status: TSLM_ERR_BUFFER_TOO_SMALL, message: "buffer too small: \(what), the buffer holds \(max)")
    }
    guard !values.isEmpty else { return }
    guard let out else { throw CAPIError.invalid("buffer", "is NULL but its size is \(max)") }
    for (i, v) in values.enumerated() { out[i] = v }
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
