import CZeroMQ
import Foundation
import GRDB
import HumeCore
import HumeTransport
import Logging

/// The addresses a broker binds.

/// Wall-clock milliseconds since the Unix epoch: the broker's one clock (deadlines are wall-clock times).
public func wallMillis() -> UInt64 {
    var tv = timeval()
    gettimeofday(&tv, nil)
    return UInt64(tv.tv_sec) * 1000 + UInt64(tv.tv_usec) / 1000
}

/// The broker loop's clock: wall-clock milliseconds when the broker starts, then advanced by the monotonic clock. A
/// step of the system clock (NTP, an operator's `date -s`) therefore does not make every worker look silent for the
/// step's length, nor expire deadlines early; deadlines stay wall-clock times across restarts, because each start
/// anchors to the wall clock again. It drifts from the wall clock only by the slew applied while the broker runs.
public struct AnchoredClock: Sendable {
    private let wallAtStart: UInt64, monotonicAtStart: UInt64

    public init(wall: UInt64 = wallMillis(), monotonic: UInt64 = AnchoredClock.monotonicMillis()) {
        wallAtStart = wall
        monotonicAtStart = monotonic
    }

    /// Milliseconds of CLOCK_MONOTONIC (never steps backwards or forwards).
    public static func monotonicMillis() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }

    /// The time for a monotonic reading (the current one by default).
    public func now(monotonic: UInt64 = AnchoredClock.monotonicMillis()) -> UInt64 {
        wallAtStart + (monotonic &- monotonicAtStart)
    }
}

/// The broker process: binds the three ROUTER endpoints and runs the state machine's event loop on the calling
/// thread (give it a thread of its own). Each loop round reads what is waiting, feeds it to `BrokerCore` inside
/// one journal transaction, commits, and only then sends the replies, tasks and results.
public final class BrokerServer {
    public let config: BrokerConfig
    public let endpoints: BrokerEndpoints
    public let journalPath: String
    public let sync: JournalSync
    let logger: Logger
    /// Signalled to stop the loop (from a signal handler or another thread).
    public let stop: WakeFD
    /// Called once the endpoints are bound, with the actual addresses (ports resolved).
    public var onBound: (@Sendable (BrokerEndpoints) -> Void)?
    /// Most messages read from one socket in one round; bounds a group commit.
    public var maxReadsPerRound = 4096
    /// CURVE on all three endpoints, letting in only the listed public keys; nil for plaintext.
    public var curve: CurveServerConfig?

    public init(config: BrokerConfig, endpoints: BrokerEndpoints, journalPath: String, sync: JournalSync = .full,
                logger: Logger = Logger(label: "hume.broker")) throws {
        self.config = config
        self.endpoints = endpoints
        self.journalPath = journalPath
        self.sync = sync
        self.logger = logger
        self.stop = try WakeFD()
    }

    /// Runs until `stop` is signalled. Throws when the journal fails or an endpoint cannot be bound.
    public func run() throws {
        let queue = try SQLiteJournal.openQueue(path: journalPath, sync: sync)
        try queue.inDatabase { db in try self.loop(db) }
    }

    func loop(_ db: Database) throws {
        let journal = try SQLiteJournal(db)
        let context = ZMQContext()
        // The ZAP handler is up before any socket binds (without one libzmq would let every key in).
        let zap = try curve.map { c in
            try ZAPHandler(context: context, allowed: c.allowed) { [logger] address, key in
                logger.warning("refused a CURVE handshake: key not allowed", metadata: ["peer": "\(address)", "key": "\(key)"])
            }
        }
        defer { zap?.stop() }
        let sockets = try [Endpoint.workers, .clients, .control].map { ep -> ZMQSocketBox in
            let s = try ZMQSocket(context, .router)
            if let c = curve { try s.makeCurveServer(c) }
            try s.setOption(ZMQ_ROUTER_MANDATORY, 1)
            try s.setOption(ZMQ_SNDHWM, 200_000)
            try s.setOption(ZMQ_RCVHWM, 200_000)
            try s.bind(ep == .workers ? endpoints.workers : ep == .clients ? endpoints.clients : endpoints.control)
            return ZMQSocketBox(s)
        }
        // The HTTP listener (metrics, status page) runs on a thread of its own and asks this loop to render.
        let http = try endpoints.metrics.map { try HTTPResponder(address: $0) }
        let mailbox = try RenderMailbox()
        if let http {
            let t = Thread { http.run { mailbox.render($0, timeoutMs: 2000) } }
            t.name = "hume-broker-http"
            t.start()
        }
        defer {
            http?.stop.wake()
            mailbox.close()
        }
        let bound = BrokerEndpoints(workers: try sockets[0].socket.lastEndpoint(), clients: try sockets[1].socket.lastEndpoint(),
                                    control: try sockets[2].socket.lastEndpoint(), metrics: http?.address)
        try journal.begin()
        let clock = AnchoredClock()
        let core = try BrokerCore(config: config, journal: journal, now: clock.now(), logger: logger)
        try journal.commit()
        logger.info("broker listening", metadata: ["workers": "\(bound.workers)", "clients": "\(bound.clients)",
                                                   "control": "\(bound.control)", "metrics": "\(bound.metrics ?? "off")",
                                                   "journal": "\(journalPath)",
                                                   "security": "\(curve == nil ? "plaintext" : "CURVE, \(curve!.allowed.count) keys allowed")"])
        onBound?(bound)

        var poller = ZMQPoller()
        for s in sockets { poller.add(s.socket) }
        let stopIndex = poller.add(fd: stop.fd)
        let renderIndex = poller.add(fd: mailbox.wake.fd)
        let endpointsByIndex: [Endpoint] = [.workers, .clients, .control]

        while true {
            var now = clock.now()
            let wait = Int(max(0, Int64(core.nextDeadline(now: now)) - Int64(now)))
            _ = try poller.poll(timeoutMs: wait)
            if poller.isReadable(stopIndex) { break }
            // Pages render here, between rounds: everything they show has been committed.
            if poller.isReadable(renderIndex) { mailbox.serve { Self.page($0, core) } }
            now = clock.now()
            let outgoing = try core.round(now: now) {
                for (i, box) in sockets.enumerated() where poller.isReadable(i) {
                    var reads = 0
                    while reads < maxReadsPerRound, let frames = try box.socket.receive(dontWait: true) {
                        reads += 1
                        guard frames.count >= 2 else { continue }  // ROUTER always prefixes the peer id
                        try core.handle(endpointsByIndex[i], peer: frames[0], frames: frames[1...], now: now)
                    }
                }
            }
            for out in outgoing {
                let box = sockets[out.endpoint == .workers ? 0 : out.endpoint == .clients ? 1 : 2]
                if try !box.socket.send(out.head, records: out.records, dontWait: true) {
                    logger.debug("dropped a message to a peer that is gone", metadata: ["command": "\(out.command.rawValue)"])
                }
            }
        }
        try journal.commit()
        logger.info("broker stopped")
    }
}

extension BrokerServer {
    /// Renders one HTTP request from the state machine: `/metrics`, `/` (status page), `/status.json`.
    static func page(_ request: HTTPRequest, _ core: BrokerCore) -> HTTPResponse {
        switch request.path {
        case "/metrics":
            return HTTPResponse(contentType: "text/plain; version=0.0.4; charset=utf-8", text: core.metricsText())
        case "/", "/status":
            guard let s = try? core.status(req: nil) else { return HTTPResponse(status: 503, text: "Status is unavailable.\n") }
            return HTTPResponse(contentType: "text/html; charset=utf-8", text: statusPageHTML(s, images: core.recentImages))
        case "/status.json":
            guard let s = try? core.status(req: nil) else { return HTTPResponse(status: 503, text: "Status is unavailable.\n") }
            return HTTPResponse(contentType: "application/json", text: s.serialized + "\n")
        default:
            return HTTPResponse(status: 404, text: "Not found. Try /metrics, / (status page) or /status.json.\n")
        }
    }
}

/// Holds a non-copyable socket in an array.
final class ZMQSocketBox {
    let socket: ZMQSocket
    init(_ s: consuming ZMQSocket) { socket = s }
}
