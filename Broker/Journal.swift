import HumeCore

/// A job as the journal stores it.
public struct JournalJob: Sendable {
    public var id: UInt64
    public var key: String
    public var batch: String
    public var route: [String]
    public var priority: UInt8
    public var deadlineMs: UInt64
    public var params: [UInt8]
    public var data: [UInt8]
    /// Index into `route` of the next stage to run.
    public var stage: Int
    /// The last finished stage's output (the next stage's input); `data` before the first stage.
    public var output: [UInt8]
    public var status: JobStatus
    public var error: String

    public init(id: UInt64, key: String, batch: String, route: [String], priority: UInt8, deadlineMs: UInt64,
                params: [UInt8], data: [UInt8], stage: Int = 0, output: [UInt8] = [], status: JobStatus = .active,
                error: String = "") {
        self.id = id
        self.key = key
        self.batch = batch
        self.route = route
        self.priority = priority
        self.deadlineMs = deadlineMs
        self.params = params
        self.data = data
        self.stage = stage
        self.output = output
        self.status = status
        self.error = error
    }
}

/// What inserting a job found.
public enum InsertOutcome: Sendable {
    case inserted
    /// The key already names a job: here it is (its id, status, and result or error when finished).
    case existing(JournalJob)
}

/// Per-batch counts for `status`.
public struct BatchCounts: Sendable, Equatable {
    public var batch: String
    public var counts: [JobStatus: Int]
    public var total: Int { counts.values.reduce(0, +) }

    /// Counts by batch and status as a list, batches in name order.
    public static func list(_ byBatch: [String: [JobStatus: Int]]) -> [BatchCounts] {
        byBatch.keys.sorted().map { BatchCounts(batch: $0, counts: byBatch[$0]!) }
    }
}

/// Durable storage of jobs. The broker calls it on its own thread, between `begin` and `commit` once per loop
/// iteration (group commit): nothing it was told is acknowledged before `commit` returns.
public protocol Journal: AnyObject {
    /// The time (ms since the epoch) recorded with the jobs that end from now on: the broker sets it each round.
    var now: UInt64 { get set }
    func begin() throws
    func commit() throws
    /// The largest job id ever stored (0 when empty).
    func maxJobID() throws -> UInt64
    /// Stores a new job, or returns the job its key already names.
    func insert(_ job: JournalJob) throws -> InsertOutcome
    /// Stores new jobs in order (a key repeated among them names the first), one outcome per job.
    func insert(_ jobs: [JournalJob]) throws -> [InsertOutcome]
    /// Records that a job finished a stage: `stage` is now the index of the next stage, `output` its input.
    func advance(job: UInt64, stage: Int, output: [UInt8]) throws
    /// Records how a job ended, with its result (done) or error sentence (otherwise). `advanced` says whether it may
    /// have finished a stage before (and so hold a stage output to drop); false only when it certainly has not.
    func finish(job: UInt64, status: JobStatus, body: [UInt8], error: String, advanced: Bool) throws
    /// Keeps a failed attempt's error (the dead-letter record).
    func recordFailure(job: UInt64, stage: String, attempt: Int, error: String) throws
    /// Every job still active, for recovery after a restart.
    func activeJobs() throws -> [JournalJob]
    /// Counts per batch and status.
    func batchCounts() throws -> [BatchCounts]
    /// The errors recorded for a job, oldest first.
    func failures(job: UInt64) throws -> [String]
    /// One job by id, finished or not (nil: never stored, or forgotten).
    func job(id: UInt64) throws -> JournalJob?
    /// Forgets, of the first `limit` ended jobs by id, those that ended before `endedBefore` (ms since the epoch): their
    /// rows, results and failure records go, and their keys are free again. The job with the largest id is always
    /// kept, so ids are never handed out twice. Returns how many were forgotten per batch and status.
    func forget(endedBefore: UInt64, limit: Int) throws -> [BatchCounts]
}

extension Journal {
    public func insert(_ jobs: [JournalJob]) throws -> [InsertOutcome] { try jobs.map { try insert($0) } }

    /// Records how a job ended, not knowing whether it finished a stage before.
    public func finish(job: UInt64, status: JobStatus, body: [UInt8], error: String) throws {
        try finish(job: job, status: status, body: body, error: error, advanced: true)
    }
}

/// An in-memory journal for unit tests of the state machine (never for integration tests).
public final class MemoryJournal: Journal {
    public private(set) var jobs: [UInt64: JournalJob] = [:]
    var byKey: [String: UInt64] = [:]
    public private(set) var failureLog: [UInt64: [String]] = [:]
    public private(set) var commits = 0
    public init() {}
    public var now: UInt64 = 0
    /// When each ended job ended (`now` at its `finish`).
    public private(set) var endedAt: [UInt64: UInt64] = [:]
    public func begin() throws {}
    public func commit() throws { commits += 1 }
    public func maxJobID() throws -> UInt64 { jobs.keys.max() ?? 0 }
    public func insert(_ job: JournalJob) throws -> InsertOutcome {
        if let id = byKey[job.key], let j = jobs[id] { return .existing(j) }
        jobs[job.id] = job
        byKey[job.key] = job.id
        return .inserted
    }
    public func advance(job: UInt64, stage: Int, output: [UInt8]) throws {
        jobs[job]?.stage = stage
        jobs[job]?.output = output
    }
    /// What each `finish` was told about `advanced`, so tests can hold the broker to it.
    public private(set) var finishedAdvanced: [UInt64: Bool] = [:]
    public func finish(job: UInt64, status: JobStatus, body: [UInt8], error: String, advanced: Bool) throws {
        finishedAdvanced[job] = advanced
        jobs[job]?.status = status
        jobs[job]?.output = body
        jobs[job]?.error = error
        if jobs[job] != nil { endedAt[job] = now }
    }
    public func forget(endedBefore: UInt64, limit: Int) throws -> [BatchCounts] {
        let newest = jobs.keys.max()
        let old = endedAt.sorted { $0.key < $1.key }.prefix(limit).filter { $0.value < endedBefore && $0.key != newest }
        var out: [String: [JobStatus: Int]] = [:]
        for (id, _) in old {
            guard let j = jobs.removeValue(forKey: id) else { continue }
            byKey[j.key] = nil
            endedAt[id] = nil
            failureLog[id] = nil
            out[j.batch, default: [:]][j.status, default: 0] += 1
        }
        return BatchCounts.list(out)
    }
    public func recordFailure(job: UInt64, stage: String, attempt: Int, error: String) throws {
        failureLog[job, default: []].append("\(stage) attempt \(attempt): \(error)")
    }
    public func activeJobs() throws -> [JournalJob] { jobs.values.filter { $0.status == .active }.sorted { $0.id < $1.id } }
    public func batchCounts() throws -> [BatchCounts] {
        var out: [String: [JobStatus: Int]] = [:]
        for j in jobs.values { out[j.batch, default: [:]][j.status, default: 0] += 1 }
        return BatchCounts.list(out)
    }
    public func failures(job: UInt64) throws -> [String] { failureLog[job] ?? [] }
    public func job(id: UInt64) throws -> JournalJob? { jobs[id] }
}
