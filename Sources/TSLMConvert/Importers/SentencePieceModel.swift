import TSLMFormat

/// The parts of a SentencePiece `ModelProto` (a `tokenizer.model` file) that a tokenizer needs,
/// read with a minimal protobuf decoder.
///
/// Field numbers, from `sentencepiece_model.proto`:
/// - `ModelProto`: 1 `pieces` (repeated `SentencePiece`), 2 `trainer_spec`, 3 `normalizer_spec`
///   (others skipped).
/// - `SentencePiece`: 1 `piece` (string), 2 `score` (float), 3 `type` (enum: 1 normal,
///   2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte; default 1).
/// - `TrainerSpec`: 3 `model_type` (enum: 1 unigram, 2 BPE, 3 word, 4 char; default 1),
///   35 `byte_fallback` (bool), 40 `unk_id` (default 0), 41 `bos_id` (default 1),
///   42 `eos_id` (default 2), 43 `pad_id` (default −1), all int32.
/// - `NormalizerSpec`: 1 `name`, 3 `add_dummy_prefix` (default true),
///   4 `remove_extra_whitespaces` (default true), 5 `escape_whitespaces` (default true).
///
/// Unknown fields of wire types 0, 1, 2 and 5 are skipped; groups (3, 4) and any length or
/// varint that runs past its message raise `malformed`.
public struct SentencePieceModel: Sendable, Equatable {
    /// One vocabulary entry.
    public struct Piece: Sendable, Equatable {
        public var piece: String
        public var score: Float
        /// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte (the GGUF numbering).
        public var type: Int32
    }

    public var pieces: [Piece] = []
    /// 1 unigram, 2 BPE, 3 word, 4 char.
    public var modelType: Int32 = 1
    public var byteFallback = false
    public var unkId: Int32 = 0
    public var bosId: Int32 = 1
    public var eosId: Int32 = 2
    public var padId: Int32 = -1
    public var normalizerName: String?
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true

    /// The `tokenizer.model` value for this model type: `llama` for BPE; `unigram`, `word` or
    /// `char` otherwise (no runtime support for those).
    public var tokenizerModelName: String {
        switch modelType {
        case 2: "llama"
        case 3: "word"
        case 4: "char"
        default: "unigram"
        }
    }

    /// Parses a serialized `ModelProto`. `file` names the source in errors.
    public init(bytes: [UInt8], file: String) throws {
        try bytes.withUnsafeBytes { buf in
            var r = ProtobufReader(buf, file: file, message: "ModelProto")
            while let (field, wire) = try r.nextField() {
                switch (field, wire) {
                case (1, 2):
                    var m = try r.submessage("SentencePiece #\(pieces.count)")
                    pieces.append(try Self.piece(&m, index: pieces.count))
                case (2, 2):
                    var m = try r.submessage("TrainerSpec")
                    try readTrainerSpec(&m)
                case (3, 2):
                    var m = try r.submessage("NormalizerSpec")
                    try readNormalizerSpec(&m)
                case (1...3, _):
                    throw r.error("field \(field) has wire type \(wire)")
                default:
                    try r.skip(wire)
                }
            }
        }
        guard !pieces.isEmpty else { throw TSLMError.malformed(file: file, reason: "SentencePiece model has no pieces") }
    }

    private static func piece(_ r: inout ProtobufReader, index: Int) throws -> Piece {
        var p = Piece(piece: "", score: 0, type: 1)
        var sawPiece = false
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2):
                p.piece = try r.string("piece")
                sawPiece = true
            case (2, 5):
                p.score = Float(bitPattern: try r.fixed32())
            case (3, 0):
                let t = Int32(truncatingIfNeeded: try r.varint())
                guard (1...6).contains(t) else { throw r.error("piece #\(index) has unknown type \(t)") }
                p.type = t
            case (1...3, _):
                throw r.error("field \(field) has wire type \(wire)")
            default:
                try r.skip(wire)
            }
        }
        guard sawPiece else { throw r.error("piece #\(index) has no text") }
        return p
    }

    private mutating func readTrainerSpec(_ r: inout ProtobufReader) throws {
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (3, 0): modelType = Int32(truncatingIfNeeded: try r.varint())
            case (35, 0): byteFallback = try r.varint() != 0
            case (40, 0): unkId = Int32(truncatingIfNeeded: try r.varint())
            case (41, 0): bosId = Int32(truncatingIfNeeded: try r.varint())
            case (42, 0): eosId = Int32(truncatingIfNeeded: try r.varint())
            case (43, 0): padId = Int32(truncatingIfNeeded: try r.varint())
            case (3, _), (35, _), (40...43, _): throw r.error("field \(field) has wire type \(wire)")
            default: try r.skip(wire)
            }
        }
    }

    private mutating func readNormalizerSpec(_ r: inout ProtobufReader) throws {
        while let (field, wire) = try r.nextField() {
            switch (field, wire) {
            case (1, 2): normalizerName = try r.string("name")
            case (3, 0): addDummyPrefix = try r.varint() != 0
            case (4, 0): removeExtraWhitespaces = try r.varint() != 0
            case (5, 0): escapeWhitespaces = try r.varint() != 0
            case (1, _), (3...5, _): throw r.error("field \(field) has wire type \(wire)")
            default: try r.skip(wire)
            }
        }
    }
}

/// A bounds-checked reader of protobuf wire format over one message's bytes.
struct ProtobufReader {
    private let bytes: UnsafeRawBufferPointer
    private var pos = 0
    let file: String
    /// The message being read, for errors ("ModelProto", "TrainerSpec", …).
    let message: String

    init(_ bytes: UnsafeRawBufferPointer, file: String, message: String) {
        self.bytes = bytes
        self.file = file
        self.message = message
    }

    func error(_ what: String) -> TSLMError {
        .malformed(file: file, reason: "protobuf \(message) at byte \(pos): \(what)")
    }

    /// A base-128 varint of at most 10 bytes.
    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard pos < bytes.count else { throw error("truncated varint") }
            let b = bytes[pos]
            pos += 1
            guard shift < 64, shift < 63 || b <= 1 else { throw error("varint longer than 64 bits") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    /// The next field's number and wire type; nil at the end of the message.
    mutating func nextField() throws -> (Int, Int)? {
        guard pos < bytes.count else { return nil }
        let key = try varint()
        let field = key >> 3
        guard field >= 1, field <= 0x1FFF_FFFF else { throw error("invalid field number \(field)") }
        return (Int(field), Int(key & 7))
    }

    mutating func fixed32() throws -> UInt32 {
        guard bytes.count - pos >= 4 else { throw error("truncated fixed32") }
        let v = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: pos, as: UInt32.self))
        pos += 4
        return v
    }

    /// A length-delimited field's bytes.
    mutating func lengthDelimited() throws -> UnsafeRawBufferPointer {
        let n = try varint()
        guard n <= UInt64(bytes.count - pos) else { throw error("length \(n) runs past the end of the message") }
        let s = UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + Int(n))])
        pos += Int(n)
        return s
    }

    mutating func submessage(_ name: String) throws -> ProtobufReader {
        ProtobufReader(try lengthDelimited(), file: file, message: name)
    }

    mutating func string(_ what: String) throws -> String {
        let s = try lengthDelimited()
        guard let str = String(validatingUTF8Bytes: s) else {
            throw TSLMError.invalidUTF8(file: file, context: "protobuf \(message) \(what)")
        }
        return str
    }

    /// Skips a field's value of wire type `wire`.
    mutating func skip(_ wire: Int) throws {
        switch wire {
        case 0: _ = try varint()
        case 1:
            guard bytes.count - pos >= 8 else { throw error("truncated fixed64") }
            pos += 8
        case 2: _ = try lengthDelimited()
        case 5:
            guard bytes.count - pos >= 4 else { throw error("truncated fixed32") }
            pos += 4
        default: throw error("unsupported wire type \(wire)")
        }
    }
}
