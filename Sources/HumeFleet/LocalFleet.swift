import Foundation
import HumeClient
import HumeCore
import HumeTransport

/// A broker and its workers as real child processes of this one: the one way Hume launches a fleet on a machine.
/// `hume up` (`Supervisor`) adds restarts, scaling and autoscaling on top; the demo, the benchmarks and the tests
/// use it directly.
///
/// The broker writes a ready file once it listens; the fleet reads its endpoints from there (ephemeral ports
/// included) and keeps them across broker restarts. Logs go to `logDirectory`: `broker.log` and `STAGE-N.log`.
public final class LocalFleet {
    public let directory: String
    public let logDirectory: String
    public private(set) var broker: Child!
    /// Every worker started and not yet pruned, oldest first.
    public private(set) var workers: [Child] = []
    /// Where the broker listens (its bound ports once it is up; kept across restarts).
    public private(set) var endpoints: BrokerEndpoints
    let brokerArguments: [String]
    let environment: [String: String]
    /// CURVE keys for this process's own connections to the broker (status); nil for plaintext.
    public let curve: CurveClientConfig?
    var workerSerial = 0

    /// Starts a broker with a journal in `directory` (created if needed) and waits until it listens.
    /// - Parameters:
    ///   - endpoints: where to bind (default: three ephemeral loopback ports).
    ///   - brokerArguments: extra `hume broker` arguments, kept for restarts.
    ///   - environment: added to this process's environment for every child (BLAS threads capped by default).
    public init(directory: String, logDirectory: String? = nil, endpoints: BrokerEndpoints = .ephemeralLoopback,
                brokerArguments: [String] = [],
                environment: [String: String] = ["OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"],
                curve: CurveClientConfig? = nil, startupTimeout: TimeInterval = 30) throws {
        self.directory = directory
        self.logDirectory = logDirectory ?? directory
        self.endpoints = endpoints
        self.brokerArguments = brokerArguments
        self.environment = environment
        self.curve = curve
        for d in [directory, self.logDirectory] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try startBroker(timeout: startupTimeout)
    }

    var brokerLog: String { logDirectory + "/broker.log" }

    /// Starts (or restarts after a kill or crash) the broker with the same arguments and ports, and waits until it
    /// listens.
    public func startBroker(timeout: TimeInterval = 30) throws {
        let ready = directory + "/broker.ready"
        try? FileManager.default.removeItem(atPath: ready)
        let args = ["broker", "--journal", directory + "/journal.sqlite", "--ready-file", ready] + endpoints.bindArguments
        broker = try Child(role: "broker", arguments: args + brokerArguments, logPath: brokerLog, environment: environment)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: ready), let j = try? JSON.parse(Array(data)),
               let bound = BrokerEndpoints(readyFile: j) {
                endpoints = bound
                return
            }
            if !broker.isRunning {
                let log = (try? String(contentsOfFile: brokerLog, encoding: .utf8)) ?? ""
                throw HumeError(.system, "The broker exited at start-up (status \(broker.process.terminationStatus)); "
                                + "the end of \(brokerLog): \(log.suffix(500))")
            }
            usleep(20_000)
        }
        throw HumeError(.timeout, "The broker did not write \(ready) within \(Int(timeout)) s; see \(brokerLog).")
    }

    /// Starts one worker process for a stage, named `STAGE-N` (N counts every worker this fleet started).
    @discardableResult
    public func startWorker(_ stage: String, arguments: [String] = []) throws -> Child {
        workerSerial += 1
        let name = "\(stage)-\(workerSerial)"
        let c = try Child(role: stage, arguments: ["worker", stage, "--broker", endpoints.workers, "--name", name] + arguments,
                          logPath: logDirectory + "/\(name).log", environment: environment)
        workers.append(c)
        return c
    }

    /// Forgets workers that were asked to stop and have exited.
    public func pruneStopped() {
        workers.removeAll { $0.stopping && !$0.isRunning }
    }

    /// Asks the broker for STATUS.
    public func status() throws -> JSON {
        let conn = try BrokerConnection(endpoint: endpoints.control, curve: curve)
        return try conn.request(.status, timeoutMs: 5000).header
    }

    /// Waits until `count` workers have joined the broker.
    public func waitForWorkers(_ count: Int, timeoutMs: Int = 30_000) throws {
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while Date() < deadline {
            if let s = try? status(), (s["workers"]?.array?.count ?? 0) >= count { return }
            usleep(50_000)
        }
        throw HumeError(.timeout, "Fewer than \(count) workers joined within \(timeoutMs) ms.")
    }

    /// kill -9 of the broker.
    public func killBroker() {
        kill(broker.pid, SIGKILL)
        broker.process.waitUntilExit()
    }

    /// Drains the workers (SIGTERM, repeated while a worker has not started draining; SIGKILL after
    /// `drainSeconds`), then stops the broker. Safe to call twice.
    public func stop(drainSeconds: TimeInterval = 15) {
        for w in workers { w.terminate() }
        let deadline = Date().addingTimeInterval(drainSeconds)
        while workers.contains(where: { $0.isRunning }) && Date() < deadline {
            for w in workers { w.reterminateIfStuck() }
            usleep(20_000)
        }
        for w in workers where w.isRunning { kill(w.pid, SIGKILL) }
        guard let broker else { return }  // it never started: the error that stopped it is reported by the caller
        broker.terminate()
        let d2 = Date().addingTimeInterval(10)
        while broker.isRunning && Date() < d2 { usleep(20_000) }
        if broker.isRunning { kill(broker.pid, SIGKILL) }
    }

    deinit { stop() }
}
