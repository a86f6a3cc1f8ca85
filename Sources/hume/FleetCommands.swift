import ArgumentParser
import Foundation
import HumeClient
import HumeCore
import HumeFleet
import Logging

/// Parses "stage=N" pairs.
func parseReplicas(_ args: [String]) -> [(stage: String, count: Int)] {
    args.map { a in
        let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, validateStageName(parts[0]), let n = Int(parts[1]), n >= 0, n <= 64 else {
            fail("\"\(a)\" is not STAGE=N (a stage name and 0 to 64 replicas), e.g. noop=2.")
        }
        return (parts[0], n)
    }
}

struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Start a broker and workers on this machine; restart crashed ones; Ctrl-C drains and stops.")

    @Argument(help: "Replicas per stage, e.g. noop=2 noop2=1 (default: noop=1).") var replicas: [String] = []
    @Option(help: "Directory for the journal and logs.") var dir = "var"
    @Option(help: "Endpoint workers connect to.") var bindWorkers = "tcp://127.0.0.1:5555"
    @Option(help: "Endpoint clients connect to.") var bindClients = "tcp://127.0.0.1:5556"
    @Option(help: "Endpoint for control.") var bindControl = "tcp://127.0.0.1:5557"
    @Option(help: "noop workers: simulated work time per task, ms.") var workMs = 0.0

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var opts = Supervisor.Options(directory: dir, replicas: parseReplicas(replicas.isEmpty ? ["noop=1"] : replicas),
                                      endpoints: ["workers": bindWorkers, "clients": bindClients, "control": bindControl])
        for r in opts.replicas where workMs > 0 { opts.workerArguments[r.stage] = ["--work-ms", "\(workMs)"] }
        let sup = reporting { try Supervisor(options: opts) }
        let stop = sup.stop
        onTerminationSignal { stop.wake() }
        reporting {
            try sup.run {
                let ws = opts.replicas.map { "\($0.stage)×\($0.count)" }.joined(separator: ", ")
                stderrLine("hume up: broker ready (clients \(bindClients), workers \(bindWorkers), control \(bindControl)); workers: \(ws); logs in \(dir)/logs. Ctrl-C to stop.")
            }
        }
        stderrLine("hume up: stopped.")
    }
}

struct ScaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scale", abstract: "Change a running fleet's replicas, e.g. hume scale noop=4.")

    @Argument(help: "STAGE=N pairs.") var replicas: [String]
    @Option(help: "The broker's control endpoint.") var control = Defaults.control

    func run() throws {
        let conn = reporting { try BrokerConnection(endpoint: control) }
        for (stage, n) in parseReplicas(replicas) {
            _ = reporting { try conn.request(.scale, header: ["stage": .string(stage), "replicas": JSON(n)]) }
            print("\(stage): scaling to \(n)")
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show stages, workers and batches.")

    @Option(help: "The broker's control endpoint.") var control = Defaults.control
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Refresh every second until Ctrl-C.") var watch = false

    func run() throws {
        let conn = reporting { try BrokerConnection(endpoint: control) }
        repeat {
            let s = reporting { try conn.request(.status).header }
            if json {
                print(s.serialized)
            } else {
                if watch { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                print(renderStatus(s))
            }
            if watch { sleep(1) }
        } while watch
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

func renderStatus(_ s: JSON) -> String {
    var out = "STAGE      QUEUED  IN-FLIGHT  WORKERS  DONE       RETRIES  DEAD  MEAN-MS\n"
    for st in s["stages"]?.array ?? [] {
        let busy = (st["occupancy"]?.int ?? 0) > 0 || (st["workers"]?.int ?? 0) > 0 || (st["completed"]?.int ?? 0) > 0
        guard busy else { continue }
        out += pad(st["name"]?.string ?? "?", 11) + pad("\(st["queued"]?.int ?? 0)", 8) + pad("\(st["in_flight"]?.int ?? 0)", 11)
            + pad("\(st["workers"]?.int ?? 0)", 9) + pad("\(st["completed"]?.int ?? 0)", 11) + pad("\(st["retries"]?.int ?? 0)", 9)
            + pad("\(st["dead_letters"]?.int ?? 0)", 6) + "\(st["mean_service_ms"]?.double ?? 0)\n"
    }
    out += "\nWORKER               STAGE      CREDIT  LEASES  DONE\n"
    for w in s["workers"]?.array ?? [] {
        out += pad(w["name"]?.string ?? "?", 21) + pad(w["stage"]?.string ?? "?", 11) + pad("\(w["credit"]?.int ?? 0)", 8)
            + pad("\(w["leases"]?.int ?? 0)", 8) + "\(w["done"]?.int ?? 0)" + ((w["draining"]?.bool ?? false) ? "  (draining)" : "") + "\n"
    }
    out += "\nBATCH                TOTAL     DONE      ACTIVE    FAILED  DEAD  CANCELLED\n"
    for b in s["batches"]?.array ?? [] {
        let total = b["total"]?.int ?? 0, done = b["done"]?.int ?? 0
        out += pad(b["batch"]?.string ?? "?", 21) + pad("\(total)", 10) + pad("\(done)", 10) + pad("\(b["active"]?.int ?? 0)", 10)
            + pad("\(b["failed"]?.int ?? 0)", 8) + pad("\(b["dead_letter"]?.int ?? 0)", 6) + "\(b["cancelled"]?.int ?? 0)"
            + "  " + bar(Double(done) / Double(max(1, total)), width: 20) + "\n"
    }
    return out
}

func bar(_ fraction: Double, width: Int) -> String {
    let n = Int((min(1, max(0, fraction)) * Double(width)).rounded())
    return "[" + String(repeating: "#", count: n) + String(repeating: ".", count: width - n) + "]"
}

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel jobs: a whole batch, or job ids.")

    @Option(help: "Cancel every unfinished job of this batch.") var batch: String?
    @Option(help: "Job ids to cancel.") var job: [Int] = []
    @Option(help: "The broker's client endpoint.") var broker = Defaults.clients

    func run() throws {
        guard batch != nil || !job.isEmpty else { fail("Name what to cancel: --batch NAME or --job ID (repeatable).") }
        let conn = reporting { try BrokerConnection(endpoint: broker) }
        var h: [String: JSON] = [:]
        if let batch { h["batch"] = .string(batch) } else { h["jobs"] = .array(job.map { JSON($0) }) }
        let r = reporting { try conn.request(.cancel, header: h) }
        print("cancelled \(r.header["cancelled"]?.int ?? 0) job(s)")
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks.", subcommands: [BenchBroker.self, BenchEmbed.self, BenchDenoise.self, BenchRetrieve.self, BenchE2E.self])
}

struct BenchBroker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "No-op jobs through S stages of W worker processes each; throughput, latency, loss.")

    @Option(help: "Stages in each job's route.") var stages = 1
    @Option(help: "Jobs to submit.") var tasks = 100_000
    @Option(help: "Worker processes per stage.") var workers = 1
    @Option(help: "Simulated work per task, ms.") var workMs = 0.0
    @Option(help: "Journal sync mode: normal or full.") var sync = "normal"
    @Option(help: "Jobs per SUBMIT message.") var chunk = 1000
    @Option(help: "Stop after this many seconds (backpressure mode); lost is then not judged.") var seconds: Double?
    @Option(help: "Broker queue capacity per stage.") var queueCapacity = 20_000
    @Option(help: "Client window.") var window = 10_000
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var b = BrokerBench()
        b.stages = stages
        b.tasks = tasks
        b.workers = workers
        b.workMs = workMs
        b.sync = sync
        b.chunk = chunk
        b.seconds = seconds
        b.brokerArguments = ["--queue-capacity", "\(queueCapacity)", "--window", "\(window)"]
        let r = reporting { try b.run(progress: json ? nil : { d, n in stderrLine("  \(d)/\(n)") }) }
        if json {
            print(r.serialized)
        } else {
            for (k, v) in (r.object ?? [:]).sorted(by: { $0.key < $1.key }) { print(pad(k, 20) + v.serialized) }
        }
    }
}
