import ArgumentParser
import Foundation
import HumeCore
import HumeData
import HumeIndex
import HumeRetrieveStage
import HumeStages

/// Deterministic random unit vectors (SplitMix64 + Box–Muller).
struct UnitVectors {
    var rng: SplitMix64
    mutating func uniform() -> Double { rng.uniform() }
    mutating func make(_ n: Int, _ d: Int) -> [Float] {
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

struct BenchRetrieve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieve",
        abstract: "Index queries/s and recall@10 on random 384-d unit vectors, and the retrieve stage's overhead over raw FAISS.")

    @Option(help: "Comma-separated collection sizes (10⁶ is slow to build on 2 cores: add 1000000 to run it).")
    var sizes = "10000,100000"
    @Option(help: "Comma-separated index types: flat, hnsw, ivfpq.") var types = "flat,hnsw,ivfpq"
    @Option(help: "Queries per measurement (searched one at a time, as the stage sees them).") var queries = 1000
    @Option(help: "HNSW efSearch.") var efSearch = 64
    @Option(help: "IVF nprobe.") var nprobe = 16
    @Option(help: "Database for the stage-overhead measurement.") var database = "emoji"
    @Option(help: "FAISS threads.") var threads = 1
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        reporting {
            VectorIndex.setThreads(threads)
            let d = Database.dimension
            let sizeList = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            let kinds = try types.split(separator: ",").map { try parseKind(String($0)) }
            guard !sizeList.isEmpty, sizeList.allSatisfy({ $0 >= 1000 }), queries > 0 else {
                throw HumeError(.invalidInput, "--sizes must list sizes of at least 1000 and --queries must be positive.")
            }
            var rows: [JSON] = []
            if !json { print("size       type    factory          build s   queries/s   recall@10") }
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
                    if !json {
                        print(String(format: "%-10d %-7@ %-16@ %7.1f   %9.0f   %.3f", n, kind.rawValue as NSString, factory as NSString,
                                     buildSeconds, qps, recall))
                    }
                }
            }
            let overhead = try stageOverhead()
            if json {
                print(JSON.object(["indexes": .array(rows), "stage_overhead": overhead]).serialized)
            } else {
                if !sizeList.contains(1_000_000) {
                    print("(10⁶ not run by default: HNSW32 takes many minutes to build at 10⁶ on 2 shared cores; pass --sizes 10000,100000,1000000)")
                }
                print("stage overhead (\(database), k=16, \(overhead["queries"]!.int!) queries one at a time, median of 5 rounds): raw FAISS \(fmt(overhead["raw_us"]!.double!, 1)) µs/query, stage run() \(fmt(overhead["stage_us"]!.double!, 1)) µs/query, overhead \(fmt(overhead["overhead_percent"]!.double!, 1))%")
            }
        }
    }

    /// The stage's run() against the raw index search on the same queries (the database's own embeddings).
    func stageOverhead() throws -> JSON {
        let stage = RetrieveStage(batchSize: 1)
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
