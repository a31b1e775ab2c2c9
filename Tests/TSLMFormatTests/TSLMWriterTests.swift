import XCTest
@testable import TSLMFormat
import TSLMTestSupport

/// Writer argument checks and atomicity: the destination is either the old file or the new
/// complete one, and no temporary file is left behind.
final class TSLMWriterTests: XCTestCase {
    var dir: URL!
    var dest: String { dir.appendingPathComponent("model.tslm").path }
    let oldContent = Array("the previous file, which must survive".utf8)

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
        try Data(oldContent).write(to: URL(fileURLWithPath: dest))
    }

    func directoryListing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    }

    func assertDestinationUntouched(file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: dest))), oldContent, "destination changed", file: file, line: line)
        XCTAssertEqual(try directoryListing(), ["model.tslm"], "temporary files left behind", file: file, line: line)
    }

    func addSmall(_ w: TSLMWriter, _ name: String = "x") throws {
        try [UInt8](repeating: 1, count: 16).withUnsafeBytes { try w.addTensor(name: name, dtype: .f32, shape: [4], data: $0) }
    }

    func testTemporaryFileIsNextToTheDestination() throws {
        let w = try TSLMWriter(path: dest)
        try addSmall(w)
        let listing = try directoryListing()
        XCTAssertEqual(listing.count, 2)
        XCTAssertTrue(listing.contains { $0.hasPrefix("model.tslm.tmp-") }, "\(listing)")
        w.abort()
        try assertDestinationUntouched()
    }

    func testDroppedWriterLeavesDestinationUntouched() throws {
        do {
            let w = try TSLMWriter(path: dest)
            try addSmall(w)
            try addSmall(w, "y")
        }
        try assertDestinationUntouched()
    }

    func testThrowingAddTensorLeavesDestinationUntouched() throws {
        let bad: [(String, (TSLMWriter) throws -> Void, (TSLMError) -> Bool)] = [
            ("size mismatch", { w in
                try [UInt8](repeating: 0, count: 15).withUnsafeBytes { try w.addTensor(name: "s", dtype: .f32, shape: [4], data: $0) }
            }, { if case .sizeMismatch(_, "s", 16, 15) = $0 { return true } else { return false } }),
            ("duplicate name", { w in try self.addSmall(w, "x") },
             { if case .duplicateTensor(_, "x") = $0 { return true } else { return false } }),
            ("negative dimension", { w in
                try [UInt8]().withUnsafeBytes { try w.addTensor(name: "n", dtype: .f32, shape: [-1, 4], data: $0) }
            }, { if case .invalidShape(_, "n", [-1, 4], _) = $0 { return true } else { return false } }),
            ("nine dimensions", { w in
                try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try w.addTensor(name: "d", dtype: .f32, shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], data: $0) }
            }, { if case .invalidShape = $0 { return true } else { return false } }),
            ("q8_0 row not a multiple of 32", { w in
                try [UInt8](repeating: 0, count: 34).withUnsafeBytes { try w.addTensor(name: "q", dtype: .q8_0, shape: [1, 30], data: $0) }
            }, { if case .invalidShape(_, "q", [1, 30], _) = $0 { return true } else { return false } }),
            ("overflowing shape", { w in
                try [UInt8]().withUnsafeBytes { try w.addTensor(name: "o", dtype: .f32, shape: [Int.max, 2], data: $0) }
            }, { if case .sizeOverflow = $0 { return true } else { return false } }),
            ("empty name", { w in
                try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try w.addTensor(name: "", dtype: .f32, shape: [], data: $0) }
            }, { if case .invalidArgument = $0 { return true } else { return false } }),
            ("257-byte name", { w in
                try [UInt8](repeating: 0, count: 4).withUnsafeBytes { try w.addTensor(name: String(repeating: "n", count: 257), dtype: .f32, shape: [], data: $0) }
            }, { if case .invalidArgument = $0 { return true } else { return false } }),
        ]
        for (what, op, matches) in bad {
            do {
                let w = try TSLMWriter(path: dest)
                try addSmall(w, "x")
                assertThrows(TSLMError.self, what, { try op(w) }, matches)
                // The writer stays usable after a rejected tensor; the bad one left no trace.
                XCTAssertEqual(w.entries.map(\.name), ["x"], what)
            }
            try assertDestinationUntouched()
        }
    }

    func testRejectedTensorLeavesNoTraceInTheFile() throws {
        let w = try TSLMWriter(path: dest)
        try addSmall(w, "x")
        XCTAssertThrowsError(try [UInt8](repeating: 0, count: 15).withUnsafeBytes { try w.addTensor(name: "s", dtype: .f32, shape: [4], data: $0) })
        try addSmall(w, "y")
        try w.finish()
        let f = try TSLMFile(path: dest)
        XCTAssertEqual(f.tensors.map(\.name), ["x", "y"])
        XCTAssertEqual(f.entry("y")?.offset, 128)
        try f.verify()
    }

    func testThrowingFinishLeavesDestinationUntouched() throws {
        do {
            var md = Metadata()
            md["general.architecture"] = .string("raw")
            md["Not A Key"] = .u8(1)
            let w = try TSLMWriter(path: dest, metadata: md)
            try addSmall(w)
            assertThrows(TSLMError.self, "finish with an invalid key", { try w.finish() }) {
                if case .invalidArgument(_, let reason) = $0 { return reason.contains("Not A Key") } else { return false }
            }
            // A failed finish ends the writer: further tensors are refused.
            assertThrows(TSLMError.self, "addTensor after a failed finish", { try self.addSmall(w, "z") }) {
                if case .invalidArgument = $0 { return true } else { return false }
            }
        }
        try assertDestinationUntouched()
    }

    func testMetadataCanChangeUntilFinish() throws {
        let w = try TSLMWriter(path: dest)
        try addSmall(w)
        w.metadata["general.name"] = .string("late")
        try w.finish()
        XCTAssertEqual(try TSLMFile(path: dest).metadata.string("general.name"), "late")
    }

    func testFinishReplacesAtomically() throws {
        // Until finish() the old file is in place, readable and unchanged; after it, the new one.
        let w = try TSLMWriter(path: dest)
        try addSmall(w)
        XCTAssertEqual([UInt8](try Data(contentsOf: URL(fileURLWithPath: dest))), oldContent)
        let before = try FileManager.default.attributesOfItem(atPath: dest)[.systemFileNumber] as? Int
        // An open descriptor of the old file keeps seeing the old bytes after the rename
        // (a replacement by rename, not a rewrite in place).
        let oldHandle = try FileHandle(forReadingFrom: URL(fileURLWithPath: dest))
        try w.finish()
        let after = try FileManager.default.attributesOfItem(atPath: dest)[.systemFileNumber] as? Int
        XCTAssertNotEqual(before, after, "the destination must be a new inode (rename), not rewritten")
        XCTAssertEqual([UInt8](oldHandle.readDataToEndOfFile()), oldContent)
        try oldHandle.close()
        XCTAssertEqual(try TSLMFile(path: dest).tensors.map(\.name), ["x"])
        XCTAssertEqual(try directoryListing(), ["model.tslm"])
        // finish() twice is harmless; addTensor afterwards is refused.
        XCTAssertNoThrow(try w.finish())
        assertThrows(TSLMError.self, "addTensor after finish", { try self.addSmall(w, "late") }) {
            if case .invalidArgument = $0 { return true } else { return false }
        }
    }

    func testNewDestinationIsCreated() throws {
        let fresh = dir.appendingPathComponent("new.tslm").path
        let w = try TSLMWriter(path: fresh)
        try addSmall(w)
        try w.finish()
        XCTAssertNoThrow(try TSLMFile(path: fresh).verify())
        XCTAssertEqual(try directoryListing(), ["model.tslm", "new.tslm"])
    }

    func testFinishedFileHasOrdinaryPermissions() throws {
        // The output is an ordinary file (0666 & ~umask), not mkstemp's private 0600.
        let fresh = dir.appendingPathComponent("perm.tslm").path
        let w = try TSLMWriter(path: fresh)
        try w.finish()
        let mask = umask(0)
        umask(mask)
        let perms = try FileManager.default.attributesOfItem(atPath: fresh)[.posixPermissions] as? Int
        XCTAssertEqual(perms, 0o666 & ~Int(mask))
    }

    func testUnwritableDirectoryThrowsIO() {
        assertThrows(TSLMError.self, "missing directory", { try TSLMWriter(path: self.dir.appendingPathComponent("no/such/dir/m.tslm").path) }) {
            if case .io(_, _, let errno) = $0 { return errno == ENOENT } else { return false }
        }
    }
}
