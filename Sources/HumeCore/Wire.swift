/// Hume's wire protocol (see PROTOCOL.md): every message is a ZeroMQ multipart message
/// `[signature+version][command][header JSON][record]...`. ROUTER sockets add the peer's routing id in front.
public enum Wire {
    /// "HUME" followed by the protocol version byte.
    public static let signature: [UInt8] = [0x48, 0x55, 0x4D, 0x45, 0x01]
    public static let version: UInt8 = 1
    /// The most frames a message may have (header + records).
    public static let maxFrames = 100_003
    /// The largest header frame accepted.
    public static let maxHeaderBytes = 64 * 1024
}

/// The protocol's commands. Unknown names are refused with an `ERROR` reply.
public enum Command: String, Sendable, CaseIterable {
    // client -> broker
    case submit = "SUBMIT"
    case cancel = "CANCEL"
    case status = "STATUS"
    case watch = "WATCH"
    /// Jobs by id, finished or not (and the broker's reply): how a stateless front end such as the HTTP gateway
    /// answers "what became of job 42" from the journal.
    case lookup = "LOOKUP"
    // broker -> client
    case ack = "ACK"
    case result = "RESULT"
    case progress = "PROGRESS"
    case busy = "BUSY"
    case error = "ERROR"
    // worker <-> broker
    case ready = "READY"
    case welcome = "WELCOME"
    case task = "TASK"
    case done = "DONE"
    case heartbeat = "HEARTBEAT"
    case drain = "DRAIN"
    case disconnect = "DISCONNECT"
    // control
    case scale = "SCALE"
    case supervise = "SUPERVISE"
}

/// A decoded message (without any routing envelope).
public struct Message: Sendable {
    public var command: Command
    public var header: JSON
    public var records: [[UInt8]]

    public init(_ command: Command, header: JSON = .object([:]), records: [[UInt8]] = []) {
        self.command = command
        self.header = header
        self.records = records
    }

    /// The frames to send (no routing envelope).
    public func frames() -> [[UInt8]] {
        var f: [[UInt8]] = [Wire.signature, Array(command.rawValue.utf8), header.bytes]
        f.reserveCapacity(3 + records.count)
        f.append(contentsOf: records)
        return f
    }

    /// Decodes frames (the envelope already removed). Every failure is one clear sentence.
    public static func decode(_ frames: ArraySlice<[UInt8]>) throws -> Message {
        guard frames.count >= 3 else {
            throw HumeError(.badRequest, "A Hume message needs at least 3 frames (signature, command, header); this one has \(frames.count).")
        }
        let sig = frames[frames.startIndex]
        guard sig.count == 5, sig.prefix(4).elementsEqual(Wire.signature.prefix(4)) else {
            throw HumeError(.badRequest, "The first frame must be the 5-byte signature \"HUME\" + version; got \(sig.count) bytes that are not it.")
        }
        guard sig[4] == Wire.version else {
            throw HumeError(.badVersion, "Protocol version \(sig[4]) is not supported; this broker speaks version \(Wire.version).")
        }
        guard frames.count <= Wire.maxFrames else {
            throw HumeError(.tooLarge, "A message may have at most \(Wire.maxFrames) frames; this one has \(frames.count).")
        }
        let cmdBytes = frames[frames.startIndex + 1]
        guard let name = String(validating: cmdBytes, as: UTF8.self), let command = Command(rawValue: name) else {
            let shown = String(decoding: cmdBytes.prefix(32), as: UTF8.self)
            throw HumeError(.unknown, "Unknown command \"\(shown)\"; see PROTOCOL.md for the commands.")
        }
        let hb = frames[frames.startIndex + 2]
        guard hb.count <= Wire.maxHeaderBytes else {
            throw HumeError(.tooLarge, "The \(name) header is \(hb.count) bytes, over the limit of \(Wire.maxHeaderBytes).")
        }
        let header: JSON
        if hb.isEmpty || (hb.count == 2 && hb[0] == UInt8(ascii: "{") && hb[1] == UInt8(ascii: "}")) {
            header = .object([:])
        } else {
            header = try JSON.parse(hb, what: "The \(name) header")
            guard case .object = header else {
                throw HumeError(.badRequest, "The \(name) header must be a JSON object.")
            }
        }
        return Message(command, header: header, records: Array(frames.dropFirst(3)))
    }
}

// MARK: - Records

/// A job as a client submits it (one record of `SUBMIT`).
public struct JobSpec: Sendable, Equatable {
    /// 0...255; higher runs first.
    public var priority: UInt8
    /// Unix milliseconds after which the job is abandoned; 0 for none.
    public var deadlineMs: UInt64
    /// The idempotency key; empty to let the broker derive one from the content.
    public var key: String
    /// Stage parameters as a JSON object (opaque to the broker).
    public var params: [UInt8]
    /// The first stage's input.
    public var data: [UInt8]

    public init(priority: UInt8 = 0, deadlineMs: UInt64 = 0, key: String, params: [UInt8] = [], data: [UInt8] = []) {
        self.priority = priority
        self.deadlineMs = deadlineMs
        self.key = key
        self.params = params
        self.data = data
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 19 + key.utf8.count + params.count + data.count)
        w.u8(priority)
        w.u64(deadlineMs)
        w.shortString(key)
        w.blob(params)
        w.blob(data)
        return w.bytes
    }

    public static func decode(_ b: [UInt8], index: Int, maxBytes: Int) throws -> JobSpec {
        var r = ByteReader(b, what: "SUBMIT record", index: index)
        let s = JobSpec(priority: try r.u8("priority"), deadlineMs: try r.u64("deadline"), key: try r.shortString("key"),
                        params: try r.blob("params", limit: maxBytes), data: try r.blob("data", limit: maxBytes))
        try r.expectEnd()
        return s
    }
}

/// The broker's answer for one submitted job (one record of `ACK`).
public struct AckRecord: Sendable, Equatable {
    public var jobID: UInt64
    /// True when the key already named a job: `jobID` is that first job's id.
    public var duplicate: Bool

    public init(jobID: UInt64, duplicate: Bool) {
        self.jobID = jobID
        self.duplicate = duplicate
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 9)
        write(to: &w)
        return w.bytes
    }

    public static let size = 9

    @inlinable
    public func write<W: BinaryWriter>(to w: inout W) {
        w.u64(jobID)
        w.u8(duplicate ? 1 : 0)
    }

    public static func decode(_ b: [UInt8]) throws -> AckRecord {
        var r = ByteReader(b, what: "ACK record")
        let a = AckRecord(jobID: try r.u64("job"), duplicate: try r.u8("duplicate") != 0)
        try r.expectEnd()
        return a
    }
}

/// How a job ended.
public enum JobStatus: UInt8, Sendable, CaseIterable {
    case active = 0, done = 1, failed = 2, dead = 3, cancelled = 4, expired = 5

    public var name: String {
        switch self {
        case .active: "active"
        case .done: "done"
        case .failed: "failed"
        case .dead: "dead_letter"
        case .cancelled: "cancelled"
        case .expired: "expired"
        }
    }
}

/// A finished job (one record of `RESULT`).
public struct ResultRecord: Sendable, Equatable {
    public var jobID: UInt64
    public var status: JobStatus
    public var key: String
    /// The last stage's output when done; the error sentence otherwise.
    public var body: [UInt8]

    public init(jobID: UInt64, status: JobStatus, key: String, body: [UInt8]) {
        self.jobID = jobID
        self.status = status
        self.key = key
        self.body = body
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 15 + key.utf8.count + body.count)
        Self.write(to: &w, jobID: jobID, status: status, key: key, body: body)
        return w.bytes
    }

    /// The bytes a record with this key and body takes.
    @inlinable
    public static func size(key: String, body: [UInt8]) -> Int { 13 + ByteWriter.size(shortString: key) + body.count }

    /// Writes a record from its fields, with no `ResultRecord` made.
    @inlinable
    public static func write<W: BinaryWriter>(to w: inout W, jobID: UInt64, status: JobStatus, key: String, body: [UInt8]) {
        w.u64(jobID)
        w.u8(status.rawValue)
        w.shortString(key)
        w.blob(body)
    }

    public static func decode(_ b: [UInt8]) throws -> ResultRecord {
        var r = ByteReader(b, what: "RESULT record")
        let id = try r.u64("job")
        let st = try r.u8("status")
        guard let status = JobStatus(rawValue: st) else { throw HumeError(.badRequest, "RESULT record has unknown status \(st).") }
        let rec = ResultRecord(jobID: id, status: status, key: try r.shortString("key"), body: try r.blob("body", limit: Int(UInt32.max)))
        try r.expectEnd()
        return rec
    }
}

/// One job as `LOOKUP` answers it (one record of the broker's `LOOKUP` reply, PROTOCOL.md 5.7).
public struct JobRecord: Sendable, Equatable {
    /// The status byte of an id the journal has never held.
    public static let unknownStatus: UInt8 = 255
    public var jobID: UInt64
    /// `JobStatus` raw value, or `unknownStatus`.
    public var status: UInt8
    /// Stages finished so far, and the route's length.
    public var stage: UInt8
    public var stages: UInt8
    public var key: String
    public var batch: String
    /// The result (done) or the error sentence (failed, dead letter, cancelled, expired); empty while active.
    public var body: [UInt8]

    public init(jobID: UInt64, status: UInt8, stage: UInt8, stages: UInt8, key: String, batch: String, body: [UInt8]) {
        self.jobID = jobID
        self.status = status
        self.stage = stage
        self.stages = stages
        self.key = key
        self.batch = batch
        self.body = body
    }

    /// The record of an id the journal has never held.
    public static func unknown(_ id: UInt64) -> JobRecord {
        JobRecord(jobID: id, status: unknownStatus, stage: 0, stages: 0, key: "", batch: "", body: [])
    }

    public var jobStatus: JobStatus? { JobStatus(rawValue: status) }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 15 + 4 + key.utf8.count + batch.utf8.count + body.count)
        w.u64(jobID)
        w.u8(status)
        w.u8(stage)
        w.u8(stages)
        w.shortString(key)
        w.shortString(batch)
        w.blob(body)
        return w.bytes
    }

    public static func decode(_ b: [UInt8]) throws -> JobRecord {
        var r = ByteReader(b, what: "LOOKUP record")
        let rec = JobRecord(jobID: try r.u64("job"), status: try r.u8("status"), stage: try r.u8("stage"),
                            stages: try r.u8("stages"), key: try r.shortString("key"), batch: try r.shortString("batch"),
                            body: try r.blob("body", limit: Int(UInt32.max)))
        try r.expectEnd()
        return rec
    }
}

/// One unit of work the broker leases to a worker (one record of `TASK`).
public struct TaskRecord: Sendable, Equatable {
    public var lease: UInt64
    public var jobID: UInt64
    public var attempt: UInt16
    public var key: String
    public var params: [UInt8]
    public var input: [UInt8]

    public init(lease: UInt64, jobID: UInt64, attempt: UInt16, key: String, params: [UInt8], input: [UInt8]) {
        self.lease = lease
        self.jobID = jobID
        self.attempt = attempt
        self.key = key
        self.params = params
        self.input = input
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 28 + key.utf8.count + params.count + input.count)
        Self.write(to: &w, lease: lease, jobID: jobID, attempt: attempt, key: key, params: params, input: input)
        return w.bytes
    }

    /// The bytes a record with this key, params and input takes.
    @inlinable
    public static func size(key: String, params: [UInt8], input: [UInt8]) -> Int {
        26 + ByteWriter.size(shortString: key) + params.count + input.count
    }

    /// Writes a record from its fields, with no `TaskRecord` made.
    @inlinable
    public static func write<W: BinaryWriter>(to w: inout W, lease: UInt64, jobID: UInt64, attempt: UInt16, key: String,
                                              params: [UInt8], input: [UInt8]) {
        w.u64(lease)
        w.u64(jobID)
        w.u16(attempt)
        w.shortString(key)
        w.blob(params)
        w.blob(input)
    }

    public static func decode(_ b: [UInt8]) throws -> TaskRecord {
        var r = ByteReader(b, what: "TASK record")
        let t = TaskRecord(lease: try r.u64("lease"), jobID: try r.u64("job"), attempt: try r.u16("attempt"),
                           key: try r.shortString("key"), params: try r.blob("params", limit: Int(UInt32.max)),
                           input: try r.blob("input", limit: Int(UInt32.max)))
        try r.expectEnd()
        return t
    }
}

/// A worker's outcome for one lease (one record of `DONE`).
public struct DoneRecord: Sendable, Equatable {
    public enum Outcome: UInt8, Sendable {
        case ok = 0
        /// A retry may succeed (timeout, resource exhausted, worker trouble).
        case retryable = 1
        /// Retrying cannot help (bad input); the job fails at once.
        case permanent = 2
    }

    public var lease: UInt64
    public var outcome: Outcome
    /// The stage output when `ok`; a one-sentence UTF-8 error otherwise.
    public var body: [UInt8]

    public init(lease: UInt64, outcome: Outcome, body: [UInt8]) {
        self.lease = lease
        self.outcome = outcome
        self.body = body
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 13 + body.count)
        w.u64(lease)
        w.u8(outcome.rawValue)
        w.blob(body)
        return w.bytes
    }

    public static func decode(_ b: [UInt8], index: Int, maxBytes: Int) throws -> DoneRecord {
        var r = ByteReader(b, what: "DONE record", index: index)
        let lease = try r.u64("lease")
        let o = try r.u8("outcome")
        guard let outcome = Outcome(rawValue: o) else {
            throw HumeError(.badRequest, "DONE record \(index) has outcome \(o); allowed are 0 (ok), 1 (retryable), 2 (permanent).")
        }
        let d = DoneRecord(lease: lease, outcome: outcome, body: try r.blob("body", limit: maxBytes))
        try r.expectEnd()
        return d
    }
}

/// Stage names: 1–32 characters of a–z, 0–9, '_' and '-'.
public func validateStageName(_ s: String) -> Bool {
    guard !s.isEmpty, s.utf8.count <= 32 else { return false }
    return s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D }
}
