import Foundation
import HumeData
import HumeDiffusion
import HumeStages

/// Generates images from neighbour ids: the ELS denoiser (`LocalDenoiserConfiguration.standard` for the side, the
/// `focus` rank prior, the `consensus` bonus over the neighbours' subgroups) under DDIM.
public final class Generator: Sendable {
    /// The side a job that names none gets (`GenerateParameters.defaultSize`).
    public static let defaultSize = GenerateParameters.defaultSize

    /// The denoiser's patch schedule and window for a job's settings: `LocalDenoiserConfiguration.standard` with the
    /// job's patch scale.
    public static func configuration(_ p: GenerateParameters) -> LocalDenoiserConfiguration {
        LocalDenoiserConfiguration(patchSchedule: PatchSchedule.prototype.scaled(by: p.patchScale * Double(p.size) / 32),
                                   window: max(1, p.size / 32))
    }

    /// The database the neighbour ids refer to.
    public let images: DatabaseImages

    public init(images: DatabaseImages) { self.images = images }

    /// Database image `id` at `side` as a diffusion image in [-1, 1].
    public func image(_ id: Int, side: Int) throws -> RGBImage {
        try RGBImage(width: side, height: side, rgb8: images.rgb8(id, side: side))
    }

    /// The background sample for guidance: `count` ids drawn from the database with the seed, excluding `ids`.
    public func backgroundIDs(count: Int, seed: UInt64, excluding ids: [Int]) -> [Int] {
        var rng = SeededRandom(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        let excluded = Set(ids)
        var out: [Int] = []
        var tries = 0
        while out.count < count, tries < 100 * count {
            tries += 1
            let id = Int(rng.next() % UInt64(images.count))
            if !excluded.contains(id), !out.contains(id) { out.append(id) }
        }
        return out
    }

    /// The labels the consensus bonus votes with: the manifest subgroups of the first `k` ids ("" is no label), or
    /// none when `consensus` is 0. An id outside the database has no label.
    public func labels(ids: [Int], parameters p: GenerateParameters) -> [String] {
        let items = images.database.items
        return p.consensus > 0 ? ids.prefix(p.k).map { items.indices.contains($0) ? items[$0].subgroup : "" } : []
    }

    /// The neighbours one sample is made from.
    public struct SampleSources: Sendable, Equatable {
        /// The ids used, best first (ties by id), after `margin` and `coherence`.
        public var ids: [Int]
        /// Their similarities, or nil when the input carried none.
        public var scores: [Double]?
        /// How each one was mirrored, scaled and shifted onto the shape-setting one (identity without `register`).
        public var poses: [StickerPose]
        /// The id that set the sample's shape, or nil when `coherence` is off or one neighbour was left.
        public var shapeFrom: Int?
    }

    /// Which neighbours a sample uses, and their images at the job's size, posed: the first `k` ids, best first with
    /// ties broken by id (so the order of equally similar ids changes nothing), without those more than `margin`
    /// below the best, and pictures enlarged more than twice when a larger one of their caption is there; then, with
    /// `coherence`, one of them sets the shape (`CoherentSources`) and only those whose
    /// silhouettes agree with it, registered to it, remain (and, when the shape-setter's caption is shared among them,
    /// only those with that caption).
    /// - Throws: `StageInputError` for bad ids.
    /// - Parameter outputSide: the side of the finished sample (the job's, when this is its coarse level): of the
    ///   pictures that share a caption, those enlarged more than twice to reach it are left out when a larger one is
    ///   there (`CoherentSources.sharpest`).
    public func sources(ids: [Int], scores: [Double]?, parameters p: GenerateParameters, outputSide: Int? = nil) throws -> (SampleSources, [RGBImage]) {
        guard !ids.isEmpty else {
            throw StageInputError("The neighbour list is empty; the denoiser needs at least one neighbour image.")
        }
        try images.check(ids: ids)
        var order = Array(ids.prefix(p.k).indices)
        if let s = scores { order.sort { s[$0] != s[$1] ? s[$0] > s[$1] : ids[$0] < ids[$1] } }
        if let margin = p.margin, let s = scores, let best = s.max() { order.removeAll { s[$0] < best - margin } }
        let items = images.database.items
        order = CoherentSources.sharpest(captions: order.map { items[ids[$0]].caption }, sides: order.map { items[ids[$0]].side },
                                         outputSide: outputSide ?? p.size).map { order[$0] }
        var used = SampleSources(ids: order.map { ids[$0] }, scores: scores.map { s in order.map { s[$0] } },
                                 poses: order.map { _ in StickerPose() }, shapeFrom: nil)
        var prompt = try used.ids.map { try image($0, side: p.size) }
        if let coherence = p.coherence, prompt.count > 1 {
            let best = used.scores?.max() ?? 0
            let weights = used.scores.map { $0.map { DeterministicMath.exp(-(best - $0) / GenerateParameters.shapeTemperature) } }
                ?? prompt.map { _ in 1.0 }
            let silhouettes = prompt.map { Silhouette($0) }
            let agreement = StyleAgreement(colour: p.colourAgreement, outline: p.outlineAgreement)
            let chosen = CoherentSources.choose(silhouettes: silhouettes, weights: weights, minimumOverlap: coherence, register: p.register,
                                                styles: agreement.checks ? zip(silhouettes, prompt).map { InkStyle($0, of: $1) } : [],
                                                agreement: agreement,
                                                captions: used.ids.map { items[$0].caption },
                                                u: CoherentSources.point(seed: p.seed, key: used.ids))
            prompt = chosen.kept.map { $0.pose.apply(prompt[$0.index]) }
            used = SampleSources(ids: chosen.kept.map { used.ids[$0.index] }, scores: used.scores.map { s in chosen.kept.map { s[$0.index] } },
                                 poses: chosen.kept.map(\.pose), shapeFrom: used.ids[chosen.base])
        }
        return (used, prompt)
    }

    /// Generates one image.
    /// - Throws: `StageInputError` for bad ids; diffusion errors otherwise.
    public func generate(ids: [Int], scores: [Double]? = nil, parameters p: GenerateParameters, background: [Int] = []) throws -> RGBImage {
        try generateWithSources(ids: ids, scores: scores, parameters: p, background: background).0
    }

    /// Generates one image and says which neighbours made it. Sides above 64 are made coarse to fine: the image is
    /// generated at half the side (recursively), then refined (`refine`).
    public func generateWithSources(ids: [Int], scores: [Double]?, parameters p: GenerateParameters,
                                    background: [Int] = [], outputSide: Int? = nil) throws -> (RGBImage, SampleSources) {
        if let coarse = Generator.coarseSide(for: p.size) {
            var below = p
            below.size = coarse
            let (image, used) = try generateWithSources(ids: ids, scores: scores, parameters: below, background: background,
                                                        outputSide: outputSide ?? p.size)
            return try refine(image, sources: used, parameters: p, background: background)
        }
        let (used, prompt) = try sources(ids: ids, scores: scores, parameters: p, outputSide: outputSide)
        let denoiser = try self.denoiser(prompt: prompt, sources: used, parameters: p, background: background)
        let sampler = try DDIMSampler(steps: p.steps)
        return (try sampler.sample(denoiser: denoiser, seed: p.seed), used)
    }

    /// The side a job's image is first generated at when it is generated coarse to fine (half of it, for sides above
    /// 64), or nil when it is generated directly.
    public static func coarseSide(for side: Int) -> Int? { side > 64 ? side / 2 : nil }

    /// One level of the coarse-to-fine sampler (a weight-free analogue of cascaded diffusion): the coarse image,
    /// upsampled ×2, is noised to t = `refine_from` and denoised in `refine_steps` DDIM steps by the closed-form
    /// denoiser over the same neighbours at this side, in the same poses (shifts scaled): the coarse level sets the
    /// layout, the neighbours' own pixels at this size the detail. The window is the side's usual one (±side/32), the
    /// coarse window in the image's own units: with ±1 px at 128² (tried) the coarse level's ±2 px displacements
    /// (±4 px here) cannot be matched, the refinement pulls each region back onto its source drawing, and near
    /// copies rose from 0.14 to 0.64 on 24 development prompts. The noise is drawn from the seed and the side, so the
    /// result is a pure function of the job.
    func refine(_ coarse: RGBImage, sources used: SampleSources, parameters p: GenerateParameters,
                background: [Int]) throws -> (RGBImage, SampleSources) {
        precondition(coarse.width * 2 == p.size, "a refined level doubles the side")
        var fine = used
        fine.poses = used.poses.map { StickerPose(mirrored: $0.mirrored, scale: $0.scale, dx: $0.dx * 2, dy: $0.dy * 2) }
        let prompt = try zip(fine.ids, fine.poses).map { try $1.apply(image($0, side: p.size)) }
        let denoiser = try self.denoiser(prompt: prompt, sources: fine, parameters: p, background: background)
        let sampler = try DDIMSampler(steps: p.refineSteps, startTime: p.refineFrom)
        var rng = SeededRandom(seed: p.seed ^ (0xC0A7_5E70_F1E0_0000 &+ UInt64(p.size)))
        let start = sampler.noised(coarse.upsampled2x(), rng: &rng)
        return (try sampler.sample(denoiser: denoiser, from: start, rng: &rng), fine)
    }

    /// The closed-form denoiser over the posed neighbour images (and the background sample, with guidance), with the
    /// side's settings (`configuration`).
    func denoiser(prompt: [RGBImage], sources used: SampleSources, parameters p: GenerateParameters,
                  background: [Int]) throws -> LocalEquivariantDenoiser {
        try images.check(ids: background)
        let bg = try background.map { try image($0, side: p.size) }
        let conditioning = try ConditioningSet(prompt: prompt, background: bg, guidance: p.guidance ?? 1, rankDecay: p.focus,
                                               similarities: used.scores ?? [], temperature: p.temperature,
                                               labels: labels(ids: used.ids, parameters: p), consensus: p.consensus)
        return try LocalEquivariantDenoiser(conditioning, configuration: Generator.configuration(p))
    }

    /// Generates and wraps the result as a stage image with its provenance: `prompt`, `database`, `k`, `seed`,
    /// `steps`, `size`, `focus`, `consensus`, `neighbours` (the first `k` retrieved ids, in the input's order), `used`
    /// (the ids the sample was made from, best first, after `margin` and `coherence`), `version`, `denoiser`; with
    /// similarities also `similarities` (the first `k` ids' scores), `temperature` and `margin`; with `coherence` also
    /// `coherence`, `shape_from` (the id that set the shape) and, registered, `poses` (one per used id: `mirrored`,
    /// `scale`, `dx`, `dy`); with guidance also `guidance` and `background` (the background sample's ids); and with a
    /// consensus bonus over labelled neighbours `consensus_label` (the label that got it); and when the prompt names a
    /// colour of its thing (`PromptColour`, with `prompt_colour` on) `prompt_colour` and `recoloured`.
    /// - Parameter scores: each id's similarity to the prompt (the retrieve stage's `scores`), or nil to weigh by rank.
    public func stageImage(ids: [Int], scores: [Double]? = nil, parameters p: GenerateParameters) throws -> StageImage {
        let used = Array(ids.prefix(p.k))
        let usedScores = scores.map { Array($0.prefix(p.k)) }
        let background = p.guidance == nil ? [] : backgroundIDs(count: p.k, seed: p.seed, excluding: used)
        let (image, sources) = try generateWithSources(ids: used, scores: usedScores, parameters: p, background: background)
        var pixels = image.rgb8()
        let colour = p.promptColour ? PromptColour.parse(p.prompt) : nil
        var recoloured = false
        if let colour { (pixels, recoloured) = PromptColour.follow(colour, rgb8: pixels, width: p.size, height: p.size) }
        var meta: [String: Any] = ["prompt": p.prompt, "database": images.name, "k": p.k, "seed": p.seed,
                                   "steps": p.steps, "size": p.size, "focus": p.focus, "consensus": p.consensus, "neighbours": used, "version": StageImage.version,
                                   "denoiser": "els-ddim"]
        if let usedScores { meta["similarities"] = usedScores; meta["temperature"] = p.temperature }
        if p.patchScale != GenerateParameters.defaultPatchScale { meta["patch_scale"] = p.patchScale }
        if let coarse = Generator.coarseSide(for: p.size) {
            meta["refine"] = ["from_size": coarse, "refine_from": p.refineFrom, "refine_steps": p.refineSteps] as [String: Any]
        }
        if let g = p.guidance { meta["guidance"] = g; meta["background"] = background }
        meta["used"] = sources.ids
        if let m = p.margin, usedScores != nil { meta["margin"] = m }
        if let c = p.coherence, let shape = sources.shapeFrom {
            meta["coherence"] = c
            meta["shape_from"] = shape
            if p.register {
                meta["poses"] = sources.poses.map { ["mirrored": $0.mirrored, "scale": $0.scale, "dx": $0.dx, "dy": $0.dy] as [String: Any] }
            }
        }
        if let label = ConditioningSet.consensusLabel(labels(ids: sources.ids, parameters: p), voteDecay: p.focus) {
            meta["consensus_label"] = label
        }
        if let colour { meta["prompt_colour"] = colour.name; meta["recoloured"] = recoloured }
        let json = try JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys])
        return StageImage(width: p.size, height: p.size, metadata: [UInt8](json), pixels: pixels)
    }
}

/// The `denoise` stage: the retrieve stage's JSON in, a `StageImage` out (PROTOCOL.md, "Stage payloads"). One task
/// per call; heartbeats are the runtime's.
/// Databases are opened on first use and again when they change on disk (`DatabaseCache`).
public final class DenoiseStage: Stage, Sendable {
    public let name: String
    public let batchSize = 1
    public let concurrency: Int
    /// The folder holding the databases.
    public let root: URL
    let generators: DatabaseCache<Generator>

    public init(name: String = "denoise", concurrency: Int = 1, root: URL) {
        self.name = name
        self.concurrency = max(1, concurrency)
        self.root = root
        generators = DatabaseCache(root: root) { Generator(images: try DatabaseImages(named: $0, root: root)) }
    }

    /// The generator for database `name` at its latest version; `ids` beyond the version in hand (the retriever
    /// saw a newer one) make it look for a newer version at once.
    /// - Throws: `HumeError(.unknown)` naming the available databases.
    public func generator(for name: String, ids: [Int] = []) throws -> Generator {
        let g = try generators.get(name)
        if let top = ids.max(), top >= g.images.count { return try generators.get(name, fresh: true) }
        return g
    }

    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        tasks.map { task in
            StageOutcome.of {
                var p = try GenerateParameters(json: task.params)
                let neighbours = try Neighbours(decoding: task.input)
                if let db = neighbours.database { p.database = db }
                if let prompt = neighbours.prompt { p.prompt = prompt }
                let g = try generator(for: p.database, ids: neighbours.ids)
                if !p.sizeNamed, !g.images.hasStore(side: p.size) { p.size = 64 }   // a database built before 128² stores
                return try g.stageImage(ids: neighbours.ids, scores: neighbours.scores, parameters: p).encoded()
            }
        }
    }
}
