@testable import HumeBroker
import HumeCore
import Logging
import Testing

/// A `BrokerCore` over a `MemoryJournal` with a hand-driven clock: each message is one loop round of the real
/// server (handle, tick, dispatch, commit, take the outbox), with no sockets and no sleeping.
final class Rig {
    let journal: MemoryJournal
    let config: BrokerConfig
    private(set) var core: BrokerCore
    var now: UInt64

    static let quiet = Logger(label: "hume.broker.test", factory: { _ in SwiftLogNoOpLogHandler() })

    init(journal: MemoryJournal = MemoryJournal(), now: UInt64 = 1_700_000_000_000,
         _ configure: (inout BrokerConfig) -> Void = { _ in }) throws {
        var c = BrokerConfig()
        c.stages = ["a", "b", "c"]
        configure(&c)
        self.config = c
        self.journal = journal
        self.now = now
        core = try BrokerCore(config: c, journal: journal, now: now, logger: Rig.quiet)
    }

    /// A broker restart: a fresh core over the same journal.
    func restart() throws {
        core = try BrokerCore(config: config, journal: journal, now: now, logger: Rig.quiet)
    }

    @discardableResult
    func send(_ endpoint: Endpoint, _ peer: String, frames: [[UInt8]]) throws -> [Outgoing] {
        try round { try core.handle(endpoint, peer: Array(peer.utf8), frames: frames[...], now: now) }
    }

    @discardableResult
    func send(_ endpoint: Endpoint, _ peer: String, _ m: Message) throws -> [Outgoing] {
        try send(endpoint, peer, frames: m.frames())
    }

    /// One loop round of the real server (`BrokerCore.round`); every message the broker emits must itself decode.
    @discardableResult
    func round(_ feed: () throws -> Void = {}) throws -> [Outgoing] {
        let out = try core.round(now: now, feed)
        for o in out { _ = try Message.decode(o.message.frames()[...]) }
        return out
    }

    /// Moves the clock on and runs a round.
    @discardableResult
    func wait(_ ms: UInt64) throws -> [Outgoing] {
        now += ms
        return try round()
    }

    @discardableResult
    func submit(_ specs: [JobSpec], client: String = "c1", batch: String = "b1", route: [String] = ["a"],
                progress: Bool = false, req: Int = 1) throws -> [Outgoing] {
        var h: [String: JSON] = ["req": JSON(req), "batch": .string(batch), "route": .array(route.map { .string($0) })]
        if progress { h["progress"] = .bool(true) }
        return try send(.clients, client, Message(.submit, header: .object(h), records: specs.map { $0.encode() }))
    }

    @discardableResult
    func ready(_ worker: String, stage: String = "a", credit: Int) throws -> [Outgoing] {
        try send(.workers, worker, Message(.ready, header: .object(["stage": .string(stage), "credit": JSON(credit),
                                                                    "name": .string(worker)])))
    }

    @discardableResult
    func done(_ worker: String, _ records: [DoneRecord]) throws -> [Outgoing] {
        try send(.workers, worker, Message(.done, records: records.map { $0.encode() }))
    }

    @discardableResult
    func ok(_ worker: String, _ task: TaskRecord, _ body: String) throws -> [Outgoing] {
        try done(worker, [DoneRecord(lease: task.lease, outcome: .ok, body: Array(body.utf8))])
    }

    @discardableResult
    func fail(_ worker: String, _ task: TaskRecord, _ outcome: DoneRecord.Outcome, _ error: String) throws -> [Outgoing] {
        try done(worker, [DoneRecord(lease: task.lease, outcome: outcome, body: Array(error.utf8))])
    }

    @discardableResult
    func heartbeat(_ worker: String) throws -> [Outgoing] {
        try send(.workers, worker, Message(.heartbeat))
    }

    @discardableResult
    func cancel(_ header: JSON, client: String = "c1") throws -> [Outgoing] {
        try send(.clients, client, Message(.cancel, header: header))
    }

    /// The STATUS reply's header.
    func status() throws -> JSON {
        let out = try send(.control, "ctl", Message(.status, header: .object(["req": JSON(99)])))
        return try #require(out.messages("ctl", .status).first).header
    }

    /// One stage's entry in STATUS.
    func stage(_ name: String) throws -> JSON {
        try #require(try status()["stages"]?.array?.first { $0["name"]?.string == name })
    }

    func journalJob(_ id: UInt64) throws -> JournalJob { try #require(journal.jobs[id]) }
}

/// A job whose data is its key unless given.
func job(_ key: String, priority: UInt8 = 0, data: String? = nil, deadline: UInt64 = 0) -> JobSpec {
    JobSpec(priority: priority, deadlineMs: deadline, key: key, data: Array((data ?? key).utf8))
}

func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

extension Array where Element == Outgoing {
    func messages(_ peer: String, _ command: Command) -> [Message] {
        filter { $0.peer == [UInt8](peer.utf8) && $0.message.command == command }.map(\.message)
    }

    func tasks(_ worker: String) throws -> [TaskRecord] {
        try messages(worker, .task).flatMap { try $0.records.map { try TaskRecord.decode($0) } }
    }

    func acks(_ client: String) throws -> [AckRecord] {
        try messages(client, .ack).flatMap { try $0.records.map { try AckRecord.decode($0) } }
    }

    func results(_ client: String) throws -> [ResultRecord] {
        try messages(client, .result).flatMap { try $0.records.map { try ResultRecord.decode($0) } }
    }

    /// Every RESULT record, whoever it is for.
    func allResults() throws -> [ResultRecord] {
        try filter { $0.message.command == .result }.flatMap { try $0.message.records.map { try ResultRecord.decode($0) } }
    }

    func allTasks() throws -> [TaskRecord] {
        try filter { $0.message.command == .task }.flatMap { try $0.message.records.map { try TaskRecord.decode($0) } }
    }

    /// Error headers sent to a peer.
    func errors(_ peer: String) -> [JSON] { messages(peer, .error).map(\.header) }
}
