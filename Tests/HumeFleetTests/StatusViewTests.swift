import HumeCore
import HumeFleet
import Testing

func snapshot(nowMs: Double, completed: Int, active: Int, done: Int, leases: Int = 1) -> JSON {
    .object([
        "uptime_ms": .number(nowMs - 1_000_000), "now_ms": .number(nowMs), "submitted": JSON(active + done), "active_jobs": JSON(active),
        "bad_messages": JSON(0), "keep_ended_ms": JSON(604_800_000), "forgotten": JSON(12), "finished": .object(["done": JSON(done), "failed": JSON(0), "dead_letter": JSON(0)]),
        "stages": .array([
            .object(["name": .string("noop"), "queued": JSON(active - leases), "occupancy": JSON(active), "in_flight": JSON(leases),
                     "workers": JSON(2), "queue_capacity": JSON(100), "arrived": JSON(active + done), "completed": JSON(completed),
                     "retries": JSON(0), "dead_letters": JSON(0), "mean_service_ms": .number(20.4)]),
            .object(["name": .string("idle"), "queued": JSON(0), "occupancy": JSON(0), "workers": JSON(0), "completed": JSON(0)]),
        ]),
        "workers": .array([
            .object(["name": .string("noop-1"), "stage": .string("noop"), "capacity": JSON(2), "leases": JSON(leases),
                     "done": JSON(completed), "busy_ms": JSON(3400), "rss_bytes": .number(31_457_280), "draining": .bool(false)]),
            .object(["name": .string("noop-2"), "stage": .string("noop"), "capacity": JSON(1), "leases": JSON(0),
                     "done": JSON(0), "draining": .bool(true)]),
        ]),
        "batches": .array([.object(["batch": .string("b1"), "total": JSON(active + done), "active": JSON(active), "done": JSON(done),
                                    "failed": JSON(0), "dead_letter": JSON(0), "cancelled": JSON(0)])]),
        "fleet": .object([
            "stages": .array([.object(["stage": .string("noop"), "replicas": JSON(3), "live": JSON(2), "draining": JSON(1),
                                       "autoscale": .object(["min": JSON(1), "max": JSON(8)])])]),
            "decisions": .array([.object(["at_ms": .number(nowMs - 5000), "stage": .string("noop"), "from": JSON(1), "to": JSON(3),
                                          "source": .string("autoscale"), "reason": .string("up: need 2.4 replicas")])]),
        ]),
    ])
}

@Suite("hume status rendering")
struct StatusViewTests {
    @Test("one snapshot: stages with work, workers with busy bars and figures, batches with progress, the last decisions")
    func single() {
        var v = StatusView(width: 100)
        let text = v.render(snapshot(nowMs: 2_000_000, completed: 40, active: 50, done: 50))
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0].contains("50 active") && lines[0].contains("50 done"))
        #expect(lines[0].hasSuffix("ended jobs kept 7d00h, 12 forgotten"), "\(lines[0])")
        let noop = lines.first { $0.hasPrefix("noop ") }
        #expect(noop?.contains("[########........]") == true, "occupancy 50 of 100: \(noop ?? "")")
        #expect(noop?.contains("2/3 (1..8) -1") == true, "live/target, range, draining: \(noop ?? "")")
        #expect(!lines.contains { $0.hasPrefix("idle") }, "a stage with no workers and no jobs is left out")
        let w1 = lines.first { $0.hasPrefix("noop-1") }
        #expect(w1?.contains("[####....]") == true && w1?.contains("1/2") == true && w1?.contains(" 30") == true, "\(w1 ?? "")")
        #expect(lines.first { $0.hasPrefix("noop-2") }?.hasSuffix("draining") == true)
        let b1 = lines.first { $0.hasPrefix("b1") }
        #expect(b1?.contains("[##########..........] 50%") == true && b1?.contains("50/100") == true, "\(b1 ?? "")")
        #expect(text.contains("5s ago  noop  1 → 3  autoscale  up: need 2.4 replicas"))
        #expect(noop?.split(separator: " ").dropFirst(9).first == "—", "no rate from a single snapshot: \(noop ?? "")")
    }

    @Test("successive snapshots give rates and an ETA; a broker restart (uptime going back) gives none")
    func rates() {
        var v = StatusView()
        _ = v.render(snapshot(nowMs: 2_000_000, completed: 40, active: 50, done: 50))
        let text = v.render(snapshot(nowMs: 2_002_000, completed: 60, active: 30, done: 70))
        let noop = text.split(separator: "\n").first { $0.hasPrefix("noop ") } ?? ""
        #expect(noop.split(separator: " ").dropFirst(9).first == "10", "20 tasks in 2 s: \(noop)")
        let b1 = text.split(separator: "\n").first { $0.hasPrefix("b1") } ?? ""
        #expect(b1.split(separator: " ").suffix(2) == ["10", "3s"], "20 jobs in 2 s, 30 to go: \(b1)")
        var restarted = snapshot(nowMs: 2_004_000, completed: 5, active: 30, done: 70)
        restarted = .object((restarted.object ?? [:]).merging(["uptime_ms": .number(1000)]) { _, b in b })
        let after = v.render(restarted)
        #expect(after.split(separator: "\n").first { $0.hasPrefix("noop ") }?.contains("—") == true)
    }
}
