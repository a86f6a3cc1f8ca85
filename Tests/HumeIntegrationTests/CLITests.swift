import Foundation
import HumeClient
import HumeCore
import HumeFleet
import Testing

/// Runs the built `hume` binary; returns exit status, stdout and stderr.
@discardableResult
func hume(_ args: [String], stdin: String? = nil, cwd: String? = nil, timeout: TimeInterval = 60) throws -> (Int32, String, String) {
    try runProcess(humeExecutable(), args, stdin: stdin, cwd: cwd, timeout: timeout)
}

/// A free loopback TCP port (bound and released).
func freePort() -> Int { freeLoopbackPort() }

@Suite("The hume CLI, run as a user would", .serialized)
struct CLITests {
    @Test("submit writes a manifest line per job with outputs and errors; a re-run resumes without running anything twice",
          .timeLimit(.minutes(2)))
    func submitAndResume() throws {
        let dir = tempDir("cli-submit")
        let fleet = try LocalFleet(directory: dir)
        defer { fleet.stop() }
        try fleet.startWorker("noop1")
        try fleet.startWorker("noop2")
        try fleet.waitForWorkers(2)
        var lines = (1...300).map { "prompt number \($0)" }
        lines[9] = "{\"key\": \"custom\", \"text\": \"json job\", \"priority\": 9}"
        lines[19] = "{not json"
        lines[29] = "this one #invalid"
        lines[39] = ""
        try lines.joined(separator: "\n").write(toFile: dir + "/jobs.txt", atomically: true, encoding: .utf8)
        let broker = fleet.endpoints.clients
        let (rc, _, err) = try hume(["submit", dir + "/jobs.txt", "--batch", "cli", "--route", "noop1,noop2", "--broker", broker,
                                     "--out", dir + "/out"])
        #expect(rc == 1, "a batch with failures exits 1: \(err)")
        #expect(err.contains("297 done"), "\(err)")
        let manifest = try String(contentsOfFile: dir + "/out/manifest.jsonl", encoding: .utf8)
        let rows = try manifest.split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(rows.count == 299, "one line per non-blank input line")
        #expect(rows.map { $0["line"]?.int ?? 0 } == (1...300).filter { $0 != 40 })
        let byLine = Dictionary(uniqueKeysWithValues: rows.map { ($0["line"]!.int!, $0) })
        #expect(byLine[1]?["output"]?.string == "prompt number 1")
        #expect(byLine[1]?["key"]?.string == "cli:1")
        #expect(byLine[10]?["key"]?.string == "custom" && byLine[10]?["output"]?.string == "json job")
        #expect(byLine[20]?["status"]?.string == "invalid")
        let lineError = byLine[20]?["error"]?.string ?? ""
        #expect(lineError.contains("Line 20"), "\(lineError)")
        #expect(byLine[30]?["status"]?.string == "failed")
        // Re-run: same ids, nothing new in the journal.
        let (rc2, _, err2) = try hume(["submit", dir + "/jobs.txt", "--batch", "cli", "--route", "noop1,noop2", "--broker", broker,
                                       "--out", dir + "/out2"])
        #expect(rc2 == 1)
        #expect(err2.contains("297 done"))
        #expect(try String(contentsOfFile: dir + "/out2/manifest.jsonl", encoding: .utf8) == manifest)
        let j = try journalCounts(dir, batch: "cli")
        #expect(j.rows == 298 && j.distinctKeys == 298, "\(j)")
        // The stream command answers JSONL on stdout.
        let (rc3, out3, _) = try hume(["stream", "--route", "noop1", "--batch", "s", "--broker", broker], stdin: "one\ntwo\n{bad\n")
        #expect(rc3 == 0)
        let results = out3.split(separator: "\n").compactMap { try? JSON.parse(String($0)) }
        #expect(Set(results.compactMap { $0["output"]?.string }) == ["one", "two"])
        #expect(results.contains { $0["status"]?.string == "invalid" && $0["line"]?.int == 3 })
    }

    @Test("hume broker --keep-ended forgets ended jobs in a real journal: the batch leaves it, and submitting it again runs it again; a bad value is one sentence",
          .timeLimit(.minutes(2)))
    func brokerForgetsEndedJobs() throws {
        let dir = tempDir("cli-keep")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--keep-ended", "2s"])
        defer { fleet.stop() }
        try fleet.startWorker("noop1")
        try fleet.waitForWorkers(1)
        try (1...200).map { "job \($0)" }.joined(separator: "\n").write(toFile: dir + "/jobs.txt", atomically: true, encoding: .utf8)
        let submit = ["submit", dir + "/jobs.txt", "--batch", "old", "--route", "noop1", "--broker", fleet.endpoints.clients, "--quiet"]
        let (rc, _, err) = try hume(submit + ["--out", dir + "/out1"])
        #expect(rc == 0 && err.contains("200 done"), "\(err)")
        #expect(try journalCounts(dir, batch: "old").rows == 200)
        // A newer job, so that none of the batch is the journal's newest (which is always kept, so ids never repeat).
        let (rcNew, _, _) = try hume(["stream", "--route", "noop1", "--batch", "new", "--broker", fleet.endpoints.clients], stdin: "x\n")
        #expect(rcNew == 0)
        let deadline = Date().addingTimeInterval(20)
        while try journalCounts(dir, batch: "old").rows > 0, Date() < deadline { usleep(200_000) }
        #expect(try journalCounts(dir, batch: "old").rows == 0, "forgotten within 20 s of ending, 2 s asked")
        // Submitting the batch again is new work: it runs, and every line is done again.
        let (rc2, _, err2) = try hume(submit + ["--out", dir + "/out2"])
        #expect(rc2 == 0 && err2.contains("200 done"), "\(err2)")
        let again = try String(contentsOfFile: dir + "/out2/manifest.jsonl", encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(again.count == 200 && again.allSatisfy { $0["status"]?.string == "done" })
        #expect(try journalCounts(dir, batch: "old").rows == 200)
        for bad in ["0s", "12", "forever-ish", "-5m", "3w"] {
            let (rcBad, _, errBad) = try hume(["broker", "--keep-ended=\(bad)", "--journal", dir + "/bad.sqlite"], timeout: 20)
            #expect(rcBad == 1 && errBad.contains("--keep-ended must be a whole number of s, m, h or d greater than 0"), "\(bad): \(errBad)")
        }
    }

    @Test("submit holds what is unfinished, not the file: ten times the jobs costs the client almost no more memory",
          // Under AddressSanitizer freed memory sits in a 256 MiB quarantine, so peaks measure ASan, not the client.
          .enabled(if: ProcessInfo.processInfo.environment["HUME_SANITIZER"] == nil), .timeLimit(.minutes(3)))
    func submitMemoryIsBounded() throws {
        // `hume bench submit` runs the client as its own child, so its peak is the client's alone.
        func bench(_ jobs: Int) throws -> JSON {
            let (rc, out, err) = try hume(["bench", "submit", "--jobs", "\(jobs)", "--json"], timeout: 150)
            #expect(rc == 0, "\(err)")
            return try JSON.parse(out.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let small = try bench(15_000), big = try bench(150_000)
        #expect(big["manifest"]?["done"]?.int == 150_000 && big["manifest"]?["in_order"]?.bool == true, "\(big)")
        let growth = (big["client_peak_rss_mib"]?.double ?? 0) - (small["client_peak_rss_mib"]?.double ?? 0)
        // Holding the file and its results cost about 0.9 KB a job (130 MiB here); streaming them costs 12 bytes.
        #expect(growth < 20, "client peak grew \(growth) MiB from 15,000 to 150,000 jobs: \(small) \(big)")
    }

    @Test("submit finishes against a broker whose window and byte budget are smaller than its chunks (it waited forever)",
          .timeLimit(.minutes(2)))
    func smallWindowAndBudget() throws {
        let dir = tempDir("cli-small-window")
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--window", "100", "--queue-bytes", "20000"])
        defer { fleet.stop() }
        try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)
        // 300 jobs of 1,000 bytes in chunks of 500: 5x the window, 25x the stage's bytes.
        let lines = (1...300).map { String(format: "%04d", $0) + String(repeating: "x", count: 996) }
        try lines.joined(separator: "\n").write(toFile: dir + "/jobs.txt", atomically: true, encoding: .utf8)
        let (rc, _, err) = try hume(["submit", dir + "/jobs.txt", "--route", "noop", "--broker", fleet.endpoints.clients,
                                     "--out", dir + "/out", "--timeout", "60", "--quiet"], timeout: 90)
        #expect(rc == 0, "\(err)")
        #expect(err.contains("300 done"), "\(err)")
    }

    @Test("submit: two lines with the same key are one job; both lines get its result and the command finishes",
          .timeLimit(.minutes(1)))
    func sameKeyTwice() throws {
        let dir = tempDir("cli-samekey")
        let fleet = try LocalFleet(directory: dir)
        defer { fleet.stop() }
        try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)
        let lines = [#"{"key": "same", "text": "first"}"#, "other", #"{"key": "same", "text": "second"}"#]
        try lines.joined(separator: "\n").write(toFile: dir + "/jobs.txt", atomically: true, encoding: .utf8)
        let (rc, _, err) = try hume(["submit", dir + "/jobs.txt", "--route", "noop", "--broker", fleet.endpoints.clients,
                                     "--out", dir + "/out", "--timeout", "30"])
        #expect(rc == 0, "\(err)")
        let rows = try String(contentsOfFile: dir + "/out/manifest.jsonl", encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(rows.map { $0["line"]?.int ?? 0 } == [1, 2, 3])
        #expect(rows.allSatisfy { $0["status"]?.string == "done" }, "\(rows)")
        #expect(rows[0]["job"]?.int == rows[2]["job"]?.int && rows[0]["output"]?.string == "first" && rows[2]["output"]?.string == "first",
                "the key's one job answers both lines: \(rows)")
    }

    @Test("up killed with -9 leaves no orphans: its broker and workers notice and leave", .timeLimit(.minutes(2)))
    func noOrphans() throws {
        let dir = tempDir("cli-orphans")
        let (w, c, k) = (freePort(), freePort(), freePort())
        let up = Process()
        up.executableURL = URL(fileURLWithPath: humeExecutable())
        up.arguments = ["up", "noop=2", "--dir", dir, "--bind-workers", "tcp://127.0.0.1:\(w)", "--bind-clients", "tcp://127.0.0.1:\(c)",
                        "--bind-control", "tcp://127.0.0.1:\(k)"]
        up.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try up.run()
        func children() -> [Int32] {
            let path = "/proc/\(up.processIdentifier)/task/\(up.processIdentifier)/children"
            return String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self).split(separator: " ").compactMap { Int32($0) }
        }
        /// Alive and not a zombie (an orphan's zombie waits for whoever reaps here).
        func alive(_ pid: Int32) -> Bool {
            guard let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat"), let text = String(data: stat, encoding: .utf8),
                  let close = text.lastIndex(of: ")") else { return false }
            return text[text.index(close, offsetBy: 2)] != "Z"
        }
        var pids: [Int32] = []
        let startDeadline = Date().addingTimeInterval(30)
        while pids.count < 3 && Date() < startDeadline { usleep(100_000); pids = children() }
        #expect(pids.count == 3, "broker plus two workers: \(pids)")
        kill(up.processIdentifier, SIGKILL)
        up.waitUntilExit()
        let deadline = Date().addingTimeInterval(20)
        while pids.contains(where: alive) && Date() < deadline { usleep(100_000) }
        let left = pids.filter(alive)
        #expect(left.isEmpty, "still running after their parent died: \(left)")
        for pid in left { kill(pid, SIGKILL) }
    }

    @Test("up restarts a worker killed with -9 and applies scale up and down (down drains)", .timeLimit(.minutes(2)))
    func supervisorRestartsAndScales() throws {
        let dir = tempDir("cli-up")
        let (w, c, k) = (freePort(), freePort(), freePort())
        let ep = ["workers": "tcp://127.0.0.1:\(w)", "clients": "tcp://127.0.0.1:\(c)", "control": "tcp://127.0.0.1:\(k)"]
        let up = Process()
        up.executableURL = URL(fileURLWithPath: humeExecutable())
        up.arguments = ["up", "noop=2", "--dir", dir, "--bind-workers", ep["workers"]!, "--bind-clients", ep["clients"]!,
                        "--bind-control", ep["control"]!]
        up.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try up.run()
        defer {
            kill(up.processIdentifier, SIGTERM)
            up.waitUntilExit()
        }
        let control = try BrokerConnection(endpoint: ep["control"]!)
        func workers() -> [JSON] { (try? control.request(.status, timeoutMs: 2000).header["workers"]?.array) ?? nil ?? [] }
        // Judged on the last observation: the worker list moves (a killed worker stays listed until its lease
        // expiry), so asking again after the wait could see a later state.
        func waitFor(_ what: String, _ cond: () -> Bool) throws {
            let deadline = Date().addingTimeInterval(30)
            var ok = cond()
            while !ok && Date() < deadline {
                usleep(100_000)
                ok = cond()
            }
            #expect(ok, "timed out waiting for \(what)")
        }
        try waitFor("2 workers") { workers().count == 2 }
        // Kill one worker's process: the supervisor starts a new one.
        let pids = String(decoding: try #require(FileManager.default.contents(atPath: "/proc/\(up.processIdentifier)/task/\(up.processIdentifier)/children")), as: UTF8.self)
            .split(separator: " ").compactMap { Int32($0) }
        #expect(pids.count == 3, "broker plus two workers")
        let workerPid = try #require(pids.last)
        kill(workerPid, SIGKILL)
        let killedAt = Date()
        // The killed worker leaves the broker's list when its heartbeats stop; a replacement joined after the kill.
        try waitFor("a replacement worker, and the killed one gone") {
            let ws = workers()
            let sinceKill = Date().timeIntervalSince(killedAt) * 1000
            return ws.count == 2 && ws.contains { ($0["age_ms"]?.double ?? .infinity) < sinceKill }
        }
        _ = try control.request(.scale, header: ["stage": .string("noop"), "replicas": JSON(3)])
        try waitFor("3 workers") { workers().count == 3 }
        _ = try control.request(.scale, header: ["stage": .string("noop"), "replicas": JSON(1)])
        try waitFor("1 worker") { workers().count == 1 }
    }

    @Test("a file or folder the user names that cannot be read is one sentence naming it and why, from every command that reads one",
          .timeLimit(.minutes(2)))
    func unreadableUserFiles() throws {
        let dir = tempDir("userfiles")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = dir + "/missing.txt", folder = dir + "/a-folder", file = dir + "/a-file.txt"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "a cat\n".write(toFile: file, atomically: true, encoding: .utf8)
        // A gallery from an earlier demo run, which a demo that cannot read its prompts must leave alone.
        try FileManager.default.createDirectory(atPath: dir + "/out/images", withIntermediateDirectories: true)
        try "earlier".write(toFile: dir + "/out/images/earlier.png", atomically: true, encoding: .utf8)
        // Checked before anything loads (the model, a database, a broker), so no fleet is needed.
        let cases: [([String], String)] = [
            (["demo", "--prompts", folder, "--out", dir + "/out"], "Cannot read the prompt file \(folder): it is a directory."),
            (["submit", missing, "--broker", "tcp://127.0.0.1:1"], "Cannot read the job file \(missing): there is no such file."),
            (["eval", "fidelity", "--prompts", missing], "Cannot read the prompt list \(missing): there is no such file."),
            (["embed", "--file", folder], "Cannot read --file \(folder): it is a directory."),
            (["db", "create", "mine", "--images", missing], "The images folder \(missing) cannot be used: there is no such folder."),
            (["db", "create", "mine", "--images", file], "The images folder \(file) cannot be used: it is a file, not a folder."),
            (["db", "create", "mine", "--images", folder, "--captions", folder], "Cannot read the captions file \(folder): it is a directory."),
        ]
        for (args, expected) in cases {
            let (rc, out, err) = try hume(args, timeout: 60)
            #expect(rc == 1 && err == "Error: \(expected)\n" && out.isEmpty, "\(args): rc \(rc), out \(out), err \(err)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/out/images/earlier.png"), "the earlier gallery was wiped (it was before this test)")
        // No text model (a HUME_HOME without the set-up): every command that needs it says so once and how to get it,
        // `db create` included (it used to fail on the model's SHA-256).
        let model = dir + "/home/models/all-MiniLM-L6-v2"
        let noModel = "Error: Hume cannot start without its text model: The model folder \(model) has no config.json; run Ops/fetch-model.sh to install all-MiniLM-L6-v2.\n"
        for args in [["generate", "a cat", "--out", dir + "/cat.png"], ["embed", "--file", file], ["db", "create", "mine", "--images", folder]] {
            let (rc, _, err) = try runProcess(humeExecutable(), args, environment: ["HUME_HOME": dir + "/home"], timeout: 60)
            #expect(rc == 1 && err == noModel, "\(args): rc \(rc), \(err)")
        }
    }
}
