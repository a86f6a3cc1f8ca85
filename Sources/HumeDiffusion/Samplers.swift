/// DDIM (Song et al. 2021) over a continuous-time schedule: steps at t = 1, (N−1)/N, …, 1/N, then to
/// ᾱ = 1. η = 0 is the deterministic ODE sampler; η = 1 matches DDPM's ancestral noise.
public struct DDIMSampler: Sendable {
    /// The noise schedule ᾱ(t).
    public var schedule: any NoiseSchedule
    /// Number of denoiser evaluations.
    public var steps: Int
    /// Stochasticity η ≥ 0.
    public var eta: Double
    /// Time the reverse process starts at, in (0, 1]: 1 starts from pure noise; less starts from a
    /// re-noised image (SDEdit-style editing), and the N steps are spread over [0, startTime].
    public var startTime: Double

    /// Creates a sampler (defaults: the cosine schedule, 20 steps, η = 0 — the prototype's settings).
    /// - Throws: `.invalidArgument` if `steps < 1`, `eta < 0` or `startTime` is outside (0, 1].
    public init(schedule: any NoiseSchedule = CosineSchedule(), steps: Int = 20, eta: Double = 0,
                startTime: Double = 1) throws {
        guard startTime > 0, startTime <= 1 else {
            throw DiffusionError(.invalidArgument, "DDIM start time \(startTime) is not allowed; it must be in (0, 1]")
        }
        self.startTime = startTime
        guard steps >= 1 else {
            throw DiffusionError(.invalidArgument, "DDIM step count \(steps) is not allowed; it must be at least 1")
        }
        guard eta >= 0, eta.isFinite else {
            throw DiffusionError(.invalidArgument, "DDIM η = \(eta) is not allowed; it must be finite and 0 or more")
        }
        self.schedule = schedule
        self.steps = steps
        self.eta = eta
    }

    /// The times the denoiser is evaluated at, from high to low noise: T, T(N−1)/N, …, T/N with T = startTime.
    public var timesteps: [Double] { (0..<steps).map { startTime * Double(steps - $0) / Double(steps) } }

    /// Noises a clean image to the sampler's start time, `√ᾱ·x₀ + √(1−ᾱ)·ε`, with ε from `rng`; the result
    /// is what `sample(denoiser:from:rng:)` expects when `startTime < 1`.
    public func noised(_ clean: RGBImage, rng: inout SeededRandom) -> RGBImage {
        let alphaBar = schedule.alphaBar(at: startTime)
        let a = Float(alphaBar.squareRoot()), b = Float((1 - alphaBar).squareRoot())
        var x = clean
        for i in x.pixels.indices { x.pixels[i] = a * clean.pixels[i] + b * Float(rng.nextNormal()) }
        return x
    }

    /// ᾱ at each timestep, followed by the final ᾱ = 1 (clean).
    public var alphaBars: [Double] { timesteps.map { schedule.alphaBar(at: $0) } + [1] }

    /// One DDIM update from ᾱ_t to ᾱ_s (ᾱ_s > ᾱ_t) given the denoiser's prediction x̂₀, in place on `x`:
    /// ε̂ = (x − √ᾱ_t x̂₀)/√(1−ᾱ_t), σ = η √((1−ᾱ_s)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_s),
    /// x ← √ᾱ_s x̂₀ + √(1−ᾱ_s−σ²) ε̂ + σ z.
    /// - Parameter noise: z, required when the step's σ > 0 (η > 0 and ᾱ_s < 1).
    public static func step(_ x: inout [Float], prediction: [Float], from alphaBarT: Double, to alphaBarS: Double,
                            eta: Double, noise: [Float]? = nil) {
        precondition(x.count == prediction.count)
        let sigma = eta * ((1 - alphaBarS) / (1 - alphaBarT)).squareRoot() * max(0, 1 - alphaBarT / alphaBarS).squareRoot()
        let cx = Float(alphaBarS.squareRoot())
        let ce = Float(max(0, 1 - alphaBarS - sigma * sigma).squareRoot())
        let st = Float(alphaBarT.squareRoot()), inv = Float(1 / (1 - alphaBarT).squareRoot())
        let cz = Float(sigma)
        if cz > 0 {
            guard let noise else { preconditionFailure("a stochastic DDIM step needs noise") }
            for i in x.indices {
                let eps = (x[i] - st * prediction[i]) * inv
                x[i] = cx * prediction[i] + ce * eps + cz * noise[i]
            }
        } else {
            for i in x.indices {
                let eps = (x[i] - st * prediction[i]) * inv
                x[i] = cx * prediction[i] + ce * eps
            }
        }
    }

    /// Generates one image from pure noise drawn from `seed`; the same seed gives the same bits.
    /// - Throws: whatever the denoiser throws.
    public func sample(denoiser: some Denoiser, seed: UInt64) throws -> RGBImage {
        var rng = SeededRandom(seed: seed)
        var x = RGBImage(width: denoiser.width, height: denoiser.height)
        rng.fillNormal(&x.pixels)
        return try sample(denoiser: denoiser, from: x, rng: &rng)
    }

    /// Runs the reverse process from a given x at t = `startTime` (pure noise, or a re-noised image).
    public func sample(denoiser: some Denoiser, from start: RGBImage, rng: inout SeededRandom) throws -> RGBImage {
        var x = start
        var prediction = RGBImage(width: start.width, height: start.height)
        var noise = [Float](repeating: 0, count: start.pixels.count)
        let abar = alphaBars
        for i in 0..<steps {
            try denoiser.denoise(x, level: NoiseLevel(alphaBar: abar[i]), into: &prediction)
            let stochastic = eta > 0 && abar[i + 1] < 1
            if stochastic { rng.fillNormal(&noise) }
            DDIMSampler.step(&x.pixels, prediction: prediction.pixels, from: abar[i], to: abar[i + 1],
                             eta: eta, noise: stochastic ? noise : nil)
        }
        return x
    }
}

/// The EDM sampler (Karras et al. 2022, Algorithm 1 with S_churn = 0): σ_i = (σ_max^{1/ρ} + i/(N−1)·
/// (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ for i < N, σ_N = 0, Heun's second-order method on dx/dσ = (x − D(x; σ))/σ
/// (Euler on the last step). x is variance-exploding; the denoiser sees x/√(1+σ²) at ᾱ = 1/(1+σ²).
/// A run of N steps costs 2N − 1 denoiser evaluations.
public struct EDMSampler: Sendable {
    /// Smallest non-zero noise level (0.002).
    public var sigmaMin: Double
    /// Largest noise level (80).
    public var sigmaMax: Double
    /// Spacing exponent ρ (7).
    public var rho: Double
    /// Number of steps N.
    public var steps: Int

    /// Creates a sampler with Karras et al.'s defaults.
    /// - Throws: `.invalidArgument` for `steps < 1`, `sigmaMin <= 0`, `sigmaMax <= sigmaMin` or `rho <= 0`.
    public init(steps: Int = 20, sigmaMin: Double = 0.002, sigmaMax: Double = 80, rho: Double = 7) throws {
        guard steps >= 1 else {
            throw DiffusionError(.invalidArgument, "EDM step count \(steps) is not allowed; it must be at least 1")
        }
        guard sigmaMin > 0, sigmaMax > sigmaMin, sigmaMax.isFinite, rho > 0 else {
            throw DiffusionError(.invalidArgument, "EDM needs 0 < σ_min < σ_max < ∞ and ρ > 0; got σ_min \(sigmaMin), σ_max \(sigmaMax), ρ \(rho)")
        }
        self.sigmaMin = sigmaMin
        self.sigmaMax = sigmaMax
        self.rho = rho
        self.steps = steps
    }

    /// The N + 1 noise levels σ_0 = σ_max > … > σ_{N−1} = σ_min > σ_N = 0.
    public var sigmas: [Double] {
        let a = DeterministicMath.pow(sigmaMax, 1 / rho), b = DeterministicMath.pow(sigmaMin, 1 / rho)
        var out = (0..<steps).map { i -> Double in
            if i == 0 { return sigmaMax }
            if i == steps - 1 { return sigmaMin }
            return DeterministicMath.pow(a + Double(i) / Double(steps - 1) * (b - a), rho)
        }
        out.append(0)
        return out
    }

    /// Generates one image from noise drawn from `seed`; the same seed gives the same bits.
    public func sample(denoiser: some Denoiser, seed: UInt64) throws -> RGBImage {
        var rng = SeededRandom(seed: seed)
        var x = RGBImage(width: denoiser.width, height: denoiser.height)
        rng.fillNormal(&x.pixels)
        let sig = sigmas
        let s0 = Float(sig[0])
        for i in x.pixels.indices { x.pixels[i] *= s0 }
        var scaled = x, prediction = x, derivative = x.pixels, trial = x
        func evaluate(_ input: RGBImage, _ sigma: Double) throws {
            let f = Float(1 / (1 + sigma * sigma).squareRoot())
            for i in input.pixels.indices { scaled.pixels[i] = input.pixels[i] * f }
            try denoiser.denoise(scaled, level: NoiseLevel(sigma: sigma), into: &prediction)
        }
        for i in 0..<steps {
            let sigma = sig[i], next = sig[i + 1]
            let h = Float(next - sigma)
            try evaluate(x, sigma)
            let inv = Float(1 / sigma)
            for j in x.pixels.indices {
                derivative[j] = (x.pixels[j] - prediction.pixels[j]) * inv
                trial.pixels[j] = x.pixels[j] + h * derivative[j]
            }
            if next > 0 {
                try evaluate(trial, next)
                let invNext = Float(1 / next)
                for j in x.pixels.indices {
                    let d2 = (trial.pixels[j] - prediction.pixels[j]) * invNext
                    x.pixels[j] += h * 0.5 * (derivative[j] + d2)
                }
            } else {
                swap(&x, &trial)
            }
        }
        return x
    }
}
