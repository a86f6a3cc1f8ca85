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

/// Index queries/s and recall@10 on random 384-d unit vectors, and the retrieve stage's overhead over raw FAISS
/// (`hume bench retrieve`).
public struct RetrieveBenchmark {
    public var sizes: [Int] = [10_000, 100_000]
    public var kinds: [IndexKind] = [.flat, .hnsw, .ivfpq]
    public var queries = 1000, efSearch = 64, nprobe = 16
    /// The database of the stage-overhead measurement, under `root`.
    public var database = "emoji"
    public var root: URL

    public init(root: URL) { self.root = root }

    /// One row per (size, index type): `size`, `type`, `factory`, `build_seconds`, `queries_per_second`,
    /// `recall_at_10`; `row` sees each as it is measured.
    public func indexes(row: ((JSON) -> Void)? = nil) throws -> [JSON] {
        let d = Database.dimension
        let sizeList = sizes
        guard !sizeList.isEmpty, sizeList.allSatisfy({ $0 >= 1000 }), queries > 0 else {
            throw HumeError(.invalidInput, "--sizes must list sizes of at least 1000 and --queries must be positive.")
        }
        var rows: [JSON] = []
        for n in sizeList {
            var rng = UnitVectors(rng: SplitMix64(seed: UInt64(n)))
            let base = rng.make(n, d)
            let qs = rng.make(queries, d)
            // Ground truth: exact flat search (batched, not timed).
            let exact = try VectorIndex(dimension: d, factory: "Flat")
            try exact.train(andAdd: base)
            let truth = try exact.search(qs, k: 10)
            for kind in kinds {
                let factory = kind.factory(count: n, dimension: d)
                let t0 = Date()
                let ix = try VectorIndex(dimension: d, factory: factory)
                if !ix.isTrained {
                    // Train on at most 100k points (FAISS's k-means subsamples further, to 256 per centroid).
                    let sample = min(n, 100_000)
                    try base.withUnsafeBufferPointer { try ix.train(UnsafeBufferPointer(rebasing: $0[0 ..< sample * d])) }
                }
                try base.withUnsafeBufferPointer { try ix.add($0) }
                let buildSeconds = Date().timeIntervalSince(t0)
                if kind == .hnsw { try ix.setEfSearch(efSearch) }
                if kind == .ivfpq { try ix.setNProbe(nprobe) }
                var ids = [Int64]()
                ids.reserveCapacity(queries * 10)
                let t1 = Date()
                try qs.withUnsafeBufferPointer { qp in
                    for q in 0..<queries {
                        ids += try ix.search(UnsafeBufferPointer(rebasing: qp[q * d ..< (q + 1) * d]), k: 10).ids
                    }
                }
                let qps = Double(queries) / Date().timeIntervalSince(t1)
                var hit = 0
                for q in 0..<queries {
                    let t = Set(truth.ids[q * 10 ..< (q + 1) * 10])
                    hit += ids[q * 10 ..< (q + 1) * 10].filter { t.contains($0) }.count
                }
                let recall = Double(hit) / Double(queries * 10)
                rows.append(.object(["size": JSON(n), "type": JSON(kind.rawValue), "factory": JSON(factory),
                                     "build_seconds": .number(buildSeconds), "queries_per_second": .number(qps.rounded()),
                                     "recall_at_10": .number(recall)]))
                row?(rows.last!)
            }
        }
        return rows
    }

    /// The stage's run() against the raw index search on the same queries (the database's own embeddings).
    public func stageOverhead() throws -> JSON {
        let stage = RetrieveStage(root: root, batchSize: 1)
        let loaded = try stage.databases.database(database)
        let emb = try loaded.database.embeddings()
        let n = min(500, emb.count)
        let d = Database.dimension
        let params = JSON.object(["database": JSON(database), "k": JSON(16)]).bytes
        let tasks = (0..<n).map { i in
            StageTask(lease: UInt64(i), jobID: UInt64(i), attempt: 0, key: "\(i)", params: params, input: EmbedOutput(vector: emb.vector(i), text: "").encoded())
        }
        let ix = loaded.index.index
        var raw: [Double] = [], staged: [Double] = []
        for _ in 0..<5 {
            let t0 = Date()
            for i in 0..<n {
                _ = try ix.search(UnsafeBufferPointer(rebasing: emb.all[i * d ..< (i + 1) * d]), k: 16)
            }
            raw.append(Date().timeIntervalSince(t0) / Double(n) * 1e6)
            let t1 = Date()
            for t in tasks {
                guard case .ok = try stage.run([t])[0] else { throw HumeError(.system, "The retrieve stage refused a benchmark query.") }
            }
            staged.append(Date().timeIntervalSince(t1) / Double(n) * 1e6)
        }
        let r = raw.sorted()[2], s = staged.sorted()[2]
        return .object(["queries": JSON(n), "raw_us": .number(r), "stage_us": .number(s), "overhead_percent": .number((s / r - 1) * 100)])
    }
}
