@testable import HumeBroker
import HumeCore
import Testing

@Suite("Broker: intake")
struct IntakeTests {
    @Test("SUBMIT is answered with an ACK per job after the journal has it; a known key is flagged duplicate, not re-run")
    func ackListsNewJobs() throws {
        let r = try Rig()
        var out = try r.submit([job("k1"), job("k2")], req: 7)
        let ack = try #require(out.messages("c1", .ack).first)
        #expect(ack.header["req"] == JSON(7))
        #expect(ack.header["accepted"] == JSON(2))
        #expect(ack.header["duplicates"] == JSON(0))
        let acks = try out.acks("c1")
        #expect(acks.map(\.duplicate) == [false, false])
        #expect(acks[0].jobID < acks[1].jobID)
        for a in acks { #expect(try r.journalJob(a.jobID).status == .active) }

        out = try r.submit([job("k2"), job("k3")])
        let second = try #require(out.messages("c1", .ack).first)
        #expect(second.header["accepted"] == JSON(1))
        #expect(second.header["duplicates"] == JSON(1))
        let acks2 = try out.acks("c1")
        #expect(acks2[0] == AckRecord(jobID: acks[1].jobID, duplicate: true))
        #expect(acks2[1].duplicate == false)
        #expect(acks2[1].jobID > acks[1].jobID)
        #expect(r.journal.jobs.count == 3)
        #expect(r.core.activeJobCount == 3)
    }

    @Test("the same key twice runs once; a finished job's key is answered with its RESULT at once")
    func idempotency() throws {
        let r = try Rig()
        let id = try #require(try r.submit([job("k1", data: "in")]).acks("c1").first?.jobID)
        let again = try r.submit([job("k1", data: "other data")])
        #expect(try again.acks("c1") == [AckRecord(jobID: id, duplicate: true)])
        #expect(r.journal.jobs.count == 1)

        let tasks = try r.ready("w1", credit: 5).tasks("w1")
        #expect(tasks.count == 1)
        #expect(tasks.first.map { text($0.input) } == "in")
        let fin = try r.ok("w1", tasks[0], "result-bytes")
        #expect(try fin.results("c1") == [ResultRecord(jobID: id, status: .done, key: "k1", body: Array("result-bytes".utf8))])
        // It never finished an earlier stage, so the journal is told it has no stage output to drop.
        #expect(r.journal.finishedAdvanced[id] == false)

        // A re-run of the batch (another connection, later) gets the stored result without a second run.
        let rerun = try r.submit([job("k1")], client: "c2")
        #expect(try rerun.acks("c2") == [AckRecord(jobID: id, duplicate: true)])
        #expect(try rerun.results("c2") == [ResultRecord(jobID: id, status: .done, key: "k1", body: Array("result-bytes".utf8))])
        #expect(try rerun.allTasks().isEmpty)
        #expect(try r.round().allTasks().isEmpty)
        #expect(r.journal.jobs.count == 1)
    }

    @Test("a failed job's key is answered at once with its failure, not re-run")
    func idempotentFailure() throws {
        let r = try Rig()
        try r.submit([job("bad")])
        let t = try #require(try r.ready("w1", credit: 1).tasks("w1").first)
        try r.fail("w1", t, .permanent, "The prompt is empty.")
        let rerun = try r.submit([job("bad")], client: "c2")
        let res = try #require(try rerun.results("c2").first)
        #expect(res.status == .failed)
        #expect(text(res.body).contains("The prompt is empty."))
        #expect(try rerun.allTasks().isEmpty)
    }

    @Test("with no key, the same batch, route, params and data derive the same key; other content or batch does not")
    func derivedKeys() throws {
        let r = try Rig()
        let blank = { (d: String) in JobSpec(key: "", data: Array(d.utf8)) }
        let acks = try r.submit([blank("x"), blank("x"), blank("y")]).acks("c1")
        #expect(acks.map(\.duplicate) == [false, true, false])
        #expect(acks[1].jobID == acks[0].jobID)
        #expect(acks[2].jobID != acks[0].jobID)
        let otherBatch = try r.submit([blank("x")], batch: "b2").acks("c1")
        #expect(otherBatch.first?.duplicate == false)
        let otherRoute = try r.submit([blank("x")], route: ["a", "b"]).acks("c1")
        #expect(otherRoute.first?.duplicate == false)
        #expect(r.journal.jobs.count == 4)
        #expect(r.journal.jobs.values.allSatisfy { !$0.key.isEmpty })
    }

    @Test("a duplicate of a running job moves its RESULT to the connection that asked last")
    func duplicateWhileRunningMovesResult() throws {
        let r = try Rig()
        let id = try #require(try r.submit([job("k1")], client: "old").acks("old").first?.jobID)
        #expect(try r.submit([job("k1")], client: "new").acks("new") == [AckRecord(jobID: id, duplicate: true)])
        let t = try #require(try r.ready("w1", credit: 1).tasks("w1").first)
        let out = try r.ok("w1", t, "out")
        #expect(try out.results("new").map(\.jobID) == [id])
        #expect(try out.results("old").isEmpty)
    }

    @Test("a client over its window gets BUSY and nothing of that SUBMIT is stored")
    func clientWindow() throws {
        let r = try Rig { $0.clientWindow = 3 }
        #expect(try r.submit([job("k1"), job("k2")]).acks("c1").count == 2)
        let out = try r.submit([job("k3"), job("k4")], req: 5)
        let busy = try #require(out.messages("c1", .busy).first)
        #expect(out.messages("c1", .ack).isEmpty)
        #expect(busy.header["req"] == JSON(5))
        #expect(busy.header["window"] == JSON(3))
        #expect(busy.header["outstanding"] == JSON(2))
        #expect((busy.header["retry_after_ms"]?.int ?? 0) > 0)
        #expect(busy.header["reason"]?.string?.contains("window of 3") == true)
        #expect(r.journal.jobs.count == 2)
        #expect(r.journal.jobs.values.allSatisfy { $0.key != "k3" && $0.key != "k4" })

        // The window is per connection, and a finished job frees a place in it.
        #expect(try r.submit([job("k3")], client: "c2").acks("c2").count == 1)
        let t = try #require(try r.ready("w1", credit: 1).tasks("w1").first)
        try r.ok("w1", t, "x")
        let retry = try r.submit([job("k4"), job("k5")])
        #expect(try retry.acks("c1").count == 2)
        #expect(retry.messages("c1", .busy).isEmpty)
    }

    @Test("a client over its rate gets BUSY with the wait; other clients are not held back; the rate holds on average")
    func clientRate() throws {
        let r = try Rig { $0.clientRate = 100 }
        // One second of burst, and a SUBMIT may take the bucket into debt (150 of 100).
        #expect(try r.submit((1...150).map { job("a\($0)") }).acks("c1").count == 150)
        let out = try r.submit([job("a151")], req: 7)
        let busy = try #require(out.messages("c1", .busy).first)
        #expect(busy.header["req"] == JSON(7))
        #expect(busy.header["reason"]?.string?.contains("limited to 100 jobs/s") == true)
        let wait = try #require(busy.header["retry_after_ms"]?.int)
        #expect(wait >= 500 && wait <= 520, "50 jobs of debt at 100/s: \(wait) ms")
        #expect(r.journal.jobs.values.allSatisfy { $0.key != "a151" })
        // Another connection has its own bucket.
        #expect(try r.submit((1...100).map { job("b\($0)") }, client: "c2").acks("c2").count == 100)
        // Still in debt after 400 ms; after the wait it is accepted.
        try r.wait(400)
        #expect(try r.submit([job("a151")]).messages("c1", .busy).count == 1)
        try r.wait(UInt64(wait) - 400)
        #expect(try r.submit([job("a151")]).acks("c1").count == 1)
    }

    @Test("a full first stage answers BUSY to every client; leased jobs still count; a finished job makes room")
    func firstStageCapacity() throws {
        let r = try Rig { $0.queueCapacity = 3 }
        #expect(try r.submit([job("k1"), job("k2")]).acks("c1").count == 2)
        let tooMany = try r.submit([job("k3"), job("k4")], client: "c2")
        let busy = try #require(tooMany.messages("c2", .busy).first)
        #expect(busy.header["reason"]?.string?.contains("stage a is full") == true)
        #expect(r.journal.jobs.count == 2)
        #expect(try r.submit([job("k3")], client: "c2").acks("c2").count == 1)

        let t = try #require(try r.ready("w1", credit: 1).tasks("w1").first)
        #expect(try r.submit([job("k4")], client: "c3").messages("c3", .busy).count == 1)
        try r.ok("w1", t, "x")
        #expect(try r.submit([job("k4")], client: "c3").acks("c3").count == 1)
        #expect(r.journal.jobs.count == 4)
    }

    @Test("a SUBMIT over the first stage's free bytes gets BUSY; one over its whole budget or the window, which could never fit, gets ERROR too_large")
    func firstStageBytes() throws {
        let r = try Rig {
            $0.queueBytes = 10
            $0.clientWindow = 3
        }
        // Larger than the whole budget: waiting would never help (it used to be BUSY forever).
        var out = try r.submit([job("k1", data: String(repeating: "x", count: 11))], req: 1)
        #expect(out.messages("c1", .busy).isEmpty)
        let tooBig = try #require(out.errors("c1").first)
        #expect(tooBig["code"]?.string == "too_large" && tooBig["message"]?.string?.contains("send fewer jobs per SUBMIT") == true)
        // More jobs than the window, ever.
        out = try r.submit((1...4).map { job("w\($0)") }, req: 2)
        #expect(out.errors("c1").first?["code"]?.string == "too_large" && out.messages("c1", .busy).isEmpty)
        #expect(r.journal.jobs.isEmpty)
        // Over what is free now, but within the budget: BUSY, and it fits once the stage has room.
        #expect(try r.submit([job("k1", data: String(repeating: "x", count: 6))]).acks("c1").count == 1)
        #expect(try r.submit([job("k2", data: String(repeating: "x", count: 6))]).messages("c1", .busy).count == 1)
        #expect(try r.submit([job("k2", data: String(repeating: "x", count: 4))]).acks("c1").count == 1)
    }
}

@Suite("Broker: dispatch")
struct DispatchTests {
    @Test("a worker with credit 2 holds at most 2 tasks; each DONE record returns one credit")
    func creditBound() throws {
        let r = try Rig()
        try r.ready("w1", credit: 2)
        var out = try r.submit((1...6).map { job("k\($0)") })
        let first = try out.tasks("w1")
        #expect(first.count == 2)
        #expect(try r.round().tasks("w1").isEmpty)
        #expect(try r.stage("a")["in_flight"] == JSON(2))

        out = try r.ok("w1", first[0], "r")
        let second = try out.tasks("w1")
        #expect(second.count == 1)
        #expect(try r.stage("a")["in_flight"] == JSON(2))

        // Two DONE records in one message give two credits back.
        out = try r.done("w1", [DoneRecord(lease: first[1].lease, outcome: .ok, body: []),
                                DoneRecord(lease: second[0].lease, outcome: .ok, body: [])])
        #expect(try out.tasks("w1").count == 2)
        #expect(try out.results("c1").count == 2)
        #expect(try r.stage("a")["credit"] == JSON(0))
    }

    @Test("queued work spreads evenly over two workers with equal credit")
    func fairSpread() throws {
        let r = try Rig()
        try r.ready("w1", credit: 10)
        try r.ready("w2", credit: 10)
        let out = try r.submit((1...10).map { job("k\($0)") })
        #expect(try out.tasks("w1").count == 5)
        #expect(try out.tasks("w2").count == 5)
        #expect(Set(try out.allTasks().map(\.jobID)).count == 10)
    }

    @Test("a worker short of credit gets only what it can take; the rest goes to the other worker")
    func unevenCredit() throws {
        let r = try Rig()
        try r.ready("w1", credit: 1)
        try r.ready("w2", credit: 10)
        let out = try r.submit((1...6).map { job("k\($0)") })
        #expect(try out.tasks("w1").count == 1)
        #expect(try out.tasks("w2").count == 5)
    }

    @Test("higher priority runs first; within a priority, first submitted runs first")
    func priorities() throws {
        let r = try Rig()
        try r.submit([job("a1", priority: 0), job("b1", priority: 5), job("a2", priority: 0), job("c1", priority: 9),
                      job("b2", priority: 5)])
        try r.submit([job("c2", priority: 9), job("a3", priority: 0)])
        var order: [String] = []
        var task = try r.ready("w1", credit: 1).tasks("w1")
        while let t = task.first {
            order.append(t.key)
            task = try r.ok("w1", t, "").tasks("w1")
        }
        #expect(order == ["c1", "c2", "b1", "b2", "a1", "a2", "a3"])
    }

    @Test("a multi-stage job moves stage by stage; each stage's output is journaled and becomes the next one's input")
    func multiStage() throws {
        let r = try Rig()
        try r.ready("wa", stage: "a", credit: 1)
        try r.ready("wb", stage: "b", credit: 1)
        try r.ready("wc", stage: "c", credit: 1)
        var out = try r.submit([JobSpec(key: "k", params: Array("{\"n\":1}".utf8), data: Array("x".utf8))],
                               route: ["a", "b", "c"], progress: true)
        let id = try #require(try out.acks("c1").first?.jobID)
        let ta = try #require(try out.tasks("wa").first)
        #expect(text(ta.input) == "x")
        #expect(text(ta.params) == "{\"n\":1}")
        #expect(ta.attempt == 1)
        #expect(try r.journalJob(id).stage == 0)

        out = try r.ok("wa", ta, "after-a")
        #expect(try r.journalJob(id).stage == 1)
        #expect(text(try r.journalJob(id).output) == "after-a")
        let progress = try #require(out.messages("c1", .progress).first?.records.first)
        var pr = ByteReader(progress, what: "PROGRESS record")
        #expect(try pr.u64("job") == id)
        #expect(try pr.u8("done") == 1)
        #expect(try pr.u8("total") == 3)
        let tb = try #require(try out.tasks("wb").first)
        #expect(tb.jobID == id && text(tb.input) == "after-a" && tb.attempt == 1)
        #expect(text(tb.params) == "{\"n\":1}")

        out = try r.ok("wb", tb, "after-b")
        #expect(try r.journalJob(id).stage == 2)
        #expect(text(try r.journalJob(id).output) == "after-b")
        let tc = try #require(try out.tasks("wc").first)
        #expect(text(tc.input) == "after-b")
        #expect(try out.results("c1").isEmpty)

        out = try r.ok("wc", tc, "final")
        #expect(try out.results("c1") == [ResultRecord(jobID: id, status: .done, key: "k", body: Array("final".utf8))])
        #expect(try r.journalJob(id).status == .done)
        #expect(text(try r.journalJob(id).output) == "final")
        #expect(r.journal.finishedAdvanced[id] == true)  // its stage output must go
        #expect(r.core.activeJobCount == 0)
    }

    @Test("a full next stage stops dispatch upstream without dropping anything; draining it resumes the flow")
    func downstreamBackpressure() throws {
        let r = try Rig { $0.queueCapacity = 2 }
        let route = ["a", "b"]
        try r.ready("wa", stage: "a", credit: 10)
        var out = try r.submit([job("j1"), job("j2")], route: route)
        let ta = try out.tasks("wa")
        #expect(ta.count == 2)
        try r.done("wa", ta.map { DoneRecord(lease: $0.lease, outcome: .ok, body: Array("A-\($0.key)".utf8)) })
        #expect(try r.stage("b")["occupancy"] == JSON(2))

        // Stage a has room for new jobs, but b is full: nothing of a is dispatched though wa has credit.
        out = try r.submit([job("j3"), job("j4")], route: route)
        #expect(try out.acks("c1").count == 2)
        #expect(try out.tasks("wa").isEmpty)
        for _ in 0..<3 { #expect(try r.round().tasks("wa").isEmpty) }
        #expect(try r.stage("a")["queued"] == JSON(2))
        #expect(r.journal.jobs.values.filter { $0.status == .active }.count == 4)

        // A b worker starts: b's jobs are leased but still occupy b, so a stays held back.
        out = try r.ready("wb", stage: "b", credit: 1)
        #expect(try out.tasks("wb").count == 1)
        #expect(try out.tasks("wa").isEmpty)

        // Run every task to completion; b never holds more than its capacity.
        var pending = try out.tasks("wb").map { ("wb", $0) }
        var results: [ResultRecord] = []
        var rounds = 0
        while !pending.isEmpty, rounds < 50 {
            let (w, t) = pending.removeFirst()
            rounds += 1
            out = try r.ok(w, t, "\(w)-\(t.key)")
            results += try out.results("c1")
            pending += try out.tasks("wa").map { ("wa", $0) } + out.tasks("wb").map { ("wb", $0) }
            let b = try r.stage("b")
            #expect((b["occupancy"]?.int ?? 99) <= 2)
        }
        #expect(results.map(\.key).sorted() == ["j1", "j2", "j3", "j4"])
        #expect(results.allSatisfy { $0.status == .done && text($0.body).hasPrefix("wb-") })
        #expect(r.core.activeJobCount == 0)
    }

    @Test("jobs held back by a full next stage keep their first-in, first-out order")
    func backpressureKeepsFIFO() throws {
        let r = try Rig { $0.queueCapacity = 2 }
        let route = ["a", "b"]
        try r.ready("wa", stage: "a", credit: 10)
        let ta = try r.submit([job("j1"), job("j2")], route: route).tasks("wa")
        try r.done("wa", ta.map { DoneRecord(lease: $0.lease, outcome: .ok, body: []) })
        try r.submit([job("j3"), job("j4")], route: route)
        // Some loop rounds pass while b is full (an odd number, so a rotation of the queue would show).
        try r.round()
        let tb = try #require(try r.ready("wb", stage: "b", credit: 1).tasks("wb").first)
        let out = try r.ok("wb", tb, "")
        #expect(try out.tasks("wa").map(\.key) == ["j3"])
    }

    @Test("a draining worker gets no new tasks but its running ones still complete")
    func drain() throws {
        let r = try Rig()
        try r.ready("w1", credit: 2)
        let t = try r.submit((1...4).map { job("k\($0)") }).tasks("w1")
        #expect(t.count == 2)
        // The reply comes after every TASK already sent and says how many leases the broker counts for the worker.
        let ack = try r.send(.workers, "w1", Message(.drain)).messages("w1", .drain)
        #expect(ack.count == 1 && ack.first?.header["leases"] == JSON(2))
        let out = try r.done("w1", t.map { DoneRecord(lease: $0.lease, outcome: .ok, body: []) })
        #expect(try out.results("c1").count == 2)
        #expect(try out.tasks("w1").isEmpty)
        #expect(try r.round().tasks("w1").isEmpty)
        let w = try #require(try r.status()["workers"]?.array?.first)
        #expect(w["draining"] == .bool(true))
        #expect(w["credit"] == JSON(0))
        #expect(try r.ready("w2", credit: 5).tasks("w2").count == 2)
        // A DRAIN from a worker the broker does not know (say, after a broker restart) is answered too: it holds
        // nothing, so the worker need not wait.
        let unknown = try r.send(.workers, "ghost", Message(.drain)).messages("ghost", .drain)
        #expect(unknown.count == 1 && unknown.first?.header["leases"] == JSON(0))
        #expect(try r.status()["workers"]?.array?.count == 2, "an unknown worker's DRAIN registers nothing")
    }
}

@Suite("Broker: leases, retries and failures")
struct FailureTests {
    @Test("a worker that stops heartbeating loses its leases to another worker; its late DONE is discarded")
    func leaseExpiry() throws {
        let r = try Rig { $0.workerTimeoutMs = 5_000; $0.retryBaseMs = 100 }
        try r.ready("w1", credit: 1)
        let t1 = try #require(try r.submit([job("k1", data: "in")]).tasks("w1").first)
        try r.ready("w2", credit: 1)

        r.now += 3_000
        #expect(try r.heartbeat("w2").tasks("w2").isEmpty)
        r.now += 2_000
        #expect(try r.heartbeat("w2").tasks("w2").isEmpty, "not expired at exactly the timeout")
        r.now += 100  // the broker scans for silent workers every 100 ms
        #expect(try r.heartbeat("w2").tasks("w2").isEmpty, "requeued with back-off, not at once")
        #expect(try r.status()["workers"]?.array?.count == 1)
        let t2 = try #require(try r.wait(100).tasks("w2").first)
        #expect(t2.jobID == t1.jobID)
        #expect(t2.lease != t1.lease)
        #expect(t2.attempt == 2)
        #expect(text(t2.input) == "in")

        let late = try r.ok("w1", t1, "stale")
        #expect(late.errors("w1").first?["code"]?.string == "unknown_worker")
        #expect(try late.allResults().isEmpty)
        let out = try r.ok("w2", t2, "fresh")
        #expect(try out.results("c1").map { text($0.body) } == ["fresh"])
        #expect(r.journal.failureLog[t1.jobID]?.first?.contains("went away") == true)
    }

    @Test("a worker that keeps heartbeating keeps a long task")
    func heartbeatKeepsLease() throws {
        let r = try Rig { $0.workerTimeoutMs = 5_000 }
        try r.ready("w1", credit: 1)
        let t = try #require(try r.submit([job("k1")]).tasks("w1").first)
        try r.ready("w2", credit: 1)
        let (holder, other) = ("w1", "w2")
        for _ in 0..<30 {
            r.now += 1_000
            try r.heartbeat(other)
            #expect(try r.heartbeat(holder).allTasks().isEmpty)
        }
        #expect(try r.ok(holder, t, "done").results("c1").count == 1)
        #expect(r.journal.failureLog.isEmpty)
    }

    @Test("a retryable failure waits its exponential back-off (capped) before it is dispatched again")
    func retryBackoff() throws {
        let r = try Rig { $0.retryBaseMs = 100; $0.retryMaxMs = 300; $0.maxAttempts = 10 }
        try r.ready("w1", credit: 1)
        var t = try #require(try r.submit([job("k1")]).tasks("w1").first)
        let id = t.jobID
        #expect(t.attempt == 1)
        for (attempt, delay) in [(2, 100), (3, 200), (4, 300), (5, 300)] as [(UInt16, UInt64)] {
            #expect(try r.fail("w1", t, .retryable, "Try again.").tasks("w1").isEmpty)
            #expect(try r.wait(delay - 1).tasks("w1").isEmpty, "attempt \(attempt) dispatched before \(delay) ms")
            let next = try r.wait(1).tasks("w1")
            #expect(next.count == 1, "attempt \(attempt) not dispatched after \(delay) ms")
            t = try #require(next.first)
            #expect(t.attempt == attempt)
            #expect(t.jobID == id)
        }
        #expect(try r.stage("a")["retries"] == JSON(4))
    }

    @Test("after maxAttempts retryable failures a job is dead-lettered with every error kept; the batch goes on")
    func deadLetter() throws {
        let r = try Rig { $0.maxAttempts = 3; $0.retryBaseMs = 10; $0.retryMaxMs = 10 }
        try r.ready("w1", credit: 2)
        var out = try r.submit([job("poison"), job("good")])
        var results: [ResultRecord] = []
        var failures = 0
        for _ in 0..<10 {
            for t in try out.tasks("w1") {
                if t.key == "poison" {
                    failures += 1
                    results += try r.fail("w1", t, .retryable, "Boom \(failures).").results("c1")
                } else {
                    results += try r.ok("w1", t, "fine").results("c1")
                }
            }
            out = try r.wait(10)
            results += try out.results("c1")
        }
        #expect(failures == 3)
        let dead = try #require(results.first { $0.key == "poison" })
        #expect(dead.status == .dead)
        #expect(text(dead.body) == "Stage a failed 3 times; last error: Boom 3.")
        #expect(results.first { $0.key == "good" }?.status == .done)
        let j = try r.journalJob(dead.jobID)
        #expect(j.status == .dead)
        #expect(j.error == text(dead.body))
        let log = try #require(r.journal.failureLog[dead.jobID])
        #expect(log.count == 3)
        for i in 1...3 { #expect(log[i - 1].contains("Boom \(i).")) }
        #expect(try r.stage("a")["dead_letters"] == JSON(1))
    }

    @Test("a permanent failure fails the job at once with the worker's message, without retry")
    func permanentFailure() throws {
        let r = try Rig()
        try r.ready("w1", credit: 1)
        let t = try #require(try r.submit([job("k1"), job("k2")]).tasks("w1").first)
        let out = try r.fail("w1", t, .permanent, "The prompt is empty.")
        let res = try #require(try out.results("c1").first)
        #expect(res.status == .failed)
        #expect(text(res.body) == "Stage a refused the job: The prompt is empty.")
        #expect(try r.journalJob(t.jobID).status == .failed)
        #expect(r.journal.failureLog[t.jobID]?.count == 1)
        // The freed credit goes to the next job, and the failed one is never retried.
        let t2 = try #require(try out.tasks("w1").first)
        #expect(t2.key == "k2")
        #expect(try r.ok("w1", t2, "x").allTasks().isEmpty)
        #expect(try r.wait(1_000).allTasks().isEmpty)
        #expect(try r.wait(10_000).allTasks().isEmpty)
    }

    @Test("a DONE record with a bad outcome gets an ERROR, ends its task as a retryable failure and frees that slot only")
    func brokenDoneRecord() throws {
        let r = try Rig { $0.retryBaseMs = 100 }
        try r.ready("w1", credit: 1)
        let t = try #require(try r.submit([job("k1"), job("k2")]).tasks("w1").first)
        var bad = ByteWriter()
        bad.u64(t.lease); bad.u8(9); bad.blob([UInt8]())
        let out = try r.send(.workers, "w1", Message(.done, records: [bad.bytes]))
        #expect(out.errors("w1").first?["code"]?.string == "bad_request")
        #expect(try out.allResults().isEmpty)
        // The slot k1 held is free and k1 is no longer leased: the worker holds one task, never two on credit 1.
        let next = try out.tasks("w1")
        #expect(next.map(\.key) == ["k2"])
        #expect(try r.stage("a")["in_flight"] == JSON(1))
        #expect(try r.stage("a")["retries"] == JSON(1))
        // k1 runs again after its back-off, as its second attempt.
        _ = try r.ok("w1", try #require(next.first), "done k2")
        let again = try r.wait(100).tasks("w1")
        #expect(again.map(\.key) == ["k1"] && again.first?.attempt == 2)
    }

    @Test("a DONE record too short to name its lease gets an ERROR and frees no slot, so the worker is never overcommitted")
    func unreadableDoneRecord() throws {
        let r = try Rig()
        try r.ready("w1", credit: 1)
        let t = try #require(try r.submit([job("k1"), job("k2")]).tasks("w1").first)
        let out = try r.send(.workers, "w1", Message(.done, records: [[1, 2, 3]]))
        #expect(out.errors("w1").first?["code"]?.string == "bad_request")
        #expect(try out.tasks("w1").isEmpty, "no credit came back, so nothing more is sent")
        #expect(try r.stage("a")["in_flight"] == JSON(1))
        // The task it still holds finishes normally; then the next one is sent.
        let after = try r.ok("w1", t, "done k1")
        #expect(try after.results("c1").count == 1 && after.tasks("w1").map(\.key) == ["k2"])
    }
}

@Suite("Broker: cancel, deadlines, recovery, bad input, status")
struct LifecycleTests {
    @Test("cancelling a queued job removes it: it is never dispatched and its owner gets a cancelled RESULT")
    func cancelQueued() throws {
        let r = try Rig()
        let acks = try r.submit([job("k1"), job("k2")]).acks("c1")
        let out = try r.cancel(.object(["req": JSON(3), "jobs": .array([JSON(Int(acks[0].jobID)), JSON(424242)])]))
        let reply = try #require(out.messages("c1", .cancel).first)
        #expect(reply.header["cancelled"] == JSON(1))
        #expect(reply.header["req"] == JSON(3))
        #expect(try out.results("c1") == [ResultRecord(jobID: acks[0].jobID, status: .cancelled, key: "k1",
                                                       body: Array("Cancelled at the client's request.".utf8))])
        #expect(try r.journalJob(acks[0].jobID).status == .cancelled)
        #expect(try r.ready("w1", credit: 5).tasks("w1").map(\.key) == ["k2"])
    }

    @Test("LOOKUP answers each id in order: active from memory (stage, key, batch), finished from the journal with its body, unknown as 255")
    func lookup() throws {
        let r = try Rig()
        try r.ready("w1", credit: 1)
        let out = try r.submit([job("k1"), job("k2"), job("k3")], batch: "bl")
        let acks = try out.acks("c1")
        let t = try #require(try out.tasks("w1").first)
        try r.ok("w1", t, "made k1")
        try r.cancel(.object(["jobs": .array([JSON(Int(acks[2].jobID))])]))
        let ids = [acks[0].jobID, acks[1].jobID, acks[2].jobID, 424242]
        let reply = try r.send(.clients, "c2", Message(.lookup, header: .object(["req": JSON(9), "jobs": .array(ids.map { JSON(Int($0)) })])))
        let m = try #require(reply.messages("c2", .lookup).first)
        #expect(m.header["req"] == JSON(9))
        let recs = try m.records.map { try JobRecord.decode($0) }
        #expect(recs.map(\.jobID) == ids)
        #expect(recs[0] == JobRecord(jobID: acks[0].jobID, status: 1, stage: 1, stages: 1, key: "k1", batch: "bl", body: Array("made k1".utf8)))
        #expect(recs[1] == JobRecord(jobID: acks[1].jobID, status: 0, stage: 0, stages: 1, key: "k2", batch: "bl", body: []))
        #expect(recs[2].status == JobStatus.cancelled.rawValue && recs[2].body == Array("Cancelled at the client's request.".utf8))
        #expect(recs[3] == JobRecord.unknown(424242))
        // Refusals: no ids, too many, not ids; the control endpoint answers too.
        for (header, code) in [(JSON.object([:]), "bad_request"), (.object(["jobs": .array([.string("x")])]), "bad_request"),
                               (.object(["jobs": .array((1...101).map { JSON($0) })]), "too_large")] {
            #expect(try r.send(.clients, "c2", Message(.lookup, header: header)).errors("c2").first?["code"]?.string == code)
        }
        #expect(try r.send(.control, "k", Message(.lookup, header: .object(["jobs": .array([JSON(Int(acks[0].jobID))])])))
            .messages("k", .lookup).count == 1)
    }

    @Test("cancelling by batch ends every active job of that batch only")
    func cancelBatch() throws {
        let r = try Rig()
        try r.submit([job("x1"), job("x2")], batch: "bx")
        try r.submit([job("y1")], batch: "by")
        let out = try r.cancel(.object(["batch": .string("bx")]), client: "other")
        #expect(out.messages("other", .cancel).first?.header["cancelled"] == JSON(2))
        #expect(try out.results("c1").map(\.key).sorted() == ["x1", "x2"])
        #expect(try r.ready("w1", credit: 5).tasks("w1").map(\.key) == ["y1"])
    }

    @Test("cancelling a leased job revokes the lease: the worker's later DONE is discarded and the result stays cancelled")
    func cancelLeased() throws {
        let r = try Rig()
        try r.ready("w1", credit: 1)
        let t = try #require(try r.submit([job("k1"), job("k2")]).tasks("w1").first)
        let c = try r.cancel(.object(["jobs": .array([JSON(Int(t.jobID))])]))
        #expect(try c.results("c1").map(\.status) == [.cancelled])
        #expect(try c.tasks("w1").isEmpty, "the worker is still busy with the revoked task")
        let late = try r.ok("w1", t, "too late")
        #expect(try late.allResults().isEmpty)
        #expect(try r.journalJob(t.jobID).status == .cancelled)
        #expect(try r.journalJob(t.jobID).output.isEmpty)
        #expect(try late.tasks("w1").map(\.key) == ["k2"])
        #expect(try r.stage("a")["occupancy"] == JSON(1))
    }

    @Test("a queued job past its deadline expires and is never dispatched; jobs without one wait")
    func deadlineQueued() throws {
        let r = try Rig()
        try r.submit([job("d1", deadline: r.now + 1_000), job("n1")])
        #expect(try r.wait(999).allResults().isEmpty)
        let out = try r.wait(1)
        #expect(try out.results("c1") == [ResultRecord(jobID: 1, status: .expired, key: "d1",
                                                       body: Array("Its deadline passed before it finished.".utf8))])
        #expect(try r.journalJob(1).status == .expired)
        #expect(try r.ready("w1", credit: 5).tasks("w1").map(\.key) == ["n1"])
    }

    @Test("a leased job past its deadline expires; its worker's later DONE is discarded")
    func deadlineLeased() throws {
        let r = try Rig()
        try r.ready("w1", credit: 1)
        let t = try #require(try r.submit([job("d1", deadline: r.now + 500)]).tasks("w1").first)
        #expect(try r.wait(500).results("c1").map(\.status) == [.expired])
        #expect(try r.ok("w1", t, "late").allResults().isEmpty)
        #expect(try r.journalJob(t.jobID).status == .expired)
    }

    @Test("after a restart over the same journal, active jobs resume at their last finished stage")
    func recovery() throws {
        let r = try Rig()
        let route = ["a", "b"]
        try r.ready("wa", stage: "a", credit: 2)
        let out = try r.submit([job("k1", data: "D1"), job("k2", data: "D2")], route: route)
        let ids = try out.acks("c1").map(\.jobID)
        let ta = try out.tasks("wa")
        let t1 = try #require(ta.first { $0.key == "k1" })
        try r.ok("wa", t1, "A1")
        #expect(try r.journalJob(ids[0]).stage == 1)

        try r.restart()
        #expect(r.core.activeJobCount == 2)
        let tb = try r.ready("wb", stage: "b", credit: 5).tasks("wb")
        #expect(tb.map(\.key) == ["k1"])
        #expect(tb.first.map { text($0.input) } == "A1")
        #expect(tb.first?.attempt == 1)
        let ta2 = try r.ready("wa", stage: "a", credit: 5).tasks("wa")
        #expect(ta2.map(\.key) == ["k2"])
        #expect(ta2.first.map { text($0.input) } == "D2")

        // A client re-submitting after the restart takes the job over and gets its result.
        #expect(try r.submit([job("k2")], client: "c9", route: route).acks("c9") == [AckRecord(jobID: ids[1], duplicate: true)])
        let ta2First = try #require(ta2.first)
        let tb2 = try #require(try r.ok("wa", ta2First, "A2").tasks("wb").first)
        #expect(text(tb2.input) == "A2")
        let tbFirst = try #require(tb.first)
        try r.ok("wb", tbFirst, "B1")
        #expect(try r.journalJob(ids[0]).status == .done)
        #expect(text(try r.journalJob(ids[0]).output) == "B1")
        let fin = try r.ok("wb", tb2, "B2")
        #expect(try fin.results("c9") == [ResultRecord(jobID: ids[1], status: .done, key: "k2", body: Array("B2".utf8))])

        // Job ids are never reused across the restart.
        let fresh = try #require(try r.submit([job("k3")]).acks("c1").first)
        #expect(fresh.jobID > ids[1])
    }

    @Test("malformed messages get an ERROR naming the problem and change nothing")
    func malformed() throws {
        let r = try Rig { $0.maxBlobBytes = 16 }
        func submitFrames(_ header: String, _ records: [[UInt8]] = []) -> [[UInt8]] {
            [Wire.signature, Array("SUBMIT".utf8), Array(header.utf8)] + records
        }
        let good = job("k").encode()
        let cases: [(Endpoint, [[UInt8]], String)] = [
            (.clients, [Array("HUME".utf8) + [2], Array("SUBMIT".utf8), []], "bad_version"),
            (.clients, [Wire.signature, Array("FROB".utf8), []], "unknown"),
            (.clients, [Wire.signature, Array("SUBMIT".utf8)], "bad_request"),
            (.clients, [Wire.signature, Array("SUBMIT".utf8), Array("{oops".utf8)], "bad_request"),
            (.clients, submitFrames(#"{"req":5,"route":["a"]}"#, [good]), "bad_request"),
            (.clients, submitFrames(#"{"batch":"b","route":[]}"#, [good]), "bad_request"),
            (.clients, submitFrames(#"{"batch":"b","route":["a",3]}"#, [good]), "bad_request"),
            (.clients, submitFrames(#"{"batch":"b","route":["zzz"]}"#, [good]), "unknown"),
            (.clients, submitFrames(#"{"batch":"b","route":["a"]}"#, [good, Array(good.dropLast())]), "bad_request"),
            (.clients, submitFrames(#"{"batch":"b","route":["a"]}"#, [job("big", data: String(repeating: "x", count: 17)).encode()]), "too_large"),
            (.clients, Message(.task).frames(), "unknown"),
            (.clients, Message(.cancel, header: .object(["jobs": .array([.string("x")])])).frames(), "bad_request"),
            (.clients, Message(.cancel).frames(), "bad_request"),
            (.control, submitFrames(#"{"batch":"b","route":["a"]}"#, [good]), "unknown"),
            (.workers, Message(.ready, header: .object(["stage": .string("nope"), "credit": JSON(1)])).frames(), "unknown"),
            (.workers, Message(.ready, header: .object(["stage": .string("a"), "credit": JSON(-1)])).frames(), "bad_request"),
            (.workers, Message(.ready, header: .object(["credit": JSON(1)])).frames(), "bad_request"),
            (.workers, Message(.done, records: [DoneRecord(lease: 1, outcome: .ok, body: []).encode()]).frames(), "unknown_worker"),
            (.workers, Message(.heartbeat).frames(), "unknown_worker"),
        ]
        for (i, (endpoint, frames, code)) in cases.enumerated() {
            let peer = "p\(i)"
            let out = try r.send(endpoint, peer, frames: frames)
            #expect(out.count == 1, "case \(i)")
            let err = try #require(out.errors(peer).first, "case \(i)")
            #expect(err["code"]?.string == code, "case \(i): \(err.serialized)")
            let msg = err["message"]?.string ?? ""
            #expect(msg.hasSuffix(".") && msg.count > 10, "case \(i): \(msg)")
        }
        #expect(try r.send(.clients, "p4", frames: submitFrames(#"{"req":5,"route":["a"]}"#)).errors("p4").first?["req"] == JSON(5))
        #expect(r.journal.jobs.isEmpty)
        #expect(r.core.activeJobCount == 0)
        let st = try r.status()
        #expect(st["submitted"] == JSON(0))
        #expect(st["workers"]?.array?.isEmpty == true)
        // Every ERROR is counted (PROTOCOL.md 3), the unknown workers' included.
        #expect(st["bad_messages"] == JSON(cases.count + 1))
        // The broker carries on as before.
        #expect(try r.submit([job("k")]).acks("c1").count == 1)
    }

    @Test("STATUS reports per-stage queued, in-flight and completed counts, workers and batch totals")
    func status() throws {
        let r = try Rig()
        try r.ready("w1", credit: 1)
        let t = try #require(try r.submit([job("k1"), job("k2"), job("k3")]).tasks("w1").first)
        var a = try r.stage("a")
        #expect(a["queued"] == JSON(2))
        #expect(a["occupancy"] == JSON(3))
        #expect(a["in_flight"] == JSON(1))
        #expect(a["workers"] == JSON(1))
        #expect(a["credit"] == JSON(0))
        #expect(a["completed"] == JSON(0))
        #expect(try r.stage("b")["occupancy"] == JSON(0))

        try r.ok("w1", t, "x")
        a = try r.stage("a")
        #expect(a["queued"] == JSON(1))
        #expect(a["occupancy"] == JSON(2))
        #expect(a["in_flight"] == JSON(1))
        #expect(a["completed"] == JSON(1))
        let st = try r.status()
        #expect(st["req"] == JSON(99))
        #expect(st["submitted"] == JSON(3))
        #expect(st["active_jobs"] == JSON(2))
        let batch = try #require(st["batches"]?.array?.first)
        #expect(batch["batch"]?.string == "b1")
        #expect(batch["total"] == JSON(3))
        #expect(batch["active"] == JSON(2))
        #expect(batch["done"] == JSON(1))
        #expect(st["workers"]?.array?.first?["name"]?.string == "w1")
    }

    @Test("an ended job is forgotten once keepEndedMs has passed: its batch's counts drop, its key runs again; active jobs and younger ones stay")
    func forgetsEndedJobs() throws {
        let r = try Rig {
            $0.keepEndedMs = 60_000
            $0.workerTimeoutMs = 1_000_000  // the hand-moved clock skips heartbeats
        }
        try r.ready("w1", credit: 10)
        let out = try r.submit([job("k1"), job("k2"), job("k3")])
        let tasks = try out.tasks("w1")
        try r.ok("w1", tasks[0], "one")
        try r.ok("w1", tasks[1], "two")
        try r.wait(30_000)
        let late = try r.submit([job("k4")], batch: "b2")
        try r.ok("w1", try #require(try late.tasks("w1").first), "four")
        // 59 s after the first two ended: nothing is forgotten yet.
        try r.wait(29_000)
        let before = try r.status()
        #expect(r.journal.jobs.count == 4 && before["forgotten"] == JSON(0))
        // Past 60 s: both go; job 3 is still running, job 4 ended 31 s ago.
        try r.wait(2_000)
        #expect(r.journal.jobs.keys.sorted() == [3, 4])
        let st = try r.status()
        #expect(st["forgotten"] == JSON(2) && st["keep_ended_ms"] == JSON(60_000))
        #expect(samples(r.core.metricsText())["hume_jobs_forgotten_total"] == 2)
        let b1 = try #require(st["batches"]?.array?.first { $0["batch"]?.string == "b1" })
        #expect(b1["total"] == JSON(1) && b1["done"] == JSON(0) && b1["active"] == JSON(1))
        // A forgotten key is a new job: it runs again, under a new id.
        let again = try r.submit([job("k1")], client: "c2")
        let ack = try #require(try again.acks("c2").first)
        #expect(!ack.duplicate && ack.jobID == 5)
        #expect(try again.tasks("w1").count == 1)
        // The last job of batch b2 forgotten (job 4, no longer the newest): b2 is no longer listed.
        try r.ok("w1", tasks[2], "three")
        try r.wait(61_000)
        let batches = try #require(try r.status()["batches"]?.array).map { $0["batch"]?.string ?? "" }
        #expect(!batches.contains("b2") && r.journal.jobs[4] == nil)
    }

    @Test("with keepEndedMs nil nothing is ever forgotten")
    func keepsForever() throws {
        let r = try Rig {
            $0.keepEndedMs = nil
            $0.workerTimeoutMs = 1_000_000
        }
        try r.ready("w1", credit: 10)
        try r.ok("w1", try #require(try r.submit([job("k1"), job("k2")]).tasks("w1").first), "x")
        try r.wait(400 * 86_400_000)
        let st = try r.status()
        #expect(r.journal.jobs.count == 2 && st["keep_ended_ms"] == JSON.null)
    }
}
