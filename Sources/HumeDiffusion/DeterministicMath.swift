#if canImport(Glibc)
import Glibc  // links libm for sqrt/rint, which the Swift stdlib lowers to C calls on Linux
#endif

/// Elementary functions built only from IEEE-754 `+ - * /` and `sqrt`, which every platform rounds the
/// same way; the C library's `log`/`cos`/`exp` may differ in the last bit between glibc and Darwin,
/// and seeded samples must be bit-identical across platforms. Accuracy is a few ulps in `Double`.
public enum DeterministicMath {
    private static let ln2Hi = 6.93147180369123816490e-01
    private static let ln2Lo = 1.90821492927058770002e-10

    /// Natural logarithm for finite `x > 0`.
    public static func log(_ x: Double) -> Double {
        precondition(x > 0 && x.isFinite, "log domain")
        // x = m * 2^e with m in [sqrt(1/2), sqrt(2)).
        var e = Double(x.exponent)
        var m = x.significand                 // [1, 2)
        if m > 1.4142135623730951 { m *= 0.5; e += 1 }
        let s = (m - 1) / (m + 1)              // |s| <= 0.1716
        let s2 = s * s
        // 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...); s^2 <= 0.0295 so 12 terms reach double precision.
        var poly = 1.0 / 25
        var k = 23.0
        while k >= 1 { poly = poly * s2 + 1 / k; k -= 2 }
        return e * ln2Hi + (2 * s * poly + e * ln2Lo)
    }

    /// e^x for finite x (underflows to 0 below about -745, overflows to +inf above about 709).
    public static func exp(_ x: Double) -> Double {
        if x < -745.2 { return 0 }
        if x > 709.8 { return .infinity }
        let n = (x / 0.6931471805599453).rounded(.toNearestOrEven)
        let r = (x - n * ln2Hi) - n * ln2Lo    // |r| <= 0.347
        var term = 1.0, sum = 1.0
        for k in 1...17 { term = term * r / Double(k); sum += term }
        return scaleByPowerOfTwo(sum, Int(n))
    }

    /// (sin 2πu, cos 2πu) for u in [0, 1].
    public static func sinCosTwoPi(_ u: Double) -> (sin: Double, cos: Double) {
        // Reduce to an octant: 2πu = q·π/2 + r with |r| <= π/4.
        let q = (u * 4).rounded(.toNearestOrEven)
        let r = (u * 4 - q) * (Double.pi / 2)
        let (s, c) = sinCosSmall(r)
        switch Int(q) & 3 {
        case 0: return (s, c)
        case 1: return (c, -s)
        case 2: return (-s, -c)
        default: return (-c, s)
        }
    }

    /// cos x for |x| up to a few π (used by the cosine schedule on [0, π/2]).
    public static func cos(_ x: Double) -> Double { sinCosTwoPi(x / (2 * Double.pi)).cos }

    /// sin x for |x| up to a few π.
    public static func sin(_ x: Double) -> Double { sinCosTwoPi(x / (2 * Double.pi)).sin }

    /// x^y for x > 0 (via exp/log).
    public static func pow(_ x: Double, _ y: Double) -> Double { exp(y * log(x)) }

    private static func sinCosSmall(_ r: Double) -> (Double, Double) {
        let r2 = r * r
        var s = 0.0, c = 0.0
        // Taylor to r^21 / r^22; |r| <= π/4 so the remainder is below 1e-17.
        var k = 21.0
        s = 1
        while k >= 3 { s = 1 - s * r2 / (k * (k - 1)); k -= 2 }
        s *= r
        k = 22
        c = 1
        while k >= 2 { c = 1 - c * r2 / (k * (k - 1)); k -= 2 }
        return (s, c)
    }

    private static func scaleByPowerOfTwo(_ x: Double, _ n: Int) -> Double {
        // Exact multiplication by 2^n in at most two steps (keeps subnormal results correct enough).
        if n > 1000 { return x * Double(sign: .plus, exponent: 1000, significand: 1) * Double(sign: .plus, exponent: n - 1000, significand: 1) }
        if n < -1000 { return x * Double(sign: .plus, exponent: -1000, significand: 1) * Double(sign: .plus, exponent: n + 1000, significand: 1) }
        return x * Double(sign: .plus, exponent: n, significand: 1)
    }
}
