import CZeroMQ
import Foundation
import GRDB
import HumeClient
import HumeCore
import HumeTransport
import HumeFleet
import Testing

/// A fresh temporary directory for one test's fleet.
func tempDir(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "hume-test-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Fast lease expiry so failure tests finish in seconds.
let fastLeases = ["--heartbeat-ms", "200", "--worker-timeout-ms", "1500"]

func specs(_ n: Int, prefix: String, data: (Int) -> String = { "job \($0)" }) -> [JobSpec] {
    (0..<n).map { JobSpec(key: "\(prefix)-\($0)", data: Array(data($0).utf8)) }
}

/// Journal rows per status for a batch, read straight from the broker's SQLite file.
func journalCounts(_ dir: String, batch: String) throws -> (rows: Int, distinctKeys: Int, done: Int) {
    let q = try DatabaseQueue(path: dir + "/journal.sqlite")
    return try q.read { db in
        let rows = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_states WHERE batch = ?", arguments: [batch]) ?? 0
        let keys = try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT key) FROM job_states WHERE batch = ?", arguments: [batch]) ?? 0
        let done = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_states WHERE batch = ? AND status = 1", arguments: [batch]) ?? 0
        return (rows, keys, done)
    }
}

@Suite("Live fleet: real broker and worker processes over ZeroMQ", .serialized)
struct FleetTests {
    @Test("A worker killed with -9 mid-task: its tasks finish on another worker, each job once", .timeLimit(.minutes(2)))
    func workerKilledMidTask() throws {
        let dir = tempDir("workerkill")
        let fleet = try LocalFleet(directory: dir, brokerArguments: fastLeases)
        defer { fleet.stop() }
        let victim = try fleet.startWorker("noop", arguments: ["--work-ms", "400", "--concurrency", "2"])
        try fleet.waitForWorkers(1)
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)
        let sub = BatchSubmitter(connection: conn, batch: "wk", route: ["noop"], jobs: specs(12, prefix: "wk"))
        // Let the victim take its leases, then kill it and start the survivor.
        _ = try sub.run(timeoutMs: 300)
        let held = try fleet.status()["workers"]?.array?.first?["leases"]?.int ?? 0
        #expect(held == 2, "the victim should hold exactly its credit (2 leases), no prefetch hoarding")
        kill(victim.pid, SIGKILL)
        try fleet.startWorker("noop", arguments: ["--work-ms", "20"])
        #expect(try sub.run(timeoutMs: 30_000), "every job should finish after the worker died")
        #expect(sub.results.allSatisfy { $0?.status == .done })
        #expect(sub.duplicateResults == 0)
        let outputs = sub.results.compactMap { $0.map { String(decoding: $0.body, as: UTF8.self) } }
        #expect(outputs == (0..<12).map { "job \($0)" })
        let status = try fleet.status()
        let noop = status["stages"]?.array?.first { $0["name"]?.string == "noop" }
        #expect((noop?["retries"]?.int ?? 0) >= 1, "the killed worker's leases should have been requeued")
    }

    @Test("The broker killed with -9 mid-batch and restarted: every acknowledged job completes exactly once",
          .timeLimit(.minutes(3)))
    func brokerKilledMidBatch() throws {
        let dir = tempDir("brokerkill")
        let fleet = try LocalFleet(directory: dir, brokerArguments: fastLeases)
        defer { fleet.stop() }
        try fleet.startWorker("noop1", arguments: ["--work-ms", "1", "--batch", "8"])
        try fleet.startWorker("noop2", arguments: ["--work-ms", "1", "--batch", "8"])
        try fleet.waitForWorkers(2)
        let n = 3000
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)
        let sub = BatchSubmitter(connection: conn, batch: "bk", route: ["noop1", "noop2"], jobs: specs(n, prefix: "bk"))
        sub.chunkSize = 200
        sub.silenceMs = 1500
        let deadline = Date().addingTimeInterval(30)
        while sub.finishedCount < n / 4 && Date() < deadline { _ = try sub.run(timeoutMs: 50) }
        #expect(sub.finishedCount >= n / 4 && sub.finishedCount < n, "the kill should land mid-batch")
        fleet.killBroker()
        try fleet.startBroker()
        #expect(try sub.run(timeoutMs: 90_000), "the batch should finish after the broker restarted")
        #expect(sub.results.allSatisfy { $0?.status == .done })
        let outputs = sub.results.map { $0.map { String(decoding: $0.body, as: UTF8.self) } ?? "" }
        #expect(outputs == (0..<n).map { "job \($0)" })
        let ids = Set(sub.results.compactMap { $0?.jobID })
        #expect(ids.count == n, "one job id per key")
        let j = try journalCounts(dir, batch: "bk")
        #expect(j.rows == n && j.distinctKeys == n && j.done == n, "journal: \(j)")
    }

    @Test("The broker killed after acknowledging and before answering: a client that runs in short slices, as hume submit does, re-attaches and finishes",
          .timeLimit(.minutes(3)))
    func clientReattachesAcrossShortRuns() throws {
        let dir = tempDir("reattach")
        let fleet = try LocalFleet(directory: dir, brokerArguments: fastLeases)
        defer { fleet.stop() }
        // A slow stage: every job is acknowledged long before it has a result.
        try fleet.startWorker("noop", arguments: ["--work-ms", "20", "--batch", "4"])
        try fleet.waitForWorkers(1)
        let n = 400
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)
        let sub = BatchSubmitter(connection: conn, batch: "ra", route: ["noop"], jobs: specs(n, prefix: "ra"))
        sub.chunkSize = 100
        sub.silenceMs = 1500
        // Short slices, as `hume submit` (500 ms) and `hume stream` (200 ms) call it: every job acknowledged, few done.
        let deadline = Date().addingTimeInterval(30)
        while (sub.unansweredCount + sub.finishedCount < n || sub.finishedCount == 0) && Date() < deadline { _ = try sub.run(timeoutMs: 200) }
        #expect(sub.finishedCount > 0 && sub.finishedCount < n / 2, "the kill should land with most jobs acknowledged and unanswered (\(sub.finishedCount) done)")
        fleet.killBroker()
        try fleet.startBroker()
        // The results of the acknowledged jobs went to a connection the broker's death closed; the client must ask again.
        let bound = Date().addingTimeInterval(60)
        var finished = false
        while !finished && Date() < bound { finished = try sub.run(timeoutMs: 200) }
        #expect(finished, "the client hung: \(sub.finishedCount) of \(n) results after 60 s in 200 ms slices")
        #expect(sub.results.allSatisfy { $0?.status == .done } && sub.duplicateResults == 0)
        let j = try journalCounts(dir, batch: "ra")
        #expect(j.rows == n && j.distinctKeys == n && j.done == n, "journal: \(j)")
    }

    @Test("A stalled stage: upstream stops at the downstream bound, memory stays bounded, then everything drains",
          .timeLimit(.minutes(3)))
    func stalledStage() throws {
        let dir = tempDir("stall")
        let fleet = try LocalFleet(directory: dir, brokerArguments: fastLeases + ["--queue-capacity", "500", "--window", "2000"])
        defer { fleet.stop() }
        try fleet.startWorker("noop1")
        try fleet.waitForWorkers(1)
        let n = 20_000
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)
        let sub = BatchSubmitter(connection: conn, batch: "st", route: ["noop1", "noop2"], jobs: specs(n, prefix: "st"))
        _ = try sub.run(timeoutMs: 4000)
        let s = try fleet.status()
        let stage = { (name: String) in s["stages"]?.array?.first { $0["name"]?.string == name } }
        let done1 = stage("noop1")?["completed"]?.int ?? -1
        let held2 = stage("noop2")?["occupancy"]?.int ?? -1
        #expect(done1 <= 500, "noop1 must not run past noop2's capacity: ran \(done1)")
        #expect(held2 <= 500, "noop2 must hold at most its capacity: holds \(held2)")
        #expect((s["active_jobs"]?.int ?? .max) <= 1000, "the broker holds at most both stages' capacities")
        #expect(sub.finishedCount == 0)
        let rss = peakRSSMiB(pid: fleet.broker.pid) ?? 0
        #expect(rss < 200, "broker peak RSS \(rss) MiB")
        // Unstall: the rest flows.
        try fleet.startWorker("noop2")
        #expect(try sub.run(timeoutMs: 120_000))
        #expect(sub.results.allSatisfy { $0?.status == .done })
        #expect(sub.busyReplies > 0, "the client should have been told to wait")
    }

    @Test("A poison job is dead-lettered with its errors kept; the rest of the batch finishes", .timeLimit(.minutes(2)))
    func poisonJob() throws {
        let dir = tempDir("poison")
        let fleet = try LocalFleet(directory: dir, brokerArguments: fastLeases + ["--max-attempts", "3"])
        defer { fleet.stop() }
        try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)
        let jobs = specs(200, prefix: "pz") { $0 == 57 ? "bad #poison" : $0 == 99 ? "refuse #invalid" : "job \($0)" }
        let sub = BatchSubmitter(connection: conn, batch: "pz", route: ["noop"], jobs: jobs)
        #expect(try sub.run(timeoutMs: 60_000))
        #expect(sub.results[57]?.status == .dead)
        let deadError = String(decoding: sub.results[57]?.body ?? [], as: UTF8.self)
        #expect(deadError.contains("failed 3 times"), "\(deadError)")
        #expect(sub.results[99]?.status == .failed)
        #expect(sub.results.enumerated().filter { $0.offset != 57 && $0.offset != 99 }.allSatisfy { $0.element?.status == .done })
        let q = try DatabaseQueue(path: dir + "/journal.sqlite")
        let errors = try q.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM failures f JOIN jobs j ON j.id = f.job WHERE j.key = 'pz-57'") ?? 0
        }
        #expect(errors == 3, "each failed attempt's error is kept")
    }

    @Test("Malformed frames, a wrong version, oversize blobs and unknown stages get an ERROR; the broker keeps serving",
          .timeLimit(.minutes(1)))
    func badInputAtTheEdge() throws {
        let dir = tempDir("bad")
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--stages", "noop"])
        defer { fleet.stop() }
        let ctx = ZMQContext()
        let raw = try ZMQSocket(ctx, .dealer)
        try raw.connect(fleet.endpoints.clients)
        func ask(_ frames: [[UInt8]]) throws -> Message {
            try raw.send(frames)
            var poller = ZMQPoller()
            poller.add(raw)
            _ = try poller.poll(timeoutMs: 5000)
            return try Message.decode(try #require(try raw.receive(dontWait: true))[...])
        }
        let cases: [([[UInt8]], String)] = [
            ([Array("hello".utf8)], "bad_request"),
            ([[0x48, 0x55, 0x4D, 0x45, 0x09], Array("STATUS".utf8), Array("{}".utf8)], "bad_version"),
            ([Wire.signature, Array("FROB".utf8), Array("{}".utf8)], "unknown"),
            ([Wire.signature, Array("SUBMIT".utf8), Array("[1,2]".utf8)], "bad_request"),
            (Message(.submit, header: .object(["req": JSON(7), "batch": .string("b"), "route": .array([.string("warp")])]),
                     records: [JobSpec(key: "k").encode()]).frames(), "unknown"),
            (Message(.submit, header: .object(["req": JSON(8), "batch": .string("b"), "route": .array([.string("noop")])]),
                     records: [Array(JobSpec(key: "k").encode().dropLast(3))]).frames(), "bad_request"),
        ]
        for (frames, code) in cases {
            let m = try ask(frames)
            #expect(m.command == .error)
            #expect(m.header["code"]?.string == code, "\(m.header["message"]?.string ?? "")")
            let sentence = m.header["message"]?.string ?? ""
            #expect(sentence.hasSuffix("."), "one sentence: \(sentence)")
        }
        // An oversize blob: over the 32 MiB default.
        var big = JobSpec(key: "big")
        big.data = [UInt8](repeating: 1, count: 33 << 20)
        let m = try ask(Message(.submit, header: .object(["req": JSON(9), "batch": .string("b"), "route": .array([.string("noop")])]),
                                records: [big.encode()]).frames())
        #expect(m.header["code"]?.string == "too_large")
        // Nothing was stored, and the broker still answers.
        #expect(try fleet.status()["active_jobs"]?.int == 0)
        #expect((try fleet.status()["bad_messages"]?.int ?? 0) >= 7)
    }
}
