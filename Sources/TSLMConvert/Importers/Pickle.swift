import TSLMFormat

/// A value decoded from a pickle by `RestrictedUnpickler`: plain containers and scalars, the
/// few allowed globals, and the tensors and storages of a PyTorch checkpoint.
///
/// The tree is a plain value: containers that the pickle shared are copied into each place
/// that refers to them.
public indirect enum PickleValue: Sendable, Equatable {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer outside the 64-bit range, as little-endian two's-complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([PickleValue])
    case tuple([PickleValue])
    /// A set or frozenset, in pickle order.
    case set([PickleValue])
    /// A dict or `collections.OrderedDict`, in insertion order (a key set twice keeps its
    /// first position and its last value, as in Python).
    case dict([PickleDictItem])
    /// An allowed global that was not called (a dtype, a storage type, a function).
    case global(module: String, name: String)
    /// A storage that no tensor wraps (e.g. `torch.save` of a bare storage).
    case storage(PickleStorage)
    case tensor(PickleTensor)
    /// An instance of a data class that `RestrictedUnpickler.Options.dataObjects` allows,
    /// recorded (never constructed): its class, constructor arguments and `__setstate__` state.
    case object(PickleObject)

    /// The value for `key` when this is a dict with string keys, or the state dict of an
    /// `object` with such a key.
    public subscript(key: String) -> PickleValue? {
        switch self {
        case let .dict(items): return items.last(where: { $0.key == .string(key) })?.value
        case let .object(o): return o.state[key]
        default: return nil
        }
    }
}

/// An object of an allowed data class (e.g. PEFT's `LoraConfig`) as the pickle describes it.
/// Nothing of the class runs: its arguments and state are kept as plain values.
public struct PickleObject: Sendable, Equatable {
    public var module: String
    public var name: String
    /// Arguments of the `REDUCE`/`NEWOBJ` that created it (an enum's value, for example).
    public var arguments: [PickleValue]
    /// The `BUILD` state (usually a dict of attributes), or `.none`.
    public var state: PickleValue
}

/// One key/value pair of a pickled dict.
public struct PickleDictItem: Sendable, Equatable {
    public var key: PickleValue
    public var value: PickleValue

    public init(key: PickleValue, value: PickleValue) {
        self.key = key
        self.value = value
    }
}

/// A storage named by a PyTorch persistent id `('storage', type, key, location, numel)`.
public struct PickleStorage: Sendable, Equatable {
    /// The entry name under `<prefix>/data/` that holds its bytes.
    public var key: String
    /// The storage type global, e.g. `torch.FloatStorage` or `torch.storage.UntypedStorage`.
    public var typeName: String
    /// The element type's PyTorch name (`float32`, `uint8` for untyped storages, …).
    public var dtypeName: String
    /// Bytes per element (1 for untyped storages; 0 where unknown).
    public var elementSize: Int
    /// Where the storage lived when saved (`cpu`, `cuda:0`, …).
    public var location: String
    /// Number of elements the persistent id declares.
    public var numel: Int64
}

/// A tensor rebuilt by `torch._utils._rebuild_tensor_v2`/`_v3` (optionally wrapped by
/// `_rebuild_parameter`) or `_rebuild_qtensor`: a view into a storage. Nothing is read or
/// validated against the storage here; `PyTorchCheckpoint` does that.
public struct PickleTensor: Sendable, Equatable {
    public var storage: PickleStorage
    /// The element type's PyTorch name (`float32`, `bfloat16`, `complex64`, `qint8`, …).
    public var dtypeName: String
    /// The matching `.tslm` type, or nil when the format has none (complex, quantized, …).
    public var dtype: DType?
    /// Offset of the first element in the storage, in elements of `dtype`.
    public var storageOffset: Int64
    public var size: [Int64]
    public var stride: [Int64]
    public var requiresGrad: Bool
    /// True when the tensor was saved as an `nn.Parameter`.
    public var isParameter: Bool
}

/// A pickle (protocols 0–5) decoder that never executes code and never imports anything.
///
/// Globals are checked against an allow-list as soon as an opcode names them: anything other
/// than `collections.OrderedDict`, the `torch._utils` tensor/parameter rebuild functions, the
/// torch storage types, dtypes and quantization schemes fails the whole load with
/// `TSLMError.forbiddenGlobal`. The allowed callables are interpreted, not called. Every
/// length, memo index and stack access is checked; nesting and the size of the decoded tree
/// are capped, so no byte sequence can crash the decoder or make it allocate without bound.
public struct RestrictedUnpickler {
    /// The deepest container nesting accepted.
    public static let maxDepth = 100

    /// What a decode accepts beyond the default allow-list.
    public struct Options: Sendable, Equatable {
        /// Also accept PEFT configuration objects (any global of the `peft` package, recorded as
        /// `PickleValue.object` without running anything) and `set`/`frozenset` built by `REDUCE`
        /// (pickle protocols < 4 write sets that way). OpenTSLM checkpoints store
        /// `lora_config` = `{"default": peft.LoraConfig(...)}`.
        public var dataObjects = false

        public init(dataObjects: Bool = false) { self.dataObjects = dataObjects }
    }

    /// Decodes `bytes` (a whole pickle); `file` and `context` name it in errors.
    public static func decode(_ bytes: [UInt8], file: String, context: String = "pickle",
                              options: Options = Options()) throws -> PickleValue {
        var m = Machine(data: bytes, file: file, context: context)
        m.options = options
        let root = try m.run()
        var budget = 1_000_000 + 2 * bytes.count
        return try m.export(root, depth: 0, budget: &budget)
    }
}

// MARK: - Allow-list

/// What an allowed global is, for the unpickler.
enum AllowedGlobal: Equatable {
    case orderedDict
    case rebuildTensorV2, rebuildTensorV3, rebuildParameter, rebuildParameterWithState, rebuildQTensor
    case storageType(dtypeName: String, elementSize: Int)
    case dtype(name: String)
    case qscheme
    /// `Options.dataObjects` only: a class whose instances are recorded, never constructed.
    case dataClass
    /// `Options.dataObjects` only: `set` / `frozenset`.
    case setConstructor

    static func lookup(module: String, name: String) -> AllowedGlobal? {
        switch module {
        case "collections":
            return name == "OrderedDict" ? .orderedDict : nil
        case "torch._utils":
            switch name {
            case "_rebuild_tensor_v2": return .rebuildTensorV2
            case "_rebuild_tensor_v3": return .rebuildTensorV3
            case "_rebuild_parameter": return .rebuildParameter
            case "_rebuild_parameter_with_state": return .rebuildParameterWithState
            case "_rebuild_qtensor": return .rebuildQTensor
            default: return nil
            }
        case "torch.storage":
            return name == "UntypedStorage" ? .storageType(dtypeName: "uint8", elementSize: 1) : nil
        case "torch":
            if let s = storageTypes[name] { return .storageType(dtypeName: s.0, elementSize: s.1) }
            if dtypeNames.contains(name) { return .dtype(name: name) }
            if qschemes.contains(name) { return .qscheme }
            return nil
        default:
            return nil
        }
    }

    static let storageTypes: [String: (String, Int)] = [
        "DoubleStorage": ("float64", 8), "FloatStorage": ("float32", 4), "HalfStorage": ("float16", 2),
        "BFloat16Storage": ("bfloat16", 2), "LongStorage": ("int64", 8), "IntStorage": ("int32", 4),
        "ShortStorage": ("int16", 2), "CharStorage": ("int8", 1), "ByteStorage": ("uint8", 1),
        "BoolStorage": ("bool", 1), "ComplexDoubleStorage": ("complex128", 16),
        "ComplexFloatStorage": ("complex64", 8), "QUInt8Storage": ("quint8", 1),
        "QInt8Storage": ("qint8", 1), "QInt32Storage": ("qint32", 4), "QUInt4x2Storage": ("quint4x2", 1),
        "QUInt2x4Storage": ("quint2x4", 1), "UntypedStorage": ("uint8", 1),
    ]

    static let dtypeNames: Set<String> = [
        "float32", "float", "float64", "double", "float16", "half", "bfloat16",
        "int64", "long", "int32", "int", "int16", "short", "int8", "uint8", "bool",
        "complex32", "chalf", "complex64", "cfloat", "complex128", "cdouble",
        "uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
        "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "bits8", "bits16", "bits1x8",
        "bits2x4", "bits4x2", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
        "int1", "int2", "int3", "int4", "int5", "int6", "int7",
        "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
    ]

    static let qschemes: Set<String> = [
        "per_tensor_affine", "per_channel_affine", "per_channel_affine_float_qparams",
        "per_tensor_symmetric", "per_channel_symmetric",
    ]

    /// The `.tslm` type and element size for a PyTorch dtype name, when the format has one.
    static func dtype(forTorchName name: String) -> (DType, Int)? {
        switch name {
        case "float32", "float": (.f32, 4)
        case "float64", "double": (.f64, 8)
        case "float16", "half": (.f16, 2)
        case "bfloat16": (.bf16, 2)
        case "int64", "long": (.i64, 8)
        case "int32", "int": (.i32, 4)
        case "int16", "short": (.i16, 2)
        case "int8": (.i8, 1)
        case "uint8": (.u8, 1)
        case "bool": (.bool, 1)
        default: nil
        }
    }
}

// MARK: - The machine

/// A value on the unpickler's stack. Mutable containers live in an arena and are referred to
/// by index, so that the memo and the stack share them as Python does, without reference
/// cycles between Swift objects.
private enum Value {
    case none
    case bool(Bool)
    case int(Int64)
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    /// A tuple and its nesting depth (tuples are the only values that nest directly, so the
    /// depth is capped as they are built: a deep chain could otherwise overflow the stack when
    /// it is freed).
    case tuple([Value], depth: Int)
    case ref(Int)
    case global(module: String, name: String, kind: AllowedGlobal)
    case storage(PickleStorage)
    case tensor(PickleTensor)

    var typeName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .ref: "container"
        case let .global(m, n, _): "\(m).\(n)"
        case .storage: "storage"
        case .tensor: "tensor"
        }
    }
}

/// A dict key that can be compared by value (others are never merged).
private enum HashKey: Hashable {
    case int(Int64)
    case string(String)
    case bytes([UInt8])
    case none
}

private enum Container {
    case list([Value])
    case dict(keys: [Value], values: [Value], index: [HashKey: Int])
    case set([Value])
    case object(module: String, name: String, arguments: [Value], state: Value)
}

/// Note: operands are always popped into locals before a non-mutating method is called with
/// them; `f(try pop())` on a non-mutating `f` would copy `self` first and make every pop copy
/// the whole stack.
private struct Machine {
    let data: [UInt8]
    let file: String
    let context: String
    var pos = 0
    var stack: [Value] = []
    var marks: [Int] = []
    var memo: [Int: Value] = [:]
    var arena: [Container] = []
    /// Offset of the opcode being executed (for error messages).
    var opStart = 0
    var options = RestrictedUnpickler.Options()

    init(data: [UInt8], file: String, context: String) {
        self.data = data
        self.file = file
        self.context = context
    }

    // MARK: Errors

    func malformed(_ reason: String) -> TSLMError {
        .malformed(file: file, reason: "\(context) offset \(opStart): \(reason)")
    }

    func truncated(_ what: String) -> TSLMError {
        .truncated(file: file, what: "\(context): \(what) at offset \(opStart)")
    }

    // MARK: Reading

    mutating func byte(_ what: String) throws -> UInt8 {
        guard pos < data.count else { throw truncated(what) }
        defer { pos += 1 }
        return data[pos]
    }

    mutating func take(_ n: UInt64, _ what: String) throws -> ArraySlice<UInt8> {
        guard n <= UInt64(data.count - pos) else { throw truncated(what) }
        let start = pos
        pos += Int(n)
        return data[start..<pos]
    }

    mutating func uint(_ n: Int, _ what: String) throws -> UInt64 {
        let s = try take(UInt64(n), what)
        var v: UInt64 = 0
        for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    /// A newline-terminated line (protocol 0 arguments), without the newline.
    mutating func line(_ what: String) throws -> String {
        guard let nl = data[pos...].firstIndex(of: 0x0A) else { throw truncated(what) }
        let s = data[pos..<nl]
        pos = nl + 1
        guard let str = String(validating: s, as: UTF8.self) else {
            throw TSLMError.invalidUTF8(file: file, context: "\(context) \(what) at offset \(opStart)")
        }
        return str
    }

    func utf8(_ s: ArraySlice<UInt8>, _ what: String) throws -> String {
        guard let str = String(validating: s, as: UTF8.self) else {
            throw TSLMError.invalidUTF8(file: file, context: "\(context) \(what) at offset \(opStart)")
        }
        return str
    }

    // MARK: Stack

    var floor: Int { marks.last ?? 0 }

    mutating func push(_ v: Value) { stack.append(v) }

    mutating func pop() throws -> Value {
        guard stack.count > floor else { throw malformed("stack underflow") }
        return stack.removeLast()
    }

    func top() throws -> Value {
        guard stack.count > floor, let v = stack.last else { throw malformed("stack underflow") }
        return v
    }

    mutating func popMark() throws -> [Value] {
        guard let m = marks.popLast() else { throw malformed("opcode needs a MARK but none is open") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func new(_ c: Container) -> Value {
        arena.append(c)
        return .ref(arena.count - 1)
    }

    func hashKey(_ v: Value) -> HashKey? {
        switch v {
        case let .int(i): .int(i)
        case let .bool(b): .int(b ? 1 : 0)
        case let .string(s): .string(s)
        case let .bytes(b): .bytes(b)
        case .none: HashKey.none
        default: nil
        }
    }

    // MARK: Container mutation

    mutating func setItems(_ target: Value, _ pairs: ArraySlice<Value>) throws {
        guard case let .ref(i) = target, case .dict(var keys, var values, var index) = arena[i] else {
            throw malformed("SETITEM(S) on a \(target.typeName), not a dict")
        }
        guard pairs.count % 2 == 0 else { throw malformed("SETITEMS with an odd number of items") }
        arena[i] = .list([])  // release the arrays so the appends below do not copy
        var k = pairs.startIndex
        while k < pairs.endIndex {
            let key = pairs[k], value = pairs[k + 1]
            if let h = hashKey(key), let existing = index[h] {
                values[existing] = value
            } else {
                if let h = hashKey(key) { index[h] = keys.count }
                keys.append(key)
                values.append(value)
            }
            k += 2
        }
        arena[i] = .dict(keys: keys, values: values, index: index)
    }

    mutating func appendItems(_ target: Value, _ items: [Value], set: Bool) throws {
        guard case let .ref(i) = target else {
            throw malformed("\(set ? "ADDITEMS" : "APPEND(S)") on a \(target.typeName)")
        }
        switch arena[i] {
        case var .list(l) where !set:
            arena[i] = .list([])
            l.append(contentsOf: items)
            arena[i] = .list(l)
        case var .set(s) where set:
            arena[i] = .set([])
            s.append(contentsOf: items)
            arena[i] = .set(s)
        default:
            throw malformed("\(set ? "ADDITEMS on a non-set" : "APPEND(S) on a non-list") container")
        }
    }

    // MARK: Globals and calls

    func global(_ module: String, _ name: String) throws -> Value {
        if options.dataObjects {
            if module == "peft" || module.hasPrefix("peft.") { return .global(module: module, name: name, kind: .dataClass) }
            if ["builtins", "__builtin__"].contains(module), ["set", "frozenset"].contains(name) {
                return .global(module: module, name: name, kind: .setConstructor)
            }
        }
        guard let kind = AllowedGlobal.lookup(module: module, name: name) else {
            throw TSLMError.forbiddenGlobal(file: file, module: module, name: name)
        }
        return .global(module: module, name: name, kind: kind)
    }

    /// REDUCE / INST / OBJ: interprets a call of an allowed callable.
    mutating func call(_ callable: Value, _ args: [Value]) throws -> Value {
        guard case let .global(module, name, kind) = callable else {
            throw malformed("call of a \(callable.typeName), which is not an allowed callable")
        }
        switch kind {
        case .orderedDict:
            let d = new(.dict(keys: [], values: [], index: [:]))
            if args.isEmpty { return d }
            guard args.count == 1, case let .ref(li) = args[0], case let .list(pairs) = arena[li] else {
                throw malformed("collections.OrderedDict called with unsupported arguments")
            }
            var flat: [Value] = []
            for p in pairs {
                guard case let .tuple(kv, _) = p, kv.count == 2 else {
                    throw malformed("collections.OrderedDict initializer item is not a pair")
                }
                flat += kv
            }
            try setItems(d, flat[...])
            return d
        case .rebuildTensorV2:
            guard args.count == 6 || args.count == 7 else { throw malformed("_rebuild_tensor_v2 takes 6 or 7 arguments, got \(args.count)") }
            guard case let .storage(s) = args[0] else { throw malformed("_rebuild_tensor_v2 argument 0 is a \(args[0].typeName), not a storage") }
            let dt = AllowedGlobal.dtype(forTorchName: s.dtypeName)
            return try tensor(s, dtypeName: s.dtypeName, dtype: dt?.0, args: args, function: name)
        case .rebuildTensorV3:
            guard args.count == 7 || args.count == 8 else { throw malformed("_rebuild_tensor_v3 takes 7 or 8 arguments, got \(args.count)") }
            guard case let .storage(s) = args[0] else { throw malformed("_rebuild_tensor_v3 argument 0 is a \(args[0].typeName), not a storage") }
            guard case let .global(_, _, .dtype(dtypeName)) = args[6] else {
                throw malformed("_rebuild_tensor_v3 argument 6 is a \(args[6].typeName), not a torch dtype")
            }
            return try tensor(s, dtypeName: dtypeName, dtype: AllowedGlobal.dtype(forTorchName: dtypeName)?.0, args: args, function: name)
        case .rebuildQTensor:
            guard args.count == 7 else { throw malformed("_rebuild_qtensor takes 7 arguments, got \(args.count)") }
            guard case let .storage(s) = args[0] else { throw malformed("_rebuild_qtensor argument 0 is a \(args[0].typeName), not a storage") }
            return try tensor(s, dtypeName: s.dtypeName, dtype: nil, args: args, function: name)
        case .rebuildParameter, .rebuildParameterWithState:
            let n = kind == .rebuildParameter ? 3 : 4
            guard args.count == n else { throw malformed("\(name) takes \(n) arguments, got \(args.count)") }
            guard case var .tensor(t) = args[0] else { throw malformed("\(name) argument 0 is a \(args[0].typeName), not a tensor") }
            t.isParameter = true
            if case let .bool(g) = args[1] { t.requiresGrad = g }
            return .tensor(t)
        case .dataClass:
            return new(.object(module: module, name: name, arguments: args, state: .none))
        case .setConstructor:
            guard args.count <= 1 else { throw malformed("\(module).\(name) called with \(args.count) arguments") }
            guard let a = args.first else { return new(.set([])) }
            switch a {
            case let .ref(li):
                if case let .list(items) = arena[li] { return new(.set(items)) }
                if case let .set(items) = arena[li] { return new(.set(items)) }
            case let .tuple(items, _):
                return new(.set(items))
            default: break
            }
            throw malformed("\(module).\(name) called with a \(a.typeName)")
        case .storageType, .dtype, .qscheme:
            throw malformed("\(module).\(name) is called, but only tensor-rebuild functions and OrderedDict may be")
        }
    }

    func int64(_ v: Value, _ what: String) throws -> Int64 {
        switch v {
        case let .int(i): return i
        case let .bool(b): return b ? 1 : 0
        default: throw malformed("\(what) is a \(v.typeName), not an int")
        }
    }

    func intTuple(_ v: Value, _ what: String) throws -> [Int64] {
        guard case let .tuple(items, _) = v else { throw malformed("\(what) is a \(v.typeName), not a tuple") }
        return try items.map { try int64($0, what + " element") }
    }

    func tensor(_ s: PickleStorage, dtypeName: String, dtype: DType?, args: [Value], function: String) throws -> Value {
        let offset = try int64(args[1], "\(function) storage offset")
        let size = try intTuple(args[2], "\(function) size")
        let stride = try intTuple(args[3], "\(function) stride")
        guard size.count == stride.count else {
            throw malformed("\(function): size has \(size.count) dimensions but stride has \(stride.count)")
        }
        let gradIndex = function == "_rebuild_qtensor" ? 5 : 4
        var requiresGrad = false
        if case let .bool(g) = args[gradIndex] { requiresGrad = g }
        return .tensor(PickleTensor(storage: s, dtypeName: dtypeName, dtype: dtype, storageOffset: offset,
                                    size: size, stride: stride, requiresGrad: requiresGrad, isParameter: false))
    }

    /// BINPERSID: `('storage', storage_type, key, location, numel)`.
    func persistentLoad(_ pid: Value) throws -> Value {
        guard case let .tuple(f, _) = pid, f.count == 5, case .string("storage") = f[0] else {
            throw malformed("persistent id is not a ('storage', type, key, location, numel) tuple")
        }
        guard case let .global(module, name, .storageType(dtypeName, elementSize)) = f[1] else {
            throw malformed("persistent id storage type is a \(f[1].typeName), not a torch storage type")
        }
        guard case let .string(key) = f[2] else { throw malformed("persistent id storage key is a \(f[2].typeName), not a str") }
        guard case let .string(location) = f[3] else { throw malformed("persistent id location is a \(f[3].typeName), not a str") }
        let numel = try int64(f[4], "persistent id numel")
        guard numel >= 0 else { throw malformed("storage '\(key)' has a negative element count \(numel)") }
        return .storage(PickleStorage(key: key, typeName: "\(module).\(name)", dtypeName: dtypeName,
                                      elementSize: elementSize, location: location, numel: numel))
    }

    // MARK: Run

    mutating func run() throws -> Value {
        while true {
            opStart = pos
            let op = try byte("opcode")
            switch op {
            case 0x80:  // PROTO
                let v = try byte("protocol version")
                guard v <= 5 else { throw malformed("pickle protocol \(v) is not supported (0–5 are)") }
            case 0x95:  // FRAME
                let n = try uint(8, "frame length")
                guard n <= UInt64(data.count - pos) else { throw truncated("frame of \(n) bytes") }
            case 0x2E:  // STOP
                return try pop()
            case 0x28:  // MARK
                marks.append(stack.count)
            case 0x30:  // POP
                if stack.count > floor { stack.removeLast() } else { _ = try popMark() }
            case 0x31:  // POP_MARK
                _ = try popMark()
            case 0x32:  // DUP
                push(try top())

            // Constants
            case 0x4E: push(.none)  // NONE
            case 0x88: push(.bool(true))  // NEWTRUE
            case 0x89: push(.bool(false))  // NEWFALSE
            case 0x4A: push(.int(Int64(Int32(truncatingIfNeeded: try uint(4, "BININT")))))
            case 0x4B: push(.int(Int64(try byte("BININT1"))))
            case 0x4D: push(.int(Int64(try uint(2, "BININT2"))))
            case 0x8A:  // LONG1
                let n = try byte("LONG1 length")
                push(long(try take(UInt64(n), "LONG1 bytes")))
            case 0x8B:  // LONG4
                let n = Int32(truncatingIfNeeded: try uint(4, "LONG4 length"))
                guard n >= 0 else { throw malformed("LONG4 with negative length \(n)") }
                push(long(try take(UInt64(n), "LONG4 bytes")))
            case 0x49:  // INT (text)
                let s = try line("INT argument")
                if s == "00" { push(.bool(false)) } else if s == "01" { push(.bool(true)) } else {
                    guard let v = Int64(s) else { throw malformed("INT argument '\(s.prefix(40))' is not a 64-bit integer") }
                    push(.int(v))
                }
            case 0x4C:  // LONG (text)
                var s = try line("LONG argument")
                if s.hasSuffix("L") { s.removeLast() }
                guard let v = Int64(s) else { throw malformed("LONG argument '\(s.prefix(40))' is not a 64-bit integer") }
                push(.int(v))
            case 0x46:  // FLOAT (text)
                let s = try line("FLOAT argument")
                guard let v = Double(s) else { throw malformed("FLOAT argument '\(s.prefix(40))' is not a number") }
                push(.float(v))
            case 0x47:  // BINFLOAT (big-endian)
                push(.float(Double(bitPattern: try uint(8, "BINFLOAT").byteSwapped)))

            // Strings and bytes
            case 0x58: push(.string(try utf8(try take(try uint(4, "BINUNICODE length"), "BINUNICODE string"), "BINUNICODE string")))
            case 0x8C: push(.string(try utf8(try take(UInt64(try byte("SHORT_BINUNICODE length")), "SHORT_BINUNICODE string"), "SHORT_BINUNICODE string")))
            case 0x8D: push(.string(try utf8(try take(try uint(8, "BINUNICODE8 length"), "BINUNICODE8 string"), "BINUNICODE8 string")))
            case 0x54:  // BINSTRING (Python 2 str)
                let n = Int32(truncatingIfNeeded: try uint(4, "BINSTRING length"))
                guard n >= 0 else { throw malformed("BINSTRING with negative length \(n)") }
                push(py2String(try take(UInt64(n), "BINSTRING string")))
            case 0x55: push(py2String(try take(UInt64(try byte("SHORT_BINSTRING length")), "SHORT_BINSTRING string")))
            case 0x42: push(.bytes(Array(try take(try uint(4, "BINBYTES length"), "BINBYTES bytes"))))
            case 0x43: push(.bytes(Array(try take(UInt64(try byte("SHORT_BINBYTES length")), "SHORT_BINBYTES bytes"))))
            case 0x8E: push(.bytes(Array(try take(try uint(8, "BINBYTES8 length"), "BINBYTES8 bytes"))))
            case 0x96: push(.bytes(Array(try take(try uint(8, "BYTEARRAY8 length"), "BYTEARRAY8 bytes"))))
            case 0x53, 0x56:  // STRING, UNICODE (text)
                let s = try line(op == 0x53 ? "STRING argument" : "UNICODE argument")
                push(.string(try textString(s, quoted: op == 0x53)))

            // Containers
            case 0x29: push(try tuple([]))  // EMPTY_TUPLE
            case 0x85:  // TUPLE1
                let a = try pop()
                push(try tuple([a]))
            case 0x86:  // TUPLE2
                let b = try pop(), a = try pop()
                push(try tuple([a, b]))
            case 0x87:  // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                push(try tuple([a, b, c]))
            case 0x74:  // TUPLE
                let items = try popMark()
                push(try tuple(items))
            case 0x5D: push(new(.list([])))  // EMPTY_LIST
            case 0x6C:  // LIST
                let items = try popMark()
                push(new(.list(items)))
            case 0x7D: push(new(.dict(keys: [], values: [], index: [:])))  // EMPTY_DICT
            case 0x64:  // DICT
                let items = try popMark()
                let d = new(.dict(keys: [], values: [], index: [:]))
                try setItems(d, items[...])
                push(d)
            case 0x8F: push(new(.set([])))  // EMPTY_SET
            case 0x91:  // FROZENSET
                let items = try popMark()
                push(new(.set(items)))
            case 0x61:  // APPEND
                let v = try pop()
                try appendItems(try top(), [v], set: false)
            case 0x65:  // APPENDS
                let items = try popMark()
                try appendItems(try top(), items, set: false)
            case 0x90:  // ADDITEMS
                let items = try popMark()
                try appendItems(try top(), items, set: true)
            case 0x73:  // SETITEM
                let v = try pop(), k = try pop()
                try setItems(try top(), [k, v][...])
            case 0x75:  // SETITEMS
                let items = try popMark()
                try setItems(try top(), items[...])

            // Memo
            case 0x70:  // PUT
                let s = try line("PUT index")
                guard let i = Int(s), i >= 0 else { throw malformed("PUT index '\(s.prefix(40))' is not a non-negative integer") }
                memo[i] = try top()
            case 0x71: memo[Int(try byte("BINPUT index"))] = try top()
            case 0x72: memo[Int(try uint(4, "LONG_BINPUT index"))] = try top()
            case 0x94: memo[memo.count] = try top()  // MEMOIZE
            case 0x67:  // GET
                let s = try line("GET index")
                guard let i = Int(s) else { throw malformed("GET index '\(s.prefix(40))' is not an integer") }
                push(try memoGet(i))
            case 0x68: push(try memoGet(Int(try byte("BINGET index"))))
            case 0x6A: push(try memoGet(Int(try uint(4, "LONG_BINGET index"))))

            // Globals, calls, objects
            case 0x63:  // GLOBAL
                let module = try line("GLOBAL module")
                let name = try line("GLOBAL name")
                push(try global(module, name))
            case 0x93:  // STACK_GLOBAL
                let n = try pop(), m = try pop()
                guard case let .string(module) = m, case let .string(name) = n else {
                    throw malformed("STACK_GLOBAL needs two strings, got \(m.typeName) and \(n.typeName)")
                }
                push(try global(module, name))
            case 0x52:  // REDUCE
                let args = try pop(), f = try pop()
                guard case let .tuple(a, _) = args else { throw malformed("REDUCE arguments are a \(args.typeName), not a tuple") }
                push(try call(f, a))
            case 0x69:  // INST
                let module = try line("INST module")
                let name = try line("INST name")
                let cls = try global(module, name)
                let args = try popMark()
                push(try call(cls, args))
            case 0x6F:  // OBJ
                let items = try popMark()
                guard let cls = items.first else { throw malformed("OBJ without a class") }
                push(try call(cls, Array(items.dropFirst())))
            case 0x81, 0x92:  // NEWOBJ, NEWOBJ_EX
                if op == 0x92 { _ = try pop() }
                let args = try pop(), cls = try pop()
                if case let .global(m, n, .dataClass) = cls {
                    guard case let .tuple(a, _) = args else { throw malformed("NEWOBJ arguments are a \(args.typeName), not a tuple") }
                    push(new(.object(module: m, name: n, arguments: a, state: .none)))
                    continue
                }
                guard case .global(_, _, .orderedDict) = cls else {
                    throw malformed("\(op == 0x81 ? "NEWOBJ" : "NEWOBJ_EX") of \(cls.typeName); only collections.OrderedDict may be created")
                }
                guard case let .tuple(a, _) = args, a.isEmpty else {
                    throw malformed("collections.OrderedDict.__new__ with arguments")
                }
                push(new(.dict(keys: [], values: [], index: [:])))
            case 0x62:  // BUILD
                let state = try pop()
                let target = try top()
                if case let .ref(i) = target, case let .object(m, n, a, _) = arena[i] {
                    arena[i] = .object(module: m, name: n, arguments: a, state: state)
                    continue
                }
                // OrderedDict.__reduce__ passes the instance's attributes as the state: a
                // module's state_dict() carries `_metadata` (per-module versions) that way. They
                // are not items and are dropped; any other state is refused.
                guard case let .ref(i) = target, case .dict = arena[i], isEmptyState(state) || isAttributeDict(state) else {
                    throw malformed("BUILD (__setstate__) on a \(target.typeName) is not allowed")
                }
            case 0x51:  // BINPERSID
                let pid = try pop()
                push(try persistentLoad(pid))
            case 0x50:  // PERSID
                _ = try line("PERSID argument")
                throw malformed("text persistent ids (PERSID) are not used by PyTorch checkpoints")
            case 0x82, 0x83, 0x84:
                throw malformed("extension-registry opcodes (EXT1/2/4) are not supported")
            case 0x97, 0x98:
                throw malformed("out-of-band buffers (NEXT_BUFFER/READONLY_BUFFER) are not supported")
            default:
                throw malformed("unknown pickle opcode 0x\(String(op, radix: 16))")
            }
        }
    }

    func tuple(_ items: [Value]) throws -> Value {
        var depth = 1
        for case let .tuple(_, d) in items { depth = max(depth, d + 1) }
        guard depth <= RestrictedUnpickler.maxDepth else {
            throw malformed("tuples nest deeper than \(RestrictedUnpickler.maxDepth) levels")
        }
        return .tuple(items, depth: depth)
    }

    func memoGet(_ i: Int) throws -> Value {
        guard let v = memo[i] else { throw malformed("memo index \(i) was never stored") }
        return v
    }

    /// A dict whose keys are all strings (an instance `__dict__`).
    func isAttributeDict(_ v: Value) -> Bool {
        guard case let .ref(i) = v, case let .dict(keys, _, _) = arena[i] else { return false }
        return keys.allSatisfy { if case .string = $0 { true } else { false } }
    }

    func isEmptyState(_ v: Value) -> Bool {
        switch v {
        case .none: return true
        case let .ref(i):
            if case let .dict(keys, _, _) = arena[i] { return keys.isEmpty }
            return false
        case let .tuple(t, _): return t.allSatisfy(isEmptyState)
        default: return false
        }
    }

    /// A little-endian two's-complement integer (LONG1/LONG4).
    func long(_ bytes: ArraySlice<UInt8>) -> Value {
        guard let last = bytes.last else { return .int(0) }
        let negative = last & 0x80 != 0
        let ext: UInt8 = negative ? 0xFF : 0
        if bytes.count > 8 {
            // Fits if every byte past the eighth is pure sign extension of the eighth.
            let eighth = bytes[bytes.startIndex + 7]
            let fits = bytes.dropFirst(8).allSatisfy { $0 == ext } && (eighth & 0x80 != 0) == negative
            if !fits { return .bigInt(Array(bytes)) }
        }
        var v: UInt64 = negative ? ~0 : 0
        for (i, b) in bytes.prefix(8).enumerated() {
            v &= ~(UInt64(0xFF) << (8 * UInt64(i)))
            v |= UInt64(b) << (8 * UInt64(i))
        }
        return .int(Int64(bitPattern: v))
    }

    /// Python 2 `str`: decoded as UTF-8 when valid, otherwise kept as bytes.
    func py2String(_ s: ArraySlice<UInt8>) -> Value {
        if let str = String(validating: s, as: UTF8.self) { return .string(str) }
        return .bytes(Array(s))
    }

    /// Protocol-0 STRING (a quoted repr) or UNICODE (raw-unicode-escape) argument; escapes
    /// are not interpreted, so they are rejected.
    func textString(_ s: String, quoted: Bool) throws -> String {
        var body = Substring(s)
        if quoted {
            guard body.count >= 2, let q = body.first, q == "'" || q == "\"", body.last == q else {
                throw malformed("STRING argument is not quoted")
            }
            body = body.dropFirst().dropLast()
        }
        guard !body.contains("\\") else { throw malformed("protocol-0 string escapes are not supported") }
        return String(body)
    }

    // MARK: Export

    /// Converts a machine value into the public tree, following container references.
    func export(_ v: Value, depth: Int, budget: inout Int) throws -> PickleValue {
        budget -= 1
        guard budget >= 0 else {
            throw TSLMError.malformed(file: file, reason: "\(context): the decoded object tree is too large (shared containers expand beyond the size limit)")
        }
        guard depth <= RestrictedUnpickler.maxDepth else {
            throw TSLMError.malformed(file: file, reason: "\(context): containers nest deeper than \(RestrictedUnpickler.maxDepth) levels (or contain themselves)")
        }
        switch v {
        case .none: return .none
        case let .bool(b): return .bool(b)
        case let .int(i): return .int(i)
        case let .bigInt(b): return .bigInt(b)
        case let .float(f): return .float(f)
        case let .string(s): return .string(s)
        case let .bytes(b): return .bytes(b)
        case let .tuple(t, _): return .tuple(try t.map { try export($0, depth: depth + 1, budget: &budget) })
        case let .global(m, n, _): return .global(module: m, name: n)
        case let .storage(s): return .storage(s)
        case let .tensor(t): return .tensor(t)
        case let .ref(i):
            switch arena[i] {
            case let .list(l): return .list(try l.map { try export($0, depth: depth + 1, budget: &budget) })
            case let .set(s): return .set(try s.map { try export($0, depth: depth + 1, budget: &budget) })
            case let .object(m, n, a, st):
                return .object(PickleObject(module: m, name: n,
                                            arguments: try a.map { try export($0, depth: depth + 1, budget: &budget) },
                                            state: try export(st, depth: depth + 1, budget: &budget)))
            case let .dict(keys, values, _):
                var items: [PickleDictItem] = []
                items.reserveCapacity(keys.count)
                for (k, val) in zip(keys, values) {
                    items.append(PickleDictItem(key: try export(k, depth: depth + 1, budget: &budget),
                                                value: try export(val, depth: depth + 1, budget: &budget)))
                }
                return .dict(items)
            }
        }
    }
}
