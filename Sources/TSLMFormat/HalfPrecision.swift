/// Conversions between binary32 and the two 16-bit float formats, bit-exact and portable.

/// binary16 bits → binary32.
@inline(__always)
public func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exp = UInt32(h >> 10) & 0x1F
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        // Subnormal: value = mant · 2^-24.
        let v = Float(mant) * (1.0 / 16_777_216.0)
        return sign != 0 ? -v : v
    }
    if exp == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13))
    }
    return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
}

/// binary32 → binary16 bits, round to nearest even; overflow gives ±infinity, NaN stays NaN.
@inline(__always)
public func floatToHalf(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    let sign = UInt16((x >> 16) & 0x8000)
    let exp = Int32((x >> 23) & 0xFF)
    var mant = x & 0x7F_FFFF
    if exp == 0xFF {
        // Inf or NaN (keep a quiet NaN bit so NaN never becomes Inf).
        return sign | 0x7C00 | (mant != 0 ? UInt16(0x200 | (mant >> 13)) : 0)
    }
    let e = exp - 127 + 15
    if e >= 31 { return sign | 0x7C00 }
    if e <= 0 {
        // Subnormal half or zero.
        if e < -10 { return sign }
        mant |= 0x80_0000
        let shift = UInt32(14 - e)
        let half = mant >> shift
        let rem = mant & ((1 << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        var r = half
        if rem > halfway || (rem == halfway && (half & 1) == 1) { r += 1 }
        return sign | UInt16(r)
    }
    var r = (UInt32(e) << 10) | (mant >> 13)
    let rem = mant & 0x1FFF
    if rem > 0x1000 || (rem == 0x1000 && (r & 1) == 1) { r += 1 }  // may carry into exponent: correct
    return sign | UInt16(r)
}

/// bfloat16 bits → binary32 (exact).
@inline(__always)
public func bf16ToFloat(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// binary32 → bfloat16 bits, round to nearest even (as PyTorch); NaN stays a quiet NaN.
@inline(__always)
public func floatToBF16(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    if f.isNaN { return UInt16((x >> 16) | 0x40) }
    let rounding = 0x7FFF + ((x >> 16) & 1)
    return UInt16((x &+ rounding) >> 16)
}
