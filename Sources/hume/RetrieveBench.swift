import ArgumentParser
import Foundation
import HumeCore
import HumeData
import HumeEvaluation
import HumeIndex

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
    @Option(help: "Real embeddings (N×384 float32 .npy, Ops/make-retrieval-corpus.sh) to shape the vectors like; default: uniformly random unit vectors.") var corpus: String?
    @Option(help: "FAISS threads.") var threads = 1
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        do {
            VectorIndex.setThreads(threads)
            var b = RetrieveBenchmark(root: humePaths.databases)
            b.sizes = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            b.kinds = try types.split(separator: ",").map { try parseKind(String($0)) }
            b.queries = queries; b.efSearch = efSearch; b.nprobe = nprobe; b.database = database
            if let corpus { b.corpus = try CorpusVectors(npy: corpus) }
            if !json { print("size       type    factory          build s   queries/s   recall@10") }
            let rows = try b.indexes { r in
                guard !json else { return }
                print(String(format: "%-10d %-7@ %-16@ %7.1f   %9.0f   %.3f", r["size"]!.int!, r["type"]!.string! as NSString,
                             r["factory"]!.string! as NSString, r["build_seconds"]!.double!, r["queries_per_second"]!.double!,
                             r["recall_at_10"]!.double!))
            }
            let overhead = try b.stageOverhead()
            if json {
                print(JSON.object(["indexes": .array(rows), "stage_overhead": overhead]).serialized)
            } else {
                if !b.sizes.contains(1_000_000) {
                    print("(10⁶ not run by default: HNSW32 takes many minutes to build at 10⁶ on 2 shared cores; pass --sizes 10000,100000,1000000)")
                }
                print("stage overhead (\(database), k=16, \(overhead["queries"]!.int!) queries one at a time, median of 5 rounds): raw FAISS \(fmt(overhead["raw_us"]!.double!, 1)) µs/query, stage run() \(fmt(overhead["stage_us"]!.double!, 1)) µs/query, overhead \(fmt(overhead["overhead_percent"]!.double!, 1))%")
            }
        }
    }
}
