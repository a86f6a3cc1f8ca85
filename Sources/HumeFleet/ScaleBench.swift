import Foundation
import HumeClient
import HumeCore

/// `hume bench scale`: how throughput grows with replicas of one stage, and how the autoscaler answers a load step.
///
/// **Efficiency.** For each replica count R, R `noop` workers with a fixed service time (20 ms: 50 tasks/s each)
/// serve a queue that never runs dry; efficiency = measured tasks/s ÷ (R × 1000 / work-ms). It shows what the
/// broker's per-task overhead (lease, DONE, credit round trip, journal) costs as replicas are added on one machine.
///
/// **Step response.** `hume up --autoscale noop=MIN..MAX` runs as a real supervisor; a paced client submits at a
/// low rate, steps to a high rate, then back. The run reports the replica target over time, how long after each
/// step the target settled at its final count, that count against the one the load needs, and how many changes it
/// took.
public struct ScaleBench {
    public var replicaCounts = [1, 2, 4, 8, 16]
    public var workMs = 20.0
    /// Seconds measured per replica count, after `warmupSeconds`.
    public var seconds = 10.0
    public var warmupSeconds = 2.0
    /// Run the autoscaler step response too.
    public var step = true
    public var lowRate = 30.0
    public var highRate = 200.0
    /// Phase lengths of the step run: low, high, low again (seconds).
    public var phases = (low: 30.0, high: 60.0, after: 45.0)
    public var autoscaleRange = 1...8

    public init() {}

    public func run(progress: ((String) -> Void)? = nil) throws -> JSON {
        var points: [JSON] = []
        for r in replicaCounts {
            let p = try efficiency(replicas: r)
            progress?("R=\(r): \(p["tasks_per_s"]?.double ?? 0) tasks/s, efficiency \(p["efficiency"]?.double ?? 0)")
            points.append(p)
        }
        var out: [String: JSON] = ["work_ms": .number(workMs), "seconds_per_point": .number(seconds), "efficiency": .array(points)]
        if step { out["step_response"] = try stepResponse(progress: progress) }
        return .object(out)
    }

    /// Throughput of R workers over a queue that never runs dry.
    func efficiency(replicas r: Int) throws -> JSON {
        let dir = NSTemporaryDirectory() + "hume-bench-scale-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fleet = try LocalFleet(directory: dir)
        defer { fleet.stop() }
        for _ in 0..<r { try fleet.startWorker("noop", arguments: ["--work-ms", "\(workMs)"]) }
        try fleet.waitForWorkers(r)
        let ideal = Double(r) * 1000 / workMs
        let n = Int(ideal * (warmupSeconds + seconds) * 1.3) + 200
        let runID = UInt64.random(in: 0...UInt64.max)
        let specs = (0..<n).map { JobSpec(key: "scale-\(runID)-\($0)", data: [0x61]) }
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)
        let sub = BatchSubmitter(connection: conn, batch: "scale-\(runID)", route: ["noop"], jobs: specs)
        sub.chunkSize = 1000
        var times: [UInt64] = []
        times.reserveCapacity(n)
        sub.onResult = { _ in times.append(DispatchTime.now().uptimeNanoseconds) }
        let start = DispatchTime.now().uptimeNanoseconds
        let end = start + UInt64((warmupSeconds + seconds) * 1e9)
        while DispatchTime.now().uptimeNanoseconds < end {
            if try sub.run(timeoutMs: 100) { break }
        }
        // Count from the first result after the warm-up to the end of the window.
        let from = start + UInt64(warmupSeconds * 1e9)
        let window = times.filter { $0 >= from && $0 < end }
        let measured = Double(window.count) / seconds
        let status = try fleet.status()
        let noop = status["stages"]?.array?.first { $0["name"]?.string == "noop" }
        return .object([
            "replicas": JSON(r), "tasks_per_s": .number((measured * 10).rounded() / 10), "ideal_tasks_per_s": .number(ideal),
            "efficiency": .number((measured / ideal * 1000).rounded() / 1000),
            "mean_service_ms": noop?["mean_service_ms"] ?? .null, "finished_all": .bool(times.count >= n),
        ])
    }

    /// The autoscaler's answer to a low → high → low load on a real `hume up`.
    func stepResponse(progress: ((String) -> Void)?) throws -> JSON {
        let dir = NSTemporaryDirectory() + "hume-bench-step-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        let ports = (0..<3).map { _ in freeLoopbackPort() }
        let ep = ports.map { "tcp://127.0.0.1:\($0)" }
        let up = try Child(role: "up", arguments: [
            "up", "--autoscale", "noop=\(autoscaleRange.lowerBound)..\(autoscaleRange.upperBound)", "--work-ms", "\(workMs)",
            "--dir", dir, "--bind-workers", ep[0], "--bind-clients", ep[1], "--bind-control", ep[2],
        ], logPath: dir + "/up.log", environment: ["OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"])
        defer {
            up.terminate()
            let d = Date().addingTimeInterval(40)
            while up.isRunning && Date() < d { usleep(50_000) }
            if up.isRunning { kill(up.pid, SIGKILL) }
        }
        let control = try BrokerConnection(endpoint: ep[2])
        func fleetStage() -> JSON? {
            guard let s = try? control.request(.status, timeoutMs: 2000).header else { return nil }
            return s["fleet"]?["stages"]?.array?.first { $0["stage"]?.string == "noop" }
        }
        let ready = Date().addingTimeInterval(30)
        while (fleetStage()?["live"]?.int ?? 0) < autoscaleRange.lowerBound {
            guard Date() < ready, up.isRunning else { throw HumeError(.timeout, "hume up did not start its workers; see \(dir)/up.log.") }
            usleep(200_000)
        }

        let client = try BrokerConnection(endpoint: ep[1])
        let t0 = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        let total = phases.low + phases.high + phases.after
        func rate(_ t: Double) -> Double { t < phases.low || t >= phases.low + phases.high ? lowRate : highRate }
        var owed = 0.0, sent = 0, results = 0, lastT = 0.0, seq = 0
        var trace: [(t: Double, replicas: Int, changes: Int)] = []
        var busy = 0
        var lastSample = -1.0
        var serviceMs = 0.0
        while true {
            let t = elapsed()
            if t >= total { break }
            owed += rate(t) * (t - lastT)
            lastT = t
            let n = Int(owed) - sent
            if n > 0 {
                let recs = (0..<n).map { k in JobSpec(key: "step-\(t0)-\(sent + k)", data: [0x61]).encode() }
                seq += 1
                try client.send(Message(.submit, header: .object(["req": JSON(seq), "batch": .string("step-\(t0)"),
                                                                   "route": .array([.string("noop")])]), records: recs))
                sent += n
            }
            while let m = try client.receive(timeoutMs: 0) {
                if m.command == .result { results += m.records.count }
                if m.command == .busy { busy += 1 }
            }
            if t - lastSample >= 0.5 {
                lastSample = t
                if let s = try? control.request(.status, timeoutMs: 1000).header {
                    let f = s["fleet"]?["stages"]?.array?.first { $0["stage"]?.string == "noop" }
                    trace.append((t, f?["replicas"]?.int ?? -1, f?["changes"]?.int ?? 0))
                    serviceMs = s["stages"]?.array?.first { $0["name"]?.string == "noop" }?["mean_service_ms"]?.double ?? serviceMs
                }
            }
            usleep(10_000)
        }
        // The count each phase needs, by the policy's own rule, with the service time the broker measured.
        let config = AutoscalePolicy.Config()
        func needed(_ r: Double) -> Int {
            min(autoscaleRange.upperBound, max(autoscaleRange.lowerBound, Int((r * serviceMs / 1000 / config.targetUtilization - 1e-9).rounded(.up))))
        }
        func phase(_ from: Double, _ to: Double, _ r: Double) -> JSON {
            let points = trace.filter { $0.t >= from && $0.t < to }
            let final = points.last?.replicas ?? -1
            var settledAt = from
            for p in points where p.replicas != final { settledAt = p.t }
            // Scale changes the supervisor counted from the last reading before the phase to its last reading.
            let before = trace.last { $0.t < from }?.changes ?? points.first?.changes ?? 0
            let changes = (points.last?.changes ?? before) - before
            return .object(["rate_per_s": .number(r), "needed_replicas": JSON(needed(r)), "final_replicas": JSON(final),
                            "settled_after_s": .number(((settledAt - from) * 10).rounded() / 10), "changes": JSON(changes)])
        }
        let low = phases.low, high = phases.low + phases.high
        progress?("step response: \(trace.map { "\(Int($0.t))s:\($0.replicas)" }.joined(separator: " "))")
        return .object([
            "range": .string("\(autoscaleRange.lowerBound)..\(autoscaleRange.upperBound)"), "mean_service_ms": .number(serviceMs),
            "submitted": JSON(sent), "results_seen": JSON(results), "busy_replies": JSON(busy),
            "before_step": phase(0, low, lowRate), "step_up": phase(low, high, highRate), "step_down": phase(high, high + phases.after, lowRate),
            "trace": .array(trace.filter { Int($0.t * 2) % 2 == 0 }.map { .array([.number(($0.t * 10).rounded() / 10), JSON($0.replicas)]) }),
        ])
    }
}

