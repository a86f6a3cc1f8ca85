import HumeCore

/// Generation settings from a job's parameters (keys, types and defaults listed here, where they are read).
public struct GenerateParameters: Sendable {
    /// `prompt` (string, default ""): recorded in the metadata when the input (the retrieve stage's `prompt`) carries
    /// no text; `edit` stands in when `prompt` is absent.
    public var prompt = ""
    /// `database` (string, default `defaultDatabase`, "emoji-styles").
    public var database = GenerateParameters.defaultDatabase
    /// The database a job that names none uses.
    public static let defaultDatabase = "emoji-styles"
    /// `k` (int 1…`maxK`, default 16): how many neighbours the retrieve stage finds and the denoiser is conditioned on.
    public var k = 16
    public static let maxK = 256
    /// `seed` (int, default 1).
    public var seed: UInt64 = 1
    /// `size` (32, 64 or 128, default `defaultSize`). 128 is made coarse to fine: the 64² image, refined.
    public var size = GenerateParameters.defaultSize
    /// Whether the job named its `size`. One that did not gets 64² from a database built before 128² stores existed
    /// (`DenoiseStage`), rather than a refusal; one that asked for 128 gets the refusal naming the fix.
    public var sizeNamed = false
    /// 128²: coarse to fine, the fidelity and held-out numbers of 64² at 0.16 s per image on one core (README,
    /// "128² stickers, coarse to fine"); a 64-pixel sticker is a thumbnail that shows its pixels when shown larger.
    public static let defaultSize = 128
    /// `steps` (int 1…200, default 20): DDIM steps (at the coarsest level, for sizes made coarse to fine).
    public var steps = 20
    /// The sides a job may ask for.
    public static let sizes = [32, 64, 128]
    /// `refine_steps` (int 1…50, default `defaultRefineSteps`): DDIM steps of each refined level (sizes above 64).
    public var refineSteps = GenerateParameters.defaultRefineSteps
    public static let defaultRefineSteps = 3
    /// `refine_from` (number 0.05…1, default `defaultRefineFrom`): the time t a refined level starts from, the
    /// coarse image upsampled and noised to ᾱ(t). Lower keeps more of the coarse image (and its blur); 1 ignores it.
    public var refineFrom = GenerateParameters.defaultRefineFrom
    public static let defaultRefineFrom = 0.2
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
    /// `margin` (number 0…2 or null for none, default `defaultMargin`; only with `scores`): neighbours whose similarity is more than
    /// `margin` below the best one's are not used (an adaptive k). The temperature only sets a prior, which the patch
    /// likelihood outweighs at low noise; the margin removes a weak neighbour from every noise level.
    public var margin: Double? = GenerateParameters.defaultMargin
    public static let defaultMargin: Double? = 0.03
    /// `coherence` (number 0…1 or null for none, default `defaultCoherence`): each sample takes its shape from one neighbour, drawn by
    /// `shapeTemperature` weights at the seed's point (`CoherentSources.point`), and uses only the neighbours whose
    /// silhouettes overlap that one's by at least this much (intersection over union), so regions of drawings in
    /// different poses are not stitched into one chimera. 0 keeps every neighbour that passes the colour and outline checks.
    public var coherence: Double? = GenerateParameters.defaultCoherence
    public static let defaultCoherence: Double? = 0.8
    /// `register` (bool, default true): with `coherence`, each other neighbour is first mirrored, scaled and shifted to
    /// overlap the shape-setting one best (`StickerPose.register`), so the same thing drawn facing the other way or a
    /// little larger can still lend it regions.
    public var register = true
    /// `colour_agreement` (number 0…2 or null, default `defaultColourAgreement`): with `coherence`, another neighbour
    /// lends regions only if the mean colour of its inked pixels is within this distance (RGB in [0, 1], Euclidean) of
    /// the shape-setter's: a grey cat does not lend half its face to an orange one. 0.3 (development list, 64²: 0.15 and
    /// 0.2 made most samples copies of one drawing; 0.3 kept faithful-and-new within 0.005 and raised recognised).
    public var colourAgreement: Double? = GenerateParameters.defaultColourAgreement
    public static let defaultColourAgreement: Double? = 0.3
    /// `outline_agreement` (number 0…1 or null, default `defaultOutlineAgreement`): with `coherence`, another neighbour
    /// lends regions only if the share of its rim drawn in dark ink (`Silhouette.outlineShare`) is within this of the
    /// shape-setter's: a drawing with a black outline (OpenMoji) and one without (Noto, EmojiOne) are not stitched
    /// together, which left half-outlined faces, pills and hearts. 0.3 (development list, 128²; the two kinds of drawing
    /// score 0.39–0.72 and 0–0.3, 5th to 95th percentile).
    public var outlineAgreement: Double? = GenerateParameters.defaultOutlineAgreement
    public static let defaultOutlineAgreement: Double? = 0.3
    /// `prompt_colour` (bool, default true): a colour the prompt names for its thing ("a blue car"; `PromptColour.parse`)
    /// is the colour of the sample's body: a body drawn in another colour (the red racing car the retriever finds first)
    /// is recoloured as the edit stage's "make it blue" recolours, one of a neighbouring colour (an orange fox for "a red
    /// fox") is left as drawn. The metadata says `prompt_colour` and `recoloured`.
    public var promptColour = true
    /// The shape-setter is drawn with weight e^(−(s_best − sᵢ)/0.001): neighbours that match equally well (one thing in
    /// several styles) take turns, and one even 0.003 less similar ("globe with meridians" beside "globe showing
    /// Americas" for "the earth globe") sets the shape about 1 time in 20 at most; the best match sets the layout. With
    /// 0.005 such a near match took its turn up to 1 time in 3 (the fondue for "swiss cheese", a frowning face for "an
    /// ugly troll"); with the similarity temperature (0.02), even a shipwreck 0.028 below "a sailing ship" did 1 in 6.
    public static let shapeTemperature = 0.001

    public init() {}

    /// Parses a job's parameter object (empty bytes: every default). The embed, retrieve and denoise stages all read a
    /// generate job's parameters with this one function, so a bad value fails the job at its first stage, with the same
    /// sentence wherever it is read.
    /// - Throws: `StageInputError` naming the bad key and what is allowed.
    public init(json params: [UInt8]) throws {
        guard !params.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else { self.init(); return }
        guard let o = try? JSON.parse(params, what: "job parameters") else {
            throw StageInputError("The job's parameters are not valid JSON; send an object like {\"database\": \"emoji\", \"k\": 16}.")
        }
        guard o.object != nil else {
            throw StageInputError("The job's parameters must be a JSON object like {\"database\": \"emoji\", \"k\": 16}.")
        }
        try self.init(object: o)
    }

    /// Reads the keys of a parsed parameter object (see `init(json:)`).
    public init(object o: JSON) throws {
        if let v = o["prompt"]?.string { prompt = v }
        if let v = o["edit"]?.string, prompt.isEmpty { prompt = v }
        if let v = o["database"] {
            guard let s = v.string, !s.isEmpty else { throw StageInputError("The \"database\" parameter must be a non-empty string such as \"emoji\".") }
            database = s
        }
        /// The value of `key` read by `read` when it passes `valid`; nil when absent; else one sentence saying `allowed`.
        func value<T>(_ key: String, _ read: (JSON) -> T?, _ allowed: String, _ valid: (T) -> Bool) throws -> T? {
            guard let v = o[key] else { return nil }
            guard let t = read(v), valid(t) else {
                throw StageInputError("The \"\(key)\" parameter is \(v.serialized); it must be \(allowed).")
            }
            return t
        }
        func int(_ key: String, _ r: ClosedRange<Int>) throws -> Int? {
            try value(key, \.int, "a whole number from \(r.lowerBound) to \(r.upperBound)", r.contains)
        }
        func number(_ key: String, _ r: ClosedRange<Double>) throws -> Double? {
            try value(key, \.double, "a number from \(Self.text(r.lowerBound)) to \(Self.text(r.upperBound))", r.contains)
        }
        if let v = try int("k", 1...Self.maxK) { k = v }
        if let v = try int("seed", 0...Int.max) { seed = UInt64(v) }
        if let v = try int("steps", 1...200) { steps = v }
        if let v = try value("size", \.int, "32, 64 or 128", { Self.sizes.contains($0) }) { size = v; sizeNamed = true }
        if let v = try int("refine_steps", 1...50) { refineSteps = v }
        if let v = try number("refine_from", 0.05...1) { refineFrom = v }
        if let v = try number("focus", 0...10) { focus = v }
        if let v = try number("consensus", 0...10) { consensus = v }
        if let v = try number("temperature", 0.001...10) { temperature = v }
        if let v = try number("patch_scale", 0.5...3) { patchScale = v }
        // null turns the filter off (the first version's behaviour); absent keeps the default.
        if o["margin"] == .null { margin = nil } else if let v = try number("margin", 0...2) { margin = v }
        if o["coherence"] == .null { coherence = nil } else if let v = try number("coherence", 0...1) { coherence = v }
        if o["colour_agreement"] == .null { colourAgreement = nil } else if let v = try number("colour_agreement", 0...2) { colourAgreement = v }
        if o["outline_agreement"] == .null { outlineAgreement = nil } else if let v = try number("outline_agreement", 0...1) { outlineAgreement = v }
        if let v = o["prompt_colour"] {
            guard let b = v.bool else { throw StageInputError("The \"prompt_colour\" parameter must be true or false.") }
            promptColour = b
        }
        if let v = o["register"] { guard let b = v.bool else { throw StageInputError("The \"register\" parameter must be true or false.") }; register = b }
        if let v = try value("guidance", \.double, "a finite number greater than 0", { $0 > 0 && $0.isFinite }) { guidance = v }
    }

    /// A bound as people write it: 10, 0.5, 0.001.
    static func text(_ d: Double) -> String { JSON.number(d).serialized }

    /// The parameter object that `init(json:)` reads back as these settings: every key, defaults included, so a job
    /// records exactly what it asked for. Clients (the CLI, the demo, the evaluations) build jobs with it.
    public var object: JSON {
        var o: [String: JSON] = [
            "database": .string(database), "k": JSON(k), "seed": .number(Double(seed)), "size": JSON(size),
            "steps": JSON(steps), "temperature": .number(temperature), "focus": .number(focus),
            "consensus": .number(consensus), "patch_scale": .number(patchScale), "register": .bool(register),
            "refine_steps": JSON(refineSteps), "refine_from": .number(refineFrom), "prompt_colour": .bool(promptColour),
            "margin": margin.map { .number($0) } ?? .null, "colour_agreement": colourAgreement.map { .number($0) } ?? .null,
            "outline_agreement": outlineAgreement.map { .number($0) } ?? .null, "coherence": coherence.map { .number($0) } ?? .null,
        ]
        if !prompt.isEmpty { o["prompt"] = .string(prompt) }
        if let guidance { o["guidance"] = .number(guidance) }
        return .object(o)
    }
}
