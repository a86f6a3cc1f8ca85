import HumeLaneMath

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

    /// Lane-wise maximum (the stdlib's `pointwiseMax` is not inlined and costs a call per use).
    @_transparent @usableFromInline
    static func maximum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }

    /// Lane-wise minimum.
    @_transparent @usableFromInline
    static func minimum(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .< a) }

    /// e^x lane-wise (`LaneMath.exp`, shared with the embedder).
    @_transparent @usableFromInline
    static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> { LaneMath.exp(x) }

    /// Scalar e^x by the same algorithm as the lane-wise version.
    @_transparent @usableFromInline
    static func exp(_ x: Float) -> Float {
        if !(x >= expFloor) { return 0 }
        let xc = min(x, 88)
        let t = xc * log2e + roundMagic
        let n = t - roundMagic
        let r = (xc - n * ln2Hi) - n * ln2Lo
        var p: Float = 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        let bits = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000 &+ 127
        return p * Float(bitPattern: UInt32(bitPattern: bits &<< 23))
    }

    /// Float lanes to Double lanes.
    @_transparent @usableFromInline
    static func widen(_ v: SIMD8<Float>) -> SIMD8<Double> {
        SIMD8(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3]), Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7]))
    }

    /// Double lanes to Float lanes (rounded to nearest).
    @_transparent @usableFromInline
    static func narrow(_ v: SIMD8<Double>) -> SIMD8<Float> {
        SIMD8(Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]), Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]))
    }

    /// Largest lane, in a fixed order.
    @_transparent @usableFromInline
    static func horizontalMax(_ v: SIMD8<Float>) -> Float {
        let l = v.lowHalf, h = v.highHalf
        let a = l.replacing(with: h, where: l .< h)
        return max(max(a[0], a[1]), max(a[2], a[3]))
    }

    /// Sum of lanes, in a fixed order (so results do not depend on the compiler's reassociation).
    @_transparent @usableFromInline
    static func horizontalSum(_ v: SIMD8<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        return b[0] + b[1]
    }
}
