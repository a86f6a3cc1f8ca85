import Foundation
import HumeCore
import Testing
@testable import HumeIndex

func randomUnit(_ n: Int, _ d: Int, seed: UInt64) -> [Float] {
    var s = seed
    func next() -> Float {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1
    }
    var v = (0..<n * d).map { _ in next() }
    for i in 0..<n {
        let norm = (0..<d).reduce(Float(0)) { $0 + v[i * d + $1] * v[i * d + $1] }.squareRoot()
        for j in 0..<d { v[i * d + j] /= norm }
    }
    return v
}

@Suite("Vector index")
struct VectorIndexTests {
    @Test("flat, HNSW and IVF-PQ indexes give the same results after a write and a read", arguments: IndexKind.allCases)
    func roundTrip(kind: IndexKind) throws {
        let d = 32, n = 4000
        let base = randomUnit(n, d, seed: 1)
        let queries = randomUnit(20, d, seed: 2)
        let ix = try VectorIndex(dimension: d, factory: kind == .ivfpq ? "IVF32,PQ8np" : kind.factory(count: n, dimension: d))
        try ix.train(andAdd: base)
        #expect(ix.count == n)
        if kind == .ivfpq { try ix.setNProbe(8) }
        let before = try ix.search(queries, k: 10)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hume-index-\(kind)-\(getpid()).faiss").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ix.write(to: path)
        let back = try VectorIndex.read(path: path, mmap: true)
        #expect(back.count == n && back.dimension == d)
        if kind == .ivfpq { try back.setNProbe(8); #expect(back.isMemoryMapped) }
        let after = try back.search(queries, k: 10)
        #expect(after.ids == before.ids)
        #expect(after.scores == before.scores)
        // The exact index finds each stored vector as its own best match.
        if kind == .flat {
            let own = try back.search(Array(base[0..<d * 5]), k: 1)
            #expect(own.ids == [0, 1, 2, 3, 4])
        }
    }

    @Test("the kind follows the collection size")
    func choice() {
        #expect(IndexKind.forCount(3_655) == .flat)
        #expect(IndexKind.forCount(200_000) == .hnsw)
        #expect(IndexKind.forCount(2_000_000) == .ivfpq)
        #expect(IndexKind.ivfpq.factory(count: 1_000_000, dimension: 384) == "IVF4096,PQ48np")
    }

    @Test("FAISS failures become HumeErrors with FAISS's reason")
    func errors() throws {
        #expect(throws: HumeError.self) { try VectorIndex(dimension: 8, factory: "NoSuchIndex") }
        #expect(throws: HumeError.self) { try VectorIndex.read(path: "/nonexistent/index.faiss") }
        let flat = try VectorIndex(dimension: 8, factory: "Flat")
        #expect(throws: HumeError.self) { try flat.setEfSearch(10) }
        #expect(throws: HumeError.self) { try flat.search([1, 2, 3], k: 1) }
        let ivf = try VectorIndex(dimension: 8, factory: "IVF4,Flat")
        let zeros = [Float](repeating: 0, count: 8)
        #expect(throws: HumeError.self) { try zeros.withUnsafeBufferPointer { try ivf.add($0) } }
    }
}
