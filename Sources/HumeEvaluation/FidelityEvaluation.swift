import Foundation
import HumeCore
import HumeData
import HumeDiffusion
import HumeDenoiseStage
import HumeEmbedStage
import HumeEval
import HumeRetrieveStage
import HumeSearch
import HumeStages

/// Does the sticker show what the prompt asked for, and is it new? Prompts a person wrote (`Ops/eval/fidelity-*.jsonl`),
/// each naming the concepts it asks for, go through the embed, retrieve and denoise stages' own code, and the samples
/// are scored with `HumeEval.FidelityMetric` (README, "Fidelity"). `hume eval fidelity` is its command line.
public struct FidelityEvaluation {
    /// The generation settings (the seed is set per sample: 1…`seeds`).
    public var parameters: GenerateParameters
    /// The prompt list (JSONL: prompt, concepts).
    public var promptList: String
    /// At most this many prompts (the list's first); nil: all.
    public var count: Int?
    public var seeds = 3
    public var copyThreshold = 0.08
    /// Also score the first version's default (rank-only focus 0.3, consensus 2, no similarities).
    public var baseline = true
    /// The sheet PNG (rows: best neighbour, the samples, then the baseline's); prompts and scores go to `<sheet>.txt`.
    public var sheet = "eval-fidelity.png"
    /// Called after every 25 prompts with (done, total).
    public var progress: ((Int, Int) -> Void)?

    /// Where the databases and the text model are.
    public var root: URL
    public var modelDirectory: URL

    public init(parameters: GenerateParameters, promptList: String, root: URL, modelDirectory: URL) {
        self.parameters = parameters
        self.promptList = promptList
        self.root = root
        self.modelDirectory = modelDirectory
    }

    /// The default prompt list for a database: tuxpaint's own, else the emoji-style list; looked for under `Ops/eval`
    /// of the working directory, then beside the executable's checkout.
    public static func defaultList(for database: String, executable: String) -> String {
        let name = database.hasPrefix("tuxpaint") ? "fidelity-tuxpaint.jsonl" : "fidelity-emoji.jsonl"
        let candidates = [URL(fileURLWithPath: "Ops/eval").appendingPathComponent(name),
                          URL(fileURLWithPath: executable).resolvingSymlinksInPath()
                              .deletingLastPathComponent().appendingPathComponent("../../../Ops/eval").appendingPathComponent(name)]
        return (candidates.first { FileManager.default.fileExists(atPath: $0.path) } ?? candidates[0]).standardizedFileURL.path
    }

    struct Totals {
        var recognised = 0, nearCopy = 0, faithfulNew = 0, samples = 0, fineNearCopy = 0, fineFaithfulNew = 0
        var localCopy = 0, localFaithfulNew = 0
        /// Samples of prompts that name a colour (`PromptColour.parse`), and those that show it (`pictureShows`).
        var coloured = 0, colourShown = 0
        var diversities: [Double] = [], copyDistances: [Double] = [], fineCopyDistances: [Double] = [], localDistances: [Double] = []

        mutating func add(_ s: FidelityScores) {
            for i in s.recognised.indices {
                samples += 1
                if s.recognised[i] { recognised += 1 }
                if s.nearCopy[i] { nearCopy += 1 }
                if s.recognised[i] && !s.nearCopy[i] { faithfulNew += 1 }
                if s.fineNearCopy.indices.contains(i) {
                    if s.fineNearCopy[i] { fineNearCopy += 1 }
                    if s.recognised[i] && !s.fineNearCopy[i] { fineFaithfulNew += 1 }
                    if s.localCopy[i] || s.nearCopy[i] { localCopy += 1 }
                    if s.recognised[i] && !s.localCopy[i] && !s.nearCopy[i] { localFaithfulNew += 1 }
                }
            }
            copyDistances += s.copyDistances
            fineCopyDistances += s.fineCopyDistances
            localDistances += s.localCopyDistances
            if let d = s.diversity { diversities.append(d) }
        }

        var json: [String: Any] {
            let n = Double(max(samples, 1))
            return ["recognised": Double(recognised) / n, "near_copy": Double(nearCopy) / n,
                    "faithful_and_new": Double(faithfulNew) / n, "seed_diversity": orNull(median(diversities)),
                    "copy_distance_median": orNull(median(copyDistances)), "samples": samples,
                    "near_copy_fine": Double(fineNearCopy) / n, "faithful_and_new_fine": Double(fineFaithfulNew) / n,
                    "copy_distance_fine_median": orNull(median(fineCopyDistances)),
                    "warped_copy": Double(localCopy) / n, "faithful_and_new_unwarped": Double(localFaithfulNew) / n,
                    "local_distance_median": orNull(median(localDistances)),
                    "colour_samples": coloured, "colour_shown": coloured > 0 ? Double(colourShown) / Double(coloured) : NSNull()]
        }
    }

    /// One line of `<sheet>.samples.jsonl`: a sample's scores exactly as the totals count them, so a number can be
    /// checked, or broken down (by drawing style, by how many neighbours a sample was made from), from the file alone.
    static func sampleRecord(prompt p: FidelityPrompt, seed: Int, scores s: FidelityScores, at i: Int, meta: [String: Any],
                             items: [DatabaseItem], top1: Int, colour: (name: String, shown: Bool)?) -> String {
        let nearest = items[s.nearestIDs[i]]
        var o: [String: JSON] = [
            "prompt": .string(p.prompt), "seed": JSON(seed), "concepts": .array(p.concepts.map { .string($0) }),
            "top1": .string(items[top1].concept),
            "nearest": .object(["id": JSON(nearest.id), "concept": .string(nearest.concept), "style": .string(nearest.style)]),
            "recognised": .bool(s.recognised[i]), "copy_distance": .number(s.copyDistances[i]), "near_copy": .bool(s.nearCopy[i]),
            "faithful_and_new": .bool(s.recognised[i] && !s.nearCopy[i]),
        ]
        if s.localCopyDistances.indices.contains(i) {
            o["local_distance"] = .number(s.localCopyDistances[i])
            o["warped_copy"] = .bool(s.localCopy[i] || s.nearCopy[i])
        }
        let used = (meta["used"] as? [Int]) ?? []
        o["used"] = .array(used.map { JSON($0) })
        o["used_styles"] = .array(used.map { .string(items.indices.contains($0) ? items[$0].style : "") })
        if let shape = meta["shape_from"] as? Int { o["shape_from"] = JSON(shape) }
        // The drawing style of the neighbour that set the sample's shape (the only one used, without coherence).
        if let shape = (meta["shape_from"] as? Int) ?? used.first, items.indices.contains(shape) {
            o["shape_style"] = .string(items[shape].style)
        }
        if let colour {
            o["colour"] = .string(colour.name)
            o["colour_shown"] = .bool(colour.shown)
            o["recoloured"] = .bool(meta["recoloured"] as? Bool ?? false)
        }
        return JSON.object(o).serialized
    }

    /// A median of nothing (one seed has no seed diversity) is JSON's null, not a NaN JSON cannot hold.
    static func orNull(_ x: Double) -> Any { x.isNaN ? NSNull() : x }

    /// Runs the evaluation, writes the sheet and its `.txt`, and returns the numbers (the `--json` object).
    /// - Throws: `HumeError(.invalidInput)` with one sentence for a bad setting, list or concept; what loading the
    ///   model or the database throws.
    public func run() throws -> [String: Any] {
        guard (1...20).contains(seeds) else { throw HumeError(.invalidInput, "--seeds must be a whole number from 1 to 20.") }
        guard copyThreshold > 0, copyThreshold.isFinite else { throw HumeError(.invalidInput, "--copy-threshold must be a number greater than 0.") }
        let text = try UserFile.text(promptList, what: "the prompt list")
        var list = try FidelityPrompt.parseList(text, file: promptList)
        if let count {
            guard count >= 1 else { throw HumeError(.invalidInput, "--count must be at least 1.") }
            list = Array(list.prefix(count))
        }
        let settings = parameters
        let (database, k, size, steps) = (settings.database, settings.k, settings.size, settings.steps)
        let embed = try EmbedStage(modelDirectory: modelDirectory, batchSize: 64)
        let retrieve = RetrieveStage(root: root, batchSize: 64)
        let denoise = DenoiseStage(root: root)
        let generator = try denoise.generator(for: database)
        let db = generator.images
        let items = db.database.items
        let known = Set(items.map(\.concept))
        for p in list {
            if let missing = p.concepts.first(where: { !known.contains($0) }) {
                throw HumeError(.invalidInput, "the prompt \"\(p.prompt)\" in \(promptList) names the concept \"\(missing)\", which the database \(database) does not hold")
            }
        }
        let start = Date()
        let store = try db.store(side: size)
        let tiles = try (0..<db.count).map { id in Tiles.downsample(try store.copy(id: id), side: size, to: FidelityMetric.side) }
        var metric = FidelityMetric(index: TileIndex(tiles: tiles, side: FidelityMetric.side), concepts: items.map(\.concept))
        metric.copyThreshold = copyThreshold

        // Embed and retrieve every prompt in batches, as the fleet's stages would.
        let params = settings.object.bytes
        func check(_ o: StageOutcome, _ what: String) throws -> [UInt8] {
            switch o {
            case .ok(let b): return b
            case .permanent(let m), .retryable(let m): throw HumeError(.permanent, "\(what) failed: \(m)")
            }
        }
        var answers: [[UInt8]] = []
        // The first neighbour by the cosine alone too (the ranking before the prompt's words, PROTOCOL.md §11.2).
        var top1Cosine = 0
        let loaded = try retrieve.databases.database(database)
        for chunk in stride(from: 0, to: list.count, by: 64) {
            let part = list[chunk..<min(chunk + 64, list.count)]
            let tasks = part.map { StageTask(lease: 1, jobID: 1, attempt: 1, key: "", params: params, input: Array($0.prompt.utf8)) }
            let embedded = try embed.run(tasks).map { try check($0, "embedding") }
            let found = try retrieve.run(zip(tasks, embedded).map {
                StageTask(lease: 1, jobID: 1, attempt: 1, key: "", params: params, input: $0.1)
            }).map { try check($0, "retrieval") }
            answers += found
            let vectors = try embedded.flatMap { try EmbedOutput(decoding: $0).vector }
            let byCosine = try loaded.search(vectors, k: 1, prompts: part.map(\.prompt), words: false)
            for (p, n) in zip(part, byCosine) where n.ids.first.map({ p.concepts.contains(items[$0].concept) }) ?? false {
                top1Cosine += 1
            }
        }

        var current = Totals(), old = Totals()
        var top1 = 0
        var usedHistogram: [Int: Int] = [:]
        var rows: [[[UInt8]]] = [], lines: [String] = [], records: [String] = []
        for (n, p) in list.enumerated() {
            let asked = Set(p.concepts)
            let neighbours = try Neighbours(decoding: answers[n])
            if let first = neighbours.ids.first, asked.contains(items[first].concept) { top1 += 1 }
            var samples: [[UInt8]] = [], baselineSamples: [[UInt8]] = [], metas: [[String: Any]] = []
            for seed in 1...seeds {
                var seeded = settings
                seeded.seed = UInt64(seed)
                let task = StageTask(lease: 1, jobID: 1, attempt: 1, key: "", params: seeded.object.bytes, input: answers[n])
                let out = try check(try denoise.run([task])[0], "denoising")
                let image = try StageImage(decoding: out)
                samples.append(image.pixels)
                metas.append((try? JSONSerialization.jsonObject(with: Data(image.metadata))) as? [String: Any] ?? [:])
                if baseline {
                    var b = GenerateParameters()
                    b.database = database; b.k = k; b.size = size; b.steps = steps; b.seed = UInt64(seed)
                    b.focus = 0.3; b.consensus = 2
                    b.patchScale = 1.5; b.margin = nil; b.coherence = nil; b.register = false
                    baselineSamples.append(try generator.stageImage(ids: neighbours.ids, scores: nil, parameters: b).pixels)
                }
            }
            let usedCounts = metas.map { ($0["used"] as? [Int])?.count ?? 0 }
            let conditioned = try neighbours.ids.prefix(k).map { id in try db.rgb8(id, side: size) }
            let s = metric.score(samples: samples, size: size, asked: asked, neighbours: conditioned)
            current.add(s)
            // Prompts that name a colour: does each sample show it? The baseline is scored alike below.
            let colour = PromptColour.parse(p.prompt)
            let checked = colour.map { c in (name: c.name, shown: samples.map { PromptColour.pictureShows(c, rgb8: $0) }) }
            let shown = checked.map { $0.shown.filter { $0 }.count }
            if let shown {
                current.coloured += samples.count
                current.colourShown += shown
            }
            var line = "\(p.prompt) [\(p.concepts.joined(separator: " | "))] top1: \(items[neighbours.ids[0]].concept)"
            line += " | nearest: " + s.nearestIDs.indices.map { i in
                "\(items[s.nearestIDs[i]].concept) (copy \(String(format: "%.3f", s.copyDistances[i])), fine \(String(format: "%.3f", s.fineCopyDistances[i])), local \(String(format: "%.3f", s.localCopyDistances[i])))"
            }.joined(separator: ", ")
            line += String(format: " | diversity %.3f", s.diversity ?? 0) + " | used " + usedCounts.map(String.init).joined(separator: ",")
            if let colour, let shown { line += " | colour \(colour.name): shown \(shown)/\(samples.count)" }
            for n in usedCounts { usedHistogram[min(n, 4), default: 0] += 1 }
            for i in samples.indices {
                records.append(Self.sampleRecord(prompt: p, seed: i + 1, scores: s, at: i, meta: metas[i], items: items,
                                                 top1: neighbours.ids[0], colour: checked.map { ($0.name, $0.shown[i]) }))
            }
            if baseline {
                let b = metric.score(samples: baselineSamples, size: size, asked: asked, neighbours: conditioned)
                old.add(b)
                if let colour {
                    old.coloured += baselineSamples.count
                    old.colourShown += baselineSamples.filter { PromptColour.pictureShows(colour, rgb8: $0) }.count
                }
                line += " || baseline: " + zip(b.nearestIDs, b.copyDistances).map { "\(items[$0.0].concept) (copy \(String(format: "%.3f", $0.1)))" }.joined(separator: ", ")
            }
            lines.append(line)
            let best = try db.rgb8(neighbours.ids[0], side: size)
            rows.append([best] + samples + baselineSamples)
            if (n + 1) % 25 == 0 { progress?(n + 1, list.count) }
        }
        try writeSheet(sheet, rows: rows, side: size)
        try? lines.joined(separator: "\n").appending("\n").write(toFile: sheet + ".txt", atomically: true, encoding: .utf8)
        try? records.joined(separator: "\n").appending("\n").write(toFile: sheet + ".samples.jsonl", atomically: true, encoding: .utf8)
        var result: [String: Any] = current.json
        result["retriever_top1"] = Double(top1) / Double(list.count)
        result["retriever_top1_cosine"] = Double(top1Cosine) / Double(list.count)
        result["database"] = database
        result["prompts"] = list.count
        result["prompt_list"] = promptList
        result["seeds"] = seeds
        result["settings"] = ["k": k, "size": size, "steps": steps, "temperature": settings.temperature, "focus": settings.focus,
                              "consensus": settings.consensus, "patch_scale": settings.patchScale, "margin": settings.margin ?? 2,
                              "coherence": settings.coherence ?? 0, "register": settings.register,
                              "colour_agreement": settings.colourAgreement ?? 2, "outline_agreement": settings.outlineAgreement ?? 1,
                              "prompt_colour": settings.promptColour]
        result["copy_threshold"] = copyThreshold
        // How many neighbours the samples were made from (after margin and coherence): 1, 2, 3, 4 or more.
        result["used_neighbours"] = Dictionary(uniqueKeysWithValues: usedHistogram.map { (($0.key >= 4 ? "4+" : String($0.key)), $0.value) })
        result["seconds"] = Date().timeIntervalSince(start)
        result["sheet"] = sheet
        if baseline {
            result["baseline"] = old.json.merging(["settings": ["k": k, "size": size, "steps": steps, "focus": 0.3, "consensus": 2, "similarities": false]]) { a, _ in a }
        }
        return result
    }
}
