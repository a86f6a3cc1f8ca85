import Foundation
import GRDB
import HumeCore
import Logging

/// `hume bench core`: the broker's own work per job — decoding, the state machine, the SQLite journal and encoding
/// the replies — in one process with no sockets, so that the CPU it takes can be compared between builds without
/// the noise of a client and workers sharing the machine. A simulated client keeps `window` jobs in flight in
/// SUBMITs of `chunk`; a simulated worker per stage answers every TASK record with a DONE record in the next round.
/// Only the broker's calls are timed (thread CPU time), exactly the calls the socket loop makes each round.
public struct CoreBench {
    public var stages = 1
    public var tasks = 200_000
    public var chunk = 1000
    public var window = 10_000
    public var workerCredit = 8192
    public var payloadBytes = 16
    /// DONE records per message (a worker's batch; smaller than the noop stage's 1024, so per-message costs count).
    public var doneBatch = 256
    /// Then also time forgetting every ended job (`BrokerConfig.keepEndedMs`), with the clock moved past the limit.
    public var forget = false

    public init() {}

    static func threadCPUNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// One round of the socket loop without the sockets. Not inlined, so that a profiler (e.g.
    /// `valgrind --tool=callgrind --toggle-collect='*brokerRound*'`) can count it alone; `feed` is written by the
    /// caller, so no closure's name matches that pattern too (callgrind would toggle counting off inside it).
    @inline(never)
    static func brokerRound(core: BrokerCore, now: UInt64, feed: () throws -> Void) throws -> [Outgoing] {
        try core.round(now: now, feed)
    }

    /// Runs one measurement on a fresh journal in `directory`; returns the broker's CPU per finished job (µs).
    public func run(directory: String) throws -> JSON {
        let path = directory + "/core-bench-\(UInt32.random(in: 0...UInt32.max)).sqlite"
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        var config = BrokerConfig()
        config.clientWindow = window
        let queue = try SQLiteJournal.openQueue(path: path, sync: .normal)
        return try queue.inDatabase { db in
            let journal = try SQLiteJournal(db)
            try journal.begin()
            var logger = Logger(label: "hume.bench.core")
            logger.logLevel = .warning
            let core = try BrokerCore(config: config, journal: journal, now: wallMillis(), logger: logger)
            try journal.commit()
            let client: [UInt8] = [0, 0, 0, 0, 1]
            let route = (1...stages).map { "noop\($0)" }
            let workerPeers = (0..<stages).map { [0, 0, 0, 1, UInt8($0)] as [UInt8] }
            // Workers join outside the timed part.
            _ = try core.round(now: wallMillis()) {
                for (s, peer) in workerPeers.enumerated() {
                    let ready = Message(.ready, header: .object(["stage": .string(route[s]), "credit": JSON(workerCredit)]))
                    try core.handle(.workers, peer: peer, frames: ready.frames()[...], now: wallMillis())
                }
            }

            let runID = UInt64.random(in: 0...UInt64.max)
            let payload = [UInt8](repeating: 0x61, count: payloadBytes)
            let header = JSON.object(["batch": .string("core-\(runID)"), "route": .array(route.map(JSON.string))]).bytes
            var nextJob = 0, outstanding = 0, finished = 0, rounds = 0
            var inbox: [(Endpoint, [UInt8], [[UInt8]])] = []
            var cpu: UInt64 = 0
            let wallStart = DispatchTime.now().uptimeNanoseconds
            while finished < tasks {
                // The client: one SUBMIT per round while its window has room.
                if nextJob < tasks && outstanding + chunk <= window {
                    let n = min(chunk, tasks - nextJob)
                    var frames: [[UInt8]] = [Wire.signature, Array("SUBMIT".utf8), header]
                    for i in nextJob..<(nextJob + n) {
                        frames.append(JobSpec(key: "core-\(runID)-\(i)", data: payload).encode())
                    }
                    inbox.append((.clients, client, frames))
                    nextJob += n
                    outstanding += n
                }
                guard !inbox.isEmpty else {
                    throw HumeError(.system, "The core benchmark stalled: no message to feed with \(finished) of \(tasks) jobs finished.")
                }
                // The broker's round, as BrokerServer.loop runs it.
                let t0 = Self.threadCPUNanos()
                let now = wallMillis()
                let sent = try Self.brokerRound(core: core, now: now) {
                    for (endpoint, peer, frames) in inbox { try core.handle(endpoint, peer: peer, frames: frames[...], now: now) }
                }
                cpu += Self.threadCPUNanos() - t0
                rounds += 1
                inbox.removeAll(keepingCapacity: true)
                // The workers and the client read what was sent.
                for out in sent {
                    switch out.command {
                    case .task:
                        // DONE in messages of `doneBatch` records, as a worker answers its batches.
                        let head: [[UInt8]] = [Wire.signature, Array("DONE".utf8), Array("{}".utf8)]
                        var done = head
                        for r in out.records.arrays {
                            let t = try TaskRecord.decode(r)
                            done.append(DoneRecord(lease: t.lease, outcome: .ok, body: t.input).encode())
                            if done.count - 3 == doneBatch {
                                inbox.append((.workers, out.peer, done))
                                done = head
                            }
                        }
                        if done.count > 3 { inbox.append((.workers, out.peer, done)) }
                    case .result:
                        finished += out.records.count
                        outstanding -= out.records.count
                    case .ack, .welcome, .heartbeat, .progress:
                        break
                    default:
                        throw HumeError(.system, "The core benchmark got \(out.command.rawValue): \(out.header.serialized)")
                    }
                }
            }
            let wall = Double(DispatchTime.now().uptimeNanoseconds - wallStart) / 1e9
            var out: [String: JSON] = [
                "stages": JSON(stages), "tasks": JSON(tasks), "chunk": JSON(chunk), "rounds": JSON(rounds),
                "broker_cpu_us_per_job": .number((Double(cpu) / 1000 / Double(tasks) * 100).rounded() / 100),
                "elapsed_s": .number((wall * 1000).rounded() / 1000),
            ]
            if forget {
                // Empty rounds a second apart, past the limit, until every ended job but the newest is forgotten.
                let later = wallMillis() + (config.keepEndedMs ?? 0) + 1_000
                var forgetCPU: UInt64 = 0, longest: UInt64 = 0, forgetRounds: UInt64 = 0
                while core.forgotten < UInt64(tasks - 1) {
                    guard forgetRounds < UInt64(tasks) else {
                        throw HumeError(.system, "The core benchmark forgot \(core.forgotten) of \(tasks - 1) jobs and then stopped.")
                    }
                    let t0 = Self.threadCPUNanos()
                    _ = try Self.brokerRound(core: core, now: later + forgetRounds * 1_000) {}
                    let d = Self.threadCPUNanos() - t0
                    forgetCPU += d
                    longest = max(longest, d)
                    forgetRounds += 1
                }
                out["forget_cpu_us_per_job"] = .number((Double(forgetCPU) / 1000 / Double(tasks - 1) * 100).rounded() / 100)
                out["forget_round_ms_max"] = .number((Double(longest) / 1e6 * 100).rounded() / 100)
                out["forget_rounds"] = JSON(Int(forgetRounds))
            }
            return .object(out)
        }
    }
}
