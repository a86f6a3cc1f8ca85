import Foundation
import GRDB
import GRDBSQLite
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
            DROP INDEX IF EXISTS jobs_batch_only;
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

    // The three statements run once per job per stage, so they bind through SQLite's C API: GRDB's
    // StatementArguments box every value (an array of existentials, a Data per blob), which cost as much as SQLite.

    /// Binds text (copied by SQLite).
    @inline(__always) static func bind(_ s: OpaquePointer, _ i: Int32, _ text: String) {
        var t = text
        t.withUTF8 { u in
            guard let p = u.baseAddress, u.count > 0 else { _ = sqlite3_bind_text(s, i, "", 0, transient); return }
            _ = sqlite3_bind_text(s, i, UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self), Int32(u.count), transient)
        }
    }

    /// Binds a blob (copied by SQLite); an empty one is a zero-length blob, never NULL.
    @inline(__always) static func bind(_ s: OpaquePointer, _ i: Int32, _ bytes: [UInt8]) {
        if bytes.isEmpty { _ = sqlite3_bind_zeroblob(s, i, 0); return }
        bytes.withUnsafeBytes { _ = sqlite3_bind_blob(s, i, $0.baseAddress, Int32($0.count), transient) }
    }

    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Runs a bound statement to completion and resets it.
    func step(_ s: OpaquePointer, _ what: String) throws {
        let rc = sqlite3_step(s)
        sqlite3_reset(s)
        guard rc == SQLITE_DONE else {
            let msg = String(cString: sqlite3_errmsg(db.sqliteConnection))
            throw HumeError(.journal, "The journal failed to \(what): \(msg).")
        }
    }

    public func insert(_ job: JournalJob) throws -> InsertOutcome {
        let s = insertStmt.sqliteStatement
        sqlite3_bind_int64(s, 1, Int64(bitPattern: job.id))
        Self.bind(s, 2, job.key)
        Self.bind(s, 3, job.batch)
        Self.bind(s, 4, job.route.joined(separator: ","))
        sqlite3_bind_int64(s, 5, Int64(job.priority))
        sqlite3_bind_int64(s, 6, Int64(bitPattern: job.deadlineMs))
        Self.bind(s, 7, job.params)
        Self.bind(s, 8, job.data)
        try step(s, "store a job")
        if db.changesCount == 1 { return .inserted }
        return try wrap("store a job") {
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
        let s = advanceStmt.sqliteStatement
        sqlite3_bind_int64(s, 1, Int64(stage))
        Self.bind(s, 2, output)
        sqlite3_bind_int64(s, 3, Int64(bitPattern: job))
        try step(s, "record a finished stage")
    }

    public func finish(job: UInt64, status: JobStatus, body: [UInt8], error: String) throws {
        let s = finishStmt.sqliteStatement
        sqlite3_bind_int64(s, 1, Int64(status.rawValue))
        Self.bind(s, 2, body)
        Self.bind(s, 3, error)
        sqlite3_bind_int64(s, 4, Int64(bitPattern: job))
        try step(s, "record a finished job")
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
