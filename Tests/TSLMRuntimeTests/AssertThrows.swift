import XCTest
import TSLMTestSupport

/// Fails unless `body` throws an error of type `E` for which `check` holds: the shared
/// `TSLMTestSupport.assertThrows`, under the signature this target's tests call.
func assertThrows<E: Error>(_ type: E.Type, _ body: @autoclosure () throws -> Any, file: StaticString = #filePath,
                            line: UInt = #line, _ check: (E) -> Bool) {
    TSLMTestSupport.assertThrows(type, try body(), file: file, line: line, check)
}
