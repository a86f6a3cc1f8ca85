import CZeroMQ
import Foundation
import HumeCore
import HumeTransport

/// A connection to a broker's client (or control) endpoint. Not thread-safe: use it from one thread.
public final class BrokerConnection {
    let context: ZMQContext
    let socket: ZMQSocket
    var nextReq: UInt64 = 1

    /// Connects to `endpoint`. With `curve` the connection is CURVE-encrypted and authenticated; without it, plaintext.
    public init(endpoint: String, context: ZMQContext = ZMQContext(), curve: CurveClientConfig? = nil) throws {
        self.context = context
        socket = try ZMQSocket(context, .dealer)
        if let c = curve { try socket.makeCurveClient(c) }
        try socket.setOption(ZMQ_SNDHWM, 100_000)
        try socket.setOption(ZMQ_RCVHWM, 100_000)
        try socket.setOption(ZMQ_RECONNECT_IVL, 100)
        try socket.setOption(ZMQ_RECONNECT_IVL_MAX, 2000)
        try socket.connect(endpoint)
    }

    /// A fresh request id for matching replies.
    public func newRequestID() -> UInt64 {
        defer { nextReq += 1 }
        return nextReq
    }

    public func send(_ message: Message) throws {
        try socket.send(message.frames())
    }

    /// Sends if the message can be queued now; false when it cannot (no connection has completed its handshake, or
    /// the queue is full). For messages that are repeated anyway, from a loop that must not block.
    public func trySend(_ message: Message) throws -> Bool {
        try socket.send(message.frames(), dontWait: true)
    }

    /// The next message, waiting up to `timeoutMs` (0: only what is already there). Malformed messages throw.
    public func receive(timeoutMs: Int) throws -> Message? {
        if let frames = try socket.receive(dontWait: true) { return try Message.decode(frames[...]) }
        guard timeoutMs != 0 else { return nil }
        var poller = ZMQPoller()
        poller.add(socket)
        guard try poller.poll(timeoutMs: timeoutMs) > 0, let frames = try socket.receive(dontWait: true) else { return nil }
        return try Message.decode(frames[...])
    }

    /// Polls this connection and extra file descriptors; returns which fds are readable.
    public func wait(timeoutMs: Int, fds: [Int32]) throws -> (socket: Bool, fds: [Bool]) {
        var poller = ZMQPoller()
        poller.add(socket)
        for fd in fds { poller.add(fd: fd) }
        _ = try poller.poll(timeoutMs: timeoutMs)
        return (poller.isReadable(0), fds.indices.map { poller.isReadable($0 + 1) })
    }

    /// Sends a request and waits for the reply with the same `req` (other messages are dropped).
    public func request(_ command: Command, header: [String: JSON] = [:], timeoutMs: Int = 5000) throws -> Message {
        let req = newRequestID()
        var h = header
        h["req"] = JSON(Int(req))
        try send(Message(command, header: .object(h)))
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeoutMs) * 1_000_000
        while true {
            let left = Int((Int64(deadline) - Int64(DispatchTime.now().uptimeNanoseconds)) / 1_000_000)
            guard left > 0 else {
                throw HumeError(.timeout, "The broker did not answer \(command.rawValue) within \(timeoutMs) ms; is it running?")
            }
            if let m = try receive(timeoutMs: left), m.header["req"]?.int == Int(req) {
                if m.command == .error {
                    throw HumeError(HumeError.Code(rawValue: m.header["code"]?.string ?? "error"),
                                    m.header["message"]?.string ?? "The broker refused the request.")
                }
                return m
            }
        }
    }
}

/// One finished job as a client sees it.
public struct JobResult: Sendable {
    public var index: Int
    public var jobID: UInt64
    public var status: JobStatus
    public var key: String
    public var body: [UInt8]
}

/// Submits a batch of jobs through a connection with everything a bulk run needs: chunks that fit the client's
/// window, waiting on `BUSY`, resending un-acknowledged chunks, re-attaching to unfinished jobs after a broker
/// restart (idempotency keys make every resend safe), and exactly one result per job.
///
/// Memory is bounded by what is unfinished, not by the batch: a job's spec is dropped when its result arrives, and
/// with `keepsResults` false results are only handed to `onResult` (a million-line `hume submit` stays small).
public final class BatchSubmitter {
    public let connection: BrokerConnection
    public let batch: String
    public let route: [String]
    /// Jobs per SUBMIT message (default 500).
    public var chunkSize = 500
    /// Resend a SUBMIT that is not acknowledged within this time (default 3 s).
    public var ackTimeoutMs: UInt64 = 3_000
    /// With jobs outstanding and no news for this long, re-attach to them by resubmitting their keys (default 4 s).
    public var silenceMs: UInt64 = 4_000
    /// Ask the broker for PROGRESS records.
    public var wantsProgress = false
    /// Keep every result in `results` (default). Callers that stream results elsewhere set it false before adding
    /// jobs, so memory does not grow with the batch.
    public var keepsResults = true
    /// Called for every job's first result.
    public var onResult: ((JobResult) -> Void)?
    /// Called for PROGRESS records: (job index, finished stages, stage count).
    public var onProgress: ((Int, Int, Int) -> Void)?
    /// Called when a chunk is first sent, with the uptime in nanoseconds (for latency measurements).
    public var onSent: ((Range<Int>, UInt64) -> Void)?
    /// Called when a chunk is refused as a whole (bad request): every job in it gets this error.
    public var onRefused: ((Range<Int>, String) -> Void)?

    /// Every job's result by index (nil until it arrives); empty when `keepsResults` is false.
    public private(set) var results: [JobResult?] = []
    /// Jobs added so far.
    public private(set) var jobCount = 0
    public private(set) var finishedCount = 0
    /// Results for a job that already had one (or that this submitter never sent): the broker answering twice.
    public private(set) var duplicateResults = 0
    public private(set) var busyReplies = 0
    /// The specs of jobs without a result yet (sent or not), by index: all a resend or a re-attach needs.
    var live: [Int: JobSpec] = [:]
    var indexByKey: [String: Int] = [:]
    /// Later jobs that repeat an unfinished job's key: they are the same job to the broker, so its one result
    /// answers them all.
    var sameKey: [String: [Int]] = [:]
    /// One bit per job: has its result.
    var finished: [UInt64] = []
    var window = 1_000
    /// The most unfinished jobs the broker lets this connection hold, as it last said (1,000 until it says).
    public var windowSize: Int { window }
    var outstanding = Set<Int>()  // acked, not finished
    /// Jobs the broker acknowledged that have no result yet.
    public var unansweredCount: Int { outstanding.count }
    /// SUBMITs not yet answered, by req: the chunk's range (empty for a re-attach), when it went, and the jobs it
    /// carried in record order (a chunk's jobs that finished meanwhile, through a repeated key, are left out).
    var inFlight: [UInt64: (range: Range<Int>, sentAt: UInt64, ids: [Int], reattach: Bool)] = [:]
    var nextIndex = 0
    var retryQueue: [Range<Int>] = []
    var pauseUntil: UInt64 = 0
    /// When the broker last sent anything, across `run` calls: callers run in short slices (`hume submit` runs
    /// 500 ms at a time), so a silence must be measured from here, not from the start of the current call.
    var lastNews: UInt64?

    public init(connection: BrokerConnection, batch: String, route: [String], jobs: [JobSpec]) {
        self.connection = connection
        self.batch = batch
        self.route = route
        add(jobs)
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }

    /// False while more jobs may be added (streaming); `run` then returns only on its timeout.
    public var inputClosed = true

    /// Jobs added but not yet sent.
    public var unsent: Int { jobCount - nextIndex + retryQueue.reduce(0) { $0 + $1.count } }

    /// Adds jobs to the batch; returns their indices.
    @discardableResult
    public func add(_ more: [JobSpec]) -> Range<Int> {
        let start = jobCount
        for (k, s) in more.enumerated() {
            live[start + k] = s
            if indexByKey[s.key] == nil { indexByKey[s.key] = start + k } else { sameKey[s.key, default: []].append(start + k) }
        }
        jobCount += more.count
        if keepsResults { results.append(contentsOf: Array(repeating: nil, count: more.count)) }
        let words = (jobCount + 63) / 64
        if finished.count < words { finished.append(contentsOf: Array(repeating: 0, count: words - finished.count)) }
        return start..<jobCount
    }

    /// Whether job `index` has its result.
    public func isFinished(_ index: Int) -> Bool { finished[index >> 6] & (1 << UInt64(index & 63)) != 0 }

    /// Every job added has its result and no more will be added.
    public var done: Bool { inputClosed && finishedCount == jobCount }

    func submit(indices: [Int], range: Range<Int>?, reattach: Bool) throws {
        let req = connection.newRequestID()
        let ids = indices.filter { live[$0] != nil }
        let recs = ids.map { live[$0]!.encode() }
        var h: [String: JSON] = ["req": JSON(Int(req)), "batch": .string(batch), "route": .array(route.map { .string($0) })]
        if wantsProgress { h["progress"] = .bool(true) }
        try connection.send(Message(.submit, header: .object(h), records: recs))
        inFlight[req] = (range ?? 0..<0, Self.now(), ids, reattach)
        if let range, !reattach { onSent?(range, DispatchTime.now().uptimeNanoseconds) }
    }

    var inFlightJobs: Int { inFlight.values.reduce(0) { $0 + $1.ids.count } }

    /// Sends what the window allows. Returns false when nothing could be sent.
    func pump() throws {
        let t = Self.now()
        guard t >= pauseUntil else { return }
        while inFlight.count < 4 {
            let room = window - outstanding.count - inFlightJobs
            var range: Range<Int>
            if let r = retryQueue.first {
                // A resend goes in pieces that fit the room and the chunk size: the window may have shrunk since
                // (a BUSY or an ACK says what it is), and a piece too big would wait for room that never comes.
                let n = min(r.count, room, chunkSize)
                guard n > 0 else { return }
                retryQueue.removeFirst()
                range = r.lowerBound..<r.lowerBound + n
                if n < r.count { retryQueue.insert(range.upperBound..<r.upperBound, at: 0) }
            } else {
                guard nextIndex < jobCount else { return }
                let n = min(chunkSize, jobCount - nextIndex, room)
                guard n > 0 else { return }
                range = nextIndex..<nextIndex + n
                nextIndex += n
            }
            try submit(indices: Array(range), range: range, reattach: false)
        }
    }

    /// Runs until every job has a result or `timeoutMs` passes; extra fds are polled and reported via `onFD`.
    @discardableResult
    public func run(timeoutMs: UInt64 = .max, extraFDs: @autoclosure () -> [Int32] = [], onFD: ((Int) -> Void)? = nil) throws -> Bool {
        let start = Self.now()
        if lastNews == nil { lastNews = start }
        while !done {
            let t = Self.now()
            if timeoutMs != .max && t > start + timeoutMs { return false }
            try pump()
            let (_, fds) = try connection.wait(timeoutMs: 100, fds: extraFDs())
            for (i, r) in fds.enumerated() where r { onFD?(i) }
            while let m = try connection.receive(timeoutMs: 0) {
                lastNews = Self.now()
                try handle(m)
            }
            let n = Self.now()
            // Resend SUBMITs that were never acknowledged (broker down or restarted).
            for (req, f) in inFlight where n > f.sentAt + ackTimeoutMs {
                inFlight[req] = nil
                if f.reattach { try submit(indices: f.ids, range: nil, reattach: true) } else { retryQueue.append(f.range) }
            }
            // Long silence with jobs outstanding: re-attach (the broker may have restarted and forgotten us).
            if !outstanding.isEmpty && n > (lastNews ?? n) + silenceMs && inFlight.isEmpty {
                lastNews = n
                let ids = outstanding.sorted()
                for start in stride(from: 0, to: ids.count, by: chunkSize) {
                    try submit(indices: Array(ids[start..<min(start + chunkSize, ids.count)]), range: nil, reattach: true)
                }
            }
        }
        return true
    }

    func handle(_ m: Message) throws {
        let req = m.header["req"]?.int.map { UInt64($0) }
        switch m.command {
        case .ack:
            guard let req, let f = inFlight.removeValue(forKey: req) else { return }
            if let w = m.header["window"]?.int, w > 0 { window = w }
            let idx = f.ids
            for (k, r) in m.records.enumerated() where k < idx.count {
                if !isFinished(idx[k]), (try? AckRecord.decode(r)) != nil { outstanding.insert(idx[k]) }
            }
        case .busy:
            busyReplies += 1
            guard let req, let f = inFlight.removeValue(forKey: req) else { return }
            if f.reattach { try submit(indices: f.ids, range: nil, reattach: true) } else { retryQueue.append(f.range) }
            if let w = m.header["window"]?.int, w > 0 { window = w }
            pauseUntil = Self.now() + UInt64(max(10, m.header["retry_after_ms"]?.int ?? 100))
        case .error:
            guard let req, let f = inFlight.removeValue(forKey: req) else { return }
            let msg = m.header["message"]?.string ?? "The broker refused the request."
            // Too many jobs or bytes for one SUBMIT (a small window, or big images): send it again in halves, and
            // smaller chunks from now on. Only a single job too big for the broker fails.
            if m.header["code"]?.string == HumeError.Code.tooLarge.rawValue, f.ids.count > 1 {
                chunkSize = max(1, min(chunkSize, f.ids.count / 2))
                let half = f.ids.count / 2
                for part in [Array(f.ids[..<half]), Array(f.ids[half...])] {
                    if f.reattach {
                        try submit(indices: part, range: nil, reattach: true)
                    } else {
                        // A chunk's ids are consecutive indices, so each half is a range again.
                        retryQueue.append(part.first!..<(part.last! + 1))
                    }
                }
                return
            }
            let idx = f.ids
            onRefused?(f.range, msg)
            for i in idx where !isFinished(i) {
                record(JobResult(index: i, jobID: 0, status: .failed, key: live[i]?.key ?? "", body: Array(msg.utf8)))
            }
        case .result:
            for r in m.records {
                guard let rec = try? ResultRecord.decode(r) else { continue }
                guard let i = indexByKey[rec.key] else {
                    duplicateResults += 1
                    continue
                }
                for j in [i] + (sameKey.removeValue(forKey: rec.key) ?? []) {
                    record(JobResult(index: j, jobID: rec.jobID, status: rec.status, key: rec.key, body: rec.body))
                }
            }
        case .progress:
            for r in m.records where r.count == 10 {
                var rd = ByteReader(r, what: "PROGRESS record")
                guard let id = try? rd.u64("job"), let a = try? rd.u8("done"), let b = try? rd.u8("of") else { continue }
                _ = id
                onProgress?(-1, Int(a), Int(b))
            }
        default:
            break
        }
    }

    func record(_ r: JobResult) {
        if isFinished(r.index) {
            duplicateResults += 1
            return
        }
        finished[r.index >> 6] |= 1 << UInt64(r.index & 63)
        if keepsResults { results[r.index] = r }
        if let spec = live.removeValue(forKey: r.index), indexByKey[spec.key] == r.index { indexByKey[spec.key] = nil }
        outstanding.remove(r.index)
        finishedCount += 1
        onResult?(r)
    }
}
