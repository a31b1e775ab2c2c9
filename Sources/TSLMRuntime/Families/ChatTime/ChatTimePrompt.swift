/// ChatTime's prompts, byte for byte as the official code builds them (chat-time 0.3.0,
/// `utils/prompt.py`, `getPrompt`): an Alpaca-style template whose input is the series text.
/// The tokenizer adds BOS (the slow LlamaTokenizer does).
public enum ChatTimePrompt {
    static let forecastSystem = "You are a helpful assistant that performs time series prediction. The user will provide a sequence and you will predict the sequence."
    static let analysisSystem = "You are a helpful assistant that performs time series analysis. The user will provide a sequence and you will respond to the questions based on this sequence."
    static let forecastInstruction = "Please predict the following sequence carefully."
    static let forecastInstructionWithContext = "Please predict the following sequence carefully. Context knowledge you may consider: "
    static let analysisInstruction = "Please answer the following question carefully after analyzing the sequence: "

    /// The marker the answer follows; the official code keeps what comes after its first
    /// occurrence up to the next.
    public static let responseMarker = "### Response:\n"

    /// The template with an empty response.
    static func template(system: String, instruction: String, input: String) -> String {
        system + "\n\n### Instruction:\n" + instruction + "\n\n### Input:\n" + input + "\n\n" + responseMarker
    }

    /// The forecast prompt for a series text, with optional context knowledge.
    public static func forecast(series: String, context: String? = nil) -> String {
        template(system: forecastSystem,
                 instruction: context.map { forecastInstructionWithContext + $0 } ?? forecastInstruction,
                 input: series)
    }

    /// The analysis prompt for a series text and a question.
    public static func analysis(series: String, question: String) -> String {
        template(system: analysisSystem, instruction: analysisInstruction + question, input: series)
    }

    /// The answer part of a generated text as the official code takes it: the prompt and the
    /// continuation joined, split at `### Response:\n`, the second piece.
    public static func response(prompt: String, continuation: String) -> String {
        let full = Array((prompt + continuation).utf8)
        let marker = Array(responseMarker.utf8)
        var pieces: [Range<Int>] = []
        var start = 0, i = 0
        while i + marker.count <= full.count {
            if full[i..<(i + marker.count)].elementsEqual(marker) {
                pieces.append(start..<i)
                i += marker.count
                start = i
            } else {
                i += 1
            }
        }
        pieces.append(start..<full.count)
        guard pieces.count > 1 else { return "" }
        return String(decoding: full[pieces[1]], as: UTF8.self)
    }

    /// The analysis answer of one sampled text: the text up to its first ".", then the first
    /// `(a)`, `(b)` or `(c)` in it; nil when there is none.
    public static func choice(in response: String) -> String? {
        let u = Array(response.utf8)
        let cut = u.firstIndex(of: UInt8(ascii: ".")) ?? u.count
        var i = 0
        while i + 3 <= cut {
            if u[i] == UInt8(ascii: "("), u[i + 2] == UInt8(ascii: ")"),
               let c = [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "c")].first(where: { $0 == u[i + 1] }) {
                return "(" + String(UnicodeScalar(c)) + ")"
            }
            i += 1
        }
        return nil
    }

    /// The majority of `answers` (Python's `statistics.mode`: ties go to the first seen).
    public static func vote(_ answers: [String]) -> String? {
        var counts: [String: Int] = [:]
        var order: [String] = []
        for a in answers {
            if counts[a] == nil { order.append(a) }
            counts[a, default: 0] += 1
        }
        var best: String? = nil
        for a in order where best == nil || counts[a]! > counts[best!]! { best = a }
        return best
    }
}
