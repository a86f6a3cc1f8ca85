import Testing
@testable import HumeCore
@testable import HumeDiffusion

@Suite("Local equivariant (ELS) denoiser")
struct LocalDenoiserTests {
    @Test("box-filter ELS matches the direct definition (8×8 and 7×5; 3 and 10 neighbours; several P, windows, noise)",
          arguments: [(8, 8, 3), (7, 5, 3), (7, 5, 10)])
    func matchesBruteForce(width: Int, height: Int, count: Int) throws {
        let neighbours = (0..<count).map { randomImage(width: width, height: height, seed: 100 + UInt64($0)) }
        let set = try ConditioningSet(neighbours)
        for patch in [1, 3, 5, 9] {
            for window in [0, 1, 2, 6] {  // 6 exceeds the 7×5 image: far shifts have no valid targets
                let denoiser = try LocalEquivariantDenoiser(set, configuration: .init(patchSchedule: .fixed(patch), window: window))
                for (j, alphaBar) in [0.05, 0.5, 0.95].enumerated() {
                    let x = noised(neighbours[j % 3], alphaBar: alphaBar, seed: UInt64(patch * 10 + window + j))
                    var fast = RGBImage(width: width, height: height)
                    try denoiser.denoise(x, level: NoiseLevel(alphaBar: alphaBar), into: &fast)
                    let slow = bruteForceLocalDenoise(x, set: set, alphaBar: alphaBar, patch: patch, window: window)
                    let error = maxAbsDifference(fast, slow)
                    #expect(error < 1e-4, "P \(patch) W \(window) ᾱ \(alphaBar): max error \(error)")
                }
            }
        }
    }

    @Test("at 32² with sticker-like neighbours the prefix sums keep float precision, down to the lowest noise level")
    func precisionAtFullSize() throws {
        let neighbours = (0..<3).map { stickerImage(side: 32, seed: 200 + UInt64($0)) }
        let set = try ConditioningSet(neighbours)
        let lowest = CosineSchedule().alphaBar(at: 0.05)
        for (patch, alphaBar) in [(3, lowest), (5, 0.9), (11, 0.5)] {
            let denoiser = try LocalEquivariantDenoiser(set, configuration: .init(patchSchedule: .fixed(patch), window: 2))
            let x = noised(stickerImage(side: 32, seed: 250), alphaBar: alphaBar, seed: 3)
            var fast = RGBImage(width: 32, height: 32)
            try denoiser.denoise(x, level: NoiseLevel(alphaBar: alphaBar), into: &fast)
            let slow = bruteForceLocalDenoise(x, set: set, alphaBar: alphaBar, patch: patch, window: 2)
            let error = maxAbsDifference(fast, slow)
            #expect(error < 1e-4, "P \(patch) ᾱ \(alphaBar): max error \(error)")
        }
    }

    @Test("with γ ≠ 1 and a background set, ELS still matches the direct definition (log-weight offsets)")
    func guidanceMatchesBruteForce() throws {
        let prompt = (0..<2).map { randomImage(width: 6, height: 6, seed: 300 + UInt64($0)) }
        let background = (0..<9).map { randomImage(width: 6, height: 6, seed: 400 + UInt64($0)) }
        for gamma in [0.1, 1, 8] {
            let set = try ConditioningSet(prompt: prompt, background: background, guidance: gamma)
            let denoiser = try LocalEquivariantDenoiser(set, configuration: .init(patchSchedule: .fixed(3), window: 1))
            let x = noised(background[0], alphaBar: 0.4, seed: 7)
            var fast = RGBImage(width: 6, height: 6)
            try denoiser.denoise(x, level: NoiseLevel(alphaBar: 0.4), into: &fast)
            let slow = bruteForceLocalDenoise(x, set: set, alphaBar: 0.4, patch: 3, window: 1)
            #expect(maxAbsDifference(fast, slow) < 1e-4)
        }
    }

    @Test("a large γ pulls the output toward the prompt-only prediction, a small γ toward the background")
    func guidanceDirection() throws {
        let prompt = (0..<3).map { randomImage(width: 8, height: 8, seed: 500 + UInt64($0)) }
        let background = (0..<5).map { randomImage(width: 8, height: 8, seed: 600 + UInt64($0)) }
        let x = noised(background[1], alphaBar: 0.2, seed: 11)
        func predict(_ set: ConditioningSet) throws -> RGBImage { try localPrediction(set, x, alphaBar: 0.2) }
        let promptOnly = try predict(ConditioningSet(prompt))
        let backgroundOnly = try predict(ConditioningSet(background))
        var previous = Float.infinity
        for gamma in [1.0, 10, 1e3, 1e6] {
            let d = maxAbsDifference(try predict(ConditioningSet(prompt: prompt, background: background, guidance: gamma)), promptOnly)
            #expect(d < previous)
            previous = d
        }
        #expect(previous < 0.05)
        let towardBackground = try predict(ConditioningSet(prompt: prompt, background: background, guidance: 1e-6))
        #expect(maxAbsDifference(towardBackground, backgroundOnly) < 0.05)
    }

    @Test("the rank prior (focus) matches the direct definition and, made large, follows the best neighbour alone")
    func rankPrior() throws {
        let prompt = (0..<5).map { randomImage(width: 8, height: 8, seed: 700 + UInt64($0)) }
        let x = noised(prompt[3], alphaBar: 0.3, seed: 13)
        func predict(_ set: ConditioningSet) throws -> RGBImage { try localPrediction(set, x, alphaBar: 0.3) }
        let ranked = try ConditioningSet(prompt: prompt, rankDecay: 0.7)
        #expect(zip(ranked.logWeights, [0, -0.7, -1.4, -2.1, -2.8]).allSatisfy { abs(Double($0) - $1) < 1e-6 })
        let slow = bruteForceLocalDenoise(x, set: ranked, alphaBar: 0.3, patch: 3, window: 1)
        #expect(maxAbsDifference(try predict(ranked), slow) < 1e-4)
        let bestOnly = try predict(ConditioningSet([prompt[0]]))
        let flat = maxAbsDifference(try predict(ConditioningSet(prompt)), bestOnly)
        let steep = maxAbsDifference(try predict(ConditioningSet(prompt: prompt, rankDecay: 200)), bestOnly)
        #expect(steep < 0.01 && steep < flat)
        #expect(throws: DiffusionError.self) { try ConditioningSet(prompt: prompt, rankDecay: -1) }
    }

    @Test("similarities weigh the neighbours by how well they match: one strong match outweighs many weak ones, ties weigh alike")
    func similarityWeights() throws {
        let prompt = (0..<6).map { randomImage(width: 8, height: 8, seed: 760 + UInt64($0)) }
        let scores = [0.89, 0.58, 0.58, 0.57, 0.89, 0.55]
        let set = try ConditioningSet(prompt: prompt, similarities: scores, temperature: 0.05)
        let expected = scores.map { -(0.89 - $0) / 0.05 }
        #expect(zip(set.logWeights, expected).allSatisfy { abs(Double($0) - $1) < 1e-5 }, "\(set.logWeights)")
        // Equal similarities weigh alike whatever their rank; the rank prior still adds on top when asked.
        #expect(set.logWeights[0] == set.logWeights[4])
        let ranked = try ConditioningSet(prompt: prompt, rankDecay: 0.1, similarities: scores, temperature: 0.05)
        #expect(abs(Double(ranked.logWeights[4]) - (-0.4)) < 1e-5)
        // Under noise, the prediction follows the strong matches rather than the crowd of weak ones.
        let x = noised(prompt[1], alphaBar: 0.05, seed: 19)
        let strong = try localPrediction(ConditioningSet([prompt[0], prompt[4]]), x, alphaBar: 0.05)
        let weighted = try localPrediction(set, x, alphaBar: 0.05)
        let flat = try localPrediction(ConditioningSet(prompt), x, alphaBar: 0.05)
        #expect(maxAbsDifference(weighted, strong) < 0.05)
        #expect(maxAbsDifference(flat, strong) > 0.2)
        // The denoiser matches the direct definition with these weights.
        let slow = bruteForceLocalDenoise(x, set: set, alphaBar: 0.05, patch: 3, window: 1)
        #expect(maxAbsDifference(weighted, slow) < 1e-4)
    }

    @Test("similarities of the wrong count, non-finite ones and a bad temperature are refused in one sentence")
    func similarityErrors() {
        let prompt = [RGBImage(width: 4, height: 4), RGBImage(width: 4, height: 4)]
        let cases: [(() throws -> ConditioningSet, String)] = [
            ({ try ConditioningSet(prompt: prompt, similarities: [0.5]) }, "1 similarities were given for 2 prompt images"),
            ({ try ConditioningSet(prompt: prompt, similarities: [0.5, .nan]) }, "not a finite number"),
            ({ try ConditioningSet(prompt: prompt, similarities: [0.5, 0.4], temperature: 0) }, "temperature 0.0 is not allowed"),
        ]
        for (make, sentence) in cases {
            do { _ = try make(); Issue.record("accepted: \(sentence)") } catch let e as DiffusionError {
                #expect(e.message.contains(sentence), "\(e.message)")
            } catch { Issue.record("\(error)") }
        }
    }

    @Test("the consensus label is the one with the most rank-weighted votes; unlabelled neighbours do not vote")
    func consensusLabel() {
        // Plain counts: "b" has three votes against two.
        #expect(ConditioningSet.consensusLabel(["a", "b", "a", "b", "b"]) == "b")
        // Rank-weighted: a's votes at ranks 0 and 2 outweigh b's at 1, 3, 4 when later ranks count little.
        #expect(ConditioningSet.consensusLabel(["a", "b", "a", "b", "b"], voteDecay: 1) == "a")
        // A tie goes to the better-ranked label; "" is no label.
        #expect(ConditioningSet.consensusLabel(["", "b", "a", "a", "b"]) == "b")
        #expect(ConditioningSet.consensusLabel(["", "", ""]) == nil)
        #expect(ConditioningSet.consensusLabel([]) == nil)
    }

    @Test("consensus adds its bonus to the consensus label's neighbours only, on top of the rank prior")
    func consensusWeights() throws {
        let prompt = (0..<5).map { randomImage(width: 8, height: 8, seed: 720 + UInt64($0)) }
        let set = try ConditioningSet(prompt: prompt, rankDecay: 0.5, labels: ["a", "b", "b", "", "b"], consensus: 2)
        #expect(set.consensusLabel == "b")
        #expect(zip(set.logWeights, [0, 1.5, 1, -1.5, 0]).allSatisfy { abs(Double($0) - $1) < 1e-6 }, "\(set.logWeights)")
        // With guidance the bonus applies to the prompt's neighbours; background images keep log-weight 0.
        let guided = try ConditioningSet(prompt: Array(prompt.prefix(2)), background: [prompt[4]], guidance: 4,
                                         labels: ["a", "a"], consensus: 1)
        let log4 = Float(DeterministicMath.log(4))
        #expect(zip(guided.logWeights, [log4 + 1, log4 + 1, 0]).allSatisfy { abs($0 - $1) < 1e-6 })
        // The denoiser sees the weights: it still matches the direct definition.
        let x = noised(prompt[2], alphaBar: 0.3, seed: 17)
        let slow = bruteForceLocalDenoise(x, set: set, alphaBar: 0.3, patch: 3, window: 1)
        #expect(maxAbsDifference(try localPrediction(set, x, alphaBar: 0.3), slow) < 1e-4)
    }

    @Test("without labels, or with consensus 0, the weights are the rank prior's alone")
    func consensusNoOp() throws {
        let prompt = (0..<4).map { randomImage(width: 6, height: 6, seed: 740 + UInt64($0)) }
        let plain = try ConditioningSet(prompt: prompt, rankDecay: 0.3)
        for set in [try ConditioningSet(prompt: prompt, rankDecay: 0.3, consensus: 3),
                    try ConditioningSet(prompt: prompt, rankDecay: 0.3, labels: ["", "", "", ""], consensus: 3),
                    try ConditioningSet(prompt: prompt, rankDecay: 0.3, labels: ["a", "b", "b", "c"], consensus: 0)] {
            #expect(set.logWeights == plain.logWeights)
        }
        #expect(try ConditioningSet(prompt: prompt, labels: ["", "", "", ""], consensus: 3).consensusLabel == nil)
    }

    @Test("a negative or infinite consensus and a label count that does not match are refused in one sentence")
    func consensusErrors() {
        let prompt = [RGBImage(width: 4, height: 4), RGBImage(width: 4, height: 4)]
        for bad in [-1, Double.infinity, Double.nan] {
            let e = #expect(throws: DiffusionError.self) { try ConditioningSet(prompt: prompt, labels: ["a", "a"], consensus: bad) }
            #expect(e?.code == .invalidArgument)
            #expect(e?.message.contains("consensus") == true)
        }
        let count = #expect(throws: DiffusionError.self) { try ConditioningSet(prompt: prompt, labels: ["a"], consensus: 1) }
        #expect(count?.message.contains("1 labels were given for 2 prompt images") == true)
    }

    @Test("at low noise a clean neighbour is reproduced (its own patches win)")
    func lowNoiseReproduces() throws {
        let neighbours = (0..<4).map { randomImage(width: 16, height: 16, seed: 700 + UInt64($0)) }
        let denoiser = try LocalEquivariantDenoiser(try ConditioningSet(neighbours), configuration: .init(patchSchedule: .fixed(3), window: 2))
        let level = NoiseLevel(alphaBar: 0.999)
        let x = noised(neighbours[2], alphaBar: level.alphaBar, seed: 1)
        var out = RGBImage(width: 16, height: 16)
        try denoiser.denoise(x, level: level, into: &out)
        #expect(maxAbsDifference(out, neighbours[2]) < 1e-3)
    }

    @Test("sampling is bit-identical under a seed and differs between seeds")
    func determinism() throws {
        let neighbours = (0..<5).map { randomImage(width: 12, height: 12, seed: 800 + UInt64($0)) }
        let denoiser = try LocalEquivariantDenoiser(try ConditioningSet(neighbours), configuration: .prototype(imageSide: 32))
        for sampler in [try DDIMSampler(steps: 8), try DDIMSampler(steps: 8, eta: 0.7)] {
            let a = try sampler.sample(denoiser: denoiser, seed: 42)
            let b = try sampler.sample(denoiser: denoiser, seed: 42)
            let c = try sampler.sample(denoiser: denoiser, seed: 43)
            #expect(a.pixels.map(\.bitPattern) == b.pixels.map(\.bitPattern))
            #expect(maxAbsDifference(a, c) > 0.01)
        }
        let edm = try EDMSampler(steps: 6)
        let e1 = try edm.sample(denoiser: denoiser, seed: 42), e2 = try edm.sample(denoiser: denoiser, seed: 42)
        #expect(e1.pixels.map(\.bitPattern) == e2.pixels.map(\.bitPattern))
        #expect(e1.pixels.allSatisfy { $0.isFinite && abs($0) <= 1.0001 })
    }

    @Test("wrong-size inputs and a negative window fail with a clear error")
    func errors() throws {
        let set = try ConditioningSet([randomImage(width: 8, height: 8, seed: 1)])
        let denoiser = try LocalEquivariantDenoiser(set)
        var out = RGBImage(width: 8, height: 8)
        let error = #expect(throws: DiffusionError.self) {
            try denoiser.denoise(RGBImage(width: 8, height: 7), level: NoiseLevel(alphaBar: 0.5), into: &out)
        }
        #expect(error?.code == .sizeMismatch)
        #expect(error?.message.contains("8x7") == true)
        var small = RGBImage(width: 4, height: 4)
        #expect(throws: DiffusionError.self) {
            try denoiser.denoise(RGBImage(width: 8, height: 8), level: NoiseLevel(alphaBar: 0.5), into: &small)
        }
        let windowError = #expect(throws: DiffusionError.self) {
            try LocalEquivariantDenoiser(set, configuration: .init(window: -1))
        }
        #expect(windowError?.code == .invalidArgument)
    }
}

@Suite("Whole-image posterior mean and the conditioning set")
struct PosteriorMeanTests {
    @Test("as σ → 0 the whole-image denoiser returns the nearest conditioning image")
    func nearest() throws {
        let neighbours = (0..<6).map { randomImage(width: 8, height: 8, seed: 900 + UInt64($0)) }
        let denoiser = PosteriorMeanDenoiser(try ConditioningSet(neighbours))
        for target in [0, 3, 5] {
            let level = NoiseLevel(sigma: 0.01)
            let x = noised(neighbours[target], alphaBar: level.alphaBar, seed: UInt64(target))
            var out = RGBImage(width: 8, height: 8)
            try denoiser.denoise(x, level: level, into: &out)
            #expect(out == neighbours[target])
        }
    }

    @Test("at equal distances the output is (γ·prompt + background)/(1+γ)")
    func guidanceWeights() throws {
        let p = randomImage(width: 4, height: 4, seed: 1), b = randomImage(width: 4, height: 4, seed: 2)
        let alphaBar = 0.3
        var x = RGBImage(width: 4, height: 4)
        for i in x.pixels.indices { x.pixels[i] = Float(alphaBar.squareRoot()) * (p.pixels[i] + b.pixels[i]) / 2 }
        for gamma in [1.0, 3.0, 0.25] {
            let denoiser = PosteriorMeanDenoiser(try ConditioningSet(prompt: [p], background: [b], guidance: gamma))
            var out = RGBImage(width: 4, height: 4)
            try denoiser.denoise(x, level: NoiseLevel(alphaBar: alphaBar), into: &out)
            for i in out.pixels.indices {
                let expected = (Float(gamma) * p.pixels[i] + b.pixels[i]) / Float(1 + gamma)
                #expect(abs(out.pixels[i] - expected) < 1e-5)
            }
        }
    }

    @Test("an empty neighbour set, mixed sizes and a bad γ are rejected with one clear sentence")
    func errors() throws {
        let empty = #expect(throws: DiffusionError.self) { try ConditioningSet([]) }
        #expect(empty?.code == .emptyConditioningSet)
        let mixed = #expect(throws: DiffusionError.self) {
            try ConditioningSet([RGBImage(width: 8, height: 8), RGBImage(width: 8, height: 6)])
        }
        #expect(mixed?.code == .sizeMismatch)
        #expect(mixed?.message.contains("prompt image 1 is 8x6") == true)
        let background = #expect(throws: DiffusionError.self) {
            try ConditioningSet(prompt: [RGBImage(width: 8, height: 8)], background: [RGBImage(width: 4, height: 4)])
        }
        #expect(background?.message.contains("background image 0") == true)
        let gamma = #expect(throws: DiffusionError.self) {
            try ConditioningSet(prompt: [RGBImage(width: 8, height: 8)], guidance: 0)
        }
        #expect(gamma?.code == .invalidArgument)
        let denoiser = PosteriorMeanDenoiser(try ConditioningSet([RGBImage(width: 8, height: 8)]))
        var out = RGBImage(width: 8, height: 8)
        #expect(throws: DiffusionError.self) {
            try denoiser.denoise(RGBImage(width: 6, height: 8), level: NoiseLevel(alphaBar: 0.5), into: &out)
        }
    }
}

@Suite("Images and random numbers")
struct ImageAndRandomTests {
    @Test("RGB8 → image → RGB8 round-trips every byte, and 0/255 map to −1/1")
    func rgb8RoundTrip() throws {
        var bytes: [UInt8] = (0..<45).map { (i: Int) -> UInt8 in UInt8((i * 37 + 11) % 256) }
        bytes += [0, 255, 128]
        let image = try RGBImage(width: 4, height: 4, rgb8: bytes)
        #expect(image.rgb8() == bytes)
        let corners = try RGBImage(width: 1, height: 1, rgb8: [0, 255, 0])
        #expect(corners.pixels == [-1, 1, -1])
        let error = #expect(throws: DiffusionError.self) { try RGBImage(width: 2, height: 2, rgb8: [1, 2, 3]) }
        #expect(error?.code == .sizeMismatch)
    }

    @Test("SplitMix64 and xoshiro256** reproduce reference outputs for seed 0")
    func referenceStreams() {
        var sm = SplitMix64(seed: 0)
        #expect(sm.next() == 0xE220_A839_7B1D_CDAF)
        #expect(sm.next() == 0x6E78_9E6A_A1B9_65F4)
        var x = SeededRandom(seed: 0)
        #expect(x.next() == 0x99EC_5F36_CB75_F2B4)
        #expect(x.next() == 0xBF6E_1F78_4956_452A)
        #expect(x.next() == 0x1A5F_849D_4933_E6E0)
    }

    @Test("normals have mean 0 and variance 1")
    func normals() {
        var rng = SeededRandom(seed: 7)
        let n = 200_000
        var sum = 0.0, sumSquares = 0.0
        for _ in 0..<n { let v = rng.nextNormal(); sum += v; sumSquares += v * v }
        let mean = sum / Double(n), variance = sumSquares / Double(n) - mean * mean
        #expect(abs(mean) < 0.01)
        #expect(abs(variance - 1) < 0.01)
    }

    @Test("deterministic log, exp and cos agree with the C library to 1e-14 relative")
    func deterministicMath() {
        for v in [1e-300, 1e-5, 0.3, 1, 2.5, 1e3, 1e300] {
            #expect(abs(DeterministicMath.log(v) - libmLog(v)) <= 1e-14 * max(1, abs(libmLog(v))))
        }
        for v in [-700.0, -20, -1, -1e-8, 0, 0.5, 3, 200] {
            #expect(abs(DeterministicMath.exp(v) - Foundation_exp(v)) <= 1e-14 * Foundation_exp(v))
        }
        for v in [0.0, 0.1, 0.7, 1.5, 3.0, 6.0] {
            #expect(abs(DeterministicMath.cos(v) - libmCos(v)) < 1e-15)
        }
    }
}

/// The pixel-lane path (one to four neighbours) against the neighbour-lane path on sticker-sized images, where the
/// direct definition is too slow to run: the schedules' patch sizes and windows at 64² and 128², every noise level kind.
@Suite("ELS pixel lanes")
struct PixelLaneTests {
    @Test("pixel lanes and neighbour lanes give the same prediction (1e-4) at 64² and 128² for 1, 2 and 4 neighbours",
          arguments: [(64, 1), (64, 2), (128, 4)])
    func pathsAgree(side: Int, count: Int) throws {
        let neighbours = (0..<count).map { RGBImage.discs(side: side, seed: 600 + UInt64($0)) }
        let set = try ConditioningSet(prompt: neighbours, similarities: (0..<count).map { 0.6 - 0.01 * Double($0) }, temperature: 0.02)
        for configuration in [LocalDenoiserConfiguration.standard(imageSide: side), .prototype(imageSide: side)] {
            let pixels = try LocalEquivariantDenoiser(set, configuration: configuration, allowPixelLanes: true)
            let lanes = try LocalEquivariantDenoiser(set, configuration: configuration, allowPixelLanes: false)
            #expect(pixels.usesPixelLanes && !lanes.usesPixelLanes)
            for (j, alphaBar) in [CosineSchedule().alphaBar(at: 0.05), 0.5, 0.02].enumerated() {
                let x = noised(RGBImage.discs(side: side, seed: 650 + UInt64(j)), alphaBar: alphaBar, seed: UInt64(j))
                var a = RGBImage(width: side, height: side), b = RGBImage(width: side, height: side)
                try pixels.denoise(x, level: NoiseLevel(alphaBar: alphaBar), into: &a)
                try lanes.denoise(x, level: NoiseLevel(alphaBar: alphaBar), into: &b)
                let error = maxAbsDifference(a, b)
                #expect(error < 1e-4, "side \(side), \(count) neighbours, window \(configuration.window), ᾱ \(alphaBar): \(error)")
            }
        }
    }

    @Test("more than four neighbours stay in neighbour lanes; two go in pixel lanes")
    func pathChoice() throws {
        let five = try ConditioningSet((0..<5).map { RGBImage.discs(side: 32, seed: 700 + UInt64($0)) })
        #expect(try !LocalEquivariantDenoiser(five).usesPixelLanes)
        let two = try ConditioningSet((0..<2).map { RGBImage.discs(side: 32, seed: 710 + UInt64($0)) })
        #expect(try LocalEquivariantDenoiser(two).usesPixelLanes)
    }
}
