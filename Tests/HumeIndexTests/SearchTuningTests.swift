import Foundation
import HumeCore
import HumeData
import HumeSearch
import Testing
@testable import HumeIndex

/// `n` unit vectors of dimension `d` around `clusters` random directions (spread `noise`): structure an approximate
/// index can exploit, as real embeddings have.
func clustered(_ n: Int, _ d: Int, clusters: Int, noise: Float, seed: UInt64) -> [Float] {
    let centres = randomUnit(clusters, d, seed: seed)
    let jitter = randomUnit(n, d, seed: seed &+ 1)
    var out = [Float](repeating: 0, count: n * d)
    for i in 0..<n {
        let c = (i &* 7919) % clusters
        var norm: Float = 0
        for t in 0..<d {
            out[i * d + t] = centres[c * d + t] + noise * jitter[i * d + t]
            norm += out[i * d + t] * out[i * d + t]
        }
        for t in 0..<d { out[i * d + t] /= norm.squareRoot() }
    }
    return out
}

/// The exact top 10 of each query (a flat index).
func exactTop10(_ base: [Float], _ queries: [Float], _ d: Int) throws -> SearchResult {
    let exact = try VectorIndex(dimension: d, factory: "Flat")
    try exact.train(andAdd: base)
    return try exact.search(queries, k: 10)
}

@Suite("Search settings tuned to a recall target")
struct SearchTuningTests {
    @Test("the grid: efSearch for HNSW, nprobe up to the list count for IVF, with the re-ranking factor and the HNSW quantizer's efSearch where they apply")
    func grid() {
        let hnsw = SearchSetting.grid(factory: "HNSW32").map { $0["efSearch"]! }
        #expect(hnsw.first == 16 && hnsw == hnsw.sorted())
        let ivf = SearchSetting.grid(factory: "IVF64,PQ8np")
        #expect(ivf.map { $0["nprobe"]! } == [1, 2, 4, 8, 12, 16, 24, 32, 48, 64])
        #expect(ivf.allSatisfy { $0["rerank"] == nil && $0["k_factor_rf"] == nil })
        let reranked = SearchSetting.grid(factory: "IVF64,PQ8np", rerank: true)
        #expect(Set(reranked.compactMap { $0["rerank"] }) == [4, 8, 16, 32] && reranked.count == 40)
        #expect(SearchSetting.grid(factory: "IVF1024,PQ48x4fs,RFlat").allSatisfy { $0["k_factor_rf"] != nil })
        #expect(SearchSetting.grid(factory: "IVF256_HNSW32,PQ48np").allSatisfy { $0["quantizer_efSearch"]! >= 2 * $0["nprobe"]! })
        #expect(SearchSetting.grid(factory: "Flat") == [SearchSetting()])
    }

    @Test("the tuner keeps the cheapest efSearch that reaches the target on the tuning queries; an unreachable target says so")
    func tunes() throws {
        let d = 32
        let base = clustered(20_000, d, clusters: 200, noise: 0.6, seed: 11)
        let queries = clustered(300, d, clusters: 200, noise: 0.6, seed: 12)
        let truth = try exactTop10(base, queries, d).ids
        let ix = try VectorIndex(dimension: d, factory: "HNSW8")
        try ix.train(andAdd: base)
        let target = 0.97
        let tuned = try SearchTuner(target: target).tune(RerankedSearch(ix), factory: "HNSW8", queries: queries, truth: truth, kTruth: 10)
        #expect(tuned.met)
        let ef = tuned.setting["efSearch"]!
        func recall(_ ef: Int) throws -> Double {
            try ix.setSearchParameter("efSearch", Double(ef))
            return recallAtK(found: try ix.search(queries, k: 10).ids, truth: truth, k: 10, kTruth: 10, queries: 300)
        }
        #expect(try recall(ef) >= target)
        let grid = SearchSetting.grid(factory: "HNSW8").map { $0["efSearch"]! }
        if let below = grid.last(where: { $0 < ef }) { #expect(try recall(below) < target, "efSearch \(below) was enough") }
        #expect(ef > grid[0], "the data should need more than the smallest efSearch, or the test proves nothing")

        let ivf = try VectorIndex(dimension: d, factory: "IVF16,PQ4np")
        try ivf.train(andAdd: base)
        let coarse = try SearchTuner(target: 0.999).tune(RerankedSearch(ivf), factory: "IVF16,PQ4np", queries: queries, truth: truth, kTruth: 10)
        #expect(!coarse.met)
        func ivfRecall(_ p: Int) throws -> Double {
            try ivf.setSearchParameter("nprobe", Double(p))
            return recallAtK(found: try ivf.search(queries, k: 10).ids, truth: truth, k: 10, kTruth: 10, queries: 300)
        }
        let best = try [1, 2, 4, 8, 12, 16].map(ivfRecall).max()!
        #expect(try ivfRecall(coarse.setting["nprobe"]!) == best, "with the target out of reach, the setting of highest recall")
        #expect(best < 0.999)
    }

    @Test("re-ranking: IVF-PQ candidates re-scored against the stored vectors give exact scores, best first, and a higher recall")
    func reranks() throws {
        let d = 32
        let base = clustered(8000, d, clusters: 64, noise: 0.7, seed: 21)
        let queries = clustered(200, d, clusters: 64, noise: 0.7, seed: 22)
        let truth = try exactTop10(base, queries, d)
        let ix = try VectorIndex(dimension: d, factory: "IVF32,PQ4np")
        try ix.train(andAdd: base)
        try ix.setSearchParameter("nprobe", 8)
        let plain = try RerankedSearch(ix).search(queries, k: 10)
        let (reranked, one) = try base.withUnsafeBufferPointer { v in
            (try RerankedSearch(ix, vectors: v, factor: 8).search(queries, k: 10), try RerankedSearch(ix, vectors: v, factor: 1).search(queries, k: 10))
        }
        #expect(one.ids == plain.ids, "factor 1 is the plain search")
        let r0 = recallAtK(found: plain.ids, truth: truth.ids, k: 10, kTruth: 10, queries: 200)
        let r8 = recallAtK(found: reranked.ids, truth: truth.ids, k: 10, kTruth: 10, queries: 200)
        #expect(r8 > r0 + 0.1, "recall \(r0) → \(r8)")
        for q in 0..<200 {
            let scores = Array(reranked.scores[q * 10 ..< (q + 1) * 10])
            #expect(scores == scores.sorted(by: >))
            for j in 0..<10 {
                let id = Int(reranked.ids[q * 10 + j])
                let dot = (0..<d).reduce(Float(0)) { $0 + queries[q * d + $1] * base[id * d + $1] }
                #expect(abs(dot - scores[j]) < 1e-5)
            }
        }
    }

    @Test("a database with an IVF-PQ index is searched re-ranked: its own embedding comes back first with its exact score")
    func databaseReranks() throws {
        let emoji = testPaths.databases.appendingPathComponent("emoji")
        guard FileManager.default.fileExists(atPath: emoji.appendingPathComponent("embeddings.f32").path) else {
            Issue.record("The emoji database is needed: run Ops/prepare-data.sh first.")
            return
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hume-ivfpq-\(getpid())")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let dir = root.appendingPathComponent("emojiq")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: emoji.path) where !f.hasPrefix("index") {
            try FileManager.default.copyItem(at: emoji.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        let db = try Database(named: "emojiq", root: root)
        let emb = try db.embeddings()
        let ix = try VectorIndex(dimension: Database.dimension, kind: .ivfpq, count: db.count)
        try ix.train(andAdd: Array(emb.all))
        try ix.write(to: dir.appendingPathComponent("index.faiss").path)
        try Data("hume-index v1 kind=ivfpq items=\(db.count)\n".utf8).write(to: dir.appendingPathComponent("index.stamp"))

        let loaded = try LoadedDatabase(name: "emojiq", root: root)
        let ids = stride(from: 0, to: db.count, by: max(1, db.count / 50)).map { $0 }
        let found = try loaded.search(ids.flatMap { emb.vector($0) }, k: 8, prompts: ids.map { _ in "" })
        var first = 0
        for (id, n) in zip(ids, found) {
            if db.items[n.ids[0]].retrievalText == db.items[id].retrievalText { first += 1 }
            #expect(n.scores! == n.scores!.sorted(by: >))
            for (j, other) in n.ids.enumerated() {
                let dot = zip(emb.vector(id), emb.vector(other)).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                #expect(abs(Double(dot) - n.scores![j]) < 2e-6, "approximate score returned for \(id) → \(other)")
            }
        }
        #expect(first == ids.count, "\(first) of \(ids.count) found themselves first")
    }
}
