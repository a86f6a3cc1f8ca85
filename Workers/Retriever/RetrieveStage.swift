import Foundation
import HumeCore
import HumeData
import HumeIndex
import HumeWorker

/// A database with its FAISS index loaded, ready to answer queries.
public final class LoadedDatabase: Sendable {
    /// The database (manifest and paths).
    public let database: Database
    /// Its index, searched concurrently.
    public let index: SharedIndex

    /// Opens the database `name` under `root` and reads its `index.faiss` (memory-mapped where FAISS allows).
    /// - Throws: `HumeError(.unknown)` for an unknown database or a missing index.
    public init(name: String, root: URL = Database.databasesRoot) throws {
        database = try Database(named: name, root: root)
        let path = database.indexPath.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw HumeError(.unknown, "The database \(name) has no index.faiss; run `hume index build --database \(name)` (or Ops/prepare-data.sh).")
        }
        let ix = try VectorIndex.read(path: path, mmap: true)
        guard ix.count == database.count, ix.dimension == Database.dimension else {
            throw HumeError(.invalidInput, "The index of \(name) holds \(ix.count) vectors of dimension \(ix.dimension) but the manifest lists \(database.count) items; rebuild it with `hume index build --database \(name)`.")
        }
        index = SharedIndex(ix)
    }
}

/// Parameters of one retrieve task (the job's params JSON object).
public struct RetrieveParams: Sendable, Equatable {
    /// Database name (default `Database.defaultName`).
    public var database: String = Database.defaultName
    /// Neighbours to return (default 16, 1…256).
    public var k: Int = 16

    public static let maxK = 256

    /// Parses the params object; empty bytes mean all defaults.
    /// - Throws: `HumeError(.permanent)` with one sentence for a malformed object or an out-of-range value.
    public init(json bytes: [UInt8]) throws {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return }
        let j: JSON
        do { j = try JSON.parse(bytes, what: "retrieve params") } catch {
            throw HumeError(.permanent, "The retrieve params are not valid JSON; send an object like {\"database\": \"emoji\", \"k\": 16}.")
        }
        guard j.object != nil else {
            throw HumeError(.permanent, "The retrieve params must be a JSON object like {\"database\": \"emoji\", \"k\": 16}.")
        }
        if let d = j["database"] {
            guard let s = d.string, !s.isEmpty else {
                throw HumeError(.permanent, "The retrieve param \"database\" must be a non-empty string such as \"emoji\".")
            }
            database = s
        }
        if let kv = j["k"] {
            guard let k = kv.int, (1...Self.maxK).contains(k) else {
                throw HumeError(.permanent, "The retrieve param \"k\" must be an integer from 1 to \(Self.maxK), got \(kv.serialized).")
            }
            self.k = k
        }
    }

    public init(database: String = Database.defaultName, k: Int = 16) {
        self.database = database
        self.k = k
    }
}

/// The `retrieve` stage: a query embedding (384 little-endian float32, optionally followed by the UTF-8 text it embeds,
/// as the embed stage writes it) in, the k nearest database items out as JSON
/// `{"database", "ids", "scores", "captions", "prompt"}` where `prompt` echoes that text (PROTOCOL.md, "Stage payloads").
/// Each database's index is loaded once, on first use, and kept.
public final class RetrieveStage: Stage, @unchecked Sendable {
    // Safe: `cache` is only touched under `lock`; everything else is immutable.
    public let name: String
    public let batchSize: Int
    public let concurrency: Int
    let root: URL
    let lock = NSLock()
    var cache: [String: LoadedDatabase] = [:]

    /// - Parameters:
    ///   - root: the folder holding the databases (default `${HUME_HOME:-~/.cache/hume}/db`).
    ///   - batchSize: tasks per `run` call; queries of one batch on one database are searched together.
    public init(name: String = "retrieve", root: URL = Database.databasesRoot, batchSize: Int = 16, concurrency: Int = 1) {
        self.name = name
        self.root = root
        self.batchSize = max(1, batchSize)
        self.concurrency = max(1, concurrency)
        VectorIndex.setThreads(1)
    }

    /// The loaded database `name`, loading it on first use.
    /// - Throws: `HumeError(.unknown)` naming the available databases.
    public func database(_ name: String) throws -> LoadedDatabase {
        lock.lock()
        if let d = cache[name] { lock.unlock(); return d }
        lock.unlock()
        // Loading happens outside the lock; two racing loads are harmless (one wins the cache).
        let d = try LoadedDatabase(name: name, root: root)
        lock.lock()
        defer { lock.unlock() }
        if let existing = cache[name] { return existing }
        cache[name] = d
        return d
    }

    public static let queryBytes = Database.dimension * 4

    /// Decodes an input: 384 finite little-endian float32, then optionally the UTF-8 text they embed.
    public static func decodeInput(_ input: [UInt8]) throws -> (query: [Float], prompt: String) {
        guard input.count >= queryBytes else {
            throw HumeError(.permanent, "The retrieve input must be a query embedding of \(Database.dimension) little-endian float32 (\(queryBytes) bytes), got \(input.count) bytes (the UTF-8 text it embeds may follow those bytes).")
        }
        guard let prompt = String(validating: input[queryBytes...], as: UTF8.self) else {
            throw HumeError(.permanent, "The text after the retrieve input's \(queryBytes)-byte embedding is not valid UTF-8.")
        }
        var v = [Float](repeating: 0, count: Database.dimension)
        input.withUnsafeBytes { raw in
            for i in 0..<Database.dimension {
                v[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            }
        }
        guard v.allSatisfy({ $0.isFinite }) else {
            throw HumeError(.permanent, "The retrieve input embedding contains NaN or infinite values.")
        }
        return (v, prompt)
    }

    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        var outcomes = [StageOutcome?](repeating: nil, count: tasks.count)
        // Group valid tasks by (database, k) so each group is one FAISS call.
        var groups: [String: (db: LoadedDatabase, k: Int, slots: [Int], queries: [Float])] = [:]
        var prompts = [String](repeating: "", count: tasks.count)
        for (i, t) in tasks.enumerated() {
            do {
                let p = try RetrieveParams(json: t.params)
                let (q, prompt) = try Self.decodeInput(t.input)
                prompts[i] = prompt
                let db: LoadedDatabase
                do { db = try database(p.database) } catch let e as HumeError where e.code == .unknown {
                    throw HumeError(.permanent, e.message)
                }
                let key = "\(p.database)\u{0}\(p.k)"
                groups[key, default: (db, p.k, [], [])].slots.append(i)
                groups[key]!.queries += q
            } catch let e as HumeError where e.code == .permanent {
                outcomes[i] = .permanent(e.message)
            }
        }
        for g in groups.values {
            let r: SearchResult
            do { r = try g.db.index.index.search(g.queries, k: g.k) } catch {
                for s in g.slots { outcomes[s] = .retryable("The search failed: \(error)") }
                continue
            }
            for (qi, slot) in g.slots.enumerated() {
                outcomes[slot] = .ok(Self.encode(database: g.db.database, result: r, query: qi, prompt: prompts[slot]))
            }
        }
        return outcomes.map { $0! }
    }

    /// The JSON answer for query `q` of `result`, echoing `prompt`.
    static func encode(database: Database, result: SearchResult, query q: Int, prompt: String) -> [UInt8] {
        var ids: [JSON] = []
        var scores: [JSON] = []
        var captions: [JSON] = []
        for j in 0..<result.k {
            let id = result.ids[q * result.k + j]
            guard id >= 0, Int(id) < database.count else { continue }
            ids.append(JSON(Int(id)))
            scores.append(.number((Double(result.scores[q * result.k + j]) * 1e6).rounded() / 1e6))
            captions.append(JSON(database.items[Int(id)].caption))
        }
        return JSON.object(["database": JSON(database.name), "ids": .array(ids), "scores": .array(scores),
                            "captions": .array(captions), "prompt": .string(prompt)]).bytes
    }
}

/// A parsed `retrieve` answer.
public struct RetrieveAnswer: Sendable {
    public var database: String
    public var ids: [Int]
    public var scores: [Double]
    public var captions: [String]
    /// The text the query embedded ("" when the input carried none).
    public var prompt: String

    /// Parses the stage's output.
    public init(_ bytes: [UInt8]) throws {
        let j = try JSON.parse(bytes, what: "retrieve answer")
        database = j["database"]?.string ?? ""
        ids = (j["ids"]?.array ?? []).compactMap(\.int)
        scores = (j["scores"]?.array ?? []).compactMap(\.double)
        captions = (j["captions"]?.array ?? []).compactMap(\.string)
        prompt = j["prompt"]?.string ?? ""
    }
}

/// Encodes a query embedding as the stage's input (little-endian float32).
public func encodeQuery(_ v: [Float]) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(v.count * 4)
    for x in v {
        let b = x.bitPattern.littleEndian
        withUnsafeBytes(of: b) { out += $0 }
    }
    return out
}
