import HumeCore

/// A seeded, platform-independent random source: xoshiro256** (Blackman & Vigna) seeded by SplitMix64,
/// with standard normals by Box–Muller on `DeterministicMath`, so a seed gives the same bits everywhere.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    private var spareNormal: Double?

    /// Creates the generator from a 64-bit seed.
    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next(); s1 = sm.next(); s2 = sm.next(); s3 = sm.next()
        spareNormal = nil
    }

    /// The next 64 random bits (xoshiro256**).
    public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A standard normal sample (Box–Muller; the second value of each pair is kept for the next call).
    public mutating func nextNormal() -> Double {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        let u1 = 1 - nextUniform()            // (0, 1]: log is finite
        let u2 = nextUniform()
        let r = (-2 * DeterministicMath.log(u1)).squareRoot()
        let (s, c) = DeterministicMath.sinCosTwoPi(u2)
        spareNormal = r * s
        return r * c
    }

    /// Fills `buffer` with standard normal samples as `Float`.
    public mutating func fillNormal(_ buffer: inout [Float]) {
        for i in buffer.indices { buffer[i] = Float(nextNormal()) }
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

extension RGBImage {
    /// A sticker-like synthetic image: six flat discs of seeded random colours on white. Benchmarks and tests condition
    /// the denoiser on these where a database would be an unneeded dependency.
    public static func discs(side: Int, seed: UInt64) -> RGBImage {
        var rng = SeededRandom(seed: seed)
        var image = RGBImage(width: side, height: side, fill: 1)
        for _ in 0..<6 {
            let cx = rng.nextUniform() * Double(side), cy = rng.nextUniform() * Double(side)
            let r = (0.1 + 0.25 * rng.nextUniform()) * Double(side)
            let colour = (0..<3).map { _ in Float(rng.nextUniform() * 2 - 1) }
            for y in 0..<side {
                for x in 0..<side {
                    let dx = Double(x) - cx, dy = Double(y) - cy
                    if dx * dx + dy * dy < r * r { for c in 0..<3 { image[c, x, y] = colour[c] } }
                }
            }
        }
        return image
    }
}
