import HumeCore
import Logging

/// Which of the broker's three endpoints a message came from or goes to.
public enum Endpoint: Sendable, Hashable {
    case workers, clients, control
}

/// A message for the socket loop to send: its records stay packed in one buffer until they are sent.
public struct Outgoing: Sendable {
    public var endpoint: Endpoint
    public var peer: [UInt8]
    public var command: Command
    public var header: JSON
    public var records: RecordBuffer

    public init(endpoint: Endpoint, peer: [UInt8], command: Command, header: JSON = .object([:]), records: RecordBuffer = RecordBuffer()) {
        self.endpoint = endpoint
        self.peer = peer
        self.command = command
        self.header = header
        self.records = records
    }

    public init(endpoint: Endpoint, peer: [UInt8], message: Message) {
        self.init(endpoint: endpoint, peer: peer, command: message.command, header: message.header,
                  records: RecordBuffer(message.records))
    }

    /// The message as a `Message` (one array per record).
    public var message: Message { Message(command, header: header, records: records.arrays) }

    /// The frames before the records: the peer's routing id, the signature, the command and the header.
    public var head: [[UInt8]] { [peer, Wire.signature, Array(command.rawValue.utf8), header.bytes] }
}

/// A dictionary keyed by the ids the broker hands out (job ids, leases), hashed by a fixed 64-bit mixer instead of
/// the standard library's seeded SipHash: a broker lookup per job per table, and profiling showed SipHash at about
/// a hundred instructions a call. Peers choose no keys that go in, so there is no hash flooding to defend against.
struct IDMap<Value> {
    struct Key: Hashable {
        let raw: UInt64
        func hash(into hasher: inout Hasher) { hasher.combine(raw) }
        // The splitmix64 finalizer: every output bit depends on every input bit.
        func _rawHashValue(seed: Int) -> Int {
            var x = raw &+ UInt64(UInt(bitPattern: seed))
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int(truncatingIfNeeded: x ^ (x >> 31))
        }
    }

    private var storage: [Key: Value] = [:]

    subscript(id: UInt64) -> Value? {
        get { storage[Key(raw: id)] }
        set { storage[Key(raw: id)] = newValue }
    }

    @discardableResult
    mutating func removeValue(forKey id: UInt64) -> Value? { storage.removeValue(forKey: Key(raw: id)) }

    var count: Int { storage.count }
    var isEmpty: Bool { storage.isEmpty }
    var values: Dictionary<Key, Value>.Values { storage.values }
}

/// One batch's job counts by status (index: `JobStatus.rawValue`), shared by its jobs.
final class BatchTally {
    var counts = [Int](repeating: 0, count: JobStatus.allCases.count)
}

/// The broker's scheduling, credit, lease, retry and intake logic as a state machine.
///
/// It does no I/O of its own: the socket loop feeds it decoded events with the current time and carries out the
/// messages it leaves in its outbox; durable state goes through the injected `Journal`. Each loop round is one
/// `round(now:_:)`: the journal's transaction opens before the events are fed and commits before the outbox is
/// handed over, so nothing is acknowledged before it is durable.

public final class BrokerCore {
    // MARK: State

    final class Job {
        let id: UInt64
        let key: String
        let batch: String
        let route: [Int]
        let priority: UInt8
        let deadlineMs: UInt64
        let params: [UInt8]
        var input: [UInt8]
        var position: Int  // index into route of the current stage
        var attempts = 0  // failed attempts at the current stage
        var state: State = .queued
        var lease: UInt64 = 0
        /// The connection its result goes to; nil for jobs recovered from the journal.
        var owner: Client?
        /// While leased: the worker holding it and when it was granted.
        var worker: Worker?
        var leasedAt: UInt64 = 0
        /// False once it has ended: the queue entries left behind for it are skipped.
        var live = true
        var progress = false
        var seq: UInt64 = 0
        var acceptedAt: UInt64 = 0  // 0 for jobs recovered from the journal (their submit time is unknown)
        /// Its batch's counts, held so that ending a job does not hash the batch name.
        var tally: BatchTally?

        enum State { case queued, leased, backoff }

        init(id: UInt64, key: String, batch: String, route: [Int], priority: UInt8, deadlineMs: UInt64, params: [UInt8],
             input: [UInt8], position: Int) {
            self.id = id
            self.key = key
            self.batch = batch
            self.route = route
            self.priority = priority
            self.deadlineMs = deadlineMs
            self.params = params
            self.input = input
            self.position = position
        }

        var stage: Int { route[position] }
        var nextStage: Int? { position + 1 < route.count ? route[position + 1] : nil }
        var bytes: Int { input.count + params.count }
    }

    struct StageState {
        let name: String
        /// Entries are (the job's `seq` when queued, the job); an entry whose seq no longer matches is stale.
        var queue = PriorityFIFO<(seq: UInt64, job: Job)>()
        var queued = 0  // jobs in `queue` that are live
        var occupancy = 0  // jobs at this stage: queued, leased or backing off
        var reserved = 0  // jobs leased upstream whose next stage is this one
        var bytes = 0
        var workers: [[UInt8]] = []
        var rr = 0
        // counters
        var arrived: UInt64 = 0  // jobs that entered this stage (new, recovered, or moved on from the previous stage)
        var leasesGranted: UInt64 = 0
        var completed: UInt64 = 0
        var retries: UInt64 = 0
        var deadLetters: UInt64 = 0
        var failures: UInt64 = 0
        var serviceMsTotal: Double = 0  // lease-to-DONE time of every answered lease
        var service = LatencyHistogram()
    }

    final class Worker {
        let peer: [UInt8]
        let stage: Int
        let name: String
        var credit: Int
        let capacity: Int
        /// Leases it holds now (each leased job names this worker).
        var leaseCount = 0
        /// TASK records for it from this round (while not empty, it is in `workersWithTasks`).
        var tasks = RecordBuffer()
        var lastSeen: UInt64
        var draining = false
        var done: UInt64 = 0
        var stats: JSON = .null
        /// The worker's own figures from its last HEARTBEAT (PROTOCOL.md 4.2); nil until it reports them.
        var figures: WorkerFigures?
        let joinedAt: UInt64

        init(peer: [UInt8], stage: Int, name: String, credit: Int, capacity: Int, now: UInt64) {
            self.peer = peer
            self.stage = stage
            self.name = name
            self.credit = credit
            self.capacity = capacity
            self.lastSeen = now
            self.joinedAt = now
        }
    }

    /// A client connection; jobs it owns point to it, so that finishing one needs no lookup by peer.
    final class Client {
        let peer: [UInt8]
        var outstanding = 0
        var lastSeen: UInt64 = 0
        /// Rate-limit tokens (jobs) and when they were last topped up; nil until the first SUBMIT.
        var tokens: Double?
        var tokensAt: UInt64 = 0
        /// RESULT and PROGRESS records for it from this round (while either is not empty, it is in `clientsWithOutput`).
        var results = RecordBuffer()
        var progress = RecordBuffer()
        var hasOutput: Bool { !results.isEmpty || !progress.isEmpty }

        init(peer: [UInt8]) { self.peer = peer }

        /// Tops the bucket up to `now` at `rate` jobs/s with one second of burst.
        func refill(rate: Double, now: UInt64) {
            let elapsed = Double(now &- tokensAt) / 1000
            tokens = min(rate, (tokens ?? rate) + (tokens == nil ? 0 : elapsed * rate))
            tokensAt = now
        }
    }

    public let config: BrokerConfig
    let journal: any Journal
    let logger: Logger
    var stages: [StageState]
    let stageIndex: [String: Int]
    var jobs = IDMap<Job>()
    /// Every live lease's job (which names the worker holding it).
    var leaseTable = IDMap<Job>()
    var workers: [[UInt8]: Worker] = [:]
    var clients: [[UInt8]: Client] = [:]
    var backoff = MinHeap<UInt64>()  // key: ready-at ms
    var deadlines = MinHeap<UInt64>()  // key: deadline ms
    var nextJobID: UInt64
    var nextLease: UInt64
    var seq: UInt64 = 0
    var lastWorkerScan: UInt64 = 0
    /// When ended jobs were last looked for to forget (`keepEndedMs`), and whether that round left more.
    var lastForget: UInt64 = 0
    var moreToForget = false
    /// Ended jobs forgotten since the start.
    public private(set) var forgotten: UInt64 = 0
    var supervisor: [UInt8]?
    /// When the supervisor last sent SUPERVISE (it does every second); one silent for `supervisorSilenceMs` is gone,
    /// and SCALE is refused rather than forwarded into nothing.
    var supervisorSeenMs: UInt64 = 0
    static let supervisorSilenceMs: UInt64 = 10_000
    /// What the supervisor last reported about the fleet (replica targets, autoscaling, decisions), shown in STATUS.
    var fleet: JSON = .null
    /// Job counts per batch and status (indexed by `JobStatus.rawValue`): loaded from the journal at start, then
    /// kept in step with it, so STATUS and metrics cost O(batches), not a scan of the journal.
    var batchCounts: [String: BatchTally] = [:]
    /// Time the last event was fed in (for latencies measured where no `now` is passed).
    var clock: UInt64
    let startedAt: UInt64
    var jobDuration = LatencyHistogram()

    // outbox
    var outgoing: [Outgoing] = []
    /// Workers with TASK records and clients with RESULT or PROGRESS records to send this round.
    var workersWithTasks: [Worker] = []
    var clientsWithOutput: [Client] = []

    // MARK: Counters (read by status and metrics)
    public private(set) var submitted: UInt64 = 0
    /// Jobs finished since start, by `JobStatus.rawValue`.
    public private(set) var finishedCounts = [UInt64](repeating: 0, count: JobStatus.allCases.count)
    public private(set) var badMessages: UInt64 = 0
    /// The last `recentImageCount` stage images that went through the broker, oldest first (the status page's
    /// "latest outputs").
    public private(set) var recentImages: [RecentImage] = []
    public static let recentImageCount = 12

    /// Makes a broker core and recovers every active job from the journal.
    public init(config: BrokerConfig, journal: any Journal, now: UInt64, logger: Logger = Logger(label: "hume.broker")) throws {
        self.config = config
        self.journal = journal
        journal.now = now
        self.logger = logger
        stages = config.stages.map { StageState(name: $0) }
        var idx: [String: Int] = [:]
        for (i, s) in config.stages.enumerated() { idx[s] = i }
        stageIndex = idx
        nextJobID = try journal.maxJobID() + 1
        nextLease = UInt64.random(in: 1..<(1 << 62))
        clock = now
        startedAt = now
        for b in try journal.batchCounts() {
            let tally = BatchTally()
            for (st, n) in b.counts { tally.counts[Int(st.rawValue)] = n }
            batchCounts[b.batch] = tally
        }
        try recover(now: now)
    }

    func recover(now: UInt64) throws {
        let active = try journal.activeJobs()
        for j in active {
            guard let route = try? resolveRoute(j.route) else {
                try journal.finish(job: j.id, status: .failed, body: [], error: "Its route names a stage this broker no longer serves.")
                let t = tally(j.batch)  // counted as active when the counts were read
                t.counts[0] -= 1
                t.counts[Int(JobStatus.failed.rawValue)] += 1
                continue
            }
            let job = Job(id: j.id, key: j.key, batch: j.batch, route: route, priority: j.priority, deadlineMs: j.deadlineMs,
                          params: j.params, input: j.stage == 0 && j.output.isEmpty ? j.data : j.output, position: j.stage)
            job.tally = tally(j.batch)
            admit(job)
        }
        if !active.isEmpty {
            logger.info("recovered active jobs from the journal", metadata: ["jobs": "\(active.count)"])
        }
    }

    /// The counts of a batch, made on its first job.
    func tally(_ batch: String) -> BatchTally {
        if let t = batchCounts[batch] { return t }
        let t = BatchTally()
        batchCounts[batch] = t
        return t
    }

    func resolveRoute(_ names: [String]) throws -> [Int] {
        guard !names.isEmpty else { throw HumeError(.badRequest, "The route is empty; name at least one stage.") }
        guard names.count <= 16 else { throw HumeError(.badRequest, "A route may have at most 16 stages; this one has \(names.count).") }
        return try names.map { name in
            guard let i = stageIndex[name] else {
                throw HumeError(.unknown, "Unknown stage \"\(name.prefix(40))\"; this broker serves: \(config.stages.joined(separator: ", ")).")
            }
            return i
        }
    }

    /// Puts a job into its current stage's queue (new, recovered, or retried).
    func admit(_ job: Job) {
        jobs[job.id] = job
        stages[job.stage].arrived += 1
        stages[job.stage].occupancy += 1
        stages[job.stage].bytes += job.bytes
        if job.deadlineMs > 0 { deadlines.push(job.deadlineMs, job.id) }
        enqueue(job)
    }

    func enqueue(_ job: Job) {
        seq += 1
        job.seq = seq
        job.state = .queued
        stages[job.stage].queue.pushBack((seq, job), priority: job.priority)
        stages[job.stage].queued += 1
    }

    // MARK: Events

    /// Handles one message from a peer; every problem is answered with an `ERROR` to that peer, never thrown,
    /// except journal failures, which stop the broker (its journal is then the truth to recover from).
    public func handle(_ endpoint: Endpoint, peer: [UInt8], frames: ArraySlice<[UInt8]>, now: UInt64) throws {
        clock = max(clock, now)
        let message: Message
        do {
            message = try Message.decode(frames)
        } catch let e as HumeError {
            badMessages += 1
            logger.warning("refused a malformed message", metadata: ["endpoint": "\(endpoint)", "error": "\(e.message)"])
            reply(endpoint, peer, error: e, req: nil)
            return
        }
        let req = message.header["req"]
        do {
            switch (endpoint, message.command) {
            case (.clients, .submit): try submit(peer, message, now: now)
            case (.clients, .cancel), (.control, .cancel): try cancel(endpoint, peer, message)
            case (.clients, .lookup), (.control, .lookup): try lookup(endpoint, peer, message)
            case (_, .status): reply(endpoint, peer, Message(.status, header: try status(req: req)))
            case (.workers, .ready): try ready(peer, message, now: now)
            case (.workers, .done): try done(peer, message, now: now)
            case (.workers, .heartbeat): heartbeat(peer, message, now: now)
            case (.workers, .drain): drain(peer)
            case (.workers, .disconnect): try removeWorker(peer, now: now, reason: "it disconnected")
            case (.control, .supervise):
                supervisor = peer
                supervisorSeenMs = now
                if let f = message.header["fleet"] { fleet = f }
                reply(.control, peer, Message(.supervise, header: .object(["req": req ?? .null, "ok": .bool(true)])))
            case (.control, .scale): try scale(peer, message, now: now)
            default:
                throw HumeError(.unknown, "Command \(message.command.rawValue) is not accepted on the \(endpoint) endpoint.")
            }
        } catch let e as HumeError where e.code != .journal {
            badMessages += 1
            logger.warning("refused a request", metadata: ["endpoint": "\(endpoint)", "command": "\(message.command.rawValue)",
                                                           "error": "\(e.message)"])
            reply(endpoint, peer, error: e, req: req)
        }
    }

    func reply(_ endpoint: Endpoint, _ peer: [UInt8], _ message: Message) {
        outgoing.append(Outgoing(endpoint: endpoint, peer: peer, message: message))
    }

    /// The state of a client connection, made on first use.
    func client(_ peer: [UInt8]) -> Client {
        if let c = clients[peer] { return c }
        let c = Client(peer: peer)
        clients[peer] = c
        return c
    }

    /// Queues a RESULT record for a client.
    func result(to c: Client, jobID: UInt64, status: JobStatus, key: String, body: [UInt8]) {
        if !c.hasOutput { clientsWithOutput.append(c) }
        c.results.append(size: ResultRecord.size(key: key, body: body)) {
            ResultRecord.write(to: &$0, jobID: jobID, status: status, key: key, body: body)
        }
    }

    func reply(_ endpoint: Endpoint, _ peer: [UInt8], error: HumeError, req: JSON?) {
        reply(endpoint, peer, Message(.error, header: .object(["req": req ?? .null, "code": .string(error.code.rawValue),
                                                                "message": .string(error.message)])))
    }

    // MARK: Clients

    func submit(_ peer: [UInt8], _ m: Message, now: UInt64) throws {
        let req = m.header["req"] ?? .null
        guard let batch = m.header["batch"]?.string, !batch.isEmpty, batch.utf8.count <= 200 else {
            throw HumeError(.badRequest, "SUBMIT needs a header field \"batch\": a non-empty string of at most 200 bytes.")
        }
        guard let routeNames = m.header["route"]?.array?.compactMap(\.string), routeNames.count == m.header["route"]?.array?.count else {
            throw HumeError(.badRequest, "SUBMIT needs a header field \"route\": an array of stage names.")
        }
        let route = try resolveRoute(routeNames)
        guard m.records.count <= config.maxJobsPerSubmit else {
            throw HumeError(.tooLarge, "A SUBMIT may carry at most \(config.maxJobsPerSubmit) jobs; this one has \(m.records.count).")
        }
        let wantsProgress = m.header["progress"]?.bool ?? false
        // Decode everything first: a bad record refuses the whole message, so nothing is half-accepted.
        var specs: [JobSpec] = []
        specs.reserveCapacity(m.records.count)
        var bytes = 0
        for (i, r) in m.records.enumerated() {
            let s = try JobSpec.decode(r, index: i, maxBytes: config.maxBlobBytes)
            bytes += s.data.count + s.params.count
            specs.append(s)
        }
        // Intake control: the client's window and the first stage's capacity, all or nothing.
        let client = self.client(peer)
        client.lastSeen = now
        let first = route[0]
        let st = stages[first]
        // Per-connection rate: while the bucket is in debt, the connection waits for it to refill.
        if config.clientRate > 0 {
            client.refill(rate: config.clientRate, now: now)
            if let t = client.tokens, t <= 0 {
                let wait = Int((-t + 1) / config.clientRate * 1000) + 1
                reply(.clients, peer, Message(.busy, header: .object([
                    "req": req, "retry_after_ms": JSON(wait),
                    "reason": .string("this connection is limited to \(Int(config.clientRate)) jobs/s and has used its share"),
                    "window": JSON(config.clientWindow), "outstanding": JSON(client.outstanding),
                ])))
                return
            }
        }
        // A SUBMIT bigger than the window or the first stage's whole capacity could never be taken: BUSY would have
        // the client wait forever, so it is refused with what would fit.
        if specs.count > config.clientWindow || specs.count > config.queueCapacity || bytes > config.queueBytes {
            throw HumeError(.tooLarge, "This SUBMIT carries \(specs.count) jobs and \(bytes) bytes; one SUBMIT can never hold more than \(min(config.clientWindow, config.queueCapacity)) jobs (the window and stage \(st.name)'s capacity) or \(config.queueBytes) bytes: send fewer jobs per SUBMIT.")
        }
        let roomWindow = config.clientWindow - client.outstanding
        let roomQueue = config.queueCapacity - st.occupancy - st.reserved
        let roomBytes = config.queueBytes - st.bytes
        if specs.count > roomWindow || specs.count > roomQueue || bytes > roomBytes {
            let reason = specs.count > roomWindow
                ? "this connection has \(client.outstanding) unfinished jobs and a window of \(config.clientWindow)"
                : "stage \(st.name) is full (\(st.occupancy) of \(config.queueCapacity) jobs, \(st.bytes) of \(config.queueBytes) bytes)"
            reply(.clients, peer, Message(.busy, header: .object([
                "req": req, "retry_after_ms": JSON(Int(config.heartbeatMs / 4)), "reason": .string(reason),
                "window": JSON(config.clientWindow), "outstanding": JSON(client.outstanding),
            ])))
            return
        }
        var acks = RecordBuffer()
        var accepted = 0, duplicates = 0
        let batchTally = tally(batch)
        // Ids are handed out before the journal says which keys are new: a duplicate leaves a gap (ids only increase).
        var rows: [JournalJob] = []
        rows.reserveCapacity(specs.count)
        for (i, s) in specs.enumerated() {
            rows.append(JournalJob(id: nextJobID + UInt64(i), key: s.key.isEmpty ? s.derivedKey(batch: batch, routeNames: routeNames) : s.key,
                                   batch: batch, route: routeNames, priority: s.priority, deadlineMs: s.deadlineMs,
                                   params: s.params, data: s.data))
        }
        let outcomes = try journal.insert(rows)
        nextJobID += UInt64(rows.count)
        for (i, s) in specs.enumerated() {
            let id = rows[i].id, key = rows[i].key
            switch outcomes[i] {
            case .inserted:
                accepted += 1
                submitted += 1
                let job = Job(id: id, key: key, batch: batch, route: route, priority: s.priority, deadlineMs: s.deadlineMs,
                              params: s.params, input: s.data, position: 0)
                job.owner = client
                job.progress = wantsProgress
                job.acceptedAt = now
                client.outstanding += 1
                job.tally = batchTally
                batchTally.counts[0] += 1
                admit(job)
                acks.append(size: AckRecord.size) { AckRecord(jobID: id, duplicate: false).write(to: &$0) }
            case .existing(let old):
                duplicates += 1
                acks.append(size: AckRecord.size) { AckRecord(jobID: old.id, duplicate: true).write(to: &$0) }
                if old.status != .active {
                    // Already finished: answer now from the journal, so a re-run resumes without a second run.
                    let body = old.status == .done ? old.output : Array(old.error.utf8)
                    result(to: client, jobID: old.id, status: old.status, key: old.key, body: body)
                } else if let job = jobs[old.id] {
                    // Still running: its result now goes to this connection.
                    if let prev = job.owner, prev !== client { prev.outstanding -= 1 }
                    if job.owner !== client { client.outstanding += 1 }
                    job.owner = client
                    job.progress = job.progress || wantsProgress
                }
            }
        }
        if config.clientRate > 0 { client.tokens = (client.tokens ?? config.clientRate) - Double(specs.count) }
        outgoing.append(Outgoing(endpoint: .clients, peer: peer, command: .ack, header: .object([
            "req": req, "accepted": JSON(accepted), "duplicates": JSON(duplicates),
            "window": JSON(config.clientWindow), "outstanding": JSON(client.outstanding),
        ]), records: acks))
    }

    /// The most ids one LOOKUP may ask for: its reply carries whole results, up to 32 MiB each.
    public static let lookupLimit = 100

    /// Answers what became of jobs by id: active ones from memory, the rest from the journal (one indexed read each).
    func lookup(_ endpoint: Endpoint, _ peer: [UInt8], _ m: Message) throws {
        let req = m.header["req"] ?? .null
        guard let list = m.header["jobs"]?.array, !list.isEmpty else {
            throw HumeError(.badRequest, "LOOKUP needs a header field \"jobs\": an array of 1 to \(Self.lookupLimit) job ids.")
        }
        guard list.count <= Self.lookupLimit else {
            throw HumeError(.tooLarge, "LOOKUP asks for \(list.count) jobs; at most \(Self.lookupLimit) fit in one reply.")
        }
        var records: [[UInt8]] = []
        for v in list {
            guard let i = v.int, i > 0 else { throw HumeError(.badRequest, "LOOKUP \"jobs\" must be an array of positive job ids.") }
            let id = UInt64(i)
            if let job = jobs[id] {
                records.append(JobRecord(jobID: id, status: JobStatus.active.rawValue, stage: UInt8(clamping: job.position),
                                         stages: UInt8(clamping: job.route.count), key: job.key, batch: job.batch, body: []).encode())
            } else if let old = try journal.job(id: id) {
                let finished = old.status != .active
                let body = !finished ? [] : old.status == .done ? old.output : Array(old.error.utf8)
                records.append(JobRecord(jobID: id, status: old.status.rawValue,
                                         stage: UInt8(clamping: finished && old.status == .done ? old.route.count : old.stage),
                                         stages: UInt8(clamping: old.route.count), key: old.key, batch: old.batch, body: body).encode())
            } else {
                records.append(JobRecord.unknown(id).encode())
            }
        }
        reply(endpoint, peer, Message(.lookup, header: .object(["req": req]), records: records))
    }

    func cancel(_ endpoint: Endpoint, _ peer: [UInt8], _ m: Message) throws {
        let req = m.header["req"] ?? .null
        var ids: [UInt64] = []
        if let list = m.header["jobs"]?.array {
            for v in list {
                guard let i = v.int, i > 0 else { throw HumeError(.badRequest, "CANCEL \"jobs\" must be an array of positive job ids.") }
                ids.append(UInt64(i))
            }
        } else if let batch = m.header["batch"]?.string {
            // Every active job is in memory (the journal's are loaded at start), so no query is needed.
            ids = jobs.values.filter { $0.batch == batch }.map(\.id).sorted()
        } else {
            throw HumeError(.badRequest, "CANCEL needs a header field \"jobs\" (an array of job ids) or \"batch\" (a batch name).")
        }
        var cancelled = 0
        for id in ids {
            guard let job = jobs[id] else { continue }
            try end(job, status: .cancelled, body: [], error: "Cancelled at the client's request.")
            cancelled += 1
        }
        reply(endpoint, peer, Message(.cancel, header: .object(["req": req, "cancelled": JSON(cancelled)])))
    }

    // MARK: Workers

    func ready(_ peer: [UInt8], _ m: Message, now: UInt64) throws {
        guard let stageName = m.header["stage"]?.string else {
            throw HumeError(.badRequest, "READY needs a header field \"stage\" naming the stage this worker serves.")
        }
        guard let stage = stageIndex[stageName] else {
            throw HumeError(.unknown, "Unknown stage \"\(stageName.prefix(40))\"; this broker serves: \(config.stages.joined(separator: ", ")).")
        }
        guard let credit = m.header["credit"]?.int, credit >= 0, credit <= 100_000 else {
            throw HumeError(.badRequest, "READY needs a header field \"credit\": the worker's free slots, 0 to 100000.")
        }
        let capacity = max(m.header["capacity"]?.int ?? credit, credit)
        if workers[peer] != nil { try removeWorker(peer, now: now, reason: "it announced itself again") }
        let w = Worker(peer: peer, stage: stage, name: m.header["name"]?.string ?? "worker", credit: credit, capacity: capacity, now: now)
        workers[peer] = w
        stages[stage].workers.append(peer)
        logger.info("worker joined", metadata: ["stage": "\(stageName)", "worker": "\(w.name)", "credit": "\(credit)"])
        reply(.workers, peer, Message(.welcome, header: .object([
            "heartbeat_ms": JSON(Int(config.heartbeatMs)), "timeout_ms": JSON(Int(config.workerTimeoutMs)),
        ])))
    }

    func heartbeat(_ peer: [UInt8], _ m: Message, now: UInt64) {
        guard let w = workers[peer] else {
            refuseUnknownWorker(peer)
            return
        }
        w.lastSeen = now
        if let stats = m.header["stats"] { w.stats = stats }
        if let f = WorkerFigures(m.header) { w.figures = f }
        reply(.workers, peer, Message(.heartbeat))
    }

    /// The ERROR a worker gets when the broker does not know it (after a broker restart, or before READY); counted in
    /// `bad_messages` like every other ERROR (PROTOCOL.md 3).
    func refuseUnknownWorker(_ peer: [UInt8]) {
        badMessages += 1
        reply(.workers, peer, error: HumeError(.unknownWorker, "This broker does not know the worker; send READY again."), req: nil)
    }

    func drain(_ peer: [UInt8]) {
        // A worker the broker does not know (a broker restart, or no READY yet) holds nothing the broker counts: it
        // may stop at once. Silence would leave a draining worker waiting for a reply that never comes.
        guard let w = workers[peer] else {
            reply(.workers, peer, Message(.drain, header: .object(["leases": JSON(0)])))
            return
        }
        w.draining = true
        w.credit = 0
        logger.info("worker draining", metadata: ["worker": "\(w.name)", "leases": "\(w.leaseCount)"])
        // The reply follows every TASK already sent to this worker on the same connection, so once the worker has
        // it, it holds everything the broker thinks it holds (PROTOCOL.md 4.2).
        reply(.workers, peer, Message(.drain, header: .object(["leases": JSON(w.leaseCount)])))
    }

    func done(_ peer: [UInt8], _ m: Message, now: UInt64) throws {
        guard let w = workers[peer] else {
            refuseUnknownWorker(peer)
            return
        }
        w.lastSeen = now
        for (i, r) in m.records.enumerated() {
            let d: DoneRecord
            do {
                d = try DoneRecord.decode(r, index: i, maxBytes: config.maxBlobBytes)
            } catch let e as HumeError {
                badMessages += 1
                reply(.workers, peer, error: e, req: nil)
                // A record that names one of this worker's leases ends that task as a retryable failure, which frees
                // its slot. One whose lease cannot be read frees nothing: the broker cannot tell which task ended, and
                // giving the slot back while the task stays leased would send the worker more than it has room for
                // (PROTOCOL.md 6).
                var reader = ByteReader(r, what: "DONE record", index: i)
                guard let lease = try? reader.u64("lease"), let job = leaseTable[lease], job.worker === w,
                      job.state == .leased, job.lease == lease else { continue }
                if !w.draining { w.credit = min(w.credit + 1, w.capacity) }
                leaseTable.removeValue(forKey: lease)
                release(job)
                stages[job.stage].failures += 1
                try retryOrBury(job, error: "The worker's DONE record was malformed: \(e.message)", now: now)
                continue
            }
            if !w.draining { w.credit = min(w.credit + 1, w.capacity) }
            // A lease this worker no longer holds (revoked, expired, or another worker's) is discarded.
            guard let job = leaseTable[d.lease], job.worker === w, job.state == .leased, job.lease == d.lease else { continue }
            leaseTable.removeValue(forKey: d.lease)
            let started = job.leasedAt
            release(job)
            let stage = job.stage
            stages[stage].serviceMsTotal += Double(now - started)
            stages[stage].service.observe(ms: Double(now - started))
            switch d.outcome {
            case .ok:
                w.done += 1
                try complete(job, output: d.body)
            case .permanent:
                stages[stage].failures += 1
                let msg = String(decoding: d.body.prefix(2000), as: UTF8.self)
                try journal.recordFailure(job: job.id, stage: stages[stage].name, attempt: job.attempts + 1, error: msg)
                try end(job, status: .failed, body: [], error: "Stage \(stages[stage].name) refused the job: \(msg)")
            case .retryable:
                stages[stage].failures += 1
                try retryOrBury(job, error: String(decoding: d.body.prefix(2000), as: UTF8.self), now: now)
            }
        }
    }

    func complete(_ job: Job, output: [UInt8]) throws {
        let stage = job.stage
        if output.first == 0x48, let image = RecentImage(job: job.id, key: job.key, stage: stages[stage].name, body: output) {
            recentImages.append(image)
            if recentImages.count > BrokerCore.recentImageCount { recentImages.removeFirst() }
        }
        stages[stage].completed += 1
        stages[stage].occupancy -= 1
        stages[stage].bytes -= job.bytes
        if let next = job.nextStage {
            stages[next].reserved -= 1
            job.position += 1
            job.attempts = 0
            job.input = output
            try journal.advance(job: job.id, stage: job.position, output: output)
            stages[next].arrived += 1
            stages[next].occupancy += 1
            stages[next].bytes += job.bytes
            enqueue(job)
            if job.progress, let owner = job.owner {
                if !owner.hasOutput { clientsWithOutput.append(owner) }
                owner.progress.append(size: 10) { w in
                    w.u64(job.id); w.u8(UInt8(job.position)); w.u8(UInt8(job.route.count))
                }
            }
        } else {
            job.state = .queued  // detached from the stage counters already
            try finishDetached(job, status: .done, body: output, error: "")
        }
    }

    func retryOrBury(_ job: Job, error: String, now: UInt64) throws {
        let stage = job.stage
        job.attempts += 1
        try journal.recordFailure(job: job.id, stage: stages[stage].name, attempt: job.attempts, error: error)
        if let next = job.nextStage { stages[next].reserved -= 1 }
        if job.attempts >= config.maxAttempts {
            stages[stage].deadLetters += 1
            logger.warning("job dead-lettered", metadata: ["job.id": "\(job.id)", "stage": "\(stages[stage].name)", "error": "\(error)"])
            stages[stage].occupancy -= 1
            stages[stage].bytes -= job.bytes
            job.state = .queued
            try finishDetached(job, status: .dead, body: [],
                               error: "Stage \(stages[stage].name) failed \(job.attempts) times; last error: \(error)")
            return
        }
        stages[stage].retries += 1
        let delay = min(config.retryBaseMs << UInt64(min(job.attempts - 1, 30)), config.retryMaxMs)
        job.state = .backoff
        backoff.push(now + delay, job.id)
    }

    /// Ends a job that still holds its place at its stage (queued, backing off or leased).
    func end(_ job: Job, status: JobStatus, body: [UInt8], error: String) throws {
        let stage = job.stage
        switch job.state {
        case .queued: stages[stage].queued -= 1  // its queue entry is skipped lazily
        case .leased:
            if let next = job.nextStage { stages[next].reserved -= 1 }
            leaseTable.removeValue(forKey: job.lease)
            release(job)
        case .backoff: break
        }
        stages[stage].occupancy -= 1
        stages[stage].bytes -= job.bytes
        try finishDetached(job, status: status, body: body, error: error)
    }
    /// Journals the end of a job that no longer counts at any stage, and tells its owner.
    func finishDetached(_ job: Job, status: JobStatus, body: [UInt8], error: String) throws {
        // A job recovered from the journal (acceptedAt 0) may hold an output from before the restart.
        try journal.finish(job: job.id, status: status, body: body, error: error, advanced: job.position > 0 || job.acceptedAt == 0)
        // In place: copying the row out and back would allocate for every finished job.
        if let t = job.tally {
            t.counts[0] -= 1
            t.counts[Int(status.rawValue)] += 1
        }
        if status == .done && job.acceptedAt > 0 && clock >= job.acceptedAt {
            jobDuration.observe(ms: Double(clock - job.acceptedAt))
        }
        jobs[job.id] = nil
        job.live = false
        job.state = .queued
        job.lease = 0
        finishedCounts[Int(status.rawValue)] += 1
        if let owner = job.owner {
            owner.outstanding -= 1
            result(to: owner, jobID: job.id, status: status, key: job.key, body: status == .done ? body : Array(error.utf8))
            job.owner = nil
        }
    }

    /// Detaches a leased job from the worker holding it (the lease table entry is the caller's).
    func release(_ job: Job) {
        job.worker?.leaseCount -= 1
        job.worker = nil
    }

    func removeWorker(_ peer: [UInt8], now: UInt64, reason: String) throws {
        guard let w = workers.removeValue(forKey: peer) else { return }
        stages[w.stage].workers.removeAll { $0 == peer }
        if w.leaseCount > 0 {
            logger.warning("worker lost; requeueing its leases", metadata: ["worker": "\(w.name)", "leases": "\(w.leaseCount)",
                                                                           "reason": "\(reason)"])
        } else {
            logger.info("worker left", metadata: ["worker": "\(w.name)", "reason": "\(reason)"])
        }
        // Its jobs in lease order (the order they were handed out), found through the lease table.
        let held = leaseTable.values.filter { $0.worker === w }.sorted { $0.lease < $1.lease }
        for job in held {
            leaseTable.removeValue(forKey: job.lease)
            release(job)
            try retryOrBury(job, error: "The worker \(w.name) went away (\(reason)) while running it.", now: now)
        }
    }

    // MARK: Time

    /// Expires silent workers, moves retries whose back-off ended back into their queues, and ends jobs past their
    /// deadline.
    public func tick(now: UInt64) throws {
        clock = max(clock, now)
        while let top = backoff.min, top.key <= now {
            backoff.pop()
            if let job = jobs[top.value], job.state == .backoff { enqueue(job) }
        }
        while let top = deadlines.min, top.key <= now {
            deadlines.pop()
            if let job = jobs[top.value], job.deadlineMs > 0, job.deadlineMs <= now {
                try end(job, status: .expired, body: [], error: "Its deadline passed before it finished.")
            }
        }
        if now >= lastWorkerScan + 100 {
            lastWorkerScan = now
            let silent = workers.values.filter { now > $0.lastSeen + config.workerTimeoutMs }.map(\.peer)
            for p in silent { try removeWorker(p, now: now, reason: "no heartbeat for \(config.workerTimeoutMs) ms") }
            clients = clients.filter { $0.value.outstanding > 0 || now < $0.value.lastSeen + 600_000 }
        }
        if let keep = config.keepEndedMs, moreToForget || now >= lastForget + 1_000 {
            lastForget = now
            try forgetEnded(before: now > keep ? now - keep : 0)
        }
    }

    /// Forgets up to `forgetPerRound` jobs that ended before `cutoff` and takes them out of their batches' counts; a
    /// batch with no job left is no longer listed.
    func forgetEnded(before cutoff: UInt64) throws {
        let gone = try journal.forget(endedBefore: cutoff, limit: config.forgetPerRound)
        var n = 0
        for b in gone {
            let t = tally(b.batch)
            for (st, k) in b.counts { t.counts[Int(st.rawValue)] -= k }
            if t.counts.allSatisfy({ $0 <= 0 }) { batchCounts[b.batch] = nil }
            n += b.total
        }
        forgotten += UInt64(n)
        moreToForget = n >= config.forgetPerRound
    }

    /// The earliest time `tick` has something to do.
    public func nextDeadline(now: UInt64) -> UInt64 {
        var t = now + 100
        if let b = backoff.minKey { t = min(t, b) }
        if let d = deadlines.minKey { t = min(t, d) }
        return t
    }

    // MARK: Dispatch

    /// Leases queued tasks to workers with credit, without overfilling any job's next stage.
    public func dispatch(now: UInt64) {
        clock = max(clock, now)
        for s in stages.indices where stages[s].queued > 0 && !stages[s].workers.isEmpty {
            dispatchStage(s, now: now)
        }
    }

    func dispatchStage(_ s: Int, now: UInt64) {
        let ws = stages[s].workers
        var progressed = true
        while progressed && stages[s].queued > 0 {
            progressed = false
            stages[s].rr &+= 1
            // A fair share per round, from the queue as the round starts, so one worker with much credit does not
            // take everything and the first worker asked does not take more than the others.
            let fairShare = (stages[s].queued + ws.count - 1) / ws.count
            for k in 0..<ws.count {
                guard stages[s].queued > 0 else { return }
                let peer = ws[(stages[s].rr + k) % ws.count]
                guard let w = workers[peer], w.credit > 0, !w.draining else { continue }
                let share = max(1, min(w.credit, fairShare))
                var given = 0
                while given < share, let job = popLive(s) {
                    if let next = job.nextStage, stages[next].occupancy + stages[next].reserved >= config.queueCapacity {
                        // The next stage is full: put the job back in its place and leave this stage be (backpressure).
                        requeueInPlace(job)
                        return
                    }
                    lease(job, to: w, now: now)
                    given += 1
                }
                if given > 0 { progressed = true }
            }
        }
    }

    func lease(_ job: Job, to w: Worker, now: UInt64) {
        if let next = job.nextStage { stages[next].reserved += 1 }
        nextLease += 1
        let lease = nextLease
        job.state = .leased
        job.lease = lease
        leaseTable[lease] = job
        job.worker = w
        job.leasedAt = now
        w.leaseCount += 1
        w.credit -= 1
        stages[job.stage].leasesGranted += 1
        if w.tasks.isEmpty { workersWithTasks.append(w) }
        w.tasks.append(size: TaskRecord.size(key: job.key, params: job.params, input: job.input)) {
            TaskRecord.write(to: &$0, lease: lease, jobID: job.id, attempt: UInt16(min(job.attempts + 1, 65535)), key: job.key,
                             params: job.params, input: job.input)
        }
    }

    /// Undoes `popLive` for a job that could not be leased: back at the front of its priority, with the same seq.
    func requeueInPlace(_ job: Job) {
        job.state = .queued
        stages[job.stage].queue.pushFront((job.seq, job), priority: job.priority)
        stages[job.stage].queued += 1
    }

    func popLive(_ s: Int) -> Job? {
        while let (seq, job) = stages[s].queue.popFirst() {
            if job.live, job.state == .queued, job.stage == s, job.seq == seq {
                stages[s].queued -= 1
                job.state = .leased
                return job
            }
        }
        return nil
    }

    // MARK: Control

    func scale(_ peer: [UInt8], _ m: Message, now: UInt64) throws {
        guard let sup = supervisor else {
            throw HumeError(.unknown, "No supervisor is attached to this broker; scaling needs a fleet started with `hume up`.")
        }
        guard now <= supervisorSeenMs + Self.supervisorSilenceMs else {
            throw HumeError(.unknown, "The supervisor has not reported for \((now - supervisorSeenMs) / 1000) s (it does every second), so nothing would scale; is `hume up` still running?")
        }
        guard let stage = m.header["stage"]?.string, stageIndex[stage] != nil else {
            throw HumeError(.badRequest, "SCALE needs a header field \"stage\" naming a stage this broker serves.")
        }
        var answer: [String: JSON] = ["req": m.header["req"] ?? .null, "ok": .bool(true), "stage": .string(stage)]
        if let lo = m.header["min"], let hi = m.header["max"] {
            guard let a = lo.int, let b = hi.int, a >= 0, a <= b, b <= 64 else {
                throw HumeError(.badRequest, "SCALE \"min\" and \"max\" must be whole numbers with 0 ≤ min ≤ max ≤ 64.")
            }
            answer["min"] = JSON(a)
            answer["max"] = JSON(b)
        } else {
            guard let n = m.header["replicas"]?.int, n >= 0, n <= 64 else {
                throw HumeError(.badRequest, "SCALE needs a header field \"replicas\" (0 to 64), or \"min\" and \"max\" to autoscale.")
            }
            answer["replicas"] = JSON(n)
        }
        var h = m.header.object ?? [:]
        h["reply_to"] = .string(peer.map { String(format2: $0) }.joined())
        reply(.control, sup, Message(.scale, header: .object(h)))
        reply(.control, peer, Message(.scale, header: .object(answer)))
    }

    /// A JSON snapshot of stages, workers, batches and the fleet (PROTOCOL.md 4.1, STATUS).
    public func status(req: JSON?) throws -> JSON {
        var stageList: [JSON] = []
        for s in stages {
            let ws = s.workers.compactMap { workers[$0] }
            stageList.append(.object([
                "name": .string(s.name), "queued": JSON(s.queued), "occupancy": JSON(s.occupancy),
                "in_flight": JSON(ws.reduce(0) { $0 + $1.leaseCount }), "workers": JSON(ws.count),
                "credit": JSON(ws.reduce(0) { $0 + $1.credit }), "capacity": JSON(ws.reduce(0) { $0 + $1.capacity }),
                "queue_capacity": JSON(config.queueCapacity),
                "arrived": .number(Double(s.arrived)), "leases": .number(Double(s.leasesGranted)),
                "completed": .number(Double(s.completed)),
                "retries": .number(Double(s.retries)), "dead_letters": .number(Double(s.deadLetters)),
                "failures": .number(Double(s.failures)), "bytes": JSON(s.bytes),
                "service_ms_total": .number(s.serviceMsTotal.rounded()),
                "mean_service_ms": .number(s.completed > 0 ? (s.serviceMsTotal / Double(s.completed) * 100).rounded() / 100 : 0),
            ]))
        }
        let workerList: [JSON] = workers.values.sorted { $0.name < $1.name }.map { w in
            var o: [String: JSON] = [
                "name": .string(w.name), "stage": .string(stages[w.stage].name), "credit": JSON(w.credit),
                "capacity": JSON(w.capacity), "leases": JSON(w.leaseCount), "done": .number(Double(w.done)),
                "draining": .bool(w.draining), "stats": w.stats, "age_ms": .number(Double(clock &- w.joinedAt)),
            ]
            if let f = w.figures { o.merge(f.json) { a, _ in a } }
            return .object(o)
        }
        let batches: [JSON] = batchCounts.keys.sorted().map { name in
            let row = batchCounts[name]!.counts
            var o: [String: JSON] = ["batch": .string(name), "total": JSON(row.reduce(0, +))]
            for st in JobStatus.allCases { o[st.name] = JSON(row[Int(st.rawValue)]) }
            return .object(o)
        }
        var fin: [String: JSON] = [:]
        for st in JobStatus.allCases where st != .active { fin[st.name] = .number(Double(finishedCounts[Int(st.rawValue)])) }
        return .object(["req": req ?? .null, "stages": .array(stageList), "workers": .array(workerList),
                        "batches": .array(batches), "submitted": .number(Double(submitted)), "finished": .object(fin),
                        "active_jobs": JSON(jobs.count), "bad_messages": .number(Double(badMessages)),
                        "forgotten": .number(Double(forgotten)),
                        "keep_ended_ms": config.keepEndedMs.map { .number(Double($0)) } ?? .null,
                        "uptime_ms": .number(Double(clock &- startedAt)), "now_ms": .number(Double(clock)),
                        "fleet": fleet])
    }

    // MARK: Outbox

    /// One loop round: opens the journal's transaction, lets `feed` hand in events, expires and requeues what is due,
    /// dispatches, commits, and only then returns what to send. The socket loop, `hume bench core` and the tests all
    /// run rounds through here.
    public func round(now: UInt64, _ feed: () throws -> Void) throws -> [Outgoing] {
        journal.now = now
        try journal.begin()
        try feed()
        try tick(now: now)
        dispatch(now: now)
        try journal.commit()
        return takeOutgoing()
    }

    /// Everything to send after the journal committed, with tasks and results coalesced per peer.
    public func takeOutgoing() -> [Outgoing] {
        var out = outgoing
        outgoing.removeAll(keepingCapacity: true)
        for w in workersWithTasks {
            out.append(Outgoing(endpoint: .workers, peer: w.peer, command: .task, records: w.tasks))
            w.tasks.removeAll()
        }
        workersWithTasks.removeAll(keepingCapacity: true)
        for c in clientsWithOutput where !c.progress.isEmpty {
            out.append(Outgoing(endpoint: .clients, peer: c.peer, command: .progress, records: c.progress))
            c.progress.removeAll()
        }
        for c in clientsWithOutput where !c.results.isEmpty {
            out.append(Outgoing(endpoint: .clients, peer: c.peer, command: .result, records: c.results))
            c.results.removeAll()
        }
        clientsWithOutput.removeAll(keepingCapacity: true)
        return out
    }

    /// Jobs held in memory (bounded by the stage capacities).
    public var activeJobCount: Int { jobs.count }
}

extension String {
    init(format2 byte: UInt8) {
        let h = String(byte, radix: 16)
        self = byte < 16 ? "0" + h : h
    }
}
