import TSLMFormat

/// A PyTorch checkpoint in the zip format `torch.save` writes since torch 1.6 (`.pt`, `.pth`,
/// `.bin`), opened without running any of its code.
///
/// The archive's `data.pkl` is decoded by `RestrictedUnpickler` into `root`; tensors are views
/// into the storages under `<prefix>/data/`, validated against the archive when they are
/// listed and read lazily, one at a time, by their `SourceTensor.load`.
public final class PyTorchCheckpoint: @unchecked Sendable {
    /// The path the user gave.
    public let path: String
    /// The decoded object tree (a state dict, or a dict of state dicts, epochs, …).
    public let root: PickleValue
    /// The archive's top folder (`archive`, or the file stem when saved by torch).
    public let prefix: String
    /// The zip directory.
    public let archive: ZipArchive
    private let reader: FileReader

    /// Opens `path` and decodes its pickle. Throws for legacy (pre-1.6) files, TorchScript
    /// archives, damaged archives and pickles that reference forbidden globals (`options` may
    /// allow a few data classes, see `RestrictedUnpickler.Options`).
    public init(path: String, options: RestrictedUnpickler.Options = RestrictedUnpickler.Options()) throws {
        self.path = path
        reader = try FileReader(path: path)
        let head = try reader.read(offset: 0, count: Int(min(reader.size, 8)), what: "file header")
        let magic = withExtendedLifetime(head) { Array(head.bytes) }
        if magic.first == 0x80 {
            throw TSLMError.malformed(file: path, reason: "this is a legacy (pre-1.6) PyTorch file, a raw pickle stream (starts with bytes \(Self.hex(magic))), not the zip format; load it with torch and re-save it with torch.save in torch >= 1.6")
        }
        guard magic.count >= 4, magic[0] == 0x50, magic[1] == 0x4B,
              (magic[2] == 3 && magic[3] == 4) || (magic[2] == 5 && magic[3] == 6) else {
            throw TSLMError.badMagic(file: path, expected: "a PyTorch zip checkpoint (\"PK\\x03\\x04\")", found: magic)
        }
        archive = try ZipArchive(reader: reader)

        // data.pkl lives in the archive's single top folder.
        let pickles = archive.entries.filter { e in
            let parts = e.name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl" && !parts[0].isEmpty
        }
        guard pickles.count <= 1 else {
            throw TSLMError.malformed(file: path, reason: "the archive has \(pickles.count) top-level data.pkl entries (\(pickles.map(\.name).joined(separator: ", ")))")
        }
        guard let pkl = pickles.first else {
            let names = Set(archive.entries.map { $0.name.split(separator: "/").dropFirst().first.map(String.init) ?? $0.name })
            if names.contains("constants.pkl") || names.contains("code") {
                throw TSLMError.malformed(file: path, reason: "this is a TorchScript archive (torch.jit.save: it has code/ and constants.pkl), not a torch.save checkpoint; save the model's state_dict() with torch.save instead")
            }
            throw TSLMError.malformed(file: path, reason: "the zip archive has no <folder>/data.pkl entry, so it is not a PyTorch checkpoint")
        }
        let top = String(pkl.name.dropLast("/data.pkl".count))
        prefix = top
        if archive.entry(named: top + "/constants.pkl") != nil || archive.entries.contains(where: { $0.name.hasPrefix(top + "/code/") }) {
            throw TSLMError.malformed(file: path, reason: "this is a TorchScript archive (torch.jit.save: it has code/ and constants.pkl), not a torch.save checkpoint; save the model's state_dict() with torch.save instead")
        }
        if let bo = archive.entry(named: prefix + "/byteorder") {
            let order = String(decoding: try archive.readStored(bo, reader: reader), as: UTF8.self)
            guard order == "little" else {
                throw TSLMError.malformed(file: path, reason: "the checkpoint's byte order is '\(order.prefix(16))'; only little-endian checkpoints are supported")
            }
        }
        let pickle = try archive.readStored(pkl, reader: reader)
        root = try RestrictedUnpickler.decode(pickle, file: path, context: pkl.name, options: options)
    }

    /// The value at `keyPath` (dict keys, or decimal list/tuple indices), or nil.
    public func value(at keyPath: [String]) -> PickleValue? {
        var v = root
        for k in keyPath {
            switch v {
            case let .dict(items):
                guard let item = items.last(where: { Self.keyName($0.key) == k }) else { return nil }
                v = item.value
            case let .list(items), let .tuple(items):
                guard let i = Int(k), i >= 0, i < items.count else { return nil }
                v = items[i]
            case let .object(o):
                guard let s = o.state[k] else { return nil }
                v = s
            default:
                return nil
            }
        }
        return v
    }

    /// Every tensor in the tree, named by its key path joined with ".".
    public func tensors() throws -> [SourceTensor] {
        try tensors(in: root)
    }

    /// The tensors under `keyPath` (e.g. `["encoder_state"]`), named relative to it, with
    /// `namePrefix` in front. Throws `missingKey` when the path does not exist.
    public func tensors(at keyPath: [String], namePrefix: String = "") throws -> [SourceTensor] {
        guard let v = value(at: keyPath) else {
            throw TSLMError.missingKey(file: path, key: keyPath.joined(separator: "."))
        }
        return try tensors(in: v, namePrefix: namePrefix)
    }

    /// The tensors found anywhere in `value` (a part of `root`), named by their key paths
    /// (dict keys in their string form, list and tuple indices in decimal) joined with ".".
    /// A tensor that is `value` itself is named `namePrefix`, or "tensor" when that is empty.
    ///
    /// Each tensor is validated here (dtype, shape, strides, storage bounds) and read only
    /// when its `load` is called.
    public func tensors(in value: PickleValue, namePrefix: String = "") throws -> [SourceTensor] {
        var found: [(String, PickleTensor)] = []
        collect(value, name: namePrefix, into: &found)
        var seen = Set<String>()
        var out: [SourceTensor] = []
        out.reserveCapacity(found.count)
        for (name, t) in found {
            let n = name.isEmpty ? "tensor" : name
            guard seen.insert(n).inserted else { throw TSLMError.duplicateTensor(file: path, name: n) }
            out.append(try sourceTensor(n, t))
        }
        return out
    }

    // MARK: - Tree walk

    private func collect(_ v: PickleValue, name: String, into out: inout [(String, PickleTensor)]) {
        func join(_ k: String) -> String { name.isEmpty ? k : name + "." + k }
        switch v {
        case let .tensor(t):
            out.append((name, t))
        case let .dict(items):
            for item in items { collect(item.value, name: join(Self.keyName(item.key)), into: &out) }
        case let .list(items), let .tuple(items), let .set(items):
            for (i, item) in items.enumerated() { collect(item, name: join(String(i)), into: &out) }
        default:
            break
        }
    }

    /// A dict key's name: strings as they are, numbers in decimal, others in a Python-like form.
    static func keyName(_ k: PickleValue) -> String {
        switch k {
        case let .string(s): s
        case let .int(i): String(i)
        case let .bool(b): b ? "True" : "False"
        case .none: "None"
        case let .float(f): String(f)
        case let .bytes(b): String(decoding: b, as: UTF8.self)
        case let .tuple(t): "(" + t.map(keyName).joined(separator: ", ") + ")"
        case let .bigInt(b): "0x" + hex(b.reversed(), separator: "")
        case let .global(m, n): m + "." + n
        default: "?"
        }
    }

    // MARK: - Tensors

    /// Validates a tensor against its storage entry and builds its lazy loader.
    private func sourceTensor(_ name: String, _ t: PickleTensor) throws -> SourceTensor {
        guard let dtype = t.dtype else {
            throw TSLMError.unsupportedDType(file: path, tensor: name, dtype: t.dtypeName)
        }
        let es = UInt64(dtype.bytesPerBlock)
        guard t.size.allSatisfy({ $0 >= 0 }) else {
            throw TSLMError.invalidShape(file: path, tensor: name, shape: t.size.map { Int(truncatingIfNeeded: $0) }, reason: "negative dimension")
        }
        guard t.stride.allSatisfy({ $0 >= 0 }) else {
            throw TSLMError.invalidShape(file: path, tensor: name, shape: t.size.map { Int(truncatingIfNeeded: $0) }, reason: "negative stride \(t.stride)")
        }
        guard t.storageOffset >= 0 else {
            throw TSLMError.malformed(file: path, reason: "tensor '\(name)' has a negative storage offset \(t.storageOffset)")
        }
        let shape64 = t.size.map { UInt64($0) }
        let byteCount = try dtype.validatedByteCount(shape: shape64, file: path, tensor: name)
        let shape = t.size.map { Int($0) }  // each ≤ Int.max: validatedByteCount checked

        let entryName = prefix + "/data/" + t.storage.key
        guard let entry = archive.entry(named: entryName) else {
            throw TSLMError.malformed(file: path, reason: "tensor '\(name)': its storage '\(t.storage.key)' has no archive entry '\(entryName)'")
        }
        let (dataOffset, entrySize) = try archive.storedRange(of: entry)
        // The storage holds min(declared, present) bytes.
        let storageElementSize = UInt64(max(t.storage.elementSize, 1))
        let declared = UInt64(t.storage.numel).multipliedReportingOverflow(by: storageElementSize)
        let capacityBytes = declared.overflow ? entrySize : min(declared.partialValue, entrySize)
        let capacity = capacityBytes / es  // in elements of the tensor's dtype

        // The highest element index the view reaches.
        let offset = UInt64(t.storageOffset)
        var last = offset
        var reachOverflow = false
        let count = byteCount / es
        if count > 0 {
            for (d, s) in zip(shape64, t.stride) {
                let r = (d - 1).multipliedReportingOverflow(by: UInt64(s))
                let a = last.addingReportingOverflow(r.partialValue)
                reachOverflow = reachOverflow || r.overflow || a.overflow
                last = a.partialValue
            }
            guard !reachOverflow, last < capacity else {
                let (startByte, o1) = offset.multipliedReportingOverflow(by: es)
                let span = reachOverflow ? UInt64.max : (last - offset + 1).multipliedReportingOverflow(by: es).partialValue
                throw TSLMError.tensorOutOfBounds(file: path, tensor: name, offset: o1 ? UInt64.max : startByte,
                                                  size: span, limit: capacityBytes)
            }
        }

        // Row-major (contiguous) when every dimension longer than 1 has the packed stride.
        var contiguous = true
        var expected: UInt64 = 1
        for (d, s) in zip(shape64, t.stride).reversed() where d != 1 {
            if UInt64(s) != expected { contiguous = false }
            expected = expected &* d
        }
        let plan = ReadPlan(file: path, tensor: name, dataOffset: dataOffset, elementSize: Int(es),
                            byteCount: Int(byteCount), offset: offset, last: last,
                            shape: shape,
                            // A dimension of length 1 never moves, so its stride (which may be
                            // anything) is irrelevant; zero keeps the gather's arithmetic bounded.
                            stride: zip(shape, t.stride).map { $0 == 1 ? 0 : Int($1) },
                            contiguous: contiguous || count <= 1)
        let reader = self.reader
        return SourceTensor(name: name, dtype: dtype, shape: shape) { try plan.load(reader) }
    }

    static func hex(_ b: [UInt8], separator: String = " ") -> String {
        b.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined(separator: separator)
    }
}

/// How to produce one tensor's contiguous bytes from its storage entry. All values were
/// validated against the archive when the plan was made.
private struct ReadPlan: Sendable {
    let file: String
    let tensor: String
    /// Absolute offset of the storage's first byte.
    let dataOffset: UInt64
    let elementSize: Int
    let byteCount: Int
    /// First and last storage element the view reaches.
    let offset: UInt64
    let last: UInt64
    let shape: [Int]
    let stride: [Int]
    let contiguous: Bool

    func load(_ reader: FileReader) throws -> TensorData {
        let out = TensorData(allocating: byteCount)
        guard byteCount > 0 else { return out }
        let es = UInt64(elementSize)
        let start = dataOffset + offset * es
        if contiguous {
            try reader.read(offset: start, into: out.mutableBytes, what: "tensor '\(tensor)'")
            return out
        }
        // Read the span the view covers, then gather it in row-major order.
        let span = try reader.read(offset: start, count: Int((last - offset + 1) * es), what: "tensor '\(tensor)'")
        withExtendedLifetime(span) { gather(from: span.bytes, into: out.mutableBytes) }
        return out
    }

    /// Copies the view's elements from `span` (the storage from `offset` on) in row-major order.
    private func gather(from span: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        guard let src = span.baseAddress, let dst = out.baseAddress else { return }
        let rank = shape.count
        let inner = shape[rank - 1]
        let innerStride = stride[rank - 1] * elementSize
        let rowBytes = inner * elementSize
        var index = [Int](repeating: 0, count: max(rank - 1, 0))
        var written = 0
        while written < byteCount {
            var base = 0
            for d in 0..<(rank - 1) { base += index[d] * stride[d] }
            base *= elementSize
            if innerStride == elementSize {
                (dst + written).copyMemory(from: src + base, byteCount: rowBytes)
            } else {
                for j in 0..<inner {
                    (dst + written + j * elementSize).copyMemory(from: src + base + j * innerStride, byteCount: elementSize)
                }
            }
            written += rowBytes
            // Advance the odometer over the outer dimensions.
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }
}

/// Imports a PyTorch zip checkpoint as a `raw` model: every tensor in its object tree, named by
/// its key path.
public enum PyTorchImporter {
    /// Opens `path` and lists its tensors (read lazily); see `PyTorchCheckpoint`.
    public static func load(path: String) throws -> ImportedModel {
        let checkpoint = try PyTorchCheckpoint(path: path)
        return ImportedModel(architecture: "raw", sourceFormat: "pytorch", sourcePath: path,
                             tensors: try checkpoint.tensors())
    }
}
