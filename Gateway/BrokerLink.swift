import Foundation
import HumeClient
import HumeCore
import HumeTransport

/// The gateway's one connection to the broker's client endpoint, owned by a thread of its own.
///
/// HTTP handlers run on Hummingbird's event loops and the cooperative pool; a ZeroMQ socket is used from one thread,
/// and polling it must not block the pool (STYLE.md). So handlers queue a request here and await its reply; the link
/// thread sends it under a fresh `req`, matches the broker's reply by `req`, and resumes the handler. Every wait has a
/// deadline: a broker that does not answer gives the handler a `timeout` error, never a hang.
///
/// RESULT messages go to `onResults` (the event log) on the link thread, after any `submit(..., waitMs:)` waiting for
/// them has taken its own.
///
/// After a broker restart the jobs this gateway submitted have no owner, so their RESULTs would go nowhere: like the
/// reference clients, the link re-attaches. With jobs unfinished and nothing heard for `silenceMs`, it asks the broker
/// how many unfinished jobs it holds for this connection (a SUBMIT of no records); if fewer than the link knows of, it
/// submits their keys again (a known key is a duplicate: nothing runs twice, and the job's owner is this connection).
final class BrokerLink: @unchecked Sendable {  // mutable state below is guarded by `lock` or confined to the thread
    /// A reply to a SUBMIT, with the results of its jobs that finished while the caller waited.
    struct SubmitAnswer: Sendable {
        var reply: Message
        var results: [UInt64: ResultRecord]
    }

    typealias Continuation = CheckedContinuation<SubmitAnswer, any Error>

    private struct Outgoing {
        var message: Message
        var continuation: Continuation
        var timeoutMs: UInt64
        /// For SUBMIT: the batch (the event log names it) and how long to wait for the jobs' results after the ACK.
        var batch: String?
        var waitMs: UInt64
        /// For SUBMIT: each record's key as the broker stores it (given or derived), for re-attaching.
        var keys: [String]
    }

    /// What re-attaching to an unfinished job needs: its key, and a batch and route the broker takes.
    private struct Attachment {
        var key: String
        var batch: String
        var route: JSON
    }

    private enum Internal { case probe, reattach }

    /// One caller's request, from its arrival to its answer. Several callers' SUBMITs may travel in one message.
    private struct Pending {
        var request: Outgoing
        var deadlineMs: UInt64
        /// After the ACK: the caller's part of it, and the jobs whose results are still awaited.
        var ack: Message?
        var awaiting: Set<UInt64> = []
        var results: [UInt64: ResultRecord] = [:]
        var continuation: Continuation { request.continuation }
        var message: Message { request.message }
        var batch: String? { request.batch }
        var waitMs: UInt64 { request.waitMs }
        var keys: [String] { request.keys }
        var command: Command { request.message.command }
    }

    /// SUBMITs of small jobs with the same batch and route that arrive in one round go to the broker as one message (up
    /// to these bounds): the broker's cost is mostly per message, so under load this is most of the gateway's throughput.
    static let coalescedJobs = 1_000
    static let coalescedBytes = 4 << 20
    static let coalescibleBytes = 64 << 10

    let endpoint: String
    private let connection: BrokerConnection
    private let lock = NSLock()
    private var outbox: [Outgoing] = []
    private var wakePending = false
    private var stopped = false
    private let wakeRead: Int32
    private let wakeWrite: Int32

    // Link thread only.
    private var nextReq = 1
    private var nextCall = 1
    /// Callers' requests by call number.
    private var pending: [Int: Pending] = [:]
    /// Messages sent and not answered: req → the calls they carry, with each call's records in the message.
    private var inflight: [Int: [(call: Int, records: Range<Int>)]] = [:]
    /// Jobs waited for by a SUBMIT with `waitMs`: job id → the calls waiting.
    private var waiters: [UInt64: [Int]] = [:]
    /// Each job this gateway submitted that has no result yet: its batch (the event log names it) and what
    /// re-attaching needs.
    private var unfinished: [UInt64: Attachment] = [:]
    /// The link's own requests (the re-attach probe and resubmissions) by req.
    private var internalReqs: [Int: Internal] = [:]
    private var lastNewsMs: UInt64 = 0
    private var lastProbeMs: UInt64 = 0
    /// Nothing from the broker for this long, with jobs unfinished, starts a re-attach check.
    static let silenceMs: UInt64 = 4_000
    /// Called on the link thread with every RESULT record and its batch (when this gateway submitted it).
    private let onResults: @Sendable ([(ResultRecord, String?)]) -> Void

    init(endpoint: String, curve: CurveClientConfig?, onResults: @escaping @Sendable ([(ResultRecord, String?)]) -> Void) throws {
        self.endpoint = endpoint
        connection = try BrokerConnection(endpoint: endpoint, curve: curve)
        self.onResults = onResults
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw HumeError(.system, "hume-gateway could not make a pipe: \(String(cString: strerror(errno))).") }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        _ = fcntl(wakeRead, F_SETFL, fcntl(wakeRead, F_GETFL) | O_NONBLOCK)
        _ = fcntl(wakeWrite, F_SETFL, fcntl(wakeWrite, F_GETFL) | O_NONBLOCK)
        let thread = Thread { [self] in run() }
        thread.name = "hume-gateway-broker"
        thread.start()
    }

    /// Sends `command` and returns the broker's reply (an `ERROR` reply is returned, not thrown). For SUBMIT with
    /// `waitMs` > 0, the answer also holds the results of its jobs that finished within `waitMs` of the ACK.
    /// - Throws: `HumeError(.timeout)` when the broker does not reply within `timeoutMs`.
    func request(_ command: Command, header: [String: JSON], records: [[UInt8]] = [], keys: [String] = [],
                 timeoutMs: UInt64 = 10_000, waitMs: UInt64 = 0) async throws -> SubmitAnswer {
        // The other half of `handOver`: what the link thread wrote before resuming this caller is visible to
        // ThreadSanitizer here too.
        defer { lock.withLock {} }
        return try await withCheckedThrowingContinuation { (c: Continuation) in
            let batch = command == .submit ? header["batch"]?.string : nil
            let out = Outgoing(message: Message(command, header: .object(header), records: records), continuation: c,
                               timeoutMs: timeoutMs, batch: batch, waitMs: waitMs, keys: keys)
            lock.lock()
            let isStopped = stopped
            if !isStopped { outbox.append(out) }
            // One wake-up byte per round: the link thread takes the whole outbox when it wakes.
            let needsWake = !isStopped && !wakePending
            if needsWake { wakePending = true }
            lock.unlock()
            if isStopped {
                c.resume(throwing: HumeError(.system, "The gateway is shutting down."))
                return
            }
            if needsWake { wake() }
        }
    }

    func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
        wake()
    }

    private func wake() {
        var b: UInt8 = 1
        _ = write(wakeWrite, &b, 1)  // a full pipe already means "wake up"
    }

    private static func nowMs() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }

    // MARK: The link thread

    private func run() {
        var unsent: [(Int, Message)] = []
        while true {
            let now = Self.nowMs()
            // The next deadline bounds the poll, so a timeout is noticed within a few milliseconds of passing.
            let nextDeadline = pending.values.map { $0.deadlineMs }.min()
            let timeout = unsent.isEmpty ? Int(min(200, nextDeadline.map { $0 > now ? $0 - now : 0 } ?? 200)) : 5
            let ready = (try? connection.wait(timeoutMs: timeout, fds: [wakeRead])) ?? (socket: false, fds: [false])
            if ready.fds.first == true {
                var sink = [UInt8](repeating: 0, count: 256)
                while read(wakeRead, &sink, sink.count) > 0 {}
            }
            lock.lock()
            let taken = outbox
            outbox.removeAll(keepingCapacity: true)
            wakePending = false
            let isStopped = stopped
            lock.unlock()
            if isStopped {
                for p in pending.values { handOver(p.continuation, .failure(HumeError(.system, "The gateway is shutting down."))) }
                for o in taken { handOver(o.continuation, .failure(HumeError(.system, "The gateway is shutting down."))) }
                pending.removeAll()
                return
            }
            let sendTime = Self.nowMs()
            var groups: [String: Int] = [:]  // batch + route → index in `outgoing` still open to more jobs
            var outgoing: [(message: Message, calls: [(call: Int, records: Range<Int>)], bytes: Int)] = []
            for o in taken {
                let call = nextCall
                nextCall += 1
                pending[call] = Pending(request: o, deadlineMs: sendTime + o.timeoutMs)
                let records = o.message.records
                let bytes = records.reduce(0) { $0 + $1.count }
                let key = o.message.command == .submit && bytes <= Self.coalescibleBytes
                    ? "\(o.message.header["batch"]?.serialized ?? "")|\(o.message.header["route"]?.serialized ?? "")" : nil
                if let key, let g = groups[key], outgoing[g].message.records.count + records.count <= Self.coalescedJobs,
                   outgoing[g].bytes + bytes <= Self.coalescedBytes {
                    let at = outgoing[g].message.records.count
                    outgoing[g].message.records += records
                    outgoing[g].calls.append((call, at ..< at + records.count))
                    outgoing[g].bytes += bytes
                } else {
                    if let key { groups[key] = outgoing.count }
                    outgoing.append((o.message, [(call, 0 ..< records.count)], bytes))
                }
            }
            for o in outgoing { unsent.append(send(o.message, calls: o.calls)) }
            // A socket that cannot take a message now (no handshake yet, queue full) keeps it for the next round.
            while let (req, m) = unsent.first {
                guard internalReqs[req] != nil || inflight[req]?.contains(where: { pending[$0.call] != nil }) == true else {
                    inflight.removeValue(forKey: req)
                    unsent.removeFirst()
                    continue
                }
                guard (try? connection.trySend(m)) == true else { break }
                unsent.removeFirst()
            }
            while let m = try? connection.receive(timeoutMs: 0) {
                lastNewsMs = Self.nowMs()
                handle(m)
            }
            expire(now: Self.nowMs())
            probeIfSilent(now: Self.nowMs())
            unsent += resend
            resend.removeAll()
        }
    }

    /// Gives `message` a fresh req and records which calls it carries; returns it for the send queue.
    private func send(_ message: Message, calls: [(call: Int, records: Range<Int>)]) -> (Int, Message) {
        let req = nextReq
        nextReq += 1
        var m = message
        if case .object(var h) = m.header { h["req"] = JSON(req); m.header = .object(h) }
        inflight[req] = calls
        return (req, m)
    }

    private var resend: [(Int, Message)] = []

    private func handle(_ m: Message) {
        switch m.command {
        case .result:
            var delivered: [(ResultRecord, String?)] = []
            delivered.reserveCapacity(m.records.count)
            for r in m.records {
                guard let rec = try? ResultRecord.decode(r) else { continue }
                delivered.append((rec, unfinished.removeValue(forKey: rec.jobID)?.batch))
                if let calls = waiters.removeValue(forKey: rec.jobID) {
                    for call in calls where pending[call] != nil {
                        pending[call]!.results[rec.jobID] = rec
                        pending[call]!.awaiting.remove(rec.jobID)
                        if pending[call]!.awaiting.isEmpty { finish(call) }
                    }
                }
            }
            if !delivered.isEmpty { onResults(delivered) }
        case .progress:
            break
        default:
            guard let req = m.header["req"]?.int else { return }
            if let purpose = internalReqs.removeValue(forKey: req) {
                inflight.removeValue(forKey: req)
                if purpose == .probe, m.command == .ack, (m.header["outstanding"]?.int ?? 0) < unfinished.count { reattach() }
                return
            }
            guard let calls = inflight.removeValue(forKey: req) else { return }
            if m.command == .error, m.header["code"]?.string == "too_large", calls.count > 1 {
                // Together they could never be taken (over the window or a queue's capacity); each alone may be.
                for c in calls where pending[c.call] != nil {
                    resend.append(send(pending[c.call]!.message, calls: [(c.call, 0 ..< pending[c.call]!.message.records.count)]))
                }
                return
            }
            for (call, range) in calls {
                guard var p = pending[call] else { continue }  // timed out meanwhile
                guard p.command == .submit, m.command == .ack, range.upperBound <= m.records.count else {
                    pending.removeValue(forKey: call)
                    handOver(p.continuation, .success(SubmitAnswer(reply: m, results: [:])))
                    continue
                }
                // The caller's part of the ACK: its records, and counts of its own.
                let records = Array(m.records[range])
                let acks = records.compactMap { try? AckRecord.decode($0) }
                var header = m.header.object ?? [:]
                let duplicates = acks.filter(\.duplicate).count
                header["accepted"] = JSON(acks.count - duplicates)
                header["duplicates"] = JSON(duplicates)
                if let batch = p.batch, let route = p.message.header["route"] {
                    // Jobs that another connection took over never answer here; a cap keeps them from piling up.
                    if unfinished.count > 200_000 { unfinished.removeAll() }
                    for (i, a) in acks.enumerated() where i < p.keys.count {
                        unfinished[a.jobID] = Attachment(key: p.keys[i], batch: batch, route: route)
                    }
                }
                p.ack = Message(.ack, header: .object(header), records: records)
                if p.waitMs > 0 {
                    p.awaiting = Set(acks.map(\.jobID))
                    p.deadlineMs = Self.nowMs() + p.waitMs
                    for id in p.awaiting { waiters[id, default: []].append(call) }
                }
                pending[call] = p
                if p.awaiting.isEmpty { finish(call) }
            }
        }
    }

    /// With jobs unfinished and the broker silent: asks how many unfinished jobs it holds for this connection.
    private func probeIfSilent(now: UInt64) {
        guard let any = unfinished.values.first, now >= lastNewsMs + Self.silenceMs, now >= lastProbeMs + Self.silenceMs else {
            return
        }
        lastProbeMs = now
        let (req, m) = send(Message(.submit, header: .object(["batch": .string(any.batch), "route": any.route])), calls: [])
        internalReqs[req] = .probe
        resend.append((req, m))
    }

    /// Submits the keys of every unfinished job again, grouped by batch and route (the broker's ACK makes this
    /// connection their owner; finished ones answer with their RESULT at once).
    private func reattach() {
        var groups: [String: (batch: String, route: JSON, keys: [String])] = [:]
        for a in unfinished.values {
            groups["\(a.batch)|\(a.route.serialized)", default: (a.batch, a.route, [])].keys.append(a.key)
        }
        for g in groups.values {
            for start in stride(from: 0, to: g.keys.count, by: Self.coalescedJobs) {
                let records = g.keys[start..<min(g.keys.count, start + Self.coalescedJobs)].map { JobSpec(key: $0).encode() }
                let (req, m) = send(Message(.submit, header: .object(["batch": .string(g.batch), "route": g.route]), records: records),
                                    calls: [])
                internalReqs[req] = .reattach
                resend.append((req, m))
            }
        }
    }

    /// Resumes a caller from the link thread. The lock released just before carries what this thread wrote (the parsed
    /// reply) to the caller, which takes the lock once its await returns (`request`). Swift's continuation already
    /// orders the two, but when the reply comes before the caller's task has suspended, the runtime hands it over on a
    /// path ThreadSanitizer does not see, and `Ops/sanitize.sh thread` reported a race on the reply that is not one
    /// (`Ops/repro/tsan-continuation.swift` reproduces it; the gateway's tests hit it under load, one run in three).
    private func handOver(_ c: Continuation, _ result: Result<SubmitAnswer, any Error>) {
        lock.withLock {}
        c.resume(with: result)
    }

    /// Resumes a SUBMIT's caller with its ACK and the results gathered so far.
    private func finish(_ call: Int) {
        guard let p = pending.removeValue(forKey: call), let ack = p.ack else { return }
        for id in p.awaiting { waiters[id]?.removeAll { $0 == call } }
        handOver(p.continuation, .success(SubmitAnswer(reply: ack, results: p.results)))
    }

    private func expire(now: UInt64) {
        if inflight.count > 1_000 {  // messages the broker never answered (it died with them) whose callers have gone
            inflight = inflight.filter { $0.value.contains { pending[$0.call] != nil } }
        }
        for (call, p) in pending where p.deadlineMs <= now {
            if p.ack != nil {
                finish(call)  // acknowledged; the wait for results is over
            } else {
                pending.removeValue(forKey: call)
                handOver(p.continuation, .failure(HumeError(
                    .timeout, "The broker at \(endpoint) did not answer \(p.command.rawValue) in time; is it running?")))
            }
        }
    }
}
