import Foundation
import HumeClient
import HumeCore
import HumeTransport

/// Reads a process's peak resident set (VmHWM) in MiB from /proc.
public func peakRSSMiB(pid: Int32) -> Double? {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kb / 1024
    }
    return nil
}

/// A process's CPU time so far (user + system) in seconds, from /proc/PID/stat.
public func cpuSeconds(pid: Int32) -> Double? {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = s.lastIndex(of: ")") else { return nil }
    // Fields after the command name: state is field 3, utime 14 and stime 15 (1-based over the whole line).
    let fields = s[s.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// `hume bench broker`: no-op jobs through S stages of W worker processes each, measured end to end.
public struct BrokerBench {
    public var stages = 1
    public var tasks = 100_000
    public var workers = 1
    public var workMs = 0.0
    public var payloadBytes = 16
    public var sync = "full"
    public var chunk = 1000
    /// `--batch` for every worker; nil leaves the noop stage's default.
    public var workerBatch: Int?
    /// Stop after this many seconds even if unfinished (the backpressure mode); nil waits for every job.
    public var seconds: Double?
    public var brokerArguments: [String] = []
    /// CURVE on every connection (fresh keys for the broker, the workers and the client).
    public var curve = false

    public init() {}

    public func run(progress: ((Int, Int) -> Void)? = nil) throws -> JSON {
        let dir = NSTemporaryDirectory() + "hume-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var security: [String] = []
        var environment = ["OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"]
        var clientCurve: CurveClientConfig?
        if curve {
            let keys = dir + "/keys", allowed = dir + "/keys/allowed"
            let broker = try CurveKeyPair.generate(), fleetKey = try CurveKeyPair.generate()
            let brokerFiles = try broker.write(directory: keys, name: "broker")
            let fleetFiles = try fleetKey.write(directory: keys, name: "fleet")
            try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: fleetFiles.publicFile, toPath: allowed + "/fleet.pub")
            security = ["--curve-key", brokerFiles.keyFile, "--allow-keys", allowed]
            environment["HUME_CURVE_KEY"] = fleetFiles.keyFile
            environment["HUME_SERVER_KEY"] = brokerFiles.publicFile
            clientCurve = CurveClientConfig(keys: fleetKey, serverKey: broker.publicKey)
        }
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--sync", sync] + security + brokerArguments,
                                   environment: environment, curve: clientCurve)
        defer { fleet.stop() }
        let route = (1...stages).map { "noop\($0)" }
        for s in route {
            for _ in 0..<workers {
                try fleet.startWorker(s, arguments: ["--work-ms", "\(workMs)"] + (workerBatch.map { ["--batch", "\($0)"] } ?? []))
            }
        }
        try fleet.waitForWorkers(stages * workers)

        let payload = [UInt8](repeating: 0x61, count: payloadBytes)
        let runID = UInt64.random(in: 0...UInt64.max)
        let specs = (0..<tasks).map { JobSpec(key: "bench-\(runID)-\($0)", data: payload) }
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients, curve: clientCurve)
        let sub = BatchSubmitter(connection: conn, batch: "bench-\(runID)", route: route, jobs: specs)
        sub.chunkSize = chunk
        var sentAt = [UInt64](repeating: 0, count: tasks)
        var latencies: [Double] = []
        latencies.reserveCapacity(tasks)
        var lastShown = 0
        sub.onSent = { range, t in for i in range where sentAt[i] == 0 { sentAt[i] = t } }
        sub.onResult = { r in
            let t = DispatchTime.now().uptimeNanoseconds
            latencies.append(Double(t - sentAt[r.index]) / 1e6)
            if latencies.count - lastShown >= max(1, tasks / 20) {
                lastShown = latencies.count
                progress?(latencies.count, tasks)
            }
        }
        var peak = 0.0
        let brokerCPUStart = cpuSeconds(pid: fleet.broker.pid) ?? 0
        let workersCPU = { fleet.workers.reduce(0.0) { $0 + (cpuSeconds(pid: $1.pid) ?? 0) } }
        let workersCPUStart = workersCPU(), clientCPUStart = cpuSeconds(pid: getpid()) ?? 0
        let start = DispatchTime.now().uptimeNanoseconds
        var finished = false
        let limitMs = seconds.map { UInt64($0 * 1000) }
        while true {
            let elapsed = (DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
            if let l = limitMs, elapsed >= l { break }
            if try sub.run(timeoutMs: 500) { finished = true; break }
            peak = max(peak, peakRSSMiB(pid: fleet.broker.pid) ?? 0)
        }
        let elapsedS = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        peak = max(peak, peakRSSMiB(pid: fleet.broker.pid) ?? 0)
        let brokerCPU = (cpuSeconds(pid: fleet.broker.pid) ?? 0) - brokerCPUStart
        let workerCPU = workersCPU() - workersCPUStart, clientCPU = (cpuSeconds(pid: getpid()) ?? 0) - clientCPUStart
        func perJob(_ s: Double) -> JSON { .number(sub.finishedCount == 0 ? 0 : (s / Double(sub.finishedCount) * 1e7).rounded() / 10) }
        latencies.sort()
        func pct(_ p: Double) -> Double {
            latencies.isEmpty ? 0 : (latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1000).rounded() / 1000
        }
        let done = sub.results.filter { $0?.status == .done }.count
        var out: [String: JSON] = [
            "stages": JSON(stages), "tasks": JSON(tasks), "workers_per_stage": JSON(workers), "work_ms": .number(workMs),
            "worker_batch": workerBatch.map { JSON($0) } ?? .null,
            "journal_sync": .string(sync), "curve": .bool(curve), "elapsed_s": .number((elapsedS * 1000).rounded() / 1000),
            "jobs_finished": JSON(sub.finishedCount),
            "jobs_per_s": .number((Double(sub.finishedCount) / elapsedS).rounded()),
            "tasks_per_s": .number((Double(sub.finishedCount * stages) / elapsedS).rounded()),
            "p50_ms": .number(pct(0.5)), "p99_ms": .number(pct(0.99)),
            "duplicated": JSON(sub.duplicateResults), "busy_replies": JSON(sub.busyReplies),
            "broker_peak_rss_mb": .number((peak * 10).rounded() / 10),
            // CPU the broker spent per finished job: a cost that other load on a shared machine barely moves.
            "broker_cpu_s": .number((brokerCPU * 100).rounded() / 100),
            "broker_cpu_us_per_job": perJob(brokerCPU),
            // The same for the worker processes together and for this process (the client), which share the machine.
            "workers_cpu_us_per_job": perJob(workerCPU), "client_cpu_us_per_job": perJob(clientCPU),
        ]
        if finished {
            out["lost"] = JSON(tasks - done)
        } else {
            out["lost"] = .null
            out["note"] = .string("stopped after \(seconds ?? 0) s by --seconds: jobs_finished of tasks ran; lost is not judged")
        }
        return .object(out)
    }
}
