import ArgumentParser
import Foundation
import HumeBroker
import HumeClient
import HumeCore
import HumeEvaluation
import HumeTransport
import HumeFleet
import Logging

/// Parses "stage=N" pairs.
func parseReplicas(_ args: [String]) throws -> [(stage: String, count: Int)] {
    try args.map { a in
        let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, validateStageName(parts[0]), let n = Int(parts[1]), n >= 0, n <= 64 else {
            throw CLIFailure("\"\(a)\" is not STAGE=N (a stage name and 0 to 64 replicas), e.g. noop=2.")
        }
        return (parts[0], n)
    }
}

/// Parses "stage=MIN..MAX" autoscaling ranges.
func parseRanges(_ args: [String]) throws -> [String: ClosedRange<Int>] {
    var out: [String: ClosedRange<Int>] = [:]
    for a in args {
        let parts = a.split(separator: "=", maxSplits: 1).map(String.init)
        let bounds = parts.count == 2 ? parts[1].components(separatedBy: "..") : []
        guard parts.count == 2, validateStageName(parts[0]), bounds.count == 2, let lo = Int(bounds[0]), let hi = Int(bounds[1]),
              lo >= 0, lo <= hi, hi <= 64 else {
            throw CLIFailure("\"\(a)\" is not STAGE=MIN..MAX (a stage name and 0 ≤ MIN ≤ MAX ≤ 64 replicas), e.g. denoise=1..8.")
        }
        out[parts[0]] = lo...hi
    }
    return out
}

struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Start a broker and workers on this machine; restart crashed ones; autoscale; Ctrl-C drains and stops.")

    @Argument(help: "Replicas per stage, e.g. noop=2 noop2=1 (default: noop=1 unless --autoscale names stages).") var replicas: [String] = []
    @Option(help: "Autoscale a stage between MIN and MAX replicas, e.g. denoise=1..8 (repeatable).") var autoscale: [String] = []
    @Option(help: "Autoscaling: longest a queued task should wait for a worker, ms.") var targetWaitMs = 2000.0
    @Option(help: "Autoscaling: scale down only after the load needed fewer replicas for this long, ms.")
    var scaleDownWindowMs = 20_000
    @Option(help: "Serve Prometheus metrics (/metrics) and a status page (/) over HTTP here, e.g. 127.0.0.1:9464.")
    var metrics: String?
    @Option(help: "Directory for the journal and logs.") var dir = "var"
    @Option(help: "Endpoint workers connect to.") var bindWorkers = "tcp://127.0.0.1:5555"
    @Option(help: "Endpoint clients connect to.") var bindClients = "tcp://127.0.0.1:5556"
    @Option(help: "Endpoint for control.") var bindControl = "tcp://127.0.0.1:5557"
    @Option(help: "noop workers: simulated work time per task, ms.") var workMs = 0.0
    @Option(help: "CURVE on every endpoint with keys in this directory (made when missing): broker.key, fleet.key for the workers, and allowed/*.pub (add your clients' .pub files there). Required when binding beyond loopback.")
    var curve: String?
    @Flag(help: "Allow plaintext on endpoints that are not loopback.") var insecure = false
    @Option(help: "Also serve HTTP/JSON here with hume-gateway (built beside hume: swift build -c release --product hume-gateway), e.g. 127.0.0.1:8080; restarted if it exits.")
    var gateway: String?
    @Option(help: "The gateway's bearer tokens, one per line (required when --gateway is not loopback).") var gatewayTokenFile: String?
    @Option(parsing: .unconditional, help: "Extra arguments for the broker, e.g. --broker-args=--queue-capacity=5000.")
    var brokerArgs: String?

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let ranges = try parseRanges(autoscale)
        let fixed = try parseReplicas(replicas.isEmpty && ranges.isEmpty ? ["noop=1"] : replicas)
        var opts = Supervisor.Options(directory: dir, replicas: fixed,
                                      endpoints: BrokerEndpoints(workers: bindWorkers, clients: bindClients, control: bindControl))
        opts.autoscale = ranges
        guard targetWaitMs > 0 else { throw CLIFailure("--target-wait-ms must be above 0.") }
        opts.autoscaleConfig.targetQueueWaitMs = targetWaitMs
        guard scaleDownWindowMs >= 1000 else { throw CLIFailure("--scale-down-window-ms must be at least 1000.") }
        opts.autoscaleConfig.downStabilizationMs = UInt64(scaleDownWindowMs)
        if let metrics { opts.brokerArguments += ["--metrics", metrics] }
        if let brokerArgs { opts.brokerArguments += brokerArgs.split(separator: " ").map(String.init) }
        let stages = Set(fixed.map(\.stage)).union(ranges.keys)
        for s in stages where workMs > 0 { opts.workerArguments[s] = ["--work-ms", "\(workMs)"] }
        if let curve {
            let files = try fleetKeys(curve)
            opts.brokerArguments += ["--curve-key", files.brokerKey, "--allow-keys", files.allowed]
            // The workers (children) and this process's own control connection use the fleet key.
            opts.environment["HUME_CURVE_KEY"] = files.fleetKey
            opts.environment["HUME_SERVER_KEY"] = files.brokerPub
            opts.curve = try CurveClientConfig.from(keyFile: files.fleetKey, serverKey: files.brokerPub)
            stderrLine("hume up: CURVE on; clients use HUME_CURVE_KEY=<their .key> HUME_SERVER_KEY=\(files.brokerPub), with their .pub in \(files.allowed).")
        } else if insecure {
            opts.brokerArguments.append("--insecure")
        } else if let open = [bindWorkers, bindClients, bindControl].first(where: { !isLocalEndpoint($0) }) {
            throw CLIFailure("\(open) is reachable from other machines: give --curve DIR (keys are made there), or --insecure to accept plaintext.")
        }
        if let gateway {
            let exe = Supervisor.gatewayExecutable()
            guard FileManager.default.isExecutableFile(atPath: exe) else {
                throw CLIFailure("--gateway needs hume-gateway beside hume (\(exe)); build it with `swift build -c release --product hume-gateway` (or without -c release for a debug hume).")
            }
            opts.gatewayArguments = ["--bind", gateway] + (gatewayTokenFile.map { ["--token-file", $0] } ?? [])
        } else if gatewayTokenFile != nil {
            throw CLIFailure("--gateway-token-file goes with --gateway HOST:PORT.")
        }
        let sup = try Supervisor(options: opts)
        let stop = sup.stop
        onTerminationSignal { stop.wake() }
        do {
            try sup.run {
                var ws = fixed.filter { ranges[$0.stage] == nil }.map { "\($0.stage)×\($0.count)" }
                ws += ranges.sorted { $0.key < $1.key }.map { "\($0.key) autoscaled \($0.value.lowerBound)..\($0.value.upperBound)" }
                let m = (metrics.map { ", metrics http://\($0)/metrics" } ?? "") + (gateway.map { ", HTTP http://\($0)/v1/" } ?? "")
                stderrLine("hume up: broker ready (clients \(bindClients), workers \(bindWorkers), control \(bindControl)\(m)); workers: \(ws.joined(separator: ", ")); logs in \(dir)/logs. Ctrl-C to stop.")
            }
        }
        stderrLine("hume up: stopped.")
    }
}

/// The fleet's key files under `dir`, made when missing: the broker's pair, one pair shared by the fleet's workers,
/// and the allow list (a directory of .pub files holding the fleet's key).
func fleetKeys(_ dir: String) throws -> (brokerKey: String, brokerPub: String, fleetKey: String, allowed: String) {
    let fm = FileManager.default
    for name in ["broker", "fleet"] where !fm.fileExists(atPath: "\(dir)/\(name).key") {
        _ = try CurveKeyPair.generate().write(directory: dir, name: name)
    }
    let allowed = dir + "/allowed"
    try fm.createDirectory(atPath: allowed, withIntermediateDirectories: true)
    let fleetPub = try CurveKeyPair.load(dir + "/fleet.key").publicKey
    if !fm.fileExists(atPath: allowed + "/fleet.pub") { try (fleetPub + "\n").write(toFile: allowed + "/fleet.pub", atomically: true, encoding: .utf8) }
    if !fm.fileExists(atPath: dir + "/broker.pub") {
        try (try CurveKeyPair.load(dir + "/broker.key").publicKey + "\n").write(toFile: dir + "/broker.pub", atomically: true, encoding: .utf8)
    }
    return (dir + "/broker.key", dir + "/broker.pub", dir + "/fleet.key", allowed)
}

struct ScaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Change a running fleet's replicas: STAGE=N (fixed; scale-down drains) or STAGE=MIN..MAX (autoscale).")

    @Argument(help: "STAGE=N or STAGE=MIN..MAX pairs.") var replicas: [String]
    @Option(help: "The broker's control endpoint.") var control = Defaults.control

    func run() throws {
        let conn = try BrokerConnection(endpoint: control, curve: try environmentCurve())
        for a in replicas {
            if a.contains("..") {
                for (stage, r) in try parseRanges([a]) {
                    _ = try conn.request(.scale, header: ["stage": .string(stage), "min": JSON(r.lowerBound), "max": JSON(r.upperBound)])
                    print("\(stage): autoscaling within \(r.lowerBound)..\(r.upperBound)")
                }
            } else {
                for (stage, n) in try parseReplicas([a]) {
                    _ = try conn.request(.scale, header: ["stage": .string(stage), "replicas": JSON(n)])
                    print("\(stage): scaling to \(n)")
                }
            }
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show stages, workers, batches and scaling decisions; --watch keeps a live view until Ctrl-C.")

    @Option(help: "The broker's control endpoint.") var control = Defaults.control
    @Flag(help: "Print JSON (the STATUS snapshot).") var json = false
    @Flag(help: "Refresh until Ctrl-C (on a terminal; piped, it prints once).") var watch = false
    @Option(help: "Seconds between refreshes with --watch.") var interval = 1.0

    func run() throws {
        let conn = try BrokerConnection(endpoint: control, curve: try environmentCurve())
        let live = watch && isatty(1) != 0
        guard live else {
            let s = try conn.request(.status).header
            if json {
                print(s.serialized)
            } else {
                var view = StatusView(width: terminalColumns() ?? 120)
                print(view.render(s), terminator: "")
            }
            return
        }
        let stop = try WakeFD()
        onTerminationSignal { stop.wake() }
        var view = StatusView()
        var lastError: String?
        write("\u{1B}[?25l")  // hide the cursor while redrawing
        defer { write("\u{1B}[?25h") }
        while true {
            view.width = terminalColumns() ?? 120
            var frame: String
            do {
                let s = try conn.request(.status, timeoutMs: 2000).header
                lastError = nil
                frame = json ? s.serialized + "\n" : view.render(s)
            } catch {
                lastError = (error as? HumeError)?.message ?? "\(error)"
                frame = "hume status: \(lastError!) Retrying…\n"
            }
            if json {
                write(frame)
            } else {
                // Home, redraw every line clearing its tail, clear below: no flicker.
                let body = frame.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\u{1B}[K\n")
                write("\u{1B}[H" + body + "\u{1B}[J")
            }
            var p = pollfd(fd: stop.fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(max(0.1, interval) * 1000)) > 0 { break }
        }
        if !json { write("\n") }
    }

    func write(_ s: String) {
        FileHandle.standardOutput.write(Data(s.utf8))
    }
}

/// The terminal's width, when stdout is one.
func terminalColumns() -> Int? {
    var ws = winsize()
    guard ioctl(1, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 else { return nil }
    return Int(ws.ws_col)
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel jobs: a whole batch, or job ids.")

    @Option(help: "Cancel every unfinished job of this batch.") var batch: String?
    @Option(help: "Job ids to cancel.") var job: [Int] = []
    @Option(help: "The broker's client endpoint.") var broker = Defaults.clients

    func run() throws {
        guard batch != nil || !job.isEmpty else { throw CLIFailure("Name what to cancel: --batch NAME or --job ID (repeatable).") }
        let conn = try BrokerConnection(endpoint: broker, curve: try environmentCurve())
        var h: [String: JSON] = [:]
        if let batch { h["batch"] = .string(batch) } else { h["jobs"] = .array(job.map { JSON($0) }) }
        let r = try conn.request(.cancel, header: h)
        print("cancelled \(r.header["cancelled"]?.int ?? 0) job(s)")
    }
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks.", subcommands: [BenchBroker.self, BenchCore.self, BenchScale.self, BenchChaos.self, BenchSubmit.self, BenchEmbed.self, BenchDenoise.self, BenchEdit.self, BenchRetrieve.self, BenchE2E.self])
}

struct BenchScale: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Throughput vs replicas of a noop stage (efficiency vs R × 1000/work-ms), and the autoscaler's step response.")

    @Option(help: "Replica counts to measure, comma-separated.") var replicas = "1,2,4,8,16"
    @Option(help: "Service time per task, ms.") var workMs = 20.0
    @Option(help: "Seconds measured per replica count (after a 2 s warm-up).") var seconds = 10.0
    @Flag(help: "Skip the autoscaler step response.") var noStep = false
    @Option(help: "Step response: low and high arrival rates, tasks/s.") var lowRate = 30.0
    @Option(help: "Step response: high arrival rate, tasks/s.") var highRate = 200.0
    @Option(help: "Step response: seconds at the high rate.") var stepSeconds = 60.0
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var b = ScaleBench()
        b.replicaCounts = replicas.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }.filter { $0 > 0 }
        guard !b.replicaCounts.isEmpty, workMs > 0, seconds > 0 else { throw CLIFailure("Give --replicas as counts like 1,2,4, and positive --work-ms and --seconds.") }
        b.workMs = workMs
        b.seconds = seconds
        b.step = !noStep
        b.lowRate = lowRate
        b.highRate = highRate
        b.phases.high = stepSeconds
        let r = try b.run(progress: { stderrLine("  " + $0) })
        if json {
            print(r.serialized)
            return
        }
        print("replicas  tasks/s   ideal     efficiency  mean-ms")
        for p in r["efficiency"]?.array ?? [] {
            print(pad("\(p["replicas"]?.int ?? 0)", 10) + pad("\(p["tasks_per_s"]?.double ?? 0)", 10) + pad("\(p["ideal_tasks_per_s"]?.double ?? 0)", 10)
                + pad("\(p["efficiency"]?.double ?? 0)", 12) + "\(p["mean_service_ms"]?.double ?? 0)")
        }
        if let st = r["step_response"] {
            for k in ["before_step", "step_up", "step_down"] {
                guard let p = st[k] else { continue }
                print("\(pad(k, 12)) rate \(p["rate_per_s"]?.double ?? 0)/s: needs \(p["needed_replicas"]?.int ?? 0), ended at \(p["final_replicas"]?.int ?? 0), "
                      + "settled after \(p["settled_after_s"]?.double ?? 0) s, \(p["changes"]?.int ?? 0) change(s)")
            }
        }
    }
}

struct BenchCore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "The broker's CPU per job (decode, state machine, SQLite journal, encode) in one process with no sockets.")

    @Option(help: "Stages in each job's route.") var stages = 1
    @Option(help: "Jobs per run.") var tasks = 200_000
    @Option(help: "Jobs per SUBMIT message.") var chunk = 1000
    @Option(help: "Runs; the median is reported.") var runs = 5
    @Flag(help: "Then also forget every ended job (the clock moved past --keep-ended's default) and report its CPU per job.")
    var forget = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var b = CoreBench()
        b.stages = stages
        b.tasks = tasks
        b.chunk = chunk
        b.forget = forget
        guard stages >= 1, stages <= 5, tasks > 0, chunk > 0, runs > 0 else { throw CLIFailure("Give --stages 1 to 5 and positive --tasks, --chunk and --runs.") }
        guard !forget || tasks >= 2 else { throw CLIFailure("--forget needs --tasks 2 or more: the newest job is never forgotten.") }
        var perJob: [Double] = [], forgetPerJob: [Double] = [], forgetRound: [Double] = []
        for i in 0..<runs {
            let r = try b.run(directory: NSTemporaryDirectory())
            perJob.append(r["broker_cpu_us_per_job"]?.double ?? 0)
            if forget {
                forgetPerJob.append(r["forget_cpu_us_per_job"]?.double ?? 0)
                forgetRound.append(r["forget_round_ms_max"]?.double ?? 0)
            }
            if !json { stderrLine("  run \(i + 1): \(r.serialized)") }
        }
        var out: [String: JSON] = ["stages": JSON(stages), "tasks": JSON(tasks), "chunk": JSON(chunk),
                                   "broker_cpu_us_per_job": .number(median(perJob)),
                                   "runs_us_per_job": .array(perJob.map { .number($0) })]
        if forget {
            out["forget_cpu_us_per_job"] = .number(median(forgetPerJob))
            out["forget_round_ms_max"] = .number(median(forgetRound))
        }
        print(json ? JSON.object(out).serialized : "broker CPU per job: \(median(perJob)) µs (median of \(runs): \(perJob))"
              + (forget ? "; forgetting: \(median(forgetPerJob)) µs per job, longest round \(median(forgetRound)) ms (medians)" : ""))
    }
}

struct BenchBroker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "No-op jobs through S stages of W worker processes each; throughput, latency, loss.")

    @Option(help: "Stages in each job's route.") var stages = 1
    @Option(help: "Jobs to submit.") var tasks = 100_000
    @Option(help: "Worker processes per stage.") var workers = 1
    @Option(help: "Simulated work per task, ms.") var workMs = 0.0
    @Option(help: "Journal sync mode: full or normal.") var sync = "full"
    @Option(help: "Jobs per SUBMIT message.") var chunk = 1000
    @Option(help: "Stop after this many seconds (backpressure mode); lost is then not judged.") var seconds: Double?
    @Option(help: "Broker queue capacity per stage.") var queueCapacity = 20_000
    @Option(help: "Client window.") var window = 10_000
    @Option(help: "Tasks per worker batch (the worker's credit is one batch plus one of prefetch); default: the noop stage's.")
    var workerBatch: Int?
    @Flag(help: "CURVE-encrypt every connection (fresh keys), to measure its cost.") var curve = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var b = BrokerBench()
        b.curve = curve
        b.stages = stages
        b.tasks = tasks
        b.workers = workers
        b.workMs = workMs
        b.sync = sync
        b.chunk = chunk
        b.workerBatch = workerBatch
        b.seconds = seconds
        b.brokerArguments = ["--queue-capacity", "\(queueCapacity)", "--window", "\(window)"]
        let r = try b.run(progress: json ? nil : { d, n in stderrLine("  \(d)/\(n)") })
        if json {
            print(r.serialized)
        } else {
            for (k, v) in (r.object ?? [:]).sorted(by: { $0.key < $1.key }) { print(pad(k, 20) + v.serialized) }
        }
    }
}
