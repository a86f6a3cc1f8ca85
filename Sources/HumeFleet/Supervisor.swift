import Foundation
import HumeClient
import HumeCore
import HumeTransport
import Logging

/// The path of the running executable (children are started from the same binary).
public func currentExecutable() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    if n > 0 { return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    return CommandLine.arguments[0]
}

/// The `hume` binary children run: this process if it is `hume`, else a `hume` beside this executable (a test
/// runner in the same build folder).
public func humeExecutable() -> String {
    let me = currentExecutable()
    if (me as NSString).lastPathComponent == "hume" { return me }
    var dir = (me as NSString).deletingLastPathComponent
    // A test bundle sits in .build/<triple>/debug/X.xctest (a directory on macOS, a binary on Linux).
    if dir.hasSuffix(".xctest/Contents/MacOS") { dir = (((dir as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent }
    return dir + "/hume"
}

/// A child process of a `LocalFleet` (or a benchmark), with its log file.
public final class Child {
    public let role: String
    public let arguments: [String]
    /// The program: `hume` unless given (the gateway is an executable of its own).
    let executable: String
    public private(set) var process: Process
    public private(set) var restarts = 0
    var stopping = false
    var lastSignal = Date.distantPast
    var startedAt = Date()
    let logPath: String
    let environment: [String: String]
    /// A file to read standard input from (else /dev/null).
    let stdinPath: String?

    init(role: String, arguments: [String], logPath: String, environment: [String: String], stdinPath: String? = nil,
         executable: String = humeExecutable()) throws {
        self.role = role
        self.arguments = arguments
        self.executable = executable
        self.logPath = logPath
        self.environment = environment
        self.stdinPath = stdinPath
        process = Process()
        try start()
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        env[parentPIDVariable] = String(getpid())   // the child leaves when this process is gone (`exitWhenParentDies`)
        p.environment = env
        // Appended to across restarts, so the lines before a crash are still there to read.
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        if let h = FileHandle(forWritingAtPath: logPath) {
            h.seekToEndOfFile()
            p.standardOutput = h
            p.standardError = h
        }
        p.standardInput = stdinPath.flatMap { FileHandle(forReadingAtPath: $0) } ?? FileHandle.nullDevice
        try p.run()
        process = p
        startedAt = Date()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// Asks the child to drain and exit.
    public func terminate() {
        stopping = true
        lastSignal = Date()
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }

    /// Repeats SIGTERM to a stopping child every 2 s: a signal that lands while the child is still installing its
    /// handler (between ignoring the signal and the dispatch source starting) is lost, and the child would never
    /// drain. A draining worker ignores the repeats.
    func reterminateIfStuck() {
        guard stopping, process.isRunning, Date().timeIntervalSince(lastSignal) > 2 else { return }
        terminate()
    }

    func restart() throws {
        restarts += 1
        try start()
    }
}

/// One replica-count change of the supervisor's, for logs, STATUS and the status page.
public struct ScaleDecision: Sendable, Equatable {
    /// Wall-clock time, Unix ms.
    public var atMs: UInt64
    public var stage: String
    public var from: Int
    public var to: Int
    /// "autoscale" or "manual".
    public var source: String
    public var reason: String

    var json: JSON {
        .object(["at_ms": .number(Double(atMs)), "stage": .string(stage), "from": JSON(from), "to": JSON(to),
                 "source": .string(source), "reason": .string(String(reason.prefix(400)))])
    }
}

/// Starts a broker and N workers per stage as child processes on one machine, restarts crashed ones, applies
/// `SCALE` requests relayed by the broker (scale-down drains the chosen workers), and autoscales the stages given a
/// range: once a second it reads the broker's STATUS, asks `AutoscalePolicy` for each such stage, and applies the
/// answer. Every change is logged and reported to the broker (SUPERVISE `fleet`), so `hume status` shows it.
public final class Supervisor {
    public struct Options: Sendable {
        public var directory: String
        public var replicas: [(stage: String, count: Int)]
        public var endpoints: BrokerEndpoints
        public var brokerArguments: [String] = []
        public var workerArguments: [String: [String]] = [:]  // per stage
        public var environment: [String: String] = ["OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"]
        /// Stages to autoscale, with their replica ranges (default none).
        public var autoscale: [String: ClosedRange<Int>] = [:]
        /// The autoscaling policy's tunables (defaults in `AutoscalePolicy.Config`).
        public var autoscaleConfig = AutoscalePolicy.Config()
        /// How often the supervisor reads STATUS and evaluates the policy, ms (default 1000).
        public var evaluateEveryMs: UInt64 = 1000
        /// CURVE keys for the supervisor's own control connection (the workers get theirs through `environment`).
        public var curve: CurveClientConfig?
        /// `hume-gateway` arguments besides `--broker` (e.g. `--bind HOST:PORT`): with them the supervisor runs an HTTP
        /// gateway in front of the broker's client endpoint, and restarts it if it exits.
        public var gatewayArguments: [String]?

        public init(directory: String, replicas: [(stage: String, count: Int)], endpoints: BrokerEndpoints) {
            self.directory = directory
            self.replicas = replicas
            self.endpoints = endpoints
        }
    }

    public let options: Options
    let logger: Logger
    /// The broker and the workers; nil until `run` starts them.
    public private(set) var fleet: LocalFleet?
    /// The live and draining workers per stage.
    var workers: [String: [Child]] = [:]
    /// The HTTP gateway, when `gatewayArguments` asks for one.
    public private(set) var gateway: Child?
    var targets: [String: Int] = [:]
    var ranges: [String: ClosedRange<Int>] = [:]
    var memories: [String: AutoscaleMemory] = [:]
    var lastAdvice: [String: (recommendation: Int, reason: String)] = [:]
    var changes: [String: Int] = [:]
    var restarts: [String: Int] = [:]
    /// The last 50 decisions, oldest first.
    public private(set) var decisions: [ScaleDecision] = []
    public let stop: WakeFD
    let policy: AutoscalePolicy

    public init(options: Options, logger: Logger = Logger(label: "hume.up")) throws {
        self.options = options
        self.logger = logger
        stop = try WakeFD()
        policy = AutoscalePolicy(config: options.autoscaleConfig)
        for r in options.replicas { targets[r.stage] = r.count }
        for (stage, range) in options.autoscale {
            ranges[stage] = range
            targets[stage] = min(max(targets[stage] ?? range.lowerBound, range.lowerBound), range.upperBound)
        }
    }

    static func uptimeMs() -> UInt64 { DispatchTime.now().uptimeNanoseconds / 1_000_000 }

    /// Starts the fleet, then supervises it until `stop` is signalled; drains everything on the way out.
    /// `onReady` is called once the broker listens and the workers are started.
    public func run(onReady: () -> Void = {}) throws {
        let fleet = try LocalFleet(directory: options.directory, logDirectory: options.directory + "/logs",
                                   endpoints: options.endpoints, brokerArguments: options.brokerArguments,
                                   environment: options.environment, curve: options.curve)
        self.fleet = fleet
        defer { fleet.stop(drainSeconds: 30) }
        for (stage, n) in targets.sorted(by: { $0.key < $1.key }) {
            workers[stage] = try (0..<n).map { _ in try fleet.startWorker(stage, arguments: options.workerArguments[stage] ?? []) }
        }
        if let args = options.gatewayArguments {
            gateway = try Child(role: "gateway", arguments: ["--broker", fleet.endpoints.clients] + args,
                                logPath: fleet.logDirectory + "/gateway.log", environment: options.environment,
                                executable: Self.gatewayExecutable())
        }
        defer {
            // The gateway first (SIGTERM: it stops listening and leaves), so no request reaches a broker going away.
            if let g = gateway {
                g.terminate()
                let deadline = Date().addingTimeInterval(10)
                while g.isRunning && Date() < deadline { usleep(20_000) }
                if g.isRunning { kill(g.pid, SIGKILL) }
            }
        }
        let control = try BrokerConnection(endpoint: fleet.endpoints.control, curve: options.curve)
        _ = try control.trySend(Message(.supervise, header: .object(["req": JSON(0), "fleet": fleetReport()])))
        onReady()
        var nextEvaluation = Self.uptimeMs()
        var statusReq = 0
        while true {
            let (_, fds) = try control.wait(timeoutMs: 100, fds: [stop.fd])
            if fds[0] { break }
            while let m = try? control.receive(timeoutMs: 0) {
                switch m.command {
                case .scale: applyScale(m.header)
                case .status where statusReq != 0 && m.header["req"]?.int == statusReq: autoscale(m.header)
                default: break
                }
            }
            try reconcile(fleet)
            let now = Self.uptimeMs()
            if now >= nextEvaluation {
                nextEvaluation = now + options.evaluateEveryMs
                // Re-register every round (the broker may have restarted) with the fleet's state, and ask for
                // the figures the autoscaler reads; its reply is handled above when it comes. Neither send may
                // block: a broker that is down, or refuses this connection's keys, must not keep the supervisor
                // from restarting it or from stopping when asked.
                _ = try control.trySend(Message(.supervise, header: .object(["req": JSON(0), "fleet": fleetReport()])))
                if !ranges.isEmpty {
                    statusReq = statusReq % 1_000_000 + 1
                    _ = try control.trySend(Message(.status, header: .object(["req": JSON(statusReq)])))
                }
            }
        }
    }

    /// Applies a SCALE relayed by the broker: a fixed count (autoscaling off), or an autoscaling range.
    func applyScale(_ h: JSON) {
        guard let stage = h["stage"]?.string else { return }
        let from = targets[stage] ?? 0
        if let lo = h["min"]?.int, let hi = h["max"]?.int, lo >= 0, lo <= hi {
            ranges[stage] = lo...hi
            memories[stage] = nil
            let to = min(max(from, lo), hi)
            targets[stage] = to
            record(stage, from: from, to: to, source: "manual", reason: "autoscale within \(lo)..\(hi) (hume scale)")
        } else if let n = h["replicas"]?.int, n >= 0 {
            let wasAuto = ranges.removeValue(forKey: stage) != nil
            memories[stage] = nil
            lastAdvice[stage] = nil
            targets[stage] = n
            record(stage, from: from, to: n, source: "manual",
                   reason: "hume scale \(stage)=\(n)" + (wasAuto ? "; autoscaling off for this stage" : ""))
        }
    }

    /// Runs the policy for every autoscaled stage over one STATUS snapshot and applies its answers.
    func autoscale(_ status: JSON) {
        let now = Self.uptimeMs()
        var byName: [String: JSON] = [:]
        for st in status["stages"]?.array ?? [] { if let n = st["name"]?.string { byName[n] = st } }
        for (stage, range) in ranges.sorted(by: { $0.key < $1.key }) {
            guard let st = byName[stage] else { continue }
            func count(_ k: String) -> UInt64 { UInt64(max(0, st[k]?.double ?? 0)) }
            let workers = st["workers"]?.int ?? 0
            let sample = StageSample(queued: st["queued"]?.int ?? 0, inFlight: st["in_flight"]?.int ?? 0,
                                     arrived: count("arrived"), completed: count("completed"),
                                     serviceMsTotal: st["service_ms_total"]?.double ?? 0,
                                     slotsPerReplica: workers > 0 ? (st["capacity"]?.int ?? workers) / workers : nil)
            let current = targets[stage] ?? range.lowerBound
            let d = policy.decide(sample, replicas: current, range: range, now: now, memory: memories[stage] ?? AutoscaleMemory())
            memories[stage] = d.memory
            lastAdvice[stage] = (d.recommendation, d.reason)
            if d.desired != current {
                targets[stage] = d.desired
                record(stage, from: current, to: d.desired, source: "autoscale", reason: d.reason)
            }
        }
    }

    func record(_ stage: String, from: Int, to: Int, source: String, reason: String) {
        logger.info("scale decision", metadata: ["stage": "\(stage)", "from": "\(from)", "to": "\(to)", "source": "\(source)",
                                                 "reason": "\(reason)"])
        if from != to { changes[stage, default: 0] += 1 }
        decisions.append(ScaleDecision(atMs: wallMillis(), stage: stage, from: from, to: to, source: source, reason: reason))
        if decisions.count > 50 { decisions.removeFirst(decisions.count - 50) }
    }

    /// The fleet as SUPERVISE reports it to the broker (PROTOCOL.md 4.3).
    public func fleetReport() -> JSON {
        let stages: [JSON] = targets.keys.sorted().map { stage in
            let list = workers[stage] ?? []
            var o: [String: JSON] = [
                "stage": .string(stage), "replicas": JSON(targets[stage] ?? 0),
                "live": JSON(list.filter { !$0.stopping && $0.isRunning }.count),
                "draining": JSON(list.filter { $0.stopping && $0.isRunning }.count),
                "restarts": JSON(restarts[stage] ?? 0), "changes": JSON(changes[stage] ?? 0),
                "autoscale": ranges[stage].map { .object(["min": JSON($0.lowerBound), "max": JSON($0.upperBound)]) } ?? .null,
            ]
            if let a = lastAdvice[stage] {
                o["recommendation"] = JSON(a.recommendation)
                o["reason"] = .string(String(a.reason.prefix(400)))
            }
            return .object(o)
        }
        return .object(["stages": .array(stages), "decisions": .array(decisions.map(\.json)),
                        "target_queue_wait_ms": .number(options.autoscaleConfig.targetQueueWaitMs)])
    }

    /// `hume-gateway`, beside `hume` in the build folder.
    public static func gatewayExecutable() -> String {
        (humeExecutable() as NSString).deletingLastPathComponent + "/hume-gateway"
    }

    /// Restarts crashed children and moves each stage toward its target replica count.
    func reconcile(_ fleet: LocalFleet) throws {
        if !fleet.broker.isRunning {
            logger.warning("broker exited; restarting", metadata: ["status": "\(fleet.broker.process.terminationStatus)"])
            try fleet.startBroker()
        }
        if let g = gateway, !g.isRunning {
            logger.warning("gateway exited; restarting", metadata: ["status": "\(g.process.terminationStatus)"])
            restarts["gateway", default: 0] += 1
            try g.restart()
        }
        fleet.pruneStopped()
        for (stage, target) in targets {
            var list = workers[stage] ?? []
            // Drop children that finished draining; restart ones that crashed.
            list.removeAll { $0.stopping && !$0.isRunning }
            for c in list { c.reterminateIfStuck() }
            for c in list where !c.stopping && !c.isRunning {
                logger.warning("worker exited; restarting", metadata: ["stage": "\(stage)", "status": "\(c.process.terminationStatus)"])
                restarts[stage, default: 0] += 1
                try c.restart()
            }
            let live = list.filter { !$0.stopping }
            if live.count < target {
                for _ in live.count..<target { list.append(try fleet.startWorker(stage, arguments: options.workerArguments[stage] ?? [])) }
            } else if live.count > target {
                // Drain the newest: SIGTERM makes a worker stop taking work, finish what it holds, report, leave.
                for c in live.suffix(live.count - target) { c.terminate() }
            }
            workers[stage] = list
        }
    }

    /// Live worker counts per stage.
    public var liveCounts: [String: Int] { workers.mapValues { $0.filter { !$0.stopping && $0.isRunning }.count } }
}

/// Wall-clock milliseconds since the Unix epoch.
func wallMillis() -> UInt64 {
    var tv = timeval()
    gettimeofday(&tv, nil)
    return UInt64(tv.tv_sec) * 1000 + UInt64(tv.tv_usec) / 1000
}

/// Runs `body` when SIGINT or SIGTERM arrives (the signals are otherwise ignored) for the rest of the process's
/// life. The dispatch sources are retained on purpose: a source released early (the optimiser may end a local's
/// lifetime at its last use) silently stops delivering signals.
public func onTerminationSignal(_ body: @escaping @Sendable () -> Void) {
    for sig in [SIGINT, SIGTERM] {
        signal(sig, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        s.setEventHandler(handler: body)
        s.resume()
        _ = Unmanaged.passRetained(s as AnyObject)
    }
}
