import Foundation
import HumeCore
import HumeData
import HumeSearch
import HumeStages

/// The `retrieve` stage: an `EmbedOutput` (the query embedding, then the text it embeds) in, the k nearest database
/// items out as `Neighbours` (PROTOCOL.md, "Stage payloads"). The job's parameters are a generate job's
/// (`GenerateParameters`: `database`, `k`). Each database's index is loaded once, on first use, and kept.
public final class RetrieveStage: Stage, Sendable {
    public let name: String
    public let batchSize: Int
    public let concurrency: Int
    /// The databases this stage searches.
    public let databases: IndexedDatabases
    /// The last parameter block parsed, and what it parsed to: a batch's jobs carry the same bytes, and parsing them
    /// cost a tenth of a small flat search.
    private let lastParameters = ParsedParameters()

    /// - Parameters:
    ///   - root: the folder holding the databases.
    ///   - batchSize: tasks per `run` call; queries of one batch on one database are searched together.
    public init(name: String = "retrieve", root: URL, batchSize: Int = 16, concurrency: Int = 1) {
        self.name = name
        self.databases = IndexedDatabases(root: root)
        self.batchSize = max(1, batchSize)
        self.concurrency = max(1, concurrency)
    }

    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        // One task (a worker at low load, one query at a time): no grouping, nothing copied.
        if tasks.count == 1 {
            do {
                let (p, query, db) = try prepared(tasks[0])
                return Self.search(db, query.vector, k: p.k, prompts: [query.text])
            } catch {
                return [StageOutcome(error: error)]
            }
        }
        var outcomes = [StageOutcome?](repeating: nil, count: tasks.count)
        // Valid tasks grouped by (database, k), each group one FAISS call; a batch names one or two, so a list.
        var groups: [(db: LoadedDatabase, k: Int, slots: [Int], queries: [Float], prompts: [String])] = []
        for (i, t) in tasks.enumerated() {
            do {
                let (p, query, db) = try prepared(t)
                var g = groups.firstIndex { $0.db === db && $0.k == p.k }
                if g == nil {
                    groups.append((db, p.k, [], [], []))
                    g = groups.count - 1
                }
                groups[g!].slots.append(i)
                groups[g!].queries += query.vector
                groups[g!].prompts.append(query.text)
            } catch {
                outcomes[i] = StageOutcome(error: error)
            }
        }
        for g in groups {
            for (outcome, slot) in zip(Self.search(g.db, g.queries, k: g.k, prompts: g.prompts), g.slots) {
                outcomes[slot] = outcome
            }
        }
        return outcomes.map { $0! }
    }

    /// A task's parameters, query and database, or the error that refuses it.
    private func prepared(_ t: StageTask) throws -> (GenerateParameters, EmbedOutput, LoadedDatabase) {
        let p = try lastParameters.parse(t.params)
        return (p, try EmbedOutput(decoding: t.input), try databases.database(p.database))
    }

    /// One outcome per prompt: its payload, or the search's failure (retryable: a fault of this host).
    static func search(_ db: LoadedDatabase, _ queries: [Float], k: Int, prompts: [String]) -> [StageOutcome] {
        do {
            return try db.payloads(queries, k: k, prompts: prompts).map { .ok($0) }
        } catch {
            return prompts.map { _ in .retryable("The search failed: \(error)") }
        }
    }
}

/// A one-entry memo of `GenerateParameters(json:)`.
final class ParsedParameters: @unchecked Sendable {
    // Safe: `last` is only touched under `lock`.
    private let lock = NSLock()
    private var last: (bytes: [UInt8], parameters: GenerateParameters)?

    func parse(_ bytes: [UInt8]) throws -> GenerateParameters {
        lock.lock()
        let hit = last.flatMap { $0.bytes == bytes ? $0.parameters : nil }
        lock.unlock()
        if let hit { return hit }
        let parsed = try GenerateParameters(json: bytes)
        lock.lock()
        last = (bytes, parsed)
        lock.unlock()
        return parsed
    }
}
