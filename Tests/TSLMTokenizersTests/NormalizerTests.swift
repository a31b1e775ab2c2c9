import XCTest
import TSLMFormat
@testable import TSLMTokenizers

/// The normalizer steps the runtime implements without Foundation: NFC through the standard
/// library's tables, lowercasing; the forms no supported tokenizer uses are refused at load.
final class NormalizerTests: XCTestCase {
    func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    func testNFCComposes() {
        XCTAssertEqual(NormalizerStep.nfc.apply(scalars("e\u{301}te\u{301}")), scalars("\u{E9}t\u{E9}"))
        XCTAssertEqual(NormalizerStep.nfc.apply(scalars("\u{212B}")), scalars("\u{C5}"), "Angstrom sign → Å (canonical singleton)")
        XCTAssertEqual(NormalizerStep.nfc.apply(scalars("\u{1100}\u{1161}")), scalars("\u{AC00}"), "Hangul jamo compose")
        XCTAssertEqual(NormalizerStep.nfc.apply(scalars("q\u{307}\u{323}")), scalars("q\u{323}\u{307}"), "combining marks reordered")
        XCTAssertEqual(NormalizerStep.nfc.apply(scalars("ﬁ")), scalars("ﬁ"), "NFC keeps compatibility ligatures")
        XCTAssertEqual(NormalizerStep.nfc.apply([]), [])
    }

    func testLowercase() {
        XCTAssertEqual(NormalizerStep.lowercase.apply(scalars("ÀB Σ")), scalars("àb σ"))
    }

    func testDecomposingAndCompatibilityFormsAreRefusedAtLoad() throws {
        for form in ["NFD", "NFKC", "NFKD"] {
            let json = #"{"type": "\#(form)"}"#
            let root = try JSONValue.parse(Array(json.utf8))
            let members = try XCTUnwrap(root.objectValue)
            XCTAssertThrowsError(try HuggingFaceJSON.normalizer(members), form) { e in
                guard case .unsupported = e as? TokenizerError else { return XCTFail("\(e)") }
            }
        }
    }
}
