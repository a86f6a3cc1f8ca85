import CFaiss
import HumeCore

/// The kind of FAISS index, chosen by size unless overridden.
public enum IndexKind: String, Sendable, CaseIterable {
    /// Exact inner product over every vector.
    case flat
    /// Graph search (HNSW, 32 links per node).
    case hnsw
    /// Inverted lists with product-quantised codes, for large collections.
    case ivfpq

    /// The kind for `count` vectors: flat below 50,000, HNSW below 1,000,000, IVF-PQ above.
    public static func forCount(_ count: Int) -> IndexKind {
        if count < 50_000 { return .flat }
        if count < 1_000_000 { return .hnsw }
        return .ivfpq
    }

    /// The FAISS factory string for `count` vectors of dimension `dimension`.
    public func factory(count: Int, dimension: Int) -> String {
        switch self {
        case .flat: return "Flat"
        // From 300,000 vectors the graph's vectors are 8-bit codes (a quarter of the memory a visit reads; the
        // shim's SIMD kernel scores them), re-ranked exactly (`searchSetting`): 1.9× the queries/s at 10⁵ and the
        // same recall, measured (README, "Retrieval at a million").
        case .hnsw: return count >= 300_000 ? "HNSW32_SQ8" : "HNSW32"
        case .ivfpq:
            // About 4·sqrt(n) lists (at least 16), and 8-bit codes on subvectors of 8 dimensions. "np": no
            // polysemous training — FAISS's factory turns it on for a plain "PQm", it only serves polysemous
            // search (which Hume does not use) and it was nearly all of the 386 s a 10⁴-vector build took.
            var lists = 16
            while lists * lists < 16 * count { lists *= 2 }
            var m = dimension / 8
            while m > 1 && dimension % m != 0 { m -= 1 }
            return "IVF\(lists),PQ\(m)np"
        }
    }
}

/// The k best matches of each query: `ids[q*k + j]` (−1 when missing) and `scores` (inner products), best first.
public struct SearchResult: Sendable {
    public var k: Int
    public var ids: [Int64]
    public var scores: [Float]
}

extension IndexKind {
    /// The search setting Hume searches an index of this kind over `count` vectors with (set by `LoadedDatabase` when
    /// it opens the index, re-ranking included): the cheapest
    /// setting that reached recall@10 0.95 (HNSW) or 0.90 (IVF-PQ) on real MiniLM embeddings in
    /// `hume bench retrieve --corpus` (README, "Retrieval at a million").
    public func searchSetting(count: Int) -> SearchSetting {
        switch self {
        case .flat: return SearchSetting()
        // Measured: efSearch 24 at 10⁴, 48 at 10⁵ (real vectors); one step more for margin. From 300,000 the
        // 8-bit graph (`factory`), its best 2k re-scored exactly: efSearch 128 at a real 10⁶ (recall@10 0.961).
        case .hnsw:
            if count >= 300_000 { return SearchSetting([("efSearch", 128), ("rerank", 2)]) }
            return SearchSetting([("efSearch", count <= 20_000 ? 32 : 64)])
        // Measured at a real 10⁶ (IVF-PQ is the kind from 10⁶ on): nprobe 32, 16 candidates per result re-scored
        // (recall@10 0.912); one step more of nprobe for margin.
        case .ivfpq: return SearchSetting([("nprobe", 48), ("rerank", 16)])
        }
    }
}

/// A FAISS inner-product index owned by this object; the handle is freed on deinit.
///
/// Searches may run concurrently from several threads; `train`, `add` and the `set…` calls need exclusive
/// access (the class is not `Sendable` to say so — wrap it when sharing read-only).
public final class VectorIndex {
    let handle: OpaquePointer
    /// Whether the index was read memory-mapped.
    public let isMemoryMapped: Bool

    init(handle: OpaquePointer, mapped: Bool) {
        self.handle = handle
        self.isMemoryMapped = mapped
    }

    deinit { hume_faiss_free(handle) }

    static func check(_ status: hume_faiss_status, _ what: String) throws {
        guard status != HUME_FAISS_OK else { return }
        let reason = String(cString: hume_faiss_last_error())
        let code: HumeError.Code = status == HUME_FAISS_INVALID_ARGUMENT ? .invalidInput : .system
        throw HumeError(code, "FAISS could not \(what): \(reason.isEmpty ? "status \(status.rawValue)" : reason)")
    }

    /// Creates an empty index of dimension `dimension` from a FAISS factory string ("Flat", "HNSW32", "IVF1024,PQ48np").
    /// - Throws: `HumeError` with FAISS's message when the string is not understood.
    public init(dimension: Int, factory: String) throws {
        var out: OpaquePointer?
        try VectorIndex.check(hume_faiss_index_factory(Int32(dimension), factory, &out), "create a \"\(factory)\" index")
        guard let out else { throw HumeError(.system, "FAISS returned no index for \"\(factory)\".") }
        handle = out
        isMemoryMapped = false
    }

    /// Creates an empty index of `kind` sized for `count` vectors.
    public convenience init(dimension: Int, kind: IndexKind, count: Int) throws {
        try self.init(dimension: dimension, factory: kind.factory(count: count, dimension: dimension))
    }

    /// Reads an index written by `write(to:)`; with `mmap` IVF lists are memory-mapped when FAISS allows.
    /// - Throws: `HumeError` when the file is missing or not a FAISS index.
    public static func read(path: String, mmap: Bool = true) throws -> VectorIndex {
        var out: OpaquePointer?
        var used: Int32 = 0
        try check(hume_faiss_read(path, mmap ? 1 : 0, &out, &used), "read the index \(path)")
        guard let out else { throw HumeError(.system, "FAISS returned no index for \(path).") }
        return VectorIndex(handle: out, mapped: used != 0)
    }

    /// Vector dimension.
    public var dimension: Int { Int(hume_faiss_dimension(handle)) }
    /// Number of stored vectors.
    public var count: Int { Int(hume_faiss_ntotal(handle)) }
    /// Whether vectors can be added.
    public var isTrained: Bool { hume_faiss_is_trained(handle) != 0 }

    func checkShape(_ n: Int, _ vectors: UnsafeBufferPointer<Float>) throws {
        guard vectors.count == n * dimension else {
            throw HumeError(.invalidInput, "Expected \(n) × \(dimension) floats, got \(vectors.count).")
        }
    }

    /// Trains on row-major vectors (a no-op for indexes that need no training).
    public func train(_ vectors: UnsafeBufferPointer<Float>) throws {
        let n = vectors.count / max(1, dimension)
        try checkShape(n, vectors)
        try VectorIndex.check(hume_faiss_train(handle, Int64(n), vectors.baseAddress), "train on \(n) vectors")
    }

    /// Adds row-major vectors; they get ids `count`, `count + 1`, ...
    public func add(_ vectors: UnsafeBufferPointer<Float>) throws {
        let n = vectors.count / max(1, dimension)
        try checkShape(n, vectors)
        try VectorIndex.check(hume_faiss_add(handle, Int64(n), vectors.baseAddress), "add \(n) vectors")
    }

    /// Convenience: trains (when needed) and adds `vectors`.
    public func train(andAdd vectors: [Float]) throws {
        try vectors.withUnsafeBufferPointer { p in
            if !isTrained { try train(p) }
            try add(p)
        }
    }

    /// The `k` nearest stored vectors (largest inner product) of each row-major query.
    public func search(_ queries: UnsafeBufferPointer<Float>, k: Int) throws -> SearchResult {
        let n = queries.count / max(1, dimension)
        try checkShape(n, queries)
        guard k > 0 else { throw HumeError(.invalidInput, "k must be at least 1, got \(k).") }
        var ids = [Int64](repeating: -1, count: n * k)
        var scores = [Float](repeating: 0, count: n * k)
        try ids.withUnsafeMutableBufferPointer { ip in
            try scores.withUnsafeMutableBufferPointer { sp in
                try VectorIndex.check(hume_faiss_search(handle, Int64(n), queries.baseAddress, Int64(k), sp.baseAddress, ip.baseAddress),
                                      "search \(n) queries")
            }
        }
        return SearchResult(k: k, ids: ids, scores: scores)
    }

    /// Searches `queries` (row-major `[Float]`).
    public func search(_ queries: [Float], k: Int) throws -> SearchResult {
        try queries.withUnsafeBufferPointer { try search($0, k: k) }
    }

    /// Sets HNSW's efSearch. - Throws: on a non-HNSW index.
    public func setEfSearch(_ ef: Int) throws {
        try VectorIndex.check(hume_faiss_set_hnsw_ef_search(handle, Int32(ef)), "set efSearch to \(ef)")
    }

    /// Sets IVF's nprobe. - Throws: on a non-IVF index.
    public func setNProbe(_ nprobe: Int) throws {
        try VectorIndex.check(hume_faiss_set_ivf_nprobe(handle, Int32(nprobe)), "set nprobe to \(nprobe)")
    }

    /// Sets a search parameter by FAISS name (`efSearch`, `nprobe`, `k_factor_rf`, `quantizer_efSearch`).
    /// - Throws: if it does not apply to this index.
    public func setSearchParameter(_ name: String, _ value: Double) throws {
        try VectorIndex.check(hume_faiss_set_search_parameter(handle, name, value), "set \(name) to \(value)")
    }

    /// Writes the index to `path` (replacing it).
    public func write(to path: String) throws {
        try VectorIndex.check(hume_faiss_write(handle, path), "write the index to \(path)")
    }

    /// Caps FAISS's OpenMP threads in this process.
    public static func setThreads(_ n: Int) { hume_faiss_set_omp_threads(Int32(max(1, n))) }

    /// Whether one-query HNSW searches in this process take Hume's graph walk (the default) or FAISS's own; returns
    /// the previous choice. For benchmarks that compare the two on one index.
    @discardableResult
    public static func useHumeHNSWWalk(_ on: Bool) -> Bool { hume_faiss_set_hume_hnsw_walk(on ? 1 : 0) != 0 }

    /// The same for one-query IVF-PQ searches: Hume's scan (the default) or FAISS's own.
    @discardableResult
    public static func useHumeIVFPQScan(_ on: Bool) -> Bool { hume_faiss_set_hume_ivfpq_scan(on ? 1 : 0) != 0 }

    /// `products[i]` = the inner product of `query` and row `ids[i]` of `vectors` (rows of `query.count` floats),
    /// by the FAISS shim's SIMD kernel; `ids` must name rows of `vectors`.
    public static func innerProducts(_ query: UnsafeBufferPointer<Float>, _ vectors: UnsafeBufferPointer<Float>, ids: [Int64],
                                     into products: inout [Float]) {
        precondition(products.count >= ids.count && ids.allSatisfy { $0 >= 0 && Int($0) < vectors.count / max(query.count, 1) })
        hume_faiss_inner_products(query.baseAddress, vectors.baseAddress, ids, Int64(ids.count), Int32(query.count), &products)
    }
}

/// A read-only index shared between threads.
public final class SharedIndex: @unchecked Sendable {
    // Safe: after construction only `search` is called, which FAISS allows concurrently (faiss_shim.h).
    public let index: VectorIndex
    public init(_ index: VectorIndex) { self.index = index }
}
