/// Every error the format, the importers and the converter can raise.
///
/// Each case names the file (as the user gave it) and, where it applies, the tensor, key or
/// argument at fault, so that the message alone tells a user what to fix.
public enum TSLMError: Error, Equatable, Sendable {
    /// The operating system refused an operation (open, read, write, rename, mmap).
    case io(file: String, operation: String, errno: Int32)
    /// The file ends before a structure it declares.
    case truncated(file: String, what: String)
    /// The first bytes are not the expected magic.
    case badMagic(file: String, expected: String, found: [UInt8])
    /// The file's version is not one this reader knows.
    case unsupportedVersion(file: String, version: UInt64, supported: String)
    /// A checksum does not match the bytes it covers.
    case checksumMismatch(file: String, what: String, expected: UInt64, actual: UInt64)
    /// A tensor's data lies (partly) outside the file or its data region.
    case tensorOutOfBounds(file: String, tensor: String, offset: UInt64, size: UInt64, limit: UInt64)
    /// Two tensors' data ranges overlap.
    case overlappingTensors(file: String, first: String, second: String)
    /// A shape whose element or byte count does not fit in 64 bits.
    case sizeOverflow(file: String, tensor: String, shape: [UInt64])
    /// The same tensor name appears twice.
    case duplicateTensor(file: String, name: String)
    /// The same metadata key appears twice.
    case duplicateKey(file: String, key: String)
    /// A string (key, name or value) is not valid UTF-8.
    case invalidUTF8(file: String, context: String)
    /// A pickle references a global that is not on the allow-list; it is never executed.
    case forbiddenGlobal(file: String, module: String, name: String)
    /// A dtype the format or the operation does not support.
    case unsupportedDType(file: String, tensor: String, dtype: String)
    /// A tensor's declared byte size does not match its dtype and shape.
    case sizeMismatch(file: String, tensor: String, expected: UInt64, actual: UInt64)
    /// A tensor's shape is invalid for the operation (e.g. a row not a whole number of blocks).
    case invalidShape(file: String, tensor: String, shape: [Int], reason: String)
    /// A required metadata key is missing, or has the wrong type.
    case missingKey(file: String, key: String)
    case wrongKeyType(file: String, key: String, expected: String, found: String)
    /// A tensor that was asked for does not exist.
    case missingTensor(file: String, tensor: String)
    /// A tensor name the architecture's name map does not know.
    case unmappedTensor(file: String, architecture: String, tensor: String)
    /// An architecture with no importer or runtime support.
    case unknownArchitecture(file: String, architecture: String)
    /// The structure is inconsistent in a way no more specific case describes.
    case malformed(file: String, reason: String)
    /// zstd failed to compress or decompress.
    case compression(file: String, tensor: String, reason: String)
    /// A caller passed an invalid argument.
    case invalidArgument(name: String, reason: String)
}

extension TSLMError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .io(file, operation, errno):
            return "\(file): \(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case let .truncated(file, what):
            return "\(file): file is truncated: \(what) extends past the end of the file"
        case let .badMagic(file, expected, found):
            let hex = found.map { String(format2: $0) }.joined(separator: " ")
            return "\(file): bad magic: expected \(expected), found bytes [\(hex)]"
        case let .unsupportedVersion(file, version, supported):
            return "\(file): unsupported format version \(version) (this build reads \(supported))"
        case let .checksumMismatch(file, what, expected, actual):
            return "\(file): checksum mismatch in \(what): stored \(hex64(expected)), computed \(hex64(actual))"
        case let .tensorOutOfBounds(file, tensor, offset, size, limit):
            return "\(file): tensor '\(tensor)' data [\(offset), +\(size)) lies outside the data region (ends at \(limit))"
        case let .overlappingTensors(file, first, second):
            return "\(file): tensors '\(first)' and '\(second)' overlap in the file"
        case let .sizeOverflow(file, tensor, shape):
            return "\(file): tensor '\(tensor)' shape \(shape) overflows a 64-bit size"
        case let .duplicateTensor(file, name):
            return "\(file): duplicate tensor name '\(name)'"
        case let .duplicateKey(file, key):
            return "\(file): duplicate metadata key '\(key)'"
        case let .invalidUTF8(file, context):
            return "\(file): invalid UTF-8 in \(context)"
        case let .forbiddenGlobal(file, module, name):
            return "\(file): pickle references forbidden global '\(module).\(name)'; only tensors and plain containers are loaded, no code is run"
        case let .unsupportedDType(file, tensor, dtype):
            return "\(file): tensor '\(tensor)' has unsupported dtype '\(dtype)'"
        case let .sizeMismatch(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' has \(actual) bytes of data, its dtype and shape need \(expected)"
        case let .invalidShape(file, tensor, shape, reason):
            return "\(file): tensor '\(tensor)' has invalid shape \(shape): \(reason)"
        case let .missingKey(file, key):
            return "\(file): required metadata key '\(key)' is missing"
        case let .wrongKeyType(file, key, expected, found):
            return "\(file): metadata key '\(key)' has type \(found), expected \(expected)"
        case let .missingTensor(file, tensor):
            return "\(file): no tensor named '\(tensor)'"
        case let .unmappedTensor(file, architecture, tensor):
            return "\(file): tensor '\(tensor)' is not part of the \(architecture) architecture's name map"
        case let .unknownArchitecture(file, architecture):
            return "\(file): unknown architecture '\(architecture)'"
        case let .malformed(file, reason):
            return "\(file): malformed file: \(reason)"
        case let .compression(file, tensor, reason):
            return "\(file): tensor '\(tensor)': zstd: \(reason)"
        case let .invalidArgument(name, reason):
            return "invalid argument \(name): \(reason)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@inline(__always) func hex64(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 16 - s.count)) + s
}

extension String {
    init(format2 byte: UInt8) {
        let s = String(byte, radix: 16)
        self = s.count == 1 ? "0" + s : s
    }
}
