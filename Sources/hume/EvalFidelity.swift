import ArgumentParser
import Foundation
import HumeCore
import HumeStages
import HumeData
import HumeDenoiseStage
import HumeDiffusion
import HumeEmbedStage
import HumeEval
import HumeRetrieveStage
import HumeWorker

/// `hume eval fidelity`: does the sticker show what the prompt asked for, and is it new? Prompts a person wrote
/// (`Ops/eval/fidelity-*.jsonl`), each naming the concepts it asks for, go through the embed, retrieve and denoise
/// stages' own code; the samples are scored with the metrics of `HumeEval.FidelityMetric` (README, "Fidelity").
struct EvalFidelity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fidelity",
        abstract: "Recognised / near copy / seed diversity of generated stickers on prompts naming things the database holds.")

    @Option(help: "Prompt list (JSONL: prompt, concepts); default Ops/eval/fidelity-<emoji|tuxpaint>.jsonl for the database.")
    var prompts: String?
    @Option(help: "At most this many prompts (the list's first).") var count: Int?
    @Option(help: "Samples per prompt (seeds 1…n).") var seeds = 3
    @OptionGroup var options: GenerateOptions
    // The shared settings under the names the code below reads.
    var database: String { options.database }
    var k: Int { options.k }
    var size: Int { options.size }
    var steps: Int { options.steps }
    var temperature: Double { options.temperature }
    var patchScale: Double { options.patchScale }
    var focus: Double { options.focus }
    var consensus: Double { options.consensus }
    var margin: Double { options.margin }
    var coherence: Double { options.coherence }
    var register: Bool { options.register }
    @Option(help: "A sample is a near copy when its aligned RMSE at 32² to some database image is below this.") var copyThreshold = 0.08
    @Flag(inversion: .prefixedNo, help: "Also score the first version's default (rank-only focus 0.3, consensus 2, no similarities).")
    var baseline = true
    @Option(help: "Sheet PNG (rows: best neighbour, the samples, then the baseline's); prompts and scores go to <sheet>.txt.")
    var sheet = "eval-fidelity.png"
    @Flag(help: "Print JSON.") var json = false

    /// The default prompt list for a database: tuxpaint's own, else the emoji-style list.
    static func defaultList(for database: String) -> String {
        let name = database.hasPrefix("tuxpaint") ? "fidelity-tuxpaint.jsonl" : "fidelity-emoji.jsonl"
        let candidates = [URL(fileURLWithPath: "Ops/eval").appendingPathComponent(name),
                          URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
                              .deletingLastPathComponent().appendingPathComponent("../../../Ops/eval").appendingPathComponent(name)]
        return (candidates.first { FileManager.default.fileExists(atPath: $0.path) } ?? candidates[0]).standardizedFileURL.path
    }

    struct Totals {
        var recognised = 0, nearCopy = 0, faithfulNew = 0, samples = 0, fineNearCopy = 0, fineFaithfulNew = 0
        var localCopy = 0, localFaithfulNew = 0
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
                    "faithful_and_new": Double(faithfulNew) / n, "seed_diversity": median(diversities),
                    "copy_distance_median": median(copyDistances), "samples": samples,
                    "near_copy_fine": Double(fineNearCopy) / n, "faithful_and_new_fine": Double(fineFaithfulNew) / n,
                    "copy_distance_fine_median": median(fineCopyDistances),
                    "warped_copy": Double(localCopy) / n, "faithful_and_new_unwarped": Double(localFaithfulNew) / n,
                    "local_distance_median": median(localDistances)]
        }
    }

    func run() throws {
        guard (1...20).contains(seeds) else { fail("--seeds must be a whole number from 1 to 20.") }
        guard copyThreshold > 0, copyThreshold.isFinite else { fail("--copy-threshold must be a number greater than 0.") }
        let path = prompts ?? Self.defaultList(for: database)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { fail("could not read the prompt list \(path)") }
        var list = reporting { try FidelityPrompt.parseList(text, file: path) }
        if let count { guard count >= 1 else { fail("--count must be at least 1.") }; list = Array(list.prefix(count)) }
        // `GenerateOptions.validate()` has run the settings through the stages' own parser.
        let settings = options.parameters
        let embed: EmbedStage = reporting { try EmbedStage(batchSize: 64) }
        let retrieve = RetrieveStage(batchSize: 64)
        let denoise = DenoiseStage()
        let generator = reporting { try denoise.generator(for: database) }
        let db = generator.images
        let items = db.database.items
        let known = Set(items.map(\.concept))
        for p in list {
            if let missing = p.concepts.first(where: { !known.contains($0) }) {
                fail("the prompt \"\(p.prompt)\" in \(path) names the concept \"\(missing)\", which the database \(database) does not hold")
            }
        }
        let start = Date()
        let store = reporting { try db.store(side: size) }
        let tiles = (0..<db.count).map { id in Tiles.downsample(reporting { try store.copy(id: id) }, side: size, to: FidelityMetric.side) }
        var metric = FidelityMetric(index: TileIndex(tiles: tiles, side: FidelityMetric.side), concepts: items.map(\.concept))
        metric.copyThreshold = copyThreshold

        // Embed and retrieve every prompt in batches, as the fleet's stages would.
        let params = settings.object.bytes
        func check(_ o: StageOutcome, _ what: String) -> [UInt8] {
            switch o {
            case .ok(let b): return b
            case .permanent(let m), .retryable(let m): fail("\(what) failed: \(m)")
            }
        }
        var answers: [[UInt8]] = []
        for chunk in stride(from: 0, to: list.count, by: 64) {
            let part = list[chunk..<min(chunk + 64, list.count)]
            let tasks = part.map { StageTask(lease: 1, jobID: 1, attempt: 1, key: "", params: params, input: Array($0.prompt.utf8)) }
            let embedded = reporting { try embed.run(tasks) }.map { check($0, "embedding") }
            let found = reporting { try retrieve.run(zip(tasks, embedded).map {
                StageTask(lease: 1, jobID: 1, attempt: 1, key: "", params: params, input: $0.1)
            }) }.map { check($0, "retrieval") }
            answers += found
        }

        var current = Totals(), old = Totals()
        var top1 = 0
        var usedHistogram: [Int: Int] = [:]
        var rows: [[[UInt8]]] = [], lines: [String] = []
        for (n, p) in list.enumerated() {
            let asked = Set(p.concepts)
            let neighbours = reporting { try Neighbours(decoding: answers[n]) }
            if let first = neighbours.ids.first, asked.contains(items[first].concept) { top1 += 1 }
            var samples: [[UInt8]] = [], baselineSamples: [[UInt8]] = [], usedCounts: [Int] = []
            for seed in 1...seeds {
                var seeded = settings
                seeded.seed = UInt64(seed)
                let task = StageTask(lease: 1, jobID: 1, attempt: 1, key: "", params: seeded.object.bytes, input: answers[n])
                let out = check(reporting { try denoise.run([task]) }[0], "denoising")
                let image = reporting { try StageImage(decoding: out) }
                samples.append(image.pixels)
                let meta = (try? JSONSerialization.jsonObject(with: Data(image.metadata))) as? [String: Any]
                usedCounts.append((meta?["used"] as? [Int])?.count ?? 0)
                if baseline {
                    var b = GenerateParameters()
                    b.database = database; b.k = k; b.size = size; b.steps = steps; b.seed = UInt64(seed)
                    b.focus = 0.3; b.consensus = 2
                    b.patchScale = 1.5; b.margin = nil; b.coherence = nil; b.register = false
                    baselineSamples.append(reporting { try generator.stageImage(ids: neighbours.ids, scores: nil, parameters: b) }.pixels)
                }
            }
            let conditioned = neighbours.ids.prefix(k).map { id in reporting { try db.rgb8(id, side: size) } }
            let s = metric.score(samples: samples, size: size, asked: asked, neighbours: conditioned)
            current.add(s)
            var line = "\(p.prompt) [\(p.concepts.joined(separator: " | "))] top1: \(items[neighbours.ids[0]].concept)"
            line += " | nearest: " + s.nearestIDs.indices.map { i in
                "\(items[s.nearestIDs[i]].concept) (copy \(String(format: "%.3f", s.copyDistances[i])), fine \(String(format: "%.3f", s.fineCopyDistances[i])), local \(String(format: "%.3f", s.localCopyDistances[i])))"
            }.joined(separator: ", ")
            line += String(format: " | diversity %.3f", s.diversity ?? 0) + " | used " + usedCounts.map(String.init).joined(separator: ",")
            for n in usedCounts { usedHistogram[min(n, 4), default: 0] += 1 }
            if baseline {
                let b = metric.score(samples: baselineSamples, size: size, asked: asked, neighbours: conditioned)
                old.add(b)
                line += " || baseline: " + zip(b.nearestIDs, b.copyDistances).map { "\(items[$0.0].concept) (copy \(String(format: "%.3f", $0.1)))" }.joined(separator: ", ")
            }
            lines.append(line)
            let best = reporting { try db.rgb8(neighbours.ids[0], side: size) }
            rows.append([best] + samples + baselineSamples)
            if !json, (n + 1) % 25 == 0 { FileHandle.standardError.write(Data("eval fidelity: \(n + 1)/\(list.count) prompts\n".utf8)) }
        }
        writeSheet(sheet, rows: rows, side: size)
        try? lines.joined(separator: "\n").appending("\n").write(toFile: sheet + ".txt", atomically: true, encoding: .utf8)
        var result: [String: Any] = current.json
        result["retriever_top1"] = Double(top1) / Double(list.count)
        result["database"] = database
        result["prompts"] = list.count
        result["prompt_list"] = path
        result["seeds"] = seeds
        result["settings"] = ["k": k, "size": size, "steps": steps, "temperature": temperature, "focus": focus, "consensus": consensus,
                              "patch_scale": patchScale, "margin": margin, "coherence": coherence, "register": register]
        result["copy_threshold"] = copyThreshold
        // How many neighbours the samples were made from (after margin and coherence): 1, 2, 3, 4 or more.
        result["used_neighbours"] = Dictionary(uniqueKeysWithValues: usedHistogram.map { (($0.key >= 4 ? "4+" : String($0.key)), $0.value) })
        result["seconds"] = Date().timeIntervalSince(start)
        result["sheet"] = sheet
        if baseline {
            result["baseline"] = old.json.merging(["settings": ["k": k, "size": size, "steps": steps, "focus": 0.3, "consensus": 2, "similarities": false]]) { a, _ in a }
        }
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        } else {
            func row(_ name: String, _ o: [String: Any]) -> String {
                String(format: "%@: recognised %.3f, near copy %.3f (warped copy %.3f), faithful and new %.3f (unwarped %.3f), seed diversity %.3f",
                       name, o["recognised"] as! Double, o["near_copy"] as! Double, o["warped_copy"] as! Double,
                       o["faithful_and_new"] as! Double, o["faithful_and_new_unwarped"] as! Double, o["seed_diversity"] as! Double)
            }
            print(String(format: "eval fidelity: %@, %d prompts × %d seeds, retriever top-1 %.3f", database, list.count, seeds, Double(top1) / Double(list.count)))
            print(row("this build", result))
            if baseline { print(row("first version's default", result["baseline"] as! [String: Any])) }
            print("sheet \(sheet) (rows: best neighbour, samples, baseline samples), details \(sheet).txt")
        }
    }
}
