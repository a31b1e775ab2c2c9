// XCTest is importable when tests are built (`swift build --build-tests`, `swift test`), not in a
// plain release build (`swift build -c release`, `make release`), which compiles this target too.
#if canImport(XCTest)
import XCTest

/// Fails unless `body` throws an error of type `E` for which `check` holds (a pattern match on
/// the specific case); returns the error for further checks (nil after a failure).
///
///     assertThrows(TSLMError.self, try SafetensorsFile(path: p)) { if case .truncated = $0 { true } else { false } }
@discardableResult
public func assertThrows<E: Error>(_ type: E.Type, _ body: @autoclosure () throws -> Any,
                                   file: StaticString = #filePath, line: UInt = #line,
                                   _ check: (E) -> Bool) -> E? {
    assertThrows(type, "", { try body() }, file: file, line: line, check)
}

/// The same for a block of statements, with `what` naming the case in failure messages.
///
///     assertThrows(TSLMError.self, "bad magic", { _ = try TSLMFile(path: p) }) { $0 == .badMagic(file: p) }
@discardableResult
public func assertThrows<E: Error, T>(_ type: E.Type, _ what: String, _ body: () throws -> T,
                                      file: StaticString = #filePath, line: UInt = #line,
                                      _ check: (E) -> Bool) -> E? {
    let label = what.isEmpty ? "" : "\(what): "
    do {
        _ = try body()
        XCTFail("\(label)expected an error, nothing was thrown", file: file, line: line)
        return nil
    } catch let e as E {
        XCTAssertTrue(check(e), "\(label)unexpected error: \(e)", file: file, line: line)
        return e
    } catch {
        XCTFail("\(label)expected a \(E.self), got \(error)", file: file, line: line)
        return nil
    }
}
#endif
