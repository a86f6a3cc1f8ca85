/// Lane-wise math shared by the numeric libraries (the embedder's attention softmax, the denoisers' posteriors).
/// Everything is `+ - *` and bit moves, so results are identical on every platform and vectorise on any SIMD width.
public enum LaneMath {
    @usableFromInline static let log2e: Float = 1.442_695_04
    @usableFromInline static let ln2Hi: Float = 0.693_145_751_953_125
    @usableFromInline static let ln2Lo: Float = 1.428_606_765_330_187e-06
    /// 1.5·2²³: adding it rounds to an integer held in the low mantissa bits (generic SIMD rounding and
    /// Float→Int conversions are scalar loops in Swift; this is two vector adds and a bit cast).
    @usableFromInline static let roundMagic: Float = 12_582_912
    /// Arguments below this are clamped to it.
    public static let expFloor: Float = -87

    /// e^x lane-wise for x ≤ 88, relative error about 2e-7 for x ≥ -87: x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split
    /// in two for exactness), e^r by its degree-6 Taylor polynomial, 2ⁿ built in the exponent bits. Inputs below
    /// -87 are clamped (result e^-87 ≈ 1.6e-38 rather than 0), negligible next to a softmax's maximum weight 1.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let floor = SIMD8<Float>(repeating: expFloor)
        let xc = x.replacing(with: floor, where: x .< floor)
        let t = xc * log2e + roundMagic
        let n = t - roundMagic
        let r = (xc - n * ln2Hi) - n * ln2Lo          // |r| <= ln2/2
        var p = SIMD8<Float>(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let bits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127
        return p * unsafeBitCast(bits &<< 23, to: SIMD8<Float>.self)
    }
}
