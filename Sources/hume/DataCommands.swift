import ArgumentParser
import Foundation
import HumeCore
import HumeStages
import HumeData
import HumeEmbed
import HumeIndex
import HumeRetrieveStage
import HumeWorker

// MARK: Shared helpers

/// What identifies the text model's weights and vocabulary: `model=<16 hex> vocab=<16 hex>` of their SHA-256, the
/// part of the index stamp and of a `hume db` generation that says which model embedded the captions.
func modelFingerprint() throws -> String {
    let model = humePaths.model
    do { try Embedder.checkFiles(model) } catch { throw modelUnavailable(error) }
    let weights = try SHA256.hex(file: model.appendingPathComponent("model.safetensors").path)
    let vocab = try SHA256.hex(file: model.appendingPathComponent("vocab.txt").path)
    return "model=\(weights.prefix(16)) vocab=\(vocab.prefix(16))"
}

func parseKind(_ s: String) throws -> IndexKind {
    guard let k = IndexKind(rawValue: s.lowercased()) else {
        throw HumeError(.invalidInput, "Unknown index type \"\(s)\"; use flat, hnsw or ivfpq.")
    }
    return k
}

func fmt(_ x: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", x) }

// MARK: hume index

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "index", abstract: "Database indexes.",
                                                    subcommands: [IndexBuild.self])
}

struct IndexBuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Embeds a database's captions and keywords and writes embeddings.f32 and index.faiss (does nothing when current).")

    @Option(help: "Database name (a folder under ${HUME_HOME:-~/.cache/hume}/db).") var database = Database.defaultName
    @Option(help: "Index type: flat, hnsw or ivfpq (default: by size — flat below 50k vectors, HNSW below 1M, IVF-PQ above).")
    var type: String?
    @Flag(help: "Rebuild even when current.") var force = false

    func run() throws {
        do {
            let db = try Database(named: database, root: humePaths.databases)
            if let g = db.generation {
                print("hume index: \(db.name) is kept current by hume db (generation \(g.number), \(g.count) vectors, \(g.indexType)).")
                return
            }
            let kind = try type.map(parseKind) ?? IndexKind.forCount(db.count)
            // The text is part of the stamp: changing what is embedded must rebuild.
            let stamp = "hume-index v1 text=caption+keywords kind=\(kind.rawValue) items=\(db.count) manifest=\(db.manifestDigest) \(try modelFingerprint())\n"
            let fm = FileManager.default
            if !force, fm.fileExists(atPath: db.embeddingsPath.path), fm.fileExists(atPath: db.indexPath.path),
               let old = try? String(contentsOf: db.indexStampPath, encoding: .utf8), old == stamp {
                print("hume index: \(db.name) is up to date (\(db.count) vectors, \(kind.rawValue)).")
                return
            }
            let start = Date()
            let embedder = try loadEmbedder()
            let vectors = try embedder.embedFlat(db.items.map(\.retrievalText))
            let embedSeconds = Date().timeIntervalSince(start)
            let index = try VectorIndex(dimension: Database.dimension, kind: kind, count: db.count)
            try index.train(andAdd: vectors)
            // Stamp removed first and written last: a crash in between leaves a stale (rebuilt next time) state.
            try? fm.removeItem(at: db.indexStampPath)
            try writeFileAtomically(vectors.withUnsafeBytes { Array($0) }, to: db.embeddingsPath.path)
            let tmpIndex = db.directory.appendingPathComponent(".tmp-index.faiss-\(getpid())")
            try index.write(to: tmpIndex.path)
            guard rename(tmpIndex.path, db.indexPath.path) == 0 else {
                throw HumeError(.system, "Cannot rename \(tmpIndex.path) to \(db.indexPath.path): \(String(cString: strerror(errno))).")
            }
            try writeFileAtomically(Array(stamp.utf8), to: db.indexStampPath.path)
            print("hume index: \(db.name): embedded \(db.count) captions in \(fmt(embedSeconds, 1)) s, wrote embeddings.f32 and a \(kind.rawValue) index.faiss (\(fmt(Date().timeIntervalSince(start), 1)) s).")
        }
    }
}

// MARK: hume search

struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search", abstract: "Finds the database images nearest to a text and prints them (optionally as a contact sheet).")

    @Argument(help: "The text to search for.") var query: String
    @Option(help: "Database name.") var database = Database.defaultName
    @Option(name: .short, help: "Neighbours to show (1…256).") var k = 16
    @Option(help: "Write a contact sheet PNG of the neighbours (64×64 each) to this path.") var sheet: String?
    @Flag(help: "Print the answer as the retrieve stage's JSON.") var json = false
    @Flag(help: "Rank by the embedding's cosine alone, not also by the words the text shares with the captions (PROTOCOL.md §11.2), as the retrieve stage does.")
    var cosine = false

    func run() throws {
        do {
            guard (1...GenerateParameters.maxK).contains(k) else {
                throw HumeError(.invalidInput, "-k must be from 1 to \(GenerateParameters.maxK), got \(k).")
            }
            let stage = RetrieveStage(root: humePaths.databases, batchSize: 1)
            let loaded = try stage.databases.database(database)
            let q = try loadEmbedder().embed(EmojiNames.shared.spell(query))   // as the embed stage embeds it
            let bytes: [UInt8]
            if cosine {
                bytes = try loaded.search(q, k: k, prompts: [query], words: false)[0].encoded()
            } else {
                let params = JSON.object(["database": JSON(database), "k": JSON(k)]).bytes
                let outcome = try stage.run([StageTask(lease: 0, jobID: 0, attempt: 0, key: "search", params: params, input: EmbedOutput(vector: q, text: query).encoded())])[0]
                guard case .ok(let b) = outcome else { throw HumeError(.permanent, "\(outcome)") }
                bytes = b
            }
            let answer = try Neighbours(decoding: bytes)
            if json {
                print(String(decoding: bytes, as: UTF8.self))
            } else {
                print("rank  score   id     caption")
                for (i, id) in answer.ids.enumerated() {
                    let item = loaded.database.items[id]
                    let label = item.subgroup.isEmpty ? item.group : item.subgroup
                    print(String(format: "%4d  %.4f  %-5d  ", i + 1, answer.scores?[i] ?? 0, id) + item.caption + (label.isEmpty ? "" : "  [\(label)]"))
                }
            }
            if let sheet {
                let store = try loaded.database.images(side: 64)
                let tiles = try answer.ids.map { try store.copy(id: $0) }
                let image = try ContactSheet.compose(tiles, side: 64, columns: min(8, tiles.count))
                let png = try PNGCodec.encode(image, metadata: [("Title", "hume search: \(query)"), ("hume.database", database),
                                                                 ("hume.ids", answer.ids.map(String.init).joined(separator: ","))])
                try writeFileAtomically(png, to: sheet)
                if !json { print("wrote \(sheet) (\(image.width)×\(image.height))") }
            }
        }
    }
}

// MARK: hume eval retrieve

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Quality evaluations.",
                                                    subcommands: [EvalRetrieve.self, EvalGenerate.self, EvalFidelity.self, EvalEdit.self])
}

/// Precision of neighbours against a query's labels.
struct RetrievalScores {
    var n = 0
    var p1Subgroup = 0.0, p10Subgroup = 0.0, p1Group = 0.0

    mutating func add(query: DatabaseItem, neighbours: [DatabaseItem]) {
        n += 1
        guard let top = neighbours.first else { return }
        if top.subgroup == query.subgroup { p1Subgroup += 1 }
        if top.group == query.group { p1Group += 1 }
        let ten = neighbours.prefix(10)
        p10Subgroup += Double(ten.filter { $0.subgroup == query.subgroup }.count) / 10
    }

    var summary: (Double, Double, Double) {
        let d = Double(max(1, n))
        return (p1Subgroup / d, p10Subgroup / d, p1Group / d)
    }
}

/// TF-IDF with cosine similarity over lower-cased alphanumeric words (pure Swift, sparse).
struct TFIDF {
    var idf: [String: Double] = [:]
    var docs: [[String: Double]] = []

    static func words(_ s: String) -> [String] {
        s.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
    }

    init(documents: [String]) {
        let toks = documents.map(Self.words)
        var df: [String: Int] = [:]
        for t in toks { for w in Set(t) { df[w, default: 0] += 1 } }
        let n = Double(documents.count)
        for (w, c) in df { idf[w] = log((1 + n) / (1 + Double(c))) + 1 }
        docs = toks.map { vector($0) }
    }

    func vector(_ words: [String]) -> [String: Double] {
        var v: [String: Double] = [:]
        for w in words { if let i = idf[w] { v[w, default: 0] += i } }
        let norm = v.values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if norm > 0 { for k in v.keys { v[k]! /= norm } }
        return v
    }

    /// Indices of the `k` most similar documents (ties: lower index first).
    func search(_ text: String, k: Int) -> [Int] {
        let q = vector(Self.words(text))
        var scored: [(Double, Int)] = []
        scored.reserveCapacity(docs.count)
        for (i, d) in docs.enumerated() {
            var s = 0.0
            for (w, x) in q { if let y = d[w] { s += x * y } }
            scored.append((s, i))
        }
        scored.sort { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 < $1.1 }
        return scored.prefix(k).map(\.1)
    }
}

struct EvalRetrieve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieve",
        abstract: "Text→image precision on held-out concepts: each test caption searches the train split only (MiniLM and a TF-IDF baseline).")

    @Option(help: "Database name.") var database = "emoji"
    @Option(help: "What the train items are indexed by: caption or caption+keywords (what `hume index build` uses).")
    var text = "caption+keywords"
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        do {
            guard text == "caption" || text == "caption+keywords" else {
                throw HumeError(.invalidInput, "--text must be caption or caption+keywords, got \"\(text)\".")
            }
            let db = try Database(named: database, root: humePaths.databases)
            let train = db.items.filter { $0.split == "train" }
            let test = db.items.filter { $0.split == "test" }
            guard !train.isEmpty, !test.isEmpty else {
                throw HumeError(.invalidInput, "The database \(database) needs items in both splits to be evaluated.")
            }
            let docText: (DatabaseItem) -> String = text == "caption" ? { $0.caption } : { $0.retrievalText }
            let embedder = try loadEmbedder()
            let start = Date()
            let trainVectors = try embedder.embedFlat(train.map(docText))
            let queryVectors = try embedder.embedFlat(test.map(\.caption))
            let embedSeconds = Date().timeIntervalSince(start)
            let index = try VectorIndex(dimension: Database.dimension, factory: "Flat")
            try index.train(andAdd: trainVectors)
            let result = try index.search(queryVectors, k: 10)
            var minilm = RetrievalScores()
            for (qi, q) in test.enumerated() {
                let nb = (0..<10).compactMap { j -> DatabaseItem? in
                    let id = result.ids[qi * 10 + j]
                    return id >= 0 ? train[Int(id)] : nil
                }
                minilm.add(query: q, neighbours: nb)
            }
            let tfidf = TFIDF(documents: train.map { ([$0.caption] + $0.keywords).joined(separator: " ") })
            var base = RetrievalScores(), baseKW = RetrievalScores()
            for q in test {
                base.add(query: q, neighbours: tfidf.search(q.caption, k: 10).map { train[$0] })
                // The same baseline when the query also carries the test item's keywords (not what a prompt has).
                baseKW.add(query: q, neighbours: tfidf.search(([q.caption] + q.keywords).joined(separator: " "), k: 10).map { train[$0] })
            }
            let (k1, k10, kg) = baseKW.summary
            let (m1, m10, mg) = minilm.summary
            let (t1, t10, tg) = base.summary
            if json {
                let o = JSON.object([
                    "database": JSON(database), "text": JSON(text), "queries": JSON(test.count), "train_items": JSON(train.count),
                    "p_at_1_subgroup": .number(m1), "p_at_10_subgroup": .number(m10), "p_at_1_group": .number(mg),
                    "tfidf": .object(["p_at_1_subgroup": .number(t1), "p_at_10_subgroup": .number(t10), "p_at_1_group": .number(tg)]),
                    "tfidf_query_with_keywords": .object(["p_at_1_subgroup": .number(k1), "p_at_10_subgroup": .number(k10), "p_at_1_group": .number(kg)]),
                ])
                print(o.serialized)
            } else {
                print("eval retrieve: \(database), \(test.count) held-out queries (test captions) against \(train.count) train items indexed by \(text) (embedding \(fmt(embedSeconds, 1)) s)")
                print("method   P@1 subgroup  P@10 subgroup  P@1 group")
                print("MiniLM   \(fmt(m1))         \(fmt(m10))          \(fmt(mg))")
                print("TF-IDF   \(fmt(t1))         \(fmt(t10))          \(fmt(tg))")
                print("TF-IDF*  \(fmt(k1))         \(fmt(k10))          \(fmt(kg))   (*query = test caption + its keywords)")
            }
        }
    }
}
