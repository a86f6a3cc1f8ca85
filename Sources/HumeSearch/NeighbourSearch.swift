import Foundation
import HumeCore
import HumeData
import HumeIndex
import HumeStages

/// A database with its FAISS index loaded, ready to answer queries.
public final class LoadedDatabase: @unchecked Sendable {
    // Safe: `builtWords` is only touched under `wordsLock`; everything else is immutable.
    /// The database (manifest and paths).
    public let database: Database
    /// Its index, searched concurrently.
    public let index: SharedIndex
    /// For an index whose scores are approximate (IVF-PQ): the embeddings its candidates are re-scored against, and
    /// how many candidates per result (`IndexKind.searchSetting`).
    let rerank: (vectors: Embeddings, factor: Int)?
    /// Every caption as a JSON string (escaped and quoted), back to back, item i's at
    /// `captionOffsets[i]..<captionOffsets[i + 1]`: written once, copied into every payload (`payloads`).
    let captionJSON: [UInt8], captionOffsets: [Int]
    private let wordsLock = NSLock()
    private var builtWords: CaptionWords?
    /// The captions' words, which a prompt's share in re-ranks what the embedding found (`ranked`). Made on the first
    /// search that needs them, not when the database is opened: the editor never does, and a database of a million
    /// captions would stall every reopen (after each `hume db add`) on them.
    var words: CaptionWords {
        wordsLock.withLock {
            if let built = builtWords { return built }
            let built = CaptionWords(captions: database.items.map(\.caption))
            builtWords = built
            return built
        }
    }

    /// Opens the database `name` under `root` and reads its `index.faiss` (memory-mapped where FAISS allows).
    /// - Throws: `HumeError(.unknown)` for an unknown database or a missing index.
    public init(name: String, root: URL) throws {
        database = try Database(named: name, root: root)
        let path = database.indexPath.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw HumeError(.unknown, "The database \(name) has no index.faiss; run `hume index build --database \(name)` (or Ops/prepare-data.sh).")
        }
        let ix = try VectorIndex.read(path: path, mmap: true)
        guard ix.count == database.count, ix.dimension == Database.dimension else {
            throw HumeError(.system, "The index of \(name) holds \(ix.count) vectors of dimension \(ix.dimension) but the manifest lists \(database.count) items; rebuild it with `hume index build --database \(name)`.")
        }
        // The search setting of its kind and size, set here rather than stored in the file, so that an index built
        // before the setting changed is searched with the current one.
        let stampKind = (try? String(contentsOf: database.indexStampPath, encoding: .utf8))?
            .split(separator: " ").first { $0.hasPrefix("kind=") }.map { String($0.dropFirst(5)) }
        let setting = (database.generation?.indexType ?? stampKind).flatMap(IndexKind.init(rawValue:))?.searchSetting(count: database.count)
        try setting?.apply(to: ix)
        index = SharedIndex(ix)
        if let factor = setting?["rerank"] { rerank = (try database.embeddings(), factor) } else { rerank = nil }
        var json: [UInt8] = [], offsets = [0]
        offsets.reserveCapacity(database.items.count + 1)
        for item in database.items {
            JSON.writeString(item.caption, into: &json)
            offsets.append(json.count)
        }
        captionJSON = json
        captionOffsets = offsets
    }

    /// The `k` nearest items of each query as FAISS scored them: ids (-1 where fewer were found) and scores.
    func rawSearch(_ queries: [Float], k: Int) throws -> SearchResult {
        if let rerank { return try RerankedSearch(index.index, vectors: rerank.vectors.all, factor: rerank.factor).search(queries, k: k) }
        return try index.index.search(queries, k: k)
    }

    /// Query `query`'s ids that name an item, and their scores.
    func found(_ r: SearchResult, query q: Int) -> (ids: [Int], scores: [Double]) {
        var ids: [Int] = [], scores: [Double] = []
        ids.reserveCapacity(r.k)
        scores.reserveCapacity(r.k)
        for j in 0..<r.k {
            let id = r.ids[q * r.k + j]
            guard id >= 0, Int(id) < database.count else { continue }
            ids.append(Int(id))
            scores.append(Double(r.scores[q * r.k + j]))
        }
        return (ids, scores)
    }

    /// How many of the embedding's nearest a search with words re-ranks, for `k` results: max(4k, 64), at most every
    /// item. On the development prompts 32 or 64 found every first neighbour that ranking all the items did (16: one
    /// fewer); 64 leaves room for k = 16 drawings of several things.
    func pool(k: Int) -> Int { min(database.count, max(4 * k, 64)) }

    /// The `k` best items of each query, best first, with their scores: with `words` (the default), the embedding's
    /// first `pool(k:)` re-ranked by `CaptionWords.score` (the cosine less the weighed share of the prompt's words the
    /// caption lacks, plus the same weight for a caption that is the prompt); without, or for a prompt without words, FAISS's first `k` and their cosines. Ties go to the
    /// lower id.
    func ranked(_ queries: [Float], k: Int, prompts: [String], words useWords: Bool) throws -> [(ids: [Int], scores: [Double])] {
        let words = useWords && prompts.contains { !$0.isEmpty } ? self.words : nil
        let parsed = prompts.map { words?.prompt($0) }
        let wide = parsed.contains { $0.map { !$0.isEmpty } ?? false }
        let r = try rawSearch(queries, k: wide ? pool(k: k) : k)
        return prompts.indices.map { q in
            let (ids, scores) = found(r, query: q)
            guard let words, let prompt = parsed[q], !prompt.isEmpty else { return (Array(ids.prefix(k)), Array(scores.prefix(k))) }
            let best = zip(ids, scores).map { id, s in (id, words.score(similarity: s, prompt, item: id) { database.items[id].caption }) }
                .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(k)
            return (best.map(\.0), best.map(\.1))
        }
    }

    /// The retrieve stage's payloads: `search(_:k:prompts:)`'s results as `Neighbours.encoded()` writes them, byte
    /// for byte, with the captions copied from `captionJSON` instead of escaped again for every query.
    public func payloads(_ queries: [Float], k: Int, prompts: [String]) throws -> [[UInt8]] {
        try zip(ranked(queries, k: k, prompts: prompts, words: true), prompts).map { found, prompt in
            let (ids, scores) = found
            let captionBytes = ids.reduce(0) { $0 + captionOffsets[$1 + 1] - captionOffsets[$1] }
            return Neighbours.encode(database: database.name, ids: ids, scores: scores, prompt: prompt,
                                     captionBytes: captionBytes) { out in
                captionJSON.withUnsafeBufferPointer { all in
                    for (j, id) in ids.enumerated() {
                        if j > 0 { out.append(UInt8(ascii: ",")) }
                        out.append(contentsOf: UnsafeBufferPointer(rebasing: all[captionOffsets[id]..<captionOffsets[id + 1]]))
                    }
                }
            }
        }
    }

    /// The `k` best items of each query (`queries` holds them back to back, `Database.dimension` floats each), as
    /// the retrieve stage's payload; `prompts[i]` is echoed with query i, and with `words` its words re-rank the
    /// embedding's nearest (`ranked`).
    /// - Throws: what FAISS throws (a retryable failure of this host).
    public func search(_ queries: [Float], k: Int, prompts: [String], words: Bool = true) throws -> [Neighbours] {
        try zip(ranked(queries, k: k, prompts: prompts, words: words), prompts).map { found, prompt in
            let (ids, scores) = found
            // Scores rounded as the payload carries them, so in-process callers see the numbers a pipeline would.
            return Neighbours(database: database.name, ids: ids, scores: scores.map { ($0 * 1e6).rounded() / 1e6 },
                              captions: ids.map { database.items[$0].caption }, prompt: prompt)
        }
    }
}

/// The databases of one folder, each opened with its index on first use, and again when it grows or is rebuilt
/// (`DatabaseCache`): what the retrieve stage and the edit stage search.
public final class IndexedDatabases: Sendable {
    public let root: URL
    let cache: DatabaseCache<LoadedDatabase>

    /// - Parameter root: the folder holding the databases (the CLI passes `${HUME_HOME:-~/.cache/hume}/db`).
    public init(root: URL) {
        self.root = root
        VectorIndex.setThreads(1)
        cache = DatabaseCache(root: root) { try LoadedDatabase(name: $0, root: root) }
    }

    /// The loaded database `name`, at its latest committed version.
    /// - Throws: `HumeError(.unknown)` naming the available databases.
    public func database(_ name: String, fresh: Bool = false) throws -> LoadedDatabase {
        try cache.get(name, fresh: fresh)
    }
}

/// Texts to neighbours in one process: an embedding function (the embed stage's model) and the indexed databases.
/// What the edit stage uses for its edit text and caption, instead of the embed and retrieve stages' task code.
public struct NeighbourSearch: Sendable {
    /// Unit embeddings of texts, `Database.dimension` floats each, back to back.
    public typealias Embed = @Sendable ([String]) throws -> [Float]

    public let embed: Embed
    public let databases: IndexedDatabases

    public init(embed: @escaping Embed, databases: IndexedDatabases) {
        self.embed = embed
        self.databases = databases
    }

    /// The `k` nearest items of each text in database `name`, best first, with their scores (`LoadedDatabase.search`;
    /// `words: false` for the embedding's similarities alone).
    /// - Throws: `HumeError(.unknown)` for an unknown database; what the model or FAISS throws.
    public func neighbours(of texts: [String], database name: String, k: Int, words: Bool = true) throws -> [Neighbours] {
        let db = try databases.database(name)
        return try db.search(embed(texts), k: k, prompts: texts, words: words)
    }
}
