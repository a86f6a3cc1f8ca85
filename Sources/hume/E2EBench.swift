import ArgumentParser
import Foundation
import HumeClient
import HumeCore
import HumeStages
import HumeData
import HumeFleet

/// One measured fleet: replicas per stage, wall time, and each stage's busy time from its workers' heartbeats.
struct E2ERun {
    var replicas: [String: Int]
    var wallSeconds: Double
    var done = 0
    var failed = 0
    /// Done jobs whose output is not a stage image of the requested size (should be 0).
    var badOutputs = 0
    var firstFailure: String?
    /// Per stage: Σ busy_ms of its workers, Σ executor threads, tasks completed (the broker's count).
    var busyMs: [String: Double] = [:]
    var executors: [String: Int] = [:]
    var completed: [String: Int] = [:]

    var promptsPerSecond: Double { Double(done) / wallSeconds }

    /// Busy time of a stage's workers over the wall time they had (wall × executor threads).
    func utilisation(_ stage: String) -> Double {
        let threads = max(1, executors[stage] ?? 0)
        return (busyMs[stage] ?? 0) / (wallSeconds * 1000 * Double(threads))
    }

    /// The stage whose workers were busiest: the one that bounds throughput.
    func slowest(_ route: [String]) -> String { route.max { utilisation($0) < utilisation($1) } ?? route[0] }
}

struct BenchE2E: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "Prompts/s of generate jobs (embed → retrieve → denoise) through a local fleet, each stage's utilisation, and the throughput as the slowest stage gets more replicas.",
        discussion: """
            Each replica count starts a fresh local fleet (broker + workers as processes on this machine), submits the \
            prompts with the given settings and waits for every result. A stage's utilisation is its workers' busy time \
            (time inside the stage's run, reported as busy_ms in their heartbeats) over the wall time from the first \
            submit to the last result, per executor thread. The slowest stage is the busiest one.
            """)

    @Option(help: "Prompts to submit.") var prompts = 1000
    @Option(help: "A file of prompts, one per line (default: the database's captions, cycled).") var promptsFile: String?
    @Option(help: "Database name.") var database = Database.defaultName
    @Option(help: "Comma-separated replica counts for the scaled stage; one fleet per count.") var replicas = "1,2"
    @Option(help: "The stage that gets the replicas (default: the busiest stage of a run with one replica each).")
    var scaleStage: String?
    @Option(name: .short, help: "Neighbours (denoise setting).") var k = 16
    @Option(help: "Side: 32 or 64.") var size = 32
    @Option(help: "DDIM steps.") var steps = 20
    @Option(help: "Give up on a run after this many seconds.") var timeout = 3600.0
    @Flag(help: "Keep the fleets' directories (journal, worker logs).") var keep = false
    @Flag(help: "Print one JSON object.") var json = false

    static let route = ["embed", "retrieve", "denoise"]

    func run() throws {
        let counts = replicas.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ (1...16).contains($0) }), counts.count == replicas.split(separator: ",").count else {
            fail("--replicas must be a comma-separated list of counts from 1 to 16, e.g. 1,2; got \"\(replicas)\".")
        }
        guard prompts > 0 else { fail("--prompts must be at least 1.") }
        if let s = scaleStage, !BenchE2E.route.contains(s) {
            fail("--scale-stage must be one of \(BenchE2E.route.joined(separator: ", ")); got \"\(s)\".")
        }
        let texts = loadPrompts()
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.flatMap { Double($0) }

        var runs: [E2ERun] = []
        var scaled = scaleStage
        if scaled == nil && counts[0] != 1 {
            // Find the slowest stage with one replica each first.
            runs.append(measure(texts, replicas: Dictionary(uniqueKeysWithValues: BenchE2E.route.map { ($0, 1) })))
            scaled = runs[0].slowest(BenchE2E.route)
        }
        for n in counts {
            var r = Dictionary(uniqueKeysWithValues: BenchE2E.route.map { ($0, 1) })
            if let s = scaled { r[s] = n }
            runs.append(measure(texts, replicas: r))
            if scaled == nil { scaled = runs[runs.count - 1].slowest(BenchE2E.route) }
        }
        report(runs, scaled: scaled ?? "denoise", load: load)
    }

    /// The prompts: from --prompts-file, else the database's captions in a fixed scattered order, cycled to `prompts`.
    func loadPrompts() -> [String] {
        var pool: [String]
        if let promptsFile {
            guard let data = FileManager.default.contents(atPath: promptsFile) else { fail("cannot read --prompts-file \(promptsFile)") }
            pool = String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            guard !pool.isEmpty else { fail("--prompts-file \(promptsFile) has no non-blank line") }
        } else {
            let items = reporting { try Database(named: database) }.items
            // 7919 is prime: the stride visits every caption once before repeating (unless the count is a multiple of it).
            pool = (0..<items.count).map { items[($0 * 7919) % items.count].caption }
        }
        return (0..<prompts).map { pool[$0 % pool.count] }
    }

    func progress(_ s: String) { if !json { stderrLine(s) } }

    /// Starts a fleet with `replicas`, runs every prompt through it, reads the workers' busy time, stops it.
    func measure(_ texts: [String], replicas: [String: Int]) -> E2ERun {
        let dir = NSTemporaryDirectory() + "hume-bench-e2e-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { if !keep { try? FileManager.default.removeItem(atPath: dir) } }
        // Heartbeats every 250 ms so the busy time read at the end is fresh.
        let fleet = reporting { try LocalFleet(directory: dir, brokerArguments: ["--heartbeat-ms", "250"]) }
        defer { fleet.stop() }
        let total = BenchE2E.route.reduce(0) { $0 + replicas[$1]! }
        for stage in BenchE2E.route {
            for _ in 0..<replicas[stage]! { _ = reporting { try fleet.startWorker(stage) } }
        }
        reporting { try fleet.waitForWorkers(total, timeoutMs: 120_000) }
        let shown = BenchE2E.route.map { "\($0)×\(replicas[$0]!)" }.joined(separator: " ")
        progress("bench e2e: \(shown): \(texts.count) prompts (\(database), k=\(k), \(size)², \(steps) steps)\(keep ? "; fleet in \(dir)" : "")")

        let runID = UInt64.random(in: 0...UInt64.max)
        let specs = texts.enumerated().map { i, t in
            JobSpec(key: "e2e-\(runID)-\(i)",
                    params: JSON.object(["database": .string(database), "k": JSON(k), "size": JSON(size), "steps": JSON(steps),
                                         "seed": JSON(i + 1)]).bytes,
                    data: Array(t.utf8))
        }
        let conn = reporting { try BrokerConnection(endpoint: fleet.endpoints.clients) }
        let sub = BatchSubmitter(connection: conn, batch: "e2e-\(runID)", route: BenchE2E.route, jobs: specs)
        let start = DispatchTime.now().uptimeNanoseconds
        var lastShown = 0
        var finished = false
        while !finished {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if elapsed > timeout { fail("bench e2e: the run with \(shown) did not finish within --timeout \(timeout) s (\(sub.finishedCount) of \(texts.count) done).") }
            finished = reporting { try sub.run(timeoutMs: 1000) }
            if sub.finishedCount - lastShown >= max(1, texts.count / 10) {
                lastShown = sub.finishedCount
                progress("  \(sub.finishedCount)/\(texts.count)")
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
                if let name = st["name"]?.string, BenchE2E.route.contains(name) { run.completed[name] = st["completed"]?.int ?? 0 }
            }
            run.busyMs = busy
            run.executors = executors
            if busy == previous { return }
            previous = busy
        }
    }

    func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

    func report(_ runs: [E2ERun], scaled: String, load: Double?) {
        let route = BenchE2E.route
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
        if json {
            print(JSON.object(out).serialized)
            return
        }
        print("bench e2e: \(prompts) prompts, \(database), k=\(k), \(size)², \(steps) steps; replicas of \(scaled) varied; \(ProcessInfo.processInfo.activeProcessorCount) cores\(load.map { String(format: ", load %.2f before", $0) } ?? "")")
        print("replicas                        prompts/s   wall s   " + route.map { pad("\($0) util", 15) }.joined() + "slowest")
        for r in runs {
            let reps = route.map { "\($0)=\(r.replicas[$0]!)" }.joined(separator: " ")
            let utils = route.map { pad(String(format: "%.3f", r.utilisation($0)), 15) }.joined()
            print(pad(reps, 32) + pad(String(format: "%.2f", r.promptsPerSecond), 12) + pad(String(format: "%.1f", r.wallSeconds), 9) + utils
                  + "\(r.slowest(route)) \(String(format: "%.3f", r.utilisation(r.slowest(route))))"
                  + (r.failed > 0 ? "  (\(r.failed) failed: \(r.firstFailure ?? ""))" : ""))
        }
        print(String(format: "slowest stage utilisation (lowest over runs): %.3f; speedup %.2f×", worst,
                     (runs.last?.promptsPerSecond ?? 0) / max(1e-9, first.promptsPerSecond)))
    }
}
