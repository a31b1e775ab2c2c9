import TSLMFormat

/// One file inside a zip archive, as its central directory describes it, with the position of
/// its data already resolved through the entry's local header.
public struct ZipEntry: Sendable, Equatable {
    /// The entry's path inside the archive (`archive/data.pkl`).
    public let name: String
    /// The compression method: 0 = stored, 8 = deflate, …
    public let method: UInt16
    /// The general-purpose flags (bit 0: encrypted).
    public let flags: UInt16
    /// Size of the entry's data as stored in the archive.
    public let compressedSize: UInt64
    /// Size of the entry's data after decompression.
    public let uncompressedSize: UInt64
    /// Offset of the entry's local header in the archive.
    public let localHeaderOffset: UInt64
    /// Offset of the entry's first data byte in the archive (past the local header).
    public let dataOffset: UInt64

    /// True when the data is stored uncompressed.
    public var isStored: Bool { method == 0 }
}

/// A read-only reader of a zip archive's central directory (including ZIP64 archives and
/// entries larger than 4 GiB).
///
/// Only the directory and the local headers are read; entry data is read on demand through a
/// `FileReader`. Every offset and size is validated against the real file size before it is
/// used, so a damaged archive produces a `TSLMError` rather than an out-of-range read. Entry
/// data can only be read from stored (uncompressed) entries, which is what `torch.save` writes.
public struct ZipArchive: Sendable {
    /// The path of the archive, as the user gave it.
    public let path: String
    /// The archive's size in bytes.
    public let fileSize: UInt64
    /// The entries in central-directory order.
    public let entries: [ZipEntry]
    private let byName: [String: Int]

    private static let eocdSignature: UInt32 = 0x0605_4b50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    private static let zip64EOCDSignature: UInt32 = 0x0606_4b50
    private static let centralSignature: UInt32 = 0x0201_4b50
    private static let localSignature: UInt32 = 0x0403_4b50

    /// Reads the central directory of the archive `reader` reads.
    public init(reader: FileReader) throws {
        path = reader.path
        fileSize = reader.size
        let file = reader.path

        // 1. The end-of-central-directory record: 22 bytes plus a comment of up to 65535 bytes.
        let tailCount = Int(min(fileSize, 22 + 65_535))
        guard tailCount >= 22 else {
            throw TSLMError.truncated(file: file, what: "zip end-of-central-directory record")
        }
        let tailStart = fileSize - UInt64(tailCount)
        let tail = try Self.bytes(reader, offset: tailStart, count: tailCount, what: "zip end-of-central-directory record")
        guard let eocdPos = Self.findEOCD(tail) else {
            throw TSLMError.truncated(file: file, what: "zip end-of-central-directory record (none found)")
        }
        let eocdOffset = tailStart + UInt64(eocdPos)
        var eocd = try Self.cursor(tail, from: eocdPos, file: file)
        _ = try eocd.u32("zip end-of-central-directory signature")
        let disk = try eocd.u16("zip disk number")
        let cdDisk = try eocd.u16("zip central-directory disk")
        let entriesOnDisk16 = try eocd.u16("zip entry count on disk")
        let totalEntries16 = try eocd.u16("zip entry count")
        let cdSize32 = try eocd.u32("zip central-directory size")
        let cdOffset32 = try eocd.u32("zip central-directory offset")

        var totalEntries = UInt64(totalEntries16)
        var entriesOnDisk = UInt64(entriesOnDisk16)
        var cdSize = UInt64(cdSize32)
        var cdOffset = UInt64(cdOffset32)
        var diskNumber = UInt32(disk)
        var cdDiskNumber = UInt32(cdDisk)
        // The central directory must end before this offset (the zip64 record or the EOCD).
        var cdLimit = eocdOffset

        // 2. ZIP64: a locator right before the EOCD points at the zip64 EOCD record.
        if eocdOffset >= 20 {
            let loc = try Self.bytes(reader, offset: eocdOffset - 20, count: 20, what: "zip64 end-of-central-directory locator")
            var lc = try Self.cursor(loc, from: 0, file: file)
            if try lc.u32("zip64 locator signature") == Self.zip64LocatorSignature {
                _ = try lc.u32("zip64 locator disk")
                let recordOffset = try lc.u64("zip64 end-of-central-directory offset")
                guard recordOffset <= eocdOffset - 20, eocdOffset - 20 - recordOffset >= 56 else {
                    throw TSLMError.malformed(file: file, reason: "zip64 end-of-central-directory record offset \(recordOffset) is not before its locator at \(eocdOffset - 20)")
                }
                let rec = try Self.bytes(reader, offset: recordOffset, count: 56, what: "zip64 end-of-central-directory record")
                var rc = try Self.cursor(rec, from: 0, file: file)
                guard try rc.u32("zip64 end-of-central-directory signature") == Self.zip64EOCDSignature else {
                    throw TSLMError.malformed(file: file, reason: "no zip64 end-of-central-directory record at offset \(recordOffset)")
                }
                _ = try rc.u64("zip64 record size")
                _ = try rc.u16("zip64 version made by")
                _ = try rc.u16("zip64 version needed")
                diskNumber = try rc.u32("zip64 disk number")
                cdDiskNumber = try rc.u32("zip64 central-directory disk")
                entriesOnDisk = try rc.u64("zip64 entry count on disk")
                totalEntries = try rc.u64("zip64 entry count")
                cdSize = try rc.u64("zip64 central-directory size")
                cdOffset = try rc.u64("zip64 central-directory offset")
                cdLimit = recordOffset
            }
        }
        guard diskNumber == 0, cdDiskNumber == 0, entriesOnDisk == totalEntries else {
            throw TSLMError.malformed(file: file, reason: "multi-disk (split) zip archives are not supported")
        }

        // 3. The central directory itself.
        let (cdEnd, cdOverflow) = cdOffset.addingReportingOverflow(cdSize)
        guard !cdOverflow, cdEnd <= cdLimit else {
            throw TSLMError.malformed(file: file, reason: "zip central directory [\(cdOffset), +\(cdSize)) extends past its end record at \(cdLimit)")
        }
        // Each central-directory header is at least 46 bytes: bound the count before allocating.
        guard totalEntries <= cdSize / 46 else {
            throw TSLMError.malformed(file: file, reason: "zip declares \(totalEntries) entries but its central directory has only \(cdSize) bytes")
        }
        let cd = try Self.bytes(reader, offset: cdOffset, count: Int(cdSize), what: "zip central directory")
        var entries: [ZipEntry] = []
        entries.reserveCapacity(Int(totalEntries))
        var byName: [String: Int] = [:]
        var c = LECursor(bytes: cd[...], file: file)
        for i in 0..<Int(totalEntries) {
            let e = try Self.parseCentralHeader(&c, index: i, reader: reader, entriesEnd: cdOffset)
            guard byName[e.name] == nil else {
                throw TSLMError.malformed(file: file, reason: "zip has two entries named '\(e.name)'")
            }
            byName[e.name] = entries.count
            entries.append(e)
        }
        self.entries = entries
        self.byName = byName
    }

    /// The entry named `name`, if any.
    public func entry(named name: String) -> ZipEntry? {
        byName[name].map { entries[$0] }
    }

    /// The absolute file range of a stored entry's data; throws for compressed or encrypted
    /// entries, whose bytes cannot be used as they are.
    public func storedRange(of entry: ZipEntry) throws -> (offset: UInt64, count: UInt64) {
        guard entry.flags & 1 == 0 else {
            throw TSLMError.malformed(file: path, reason: "zip entry '\(entry.name)' is encrypted")
        }
        guard entry.isStored else {
            let kind = entry.method == 8 ? "deflate" : "method \(entry.method)"
            throw TSLMError.malformed(file: path, reason: "zip entry '\(entry.name)' is compressed (\(kind)); PyTorch checkpoints store their entries uncompressed, so re-save the file with torch.save instead of re-zipping it")
        }
        guard entry.compressedSize == entry.uncompressedSize else {
            throw TSLMError.malformed(file: path, reason: "stored zip entry '\(entry.name)' has compressed size \(entry.compressedSize) but uncompressed size \(entry.uncompressedSize)")
        }
        return (entry.dataOffset, entry.compressedSize)
    }

    /// Reads a whole stored entry into memory (for small entries such as `data.pkl`).
    public func readStored(_ entry: ZipEntry, reader: FileReader) throws -> [UInt8] {
        let (offset, count) = try storedRange(of: entry)
        guard count <= UInt64(Int.max) else {
            throw TSLMError.sizeOverflow(file: path, tensor: entry.name, shape: [count])
        }
        return try Self.bytes(reader, offset: offset, count: Int(count), what: "zip entry '\(entry.name)'")
    }

    // MARK: - Parsing helpers

    private static func parseCentralHeader(_ c: inout LECursor, index: Int, reader: FileReader,
                                           entriesEnd: UInt64) throws -> ZipEntry {
        let file = reader.path
        let what = "zip central-directory entry \(index)"
        guard try c.u32(what) == centralSignature else {
            throw TSLMError.malformed(file: file, reason: "\(what) has a bad signature (at central-directory byte \(c.offset - 4))")
        }
        _ = try c.u16(what)  // version made by
        _ = try c.u16(what)  // version needed
        let flags = try c.u16(what)
        let method = try c.u16(what)
        _ = try c.u32(what)  // time, date
        _ = try c.u32(what)  // crc-32
        let csize32 = try c.u32(what)
        let usize32 = try c.u32(what)
        let nameLength = Int(try c.u16(what))
        let extraLength = Int(try c.u16(what))
        let commentLength = Int(try c.u16(what))
        let disk16 = try c.u16(what)
        _ = try c.u16(what)  // internal attributes
        _ = try c.u32(what)  // external attributes
        let offset32 = try c.u32(what)
        let nameBytes = try c.slice(nameLength, what + " name")
        guard let name = String(validating: nameBytes, as: UTF8.self) else {
            throw TSLMError.invalidUTF8(file: file, context: "name of \(what)")
        }
        let extra = try c.slice(extraLength, what + " extra field")
        try c.skip(commentLength, what + " comment")

        var usize = UInt64(usize32)
        var csize = UInt64(csize32)
        var offset = UInt64(offset32)
        var disk = UInt32(disk16)
        // The ZIP64 extra field (id 1) holds, in order, each of these whose 32/16-bit field is
        // saturated.
        var ec = LECursor(bytes: extra, file: file)
        while ec.remaining >= 4 {
            let id = try ec.u16(what + " extra field id")
            let size = Int(try ec.u16(what + " extra field size"))
            var body = LECursor(bytes: try ec.slice(size, "zip entry '\(name)' extra field"), file: file)
            guard id == 1 else { continue }
            let w = "zip entry '\(name)' zip64 extra field"
            if usize32 == 0xFFFF_FFFF { usize = try body.u64(w) }
            if csize32 == 0xFFFF_FFFF { csize = try body.u64(w) }
            if offset32 == 0xFFFF_FFFF { offset = try body.u64(w) }
            if disk16 == 0xFFFF { disk = try body.u32(w) }
        }
        guard disk == 0 else {
            throw TSLMError.malformed(file: file, reason: "zip entry '\(name)' lies on disk \(disk) of a split archive")
        }

        // The local header: 30 bytes, then its own name and extra field (whose length may
        // differ from the central one, e.g. alignment padding).
        guard offset < entriesEnd, entriesEnd - offset >= 30 else {
            throw TSLMError.malformed(file: file, reason: "zip entry '\(name)' local header offset \(offset) lies past the entries' end at \(entriesEnd)")
        }
        let local = try bytes(reader, offset: offset, count: 30, what: "local header of zip entry '\(name)'")
        var lc = try cursor(local, from: 0, file: file)
        guard try lc.u32("local header") == localSignature else {
            throw TSLMError.malformed(file: file, reason: "zip entry '\(name)' has no local header at offset \(offset)")
        }
        try lc.skip(22, "local header")
        let localName = UInt64(try lc.u16("local header name length"))
        let localExtra = UInt64(try lc.u16("local header extra length"))
        let dataOffset = offset + 30 + localName + localExtra  // cannot overflow: offset < entriesEnd
        guard localName == UInt64(nameLength) else {
            throw TSLMError.malformed(file: file, reason: "zip entry '\(name)': local header name length \(localName) differs from the central directory's \(nameLength)")
        }
        if localName > 0 {
            guard dataOffset <= entriesEnd else {
                throw TSLMError.malformed(file: file, reason: "zip entry '\(name)' local header extends past the entries' end")
            }
            let ln = try bytes(reader, offset: offset + 30, count: Int(localName), what: "local name of zip entry '\(name)'")
            guard ln.elementsEqual(nameBytes) else {
                throw TSLMError.malformed(file: file, reason: "zip entry '\(name)': local header names a different file")
            }
        }
        let (dataEnd, o) = dataOffset.addingReportingOverflow(csize)
        guard !o, dataEnd <= entriesEnd else {
            throw TSLMError.malformed(file: file, reason: "zip entry '\(name)' data [\(dataOffset), +\(csize)) extends past the entries' end at \(entriesEnd)")
        }
        return ZipEntry(name: name, method: method, flags: flags, compressedSize: csize,
                        uncompressedSize: usize, localHeaderOffset: offset, dataOffset: dataOffset)
    }

    /// The position of the last end-of-central-directory record in `tail`, preferring one whose
    /// comment ends exactly at the end of the file.
    private static func findEOCD(_ tail: [UInt8]) -> Int? {
        guard tail.count >= 22 else { return nil }
        var fallback: Int?
        var i = tail.count - 22
        while i >= 0 {
            if tail[i] == 0x50, tail[i + 1] == 0x4b, tail[i + 2] == 0x05, tail[i + 3] == 0x06 {
                let comment = Int(tail[i + 20]) | Int(tail[i + 21]) << 8
                if i + 22 + comment == tail.count { return i }
                if fallback == nil, i + 22 + comment <= tail.count { fallback = i }
            }
            i -= 1
        }
        return fallback
    }

    private static func bytes(_ reader: FileReader, offset: UInt64, count: Int, what: String) throws -> [UInt8] {
        let (end, o) = offset.addingReportingOverflow(UInt64(count))
        guard !o, end <= reader.size else { throw TSLMError.truncated(file: reader.path, what: what) }
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 {
            try out.withUnsafeMutableBytes { try reader.read(offset: offset, into: $0, what: what) }
        }
        return out
    }

    private static func cursor(_ bytes: [UInt8], from: Int, file: String) throws -> LECursor {
        LECursor(bytes: bytes[...], offset: from, file: file)
    }
}

/// A bounds-checked little-endian reader over an array slice (offsets relative to its start).
struct LECursor {
    let bytes: ArraySlice<UInt8>
    private(set) var offset: Int
    let file: String

    init(bytes: ArraySlice<UInt8>, offset: Int = 0, file: String) {
        self.bytes = bytes
        self.offset = offset
        self.file = file
    }

    var remaining: Int { bytes.count - offset }

    mutating func slice(_ n: Int, _ what: @autoclosure () -> String) throws -> ArraySlice<UInt8> {
        guard n >= 0, offset >= 0, n <= remaining else { throw TSLMError.truncated(file: file, what: what()) }
        let start = bytes.startIndex + offset
        offset += n
        return bytes[start..<(start + n)]
    }

    mutating func skip(_ n: Int, _ what: @autoclosure () -> String) throws { _ = try slice(n, what()) }

    mutating func uint(_ n: Int, _ what: @autoclosure () -> String) throws -> UInt64 {
        let s = try slice(n, what())
        var v: UInt64 = 0
        for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 { UInt16(truncatingIfNeeded: try uint(2, what())) }
    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { UInt32(truncatingIfNeeded: try uint(4, what())) }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try uint(8, what()) }
}
