import ArgumentParser
import Foundation
import HumeBroker
import HumeCore
import HumeTransport
import HumeFleet
import HumeWorker
import Logging

struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "broker", abstract: "Run the broker.")

    @Option(help: "Endpoint workers connect to.") var bindWorkers = "tcp://127.0.0.1:5555"
    @Option(help: "Endpoint clients connect to.") var bindClients = "tcp://127.0.0.1:5556"
    @Option(help: "Endpoint for control (status, scale).") var bindControl = "tcp://127.0.0.1:5557"
    @Option(help: "SQLite journal file.") var journal = "var/journal.sqlite"
    @Option(help: "full (fsync each group commit before acknowledging: survives power loss) or normal (survives kill -9 of any process, not power loss).")
    var sync = "full"
    @Option(help: "Comma-separated stage names to serve.") var stages = BrokerConfig.defaultStages.joined(separator: ",")
    @Option(help: "Most jobs held per stage.") var queueCapacity = 20_000
    @Option(help: "Most bytes held per stage.") var queueBytes = 256 << 20
    @Option(help: "Most unfinished jobs per client connection.") var window = 10_000
    @Option(help: "Most jobs per second one client connection may submit, on average (0: unlimited).") var clientRate = 0.0
    @Option(help: "Failed attempts before a job is dead-lettered.") var maxAttempts = 5
    @Option(help: "How long an ended job's result, status and key are kept after it ended: a number with s, m, h or d (e.g. 90s, 12h, 30d), or forever. A forgotten key submitted again is a new job.")
    var keepEnded = "7d"
    @Option(help: "Worker heartbeat interval, ms.") var heartbeatMs = 1000
    @Option(help: "Worker silence that expires its leases, ms.") var workerTimeoutMs = 5000
    @Option(help: "Serve Prometheus metrics (/metrics) and a status page (/) over HTTP here, e.g. 127.0.0.1:9464 (port 0: any).")
    var metrics: String?
    @Option(help: "Write the bound endpoints as JSON to this file once listening.") var readyFile: String?
    @Option(help: "CURVE: the broker's key file (hume keys generate). Encrypts and authenticates all three endpoints.")
    var curveKey: String?
    @Option(help: "CURVE: the public keys let in (a file of keys, or a directory of .pub files). Required with --curve-key.")
    var allowKeys: String?
    @Flag(help: "Allow plaintext on endpoints that are not loopback (otherwise refused without --curve-key).")
    var insecure = false

    func run() throws {
        guard let mode = JournalSync(rawValue: sync) else { throw CLIFailure("--sync must be normal or full, not \"\(sync)\".") }
        var config = BrokerConfig()
        config.stages = stages.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
        for s in config.stages where !validateStageName(s) {
            throw CLIFailure("Stage name \"\(s)\" is invalid: use 1–32 characters of a–z, 0–9, '_' and '-'.")
        }
        config.queueCapacity = queueCapacity
        config.queueBytes = queueBytes
        config.clientWindow = window
        guard clientRate >= 0, clientRate.isFinite else { throw CLIFailure("--client-rate must be 0 (unlimited) or a positive number of jobs per second.") }
        config.clientRate = clientRate
        config.maxAttempts = max(1, maxAttempts)
        config.keepEndedMs = try parseKeep(keepEnded)
        config.heartbeatMs = UInt64(max(50, heartbeatMs))
        config.workerTimeoutMs = UInt64(max(200, workerTimeoutMs))
        let dir = (journal as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let server = try 
            BrokerServer(config: config, endpoints: BrokerEndpoints(workers: bindWorkers, clients: bindClients, control: bindControl,
                                                                        metrics: metrics),
                             journalPath: journal, sync: mode)
        if let readyFile {
            server.onBound = { ep in
                let j = JSON.object(["workers": .string(ep.workers), "clients": .string(ep.clients), "control": .string(ep.control),
                                     "metrics": ep.metrics.map { .string("http://" + $0) } ?? .null, "pid": JSON(Int(getpid()))])
                let tmp = readyFile + ".tmp"
                _ = FileManager.default.createFile(atPath: tmp, contents: Data(j.serialized.utf8))
                _ = rename(tmp, readyFile)
            }
        }
        server.curve = try brokerSecurity(endpoints: [bindWorkers, bindClients, bindControl], curveKey: curveKey,
                                          allowKeys: allowKeys, insecure: insecure)
        let stop = server.stop
        onTerminationSignal { stop.wake() }
        try server.run()
    }
}

/// `--keep-ended`: "forever" (nil), or a whole number of seconds, minutes, hours or days ("90s", "12h", "30d") in ms.
func parseKeep(_ text: String) throws -> UInt64? {
    let t = text.trimmingCharacters(in: .whitespaces).lowercased()
    if t == "forever" { return nil }
    let units: [Character: UInt64] = ["s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
    guard let unit = t.last.flatMap({ units[$0] }), let n = UInt64(t.dropLast()), n > 0, n <= 36_500 * 86_400_000 / unit else {
        throw CLIFailure("--keep-ended must be a whole number of s, m, h or d greater than 0 (e.g. 90s, 12h, 30d), or forever; got \"\(text)\".")
    }
    return n * unit
}

/// The broker's CURVE set-up from its flags. Fails closed: a key without an allow list (or the reverse), an empty
/// list, or a non-loopback endpoint in plaintext without `--insecure` is refused with one sentence.
func brokerSecurity(endpoints: [String], curveKey: String?, allowKeys: String?, insecure: Bool) throws -> CurveServerConfig? {
    switch (curveKey, allowKeys) {
    case let (k?, a?):
        return CurveServerConfig(keys: try CurveKeyPair.load(k), allowed: try CurveKeyPair.loadAllowList(a))
    case (_?, nil):
        throw HumeError(.invalidInput, "--curve-key needs --allow-keys (the public keys of the workers and clients to let in).")
    case (nil, _?):
        throw HumeError(.invalidInput, "--allow-keys needs --curve-key (the broker's own key; make one with `hume keys generate`).")
    case (nil, nil):
        if let open = endpoints.first(where: { !isLocalEndpoint($0) }), !insecure {
            throw HumeError(.invalidInput, "\(open) is reachable from other machines: give --curve-key and --allow-keys (see `hume keys generate`), or --insecure to accept plaintext.")
        }
        return nil
    }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Run a worker for one stage.")

    @Argument(help: "The stage to serve (noop, noop1…noop5).") var stage: String
    @Option(help: "The broker's worker endpoint.") var broker = Defaults.workers
    @Option(help: "A name for status and logs.") var name: String?
    @Option(help: "noop: simulated work time per task, ms.") var workMs = 0.0
    @Option(help: "noop: fraction of attempts that fail retryably.") var failRate = 0.0
    @Option(help: "Threads running tasks.") var concurrency = 1
    @Option(help: "Tasks per batch.") var batch: Int?
    @Option(help: "CURVE: this worker's key file (default: $HUME_CURVE_KEY).") var curveKey: String?
    @Option(help: "CURVE: the broker's public key, Z85 or a .pub file (default: $HUME_SERVER_KEY).") var serverKey: String?
    @OptionGroup(title: "Upload stage") var upload: UploadOptions

    func run() throws {
        guard validateStageName(stage) else { throw CLIFailure("Stage name \"\(stage)\" is invalid: use 1–32 characters of a–z, 0–9, '_' and '-'.") }
        let impl = try makeStage(stage, workMs: workMs, failRate: failRate, concurrency: concurrency, batch: batch, upload: upload)
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let env = ProcessInfo.processInfo.environment
        let curve = try CurveClientConfig.from(keyFile: curveKey ?? env["HUME_CURVE_KEY"], serverKey: serverKey ?? env["HUME_SERVER_KEY"])
        let runtime = try WorkerRuntime(stage: impl, endpoint: broker, name: name, curve: curve)
        let stop = runtime.stop
        onTerminationSignal { stop.wake() }
        try runtime.run()
    }
}
