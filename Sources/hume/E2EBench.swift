import ArgumentParser
import Foundation
import HumeClient
import HumeCore
import HumeStages
import HumeData
import HumeFleet

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
    @Option(help: "Side: 32, 64 or 128.") var size = 32
    @Option(help: "DDIM steps.") var steps = 20
    @Option(help: "Give up on a run after this many seconds.") var timeout = 3600.0
    @Flag(help: "Keep the fleets' directories (journal, worker logs).") var keep = false
    @Flag(help: "Print one JSON object.") var json = false

    static let route = E2EBench.route

    func run() throws {
        let counts = replicas.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ (1...16).contains($0) }), counts.count == replicas.split(separator: ",").count else {
            throw CLIFailure("--replicas must be a comma-separated list of counts from 1 to 16, e.g. 1,2; got \"\(replicas)\".")
        }
        guard prompts > 0 else { throw CLIFailure("--prompts must be at least 1.") }
        if let s = scaleStage, !BenchE2E.route.contains(s) {
            throw CLIFailure("--scale-stage must be one of \(BenchE2E.route.joined(separator: ", ")); got \"\(s)\".")
        }
        let texts = try loadPrompts()
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").first.flatMap { Double($0) }

        var runs: [E2ERun] = []
        var scaled = scaleStage
        if scaled == nil && counts[0] != 1 {
            // Find the slowest stage with one replica each first.
            runs.append(try measure(texts, replicas: Dictionary(uniqueKeysWithValues: BenchE2E.route.map { ($0, 1) })))
            scaled = runs[0].slowest(BenchE2E.route)
        }
        for n in counts {
            var r = Dictionary(uniqueKeysWithValues: BenchE2E.route.map { ($0, 1) })
            if let s = scaled { r[s] = n }
            runs.append(try measure(texts, replicas: r))
            if scaled == nil { scaled = runs[runs.count - 1].slowest(BenchE2E.route) }
        }
        report(runs, scaled: scaled ?? "denoise", load: load)
    }

    /// The prompts: from --prompts-file, else the database's captions in a fixed scattered order, cycled to `prompts`.
    func loadPrompts() throws -> [String] {
        var pool: [String]
        if let promptsFile {
            let data = try UserFile.read(promptsFile, what: "--prompts-file")
            pool = String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            guard !pool.isEmpty else { throw CLIFailure("--prompts-file \(promptsFile) has no non-blank line") }
        } else {
            let items = try (Database(named: database, root: humePaths.databases)).items
            // 7919 is prime: the stride visits every caption once before repeating (unless the count is a multiple of it).
            pool = (0..<items.count).map { items[($0 * 7919) % items.count].caption }
        }
        return (0..<prompts).map { pool[$0 % pool.count] }
    }

    /// The library's runner with this command's settings.
    var bench: E2EBench {
        var b = E2EBench(database: database)
        b.k = k; b.size = size; b.steps = steps; b.timeout = timeout; b.keep = keep
        if !json { b.progress = { stderrLine($0) } }
        return b
    }

    func measure(_ texts: [String], replicas: [String: Int]) throws -> E2ERun {
        try bench.measure(texts, replicas: replicas)
    }

    func report(_ runs: [E2ERun], scaled: String, load: Double?) {
        let route = BenchE2E.route
        let out = bench.summary(runs, scaled: scaled, prompts: prompts, load: load)
        let worst = out["slowest_stage_utilisation"]!.double!
        let first = runs.first { ($0.replicas[scaled] ?? 1) == 1 } ?? runs[0]
        if json {
            print(out.serialized)
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
