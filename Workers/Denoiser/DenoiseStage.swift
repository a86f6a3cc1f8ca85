import Foundation
import HumeData
import HumeDiffusion
import HumeWorker
import HumeEmbedStage

/// Generation settings from a job's parameters (keys, types and defaults listed here, where they are read).
public struct GenerateParameters: Sendable {
    /// `prompt` (string, default ""): recorded in the metadata when the input (the retrieve stage's `prompt`) carries
    /// no text; `edit` stands in when `prompt` is absent.
    public var prompt = ""
    /// `database` (string, default `Database.defaultName`, "emoji-styles").
    public var database = Database.defaultName
    /// `k` (int, default 16): how many of the retrieved neighbours condition the denoiser.
    public var k = 16
    /// `seed` (int, default 1).
    public var seed: UInt64 = 1
    /// `size` (32 or 64, default 64: see `Generator.defaultSize`).
    public var size = Generator.defaultSize
    /// `steps` (int 1…200, default 20): DDIM steps.
    public var steps = 20
    /// `guidance` (number > 0, optional): γ, the weight of the prompt's neighbours over a random background
    /// sample of the database of `k` images. Absent: no background (the neighbours alone).
    public var guidance: Double?
    /// `temperature` (number 0.001…10, default `defaultTemperature`): how the retriever's similarities weigh the
    /// neighbours. Neighbour i gets log-weight −(s_best − sᵢ)/temperature: neighbours that match the prompt equally
    /// well (the same thing in several styles) weigh alike, and at 0.02 a neighbour 0.1 less similar than the best
    /// weighs e^−5 ≈ 0.7% as much, so one strong match outweighs fifteen weak ones. Smaller values follow the best
    /// matches more closely. Used only when the input carries `scores`; without them the neighbours weigh alike.
    public var temperature = GenerateParameters.defaultTemperature
    /// Chosen on the development prompts (`Ops/eval/fidelity-emoji-dev.jsonl`) and checked on held-out concepts
    /// (README, "Fidelity"): 0.01 and 0.02 score alike on fidelity; 0.02 keeps held-out copies at 0.017 (0.01: 0.023),
    /// 0.03 and above let related neighbours in (recognised 0.811 → 0.761 at 0.03, 0.05 lower still).
    public static let defaultTemperature = 0.02
    /// `focus` (number 0…10, default 0): a prior by rank over the neighbours, which come best first: neighbour i gets
    /// log-weight −focus·i on top of the similarity weights. The first version's only weighting (0.3).
    public var focus = GenerateParameters.defaultFocus
    public static let defaultFocus = 0.0
    /// `consensus` (number 0…10, default 0, off): a log-weight bonus for the neighbours whose database label (the
    /// manifest's `subgroup`) is the neighbours' consensus label, the one with the most rank-prior mass (neighbour i
    /// votes with weight e^(−focus·i)). It uses the labels the held-out evaluation scores with and pulls samples away
    /// from a strong match that the crowd's label outvotes, so it is off; a database without labels ignores it.
    public var consensus = GenerateParameters.defaultConsensus
    public static let defaultConsensus = 0.0
    /// `patch_scale` (number 0.5…3, default `defaultPatchScale`): patch sizes as a multiple of the prototype's schedule
    /// (DESIGN.md §8), scaled with the side. Smaller patches let regions follow different neighbours (more mixing, more
    /// seams); larger ones follow one neighbour (cleaner, closer to a copy). 1.0 since the neighbours agree in shape
    /// (`coherence`): the seams that made 1.5 the better choice came from mixing drawings in different poses.
    public var patchScale = GenerateParameters.defaultPatchScale
    public static let defaultPatchScale = 1.0
    /// `margin` (number 0…2, default `defaultMargin`; only with `scores`): neighbours whose similarity is more than
    /// `margin` below the best one's are not used (an adaptive k). The temperature only sets a prior, which the patch
    /// likelihood outweighs at low noise; the margin removes a weak neighbour from every noise level.
    public var margin: Double? = GenerateParameters.defaultMargin
    public static let defaultMargin: Double? = 0.03
    /// `coherence` (number 0…1, default `defaultCoherence`): each sample takes its shape from one neighbour, drawn by
    /// `shapeTemperature` weights at the seed's point (`CoherentSources.point`), and uses only the neighbours whose
    /// silhouettes overlap that one's by at least this much (intersection over union), so regions of drawings in
    /// different poses are not stitched into one chimera. 0 keeps every neighbour.
    public var coherence: Double? = GenerateParameters.defaultCoherence
    public static let defaultCoherence: Double? = 0.8
    /// `register` (bool, default true): with `coherence`, each other neighbour is first mirrored, scaled and shifted to
    /// overlap the shape-setting one best (`StickerPose.register`), so the same thing drawn facing the other way or a
    /// little larger can still lend it regions.
    public var register = true
    /// The shape-setter is drawn with weight e^(−(s_best − sᵢ)/0.005): neighbours that match equally well (one thing in
    /// several styles) take turns, and one 0.03 less similar (a shipwreck beside "a sailing ship") sets the shape for
    /// fewer than 1 sample in 400. With the similarity temperature (0.02) it did for about 1 in 6.
    public static let shapeTemperature = 0.005

    public init() {}

    /// Parses a job's parameter object.
    /// - Throws: `StageInputError` naming the bad key and what is allowed.
    public init(json params: [UInt8]) throws {
        guard !params.isEmpty else { return }
        guard let o = try? JSONSerialization.jsonObject(with: Data(params)) as? [String: Any] else {
            throw StageInputError("The job's parameters are not a JSON object.")
        }
        if let v = o["prompt"] as? String { prompt = v }
        if let v = o["edit"] as? String, prompt.isEmpty { prompt = v }
        if let v = o["database"] { guard let s = v as? String else { throw StageInputError("The \"database\" parameter must be a string such as \"emoji\".") }; database = s }
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v = o[key] else { return nil }
            guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), range.contains(i) else {
                throw StageInputError("The \"\(key)\" parameter is \(v); it must be a whole number from \(range.lowerBound) to \(range.upperBound).")
            }
            return i
        }
        if let v = try int("k", 1...256) { k = v }
        if let v = try int("seed", 0...Int.max) { seed = UInt64(v) }
        if let v = try int("steps", 1...200) { steps = v }
        if let v = try int("size", 32...64) {
            guard v == 32 || v == 64 else { throw StageInputError("The \"size\" parameter is \(v); it must be 32 or 64.") }
            size = v
        }
        func number(_ key: String, _ range: ClosedRange<Double>) throws -> Double? {
            guard let v = o[key] else { return nil }
            guard let n = v as? NSNumber, range.contains(n.doubleValue) else {
                throw StageInputError("The \"\(key)\" parameter is \(v); it must be a number from \(range.lowerBound.formatted()) to \(range.upperBound.formatted()).")
            }
            return n.doubleValue
        }
        if let v = try number("focus", 0...10) { focus = v }
        if let v = try number("consensus", 0...10) { consensus = v }
        if let v = try number("temperature", 0.001...10) { temperature = v }
        if let v = try number("patch_scale", 0.5...3) { patchScale = v }
        if let v = try number("margin", 0...2) { margin = v }
        if let v = try number("coherence", 0...1) { coherence = v }
        if let v = o["register"] { guard let b = v as? Bool else { throw StageInputError("The \"register\" parameter must be true or false.") }; register = b }
        if let v = o["guidance"] {
            guard let n = v as? NSNumber, n.doubleValue > 0, n.doubleValue.isFinite else {
                throw StageInputError("The \"guidance\" parameter is \(v); it must be a finite number greater than 0.")
            }
            guidance = n.doubleValue
        }
    }
}

/// The retrieve stage's answer as the denoise stage reads it: `{"database", "ids", "scores", "prompt", ...}`
/// (PROTOCOL.md, "Stage payloads"). Other keys (`captions`) are ignored.
public struct Neighbours: Sendable {
    /// The database the ids belong to; nil when the input names none (then the `database` parameter decides).
    public var database: String?
    /// Neighbour ids, best first.
    public var ids: [Int]
    /// Each id's similarity to the prompt (the retriever's cosine), or nil when the input carries none: then the
    /// neighbours are weighed by rank alone.
    public var scores: [Double]?
    /// The text the ids were retrieved for (the embed stage's prompt); nil when absent or empty.
    public var prompt: String?

    public init(database: String?, ids: [Int], scores: [Double]? = nil, prompt: String? = nil) {
        self.database = database
        self.ids = ids
        self.scores = scores
        self.prompt = prompt
    }

    /// Parses the retrieve stage's JSON.
    /// - Throws: `StageInputError` when it is not that JSON or has no ids.
    public init(json bytes: [UInt8]) throws {
        guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw StageInputError("The denoise stage's input is not the retrieve stage's JSON object ({\"database\", \"ids\", ...}).")
        }
        guard let raw = o["ids"] as? [Any] else {
            throw StageInputError("The retrieve stage's output has no \"ids\" list; the denoise stage needs neighbour ids.")
        }
        ids = try raw.map {
            guard let n = $0 as? NSNumber, let i = Int(exactly: n.doubleValue) else {
                throw StageInputError("The retrieve stage's \"ids\" list holds \($0), which is not a whole-number id.")
            }
            return i
        }
        guard !ids.isEmpty else {
            throw StageInputError("The retrieve stage found no neighbours (an empty \"ids\" list); the denoiser needs at least one.")
        }
        database = o["database"] as? String
        if let raw = o["scores"], !(raw is NSNull) {
            guard let list = raw as? [Any] else {
                throw StageInputError("The retrieve stage's \"scores\" is not a list; it must hold one similarity per id.")
            }
            let values = try list.map { v -> Double in
                guard let n = v as? NSNumber, n.doubleValue.isFinite, abs(n.doubleValue) <= 1.001 else {
                    throw StageInputError("The retrieve stage's \"scores\" list holds \(v), which is not a similarity from -1 to 1.")
                }
                return n.doubleValue
            }
            // An empty list says no more than an absent one (clients written before scores were read send `[]`).
            guard values.count == ids.count || values.isEmpty else {
                throw StageInputError("The retrieve stage's \"scores\" list has \(values.count) entries for \(ids.count) ids; it must have one per id.")
            }
            scores = values.isEmpty ? nil : values
        }
        if let p = o["prompt"] {
            guard let text = p as? String else {
                throw StageInputError("The retrieve stage's \"prompt\" is not a string; it must be the text the ids were retrieved for.")
            }
            prompt = text.isEmpty ? nil : text
        }
    }
}

/// Generates images from neighbour ids: the ELS denoiser (`LocalDenoiserConfiguration.standard` for the side, the
/// `focus` rank prior, the `consensus` bonus over the neighbours' subgroups) under DDIM.
public final class Generator: Sendable {
    /// 64²: measured by `hume bench denoise` and `hume eval generate` (README, "Quality"): with the standard
    /// configuration 64² takes 0.13 s per image on one core (32²: 0.018 s), scores higher label agreement (0.40
    /// against 0.35 on held-out concepts, same copy rate) and shows the detail that makes a sticker readable.
    public static let defaultSize = 64

    /// The denoiser's patch schedule and window for a job's settings: `LocalDenoiserConfiguration.standard` with the
    /// job's patch scale.
    public static func configuration(_ p: GenerateParameters) -> LocalDenoiserConfiguration {
        LocalDenoiserConfiguration(patchSchedule: PatchSchedule.prototype.scaled(by: p.patchScale * Double(p.size) / 32),
                                   window: max(1, p.size / 32))
    }

    /// The database the neighbour ids refer to.
    public let images: DatabaseImages

    public init(images: DatabaseImages) { self.images = images }

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
    /// below the best; then, with `coherence`, one of them sets the shape (`CoherentSources`) and only those whose
    /// silhouettes agree with it, registered to it, remain.
    /// - Throws: `StageInputError` for bad ids.
    public func sources(ids: [Int], scores: [Double]?, parameters p: GenerateParameters) throws -> (SampleSources, [RGBImage]) {
        guard !ids.isEmpty else {
            throw StageInputError("The neighbour list is empty; the denoiser needs at least one neighbour image.")
        }
        try images.check(ids: ids)
        var order = Array(ids.prefix(p.k).indices)
        if let s = scores { order.sort { s[$0] != s[$1] ? s[$0] > s[$1] : ids[$0] < ids[$1] } }
        if let margin = p.margin, let s = scores, let best = s.max() { order.removeAll { s[$0] < best - margin } }
        var used = SampleSources(ids: order.map { ids[$0] }, scores: scores.map { s in order.map { s[$0] } },
                                 poses: order.map { _ in StickerPose() }, shapeFrom: nil)
        var prompt = try used.ids.map { try images.image($0, side: p.size) }
        if let coherence = p.coherence, prompt.count > 1 {
            let best = used.scores?.max() ?? 0
            let weights = used.scores.map { $0.map { DeterministicMath.exp(-(best - $0) / GenerateParameters.shapeTemperature) } }
                ?? prompt.map { _ in 1.0 }
            let chosen = CoherentSources.choose(silhouettes: prompt.map { Silhouette($0) }, weights: weights,
                                                minimumOverlap: coherence, register: p.register,
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

    /// Generates one image and says which neighbours made it.
    public func generateWithSources(ids: [Int], scores: [Double]?, parameters p: GenerateParameters,
                                    background: [Int] = []) throws -> (RGBImage, SampleSources) {
        let (used, prompt) = try sources(ids: ids, scores: scores, parameters: p)
        try images.check(ids: background)
        let bg = try background.map { try images.image($0, side: p.size) }
        let conditioning = try ConditioningSet(prompt: prompt, background: bg, guidance: p.guidance ?? 1, rankDecay: p.focus,
                                               similarities: used.scores ?? [], temperature: p.temperature,
                                               labels: labels(ids: used.ids, parameters: p), consensus: p.consensus)
        let denoiser = try LocalEquivariantDenoiser(conditioning, configuration: Generator.configuration(p))
        let sampler = try DDIMSampler(steps: p.steps)
        return (try sampler.sample(denoiser: denoiser, seed: p.seed), used)
    }

    /// Generates and wraps the result as a stage image with its provenance: `prompt`, `database`, `k`, `seed`,
    /// `steps`, `size`, `focus`, `consensus`, `neighbours` (the first `k` retrieved ids, in the input's order), `used`
    /// (the ids the sample was made from, best first, after `margin` and `coherence`), `version`, `denoiser`; with
    /// similarities also `similarities` (the first `k` ids' scores), `temperature` and `margin`; with `coherence` also
    /// `coherence`, `shape_from` (the id that set the shape) and, registered, `poses` (one per used id: `mirrored`,
    /// `scale`, `dx`, `dy`); with guidance also `guidance` and `background` (the background sample's ids); and with a
    /// consensus bonus over labelled neighbours `consensus_label` (the label that got it).
    /// - Parameter scores: each id's similarity to the prompt (the retrieve stage's `scores`), or nil to weigh by rank.
    public func stageImage(ids: [Int], scores: [Double]? = nil, parameters p: GenerateParameters) throws -> StageImage {
        let used = Array(ids.prefix(p.k))
        let usedScores = scores.map { Array($0.prefix(p.k)) }
        let background = p.guidance == nil ? [] : backgroundIDs(count: p.k, seed: p.seed, excluding: used)
        let (image, sources) = try generateWithSources(ids: used, scores: usedScores, parameters: p, background: background)
        var meta: [String: Any] = ["prompt": p.prompt, "database": images.name, "k": p.k, "seed": p.seed,
                                   "steps": p.steps, "size": p.size, "focus": p.focus, "consensus": p.consensus, "neighbours": used, "version": StageImage.version,
                                   "denoiser": "els-ddim"]
        if let usedScores { meta["similarities"] = usedScores; meta["temperature"] = p.temperature }
        if p.patchScale != GenerateParameters.defaultPatchScale { meta["patch_scale"] = p.patchScale }
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
        let json = try JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys])
        return StageImage(width: p.size, height: p.size, metadata: [UInt8](json), pixels: image.rgb8())
    }
}

/// The `denoise` stage: the retrieve stage's JSON in, a `StageImage` out (PROTOCOL.md, "Stage payloads"). One task
/// per call; heartbeats are the runtime's.
/// `@unchecked Sendable`: its only mutable state, the generator cache, is guarded by `lock`.
public final class DenoiseStage: Stage, @unchecked Sendable {
    public let name: String
    public let batchSize = 1
    public let concurrency: Int
    /// The folder holding the databases.
    public let root: URL
    private let lock = NSLock()
    // Guarded by `lock`; databases are immutable once opened.
    private var generators: [String: Generator] = [:]

    public init(name: String = "denoise", concurrency: Int = 1, root: URL = Database.databasesRoot) {
        self.name = name
        self.concurrency = max(1, concurrency)
        self.root = root
    }

    /// The generator for database `name`, opening the database on first use.
    /// - Throws: `HumeError(.unknown)` naming the available databases.
    public func generator(for name: String) throws -> Generator {
        lock.lock(); defer { lock.unlock() }
        if let g = generators[name] { return g }
        let g = Generator(images: try DatabaseImages(named: name, root: root))
        generators[name] = g
        return g
    }

    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        tasks.map { task in
            do {
                var p = try GenerateParameters(json: task.params)
                let neighbours = try Neighbours(json: task.input)
                if let db = neighbours.database { p.database = db }
                if let prompt = neighbours.prompt { p.prompt = prompt }
                let image = try generator(for: p.database).stageImage(ids: neighbours.ids, scores: neighbours.scores, parameters: p)
                return .ok(image.encoded())
            } catch {
                return stageOutcome(for: error)
            }
        }
    }
}
