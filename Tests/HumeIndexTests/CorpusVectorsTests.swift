import Foundation
import HumeCore
import HumeEvaluation
import HumeIndex
import Testing

@Suite("Benchmark vectors shaped like a corpus of real embeddings")
struct CorpusVectorsTests {
    /// An N×384 float32 .npy of `n` unit vectors around 8 directions.
    static func npy(_ n: Int, header: String? = nil, seed: UInt64 = 3) -> Data {
        let d = 384
        var rng = SplitMix64(seed: seed)
        var rows = [Float]()
        for i in 0..<n {
            var v = (0..<d).map { _ in Float(Double(rng.next() % 1000) / 1000 - 0.5) * 0.2 }
            v[i % 8] += 1
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            rows += v.map { $0 / norm }
        }
        var h = header ?? "{'descr': '<f4', 'fortran_order': False, 'shape': (\(n), \(d)), }"
        while (10 + h.utf8.count + 1) % 64 != 0 { h += " " }
        h += "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.utf8.count & 255), UInt8(h.utf8.count >> 8)])
        out += Data(h.utf8)
        rows.withUnsafeBytes { out += Data($0) }
        return out
    }

    @Test("the held-out queries are the last real rows, the base starts with the other real rows, every vector is a unit vector")
    func shape() throws {
        let path = NSTemporaryDirectory() + "hume-corpus-\(getpid()).npy"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.npy(3000).write(to: URL(fileURLWithPath: path))
        let c = try CorpusVectors(npy: path)
        #expect(c.count == 3000)
        let (base, queries) = try c.make(n: 5000, queries: 100, seed: 1)
        #expect(base.count == 5000 * 384 && queries.count == 100 * 384)
        #expect(Array(queries) == Array(c.rows[(2900 * 384)...]))
        #expect(Array(base[0..<(2900 * 384)]) == Array(c.rows[0..<(2900 * 384)]))
        for i in stride(from: 2900, to: 5000, by: 97) {
            let norm = base[(i * 384)..<((i + 1) * 384)].reduce(0) { $0 + $1 * $1 }
            #expect(abs(norm - 1) < 1e-4)
        }
        // Synthetic vectors keep the corpus's clusters: each is near one of the 8 directions, not spread uniformly.
        let synthetic = (2900..<5000).map { i in (0..<8).map { base[i * 384 + $0] }.max()! }
        #expect(synthetic.filter { $0 > 0.5 }.count > synthetic.count * 9 / 10)
        #expect(try c.make(n: 5000, queries: 100, seed: 1).base == base, "deterministic under its seed")
    }

    @Test("with a second file the queries stay the first file's last rows, and its rows come before any synthetic ones")
    func twoFiles() throws {
        let first = NSTemporaryDirectory() + "hume-corpus-a-\(getpid()).npy", second = NSTemporaryDirectory() + "hume-corpus-b-\(getpid()).npy"
        defer { for p in [first, second] { try? FileManager.default.removeItem(atPath: p) } }
        try Self.npy(2500).write(to: URL(fileURLWithPath: first))
        try Self.npy(1000, seed: 9).write(to: URL(fileURLWithPath: second))
        let a = try CorpusVectors(npy: first), b = try CorpusVectors(npy: second)
        let c = try CorpusVectors(npy: [first, second])
        #expect(c.count == 3500 && c.firstCount == 2500)
        let (base, queries) = try c.make(n: 4000, queries: 100, seed: 1)
        #expect(Array(queries) == Array(a.rows[(2400 * 384)...]))
        #expect(Array(base[0..<(2400 * 384)]) == Array(a.rows[0..<(2400 * 384)]))
        #expect(Array(base[(2400 * 384)..<(3400 * 384)]) == b.rows, "the second file's rows follow the first's base rows")
        #expect(!base[(3400 * 384)...].isEmpty && !queries.contains(where: \.isNaN))
        let (realOnly, _) = try c.make(n: 3000, queries: 100, seed: 1)
        #expect(Array(realOnly[(2400 * 384)...]) == Array(b.rows[0..<(600 * 384)]))
    }

    @Test("the benchmark tunes each index on one half of the held-out queries and reports the other: flat is exact, the others meet their target or say not")
    func benchmarkRows() throws {
        let path = NSTemporaryDirectory() + "hume-corpus-bench-\(getpid()).npy"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.npy(4000).write(to: URL(fileURLWithPath: path))
        var b = RetrieveBenchmark(root: URL(fileURLWithPath: NSTemporaryDirectory()))
        b.corpus = try CorpusVectors(npy: path)
        b.sizes = [5000]
        b.queries = 100
        b.factories = ["IVF16,PQ8np"]
        let rows = try b.indexes()
        #expect(rows.map { $0["type"]!.string! } == ["flat", "hnsw", "ivfpq", "custom"])
        for r in rows {
            let recall = r["recall_at_10"]!.double!
            #expect((0...1).contains(recall) && r["queries_per_second"]!.double! > 0 && r["bytes"]!.int! > 0, "\(r)")
            #expect(r["target"]!.double! == (r["factory"]!.string!.hasPrefix("IVF") ? 0.90 : 0.95))
            if r["met"] == .bool(true) { #expect(r["tuning_recall"]!.double! >= r["target"]!.double!, "\(r)") }
        }
        #expect(rows[0]["recall_at_10"]!.double! == 1 && rows[0]["setting_text"]!.string! == "-")
        #expect(rows[1]["setting"]!["efSearch"] != nil && rows[2]["setting"]!["rerank"] != nil, "Hume's IVF-PQ is tuned with its re-ranking")
        #expect(rows[3]["setting"]!["rerank"] == nil, "a custom factory is FAISS alone")
    }

    @Test("a factory FAISS cannot make is refused before anything is measured")
    func badFactory() throws {
        var b = RetrieveBenchmark(root: URL(fileURLWithPath: NSTemporaryDirectory()))
        b.sizes = [1_000_000]   // would take minutes per row if the refusal came after the rows
        b.factories = ["IVF16,PQ8np", "NoSuchIndex42"]
        var measured = 0
        do {
            _ = try b.indexes { _ in measured += 1 }
            Issue.record("a bad factory was accepted")
        } catch let e as HumeError {
            #expect(e.message.hasPrefix("--factory \"NoSuchIndex42\" is not an index FAISS can make"), "\(e.message)")
        }
        #expect(measured == 0)
    }

    @Test("a file that is not N×384 float32 is refused in one sentence")
    func refused() throws {
        let path = NSTemporaryDirectory() + "hume-corpus-bad-\(getpid()).npy"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.npy(10, header: "{'descr': '<f8', 'fortran_order': False, 'shape': (10, 384), }").write(to: URL(fileURLWithPath: path))
        #expect(throws: HumeError.self) { try CorpusVectors(npy: path) }
        try Data("not numpy".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: HumeError.self) { try CorpusVectors(npy: path) }
    }
}
