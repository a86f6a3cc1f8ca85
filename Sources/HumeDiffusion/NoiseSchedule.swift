/// A noise level in the variance-preserving convention `x_t = √ᾱ·x₀ + √(1-ᾱ)·ε`.
/// The equivalent variance-exploding level (EDM) is `σ = √((1-ᾱ)/ᾱ)`, with `x_VE = x_t / √ᾱ`.
public struct NoiseLevel: Hashable, Sendable {
    /// ᾱ in (0, 1]: the signal fraction of the variance.
    public let alphaBar: Double

    /// Creates a level from ᾱ.
    public init(alphaBar: Double) {
        precondition(alphaBar > 0 && alphaBar <= 1, "alphaBar must be in (0, 1]")
        self.alphaBar = alphaBar
    }

    /// Creates a level from an EDM σ: ᾱ = 1 / (1 + σ²).
    public init(sigma: Double) {
        precondition(sigma >= 0 && sigma.isFinite, "sigma must be finite and non-negative")
        self.alphaBar = 1 / (1 + sigma * sigma)
    }

    /// The EDM (variance-exploding) noise standard deviation √((1-ᾱ)/ᾱ).
    public var sigma: Double { ((1 - alphaBar) / alphaBar).squareRoot() }

    /// log SNR = log(ᾱ / (1-ᾱ)); +∞ at ᾱ = 1.
    public var logSNR: Double {
        alphaBar >= 1 ? .infinity : DeterministicMath.log(alphaBar / (1 - alphaBar))
    }
}

/// A continuous-time noise schedule: ᾱ(t) for t in [0, 1], decreasing from ᾱ(0) ≈ 1 to ᾱ(1) ≈ 0.
public protocol NoiseSchedule: Sendable {
    /// ᾱ at time t in [0, 1].
    func alphaBar(at t: Double) -> Double
}

/// The cosine schedule used by Kamb & Ganguli and the prototype: ᾱ(t) = cos²(t / (1+s) · π/2), s = 0.008.
/// ᾱ(0) = 1 and ᾱ(1) = sin²(s/(1+s)·π/2) ≈ 1.55e-4, so the last noise level is finite.
public struct CosineSchedule: NoiseSchedule {
    /// The offset s (0.008 by default).
    public var offset: Double
    /// Creates the schedule.
    public init(offset: Double = 0.008) { self.offset = offset }
    public func alphaBar(at t: Double) -> Double {
        let c = DeterministicMath.cos(t / (1 + offset) * Double.pi / 2)
        return c * c
    }
}

/// The linear-β schedule of DDPM in continuous time (the VP SDE): β(t) = β₀ + t(β₁-β₀),
/// ᾱ(t) = exp(-(β₀t + ½(β₁-β₀)t²)), with β₀ = 0.1 and β₁ = 20 (DDPM's 1e-4…0.02 over 1000 steps).
public struct LinearSchedule: NoiseSchedule {
    /// β at t = 0.
    public var betaStart: Double
    /// β at t = 1.
    public var betaEnd: Double
    /// Creates the schedule.
    public init(betaStart: Double = 0.1, betaEnd: Double = 20) {
        self.betaStart = betaStart
        self.betaEnd = betaEnd
    }
    public func alphaBar(at t: Double) -> Double {
        DeterministicMath.exp(-(betaStart * t + 0.5 * (betaEnd - betaStart) * t * t))
    }
}
