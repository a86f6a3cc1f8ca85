/// Predicts the clean image x̂₀ from a noisy image. The samplers drive any conforming type, so a trained
/// network can stand where the closed-form denoisers stand.
///
/// Convention: `x` is variance-preserving, `x = √ᾱ·x₀ + √(1-ᾱ)·ε`, and `level` carries ᾱ (and σ).
/// Implementations may keep scratch memory and are not required to be thread-safe: use one per thread.
public protocol Denoiser {
    /// Width of the images this denoiser accepts.
    var width: Int { get }
    /// Height of the images this denoiser accepts.
    var height: Int { get }
    /// Writes the predicted clean image for `x` at `level` into `output`.
    /// - Throws: `DiffusionError.sizeMismatch` if `x` or `output` is not `width`×`height`.
    func denoise(_ x: RGBImage, level: NoiseLevel, into output: inout RGBImage) throws
}

/// The images a closed-form denoiser may copy from, each with a log-weight (prior) offset.
///
/// Guidance: the prompt's neighbours get log-weight `log γ` and the background images get 0, and one
/// softmax runs over both sets. γ = 1 treats them alike; γ → ∞ uses only the prompt's neighbours
/// (a background image can then win only where no prompt neighbour fits within about `log γ` nats);
/// γ → 0 uses only the background. This is a prior re-weighting inside the posterior, not CFG's
/// extrapolation, so outputs stay convex combinations of real pixels and never leave [-1, 1].
public struct ConditioningSet: Sendable {
    /// Width of every image.
    public let width: Int
    /// Height of every image.
    public let height: Int
    /// The prompt's neighbours followed by the background images.
    public let images: [RGBImage]
    /// One log prior weight per image (`log γ` for prompt images, 0 for background) at the highest noise level.
    public let logWeights: [Float]
    /// How many of `images` (the first ones) are the prompt's neighbours.
    public let promptCount: Int
    /// The label the prompt's neighbours agree on (see `consensusLabel(_:voteDecay:)`), or nil when they carry none.
    public let consensusLabel: String?

    /// Creates a set from the prompt's neighbours and an optional background sample.
    /// - Parameters:
    ///   - prompt: the k retrieved neighbour images.
    ///   - background: a broader sample of the database (may be empty).
    ///   - guidance: γ > 0, how strongly the prompt's neighbours dominate the background.
    ///   - rankDecay: a prior over the prompt's neighbours by rank (they come best first): neighbour i gets
    ///     log-weight `log γ − rankDecay·i`. 0 treats all k alike; larger values trust the best matches more.
    ///   - similarities: how well each prompt image matches the prompt (the retriever's cosine scores), or empty to
    ///     weigh by rank alone. Neighbour i then gets log-weight `−(s_max − sᵢ)/temperature` on top of the rest, so a
    ///     neighbour 0.3 less similar than the best weighs e^(−0.3/temperature) as much: one strong match outweighs many
    ///     weak ones, and neighbours that match equally well weigh alike whatever their rank.
    ///   - temperature: τ > 0 for the similarity weights (ignored without similarities).
    ///   - labels: one class label per prompt image ("" for none), or empty when the database has no labels.
    ///   - consensus: a log-weight bonus for the neighbours that carry the consensus label (the label with the
    ///     most rank-prior mass, `consensusLabel(_:voteDecay:)` with `rankDecay`), so that a sample is made of one
    ///     kind of thing rather than a chimera of two. 0, or no labels, changes nothing.
    /// - Throws: `.emptyConditioningSet` if `prompt` is empty, `.sizeMismatch` if sizes differ,
    ///   `.invalidArgument` if γ is not finite and positive, if rank decay or consensus is negative or not
    ///   finite, or if `labels` is neither empty nor one per prompt image.
    public init(prompt: [RGBImage], background: [RGBImage] = [], guidance: Double = 1, rankDecay: Double = 0,
                similarities: [Double] = [], temperature: Double = 1,
                labels: [String] = [], consensus: Double = 0) throws {
        guard let first = prompt.first else {
            throw DiffusionError(.emptyConditioningSet, "the conditioning set has no prompt images; pass at least one neighbour image")
        }
        guard guidance > 0, guidance.isFinite else {
            throw DiffusionError(.invalidArgument, "guidance γ = \(guidance) is not allowed; it must be finite and greater than 0")
        }
        guard rankDecay >= 0, rankDecay.isFinite else {
            throw DiffusionError(.invalidArgument, "rank decay \(rankDecay) is not allowed; it must be finite and 0 or more")
        }
        guard consensus >= 0, consensus.isFinite else {
            throw DiffusionError(.invalidArgument, "consensus \(consensus) is not allowed; it must be finite and 0 or more")
        }
        guard similarities.isEmpty || similarities.count == prompt.count else {
            throw DiffusionError(.invalidArgument, "\(similarities.count) similarities were given for \(prompt.count) prompt images; give one per image, or none")
        }
        guard similarities.allSatisfy(\.isFinite) else {
            throw DiffusionError(.invalidArgument, "a similarity is not a finite number; similarities are cosines in [-1, 1]")
        }
        guard temperature > 0, temperature.isFinite else {
            throw DiffusionError(.invalidArgument, "temperature \(temperature) is not allowed; it must be finite and greater than 0")
        }
        guard labels.isEmpty || labels.count == prompt.count else {
            throw DiffusionError(.invalidArgument, "\(labels.count) labels were given for \(prompt.count) prompt images; give one per image, or none")
        }
        for (i, image) in (prompt + background).enumerated() where !image.hasSameSize(as: first) {
            let which = i < prompt.count ? "prompt image \(i)" : "background image \(i - prompt.count)"
            throw DiffusionError(.sizeMismatch, "\(which) is \(image.width)x\(image.height) but the first prompt image is \(first.width)x\(first.height); all conditioning images must have one size")
        }
        width = first.width
        height = first.height
        images = prompt + background
        promptCount = prompt.count
        let logGamma = Float(DeterministicMath.log(guidance))
        let label = ConditioningSet.consensusLabel(labels, voteDecay: rankDecay)
        consensusLabel = label
        let best = similarities.max() ?? 0
        let gaps = (0..<prompt.count).map { i in similarities.isEmpty ? 0 : best - similarities[i] }
        logWeights = (0..<prompt.count).map { i in
            let bonus = label != nil && labels[i] == label ? consensus : 0
            return logGamma + Float(bonus - rankDecay * Double(i) - gaps[i] / temperature)
        } + [Float](repeating: 0, count: background.count)
    }

    /// The label with the most vote mass when neighbour i (best first) votes for `labels[i]` with weight
    /// `exp(−voteDecay·i)`; "" is no label and does not vote. A tie goes to the label of the better-ranked
    /// neighbour. Nil when no neighbour has a label.
    public static func consensusLabel(_ labels: [String], voteDecay: Double = 0) -> String? {
        var mass: [String: Double] = [:], firstRank: [String: Int] = [:]
        for (i, label) in labels.enumerated() where !label.isEmpty {
            mass[label, default: 0] += DeterministicMath.exp(-voteDecay * Double(i))
            if firstRank[label] == nil { firstRank[label] = i }
        }
        return mass.max { a, b in a.value != b.value ? a.value < b.value : firstRank[a.key]! > firstRank[b.key]! }?.key
    }

    /// Creates a set from neighbour images with equal weights.
    public init(_ images: [RGBImage]) throws { try self.init(prompt: images) }

    /// Number of images.
    public var count: Int { images.count }

    func checkSize(_ x: RGBImage, _ role: String) throws {
        guard x.width == width, x.height == height else {
            throw DiffusionError(.sizeMismatch, "the \(role) image is \(x.width)x\(x.height) but the conditioning images are \(width)x\(height)")
        }
    }
}

/// The whole-image empirical posterior mean: E[x₀ | x_t] when x₀ is uniform over the conditioning images,
/// `Σᵢ wᵢ yᵢ` with `w = softmax(logWeightᵢ − |x_t − √ᾱ yᵢ|² / (2(1−ᾱ)))`. At low noise it returns the nearest
/// image, so on its own it only ever copies a neighbour; it is the reference the local denoiser improves on.
public final class PosteriorMeanDenoiser: Denoiser {
    /// The conditioning images.
    public let conditioning: ConditioningSet
    public var width: Int { conditioning.width }
    public var height: Int { conditioning.height }
    private var logits: [Double]

    /// Creates the denoiser over a conditioning set.
    public init(_ conditioning: ConditioningSet) {
        self.conditioning = conditioning
        self.logits = [Double](repeating: 0, count: conditioning.count)
    }

    public func denoise(_ x: RGBImage, level: NoiseLevel, into output: inout RGBImage) throws {
        try conditioning.checkSize(x, "noisy")
        try conditioning.checkSize(output, "output")
        let s = level.alphaBar.squareRoot()
        let variance = max(1 - level.alphaBar, 1e-12)
        let n = x.pixels.count
        var best = -Double.infinity
        x.pixels.withUnsafeBufferPointer { xp in
            for (i, y) in conditioning.images.enumerated() {
                var d2 = 0.0
                y.pixels.withUnsafeBufferPointer { yp in
                    for j in 0..<n {
                        let d = Double(xp[j]) - s * Double(yp[j])
                        d2 += d * d
                    }
                }
                logits[i] = Double(conditioning.logWeights[i]) - d2 / (2 * variance)
                best = max(best, logits[i])
            }
        }
        var z = 0.0
        for i in logits.indices {
            logits[i] = DeterministicMath.exp(logits[i] - best)
            z += logits[i]
        }
        output.pixels.withUnsafeMutableBufferPointer { out in
            for j in 0..<n { out[j] = 0 }
            for (i, y) in conditioning.images.enumerated() {
                let w = Float(logits[i] / z)
                if w == 0 { continue }
                y.pixels.withUnsafeBufferPointer { yp in
                    for j in 0..<n { out[j] += w * yp[j] }
                }
            }
        }
    }
}
