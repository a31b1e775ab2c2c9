import Foundation
import XCTest
@testable import TSLMRuntime

final class SamplerTests: XCTestCase {
    func sample(_ logits: [Float], _ p: SamplerParams, history: [Int32] = [], draws: Int = 1) throws -> [Int32] {
        var s = try Sampler(p)
        return (0..<draws).map { _ in
            var l = logits
            return l.withUnsafeMutableBufferPointer { s.sample($0, history: history) }
        }
    }

    func testGreedyPicksFirstMaximumAndNeverNaN() throws {
        XCTAssertEqual(try sample([1, 5, 5, 2], SamplerParams()), [1])
        XCTAssertEqual(try sample([.nan, 0, 3, .nan], SamplerParams()), [2])
    }

    func testTopKOneIsGreedy() throws {
        var p = SamplerParams()
        p.temperature = 1.5
        p.topK = 1
        XCTAssertEqual(Set(try sample([0.1, 2, 1.9, -3], p, draws: 50)), [1])
    }

    func testTopPKeepsTheNucleus() throws {
        var p = SamplerParams()
        p.temperature = 1
        p.topP = 0.5
        // Probabilities ≈ [0.64, 0.24, 0.09, 0.03]: top-p 0.5 keeps only the first.
        XCTAssertEqual(Set(try sample([3, 2, 1, 0], p, draws: 100)), [0])
        p.topP = 0.8
        XCTAssertEqual(Set(try sample([3, 2, 1, 0], p, draws: 400)), [0, 1])
    }

    func testMinPDropsUnlikelyTokens() throws {
        var p = SamplerParams()
        p.temperature = 1
        p.minP = 0.2  // e^-2 ≈ 0.135 < 0.2 of the best: index 2 and 3 go
        XCTAssertEqual(Set(try sample([3, 2.5, 1, 0], p, draws: 400)), [0, 1])
    }

    func testTemperatureSamplingFollowsTheDistribution() throws {
        var p = SamplerParams()
        p.temperature = 1
        let draws = try sample([0, logf(3)], p, draws: 4000)  // p = 0.25 / 0.75
        let ones = Float(draws.filter { $0 == 1 }.count) / 4000
        XCTAssertEqual(ones, 0.75, accuracy: 0.03)
    }

    func testSeedMakesSamplingRepeatable() throws {
        var p = SamplerParams()
        p.temperature = 1
        p.seed = 7
        let logits: [Float] = (0..<50).map { Float($0 % 7) }
        XCTAssertEqual(try sample(logits, p, draws: 30), try sample(logits, p, draws: 30))
        var q = p
        q.seed = 8
        XCTAssertNotEqual(try sample(logits, p, draws: 30), try sample(logits, q, draws: 30))
    }

    func testRepetitionPenaltyAsHuggingFace() throws {
        var p = SamplerParams()
        p.repetitionPenalty = 2
        // Token 0 (logit 3 → 1.5) loses to token 1 (2); negative logits are multiplied.
        XCTAssertEqual(try sample([3, 2, -1], p, history: [0]), [1])
        XCTAssertEqual(try sample([-0.5, -0.8, -3], p, history: [0]), [1])  // -0.5 → -1.0 < -0.8
    }

    func testInvalidParamsAreRejected() {
        var p = SamplerParams()
        p.temperature = -1
        XCTAssertThrowsError(try Sampler(p))
        p = SamplerParams(); p.topP = 0
        XCTAssertThrowsError(try Sampler(p))
        p = SamplerParams(); p.topP = 1.5
        XCTAssertThrowsError(try Sampler(p))
        p = SamplerParams(); p.minP = -0.1
        XCTAssertThrowsError(try Sampler(p))
        p = SamplerParams(); p.repetitionPenalty = 0
        XCTAssertThrowsError(try Sampler(p))
        p = SamplerParams(); p.topK = -1
        XCTAssertThrowsError(try Sampler(p))
    }
}

final class ChatTemplateTests: XCTestCase {
    /// SmolLM2's template as its GGUF carries it.
    let smolTemplate = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    func testChatMLWithDefaultSystemMessage() {
        XCTAssertEqual(ChatTemplate.detect(jinja: smolTemplate), .chatml)
        let sys = ChatTemplate.defaultSystemMessage(jinja: smolTemplate)
        XCTAssertEqual(sys, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        let text = ChatTemplate.chatml.render([.init(role: "user", content: "Hi")], defaultSystem: sys)
        XCTAssertEqual(text, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        // An explicit system message replaces the default.
        let own = ChatTemplate.chatml.render([.init(role: "system", content: "Be brief."), .init(role: "user", content: "Hi")], defaultSystem: sys)
        XCTAssertEqual(own, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    func testLlama3AndGemmaAndAlpaca() {
        XCTAssertEqual(ChatTemplate.detect(jinja: "{{ '<|start_header_id|>' + message['role'] }}"), .llama3)
        XCTAssertEqual(ChatTemplate.llama3.render([.init(role: "user", content: "Hi")], bosToken: "<|begin_of_text|>"),
                       "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        XCTAssertEqual(ChatTemplate.detect(jinja: "{{ '<start_of_turn>' + role }}"), .gemma)
        XCTAssertEqual(ChatTemplate.gemma.render([.init(role: "system", content: "S"), .init(role: "user", content: "Hi")], bosToken: "<bos>"),
                       "<bos><start_of_turn>user\nS\n\nHi<end_of_turn>\n<start_of_turn>model\n")
        XCTAssertEqual(ChatTemplate.alpaca.render([.init(role: "user", content: "Q")]), "### Instruction:\nQ\n\n### Response:\n")
        XCTAssertNil(ChatTemplate.detect(jinja: "{{ messages }}"))
        XCTAssertNil(ChatTemplate.detect(jinja: nil))
    }
}
