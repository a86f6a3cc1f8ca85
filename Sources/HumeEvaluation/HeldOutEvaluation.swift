import Foundation
import HumeCore
import HumeData
import HumeDenoiseStage
import HumeDiffusion
import HumeEmbed
import HumeSearch
import HumeStages

/// Which held-out prompts `HeldOutEvaluation` uses.
public enum PromptSet: String, CaseIterable, Sendable { case concepts, items }

/// Label agreement and copy rate of generated stickers on concepts the database holds out (`hume eval generate`): each
/// held-out concept's caption retrieves train items only, and the sample's nearest real image is asked whether it is in
/// the concept's subgroup; the same with random neighbours is the floor. The generator uses no labels unless
/// `consensus` is set.
public struct HeldOutEvaluation {
    public var parameters: GenerateParameters
    public var promptSet: PromptSet = .concepts
    /// At most this many prompts (a seeded subset); nil: all.
    public var count: Int?
    public var copyThreshold = 0.05
    public var copyShift = 2
    public var seeds = 1
    public var sheet = "eval-generate.png"
    /// Where the databases and the text model are.
    public var root: URL
    public var modelDirectory: URL

    public init(parameters: GenerateParameters, root: URL, modelDirectory: URL) {
        self.parameters = parameters
        self.root = root
        self.modelDirectory = modelDirectory
    }

    /// Runs the evaluation, writes its sheet, and returns the numbers (the `--json` object).
    /// - Throws: `HumeError(.invalidInput)` with one sentence for a bad setting; what loading the model or the
    ///   database throws.
    public func run() throws -> [String: Any] {
        let base = parameters
        let (database, k, size, steps) = (base.database, base.k, base.size, base.steps)
        let (temperature, focus, consensus) = (base.temperature, base.focus, base.consensus)
        if let count, count < 1 { throw HumeError(.invalidInput, "--count must be at least 1.") }
        guard (1...100).contains(seeds) else { throw HumeError(.invalidInput, "--seeds must be a whole number from 1 to 100.") }
        guard (0..<size).contains(copyShift) else { throw HumeError(.invalidInput, "--copy-shift must be from 0 to \(size - 1) pixels.") }
        guard copyThreshold > 0, copyThreshold.isFinite else { throw HumeError(.invalidInput, "--copy-threshold must be a number greater than 0.") }
        let search = try TrainSplitSearch(database: database, root: root, modelDirectory: modelDirectory)
        let db = try DatabaseImages(search.loaded.database)
        let items = db.database.items
        var rng = SeededRandom(seed: 20241123)
        var test = items.filter { $0.split == "test" }.map(\.id)
        if promptSet == .concepts {
            // The concept's own item (caption == concept name) when it has one, else its first variant.
            var chosen: [String: Int] = [:]
            for id in test {
                let item = items[id]
                if let c = chosen[item.concept], items[c].caption == item.concept { continue }
                if chosen[item.concept] == nil || item.caption == item.concept { chosen[item.concept] = id }
            }
            test = chosen.values.sorted()
        }
        for i in stride(from: test.count - 1, to: 0, by: -1) { test.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let chosenPrompts = Array(test.prefix(count ?? test.count))
        let train = items.filter { $0.split == "train" }.map(\.id)
        let pixels = try PixelIndex(db, side: size)
        let generator = Generator(images: db)
        var agree = 0, agreeRandom = 0, copies = 0, copiesRandom = 0
        var firstNeighbourAgrees = 0, neighbourAgreement = 0.0, majorityAgrees = 0, consensusAgrees = 0
        // A sample shifted by a pixel or two against the neighbour it follows is still a copy; plain RMSE misses it.
        func shiftedRMSE(_ sample: [UInt8], _ ids: [Int]) throws -> Double {
            try ids.map { id in
                let real = try db.rgb8(id, side: size)
                return PixelIndex.shiftedRMSE(sample, real, side: size, maxShift: copyShift)
            }.min() ?? .infinity
        }
        var rows: [[[UInt8]]] = [], captions: [String] = [], copyDistances: [Double] = []
        let start = Date()
        for (n, id) in chosenPrompts.enumerated() {
            let item = items[id]
            let (ids, scores) = try search.neighbours(item.caption, k: k)
            if let first = ids.first, items[first].subgroup == item.subgroup { firstNeighbourAgrees += 1 }
            neighbourAgreement += Double(ids.filter { items[$0].subgroup == item.subgroup }.count) / Double(max(1, ids.count))
            let votes = Dictionary(grouping: ids.map { items[$0].subgroup }, by: { $0 }).mapValues(\.count)
            if let top = votes.max(by: { $0.value < $1.value }), votes[item.subgroup] == top.value { majorityAgrees += 1 }
            if ConditioningSet.consensusLabel(ids.map { items[$0].subgroup }, voteDecay: focus) == item.subgroup { consensusAgrees += 1 }
            var randomIDs: [Int] = []
            while randomIDs.count < k { let r = train[Int(rng.next() % UInt64(train.count))]; if !randomIDs.contains(r) { randomIDs.append(r) } }
            for j in 0..<seeds {
                var p = base
                p.prompt = item.caption; p.database = database; p.seed = UInt64(n + 1 + j * chosenPrompts.count)
                let sample = try generator.stageImage(ids: ids, scores: scores, parameters: p).pixels
                // Random neighbours carry no similarity to the prompt: weighed alike (and by the rank prior, if any).
                let sampleRandom = try generator.stageImage(ids: randomIDs, parameters: p).pixels
                let near = pixels.nearest(sample), nearRandom = pixels.nearest(sampleRandom)
                if items[near.id].subgroup == item.subgroup { agree += 1 }
                if items[nearRandom.id].subgroup == item.subgroup { agreeRandom += 1 }
                let shifted = try shiftedRMSE(sample, ids)
                if min(near.rmse, shifted) < copyThreshold { copies += 1 }
                copyDistances.append(min(near.rmse, shifted))
                let shiftedRandom = try shiftedRMSE(sampleRandom, randomIDs)
                if min(nearRandom.rmse, shiftedRandom) < copyThreshold { copiesRandom += 1 }
                if j == 0, rows.count < 24 {
                    rows.append([sample] + (try ids.prefix(8).map { id in try db.rgb8(id, side: size) }))
                    captions.append("\(item.caption) [\(item.subgroup)] → nearest: \(items[near.id].caption) [\(items[near.id].subgroup)] rmse \(String(format: "%.3f", near.rmse)); nearest neighbour within ±\(copyShift) px: rmse \(String(format: "%.3f", shifted))")
                }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        try writeSheet(sheet, rows: rows, side: size)
        try? captions.joined(separator: "\n").appending("\n").write(toFile: sheet + ".txt", atomically: true, encoding: .utf8)
        let total = Double(max(1, chosenPrompts.count))
        let samples = Double(max(1, chosenPrompts.count * seeds))
        let sortedDistances = copyDistances.sorted()
        let medianDistance = sortedDistances.isEmpty ? 0 : sortedDistances[sortedDistances.count / 2]
        let nearCopies = Double(copyDistances.filter { $0 < 2 * copyThreshold }.count) / samples
        let result: [String: Any] = [
            "database": database, "prompts": chosenPrompts.count, "prompt_set": promptSet.rawValue, "k": k, "focus": focus, "size": size, "steps": steps,
            "seeds": seeds, "samples": chosenPrompts.count * seeds, "temperature": temperature,
            "label_agreement": Double(agree) / samples, "label_agreement_random": Double(agreeRandom) / samples,
            "copy_rate": Double(copies) / samples, "copy_rate_random": Double(copiesRandom) / samples,
            "copy_threshold_rmse": copyThreshold, "copy_shift_px": copyShift,
            "copy_distance_median": medianDistance, "near_copy_rate": nearCopies,
            "first_neighbour_agreement": Double(firstNeighbourAgrees) / total, "neighbour_agreement": neighbourAgreement / total,
            "majority_neighbour_agreement": Double(majorityAgrees) / total, "consensus": consensus,
            "consensus_neighbour_agreement": Double(consensusAgrees) / total, "seconds": seconds, "sheet": sheet,
        ]
        return result
    }
}

/// Caption search restricted to the train split, for evaluations on held-out concepts: the database's FAISS index
/// (the retrieve stage's), asked for enough extra neighbours to make up for the test items it skips.
public struct TrainSplitSearch {
    public let loaded: LoadedDatabase
    let embedder: Embedder
    let testCount: Int

    public init(database name: String, root: URL, modelDirectory: URL) throws {
        loaded = try IndexedDatabases(root: root).database(name)
        Embedder.setBLASThreads(1)
        embedder = try Embedder(modelDirectory: modelDirectory)
        testCount = loaded.database.items.filter { $0.split != "train" }.count
    }

    /// The `k` nearest train items of `text`, best first, with their similarities (the retriever's cosines).
    public func neighbours(_ text: String, k: Int) throws -> (ids: [Int], scores: [Double]) {
        let items = loaded.database.items
        let q = try embedder.embed(text)
        let r = try loaded.index.index.search(q, k: min(items.count, k + testCount))
        let kept = zip(r.ids, r.scores).filter { $0.0 >= 0 && items[Int($0.0)].split == "train" }.prefix(k)
        return (kept.map { Int($0.0) }, kept.map { Double($0.1) })
    }
}

/// Nearest real image by pixel L2 over a whole database at one side, in [0, 1] units.
public struct PixelIndex {
    let count: Int, dims: Int
    let values: [Float]

    public init(_ db: DatabaseImages, side: Int) throws {
        count = db.count; dims = side * side * 3
        var v = [Float](repeating: 0, count: count * dims)
        let store = try db.store(side: side)
        for i in 0..<count { for (j, b) in try store.image(id: i).enumerated() { v[i * dims + j] = Float(b) / 255 } }
        values = v
    }

    /// The smallest RMSE ([0, 1] units) between `a` and `b` shifted by up to `maxShift` pixels on each axis, over
    /// the pixels the two overlap in.
    public static func shiftedRMSE(_ a: [UInt8], _ b: [UInt8], side: Int, maxShift: Int) -> Double {
        var best = Double.infinity
        for dy in -maxShift...maxShift {
            for dx in -maxShift...maxShift {
                var s = 0, count = 0
                for y in max(0, -dy)..<min(side, side - dy) {
                    for x in max(0, -dx)..<min(side, side - dx) {
                        let i = 3 * (y * side + x), j = 3 * ((y + dy) * side + x + dx)
                        for c in 0..<3 { let t = Int(a[i + c]) - Int(b[j + c]); s += t * t }
                        count += 3
                    }
                }
                best = min(best, (Double(s) / Double(count)).squareRoot() / 255)
            }
        }
        return best
    }

    /// The nearest id and its RMSE.
    public func nearest(_ rgb8: [UInt8], excluding: Set<Int> = []) -> (id: Int, rmse: Double) {
        let q = rgb8.map { Float($0) / 255 }
        var best = (id: -1, d: Float.infinity)
        values.withUnsafeBufferPointer { v in
            for i in 0..<count where !excluding.contains(i) {
                var s: Float = 0
                let base = i * dims
                for j in 0..<dims { let t = v[base + j] - q[j]; s += t * t }
                if s < best.d { best = (i, s) }
            }
        }
        return (best.id, (Double(best.d) / Double(dims)).squareRoot())
    }
}

