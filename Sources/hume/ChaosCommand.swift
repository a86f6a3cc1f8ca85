import ArgumentParser
import Foundation
import HumeCore
import HumeFleet

/// `hume bench chaos`: kill -9 the broker, workers and the client at seeded random moments during a batch; check that
/// every job completes exactly once and that the client finishes (HumeFleet's `Chaos`).
struct BenchChaos: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Kill -9 the broker, workers and the client at seeded random moments during batches; check nothing is lost, doubled or stuck.",
        discussion: "Round r uses seed + r: replay a failing round with --seed <its seed> --rounds 1. Exit 1 when any round fails.")

    @Option(help: "Seed of round 0.") var seed: UInt64 = 1
    @Option(help: "Rounds.") var rounds = 3
    @Option(help: "Jobs per round.") var jobs = 2_000
    @Option(help: "Kills per round (broker, worker or client, drawn from the seed).") var kills = 8
    @Option(help: "Shortest and longest gap before a kill, ms (e.g. 100-600).") var gapMs = "100-600"
    @Option(help: "Comma-separated route; one worker per stage.") var route = "noop1,noop2,noop3"
    @Option(help: "Per-worker milliseconds of simulated work per task (noop stages).") var workMs = 2
    @Option(help: "Tasks per worker batch (noop stages).") var batch = 8
    @Option(help: "The client under test: submit (hume submit FILE) or stream (hume stream < FILE).") var client = "submit"
    @Option(help: "Parameters of every job, a JSON object (e.g. {\"size\": 32, \"steps\": 4} for denoise).") var params: String?
    @Option(help: "Seconds after the last kill by which the client must have finished.") var hangBound = 60.0
    @Option(help: "Directory for the rounds' journals and logs (default: a fresh temporary one, removed when every round passes).")
    var directory: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let gap = gapMs.split(separator: "-").compactMap { Int($0) }
        guard gap.count == 2, gap[0] >= 0, gap[0] <= gap[1] else { throw CLIFailure("--gap-ms must be two whole numbers of ms like 100-600.") }
        guard rounds >= 1, jobs >= 1, kills >= 0 else { throw CLIFailure("--rounds and --jobs must be at least 1 and --kills at least 0.") }
        guard ["submit", "stream"].contains(client) else { throw CLIFailure("--client must be submit or stream.") }
        if let params, (try? JSON.parse(params))?.object == nil { throw CLIFailure("--params must be a JSON object such as {\"steps\": 4}.") }
        let dir = directory ?? NSTemporaryDirectory() + "hume-chaos-\(getpid())"
        var config = ChaosConfig(directory: dir)
        config.seed = seed
        config.rounds = rounds
        config.jobs = jobs
        config.kills = kills
        config.gapMs = gap[0]...gap[1]
        config.route = route.split(separator: ",").map(String.init)
        config.workerArguments = config.route.allSatisfy { $0.hasPrefix("noop") } ? ["--work-ms", "\(workMs)", "--batch", "\(batch)"] : []
        config.client = client
        config.params = params
        config.hangBoundSeconds = hangBound
        var reports: [ChaosRound] = []
        for r in 0..<rounds {
            let round = try Chaos.round(config, index: r, log: { if !json { stderrLine("chaos: " + $0) } })
            reports.append(round)
            if !json {
                print(String(format: "round %d (seed %llu): %d jobs, %d kills (broker %d, worker %d, client %d; %d after the client finished), lost %d, duplicated %d, %@, %.1f s%@",
                             r, round.seed, round.jobs, round.kills.values.reduce(0, +), round.kills["broker"] ?? 0, round.kills["worker"] ?? 0,
                             round.kills["client"] ?? 0, round.killsAfterFinish, round.lost, round.duplicated,
                             round.hung ? "HUNG" : String(format: "client done %.1f s after the last kill", round.finishAfterLastKill ?? 0),
                             round.seconds, round.problems.isEmpty ? "" : "; " + round.problems.joined(separator: "; ")))
            }
        }
        let failed = reports.filter { !$0.ok }
        if failed.isEmpty && directory == nil { try? FileManager.default.removeItem(atPath: dir) }
        let summary: [String: JSON] = [
            "rounds": .array(reports.map(\.json)), "failed_rounds": JSON(failed.count),
            "lost": JSON(reports.map(\.lost).reduce(0, +)), "duplicated": JSON(reports.map(\.duplicated).reduce(0, +)),
            "hung": JSON(reports.filter(\.hung).count), "kills": JSON(reports.map { $0.kills.values.reduce(0, +) }.reduce(0, +)),
            "jobs": JSON(reports.map(\.jobs).reduce(0, +)), "directory": failed.isEmpty && directory == nil ? .null : .string(dir),
        ]
        if json { print(JSON.object(summary).serialized) } else {
            print("chaos: \(reports.count - failed.count) of \(reports.count) rounds passed" + (failed.isEmpty ? "" : "; logs and journals in \(dir)"))
        }
        if !failed.isEmpty { Foundation.exit(1) }
    }
}
