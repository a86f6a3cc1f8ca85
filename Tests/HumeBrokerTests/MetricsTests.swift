@testable import HumeBroker
import HumeCore
import Testing

/// Parses Prometheus text into `name{labels}` → value (labels as written, sorted by the writer's order).
func samples(_ text: String) -> [String: Double] {
    var out: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " ") else { continue }
        let v = line[line.index(after: space)...]
        out[String(line[..<space])] = v == "+Inf" ? .infinity : Double(v)
    }
    return out
}

@Suite("Broker: metrics, fleet status, SCALE ranges, status page")
struct MetricsTests {
    @Test("the exposition has HELP/TYPE for every family and per-stage queue, in-flight, leases, counters and histograms")
    func stageMetrics() throws {
        let r = try Rig { $0.maxAttempts = 2 }
        try r.ready("w1", credit: 2)
        let out = try r.submit([job("k1"), job("k2"), job("k3"), job("bad")], route: ["a", "b"])
        let tasks = try out.tasks("w1")
        #expect(tasks.count == 2)
        r.now += 40
        try r.ok("w1", tasks[0], "x")
        r.now += 10
        try r.fail("w1", tasks[1], .retryable, "try again")
        let m = samples(r.core.metricsText())
        #expect(m["hume_jobs_submitted_total"] == 4)
        #expect(m["hume_jobs_active"] == 4)
        #expect(m["hume_stage_arrived_total{stage=\"a\"}"] == 4)
        #expect(m["hume_stage_arrived_total{stage=\"b\"}"] == 1)
        #expect(m["hume_stage_occupancy{stage=\"a\"}"] == 3)
        #expect(m["hume_stage_in_flight{stage=\"a\"}"] == 2, "the DONEs returned credit and two more were leased")
        #expect(m["hume_stage_leases_total{stage=\"a\"}"] == 4)
        #expect(m["hume_stage_completed_total{stage=\"a\"}"] == 1)
        #expect(m["hume_stage_failures_total{stage=\"a\"}"] == 1)
        #expect(m["hume_stage_retries_total{stage=\"a\"}"] == 1)
        #expect(m["hume_stage_queued{stage=\"b\"}"] == 1)
        #expect(m["hume_stage_workers{stage=\"a\"}"] == 1)
        #expect(m["hume_stage_slots{stage=\"a\"}"] == 2)
        #expect(m["hume_stage_workers{stage=\"c\"}"] == nil, "a stage with no jobs and no workers stays out")
        // Service times: 40 ms and 50 ms, both answered leases.
        #expect(m["hume_stage_service_seconds_count{stage=\"a\"}"] == 2)
        #expect(abs((m["hume_stage_service_seconds_sum{stage=\"a\"}"] ?? 0) - 0.09) < 1e-9)
        #expect(m["hume_stage_service_seconds_bucket{stage=\"a\",le=\"0.025\"}"] == 0)
        #expect(m["hume_stage_service_seconds_bucket{stage=\"a\",le=\"0.05\"}"] == 2)
        #expect(m["hume_stage_service_seconds_bucket{stage=\"a\",le=\"+Inf\"}"] == 2)
        #expect(m["hume_batch_jobs{batch=\"b1\",status=\"active\"}"] == 4)
        let text = r.core.metricsText()
        for family in ["hume_stage_queued", "hume_stage_service_seconds", "hume_batch_jobs", "hume_worker_leases"] {
            #expect(text.contains("# TYPE \(family) "), "\(family)")
            #expect(text.contains("# HELP \(family) "), "\(family)")
        }
    }

    @Test("job durations are observed once per job done; batch counts follow the journal through every ending")
    func jobsAndBatches() throws {
        let r = try Rig()
        try r.ready("w1", credit: 10)
        let tasks = try r.submit([job("k1"), job("k2"), job("k3", deadline: r.now + 500), job("bad")]).tasks("w1")
        r.now += 120
        try r.ok("w1", tasks[0], "x")
        try r.fail("w1", tasks[3], .permanent, "no")
        try r.cancel(.object(["jobs": .array([JSON(Int(tasks[1].jobID))])]))
        try r.wait(1000)  // k3 expires
        let m = samples(r.core.metricsText())
        #expect(m["hume_job_duration_seconds_count"] == 1)
        #expect(m["hume_job_duration_seconds_sum"] == 0.12)
        #expect(m["hume_jobs_finished_total{status=\"done\"}"] == 1)
        #expect(m["hume_jobs_finished_total{status=\"failed\"}"] == 1)
        #expect(m["hume_jobs_finished_total{status=\"cancelled\"}"] == 1)
        #expect(m["hume_jobs_finished_total{status=\"expired\"}"] == 1)
        let fromJournal = try #require(try r.journal.batchCounts().first)
        for st in JobStatus.allCases {
            #expect(m["hume_batch_jobs{batch=\"b1\",status=\"\(st.name)\"}"] == Double(fromJournal.counts[st] ?? 0), "\(st.name)")
        }
        // After a restart the counts come from the journal, and go on from there.
        try r.restart()
        let st = try r.status()
        let b = try #require(st["batches"]?.array?.first)
        #expect(b["total"] == JSON(4) && b["done"] == JSON(1) && b["active"] == JSON(0) && b["expired"] == JSON(1))
    }

    @Test("worker figures from HEARTBEAT reach STATUS and the exposition; a heartbeat without them keeps the last ones")
    func workerFigures() throws {
        let r = try Rig()
        try r.ready("w1", credit: 4)
        try r.send(.workers, "w1", Message(.heartbeat, header: .object([
            "stats": .object(["busy": JSON(1)]), "tasks_done": JSON(12), "tasks_failed": JSON(2), "busy_ms": JSON(3400),
            "rss_bytes": .number(52_428_800), "executors": JSON(2),
        ])))
        try r.heartbeat("w1")
        let w = try #require(try r.status()["workers"]?.array?.first)
        #expect(w["tasks_done"] == JSON(12))
        #expect(w["busy_ms"] == JSON(3400))
        #expect(w["rss_bytes"] == .number(52_428_800))
        let m = samples(r.core.metricsText())
        #expect(m["hume_worker_tasks_done_total{worker=\"w1\",stage=\"a\"}"] == 12)
        #expect(m["hume_worker_tasks_failed_total{worker=\"w1\",stage=\"a\"}"] == 2)
        #expect(m["hume_worker_busy_seconds_total{worker=\"w1\",stage=\"a\"}"] == 3.4)
        #expect(m["hume_worker_resident_memory_bytes{worker=\"w1\",stage=\"a\"}"] == 52_428_800)
        #expect(m["hume_worker_slots{worker=\"w1\",stage=\"a\"}"] == 4)
        // Bad figures are ignored, not trusted.
        try r.send(.workers, "w1", Message(.heartbeat, header: .object(["tasks_done": JSON(-5), "busy_ms": .string("x")])))
        #expect(samples(r.core.metricsText())["hume_worker_tasks_done_total{worker=\"w1\",stage=\"a\"}"] == 12)
    }

    @Test("label values are escaped; two workers with one name get distinct series")
    func escaping() throws {
        let r = try Rig()
        try r.ready("w\"1\\x\ny", credit: 1)
        try r.ready("w2", credit: 1)
        try r.send(.workers, "w3", Message(.ready, header: .object(["stage": .string("a"), "credit": JSON(1), "name": .string("w2")])))
        let text = r.core.metricsText()
        #expect(text.contains("hume_worker_slots{worker=\"w\\\"1\\\\x\\ny\",stage=\"a\"} 1"))
        #expect(text.contains("hume_worker_slots{worker=\"w2\",stage=\"a\"} 1"))
        #expect(text.contains("hume_worker_slots{worker=\"w2#2\",stage=\"a\"} 1"))
    }

    @Test("the supervisor's fleet report shows in STATUS and metrics; SCALE forwards a replica count or an autoscale range")
    func fleetAndScale() throws {
        let r = try Rig()
        var out = try r.send(.control, "k", Message(.scale, header: .object(["req": JSON(1), "stage": .string("a"), "replicas": JSON(2)])))
        #expect(out.errors("k").first?["code"]?.string == "unknown", "no supervisor yet")
        let fleet = JSON.object(["stages": .array([.object([
            "stage": .string("a"), "replicas": JSON(3), "live": JSON(2), "changes": JSON(4), "restarts": JSON(1),
            "autoscale": .object(["min": JSON(1), "max": JSON(8)]),
        ])]), "decisions": .array([])])
        try r.send(.control, "sup", Message(.supervise, header: .object(["req": JSON(0), "fleet": fleet])))
        #expect(try r.status()["fleet"] == fleet)
        let m = samples(r.core.metricsText())
        #expect(m["hume_fleet_replicas{stage=\"a\"}"] == 3)
        #expect(m["hume_fleet_replicas_live{stage=\"a\"}"] == 2)
        #expect(m["hume_fleet_autoscale_max{stage=\"a\"}"] == 8)
        #expect(m["hume_fleet_scale_changes_total{stage=\"a\"}"] == 4)

        out = try r.send(.control, "k", Message(.scale, header: .object(["req": JSON(2), "stage": .string("a"), "min": JSON(1), "max": JSON(6)])))
        let fwd = try #require(out.messages("sup", .scale).first)
        #expect(fwd.header["min"] == JSON(1) && fwd.header["max"] == JSON(6))
        let ans = try #require(out.messages("k", .scale).first)
        #expect(ans.header["ok"] == .bool(true) && ans.header["max"] == JSON(6) && ans.header["req"] == JSON(2))
        for bad: [String: JSON] in [["min": JSON(5), "max": JSON(2)], ["min": JSON(0), "max": JSON(65)], ["replicas": JSON(-1)], [:]] {
            var h = bad
            h["stage"] = .string("a")
            h["req"] = JSON(3)
            out = try r.send(.control, "k", Message(.scale, header: .object(h)))
            #expect(out.errors("k").first?["code"]?.string == "bad_request", "\(bad)")
            #expect(out.messages("sup", .scale).isEmpty)
        }
        // A supervisor that stopped reporting has gone (hume up was killed): SCALE is refused, not answered ok.
        r.now += 10_001
        out = try r.send(.control, "k", Message(.scale, header: .object(["req": JSON(4), "stage": .string("a"), "replicas": JSON(2)])))
        #expect(out.errors("k").first?["code"]?.string == "unknown")
        #expect(out.messages("sup", .scale).isEmpty && out.messages("k", .scale).isEmpty)
        try r.send(.control, "sup", Message(.supervise, header: .object(["req": JSON(0), "fleet": fleet])))
        out = try r.send(.control, "k", Message(.scale, header: .object(["req": JSON(5), "stage": .string("a"), "replicas": JSON(2)])))
        #expect(out.messages("k", .scale).first?.header["ok"] == .bool(true), "reporting again brings it back")
    }

    @Test("the status page lists stages, workers and batches with progress bars and escapes names")
    func statusPage() throws {
        let r = try Rig()
        try r.ready("<w1>", credit: 1)
        let t = try #require(try r.submit([job("k1"), job("k2")], batch: "night & day").tasks("<w1>").first)
        try r.ok("<w1>", t, "x")
        let html = statusPageHTML(try r.status())
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<table id=\"stages\">") && html.contains("<table id=\"workers\">") && html.contains("<table id=\"batches\">"))
        #expect(html.contains("&lt;w1&gt;") && !html.contains("<w1>"))
        #expect(html.contains("night &amp; day"))
        #expect(html.contains("style=\"width:50%\""), "one of two jobs finished")
        #expect(html.contains("http-equiv=\"refresh\""))
    }
}
