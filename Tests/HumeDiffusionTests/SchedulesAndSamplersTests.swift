import Testing
@testable import HumeDiffusion

@Suite("Noise schedules")
struct ScheduleTests {
    @Test("cosine ᾱ(t) = cos²(t/1.008·π/2) at hand-computed points")
    func cosine() {
        let s = CosineSchedule()
        #expect(s.alphaBar(at: 0) == 1)
        #expect(abs(s.alphaBar(at: 0.5) - 0.5062331572977076) < 1e-14)
        #expect(abs(s.alphaBar(at: 1) - 0.00015540899959186067) < 1e-16)
        #expect(abs(s.alphaBar(at: 0.05) - 0.9939412971018573) < 1e-14)
    }

    @Test("linear VP schedule ᾱ(1) = exp(−(β₀ + ½(β₁−β₀)))")
    func linear() {
        let s = LinearSchedule()
        #expect(s.alphaBar(at: 0) == 1)
        #expect(abs(s.alphaBar(at: 1) - 4.3185749060341275e-05) < 1e-17)
        #expect(s.alphaBar(at: 0.3) > s.alphaBar(at: 0.6))
    }

    @Test("σ and ᾱ convert both ways: ᾱ = 1/(1+σ²)")
    func sigmaConversion() {
        let level = NoiseLevel(sigma: 3)
        #expect(abs(level.alphaBar - 0.1) < 1e-15)
        #expect(abs(level.sigma - 3) < 1e-12)
        #expect(NoiseLevel(sigma: 0).alphaBar == 1)
    }

    @Test("the prototype patch schedule gives 25 at t = 1 and 3 at t = 0.05, in order over 20 DDIM steps")
    func patchSchedule() throws {
        let sampler = try DDIMSampler(steps: 20)
        let sizes = sampler.alphaBars.dropLast().map { PatchSchedule.prototype.patchSize(for: NoiseLevel(alphaBar: $0)) }
        #expect(sizes == [25, 17, 15, 13, 13, 11, 9, 9, 7, 7, 7, 7, 5, 5, 5, 5, 3, 3, 3, 3])
        #expect(PatchSchedule.prototype.patchSize(for: NoiseLevel(sigma: 80)) == 25)
        #expect(PatchSchedule.prototype.patchSize(for: NoiseLevel(sigma: 0.002)) == 3)
        #expect(PatchSchedule.fixed(7).patchSize(for: NoiseLevel(alphaBar: 0.3)) == 7)
    }

    @Test("the prototype configuration scales with the image: window side/16, patches 2P − 1 at 64²")
    func prototypeConfiguration() {
        let at32 = LocalDenoiserConfiguration.prototype(imageSide: 32)
        let at64 = LocalDenoiserConfiguration.prototype(imageSide: 64)
        #expect(at32.window == 2 && at64.window == 4)
        #expect(at32.patchSchedule == .prototype)
        #expect(at64.patchSchedule.patchSizes == PatchSchedule.prototype.patchSizes.map { 2 * $0 - 1 })
        #expect(at64.patchSchedule.patchSize(for: NoiseLevel(sigma: 80)) == 49)
        #expect(PatchSchedule.prototype.scaled(by: 0.5).patchSizes.allSatisfy { $0 % 2 == 1 && $0 >= 1 })
    }
}

@Suite("DDIM sampler")
struct DDIMTests {
    @Test("timesteps run 1, (N−1)/N, …, 1/N and end at ᾱ = 1")
    func grid() throws {
        let sampler = try DDIMSampler(steps: 4)
        #expect(sampler.timesteps == [1, 0.75, 0.5, 0.25])
        #expect(sampler.alphaBars.count == 5)
        #expect(sampler.alphaBars.last == 1)
        #expect(abs(sampler.alphaBars[2] - 0.5062331572977076) < 1e-14)
    }

    @Test("a later start time spreads the steps over [0, T] and re-noising matches ᾱ(T)")
    func startTime() throws {
        let sampler = try DDIMSampler(steps: 4, startTime: 0.5)
        #expect(sampler.timesteps == [0.5, 0.375, 0.25, 0.125])
        #expect(abs(sampler.alphaBars[0] - 0.5062331572977076) < 1e-14)
        var rng = SeededRandom(seed: 1)
        let clean = RGBImage(width: 64, height: 64, fill: 0.5)
        let x = sampler.noised(clean, rng: &rng)
        let mean = x.pixels.reduce(0, +) / Float(x.pixels.count)
        #expect(abs(mean - 0.5 * Float(0.5062331572977076.squareRoot())) < 0.02)
        #expect(throws: DiffusionError.self) { try DDIMSampler(startTime: 0) }
        #expect(throws: DiffusionError.self) { try DDIMSampler(startTime: 1.5) }
    }

    @Test("one deterministic step on known numbers: x=1, x̂₀=0.5, ᾱ 0.25 → 0.64 gives 0.4 + 0.6·0.866…")
    func deterministicStep() {
        var x: [Float] = [1]
        DDIMSampler.step(&x, prediction: [0.5], from: 0.25, to: 0.64, eta: 0)
        #expect(abs(x[0] - 0.919_615_24) < 1e-6)
    }

    @Test("one stochastic step (η = 1, z = 2) on known numbers")
    func stochasticStep() {
        var x: [Float] = [1]
        DDIMSampler.step(&x, prediction: [0.5], from: 0.25, to: 0.64, eta: 1, noise: [2])
        // σ = √(0.36/0.75)·√(1 − 0.25/0.64) = 0.540832…, √(1−ᾱ_s−σ²) = √0.0675
        #expect(abs(x[0] - 1.706_665_38) < 1e-5)
    }

    @Test("the last step to ᾱ = 1 returns the prediction, so a constant denoiser's output is the sample")
    func constantDenoiser() throws {
        let target = randomImage(width: 4, height: 3, seed: 9)
        for eta in [0.0, 1.0] {
            let denoiser = ConstantDenoiser(target)
            let out = try DDIMSampler(steps: 5, eta: eta).sample(denoiser: denoiser, seed: 1)
            #expect(maxAbsDifference(out, target) < 1e-6)
            #expect(denoiser.levels.map(\.alphaBar) == Array(try DDIMSampler(steps: 5).alphaBars.dropLast()))
        }
    }

    @Test("bad step counts and η are rejected with a clear error")
    func invalid() {
        #expect(throws: DiffusionError.self) { try DDIMSampler(steps: 0) }
        #expect(throws: DiffusionError.self) { try DDIMSampler(eta: -1) }
        #expect(throws: DiffusionError.self) { try EDMSampler(steps: 0) }
    }
}

@Suite("EDM sampler")
struct EDMTests {
    @Test("σ sequence: endpoints 80 and 0.002, then 0; σ^{1/ρ} equally spaced")
    func sigmas() throws {
        let sigmas = try EDMSampler(steps: 20).sigmas
        #expect(sigmas.count == 21)
        #expect(sigmas[0] == 80)
        #expect(sigmas[19] == 0.002)
        #expect(sigmas[20] == 0)
        let roots = sigmas.dropLast().map { DeterministicMath.pow($0, 1.0 / 7) }
        let step = roots[1] - roots[0]
        for i in 1..<roots.count { #expect(abs((roots[i] - roots[i - 1]) - step) < 1e-12) }
        #expect(step < 0)
    }

    @Test("the middle of a 3-step schedule is ((80^{1/7} + 0.002^{1/7})/2)^7 = 2.51522")
    func middle() throws {
        let sigmas = try EDMSampler(steps: 3).sigmas
        #expect(abs(sigmas[1] - 2.515218976147159) < 1e-12)
    }

    @Test("Heun takes 2N−1 evaluations, feeds x/√(1+σ²), and is exact for a constant denoiser")
    func heun() throws {
        let target = randomImage(width: 3, height: 3, seed: 5)
        let denoiser = ConstantDenoiser(target)
        let sampler = try EDMSampler(steps: 6)
        let out = try sampler.sample(denoiser: denoiser, seed: 3)
        #expect(denoiser.levels.count == 11)
        #expect(abs(denoiser.levels[0].sigma - 80) < 1e-9)
        #expect(abs(denoiser.levels.last!.sigma - 0.002) < 1e-12)
        // The first input is σ_max·z scaled to unit variance: its RMS is about 1, not 80.
        let first = denoiser.inputs[0].pixels
        let rms = (first.map { $0 * $0 }.reduce(0, +) / Float(first.count)).squareRoot()
        #expect(rms > 0.4 && rms < 1.8)
        #expect(maxAbsDifference(out, target) < 1e-4)
    }
}

@Suite("coarse to fine")
struct UpsampleTests {
    @Test("×2 upsampling keeps flat areas flat, interpolates between pixel centres, and keeps each 2×2 block's mean near its pixel")
    func upsample() throws {
        let flat = RGBImage(width: 3, height: 2, fill: 0.25).upsampled2x()
        #expect(flat.width == 6 && flat.height == 4 && flat.pixels.allSatisfy { abs($0 - 0.25) < 1e-6 })
        // A horizontal ramp -1, 0, 1: output pixel centres at input x = -0.25, 0.25, 0.75, 1.25, 1.75, 2.25 (clamped).
        var ramp = RGBImage(width: 3, height: 1)
        for c in 0..<3 { for x in 0..<3 { ramp[c, x, 0] = Float(x) - 1 } }
        let up = ramp.upsampled2x()
        let row = (0..<6).map { up[0, $0, 0] }
        let expected: [Float] = [-1, -0.75, -0.25, 0.25, 0.75, 1]
        #expect(zip(row, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(row)")
        #expect(up[2, 3, 1] == row[3], "every row and channel alike")
    }
}
