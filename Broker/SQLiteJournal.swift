import Foundation
import GRDB
import HumeCore

/// How hard the journal pushes each commit to disk.
public enum JournalSync: String, Sendable {
    /// fsync every group commit: survives power loss (SQLite `synchronous=FULL`).
    case full
    /// Written to the OS at every commit, fsynced at checkpoints: survives kill -9 of any process, not power loss
    /// (SQLite WAL with `synchronous=NORMAL`). The default.
    case normal
}

/// The broker's SQLite journal (WAL mode). Used from the broker thread only, inside `DatabaseQueue.inDatabase`.
public final class SQLiteJournal: Journal {
    let db: Database
    let insertStmt: Statement
    let findStmt: Statement
    let advanceStmt: Statement
    let finishStmt: Statement
    let failureStmt: Statement
    var inTransaction = false

    /// Opens the database queue for a journal file, creating the schema when needed.
    public static func openQueue(path: String, sync: JournalSync) throws -> DatabaseQueue {
        var config = Configuration()
        config.journalMode = .wal
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous=\(sync == .full ? "FULL" : "NORMAL")")
            try db.execute(sql: "PRAGMA wal_autocheckpoint=10000")
            try db.execute(sql: "PRAGMA cache_size=-65536")
        }
        do {
            let q = try DatabaseQueue(path: path, configuration: config)
            try q.write { db in try SQLiteJournal.migrate(db) }
            return q
        } catch let e as DatabaseError {
            throw HumeError(.journal, "Cannot open the journal at \(path): \(e.message ?? "\(e)").", cause: e)
        }
    }

    static func migrate(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS jobs(
              id INTEGER PRIMARY KEY,
              key TEXT NOT NULL UNIQUE,
              batch TEXT NOT NULL,
              route TEXT NOT NULL,
              priority INTEGER NOT NULL,
              deadline INTEGER NOT NULL,
              params BLOB NOT NULL,
              data BLOB NOT NULL,
              stage INTEGER NOT NULL DEFAULT 0,
              output BLOB,
              status INTEGER NOT NULL DEFAULT 0,
              error TEXT NOT NULL DEFAULT '');
            CREATE INDEX IF NOT EXISTS jobs_batch_only ON jobs(batch);
            DROP INDEX IF EXISTS jobs_batch;
            CREATE TABLE IF NOT EXISTS failures(
              job INTEGER NOT NULL,
              stage TEXT NOT NULL,
              attempt INTEGER NOT NULL,
              error TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS failures_job ON failures(job);
            """)
    }

    /// Wraps a connection the caller holds for the broker's lifetime.
    public init(_ db: Database) throws {
        self.db = db
        insertStmt = try db.makeStatement(sql: """
            INSERT INTO jobs(id, key, batch, route, priority, deadline, params, data) VALUES(?,?,?,?,?,?,?,?)
            ON CONFLICT(key) DO NOTHING
            """)
        findStmt = try db.makeStatement(sql: "SELECT id, key, batch, route, priority, deadline, params, data, stage, output, status, error FROM jobs WHERE key = ?")
        advanceStmt = try db.makeStatement(sql: "UPDATE jobs SET stage = ?, output = ? WHERE id = ?")
        finishStmt = try db.makeStatement(sql: "UPDATE jobs SET status = ?, output = ?, error = ? WHERE id = ?")
        failureStmt = try db.makeStatement(sql: "INSERT INTO failures(job, stage, attempt, error) VALUES(?,?,?,?)")
    }

    func wrap<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as DatabaseError {
            throw HumeError(.journal, "The journal failed to \(what): \(e.message ?? "\(e)").", cause: e)
        }
    }

    public func begin() throws {
        guard !inTransaction else { return }
        try wrap("begin a transaction") { try db.execute(sql: "BEGIN IMMEDIATE") }
        inTransaction = true
    }

    public func commit() throws {
        guard inTransaction else { return }
        try wrap("commit") { try db.execute(sql: "COMMIT") }
        inTransaction = false
    }

    public func maxJobID() throws -> UInt64 {
        try wrap("read the largest job id") { UInt64(try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM jobs") ?? 0) }
    }

    static func blob(_ b: [UInt8]) -> Data { b.withUnsafeBytes { Data($0) } }

    public func insert(_ job: JournalJob) throws -> InsertOutcome {
        try wrap("store a job") {
            insertStmt.setUncheckedArguments([Int64(bitPattern: job.id), job.key, job.batch, job.route.joined(separator: ","),
                                              Int64(job.priority), Int64(bitPattern: job.deadlineMs), Self.blob(job.params),
                                              Self.blob(job.data)])
            try insertStmt.execute()
            if db.changesCount == 1 { return .inserted }
            findStmt.setUncheckedArguments([job.key])
            guard let row = try Row.fetchOne(findStmt) else {
                throw HumeError(.journal, "The journal refused job key \(job.key) but holds no job with it.")
            }
            return .existing(Self.job(row))
        }
    }

    static func job(_ row: Row) -> JournalJob {
        let params: Data = row[6] ?? Data()
        let data: Data = row[7] ?? Data()
        let output: Data = row[9] ?? Data()
        let route: String = row[3]
        return JournalJob(id: UInt64(bitPattern: row[0] as Int64), key: row[1], batch: row[2],
                          route: route.split(separator: ",").map(String.init),
                          priority: UInt8(truncatingIfNeeded: row[4] as Int64), deadlineMs: UInt64(bitPattern: row[5] as Int64),
                          params: [UInt8](params), data: [UInt8](data), stage: Int(row[8] as Int64), output: [UInt8](output),
                          status: JobStatus(rawValue: UInt8(truncatingIfNeeded: row[10] as Int64)) ?? .failed, error: row[11])
    }

    public func advance(job: UInt64, stage: Int, output: [UInt8]) throws {
        try wrap("record a finished stage") {
            advanceStmt.setUncheckedArguments([Int64(stage), Self.blob(output), Int64(bitPattern: job)])
            try advanceStmt.execute()
        }
    }

    public func finish(job: UInt64, status: JobStatus, body: [UInt8], error: String) throws {
        try wrap("record a finished job") {
            finishStmt.setUncheckedArguments([Int64(status.rawValue), Self.blob(body), error, Int64(bitPattern: job)])
            try finishStmt.execute()
        }
    }

    public func recordFailure(job: UInt64, stage: String, attempt: Int, error: String) throws {
        try wrap("record a failure") {
            failureStmt.setUncheckedArguments([Int64(bitPattern: job), stage, Int64(attempt), error])
            try failureStmt.execute()
        }
    }

    public func activeJobs() throws -> [JournalJob] {
        try wrap("load active jobs") {
            try Row.fetchAll(db, sql: "SELECT id, key, batch, route, priority, deadline, params, data, stage, output, status, error FROM jobs WHERE status = 0 ORDER BY id").map(Self.job)
        }
    }

    public func activeJobIDs(batch: String) throws -> [UInt64] {
        try wrap("list a batch's jobs") {
            try Int64.fetchAll(db, sql: "SELECT id FROM jobs WHERE batch = ? AND status = 0 ORDER BY id", arguments: [batch]).map { UInt64($0) }
        }
    }

    public func batchCounts() throws -> [BatchCounts] {
        try wrap("count batches") {
            var out: [String: [JobStatus: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT batch, status, COUNT(*) FROM jobs GROUP BY batch, status") {
                let st = JobStatus(rawValue: UInt8(truncatingIfNeeded: row[1] as Int64)) ?? .failed
                out[row[0] as String, default: [:]][st] = Int(row[2] as Int64)
            }
            return out.keys.sorted().map { BatchCounts(batch: $0, counts: out[$0]!) }
        }
    }

    public func failures(job: UInt64) throws -> [String] {
        try wrap("read failures") {
            try Row.fetchAll(db, sql: "SELECT stage, attempt, error FROM failures WHERE job = ? ORDER BY rowid",
                             arguments: [Int64(bitPattern: job)]).map { "\($0[0] as String) attempt \($0[1] as Int64): \($0[2] as String)" }
        }
    }
}
