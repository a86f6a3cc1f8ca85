import Foundation
import HumeCore
import HumeData
import HumeIndex
import HumeRetrieveStage
import HumeStages

/// Deterministic random unit vectors (SplitMix64 + Box–Muller).
public struct UnitVectors {
    public var rng: SplitMix64
    public init(rng: SplitMix64) { self.rng = rng }
    public mutating func uniform() -> Double { rng.uniform() }
    public mutating func make(_ n: Int, _ d: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n * d)
        for i in 0..<n {
            var norm: Float = 0
            for j in stride(from: 0, to: d, by: 2) {
                let r = (-2 * log(uniform())).squareRoot(), t = 2 * Double.pi * uniform()
                out[i * d + j] = Float(r * cos(t))
                if j + 1 < d { out[i * d + j + 1] = Float(r * sin(t)) }
            }
            for j in 0..<d { norm += out[i * d + j] * out[i * d + j] }
            let inv = 1 / norm.squareRoot()
            for j in 0..<d { out[i * d + j] *= inv }
        }
        return out
    }
}

/// Vectors shaped like real sentence embeddings, from a corpus of real ones (N×384 float32 `.npy` files, e.g. MiniLM
/// over Debian's package descriptions and, for a real 10⁶, the sentences of its dictionaries and manuals,
/// `Ops/make-retrieval-corpus.sh --million`).
///
/// The first file's last `queries` rows are held out as the queries: real texts the base never saw. The base is the
/// first file's other rows, then every row of the files after it, then, past them, synthetic ones fitted to the corpus's cluster structure and spectrum: 1,024 real rows are
/// taken as seeds, every real row is assigned to its nearest seed, each centre is the mean of its rows, and a
/// synthetic vector is the centre of a random real row plus the residual (row − its centre) of a random real row, normalised. Centres carry the topic structure, the
/// residuals the within-topic spread and its low intrinsic dimension; uniformly random vectors have neither.
public struct CorpusVectors {
    public let rows: [Float]
    public let count: Int
    /// Rows of the first file: the queries are its last ones.
    public let firstCount: Int

    /// Reads little-endian float32, C-order, N×384 `.npy` files (version 1 or 2), in order.
    public init(npy paths: [String]) throws {
        guard let first = paths.first else { throw HumeError(.invalidInput, "Name at least one corpus file.") }
        var all = try CorpusVectors(npy: first).rows
        firstCount = all.count / Database.dimension
        for path in paths.dropFirst() { all += try CorpusVectors(npy: path).rows }
        rows = all
        count = all.count / Database.dimension
    }

    /// Reads a little-endian float32, C-order, N×384 `.npy` (version 1 or 2).
    public init(npy path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), data.count > 12, data.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else {
            throw HumeError(.invalidInput, "\(path) is not a .npy file.")
        }
        let b = [UInt8](data)
        let headerLength = b[6] == 1 ? Int(b[8]) | Int(b[9]) << 8 : Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
        let start = b[6] == 1 ? 10 + headerLength : 12 + headerLength
        let header = String(decoding: b[(start - headerLength)..<start], as: UTF8.self)
        let d = Database.dimension
        guard header.contains("'<f4'"), header.contains("False"), header.contains(", \(d))"), (b.count - start) % (d * 4) == 0 else {
            throw HumeError(.invalidInput, "\(path) must hold little-endian float32 rows of \(d) in C order; its header is \(header).")
        }
        count = (b.count - start) / (d * 4)
        firstCount = count
        rows = b[start...].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// `n` base vectors and `queries` held-out query vectors.
    public func make(n: Int, queries: Int, seed: UInt64) throws -> (base: [Float], queries: [Float]) {
        let d = Database.dimension
        let realBase = count - queries
        guard firstCount - queries >= 2048 else {
            throw HumeError(.invalidInput, "The first corpus file has \(firstCount) rows; it needs \(queries + 2048) or more.")
        }
        let q = Array(rows[((firstCount - queries) * d)..<(firstCount * d)])
        // Every real row but the queries, in file order.
        let real = firstCount == count ? rows : Array(rows[0..<((firstCount - queries) * d)] + rows[(firstCount * d)...])
        var base = Array(real[0..<(min(n, realBase) * d)])
        guard n > realBase else { return (base, q) }
        var rng = SplitMix64(seed: seed)
        let centreIDs = (0..<1024).map { _ in Int(rng.next() % UInt64(realBase)) }
        var centres = [Float]()
        for c in centreIDs { centres += real[(c * d)..<((c + 1) * d)] }
        let assign = try VectorIndex(dimension: d, factory: "Flat")
        try assign.train(andAdd: centres)
        let nearest = try real.withUnsafeBufferPointer { try assign.search(UnsafeBufferPointer(rebasing: $0[0..<(realBase * d)]), k: 1) }
        // One Lloyd step: each centre becomes the mean of the rows assigned to it, so that a residual measures a row's
        // spread about its topic and a synthetic vector is as spread as a real one (about a seed row instead, the
        // seed's own deviation would be added twice). A centre nothing was assigned to keeps its seed row.
        var sums = [Float](repeating: 0, count: 1024 * d), members = [Int](repeating: 0, count: 1024)
        for k in 0..<realBase {
            let c = Int(nearest.ids[k])
            members[c] += 1
            for t in 0..<d { sums[c * d + t] += real[k * d + t] }
        }
        for c in 0..<1024 where members[c] > 0 {
            for t in 0..<d { centres[c * d + t] = sums[c * d + t] / Float(members[c]) }
        }
        base.reserveCapacity(n * d)
        var v = [Float](repeating: 0, count: d)
        for _ in realBase..<n {
            // The centre of a random real row (topics as common as in the corpus), the residual of another.
            let j = Int(nearest.ids[Int(rng.next() % UInt64(realBase))]), k = Int(rng.next() % UInt64(realBase))
            let ck = Int(nearest.ids[k])
            var norm: Float = 0
            for t in 0..<d {
                v[t] = centres[j * d + t] + real[k * d + t] - centres[ck * d + t]
                norm += v[t] * v[t]
            }
            let inv = 1 / max(norm.squareRoot(), 1e-12)
            for t in 0..<d { base.append(v[t] * inv) }
        }
        return (base, q)
    }
}

/// Index queries/s, recall@10, build time and size, each index tuned to a recall target, and the retrieve stage's
/// overhead over raw FAISS (`hume bench retrieve`).
///
/// Held-out queries come in two halves: the first picks each index's search setting (`SearchTuner`), the second is
/// the one reported, searched one query at a time on one thread as the retrieve stage does.
public struct RetrieveBenchmark {
    public var sizes: [Int] = [10_000, 100_000]
    public var kinds: [IndexKind] = [.flat, .hnsw, .ivfpq]
    /// FAISS factory strings measured besides `kinds` (e.g. "IVF4096,PQ48x4fs,RFlat").
    public var factories: [String] = []
    /// Queries in each half (tuning, reported).
    public var queries = 1000
    /// One recall@10 target for every index; nil: 0.95 for HNSW and flat, 0.90 for IVF (the targets).
    public var target: Double?
    /// FAISS threads while building (and for the exact ground truth); searches always use one.
    public var buildThreads = 1
    /// The database of the stage-overhead measurement, under `root`.
    public var database = "emoji"
    public var root: URL
    /// Real embeddings to shape the vectors like (`CorpusVectors`); nil: uniformly random unit vectors.
    public var corpus: CorpusVectors?
    /// Where index files are written to measure their size.
    public var scratch = URL(fileURLWithPath: NSTemporaryDirectory())
    /// A folder of built indexes to read instead of building again (written there when missing), keyed by factory,
    /// size and `corpusKey`: for measuring changes to the search at 10⁶ without a five-minute build each time. A read
    /// index's row has no build time.
    public var reuse: URL?
    /// What the vectors were made from (the corpus files' names and sizes), part of a reused index's file name.
    public var corpusKey = "random"

    public init(root: URL) { self.root = root }

    /// - Throws: one sentence when the sizes or the query count cannot be measured.
    public func validate() throws {
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 1000 }), queries > 0 else {
            throw HumeError(.invalidInput, "--sizes must list sizes of at least 1000 and --queries must be positive.")
        }
        // A factory FAISS cannot make is refused now, not after the rows before it have been measured.
        for f in factories {
            do { _ = try VectorIndex(dimension: Database.dimension, factory: f) } catch {
                throw HumeError(.invalidInput, "--factory \"\(f)\" is not an index FAISS can make (\(error)).")
            }
        }
    }

    public func target(for factory: String) -> Double {
        target ?? (factory.uppercased().hasPrefix("IVF") ? 0.90 : 0.95)
    }

    /// One row per (size, index): `size`, `type`, `factory`, `setting`, `target`, `met`, `tuning_recall`,
    /// `build_seconds`, `bytes` (the written index), `queries_per_second`, `recall_at_10`; `row` sees each as it is
    /// measured.
    public func indexes(row: ((JSON) -> Void)? = nil) throws -> [JSON] {
        let d = Database.dimension
        try validate()
        var rows: [JSON] = []
        for n in sizes {
            let base: [Float], held: [Float]
            if let corpus {
                (base, held) = try corpus.make(n: n, queries: 2 * queries, seed: UInt64(n))
            } else {
                var rng = UnitVectors(rng: SplitMix64(seed: UInt64(n)))
                base = rng.make(n, d)
                held = rng.make(2 * queries, d)
            }
            let tuneQueries = Array(held[0 ..< queries * d]), testQueries = Array(held[(queries * d)...])
            // Ground truth: exact flat search (batched, not timed).
            VectorIndex.setThreads(buildThreads)
            let exact = try VectorIndex(dimension: d, factory: "Flat")
            try exact.train(andAdd: base)
            let tuneTruth = try exact.search(tuneQueries, k: 10).ids, testTruth = try exact.search(testQueries, k: 10).ids
            let specs = kinds.map { ($0.rawValue, $0.factory(count: n, dimension: d)) } + factories.map { ("custom", $0) }
            for (type, factory) in specs {
                VectorIndex.setThreads(buildThreads)
                let kept = reuse.map { dir in
                    let name = "\(factory)-\(n)-\(corpusKey)".map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" }
                    return dir.appendingPathComponent(String(name) + ".faiss").path
                }
                let ix: VectorIndex, buildSeconds: Double?
                if let kept, FileManager.default.fileExists(atPath: kept) {
                    ix = try VectorIndex.read(path: kept, mmap: false)
                    buildSeconds = nil
                } else {
                    let t0 = Date()
                    ix = try VectorIndex(dimension: d, factory: factory)
                    if !ix.isTrained {
                        // 10⁵ points, or 40 per inverted list if that is more (FAISS warns below 39).
                        let sample = min(n, max(100_000, 40 * (ivfLists(factory: factory) ?? 0)))
                        try base.withUnsafeBufferPointer { try ix.train(UnsafeBufferPointer(rebasing: $0[0 ..< sample * d])) }
                    }
                    try base.withUnsafeBufferPointer { try ix.add($0) }
                    buildSeconds = Date().timeIntervalSince(t0)
                }
                let file = kept ?? scratch.appendingPathComponent("hume-bench-\(getpid()).faiss").path
                if buildSeconds != nil { try ix.write(to: file) }   // not one just read from `kept`
                let bytes = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
                if kept == nil { try? FileManager.default.removeItem(atPath: file) }
                VectorIndex.setThreads(1)
                let goal = target(for: factory)
                // Re-ranked when the stage would re-rank this kind at this size (its IVF-PQ, its graph of 8-bit codes);
                // a custom factory is FAISS alone.
                let reranked = IndexKind(rawValue: type)?.searchSetting(count: n)["rerank"] != nil
                // For HNSW and IVF-PQ, the same index and setting also searched by FAISS's own one-query code, for
                // comparison with Hume's (`hnsw_search`, `ivfpq_search` in the FAISS shim).
                let compare = factory.hasPrefix("HNSW") || type == IndexKind.ivfpq.rawValue
                let (setting, met, qps, recall, tuningRecall, faiss) = try base.withUnsafeBufferPointer { vectors in
                    var searcher = RerankedSearch(ix, vectors: reranked ? vectors : nil)
                    let tuned = try SearchTuner(target: goal).tune(searcher, factory: factory, queries: tuneQueries, truth: tuneTruth, kTruth: 10)
                    try searcher.apply(tuned.setting)
                    let tuningRecall = recallAtK(found: try searcher.search(tuneQueries, k: 10).ids, truth: tuneTruth, k: 10, kTruth: 10, queries: queries)
                    let (qps, ids) = try SearchTuner.oneAtATime(searcher, queries: testQueries, k: 10)
                    var faiss: (Double, [Int64])?
                    if compare {
                        let walk = VectorIndex.useHumeHNSWWalk(false), scan = VectorIndex.useHumeIVFPQScan(false)
                        defer { VectorIndex.useHumeHNSWWalk(walk); VectorIndex.useHumeIVFPQScan(scan) }
                        faiss = try SearchTuner.oneAtATime(searcher, queries: testQueries, k: 10)
                    }
                    return (tuned.setting, tuned.met, qps, recallAtK(found: ids, truth: testTruth, k: 10, kTruth: 10, queries: queries), tuningRecall, faiss)
                }
                var measured: [String: JSON] = [
                    "size": JSON(n), "type": JSON(type), "factory": JSON(factory), "setting": setting.json,
                    "setting_text": JSON(setting.description), "target": .number(goal), "met": .bool(met),
                    "tuning_recall": .number(tuningRecall), "build_seconds": buildSeconds.map { .number($0) } ?? .null,
                    "bytes": JSON(bytes), "queries_per_second": .number(qps.rounded()), "recall_at_10": .number(recall)]
                if let (faissQPS, faissIDs) = faiss {
                    measured["faiss_walk_queries_per_second"] = .number(faissQPS.rounded())
                    measured["faiss_walk_recall_at_10"] = .number(recallAtK(found: faissIDs, truth: testTruth, k: 10, kTruth: 10, queries: queries))
                }
                rows.append(.object(measured))
                row?(rows.last!)
            }
        }
        return rows
    }

    /// The stage's run() against the raw index search on the same queries (the database's own embeddings), one query
    /// at a time. Each query is timed both ways back to back (raw first on even queries, the stage first on odd ones),
    /// so that the machine's drift over a round, which on a shared box is larger than the difference, falls on both
    /// alike; a round's overhead is its stage total over its raw total, and the result the median of `rounds`. The
    /// queries carry no text, as in a pipeline whose embed stage sent none; `words_*` times the stage a third time with
    /// each query's caption as its text, so its words re-rank the index's first 64 (`CaptionWords`).
    public func stageOverhead(rounds: Int = 9) throws -> JSON {
        let stage = RetrieveStage(root: root, batchSize: 1)
        let loaded = try stage.databases.database(database)
        let emb = try loaded.database.embeddings()
        let n = min(500, emb.count)
        let d = Database.dimension
        let params = JSON.object(["database": JSON(database), "k": JSON(16)]).bytes
        let tasks = (0..<n).map { i in
            StageTask(lease: UInt64(i), jobID: UInt64(i), attempt: 0, key: "\(i)", params: params, input: EmbedOutput(vector: emb.vector(i), text: "").encoded())
        }
        let worded = (0..<n).map { i in
            StageTask(lease: UInt64(i), jobID: UInt64(i), attempt: 0, key: "\(i)", params: params,
                      input: EmbedOutput(vector: emb.vector(i), text: loaded.database.items[i].caption).encoded())
        }
        let ix = loaded.index.index
        func raw(_ i: Int) throws -> UInt64 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try ix.search(UnsafeBufferPointer(rebasing: emb.all[i * d ..< (i + 1) * d]), k: 16)
            return DispatchTime.now().uptimeNanoseconds - t0
        }
        func staged(_ i: Int, _ tasks: [StageTask]) throws -> UInt64 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            guard case .ok = try stage.run([tasks[i]])[0] else { throw HumeError(.system, "The retrieve stage refused a benchmark query.") }
            return DispatchTime.now().uptimeNanoseconds - t0
        }
        var rawUS: [Double] = [], stageUS: [Double] = [], ratios: [Double] = [], wordsUS: [Double] = [], wordsRatios: [Double] = []
        for _ in 0..<max(1, rounds) {
            var r: UInt64 = 0, s: UInt64 = 0, w: UInt64 = 0
            for i in 0..<n {
                if i % 2 == 0 {
                    r += try raw(i)
                    s += try staged(i, tasks)
                    w += try staged(i, worded)
                } else {
                    w += try staged(i, worded)
                    s += try staged(i, tasks)
                    r += try raw(i)
                }
            }
            rawUS.append(Double(r) / Double(n) / 1e3)
            stageUS.append(Double(s) / Double(n) / 1e3)
            wordsUS.append(Double(w) / Double(n) / 1e3)
            ratios.append(Double(s) / Double(r))
            wordsRatios.append(Double(w) / Double(r))
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        return .object(["queries": JSON(n), "rounds": JSON(rounds), "raw_us": .number(median(rawUS)), "stage_us": .number(median(stageUS)),
                        "overhead_percent": .number((median(ratios) - 1) * 100),
                        "overhead_percent_range": .array([.number((ratios.min()! - 1) * 100), .number((ratios.max()! - 1) * 100)]),
                        "words_stage_us": .number(median(wordsUS)), "words_overhead_percent": .number((median(wordsRatios) - 1) * 100)])
    }
}
