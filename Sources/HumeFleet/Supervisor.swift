import Foundation
import HumeClient
import HumeCore
import Logging

/// The path of the running executable (children are started from the same binary).
public func currentExecutable() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    if n > 0 { return String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    return CommandLine.arguments[0]
}

/// The `hume` binary children run: `HUME_BIN` if set, this process if it is `hume`, else a `hume` beside this
/// executable (a test runner in the same build folder).
public func humeExecutable() -> String {
    if let p = ProcessInfo.processInfo.environment["HUME_BIN"], !p.isEmpty { return p }
    let me = currentExecutable()
    if (me as NSString).lastPathComponent == "hume" { return me }
    var dir = (me as NSString).deletingLastPathComponent
    // A test bundle sits in .build/<triple>/debug/X.xctest (a directory on macOS, a binary on Linux).
    if dir.hasSuffix(".xctest/Contents/MacOS") { dir = (((dir as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent }
    return dir + "/hume"
}

/// A child process of the supervisor, with its log file.
public final class Child {
    public let role: String
    public let arguments: [String]
    public private(set) var process: Process
    public private(set) var restarts = 0
    var stopping = false
    var lastSignal = Date.distantPast
    var startedAt = Date()
    let logPath: String
    let environment: [String: String]

    init(role: String, arguments: [String], logPath: String, environment: [String: String]) throws {
        self.role = role
        self.arguments = arguments
        self.logPath = logPath
        self.environment = environment
        process = Process()
        try start()
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: humeExecutable())
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        if let h = FileHandle(forWritingAtPath: logPath) {
            h.seekToEndOfFile()
            p.standardOutput = h
            p.standardError = h
        }
        p.standardInput = FileHandle.nullDevice
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

/// Starts a broker and N workers per stage as child processes on one machine, restarts crashed ones, and applies
/// `SCALE` requests relayed by the broker (scale-down drains the chosen workers).
public final class Supervisor {
    public struct Options: Sendable {
        public var directory: String
        public var replicas: [(stage: String, count: Int)]
        public var endpoints: [String: String]  // workers, clients, control
        public var brokerArguments: [String] = []
        public var workerArguments: [String: [String]] = [:]  // per stage
        public var environment: [String: String] = ["OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"]

        public init(directory: String, replicas: [(stage: String, count: Int)], endpoints: [String: String]) {
            self.directory = directory
            self.replicas = replicas
            self.endpoints = endpoints
        }
    }

    public let options: Options
    let logger: Logger
    public private(set) var broker: Child?
    public private(set) var workers: [String: [Child]] = [:]
    var targets: [String: Int] = [:]
    var workerSerial = 0
    public let stop: WakeFD

    public init(options: Options, logger: Logger = Logger(label: "hume.up")) throws {
        self.options = options
        self.logger = logger
        stop = try WakeFD()
        for r in options.replicas { targets[r.stage] = r.count }
    }

    var logDir: String { options.directory + "/logs" }

    func startBroker() throws -> Child {
        var args = ["broker", "--journal", options.directory + "/journal.sqlite",
                    "--bind-workers", options.endpoints["workers"]!, "--bind-clients", options.endpoints["clients"]!,
                    "--bind-control", options.endpoints["control"]!]
        args += options.brokerArguments
        return try Child(role: "broker", arguments: args, logPath: logDir + "/broker.log", environment: options.environment)
    }

    func startWorker(_ stage: String) throws -> Child {
        workerSerial += 1
        let args = ["worker", stage, "--broker", options.endpoints["workers"]!, "--name", "\(stage)-\(workerSerial)"]
            + (options.workerArguments[stage] ?? [])
        return try Child(role: stage, arguments: args, logPath: logDir + "/\(stage)-\(workerSerial).log",
                         environment: options.environment)
    }

    /// Waits until the broker answers STATUS.
    func waitForBroker(timeoutMs: Int) throws {
        let conn = try BrokerConnection(endpoint: options.endpoints["control"]!)
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while Date() < deadline {
            if (try? conn.request(.status, timeoutMs: 500)) != nil { return }
            if let b = broker, !b.isRunning {
                throw HumeError(.system, "The broker exited at start-up (status \(b.process.terminationStatus)); see \(logDir)/broker.log.")
            }
        }
        throw HumeError(.timeout, "The broker did not come up within \(timeoutMs) ms; see \(logDir)/broker.log.")
    }

    /// Starts the fleet, then supervises it until `stop` is signalled; drains everything on the way out.
    /// `onReady` is called once the broker answers and the workers are started.
    public func run(onReady: () -> Void = {}) throws {
        try FileManager.default.createDirectory(atPath: logDir, withIntermediateDirectories: true)
        broker = try startBroker()
        try waitForBroker(timeoutMs: 20_000)
        for (stage, n) in targets.sorted(by: { $0.key < $1.key }) {
            workers[stage] = try (0..<n).map { _ in try startWorker(stage) }
        }
        let control = try BrokerConnection(endpoint: options.endpoints["control"]!)
        _ = try? control.request(.supervise, timeoutMs: 2000)
        onReady()
        var lastSupervise = Date()
        while true {
            let (_, fds) = try control.wait(timeoutMs: 200, fds: [stop.fd])
            if fds[0] { break }
            while let m = try? control.receive(timeoutMs: 0) {
                if m.command == .scale, let stage = m.header["stage"]?.string, let n = m.header["replicas"]?.int {
                    logger.info("scaling", metadata: ["stage": "\(stage)", "replicas": "\(n)"])
                    targets[stage] = n
                }
            }
            try reconcile()
            if Date().timeIntervalSince(lastSupervise) > 5 {
                // Re-register in case the broker restarted.
                try control.send(Message(.supervise, header: .object(["req": JSON(0)])))
                lastSupervise = Date()
            }
        }
        shutdown()
    }

    /// Restarts crashed children and moves each stage toward its target replica count.
    func reconcile() throws {
        if let b = broker, !b.isRunning {
            logger.warning("broker exited; restarting", metadata: ["status": "\(b.process.terminationStatus)"])
            try b.restart()
        }
        for (stage, target) in targets {
            var list = workers[stage] ?? []
            // Drop children that finished draining; restart ones that crashed.
            list.removeAll { $0.stopping && !$0.isRunning }
            for c in list { c.reterminateIfStuck() }
            for c in list where !c.stopping && !c.isRunning {
                logger.warning("worker exited; restarting", metadata: ["stage": "\(stage)", "status": "\(c.process.terminationStatus)"])
                try c.restart()
            }
            let live = list.filter { !$0.stopping }
            if live.count < target {
                for _ in live.count..<target { list.append(try startWorker(stage)) }
            } else if live.count > target {
                for c in live.suffix(live.count - target) { c.terminate() }
            }
            workers[stage] = list
        }
    }

    /// Drains the workers (SIGTERM), then stops the broker.
    public func shutdown() {
        let all = workers.values.flatMap { $0 }
        for c in all { c.terminate() }
        let deadline = Date().addingTimeInterval(30)
        while all.contains(where: { $0.isRunning }) && Date() < deadline {
            for c in all { c.reterminateIfStuck() }
            usleep(50_000)
        }
        for c in all where c.isRunning { kill(c.pid, SIGKILL) }
        if let b = broker {
            b.terminate()
            let d2 = Date().addingTimeInterval(10)
            while b.isRunning && Date() < d2 { usleep(20_000) }
            if b.isRunning { kill(b.pid, SIGKILL) }
        }
    }

    /// Live worker counts per stage.
    public var liveCounts: [String: Int] { workers.mapValues { $0.filter { !$0.stopping && $0.isRunning }.count } }
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
