import ArgumentParser
import Foundation
import HumeBroker
import HumeCore
import HumeFleet
import HumeWorker
import Logging

struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "broker", abstract: "Run the broker.")

    @Option(help: "Endpoint workers connect to.") var bindWorkers = "tcp://127.0.0.1:5555"
    @Option(help: "Endpoint clients connect to.") var bindClients = "tcp://127.0.0.1:5556"
    @Option(help: "Endpoint for control (status, scale).") var bindControl = "tcp://127.0.0.1:5557"
    @Option(help: "SQLite journal file.") var journal = "var/journal.sqlite"
    @Option(help: "normal (survives kill -9 of any process) or full (fsync each group commit; survives power loss).")
    var sync = "normal"
    @Option(help: "Comma-separated stage names to serve.") var stages = BrokerConfig.defaultStages.joined(separator: ",")
    @Option(help: "Most jobs held per stage.") var queueCapacity = 20_000
    @Option(help: "Most bytes held per stage.") var queueBytes = 256 << 20
    @Option(help: "Most unfinished jobs per client connection.") var window = 10_000
    @Option(help: "Failed attempts before a job is dead-lettered.") var maxAttempts = 5
    @Option(help: "Worker heartbeat interval, ms.") var heartbeatMs = 1000
    @Option(help: "Worker silence that expires its leases, ms.") var workerTimeoutMs = 5000
    @Option(help: "Write the bound endpoints as JSON to this file once listening.") var readyFile: String?

    func run() throws {
        guard let mode = JournalSync(rawValue: sync) else { fail("--sync must be normal or full, not \"\(sync)\".") }
        var config = BrokerConfig()
        config.stages = stages.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
        for s in config.stages where !validateStageName(s) {
            fail("Stage name \"\(s)\" is invalid: use 1–32 characters of a–z, 0–9, '_' and '-'.")
        }
        config.queueCapacity = queueCapacity
        config.queueBytes = queueBytes
        config.clientWindow = window
        config.maxAttempts = max(1, maxAttempts)
        config.heartbeatMs = UInt64(max(50, heartbeatMs))
        config.workerTimeoutMs = UInt64(max(200, workerTimeoutMs))
        let dir = (journal as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let server = reporting {
            try BrokerServer(config: config, endpoints: BrokerEndpoints(workers: bindWorkers, clients: bindClients, control: bindControl),
                             journalPath: journal, sync: mode)
        }
        if let readyFile {
            server.onBound = { ep in
                let j = JSON.object(["workers": .string(ep.workers), "clients": .string(ep.clients), "control": .string(ep.control),
                                     "pid": JSON(Int(getpid()))])
                let tmp = readyFile + ".tmp"
                _ = FileManager.default.createFile(atPath: tmp, contents: Data(j.serialized.utf8))
                _ = rename(tmp, readyFile)
            }
        }
        let stop = server.stop
        onTerminationSignal { stop.wake() }
        reporting { try server.run() }
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
    @OptionGroup(title: "Upload stage") var upload: UploadOptions

    func run() throws {
        guard validateStageName(stage) else { fail("Stage name \"\(stage)\" is invalid: use 1–32 characters of a–z, 0–9, '_' and '-'.") }
        let impl = reporting { try makeStage(stage, workMs: workMs, failRate: failRate, concurrency: concurrency, batch: batch, upload: upload) }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let runtime = reporting { try WorkerRuntime(stage: impl, endpoint: broker, name: name) }
        let stop = runtime.stop
        onTerminationSignal { stop.wake() }
        reporting { try runtime.run() }
    }
}
