import Foundation
import HumeClient
import HumeCore
import HumeStages

/// One measured fleet: replicas per stage, wall time, and each stage's busy time from its workers' heartbeats.
public struct E2ERun: Sendable {
    public var replicas: [String: Int]
    public var wallSeconds: Double
    public var done = 0
    public var failed = 0
    /// Done jobs whose output is not a stage image of the requested size (should be 0).
    public var badOutputs = 0
    public var firstFailure: String?
    /// Per stage: Σ busy_ms of its workers, Σ executor threads, tasks completed (the broker's count).
    public var busyMs: [String: Double] = [:]
    public var executors: [String: Int] = [:]
    public var completed: [String: Int] = [:]

    public var promptsPerSecond: Double { Double(done) / wallSeconds }

    /// Busy time of a stage's workers over the wall time they had (wall × executor threads).
    public func utilisation(_ stage: String) -> Double {
        let threads = max(1, executors[stage] ?? 0)
        return (busyMs[stage] ?? 0) / (wallSeconds * 1000 * Double(threads))
    }

    /// The stage whose workers were busiest: the one that bounds throughput.
    public func slowest(_ route: [String]) -> String { route.max { utilisation($0) < utilisation($1) } ?? route[0] }
}

/// Prompts/s of generate jobs (embed → retrieve → denoise) through local fleets, each stage's utilisation, and the
/// throughput as one stage gets more replicas (`hume bench e2e`).
public struct E2EBench {
    public static let route = ["embed", "retrieve", "denoise"]
    public var database: String
    public var k = 16, size = 32, steps = 20
    /// Give up on a run after this many seconds.
    public var timeout = 3600.0
    /// Keep the fleets' directories (journal, worker logs).
    public var keep = false
    /// Progress lines (stderr in the CLI).
    public var progress: ((String) -> Void)?

    public init(database: String) { self.database = database }

    /// Starts a fleet with `replicas`, runs every prompt through it, reads the workers' busy time, stops it.
    public func measure(_ texts: [String], replicas: [String: Int]) throws -> E2ERun {
        let dir = NSTemporaryDirectory() + "hume-bench-e2e-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { if !keep { try? FileManager.default.removeItem(atPath: dir) } }
        // Heartbeats every 250 ms so the busy time read at the end is fresh.
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--heartbeat-ms", "250"])
        defer { fleet.stop() }
        let total = E2EBench.route.reduce(0) { $0 + replicas[$1]! }
        for stage in E2EBench.route {
            for _ in 0..<replicas[stage]! { _ = try fleet.startWorker(stage) }
        }
        try fleet.waitForWorkers(total, timeoutMs: 120_000)
        let shown = E2EBench.route.map { "\($0)×\(replicas[$0]!)" }.joined(separator: " ")
        progress?("bench e2e: \(shown): \(texts.count) prompts (\(database), k=\(k), \(size)², \(steps) steps)\(keep ? "; fleet in \(dir)" : "")")

        let runID = UInt64.random(in: 0...UInt64.max)
        let specs = texts.enumerated().map { i, t in
            JobSpec(key: "e2e-\(runID)-\(i)",
                    params: JSON.object(["database": .string(database), "k": JSON(k), "size": JSON(size), "steps": JSON(steps),
                                         "seed": JSON(i + 1)]).bytes,
                    data: Array(t.utf8))
        }
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)
        let sub = BatchSubmitter(connection: conn, batch: "e2e-\(runID)", route: E2EBench.route, jobs: specs)
        let start = DispatchTime.now().uptimeNanoseconds
        var lastShown = 0
        var finished = false
        while !finished {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if elapsed > timeout { throw HumeError(.timeout, "bench e2e: the run with \(shown) did not finish within --timeout \(timeout) s (\(sub.finishedCount) of \(texts.count) done).") }
            finished = try sub.run(timeoutMs: 1000)
            if sub.finishedCount - lastShown >= max(1, texts.count / 10) {
                lastShown = sub.finishedCount
                progress?("  \(sub.finishedCount)/\(texts.count)")
            }
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        var run = E2ERun(replicas: replicas, wallSeconds: wall)
        for r in sub.results {
            guard let r else { continue }
            if r.status == .done {
                run.done += 1
                if let image = try? StageImage(decoding: r.body), image.width == size, image.height == size {} else { run.badOutputs += 1 }
            } else {
                run.failed += 1
                if run.firstFailure == nil { run.firstFailure = String(decoding: r.body, as: UTF8.self) }
            }
        }
        readBusyTime(fleet, into: &run)
        return run
    }

    /// Reads each stage's busy time from the workers' heartbeat stats, once it has stopped changing (the workers are
    /// idle now; their next heartbeat carries the final figure).
    func readBusyTime(_ fleet: LocalFleet, into run: inout E2ERun) {
        var previous: [String: Double] = [:]
        for _ in 0..<20 {
            usleep(300_000)
            guard let s = try? fleet.status() else { continue }
            var busy: [String: Double] = [:], executors: [String: Int] = [:]
            for w in s["workers"]?.array ?? [] {
                guard let stage = w["stage"]?.string else { continue }
                busy[stage, default: 0] += w["busy_ms"]?.double ?? 0
                executors[stage, default: 0] += w["executors"]?.int ?? 1
            }
            for st in s["stages"]?.array ?? [] {
                if let name = st["name"]?.string, E2EBench.route.contains(name) { run.completed[name] = st["completed"]?.int ?? 0 }
            }
            run.busyMs = busy
            run.executors = executors
            if busy == previous { return }
            previous = busy
        }
    }

    func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

    /// The `--json` object of a set of runs: one row per run, and the first run's throughput, slowest stage and the speedup.
    public func summary(_ runs: [E2ERun], scaled: String, prompts: Int, load: Double?) -> JSON {
        let route = E2EBench.route
        let rows: [JSON] = runs.map { r in
            let slow = r.slowest(route)
            var o: [String: JSON] = [
                "replicas": .object(r.replicas.mapValues { JSON($0) }),
                "wall_s": .number(round3(r.wallSeconds)),
                "prompts_per_s": .number(round3(r.promptsPerSecond)),
                "done": JSON(r.done), "failed": JSON(r.failed), "bad_outputs": JSON(r.badOutputs),
                "utilisation": .object(Dictionary(uniqueKeysWithValues: route.map { ($0, JSON.number(round3(r.utilisation($0)))) })),
                "busy_ms_per_task": .object(Dictionary(uniqueKeysWithValues: route.map { s in
                    (s, JSON.number(round3((r.busyMs[s] ?? 0) / Double(max(1, r.completed[s] ?? 0)))))
                })),
                "slowest_stage": .string(slow),
                "slowest_stage_utilisation": .number(round3(r.utilisation(slow))),
            ]
            if let f = r.firstFailure { o["first_failure"] = .string(f) }
            return .object(o)
        }
        let worst = runs.map { $0.utilisation($0.slowest(route)) }.min() ?? 0
        let first = runs.first { ($0.replicas[scaled] ?? 1) == 1 } ?? runs[0]
        var out: [String: JSON] = [
            "database": .string(database), "prompts": JSON(prompts), "route": .array(route.map { .string($0) }),
            "settings": .object(["k": JSON(k), "size": JSON(size), "steps": JSON(steps)]),
            "scaled_stage": .string(scaled), "runs": .array(rows),
            "prompts_per_s": .number(round3(first.promptsPerSecond)),
            "slowest_stage": .string(first.slowest(route)),
            "slowest_stage_utilisation": .number(round3(worst)),
            "speedup": .number(round3((runs.last?.promptsPerSecond ?? 0) / max(1e-9, first.promptsPerSecond))),
            "cores": JSON(ProcessInfo.processInfo.activeProcessorCount),
        ]
        if let load { out["load_average_1m_before"] = .number(load) }
        return .object(out)
    }
}
