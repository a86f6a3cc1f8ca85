import ArgumentParser
import Foundation
import HumeCore
import HumeData
import HumeEvaluation
import HumeIndex

struct BenchRetrieve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieve",
        abstract: "Index queries/s, recall@10, build time and size, each index tuned to a recall target; and the retrieve stage's overhead over raw FAISS.")

    @Option(help: "Comma-separated collection sizes (10⁶ is slow to build on 2 cores: add 1000000 to run it).")
    var sizes = "10000,100000"
    @Option(help: "Comma-separated index types: flat, hnsw, ivfpq (the factories Hume builds at each size).") var types = "flat,hnsw,ivfpq"
    @Option(name: .customLong("factory"), help: "A FAISS factory string to measure too (repeatable), e.g. IVF4096,PQ48x4fs,RFlat.")
    var factories: [String] = []
    @Option(help: "Held-out queries in each half: one half tunes each index's search setting, the other is reported (one query at a time, one thread).")
    var queries = 1000
    @Option(help: "recall@10 target for every index (default: 0.95 for HNSW, 0.90 for IVF).") var recall: Double?
    @Option(help: "Database for the stage-overhead measurement.") var database = "emoji"
    @Option(help: "Real embeddings (N×384 float32 .npy, Ops/make-retrieval-corpus.sh) to shape the vectors like; repeatable: the first file's last rows are the queries, the others add base rows before any synthetic ones. Default: uniformly random unit vectors.")
    var corpus: [String] = []
    @Option(help: "FAISS threads for building and the exact ground truth (searches use one).") var threads = 2
    @Option(help: "A folder to keep built indexes in and read them from on later runs (same factory, size and corpus files): no build time is reported for a read one.")
    var reuseIndexes: String?
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        do {
            var b = RetrieveBenchmark(root: humePaths.databases)
            b.sizes = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            b.kinds = try types.split(separator: ",").map { try parseKind(String($0)) }
            b.factories = factories
            b.queries = queries; b.target = recall; b.buildThreads = threads; b.database = database
            if let recall, !(0...1).contains(recall) { throw ValidationError("--recall must be between 0 and 1.") }
            try b.validate()
            if !corpus.isEmpty { b.corpus = try CorpusVectors(npy: corpus) }
            if let reuseIndexes {
                try FileManager.default.createDirectory(atPath: reuseIndexes, withIntermediateDirectories: true)
                b.reuse = URL(fileURLWithPath: reuseIndexes)
                b.corpusKey = corpus.isEmpty ? "random" : corpus.map { path in
                    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
                    return "\(URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)\(size)"
                }.joined(separator: "+")
            }
            if !json { print("size      type   factory                        setting                          build s   MB      queries/s  recall@10 (target)") }
            let rows = try b.indexes { r in
                guard !json else { return }
                func pad(_ s: String, _ w: Int) -> String { s.padding(toLength: max(w, s.count), withPad: " ", startingAt: 0) }
                print(pad("\(r["size"]!.int!)", 9) + " " + pad(r["type"]!.string!, 6) + " " + pad(r["factory"]!.string!, 30) + " "
                      + pad(r["setting_text"]!.string!, 32)
                      + String(format: " %7.1f %7.1f %9.0f   %.3f (%.2f", r["build_seconds"]!.double ?? .nan, Double(r["bytes"]!.int!) / 1e6,
                               r["queries_per_second"]!.double!, r["recall_at_10"]!.double!, r["target"]!.double!)
                      + (r["met"] == .bool(true) ? ")" : ", not reached)")
                      + (r["faiss_walk_queries_per_second"].map { String(format: "; FAISS's own search %.0f q/s at %.3f", $0.double!, r["faiss_walk_recall_at_10"]!.double!) } ?? ""))
            }
            VectorIndex.setThreads(1)
            let overhead = try b.stageOverhead()
            if json {
                print(JSON.object(["indexes": .array(rows), "stage_overhead": overhead]).serialized)
            } else {
                if !b.sizes.contains(1_000_000) {
                    print("(10⁶ not run by default: HNSW32 takes many minutes to build at 10⁶ on 2 shared cores; pass --sizes 10000,100000,1000000)")
                }
                print("stage overhead (\(database), k=16, \(overhead["queries"]!.int!) queries one at a time, each timed both ways back to back, median of \(overhead["rounds"]!.int!) rounds): raw FAISS \(fmt(overhead["raw_us"]!.double!, 1)) µs/query, stage run() \(fmt(overhead["stage_us"]!.double!, 1)) µs/query, overhead \(fmt(overhead["overhead_percent"]!.double!, 1))% (rounds \(fmt(overhead["overhead_percent_range"]!.array![0].double!, 1)) to \(fmt(overhead["overhead_percent_range"]!.array![1].double!, 1))%); with each query's caption as its text (its words re-rank the first 64): \(fmt(overhead["words_stage_us"]!.double!, 1)) µs/query, overhead \(fmt(overhead["words_overhead_percent"]!.double!, 1))%")
            }
        }
    }
}
