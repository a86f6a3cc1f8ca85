import Foundation
import HumeCore

/// Settings of one chaos run (`hume bench chaos`): a batch through several stages while the broker, workers and the
/// client are killed with -9 at seeded random moments and restarted.
public struct ChaosConfig: Sendable {
    /// Seed of round 0; round r uses `seed + r`, so a failing round replays with `--seed <its seed> --rounds 1`.
    public var seed: UInt64 = 1
    public var rounds = 3
    /// Jobs per round (lines of the job file).
    public var jobs = 2_000
    /// Kills per round, each of the broker, a worker or the client.
    public var kills = 8
    /// The gap before each kill is drawn uniformly from this range (ms).
    public var gapMs: ClosedRange<Int> = 100...600
    /// The route (stage names the broker serves); every stage gets one worker.
    public var route = ["noop1", "noop2", "noop3"]
    /// Worker settings (`hume worker` flags) per stage, e.g. `["--work-ms", "2", "--batch", "8"]` for noop stages.
    public var workerArguments: [String] = ["--work-ms", "2", "--batch", "8"]
    /// The client: `submit` (`hume submit FILE`) or `stream` (`hume stream` reading the file on stdin).
    public var client = "submit"
    /// Job parameters for every line (JSON object text), e.g. `{"size": 32, "steps": 4}` for denoise.
    public var params: String?
    /// A client that has not finished this long after the last kill is hung: the round fails.
    public var hangBoundSeconds = 60.0
    /// The directory the rounds run in (each round a fresh subdirectory).
    public var directory: String

    public init(directory: String) { self.directory = directory }
}

/// What one round saw.
public struct ChaosRound: Sendable {
    public var round = 0
    public var seed: UInt64 = 0
    public var jobs = 0
    public var kills: [String: Int] = ["broker": 0, "worker": 0, "client": 0]
    /// Kills that landed after the batch had already finished (they still count as kills of a live process only if
    /// it was alive; these are the ones that hit nothing to disturb).
    public var killsAfterFinish = 0
    /// Seconds from the last kill to the client's successful exit (nil: it never finished).
    public var finishAfterLastKill: Double?
    public var seconds = 0.0
    public var hung = false
    /// From the manifest the client wrote: lines, distinct keys, distinct job ids, lines with status done.
    public var manifestLines = 0, manifestKeys = 0, manifestJobIDs = 0, manifestDone = 0
    /// From the broker's journal (`job_states`): rows, distinct keys, rows with status done.
    public var journalRows = 0, journalKeys = 0, journalDone = 0
    public var problems: [String] = []

    public var lost: Int { max(0, jobs - min(manifestDone, journalDone)) }
    public var duplicated: Int { max(0, journalRows - journalKeys) + max(0, manifestLines - manifestKeys) + max(0, manifestKeys - manifestJobIDs) }
    public var ok: Bool { problems.isEmpty && !hung && lost == 0 && duplicated == 0 }

    public var json: JSON {
        .object([
            "round": JSON(round), "seed": .number(Double(seed)), "jobs": JSON(jobs),
            "kills": .object(kills.mapValues { JSON($0) }), "kills_total": JSON(kills.values.reduce(0, +)),
            "kills_after_finish": JSON(killsAfterFinish),
            "finish_after_last_kill_s": finishAfterLastKill.map { .number(($0 * 100).rounded() / 100) } ?? .null,
            "seconds": .number((seconds * 10).rounded() / 10), "hung": .bool(hung),
            "lost": JSON(lost), "duplicated": JSON(duplicated), "ok": .bool(ok),
            "manifest": .object(["lines": JSON(manifestLines), "keys": JSON(manifestKeys), "job_ids": JSON(manifestJobIDs), "done": JSON(manifestDone)]),
            "journal": .object(["rows": JSON(journalRows), "keys": JSON(journalKeys), "done": JSON(journalDone)]),
            "problems": .array(problems.map { .string($0) }),
        ])
    }
}

/// A small seeded generator (SplitMix64), so a round's kill schedule replays from its seed.

/// Runs chaos rounds: per round a fresh broker (SQLite journal) with one worker per stage and a client, all real
/// processes on loopback; kills with -9 at seeded moments (broker: restarted on its journal; worker: replaced;
/// client: the same command run again); then checks the client's manifest and the journal, and that the client
/// finished within `hangBoundSeconds` of the last kill.
public enum Chaos {
    /// Runs one round.
    public static func round(_ config: ChaosConfig, index: Int, log: (String) -> Void = { _ in }) throws -> ChaosRound {
        var result = ChaosRound()
        result.round = index
        result.seed = config.seed &+ UInt64(index)
        result.jobs = config.jobs
        var rng = SplitMix64(seed: result.seed)
        let dir = config.directory + "/round-\(index)-seed-\(result.seed)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let batch = "chaos"
        let file = dir + "/jobs.txt"
        let lines = (0..<config.jobs).map { i -> String in
            if let p = config.params {
                return "{\"key\": \"\(batch):\(i)\", \"prompt\": \"chaos job \(i)\", " + p.dropFirst().dropLast() + "}"
            }
            return "chaos job \(i)"
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let fast = ["--heartbeat-ms", "200", "--worker-timeout-ms", "1500", "--stages", config.route.joined(separator: ",")]
        let fleet = try LocalFleet(directory: dir, brokerArguments: fast)
        defer { fleet.stop() }
        for stage in config.route { try fleet.startWorker(stage, arguments: config.workerArguments) }
        try fleet.waitForWorkers(config.route.count)
        let out = dir + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var streamRuns = 0
        func startClient() throws -> Child {
            let clients = fleet.endpoints.clients
            switch config.client {
            case "stream":
                // Its results (stdout) and any sentence on stderr go to one file per run; `check` reads the JSON lines.
                streamRuns += 1
                return try Child(role: "client", arguments: ["stream", "--route", config.route.joined(separator: ","), "--batch", batch,
                                                             "--broker", clients],
                                 logPath: out + "/stream-\(streamRuns).jsonl", environment: [:], stdinPath: file)
            default:
                return try Child(role: "client", arguments: ["submit", file, "--batch", batch, "--route", config.route.joined(separator: ","),
                                                             "--broker", clients, "--out", out, "--quiet"],
                                 logPath: dir + "/client.log", environment: [:])
            }
        }
        let start = Date()
        var client = try startClient()
        var lastKill = Date()
        for _ in 0..<config.kills {
            usleep(UInt32(rng.int(config.gapMs)) * 1000)
            let kind = ["broker", "worker", "client"][rng.int(0...2)]
            if !client.isRunning { result.killsAfterFinish += 1 }
            switch kind {
            case "broker":
                fleet.killBroker()
                try fleet.startBroker()
            case "worker":
                let alive = fleet.workers.filter(\.isRunning)
                if let victim = alive.isEmpty ? nil : alive[rng.int(0...(alive.count - 1))] {
                    kill(victim.pid, SIGKILL)
                    victim.process.waitUntilExit()
                    try fleet.startWorker(victim.role, arguments: config.workerArguments)
                }
            default:
                if client.isRunning {
                    kill(client.pid, SIGKILL)
                    client.process.waitUntilExit()
                }
                client = try startClient()
            }
            result.kills[kind, default: 0] += 1
            lastKill = Date()
            log("round \(index): kill \(result.kills.values.reduce(0, +)) of \(config.kills): \(kind)")
        }
        // The client must finish, without further help, within the bound after the last kill.
        var exitedOK = false
        while Date().timeIntervalSince(lastKill) < config.hangBoundSeconds {
            if !client.isRunning {
                if client.process.terminationStatus == 0 { exitedOK = true; break }
                // An exit other than success (e.g. the broker was down when it started): run it again, as a user would.
                client = try startClient()
            }
            usleep(50_000)
        }
        if exitedOK {
            result.finishAfterLastKill = Date().timeIntervalSince(lastKill)
        } else {
            result.hung = true
            result.problems.append("the client had not finished \(Int(config.hangBoundSeconds)) s after the last kill")
            if client.isRunning { kill(client.pid, SIGKILL); client.process.waitUntilExit() }
            // Collect what is there, so the report still says whether anything was lost.
            client = try startClient()
            let deadline = Date().addingTimeInterval(config.hangBoundSeconds)
            while client.isRunning && Date() < deadline { usleep(50_000) }
            if client.isRunning { kill(client.pid, SIGKILL); client.process.waitUntilExit() }
        }
        result.seconds = Date().timeIntervalSince(start)
        try check(&result, out: out, stream: config.client == "stream", dir: dir, batch: batch)
        return result
    }

    /// Reads the manifest (or, for `stream`, every run's output) and the journal into `result`.
    static func check(_ result: inout ChaosRound, out: String, stream: Bool, dir: String, batch: String) throws {
        var entries: [(key: String, job: Int, status: String)] = []
        let files = stream ? ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).filter { $0.hasPrefix("stream-") }.map { out + "/" + $0 }
                           : [out + "/manifest.jsonl"]
        for f in files {
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                guard let j = try? JSON.parse(String(line)) else {
                    if !stream { result.problems.append("\(f): a line is not JSON") }  // a stream run's log also holds its stderr
                    continue
                }
                entries.append((j["key"]?.string ?? "", j["job"]?.int ?? -1, j["status"]?.string ?? ""))
            }
        }
        if stream {
            // Each run of `hume stream` prints the results it got; a key answered in two runs is one job, not two.
            var byKey: [String: (job: Int, status: String)] = [:]
            for e in entries where e.status == "done" || byKey[e.key] == nil {
                if let old = byKey[e.key], old.job != e.job, e.status == "done", old.status == "done" {
                    result.problems.append("key \(e.key) answered with two job ids (\(old.job), \(e.job))")
                }
                byKey[e.key] = (e.job, e.status)
            }
            entries = byKey.map { ($0.key, $0.value.job, $0.value.status) }
        }
        result.manifestLines = entries.count
        result.manifestKeys = Set(entries.map(\.key)).count
        result.manifestJobIDs = Set(entries.map(\.job)).count
        result.manifestDone = entries.filter { $0.status == "done" }.count
        let (rc, text, err) = try runProcess("/usr/bin/sqlite3", ["-separator", " ", dir + "/journal.sqlite",
            "SELECT COUNT(*), COUNT(DISTINCT key), COALESCE(SUM(status = 1), 0) FROM job_states WHERE batch = '\(batch)'"], timeout: 60)
        let numbers = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        if rc == 0, numbers.count == 3 {
            (result.journalRows, result.journalKeys, result.journalDone) = (numbers[0], numbers[1], numbers[2])
        } else {
            result.problems.append("could not read the journal with sqlite3: \(err)")
        }
        if result.manifestLines != result.jobs { result.problems.append("\(result.manifestLines) result lines for \(result.jobs) jobs") }
    }
}
