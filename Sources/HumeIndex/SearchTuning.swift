import Foundation
import HumeCore

/// One setting of an index's search parameters, by FAISS name (`efSearch`, `nprobe`, `k_factor_rf`,
/// `quantizer_efSearch`), in the order they are set, and Hume's own `rerank` (`RerankedSearch.factor`).
public struct SearchSetting: Sendable, Equatable, CustomStringConvertible {
    public var values: [(name: String, value: Int)]

    public init(_ values: [(name: String, value: Int)] = []) { self.values = values }

    public static func == (a: SearchSetting, b: SearchSetting) -> Bool {
        a.values.map(\.name) == b.values.map(\.name) && a.values.map(\.value) == b.values.map(\.value)
    }

    public var description: String {
        values.isEmpty ? "-" : values.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
    }

    public var json: JSON { .object(Dictionary(uniqueKeysWithValues: values.map { ($0.name, JSON($0.value)) })) }

    /// The value of `name`, if set.
    public subscript(name: String) -> Int? { values.first { $0.name == name }?.value }

    /// Sets every FAISS value on `index` (`rerank` is Hume's, applied by `RerankedSearch`).
    public func apply(to index: VectorIndex) throws {
        for v in values where v.name != "rerank" { try index.setSearchParameter(v.name, Double(v.value)) }
    }

    /// The settings worth trying for an index built from `factory`, cheapest first along each parameter:
    /// HNSW's `efSearch`; IVF's `nprobe` (up to the list count), with a refine stage's `k_factor_rf` and an HNSW
    /// coarse quantizer's `quantizer_efSearch` (kept at least twice `nprobe`); with `rerank` (an index re-scored
    /// exactly by `RerankedSearch`), its factor too. Flat has one setting, the empty one.
    public static func grid(factory: String, rerank: Bool = false) -> [SearchSetting] {
        let f = factory.uppercased()
        if f.hasPrefix("HNSW") {
            // A graph of codes (SQ, PQ) is re-ranked when it can be: its best 2k re-scored exactly.
            let rescored = rerank && (f.contains("_SQ") || f.contains("_PQ"))
            return [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512].map {
                SearchSetting([("efSearch", $0)] + (rescored ? [("rerank", 2)] : []))
            }
        }
        guard let lists = ivfLists(factory: factory) else { return [SearchSetting()] }
        let probes = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512].filter { $0 <= lists }
        let refine = f.contains("RFLAT") || f.contains("REFINE")
        let factors = refine || rerank ? [4, 8, 16, 32] : [0]
        let hnswQuantizer = f.split(separator: ",").first!.contains("_HNSW")
        var out: [SearchSetting] = []
        for k in factors {
            for p in probes {
                var s = SearchSetting([("nprobe", p)])
                if hnswQuantizer { s.values.append(("quantizer_efSearch", max(2 * p, 32))) }
                if k > 0 { s.values.append((rerank ? "rerank" : "k_factor_rf", k)) }
                out.append(s)
            }
        }
        return out
    }
}

/// The inverted-list count of an IVF factory string ("IVF4096,PQ48np" → 4096); nil for any other index.
public func ivfLists(factory: String) -> Int? {
    let f = factory.uppercased()
    guard f.hasPrefix("IVF") else { return nil }
    return Int(f.dropFirst(3).prefix { $0.isNumber })
}

/// recall@k of `found` (q·k ids) against `truth` (q·kTruth ids, best first): the share of each query's true k nearest
/// that were found, averaged.
public func recallAtK(found: [Int64], truth: [Int64], k: Int, kTruth: Int, queries: Int) -> Double {
    var hit = 0
    for q in 0..<queries {
        let t = Set(truth[q * kTruth ..< q * kTruth + k])
        hit += found[q * k ..< (q + 1) * k].filter { t.contains($0) }.count
    }
    return Double(hit) / Double(queries * k)
}

/// Picks the search setting of an index for a recall target, on tuning queries kept apart from the ones the result
/// is reported on (so the reported recall is not the one the choice was made on).
public struct SearchTuner {
    public var target: Double
    public var k = 10

    public init(target: Double) { self.target = target }

    /// One candidate's outcome on the tuning queries.
    public struct Trial: Sendable {
        public var setting: SearchSetting
        public var recall: Double
        public var queriesPerSecond: Double
    }

    /// The setting, and whether it met the target. Every grid point's recall is taken on the tuning queries (one
    /// batched search each); for each re-ranking factor (`k_factor_rf`; a single line
    /// without one) the cheapest point that meets the target is kept, and the fastest of those, searching one query at a time, wins. If none meets it, the
    /// setting of highest recall is returned with `met` false.
    public func tune(_ index: RerankedSearch, factory: String, queries: [Float], truth: [Int64], kTruth: Int) throws
        -> (setting: SearchSetting, met: Bool, trials: [Trial])
    {
        var index = index
        let d = index.index.dimension, nq = queries.count / d
        var best: (SearchSetting, Double)?
        var lines: [String: SearchSetting] = [:]
        var lineOrder: [String] = []
        for setting in SearchSetting.grid(factory: factory, rerank: index.vectors != nil) {
            let line = setting.values.filter { $0.name == "k_factor_rf" || $0.name == "rerank" }.map { "\($0.value)" }.joined()
            if lines[line] != nil { continue }
            try index.apply(setting)
            let r = recallAtK(found: try index.search(queries, k: k).ids, truth: truth, k: k, kTruth: kTruth, queries: nq)
            if best == nil || r > best!.1 { best = (setting, r) }
            if r >= target { lines[line] = setting; lineOrder.append(line) }
        }
        guard !lines.isEmpty else { return (best!.0, false, []) }
        var trials: [Trial] = []
        for line in lineOrder {
            let s = lines[line]!
            try index.apply(s)
            let (qps, ids) = try Self.oneAtATime(index, queries: queries, k: k)
            trials.append(Trial(setting: s, recall: recallAtK(found: ids, truth: truth, k: k, kTruth: kTruth, queries: nq), queriesPerSecond: qps))
        }
        let chosen = trials.max { $0.queriesPerSecond < $1.queriesPerSecond }!
        return (chosen.setting, true, trials)
    }

    /// Searches the queries one at a time, as the retrieve stage does; queries/s and the ids (q·k).
    public static func oneAtATime(_ index: RerankedSearch, queries: [Float], k: Int) throws -> (Double, [Int64]) {
        let d = index.index.dimension, nq = queries.count / d
        var ids = [Int64]()
        ids.reserveCapacity(nq * k)
        let t0 = Date()
        try queries.withUnsafeBufferPointer { qp in
            for q in 0..<nq { ids += try index.search(UnsafeBufferPointer(rebasing: qp[q * d ..< (q + 1) * d]), k: k).ids }
        }
        return (Double(nq) / Date().timeIntervalSince(t0), ids)
    }
}

/// An index searched as the retrieve stage searches it: when its scores are approximate (IVF-PQ's codes), it is asked
/// for `factor` × k candidates, which are re-scored exactly against the stored vectors (a database's embeddings,
/// memory-mapped) and cut to the best k. Graph and flat indexes score exactly and are searched as they are.
public struct RerankedSearch {
    public let index: VectorIndex
    /// count × dimension floats, row i being the vector of id i; nil: no re-ranking.
    public let vectors: UnsafeBufferPointer<Float>?
    public var factor: Int

    public init(_ index: VectorIndex, vectors: UnsafeBufferPointer<Float>? = nil, factor: Int = 1) {
        self.index = index
        self.vectors = vectors
        self.factor = factor
    }

    /// Sets the FAISS parameters of `setting` and its `rerank` factor (1 when it has none).
    public mutating func apply(_ setting: SearchSetting) throws {
        try setting.apply(to: index)
        factor = setting["rerank"] ?? 1
    }

    public func search(_ queries: [Float], k: Int) throws -> SearchResult {
        try queries.withUnsafeBufferPointer { try search($0, k: k) }
    }

    public func search(_ queries: UnsafeBufferPointer<Float>, k: Int) throws -> SearchResult {
        guard let vectors, factor > 1 else { return try index.search(queries, k: k) }
        let d = index.dimension, nq = queries.count / d, count = vectors.count / d
        let wide = try index.search(queries, k: k * factor)
        var out = SearchResult(k: k, ids: [Int64](repeating: -1, count: nq * k), scores: [Float](repeating: -.infinity, count: nq * k))
        var scored: [(Float, Int64)] = [], candidates: [Int64] = [], products = [Float](repeating: 0, count: wide.k)
        scored.reserveCapacity(wide.k)
        candidates.reserveCapacity(wide.k)
        for q in 0..<nq {
            candidates.removeAll(keepingCapacity: true)
            for j in 0..<wide.k {
                let id = wide.ids[q * wide.k + j]
                if id >= 0, Int(id) < count { candidates.append(id) }
            }
            VectorIndex.innerProducts(UnsafeBufferPointer(rebasing: queries[(q * d)..<((q + 1) * d)]), vectors, ids: candidates, into: &products)
            scored.removeAll(keepingCapacity: true)
            for (j, id) in candidates.enumerated() { scored.append((products[j], id)) }
            scored.sort { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            for (j, s) in scored.prefix(k).enumerated() {
                out.ids[q * k + j] = s.1
                out.scores[q * k + j] = s.0
            }
        }
        return out
    }
}
