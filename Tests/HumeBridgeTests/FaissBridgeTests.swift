import CFaiss
import Foundation
import Testing

@Suite("CFaiss bridge")
struct FaissBridgeTests {
    static let dimension = 16

    /// `count` unit vectors from a fixed seed (SplitMix64), row-major.
    static func unitVectors(count: Int, seed: UInt64) -> [Float] {
        var state = seed
        func next() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 24) * 2 - 1
        }
        var vectors: [Float] = []
        vectors.reserveCapacity(count * dimension)
        for _ in 0..<count {
            let row = (0..<dimension).map { _ in next() }
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            vectors += row.map { $0 / norm }
        }
        return vectors
    }

    /// `count` unit rows of `d` floats cut from `unitVectors`' stream; with `directions`, row i leans towards axis
    /// i % `directions` by `lean` before it is normalised (clustered, like real embeddings).
    static func rows(count: Int, d: Int, seed: UInt64, directions: Int? = nil, lean: Float = 0) -> [Float] {
        let raw = unitVectors(count: count * d / dimension + 1, seed: seed)
        return (0..<count).flatMap { i -> [Float] in
            var row = Array(raw[(i * d)..<((i + 1) * d)])
            if let directions { row[i % directions] += lean }
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return row.map { $0 / norm }
        }
    }

    static var lastError: String { String(cString: hume_faiss_last_error()) }

    static func makeIndex(_ description: String) throws -> OpaquePointer {
        var index: OpaquePointer?
        let status = hume_faiss_index_factory(Int32(dimension), description, &index)
        try #require(status == HUME_FAISS_OK, "\(lastError)")
        return try #require(index)
    }

    static func search(_ index: OpaquePointer, _ queries: [Float], k: Int) throws -> (distances: [Float], labels: [Int64]) {
        let n = queries.count / dimension
        var distances = [Float](repeating: .nan, count: n * k)
        var labels = [Int64](repeating: -2, count: n * k)
        let status = hume_faiss_search(index, Int64(n), queries, Int64(k), &distances, &labels)
        try #require(status == HUME_FAISS_OK, "\(lastError)")
        return (distances, labels)
    }

    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("hume-faiss-\(UUID().uuidString).index").path
    }

    @Test("a flat inner-product index finds each stored vector as its own nearest neighbour")
    func flatFindsItself() throws {
        let vectors = Self.unitVectors(count: 100, seed: 1)
        let index = try Self.makeIndex("Flat")
        defer { hume_faiss_free(index) }
        #expect(hume_faiss_dimension(index) == 16)
        #expect(hume_faiss_is_trained(index) == 1)
        #expect(hume_faiss_add(index, 100, vectors) == HUME_FAISS_OK)
        #expect(hume_faiss_ntotal(index) == 100)

        let (distances, labels) = try Self.search(index, vectors, k: 3)
        for i in 0..<100 {
            #expect(labels[i * 3] == Int64(i))
            #expect(abs(distances[i * 3] - 1) < 1e-5, "inner product of a unit vector with itself")
            #expect(distances[i * 3] >= distances[i * 3 + 1])
            #expect(distances[i * 3 + 1] < 0.9999, "no other vector is identical")
        }
    }

    @Test("writing an index to a file and reading it back gives the same search results")
    func writeReadRoundTrip() throws {
        let vectors = Self.unitVectors(count: 100, seed: 2)
        let queries = Self.unitVectors(count: 10, seed: 3)
        let index = try Self.makeIndex("Flat")
        defer { hume_faiss_free(index) }
        #expect(hume_faiss_add(index, 100, vectors) == HUME_FAISS_OK)
        let before = try Self.search(index, queries, k: 5)

        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(hume_faiss_write(index, path) == HUME_FAISS_OK, "\(Self.lastError)")

        var read: OpaquePointer?
        var usedMmap: Int32 = -1
        #expect(hume_faiss_read(path, 1, &read, &usedMmap) == HUME_FAISS_OK, "\(Self.lastError)")
        let copy = try #require(read)
        defer { hume_faiss_free(copy) }
        #expect(usedMmap == 0, "a flat index has no inverted lists to map")
        #expect(hume_faiss_ntotal(copy) == 100)
        #expect(hume_faiss_dimension(copy) == 16)
        let after = try Self.search(copy, queries, k: 5)
        #expect(after.labels == before.labels)
        #expect(after.distances == before.distances)
    }

    @Test("an IVF index read back with mmap maps its lists and searches like the original")
    func ivfMmapRoundTrip() throws {
        let vectors = Self.unitVectors(count: 400, seed: 4)
        let index = try Self.makeIndex("IVF4,Flat")
        defer { hume_faiss_free(index) }
        #expect(hume_faiss_is_trained(index) == 0)
        #expect(hume_faiss_add(index, 400, vectors) == HUME_FAISS_FAISS_ERROR, "adding before training is refused")
        #expect(Self.lastError.contains("not trained"))
        #expect(hume_faiss_train(index, 400, vectors) == HUME_FAISS_OK, "\(Self.lastError)")
        #expect(hume_faiss_add(index, 400, vectors) == HUME_FAISS_OK, "\(Self.lastError)")
        #expect(hume_faiss_set_ivf_nprobe(index, 4) == HUME_FAISS_OK, "\(Self.lastError)")
        let queries = Array(vectors.prefix(20 * Self.dimension))
        let before = try Self.search(index, queries, k: 4)
        #expect(before.labels.enumerated().filter { $0.offset % 4 == 0 }.map(\.element) == (0..<20).map { Int64($0) })

        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(hume_faiss_write(index, path) == HUME_FAISS_OK, "\(Self.lastError)")
        var read: OpaquePointer?
        var usedMmap: Int32 = -1
        #expect(hume_faiss_read(path, 1, &read, &usedMmap) == HUME_FAISS_OK, "\(Self.lastError)")
        let mapped = try #require(read)
        defer { hume_faiss_free(mapped) }
        #expect(usedMmap == 1)
        #expect(hume_faiss_set_ivf_nprobe(mapped, 4) == HUME_FAISS_OK, "\(Self.lastError)")
        let after = try Self.search(mapped, queries, k: 4)
        #expect(after.labels == before.labels)
        #expect(after.distances == before.distances)
    }

    @Test("an HNSW index takes efSearch and still finds stored vectors")
    func hnswEfSearch() throws {
        let vectors = Self.unitVectors(count: 100, seed: 5)
        let index = try Self.makeIndex("HNSW32")
        defer { hume_faiss_free(index) }
        #expect(hume_faiss_add(index, 100, vectors) == HUME_FAISS_OK)
        #expect(hume_faiss_set_hnsw_ef_search(index, 64) == HUME_FAISS_OK, "\(Self.lastError)")
        let (_, labels) = try Self.search(index, vectors, k: 1)
        #expect(labels == (0..<100).map { Int64($0) })
        #expect(hume_faiss_set_ivf_nprobe(index, 8) == HUME_FAISS_FAISS_ERROR, "nprobe does not apply to HNSW")
        #expect(Self.lastError.contains("nprobe"))
    }

    @Test("both inner-product kernels agree with a double-precision sum, at every length's tail")
    func innerProductKernels() throws {
        for d in Array(1...70) + [384, 385] {
            let x = (0..<d).map { Float(sin(Double($0) * 0.7 + 0.3)) }, y = (0..<d).map { Float(cos(Double($0) * 1.3)) }
            let exact = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            var out: [Float] = [0, 0]
            let usesAVX2 = hume_faiss_inner_product_kernels(x, y, d, &out)
            #expect(abs(Double(out[0]) - exact) < 1e-4, "portable, d = \(d)")
            if out[1].isNaN {
                #expect(usesAVX2 == 0, "searches cannot use a kernel the CPU lacks")
            } else {
                #expect(abs(Double(out[1]) - exact) < 1e-4, "AVX2, d = \(d)")
                #expect(usesAVX2 == 1, "a CPU with AVX2 + FMA searches with them")
            }
        }
    }

    /// Each query's `k` best stored vectors by inner product, computed in Swift in double precision.
    static func bruteForce(_ vectors: [Float], _ queries: [Float], d: Int, k: Int) -> [[Int64]] {
        let n = vectors.count / d
        return stride(from: 0, to: queries.count, by: d).map { q in
            let scores = (0..<n).map { i in (0..<d).reduce(0.0) { $0 + Double(queries[q + $1]) * Double(vectors[i * d + $1]) } }
            return Array(scores.indices.sorted { scores[$0] > scores[$1] }.prefix(k).map { Int64($0) })
        }
    }

    @Test("one query at a time, flat and HNSW indexes find what a brute-force scan finds, fewer than k stored pads with -1",
          arguments: [21, 384])
    func oneQueryAtATime(d: Int) throws {
        // Unit vectors at dimension d from the 16-dimensional generator's stream.
        let raw = Self.unitVectors(count: 700 * d / Self.dimension + 1, seed: 9)
        func unit(_ i: Int) -> [Float] {
            let row = Array(raw[(i * d)..<((i + 1) * d)])
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return row.map { $0 / norm }
        }
        let vectors = (0..<600).flatMap(unit), queries = (600..<640).flatMap(unit)
        let truth = Self.bruteForce(vectors, queries, d: d, k: 5)
        for factory in ["Flat", "HNSW32"] {
            var made: OpaquePointer?
            try #require(hume_faiss_index_factory(Int32(d), factory, &made) == HUME_FAISS_OK, "\(Self.lastError)")
            let index = try #require(made)
            defer { hume_faiss_free(index) }
            #expect(hume_faiss_add(index, 600, vectors) == HUME_FAISS_OK)
            if factory != "Flat" { #expect(hume_faiss_set_hnsw_ef_search(index, 600) == HUME_FAISS_OK) }
            for q in 0..<40 {
                var distances = [Float](repeating: .nan, count: 5), labels = [Int64](repeating: -2, count: 5)
                #expect(hume_faiss_search(index, 1, Array(queries[(q * d)..<((q + 1) * d)]), 5, &distances, &labels) == HUME_FAISS_OK)
                #expect(labels == truth[q], "\(factory), d = \(d), query \(q)")
                #expect(distances == distances.sorted(by: >), "best first")
            }
        }
        // Three stored vectors, k = 5: the rest is -1, as FAISS pads.
        for factory in ["Flat", "HNSW32"] {
            var made: OpaquePointer?
            try #require(hume_faiss_index_factory(Int32(d), factory, &made) == HUME_FAISS_OK)
            let small = try #require(made)
            defer { hume_faiss_free(small) }
            #expect(hume_faiss_add(small, 3, Array(vectors.prefix(3 * d))) == HUME_FAISS_OK)
            var distances = [Float](repeating: .nan, count: 5), labels = [Int64](repeating: -2, count: 5)
            #expect(hume_faiss_search(small, 1, Array(vectors.prefix(d)), 5, &distances, &labels) == HUME_FAISS_OK)
            #expect(labels[0] == 0 && Set(labels.prefix(3)) == [0, 1, 2] && labels.suffix(2) == [-1, -1], "\(factory): \(labels)")
        }
    }

    @Test("Hume's one-query HNSW walk finds as many true neighbours as FAISS's own search of the same graph, at every efSearch")
    func hnswWalkMatchesFaiss() throws {
        // 6,000 vectors: 9 MB of them, so the shim also asks for huge pages under them (from 8 MB), and the searches
        // below read the collapsed pages.
        let d = 384, n = 6000, k = 10
        // Clustered like real embeddings: each vector leans towards one of 40 directions.
        let vectors = Self.rows(count: n + 100, d: d, seed: 4, directions: 40, lean: 2)
        let base = Array(vectors.prefix(n * d)), queries = Array(vectors.suffix(100 * d))
        // The truth from a flat index (checked against a brute-force scan in the test above).
        var flatMade: OpaquePointer?
        try #require(hume_faiss_index_factory(Int32(d), "Flat", &flatMade) == HUME_FAISS_OK)
        let flat = try #require(flatMade)
        defer { hume_faiss_free(flat) }
        #expect(hume_faiss_add(flat, Int64(n), base) == HUME_FAISS_OK)
        var truthD = [Float](repeating: 0, count: 100 * k), truthL = [Int64](repeating: 0, count: 100 * k)
        #expect(hume_faiss_search(flat, 100, queries, Int64(k), &truthD, &truthL) == HUME_FAISS_OK)
        let truth = (0..<100).map { Set(truthL[($0 * k)..<(($0 + 1) * k)]) }
        var made: OpaquePointer?
        try #require(hume_faiss_index_factory(Int32(d), "HNSW32", &made) == HUME_FAISS_OK)
        let index = try #require(made)
        defer { hume_faiss_free(index) }
        #expect(hume_faiss_add(index, Int64(n), base) == HUME_FAISS_OK)
        for ef in [10, 32, 128] {
            #expect(hume_faiss_set_hnsw_ef_search(index, Int32(ef)) == HUME_FAISS_OK)
            // FAISS's own search: a batch of 100 queries (batches of 20 or more are not Hume's walk).
            var faissD = [Float](repeating: 0, count: 100 * k), faissL = [Int64](repeating: 0, count: 100 * k)
            #expect(hume_faiss_search(index, 100, queries, Int64(k), &faissD, &faissL) == HUME_FAISS_OK)
            var hits = (faiss: 0, hume: 0)
            for q in 0..<100 {
                var dist = [Float](repeating: 0, count: k), labels = [Int64](repeating: 0, count: k)
                #expect(hume_faiss_search(index, 1, Array(queries[(q * d)..<((q + 1) * d)]), Int64(k), &dist, &labels) == HUME_FAISS_OK)
                #expect(dist == dist.sorted(by: >), "best first")
                if q % 10 == 0 {
                    let top = (0..<d).reduce(0.0) { $0 + Double(queries[q * d + $1]) * Double(base[Int(labels[0]) * d + $1]) }
                    #expect(abs(Double(dist[0]) - top) < 1e-4, "the score is the inner product of the query and its id")
                }
                hits.hume += Set(labels).intersection(truth[q]).count
                hits.faiss += Set(faissL[(q * k)..<((q + 1) * k)]).intersection(truth[q]).count
            }
            #expect(Double(hits.hume) >= Double(hits.faiss) * 0.98, "efSearch \(ef): \(hits)")
            if ef == 128 { #expect(hits.hume >= 990, "\(hits)") }
        }
    }

    @Test("Hume's one-query IVF-PQ scan returns FAISS's own results (same ids, same scores), and the re-ranking kernel is exact")
    func ivfpqScanMatchesFaiss() throws {
        let d = 64, n = 3000, k = 20
        let all = Self.rows(count: n + 50, d: d, seed: 6)
        let base = Array(all.prefix(n * d)), queries = Array(all.suffix(50 * d))
        var made: OpaquePointer?
        try #require(hume_faiss_index_factory(Int32(d), "IVF32,PQ8np", &made) == HUME_FAISS_OK, "\(Self.lastError)")
        let index = try #require(made)
        defer { hume_faiss_free(index) }
        #expect(hume_faiss_train(index, Int64(n), base) == HUME_FAISS_OK)
        #expect(hume_faiss_add(index, Int64(n), base) == HUME_FAISS_OK)
        #expect(hume_faiss_set_ivf_nprobe(index, 4) == HUME_FAISS_OK)
        // FAISS's own: a batch of 50 (batches of 20 or more are not Hume's scan).
        var faissD = [Float](repeating: 0, count: 50 * k), faissL = [Int64](repeating: 0, count: 50 * k)
        #expect(hume_faiss_search(index, 50, queries, Int64(k), &faissD, &faissL) == HUME_FAISS_OK)
        var same = 0
        for q in 0..<50 {
            var dist = [Float](repeating: 0, count: k), labels = [Int64](repeating: 0, count: k)
            #expect(hume_faiss_search(index, 1, Array(queries[(q * d)..<((q + 1) * d)]), Int64(k), &dist, &labels) == HUME_FAISS_OK)
            #expect(dist == dist.sorted(by: >), "best first")
            same += Set(labels).intersection(faissL[(q * k)..<((q + 1) * k)]).count
            for j in 0..<k where labels[j] == faissL[q * k + j] { #expect(abs(dist[j] - faissD[q * k + j]) < 1e-4) }
        }
        #expect(same >= 50 * k * 99 / 100, "\(same) of \(50 * k)")
        // Asking for more than the probed lists hold pads with -1.
        #expect(hume_faiss_set_ivf_nprobe(index, 1) == HUME_FAISS_OK)
        var dist = [Float](repeating: 0, count: 2000), labels = [Int64](repeating: 0, count: 2000)
        #expect(hume_faiss_search(index, 1, Array(queries.prefix(d)), 2000, &dist, &labels) == HUME_FAISS_OK)
        let found = labels.filter { $0 >= 0 }.count
        #expect(found > 0 && found < 2000 && labels[found...].allSatisfy { $0 == -1 })
        // The re-ranking kernel: exact products, -infinity for a negative id.
        let ids: [Int64] = [0, 17, -1, Int64(n - 1)]
        var products = [Float](repeating: 0, count: 4)
        hume_faiss_inner_products(Array(queries.prefix(d)), base, ids, 4, Int32(d), &products)
        for (j, id) in ids.enumerated() {
            if id < 0 { #expect(products[j] == -.infinity); continue }
            let exact = (0..<d).reduce(0.0) { $0 + Double(queries[$1]) * Double(base[Int(id) * d + $1]) }
            #expect(abs(Double(products[j]) - exact) < 1e-5)
        }
    }

    @Test("an HNSW graph of 8-bit codes scores as FAISS's own 8-bit decoder does, finds what a scan of the codes finds, and reads back the same")
    func hnswSQ8() throws {
        let d = 384, n = 2000, k = 10
        let all = Self.rows(count: n + 40, d: d, seed: 8, directions: 30, lean: 1.5)
        let base = Array(all.prefix(n * d)), queries = Array(all.suffix(40 * d))
        func make(_ factory: String) throws -> OpaquePointer {
            var made: OpaquePointer?
            try #require(hume_faiss_index_factory(Int32(d), factory, &made) == HUME_FAISS_OK, "\(Self.lastError)")
            let index = try #require(made)
            #expect(hume_faiss_train(index, Int64(n), base) == HUME_FAISS_OK)
            #expect(hume_faiss_add(index, Int64(n), base) == HUME_FAISS_OK)
            return index
        }
        // FAISS's own: a flat scan of the same 8-bit codes (same min-max training), decoded by FAISS.
        let scan = try make("SQ8"), graph = try make("HNSW32_SQ8")
        defer { hume_faiss_free(scan); hume_faiss_free(graph) }
        #expect(hume_faiss_set_hnsw_ef_search(graph, 400) == HUME_FAISS_OK)
        var truthD = [Float](repeating: 0, count: 40 * k), truthL = [Int64](repeating: 0, count: 40 * k)
        #expect(hume_faiss_search(scan, 40, queries, Int64(k), &truthD, &truthL) == HUME_FAISS_OK)
        let path = Self.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(hume_faiss_write(graph, path) == HUME_FAISS_OK, "\(Self.lastError)")
        var read: OpaquePointer?, usedMmap: Int32 = -1
        #expect(hume_faiss_read(path, 0, &read, &usedMmap) == HUME_FAISS_OK, "\(Self.lastError)")
        let copy = try #require(read)
        defer { hume_faiss_free(copy) }
        #expect(hume_faiss_set_hnsw_ef_search(copy, 400) == HUME_FAISS_OK)
        var hits = 0
        for q in 0..<40 {
            let query = Array(queries[(q * d)..<((q + 1) * d)])
            var dist = [Float](repeating: 0, count: k), labels = [Int64](repeating: 0, count: k)
            #expect(hume_faiss_search(graph, 1, query, Int64(k), &dist, &labels) == HUME_FAISS_OK)
            hits += Set(labels).intersection(truthL[(q * k)..<((q + 1) * k)]).count
            for j in 0..<k where labels[j] == truthL[q * k + j] { #expect(abs(dist[j] - truthD[q * k + j]) < 1e-4, "query \(q)") }
            var again = [Float](repeating: 0, count: k), againL = [Int64](repeating: 0, count: k)
            #expect(hume_faiss_search(copy, 1, query, Int64(k), &again, &againL) == HUME_FAISS_OK)
            #expect(againL == labels && again == dist, "read back, the same graph and codes")
        }
        #expect(hits >= 40 * k * 98 / 100, "\(hits) of \(40 * k)")
    }

    @Test("a bad factory string returns an error that names it, not a crash")
    func badFactoryString() {
        var index: OpaquePointer?
        let status = hume_faiss_index_factory(16, "NotAnIndex,Bogus", &index)
        #expect(status == HUME_FAISS_FAISS_ERROR)
        #expect(index == nil)
        let message = Self.lastError
        #expect(message.contains("NotAnIndex,Bogus"))
        #expect(!message.contains(".cpp:"), "the message is the reason, without FAISS's source location")
    }

    @Test("invalid arguments are refused before reaching FAISS")
    func invalidArguments() throws {
        var index: OpaquePointer?
        #expect(hume_faiss_index_factory(0, "Flat", &index) == HUME_FAISS_INVALID_ARGUMENT)
        #expect(Self.lastError.contains("dimension"))
        let flat = try Self.makeIndex("Flat")
        defer { hume_faiss_free(flat) }
        var distance: Float = 0
        var label: Int64 = 0
        let query = [Float](repeating: 0, count: Self.dimension)
        #expect(hume_faiss_search(flat, 1, query, 0, &distance, &label) == HUME_FAISS_INVALID_ARGUMENT)
        #expect(Self.lastError.contains("k must be positive"))
        #expect(hume_faiss_set_hnsw_ef_search(flat, 16) == HUME_FAISS_FAISS_ERROR, "efSearch does not apply to Flat")
        #expect(Self.lastError.contains("efSearch does not apply"))
    }

    @Test("reading a missing file returns an error, not a crash")
    func readMissingFile() {
        var index: OpaquePointer?
        let status = hume_faiss_read("/nonexistent/hume.index", 1, &index, nil)
        #expect(status == HUME_FAISS_FAISS_ERROR)
        #expect(index == nil)
        #expect(Self.lastError.contains("/nonexistent/hume.index"))
    }
}
