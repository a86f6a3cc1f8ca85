import HumeCore
import HumeStages

/// The worker's side of the broker protocol (PROTOCOL.md §4.2) as a pure state machine. It is told what happened — a
/// new connection, a message from the broker, a stop request, the clock moving on — with the time (milliseconds on a
/// monotonic clock) and the leases the worker holds, and it answers with what to do. It owns no socket and reads no
/// clock, so every rule (announce with credit, welcome, heartbeats while busy, re-announce after a broker restart,
/// drain, reconnect with back-off) is tested without a broker; `WorkerRuntime` is the socket loop around it.
public struct WorkerConnection: Sendable {
    /// What the socket loop must do.
    public enum Action: Sendable {
        /// Send this message to the broker.
        case send(Message)
        /// Hand these tasks to the executors.
        case run([StageTask])
        /// The broker refused a message of ours (not fatal; worth a log line).
        case refused(String)
        /// The broker fell silent: close the socket, wait this long, connect again (then call `connected`).
        case reconnect(afterMs: UInt64)
        /// Leave: drained (`true`) or the drain timed out with tasks unfinished, which the broker will requeue.
        case leave(drained: Bool)
    }

    public let stage: String
    public let workerName: String
    /// Tasks the worker can hold at once (batch × executors + prefetch).
    public let capacity: Int
    public let batch: Int
    /// Longest a drain waits for running tasks before leaving anyway.
    public var drainTimeoutMs: UInt64 = 120_000
    /// Without the broker's DRAIN reply (an old or unreachable broker), how long an idle drain waits before leaving.
    public static let unacknowledgedDrainMs: UInt64 = 5000
    /// The first and the longest wait before reconnecting.
    public static let backoffRange: ClosedRange<UInt64> = 100...5000

    /// The heartbeat interval: 1 s until the broker's WELCOME says otherwise.
    public private(set) var heartbeatMs: UInt64 = 1000
    public private(set) var backoffMs: UInt64 = WorkerConnection.backoffRange.lowerBound
    public private(set) var draining = false
    public private(set) var welcomed = false
    var drainStarted: UInt64 = 0
    /// The broker's DRAIN reply: every TASK it sent before it has arrived, so no lease held then means none is owed.
    var drainAcknowledged = false
    var lastHeard: UInt64 = 0
    var lastBeat: UInt64 = 0
    var readySentAt: UInt64 = 0

    public init(stage: String, workerName: String, capacity: Int, batch: Int) {
        self.stage = stage
        self.workerName = workerName
        self.capacity = max(1, capacity)
        self.batch = batch
    }

    /// The READY announcement: credit is the room left (none while draining); a draining worker says so again.
    mutating func announce(now: UInt64, held: Int) -> [Action] {
        let credit = draining ? 0 : max(0, capacity - held)
        readySentAt = now
        lastBeat = now
        var out: [Action] = [.send(Message(.ready, header: .object([
            "stage": .string(stage), "credit": JSON(credit), "capacity": JSON(capacity),
            "batch": JSON(batch), "name": .string(workerName),
        ])))]
        if draining { out.append(.send(Message(.drain))) }
        return out
    }

    /// A new connection (the first, or after `reconnect`): announce the stage.
    public mutating func connected(now: UInt64, held: Int) -> [Action] {
        lastHeard = now
        welcomed = false
        return announce(now: now, held: held)
    }

    /// Stop was asked for: take no more work, tell the broker, finish what is held.
    public mutating func stop(now: UInt64) -> [Action] {
        guard !draining else { return [] }
        draining = true
        drainStarted = now
        return [.send(Message(.drain))]
    }

    /// Bytes arrived from the broker (even a malformed message shows it is alive).
    public mutating func heard(now: UInt64) {
        lastHeard = now
        backoffMs = Self.backoffRange.lowerBound
    }

    /// A message from the broker.
    public mutating func received(_ m: Message, now: UInt64, held: Int) -> [Action] {
        heard(now: now)
        switch m.command {
        case .drain:
            drainAcknowledged = true
        case .welcome:
            welcomed = true
            if let hb = m.header["heartbeat_ms"]?.int, hb > 0 { heartbeatMs = UInt64(hb) }
        case .task:
            let tasks = m.records.compactMap { try? StageTask.decode($0) }
            return tasks.isEmpty ? [] : [.run(tasks)]
        case .error:
            if m.header["code"]?.string == HumeError.Code.unknownWorker.rawValue {
                // The broker restarted or expired us: announce again (at most once a second until welcomed).
                if now > readySentAt + 1000 || welcomed {
                    welcomed = false
                    return announce(now: now, held: held)
                }
                return []
            }
            return [.refused(m.header["message"]?.string ?? "?")]
        default:
            break
        }
        return []
    }

    /// The clock moved on (after each poll): leave when drained or the drain timed out, beat when due, reconnect when
    /// the broker has been silent for three beats and a second. `heartbeat` builds the beat's header (the worker's
    /// figures); it is called only when one is due.
    public mutating func tick(now: UInt64, held: Int, heartbeat: () -> JSON) -> [Action] {
        if draining && held == 0 && (drainAcknowledged || now > drainStarted + Self.unacknowledgedDrainMs) {
            return [.send(Message(.disconnect)), .leave(drained: true)]
        }
        if draining && now > drainStarted + drainTimeoutMs { return [.leave(drained: false)] }
        var out: [Action] = []
        if now >= lastBeat + heartbeatMs {
            out.append(.send(Message(.heartbeat, header: heartbeat())))
            lastBeat = now
        }
        if now > lastHeard + 3 * heartbeatMs + 1000 {
            out.append(.reconnect(afterMs: backoffMs))
            backoffMs = min(backoffMs * 2, Self.backoffRange.upperBound)
        }
        return out
    }

    /// How long the loop may sleep in its poll before `tick` has something to do: until the next beat.
    public func pollTimeoutMs(now: UInt64) -> Int {
        Int(max(0, Int64(lastBeat + heartbeatMs) - Int64(now)))
    }
}
