import XCTest
import Foundation
import TSLMFormat
@testable import TSLMKernels
import TSLMTestSupport

final class ElementwiseKernelTests: XCTestCase {
    static let counts = [1, 7, 8, 9, 33, 1000, 4099]

    func check(_ got: [Float], _ want: [Float], relative: Float, absolute: Float, _ what: String,
               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        var failures = 0
        for i in 0..<min(got.count, want.count) where !(abs(got[i] - want[i]) <= relative * abs(want[i]) + absolute) {
            failures += 1
            if failures <= 3 { XCTFail("\(what) [\(i)]: \(got[i]) vs \(want[i])", file: file, line: line) }
        }
    }

    /// `Kernels.toHalf` (F16C where built) gives `floatToHalf`'s bits for every float: random bit
    /// patterns (NaNs, infinities, subnormals among them), ties at both rounding edges, counts
    /// with a scalar tail.
    func testToHalfMatchesScalarConversion() {
        var rng = SplitMix64(seed: 71)
        var xs: [Float] = (0..<40_000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        xs += [0, -0, 1, -1, 65504, 65520, 65519.99, -65536, .infinity, -.infinity, .nan, -.nan,
               Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFFC0_1234), 0x1p-14, 0x1p-24, 0x1.8p-25, 0x1p-25,
               0x1p-26, 1 + 0x1p-11, 1 + 0x3p-11, 2049, 2051, 6.0e-8, -6.0e-8, 3.0e-5]
        for count in [xs.count, 7, 8, 9] {
            var got = [UInt16](repeating: 0xDEAD, count: count)
            Kernels.toHalf(xs, count: count, into: &got)
            for i in 0..<count {
                XCTAssertEqual(got[i], floatToHalf(xs[i]), "x = \(xs[i]) (bits 0x\(String(xs[i].bitPattern, radix: 16)))")
            }
        }
    }

    func testRMSNorm() {
        var rng = SplitMix64(seed: 10)
        for count in Self.counts {
            for addOne in [false, true] {
                let x = rng.floats(count, scale: 5), w = rng.floats(count)
                var want = [Float](repeating: 0, count: count)
                Reference.rmsNorm(x, weight: w, count: count, eps: 1e-6, addOne: addOne, out: &want)
                var got = x
                got.withUnsafeMutableBufferPointer { p in  // in place: out aliases x
                    Kernels.rmsNorm(p.baseAddress!, weight: w, count: count, eps: 1e-6, addOne: addOne, out: p.baseAddress!)
                }
                check(got, want, relative: Tolerance.norm, absolute: Tolerance.norm, "rmsNorm \(count) addOne=\(addOne)")
            }
        }
    }

    func testLayerNorm() {
        var rng = SplitMix64(seed: 11)
        for count in Self.counts {
            // An offset mean makes the one-pass variance formula fail; the kernel must centre first.
            let x = rng.floats(count).map { $0 + 100 }, w = rng.floats(count), b = rng.floats(count)
            for (weight, bias) in [(w, b), (nil, nil), (w, nil)] as [([Float]?, [Float]?)] {
                var want = [Float](repeating: 0, count: count), got = want
                Reference.layerNorm(x, weight: weight, bias: bias, count: count, eps: 1e-5, out: &want)
                Kernels.layerNorm(x, weight: weight, bias: bias, count: count, eps: 1e-5, out: &got)
                check(got, want, relative: Tolerance.norm, absolute: Tolerance.norm * 10,
                      "layerNorm \(count) weight \(weight != nil) bias \(bias != nil)")
            }
        }
    }

    func testSoftmax() {
        var rng = SplitMix64(seed: 12)
        for count in Self.counts {
            var x = rng.floats(count, scale: 30)
            if count > 2 { x[1] = -.infinity }  // a masked position
            var want = x, got = x
            Reference.softmax(&want, count: count)
            Kernels.softmax(&got, count: count)
            check(got, want, relative: Tolerance.softmax, absolute: 1e-12, "softmax \(count)")
            XCTAssertEqual(got.reduce(0, +), 1, accuracy: 1e-4)
            if count > 2 { XCTAssertEqual(got[1], 0) }
        }
    }

    func testActivations() {
        var rng = SplitMix64(seed: 13)
        for count in Self.counts {
            var x = rng.floats(count, scale: 12)
            if count > 4 { x[0] = 0; x[1] = -90; x[2] = 90; x[3] = -1e-3 }
            let cases: [(String, (UnsafeMutablePointer<Float>, Int) -> Void, (UnsafeMutablePointer<Float>, Int) -> Void)] = [
                ("silu", { Kernels.silu($0, count: $1) }, { Reference.silu($0, count: $1) }),
                ("geluTanh", { Kernels.geluTanh($0, count: $1) }, { Reference.geluTanh($0, count: $1) }),
                ("geluErf", { Kernels.geluErf($0, count: $1) }, { Reference.geluErf($0, count: $1) }),
            ]
            for (name, fast, reference) in cases {
                var got = x, want = x
                got.withUnsafeMutableBufferPointer { fast($0.baseAddress!, count) }
                want.withUnsafeMutableBufferPointer { reference($0.baseAddress!, count) }
                check(got, want, relative: Tolerance.activationRelative, absolute: Tolerance.activationAbsolute, "\(name) \(count)")
            }
        }
    }

    func testVectorExp() {
        var values: [Float] = [0, -0.0, 1, -1, 88.72, 88.7228, 88.73, -87.3, -103.9, -104, -200, 200, .infinity, -.infinity, .nan]
        var rng = SplitMix64(seed: 14)
        values += (0..<2000).map { _ in rng.uniform() * 100 }
        values += (0..<200).map { _ in rng.uniform() * 1e-3 }
        for start in stride(from: 0, to: values.count - 8, by: 8) {
            let v = SIMD8<Float>(values[start..<(start + 8)])
            let e = VectorMath.exp(v)
            for i in 0..<8 {
                let want = Foundation.exp(Double(v[i]))
                if v[i].isNaN { XCTAssertTrue(e[i].isNaN); continue }
                let wantF = Float(want)
                if wantF.isInfinite { XCTAssertEqual(e[i], .infinity, "exp(\(v[i]))"); continue }
                let allowed = Double(Tolerance.exp) * want + Double(Float.leastNonzeroMagnitude) * 2
                XCTAssertLessThanOrEqual(abs(Double(e[i]) - want), allowed, "exp(\(v[i]))")
            }
        }
    }

    func testArithmetic() {
        var rng = SplitMix64(seed: 15)
        for count in Self.counts {
            let a = rng.floats(count, scale: 3), b = rng.floats(count, scale: 3)
            var got = a, want = a
            Kernels.mul(&got, b, count: count); Reference.mul(&want, b, count: count)
            check(got, want, relative: Tolerance.elementwise, absolute: 0, "mul \(count)")
            got = a; want = a
            Kernels.add(&got, b, count: count); Reference.add(&want, b, count: count)
            check(got, want, relative: Tolerance.elementwise, absolute: 0, "add \(count)")
            got = a; want = a
            Kernels.axpy(&got, b, scale: 0.37, count: count); Reference.axpy(&want, b, scale: 0.37, count: count)
            check(got, want, relative: Tolerance.elementwise, absolute: 1e-7, "axpy \(count)")
        }
    }

    func testDots() {
        var rng = SplitMix64(seed: 16)
        for count in Self.counts + [8224] {
            let a = rng.floats(count), b = rng.floats(count, scale: 4)
            let h = b.map { floatToHalf($0) }
            let magnitude = zip(a, b).reduce(Float(0)) { $0 + abs($1.0 * $1.1) }
            XCTAssertEqual(Kernels.dot(a, b, count: count), Reference.dot(a, b, count: count),
                           accuracy: Tolerance.floatDot * magnitude, "dot \(count)")
            XCTAssertEqual(Kernels.dotF16(a, h, count: count), Reference.dotF16(a, h, count: count),
                           accuracy: Tolerance.floatDot * magnitude * 1.01, "dotF16 \(count)")
            var got = a, want = a
            Kernels.axpyF16(&got, h, scale: -1.5, count: count)
            Reference.axpyF16(&want, h, scale: -1.5, count: count)
            check(got, want, relative: Tolerance.elementwise, absolute: 1e-6, "axpyF16 \(count)")
        }
    }

    func testHalfConversionIsExactForAllHalves() {
        for start in stride(from: 0, to: 65536, by: 8) {
            let h = SIMD8<UInt16>((0..<8).map { UInt16(start + $0) })
            let f = Half8.toFloat(h)
            for i in 0..<8 {
                let want = halfToFloat(h[i])
                if want.isNaN {
                    XCTAssertTrue(f[i].isNaN, "half \(h[i])")
                } else {
                    XCTAssertEqual(f[i].bitPattern, want.bitPattern, "half \(h[i])")
                }
            }
        }
    }
}
