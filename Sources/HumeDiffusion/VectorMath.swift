/// Lane-wise helpers for the denoisers' inner loops. Everything here is `+ - *` and bit moves, so results
/// are identical on every platform and vectorise on any SIMD width.
@usableFromInline
enum VectorMath {
    @usableFromInline static let log2e: Float = 1.442_695_04
    @usableFromInline static let ln2Hi: Float = 0.693_145_751_953_125
    @usableFromInline static let ln2Lo: Float = 1.428_606_765_330_187e-06
    /// 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    @usableFromInline static let roundMagic: Float = 12_582_912
    /// Below this exp returns exactly 0 (the smallest normal float is e^-87.3).
    @usableFromInline static let expFloor: Float = -87

    /// e^x lane-wise, relative error about 2e-7 for x in [-87, 88]; exactly 0 below -87.
    @inline(__always) @usableFromInline
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let xc = pointwiseMin(pointwiseMax(x, SIMD8(repeating: expFloor)), SIMD8(repeating: 88))
        let t = xc * log2e + roundMagic
        let n = t - roundMagic
        let r = (xc - n * ln2Hi) - n * ln2Lo          // |r| <= ln2/2
        var p = SIMD8<Float>(repeating: 1.0 / 5040)
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let bits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000 &+ 127
        let scale = unsafeBitCast(bits &<< 23, to: SIMD8<Float>.self)
        return (p * scale).replacing(with: 0, where: x .< expFloor)
    }

    /// Scalar e^x by the same algorithm as the lane-wise version.
    @inline(__always) @usableFromInline
    static func exp(_ x: Float) -> Float {
        if !(x >= expFloor) { return 0 }
        let xc = min(x, 88)
        let t = xc * log2e + roundMagic
        let n = t - roundMagic
        let r = (xc - n * ln2Hi) - n * ln2Lo
        var p: Float = 1.0 / 5040
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let bits = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000 &+ 127
        return p * Float(bitPattern: UInt32(bitPattern: bits &<< 23))
    }

    /// Largest lane, in a fixed order.
    @inline(__always) @usableFromInline
    static func horizontalMax(_ v: SIMD8<Float>) -> Float {
        let a = pointwiseMax(v.lowHalf, v.highHalf)
        let b = pointwiseMax(a.lowHalf, a.highHalf)
        return max(b[0], b[1])
    }

    /// Sum of lanes, in a fixed order (so results do not depend on the compiler's reassociation).
    @inline(__always) @usableFromInline
    static func horizontalSum(_ v: SIMD8<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        return b[0] + b[1]
    }
}
