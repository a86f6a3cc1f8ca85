import Foundation
import GRDB
import GRDBSQLite
import HumeCore

/// How hard the journal pushes each commit to disk.
public enum JournalSync: String, Sendable {
    /// fsync the WAL at every group commit, before anything it holds is acknowledged: an acknowledgement means on
    /// disk, through kill -9, an OS crash or power loss (SQLite `synchronous=FULL`). The default: with group commit
    /// it costs about 0.2 ms per commit, within noise at bulk rates (README, Numbers).
    case full
    /// Written to the OS at every commit, fsynced at checkpoints: survives kill -9 of any process, not an OS crash or
    /// power loss, which can take the commits since the last checkpoint (SQLite WAL with `synchronous=NORMAL`).
    case normal
}

/// The broker's SQLite journal (WAL mode). Used from the broker thread only, inside `DatabaseQueue.inDatabase`.
public final class SQLiteJournal: Journal {
    let db: Database
    let findStmt: Statement
    let keyByIDStmt: Statement
    let maxIDStmt: Statement
    let failureStmt: Statement
    /// BEGIN and COMMIT run once per broker loop round: prepared once, not parsed every time.
    let beginStmt: Statement
    let commitStmt: Statement
    var inTransaction = false
    public var now: UInt64 = 0
    /// Finished stages and ended jobs not yet written: they go to SQLite many rows per statement when the
    /// transaction commits, or before anything reads the journal, so every read sees them.
    var pendingProgress: [(id: UInt64, stage: Int, output: [UInt8])] = []
    var pendingResults: [(id: UInt64, status: JobStatus, body: [UInt8], error: String, at: UInt64)] = []
    /// Ended jobs that may hold a `progress` row (they finished a stage, or came back from the journal).
    var pendingClears: [UInt64] = []
    /// Multi-row statements by row count, prepared on first use.
    var progressStmts: [Int: Statement] = [:]
    var resultStmts: [Int: Statement] = [:]
    var clearStmts: [Int: Statement] = [:]
    var insertStmts: [Int: Statement] = [:]
    /// Group ids by batch and route (a handful per broker), and the last one used: a SUBMIT's jobs share one.
    var groupIDs: [GroupKey: Int64] = [:]
    var lastGroup: (key: GroupKey, id: Int64)?
    struct GroupKey: Hashable { var batch: String; var route: [String] }
    /// Most rows one multi-row statement writes.
    static let rowsPerStatement = 64
    /// The text and blobs of one multi-row statement, copied back to back and bound without SQLite copying them
    /// again (`SQLITE_STATIC`); `spans` holds each value's range. Reused statement after statement.
    var scratch: [UInt8] = []
    var spans: [Range<Int>] = []

    /// Opens the database queue for a journal file, creating the schema when needed.
    public static func openQueue(path: String, sync: JournalSync) throws -> DatabaseQueue {
        var config = Configuration()
        config.journalMode = .wal
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint=10000")
            try db.execute(sql: "PRAGMA cache_size=-65536")
            try db.execute(sql: "PRAGMA temp_store=MEMORY")  // the forget list (`forget`): no temporary file
        }
        do {
            let q = try DatabaseQueue(path: path, configuration: config)
            // After the queue is open: GRDB's WAL set-up runs after `prepareDatabase` and sets synchronous=NORMAL,
            // which silently made `--sync full` the same as `normal` until this was measured with strace.
            try q.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous=\(sync == .full ? "FULL" : "NORMAL")") }
            try q.write { db in try SQLiteJournal.migrate(db) }
            return q
        } catch let e as DatabaseError {
            throw HumeError(.journal, "Cannot open the journal at \(path): \(e.message ?? "\(e)").", cause: e)
        }
    }

    /// The schema version this code writes (`PRAGMA user_version`). Version 1 kept a job's progress and result in
    /// its `jobs` row (an UPDATE of the whole row per finished stage); version 2 wrote a `jobs` row once and kept
    /// the next stage's input in `progress` and the end in `results`, narrow rows written many at a time; version 3
    /// names each job's batch and route by a `groups` row instead of repeating their text in every job's row;
    /// version 4 records when each job ended (`results.at`, ms since the epoch), so ended jobs can be forgotten by age
    /// (`forget`); a version 3 journal's ended jobs are dated to the upgrade.
    static let schemaVersion = 4

    static func migrate(_ db: Database) throws {
        let columns = try db.tableExists("jobs") ? Set(try db.columns(in: "jobs").map(\.name)) : []
        try db.execute(sql: """
            DROP VIEW IF EXISTS job_states;
            CREATE TABLE IF NOT EXISTS groups(
              id INTEGER PRIMARY KEY,
              batch TEXT NOT NULL,
              route TEXT NOT NULL,
              UNIQUE(batch, route));
            CREATE TABLE IF NOT EXISTS progress(
              id INTEGER PRIMARY KEY,
              stage INTEGER NOT NULL,
              output BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS results(
              id INTEGER PRIMARY KEY,
              status INTEGER NOT NULL,
              output BLOB NOT NULL,
              error TEXT NOT NULL,
              at INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS failures(
              job INTEGER NOT NULL,
              stage TEXT NOT NULL,
              attempt INTEGER NOT NULL,
              error TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS failures_job ON failures(job);
            """)
        if !(try db.columns(in: "results").contains { $0.name == "at" }) {
            // Versions 1 to 3: no end times; the ended jobs count as ended now.
            try db.execute(sql: "ALTER TABLE results ADD COLUMN at INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "UPDATE results SET at = ?", arguments: [Int64(wallMillis())])
        }
        if columns.contains("status") {
            // Version 1: each job's progress and end move out of its row.
            try db.execute(sql: """
                INSERT OR REPLACE INTO results(id, status, output, error, at)
                  SELECT id, status, COALESCE(output, x''), error, \(wallMillis()) FROM jobs WHERE status != 0;
                INSERT OR REPLACE INTO progress(id, stage, output)
                  SELECT id, stage, COALESCE(output, x'') FROM jobs WHERE status = 0 AND (stage > 0 OR length(output) > 0);
                """)
        }
        let jobsTable = """
            (id INTEGER PRIMARY KEY,
              key TEXT NOT NULL UNIQUE,
              grp INTEGER NOT NULL,
              priority INTEGER NOT NULL,
              deadline INTEGER NOT NULL,
              params BLOB NOT NULL,
              data BLOB NOT NULL)
            """
        if columns.contains("batch") {
            // Versions 1 and 2: the batch and route text in every row; rebuilt with a group id.
            try db.execute(sql: """
                CREATE TABLE jobs_v3\(jobsTable);
                INSERT OR IGNORE INTO groups(batch, route) SELECT DISTINCT batch, route FROM jobs;
                INSERT INTO jobs_v3(id, key, grp, priority, deadline, params, data)
                  SELECT j.id, j.key, g.id, j.priority, j.deadline, j.params, j.data
                  FROM jobs j JOIN groups g ON g.batch = j.batch AND g.route = j.route;
                DROP TABLE jobs;
                ALTER TABLE jobs_v3 RENAME TO jobs;
                """)
        }
        // For people reading the journal with sqlite3: one row per job with its status (section 3 of PROTOCOL.md),
        // the index of its next stage, and its result, error or next input.
        try db.execute(sql: """
            CREATE TABLE IF NOT EXISTS jobs\(jobsTable);
            CREATE VIEW job_states AS
              SELECT j.id, j.key, g.batch, g.route, COALESCE(r.status, 0) AS status, COALESCE(p.stage, 0) AS stage,
                     COALESCE(r.output, p.output, j.data) AS output, COALESCE(r.error, '') AS error
              FROM jobs j JOIN groups g ON g.id = j.grp LEFT JOIN progress p ON p.id = j.id LEFT JOIN results r ON r.id = j.id;
            PRAGMA user_version = \(schemaVersion);
            """)
    }

    /// Wraps a connection the caller holds for the broker's lifetime.
    public init(_ db: Database) throws {
        self.db = db
        // `forget`'s list of ids, in memory (`temp_store`), made once: a schema change makes SQLite prepare every
        // statement again, so it is not made on a hot path.
        try db.execute(sql: "CREATE TEMP TABLE IF NOT EXISTS forgotten(id INTEGER PRIMARY KEY)")
        findStmt = try db.makeStatement(sql: Self.selectJobs + " WHERE j.key = ?")
        keyByIDStmt = try db.makeStatement(sql: "SELECT key FROM jobs WHERE id = ?")
        maxIDStmt = try db.makeStatement(sql: "SELECT max(id) FROM jobs")
        failureStmt = try db.makeStatement(sql: "INSERT INTO failures(job, stage, attempt, error) VALUES(?,?,?,?)")
        beginStmt = try db.makeStatement(sql: "BEGIN IMMEDIATE")
        commitStmt = try db.makeStatement(sql: "COMMIT")
    }

    func wrap<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as DatabaseError {
            throw HumeError(.journal, "The journal failed to \(what): \(e.message ?? "\(e)").", cause: e)
        }
    }

    public func begin() throws {
        guard !inTransaction else { return }
        try step(beginStmt.sqliteStatement, "begin a transaction")
        inTransaction = true
    }

    public func commit() throws {
        guard inTransaction else { return }
        try flush()
        try step(commitStmt.sqliteStatement, "commit")
        inTransaction = false
    }

    public func maxJobID() throws -> UInt64 {
        try wrap("read the largest job id") { UInt64(try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(id), 0) FROM jobs") ?? 0) }
    }

    static func blob(_ b: [UInt8]) -> Data { b.withUnsafeBytes { Data($0) } }

    // The three statements run once per job per stage, so they bind through SQLite's C API: GRDB's
    // StatementArguments box every value (an array of existentials, a Data per blob), which cost as much as SQLite.

    /// Copies a value into `scratch` for `bindStatic`.
    @inline(__always) func stage(_ text: String) {
        let start = scratch.count
        scratch.append(contentsOf: text.utf8)
        spans.append(start..<scratch.count)
    }

    @inline(__always) func stage(_ bytes: [UInt8]) {
        let start = scratch.count
        scratch.append(contentsOf: bytes)
        spans.append(start..<scratch.count)
    }

    /// Binds staged value `k` as text or blob, pointing into `scratch` (`base`): call it, and `stepStatic`, inside one
    /// `scratch.withUnsafeBytes`. An empty blob is a zero-length blob, never NULL.
    @inline(__always) func bindStatic(_ s: OpaquePointer, _ i: Int32, _ k: Int, text: Bool, _ base: UnsafeRawBufferPointer) {
        let r = spans[k]
        if r.isEmpty {
            // Not sqlite3_bind_zeroblob: that value is expanded (allocated) when the row is made.
            if text { _ = sqlite3_bind_text(s, i, "", 0, Self.static) } else { _ = sqlite3_bind_blob(s, i, Self.emptyBlob, 0, Self.static) }
            return
        }
        let p = base.baseAddress! + r.lowerBound
        if text {
            _ = sqlite3_bind_text(s, i, p.assumingMemoryBound(to: CChar.self), Int32(r.count), Self.static)
        } else {
            _ = sqlite3_bind_blob(s, i, p, Int32(r.count), Self.static)
        }
    }

    /// Runs a statement bound by `bindStatic` and drops its bindings, so none outlives the scratch memory.
    func stepStatic(_ s: OpaquePointer, _ what: String) throws {
        defer { sqlite3_clear_bindings(s) }
        try step(s, what)
    }

    func resetScratch() {
        scratch.removeAll(keepingCapacity: true)
        spans.removeAll(keepingCapacity: true)
    }

    static let `static` = unsafeBitCast(0, to: sqlite3_destructor_type.self)
    /// A non-NULL pointer for empty blobs (a NULL pointer would bind NULL, which the NOT NULL columns refuse).
    nonisolated(unsafe) static let emptyBlob = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)

    /// Runs a bound statement to completion and resets it.
    func step(_ s: OpaquePointer, _ what: String) throws {
        let rc = sqlite3_step(s)
        sqlite3_reset(s)
        guard rc == SQLITE_DONE else {
            let msg = String(cString: sqlite3_errmsg(db.sqliteConnection))
            throw HumeError(.journal, "The journal failed to \(what): \(msg).")
        }
    }

    public func insert(_ job: JournalJob) throws -> InsertOutcome { try insert([job])[0] }

    static let insertHead = "INSERT INTO jobs(id, key, grp, priority, deadline, params, data) VALUES"

    /// The id of the group row naming this batch and route, made on first use.
    func group(batch: String, route: [String]) throws -> Int64 {
        let key = GroupKey(batch: batch, route: route)
        if let last = lastGroup, last.key == key { return last.id }
        let id: Int64
        if let known = groupIDs[key] {
            id = known
        } else {
            let text = route.joined(separator: ",")
            id = try wrap("store a batch name") {
                if let found = try Int64.fetchOne(db, sql: "SELECT id FROM groups WHERE batch = ? AND route = ?", arguments: [batch, text]) {
                    return found
                }
                try db.execute(sql: "INSERT INTO groups(batch, route) VALUES(?, ?)", arguments: [batch, text])
                return db.lastInsertedRowID
            }
            groupIDs[key] = id
        }
        lastGroup = (key, id)
        return id
    }

    /// Up to 64 jobs per statement. A statement that stored every row (`sqlite3_changes`, the usual case) needs nothing
    /// more; after one that skipped some (their keys were taken) each of its jobs is looked up by id: a row with the
    /// job's id and key above the largest id stored before this call is the one just stored. (`RETURNING id` answered
    /// the same question for every statement; without it the broker spent less CPU per job in 6 of 6 interleaved
    /// `hume bench broker` pairs, 9.8 against 11.5 µs on average.)
    public func insert(_ jobs: [JournalJob]) throws -> [InsertOutcome] {
        var stored = [Bool](repeating: true, count: jobs.count)
        let largestBefore = try wrap("store a job") { try Int64.fetchOne(maxIDStmt) ?? 0 }
        for i in stride(from: 0, to: jobs.count, by: Self.rowsPerStatement) {
            let rows = min(Self.rowsPerStatement, jobs.count - i)
            let s = try statement(&insertStmts, rows: rows, head: Self.insertHead, tuple: "(?,?,?,?,?,?,?)",
                                  tail: " ON CONFLICT(key) DO NOTHING")
            resetScratch()
            for r in 0..<rows {
                stage(jobs[i + r].key)
                stage(jobs[i + r].params)
                stage(jobs[i + r].data)
            }
            // A SUBMIT's jobs share one batch and route: look the group up again only when they change.
            var group: Int64 = 0
            try scratch.withUnsafeBytes { base in
                for r in 0..<rows {
                    let job = jobs[i + r], b = Int32(r * 7)
                    if r == 0 || job.batch != jobs[i + r - 1].batch || job.route != jobs[i + r - 1].route {
                        group = try self.group(batch: job.batch, route: job.route)
                    }
                    sqlite3_bind_int64(s, b + 1, Int64(bitPattern: job.id))
                    bindStatic(s, b + 2, 3 * r, text: true, base)
                    sqlite3_bind_int64(s, b + 3, group)
                    sqlite3_bind_int64(s, b + 4, Int64(job.priority))
                    sqlite3_bind_int64(s, b + 5, Int64(bitPattern: job.deadlineMs))
                    bindStatic(s, b + 6, 3 * r + 1, text: false, base)
                    bindStatic(s, b + 7, 3 * r + 2, text: false, base)
                }
                try stepStatic(s, "store jobs")
            }
            if Int(sqlite3_changes(db.sqliteConnection)) == rows { continue }
            for k in i..<(i + rows) {
                let id = Int64(bitPattern: jobs[k].id)
                stored[k] = try wrap("store a job") {
                    try id > largestBefore && String.fetchOne(keyByIDStmt, arguments: [id]) == jobs[k].key
                }
            }
        }
        if stored.allSatisfy({ $0 }) { return [InsertOutcome](repeating: .inserted, count: jobs.count) }
        try flush()  // a job with one of these keys may have ended in this transaction
        return try jobs.indices.map { k in
            if stored[k] { return .inserted }
            return try wrap("store a job") {
                findStmt.setUncheckedArguments([jobs[k].key])
                guard let row = try Row.fetchOne(findStmt) else {
                    throw HumeError(.journal, "The journal refused job key \(jobs[k].key) but holds no job with it.")
                }
                return .existing(Self.job(row))
            }
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
        pendingProgress.append((job, stage, output))
    }

    public func finish(job: UInt64, status: JobStatus, body: [UInt8], error: String, advanced: Bool) throws {
        pendingResults.append((job, status, body, error, now))
        if advanced { pendingClears.append(job) }
    }

    /// A statement that writes `rows` rows at once: `head`, then `tuple` `rows` times separated by commas, then `tail`.
    func statement(_ cache: inout [Int: Statement], rows: Int, head: String, tuple: String, tail: String = "") throws -> OpaquePointer {
        if let s = cache[rows] { return s.sqliteStatement }
        let s = try wrap("prepare a statement") {
            try db.makeStatement(sql: head + Array(repeating: tuple, count: rows).joined(separator: ",") + tail)
        }
        cache[rows] = s
        return s.sqliteStatement
    }

    /// Writes the pending stage outputs and job ends, many rows per statement: outputs first, then ends, then the
    /// ended jobs' outputs are deleted (a job that moved on and ended in one transaction leaves no progress row).
    func flush() throws {
        guard !pendingProgress.isEmpty || !pendingResults.isEmpty || !pendingClears.isEmpty else { return }
        let n = Self.rowsPerStatement
        for i in stride(from: 0, to: pendingProgress.count, by: n) {
            let rows = min(n, pendingProgress.count - i)
            let s = try statement(&progressStmts, rows: rows, head: "INSERT OR REPLACE INTO progress(id, stage, output) VALUES", tuple: "(?,?,?)")
            resetScratch()
            for r in 0..<rows { stage(pendingProgress[i + r].output) }
            try scratch.withUnsafeBytes { base in
                for r in 0..<rows {
                    let p = pendingProgress[i + r], b = Int32(r * 3)
                    sqlite3_bind_int64(s, b + 1, Int64(bitPattern: p.id))
                    sqlite3_bind_int64(s, b + 2, Int64(p.stage))
                    bindStatic(s, b + 3, r, text: false, base)
                }
                try stepStatic(s, "record finished stages")
            }
        }
        for i in stride(from: 0, to: pendingResults.count, by: n) {
            let rows = min(n, pendingResults.count - i)
            let s = try statement(&resultStmts, rows: rows, head: "INSERT OR REPLACE INTO results(id, status, output, error, at) VALUES", tuple: "(?,?,?,?,?)")
            resetScratch()
            for r in 0..<rows {
                stage(pendingResults[i + r].body)
                stage(pendingResults[i + r].error)
            }
            try scratch.withUnsafeBytes { base in
                for r in 0..<rows {
                    let p = pendingResults[i + r], b = Int32(r * 5)
                    sqlite3_bind_int64(s, b + 1, Int64(bitPattern: p.id))
                    sqlite3_bind_int64(s, b + 2, Int64(p.status.rawValue))
                    bindStatic(s, b + 3, 2 * r, text: false, base)
                    bindStatic(s, b + 4, 2 * r + 1, text: true, base)
                    sqlite3_bind_int64(s, b + 5, Int64(bitPattern: p.at))
                }
                try stepStatic(s, "record finished jobs")
            }
        }
        // Only jobs that finished a stage have an output to drop: a one-stage route, the usual bulk job, skips this
        // (measured: 1.5k of 24.7k instructions per job in `hume bench core`).
        for i in stride(from: 0, to: pendingClears.count, by: n) {
            let rows = min(n, pendingClears.count - i)
            let clear = try statement(&clearStmts, rows: rows, head: "DELETE FROM progress WHERE id IN (", tuple: "?", tail: ")")
            for r in 0..<rows { sqlite3_bind_int64(clear, Int32(r + 1), Int64(bitPattern: pendingClears[i + r])) }
            try step(clear, "clear finished jobs' stage outputs")
        }
        pendingProgress.removeAll(keepingCapacity: true)
        pendingResults.removeAll(keepingCapacity: true)
        pendingClears.removeAll(keepingCapacity: true)
    }

    public func recordFailure(job: UInt64, stage: String, attempt: Int, error: String) throws {
        try wrap("record a failure") {
            failureStmt.setUncheckedArguments([Int64(bitPattern: job), stage, Int64(attempt), error])
            try failureStmt.execute()
        }
    }

    /// A job's columns in the order `job(_:)` reads them: the stage and output of its progress row, or the output,
    /// status and error of its result row.
    static let selectJobs = """
        SELECT j.id, j.key, g.batch, g.route, j.priority, j.deadline, j.params, j.data, COALESCE(p.stage, 0),
               COALESCE(r.output, p.output), COALESCE(r.status, 0), COALESCE(r.error, '')
        FROM jobs j JOIN groups g ON g.id = j.grp LEFT JOIN progress p ON p.id = j.id LEFT JOIN results r ON r.id = j.id
        """

    public func activeJobs() throws -> [JournalJob] {
        try flush()
        return try wrap("load active jobs") {
            try Row.fetchAll(db, sql: Self.selectJobs + " WHERE r.id IS NULL ORDER BY j.id").map(Self.job)
        }
    }

    public func batchCounts() throws -> [BatchCounts] {
        try flush()
        return try wrap("count batches") {
            try countsByBatch("""
                SELECT g.batch, COALESCE(r.status, 0), COUNT(*)
                FROM jobs j JOIN groups g ON g.id = j.grp LEFT JOIN results r ON r.id = j.id GROUP BY 1, 2
                """)
        }
    }

    /// The rows of a `batch, status, count` query as counts per batch.
    func countsByBatch(_ sql: String) throws -> [BatchCounts] {
        var out: [String: [JobStatus: Int]] = [:]
        for row in try Row.fetchAll(db, sql: sql) {
            let st = JobStatus(rawValue: UInt8(truncatingIfNeeded: row[1] as Int64)) ?? .failed
            out[row[0] as String, default: [:]][st] = Int(row[2] as Int64)
        }
        return BatchCounts.list(out)
    }

    public func job(id: UInt64) throws -> JournalJob? {
        try flush()  // it may have ended in this transaction
        return try wrap("look a job up") {
            try Row.fetchOne(db, sql: Self.selectJobs + " WHERE j.id = ?", arguments: [Int64(bitPattern: id)]).map(Self.job)
        }
    }

    public func forget(endedBefore: UInt64, limit: Int) throws -> [BatchCounts] {
        try flush()
        return try wrap("forget ended jobs") {
            // The first `limit` ended jobs by id (the primary key: no index on `at`, which cost 0.2–0.3 µs per ended job
            // in `hume bench core`), of them those that ended before the cutoff. Jobs end roughly in id order; one
            // that ended late keeps the jobs after it a little longer, never shorter than asked.
            try db.execute(sql: """
                INSERT INTO forgotten SELECT id FROM (SELECT id, at FROM results ORDER BY id LIMIT ?)
                  WHERE at < ? AND id < (SELECT MAX(id) FROM jobs)
                """, arguments: [limit, Int64(bitPattern: endedBefore)])
            guard db.changesCount > 0 else { return [] }
            let gone = try countsByBatch("""
                SELECT g.batch, r.status, COUNT(*) FROM forgotten f JOIN results r ON r.id = f.id JOIN jobs j ON j.id = f.id
                  JOIN groups g ON g.id = j.grp GROUP BY 1, 2
                """)
            try db.execute(sql: """
                DELETE FROM jobs WHERE id IN (SELECT id FROM forgotten);
                DELETE FROM results WHERE id IN (SELECT id FROM forgotten);
                DELETE FROM progress WHERE id IN (SELECT id FROM forgotten);
                DELETE FROM failures WHERE job IN (SELECT id FROM forgotten);
                DELETE FROM forgotten;
                """)
            return gone
        }
    }

    public func failures(job: UInt64) throws -> [String] {
        try wrap("read failures") {
            try Row.fetchAll(db, sql: "SELECT stage, attempt, error FROM failures WHERE job = ? ORDER BY rowid",
                             arguments: [Int64(bitPattern: job)]).map { "\($0[0] as String) attempt \($0[1] as Int64): \($0[2] as String)" }
        }
    }
}
