/// SplitMix64 (Steele, Lea & Flood 2014): a tiny seeded generator, the same bits on every platform. It expands the
/// diffusion library's seeds into xoshiro state and draws the chaos runs' and the retrieval benchmark's numbers.
public struct SplitMix64: Sendable {
    private var state: UInt64
    /// Creates the generator from a seed.
    public init(seed: UInt64) { state = seed }
    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A whole number in `range` (modulo bias below 2⁻⁶⁰ for the small ranges it is used with).
    public mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    /// A uniform number in (0, 1).
    public mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / Double(1 << 53) }
}
