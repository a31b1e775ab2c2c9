import CZstd

/// zstd compression of whole buffers (one frame each).
public enum Zstd {
    /// Compresses `src`; returns nil if compression fails.
    public static func compress(_ src: UnsafeRawBufferPointer, level: Int32 = 3) -> [UInt8]? {
        let bound = ZSTD_compressBound(src.count)
        var out = [UInt8](repeating: 0, count: bound)
        let n = out.withUnsafeMutableBytes { dst in
            ZSTD_compress(dst.baseAddress, bound, src.baseAddress, src.count, level)
        }
        if ZSTD_isError(n) != 0 { return nil }
        out.removeSubrange(n...)
        return out
    }

    /// Decompresses one frame into `dst`, which must be exactly the expected size.
    /// Throws unless exactly `dst.count` bytes come out.
    public static func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer,
                                  file: String, tensor: String) throws {
        let declared = ZSTD_getFrameContentSize(src.baseAddress, src.count)
        if declared == ZSTD_CONTENTSIZE_ERROR {
            throw TSLMError.compression(file: file, tensor: tensor, reason: "not a zstd frame")
        }
        if declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != UInt64(dst.count) {
            throw TSLMError.compression(file: file, tensor: tensor,
                                        reason: "frame holds \(declared) bytes, expected \(dst.count)")
        }
        let n = ZSTD_decompress(dst.baseAddress, dst.count, src.baseAddress, src.count)
        if ZSTD_isError(n) != 0 {
            throw TSLMError.compression(file: file, tensor: tensor, reason: String(cString: ZSTD_getErrorName(n)))
        }
        guard n == dst.count else {
            throw TSLMError.compression(file: file, tensor: tensor, reason: "decompressed \(n) bytes, expected \(dst.count)")
        }
    }
}
