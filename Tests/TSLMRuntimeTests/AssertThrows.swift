import XCTest

/// Fails unless `body` throws an error of type `E` for which `check` holds.
func assertThrows<E: Error>(_ type: E.Type, _ body: @autoclosure () throws -> Any, file: StaticString = #filePath,
                            line: UInt = #line, _ check: (E) -> Bool) {
    do {
        _ = try body()
        XCTFail("expected an error", file: file, line: line)
    } catch let e as E {
        XCTAssertTrue(check(e), "unexpected error: \(e)", file: file, line: line)
    } catch {
        XCTFail("not a \(E.self): \(error)", file: file, line: line)
    }
}
