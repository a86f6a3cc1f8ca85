import CZeroMQ
import Foundation
import HumeCore
import HumeStages
import HumeTransport
import Logging

/// Hands tasks from the I/O thread to executor threads and outcomes back. Guarded by one condition variable.
final class WorkBoard: @unchecked Sendable {  // every field is read and written only under `cond`.
    private let cond = NSCondition()
    private var pending: [StageTask] = []
    private var finished: [DoneRecord] = []
    private var running = 0
    private var closed = false
    private var tasksDone: UInt64 = 0
    private var tasksFailed: UInt64 = 0
    private var busyNs: UInt64 = 0

    func push(_ tasks: [StageTask]) {
        cond.lock()
        pending.append(contentsOf: tasks)
        cond.broadcast()
        cond.unlock()
    }

    /// Blocks until tasks are available (up to `max`) or the board is closed (nil).
    func take(max: Int) -> [StageTask]? {
        cond.lock()
        defer { cond.unlock() }
        while pending.isEmpty && !closed { cond.wait() }
        if pending.isEmpty { return nil }
        let n = min(max, pending.count)
        let batch = Array(pending.prefix(n))
        pending.removeFirst(n)
        running += n
        return batch
    }

    /// Hands back a batch's outcomes; `busyNs` is how long the stage took to run it.
    func complete(_ records: [DoneRecord], busyNs: UInt64) {
        cond.lock()
        finished.append(contentsOf: records)
        running -= records.count
        for r in records {
            if r.outcome == .ok { tasksDone += 1 } else { tasksFailed += 1 }
        }
        self.busyNs += busyNs
        cond.unlock()
    }

    /// Tasks finished (ok, failed) and executor time spent running them, since the worker started.
    var totals: (done: UInt64, failed: UInt64, busyNs: UInt64) {
        cond.lock()
        defer { cond.unlock() }
        return (tasksDone, tasksFailed, busyNs)
    }

    func takeFinished() -> [DoneRecord] {
        cond.lock()
        defer { cond.unlock() }
        let f = finished
        finished.removeAll(keepingCapacity: true)
        return f
    }

    /// Leases held: queued, running, or finished but not yet reported.
    var held: Int {
        cond.lock()
        defer { cond.unlock() }
        return pending.count + running + finished.count
    }

    var busyLeases: Int {
        cond.lock()
        defer { cond.unlock() }
        return pending.count + running
    }

    func close() {
        cond.lock()
        closed = true
        cond.broadcast()
        cond.unlock()
    }
}

/// Runs a `Stage` against a broker: connects a DEALER, announces the stage with its credit, runs tasks on executor
/// threads, heartbeats (also while busy), re-announces itself after a broker restart, reconnects with back-off when
/// the broker falls silent, and drains on `stop` (stops taking work, finishes what it holds, reports, leaves).
public final class WorkerRuntime: @unchecked Sendable {  // `run` is called once, on one thread; other members are immutable or thread-safe.
    public let stage: any Stage
    public let endpoint: String
    public let name: String
    let logger: Logger
    /// Signal it to drain and exit (SIGTERM handler, tests).
    public let stop: WakeFD
    let resultsReady: WakeFD
    let board = WorkBoard()
    /// Extra fields a stage wants in its heartbeats (shown by `hume status`).
    public var statsProvider: (@Sendable () -> JSON)?
    /// Longest a drain waits for running tasks before leaving anyway (default 120 s).
    public var drainTimeoutMs: UInt64 = 120_000

    /// CURVE keys for the broker connection (nil: plaintext).
    let curve: CurveClientConfig?

    /// - Parameter curve: CURVE keys for the broker connection; nil for plaintext.
    public init(stage: any Stage, endpoint: String, name: String? = nil, curve: CurveClientConfig? = nil,
                logger: Logger = Logger(label: "hume.worker")) throws {
        self.curve = curve
        self.stage = stage
        self.endpoint = endpoint
        self.name = name ?? "\(stage.name)@\(ProcessInfo.processInfo.hostName):\(getpid())"
        self.logger = logger
        self.stop = try WakeFD()
        self.resultsReady = try WakeFD()
    }

    var capacity: Int { max(1, stage.batchSize) * max(1, stage.concurrency) + max(0, stage.prefetch) }

    /// Blocks until drained after `stop`. Throws only for set-up failures.
    public func run() throws {
        let executors = (0..<max(1, stage.concurrency)).map { i in
            let t = Thread { [self] in self.executorLoop() }
            t.name = "hume-\(stage.name)-\(i)"
            t.start()
            return t
        }
        _ = executors
        defer { board.close() }
        try ioLoop()
    }

    func executorLoop() {
        while let tasks = board.take(max: max(1, stage.batchSize)) {
            var records: [DoneRecord] = []
            records.reserveCapacity(tasks.count)
            let started = DispatchTime.now().uptimeNanoseconds
            func record(_ o: StageOutcome, _ lease: UInt64) -> DoneRecord {
                switch o {
                case .ok(let b): DoneRecord(lease: lease, outcome: .ok, body: b)
                case .retryable(let m): DoneRecord(lease: lease, outcome: .retryable, body: Array(m.utf8))
                case .permanent(let m): DoneRecord(lease: lease, outcome: .permanent, body: Array(m.utf8))
                }
            }
            do {
                let outcomes = try stage.run(tasks)
                for (i, t) in tasks.enumerated() {
                    records.append(record(i < outcomes.count ? outcomes[i] : .retryable("The stage returned no outcome for this task."), t.lease))
                }
            } catch {
                // One task: the error is its own, mapped as every stage maps errors. A batch: no task can be blamed, so
                // all are retried (each may land in another batch).
                let o = tasks.count == 1 ? StageOutcome(error: error) : .retryable("The stage failed: \(error)")
                records = tasks.map { record(o, $0.lease) }
            }
            board.complete(records, busyNs: DispatchTime.now().uptimeNanoseconds - started)
            resultsReady.wake()
        }
    }

    func now() -> UInt64 { UInt64(DispatchTime.now().uptimeNanoseconds / 1_000_000) }

    /// The socket loop around `WorkerConnection`: it polls the broker socket, the executors' results and the stop
    /// signal, feeds what happened to the state machine, and carries out its actions.
    func ioLoop() throws {
        let context = ZMQContext()
        var machine = WorkerConnection(stage: stage.name, workerName: name, capacity: capacity, batch: stage.batchSize)
        machine.drainTimeoutMs = drainTimeoutMs
        connection: while true {
            let socket = try ZMQSocket(context, .dealer)
            if let c = curve { try socket.makeCurveClient(c) }
            try socket.setOption(ZMQ_RECONNECT_IVL, 100)
            try socket.setOption(ZMQ_RECONNECT_IVL_MAX, 5000)
            try socket.connect(endpoint)
            var poller = ZMQPoller()
            poller.add(socket)
            let resultsIndex = poller.add(fd: resultsReady.fd)
            let stopIndex = poller.add(fd: stop.fd)

            /// Carries out actions; returns false when the loop must end (leave) and nil to reconnect.
            func perform(_ actions: [WorkerConnection.Action]) throws -> Bool? {
                for action in actions {
                    switch action {
                    case .send(let m):
                        try socket.send(m.frames(), dontWait: m.command == .heartbeat)
                    case .run(let tasks):
                        board.push(tasks)
                    case .refused(let why):
                        logger.warning("broker refused a message", metadata: ["error": "\(why)"])
                    case .reconnect(let wait):
                        logger.warning("broker silent; reconnecting", metadata: ["backoff_ms": "\(wait)"])
                        usleep(UInt32(wait * 1000))
                        return nil
                    case .leave(let drained):
                        if drained { logger.info("drained; leaving") } else {
                            logger.warning("drain timed out; leaving with tasks unfinished (the broker will requeue them)")
                        }
                        return false
                    }
                }
                return true
            }

            _ = try perform(machine.connected(now: now(), held: board.held))
            while true {
                _ = try poller.poll(timeoutMs: machine.pollTimeoutMs(now: now()))
                let n = now()
                if poller.isReadable(stopIndex) && !machine.draining {
                    stop.drain()
                    logger.info("draining: finishing held tasks, taking no more", metadata: ["held": "\(board.held)"])
                    _ = try perform(machine.stop(now: n))
                }
                if poller.isReadable(resultsIndex) { resultsReady.drain() }
                let done = board.takeFinished()
                if !done.isEmpty {
                    try socket.send(Message(.done, records: done.map { $0.encode() }).frames())
                }
                while let frames = try socket.receive(dontWait: true) {
                    machine.heard(now: n)
                    guard let m = try? Message.decode(frames[...]) else {
                        logger.warning("ignored a malformed message from the broker")
                        continue
                    }
                    _ = try perform(machine.received(m, now: n, held: board.held))
                }
                switch try perform(machine.tick(now: n, held: board.held, heartbeat: heartbeatHeader)) {
                case .none: continue connection
                case .some(false): return
                case .some(true): break
                }
            }
        }
    }

    /// A heartbeat's header: the worker's own figures (PROTOCOL.md 4.2).
    func heartbeatHeader() -> JSON {
        var stats: [String: JSON] = ["busy": JSON(board.busyLeases)]
        if let extra = statsProvider?().object { stats.merge(extra) { a, _ in a } }
        let totals = board.totals
        var header: [String: JSON] = [
            "stats": .object(stats), "tasks_done": .number(Double(totals.done)),
            "tasks_failed": .number(Double(totals.failed)), "busy_ms": .number(Double(totals.busyNs / 1_000_000)),
            "executors": JSON(max(1, stage.concurrency)),
        ]
        if let rss = residentBytes() { header["rss_bytes"] = .number(Double(rss)) }
        return .object(header)
    }
}

/// This process's resident set size in bytes, from /proc/self/statm (nil where there is no procfs).
func residentBytes() -> UInt64? {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = UInt64(fields[1]) else { return nil }
    return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
}
