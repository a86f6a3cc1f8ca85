import HumeFleet
import Testing

/// A stage simulated in 100 ms steps: arrivals at a given rate, replicas that serve `slots` tasks at a time for
/// `serviceMs` each, new replicas that join `startDelayMs` after the supervisor asks for them, and scale-downs that
/// take effect at once (the drained workers stop taking work). The policy reads it once a second, as the supervisor
/// does, through the same counters the broker reports.
struct SimulatedStage {
    var serviceMs = 20.0
    var slots = 1
    var startDelayMs: UInt64 = 1000
    var range = 1...8
    var policy = AutoscalePolicy()

    var now: UInt64 = 1_000_000
    var target: Int
    var replicas: [UInt64]  // ready-at times
    var queue = 0.0
    var arrived = 0.0
    var completed = 0.0
    var inFlight = 0.0
    var memory = AutoscaleMemory()
    /// (seconds since start, from, to, reason)
    var changes: [(t: Double, from: Int, to: Int, reason: String)] = []
    var history: [(t: Double, replicas: Int)] = []
    var rng = SplitMix(seed: 42)
    let start: UInt64

    init(initial: Int = 1, configure: (inout SimulatedStage) -> Void = { _ in }) {
        target = initial
        replicas = Array(repeating: 0, count: initial)
        start = now
        configure(&self)
    }

    var seconds: Double { Double(now - start) / 1000 }

    /// Runs the stage for `duration` seconds at `rate(t)` tasks/s (t in seconds since the simulation started).
    mutating func run(for duration: Double, rate: (Double) -> Double) {
        let end = now + UInt64(duration * 1000)
        while now < end {
            now += 100
            let a = max(0, rate(seconds)) * 0.1
            arrived += a
            let live = replicas.filter { $0 <= now }.count
            let capacity = Double(live * slots) / serviceMs * 100
            let served = min(queue + a, capacity)
            queue += a - served
            completed += served
            inFlight = min(Double(live * slots), served / 100 * serviceMs)
            if (now - start) % 1000 == 0 { evaluate() }
        }
    }

    mutating func evaluate() {
        let done = UInt64(completed)
        let sample = StageSample(queued: Int(queue), inFlight: Int(inFlight.rounded(.up)), arrived: UInt64(arrived),
                                 completed: done, serviceMsTotal: Double(done) * serviceMs,
                                 slotsPerReplica: replicas.isEmpty ? nil : slots)
        let d = policy.decide(sample, replicas: target, range: range, now: now, memory: memory)
        memory = d.memory
        if d.desired != target {
            changes.append((seconds, target, d.desired, d.reason))
            if d.desired > target {
                replicas += Array(repeating: now + startDelayMs, count: d.desired - target)
            } else {
                replicas.sort()
                replicas.removeLast(target - d.desired)  // not-yet-started ones first
            }
            target = d.desired
        }
        history.append((seconds, target))
    }

    /// Replica counts at every reading in [from, to).
    func counts(from: Double, to: Double = .infinity) -> [Int] {
        history.filter { $0.t >= from && $0.t < to }.map(\.replicas)
    }

    func changes(from: Double, to: Double = .infinity) -> [(t: Double, from: Int, to: Int, reason: String)] {
        changes.filter { $0.t >= from && $0.t < to }
    }

    /// The first reading at or after `from` from which the count stays `n` until `to`.
    func settled(at n: Int, from: Double, to: Double) -> Double? {
        let h = history.filter { $0.t >= from && $0.t < to }
        guard let last = h.lastIndex(where: { $0.replicas != n }) else { return h.first?.t }
        return last + 1 < h.count ? h[last + 1].t : nil
    }
}

/// A small deterministic random generator for noisy load.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
}

@Suite("Autoscaler policy: synthetic load traces on a mock clock")
struct AutoscalerTests {
    @Test("a step up in load reaches the right count within 30 s, in at most 3 changes, and stays there")
    func stepUp() {
        var sim = SimulatedStage()
        sim.run(for: 60) { _ in 30 }  // 0.6 busy slots: one replica
        #expect(sim.counts(from: 10, to: 60).allSatisfy { $0 == 1 })
        sim.run(for: 120) { _ in 200 }  // 4 busy slots: 5 replicas at 80% utilisation
        let settled = sim.settled(at: 5, from: 60, to: 180)
        #expect(settled != nil && settled! <= 90, "settled at 5 replicas at t=\(settled ?? -1) s; changes: \(sim.changes)")
        let ups = sim.changes(from: 60)
        #expect(ups.count <= 3 && ups.allSatisfy { $0.to > $0.from }, "only scale-ups after a step up: \(ups)")
        #expect(ups.allSatisfy { $0.reason.hasPrefix("up:") })
        #expect(sim.queue < 50, "the backlog drained: \(sim.queue)")
    }

    @Test("a step down reaches the right count within 30 s by one drain, not a staircase")
    func stepDown() {
        var sim = SimulatedStage()
        sim.run(for: 120) { _ in 200 }
        #expect(sim.target == 5)
        sim.run(for: 120) { _ in 30 }
        let settled = sim.settled(at: 1, from: 120, to: 240)
        #expect(settled != nil && settled! <= 150, "settled at 1 at t=\(settled ?? -1); changes: \(sim.changes)")
        let downs = sim.changes(from: 120)
        #expect(downs.count == 1, "\(downs)")
        #expect(downs.first?.reason.hasPrefix("down:") == true)
        // Never below what the load needed while it was high.
        #expect(sim.counts(from: 60, to: 120).allSatisfy { $0 == 5 })
    }

    @Test("noisy steady load (±40% per 100 ms, ±10% per 5 s): no oscillation over ten minutes, for 20 seeds")
    func noisySteadyLoad() {
        for seed in UInt64(1)...20 {
            var sim = SimulatedStage()
            var slow = 1.0
            var rng = SplitMix(seed: seed)
            sim.run(for: 600) { t in
                if t.truncatingRemainder(dividingBy: 5) < 0.1 { slow = 0.9 + 0.2 * rng.next() }
                return 150 * slow * (0.6 + 0.8 * rng.next())  // mean need 3.75 replicas
            }
            let after = sim.changes(from: 30)
            #expect(after.count <= 1, "seed \(seed): at most one adjustment after settling: \(after)")
            let counts = sim.counts(from: 30)
            #expect(Set(counts).isSubset(of: [4, 5]), "seed \(seed): \(Set(counts))")
            // No up-down-up pattern anywhere.
            let directions = sim.changes.map { $0.to > $0.from }
            #expect(!zip(directions, directions.dropFirst()).contains { $0 != $1 }, "seed \(seed): \(sim.changes)")
        }
    }

    @Test("a load that alternates every 8 s between 120/s and 200/s holds the higher count instead of following it")
    func squareWave() {
        var sim = SimulatedStage()
        sim.run(for: 300) { t in Int(t / 8) % 2 == 0 ? 200 : 120 }
        #expect(sim.changes(from: 30).isEmpty, "\(sim.changes)")
        #expect(sim.target == 5)
    }

    @Test("an idle stage returns to its minimum; at minimum 0 it scales to zero and back to one when work arrives")
    func idleToMinimum() {
        var sim = SimulatedStage { $0.range = 2...8 }
        sim.target = 2
        sim.replicas = [0, 0]
        sim.run(for: 60) { _ in 250 }
        #expect(sim.target >= 6)
        sim.run(for: 40) { _ in 0 }
        #expect(sim.target == 2, "\(sim.changes)")
        #expect(sim.changes.last?.reason.contains("idle") == true, "\(sim.changes.last?.reason ?? "")")

        var zero = SimulatedStage { $0.range = 0...4 }
        zero.run(for: 40) { _ in 0 }
        #expect(zero.target == 0)
        zero.run(for: 3) { _ in 10 }
        #expect(zero.target >= 1, "work queued with no replica: \(zero.changes)")
        #expect(zero.changes.last?.reason.contains("no replica runs") == true || zero.changes.last?.reason.hasPrefix("up:") == true)
    }

    @Test("a load beyond the maximum stays at the maximum; a count outside a new range moves into it")
    func clamps() {
        var sim = SimulatedStage()
        sim.run(for: 60) { _ in 2000 }
        #expect(sim.target == 8)
        #expect(sim.changes.count <= 2)
        let p = AutoscalePolicy()
        let s = StageSample(queued: 0, inFlight: 0, arrived: 0, completed: 0, serviceMsTotal: 0)
        let d = p.decide(s, replicas: 12, range: 1...8, now: 5000, memory: AutoscaleMemory())
        #expect(d.desired == 8)
    }

    @Test("the need follows Little's law: arrivals × service time / (slots × utilisation), and the backlog term")
    func littlesLaw() {
        let p = AutoscalePolicy()
        var mem = AutoscaleMemory()
        // 100 tasks/s at 50 ms on 2 slots a replica: 5 busy slots, 2.5 replicas, 3.125 at 80%: 4.
        let a = StageSample(queued: 0, inFlight: 3, arrived: 1000, completed: 1000, serviceMsTotal: 50_000, slotsPerReplica: 2)
        mem = p.decide(a, replicas: 1, range: 1...16, now: 10_000, memory: mem).memory
        let b = StageSample(queued: 0, inFlight: 5, arrived: 1300, completed: 1300, serviceMsTotal: 65_000, slotsPerReplica: 2)
        let d = p.decide(b, replicas: 1, range: 1...16, now: 13_000, memory: mem)
        #expect(abs(d.need - 3.125) < 1e-9)
        #expect(abs(d.arrivalRate - 100) < 1e-9)
        #expect(abs(d.serviceMs - 50) < 1e-9)
        #expect(d.desired == 4 && d.reason.hasPrefix("up:"), "\(d.reason)")
        // The same arrivals with 800 queued: starting them within 2 s at 50 ms on 2 slots takes 10 replicas.
        let c = StageSample(queued: 800, inFlight: 8, arrived: 1600, completed: 1600, serviceMsTotal: 80_000, slotsPerReplica: 2)
        let e = p.decide(c, replicas: 4, range: 1...16, now: 16_000, memory: d.memory)
        #expect(abs(e.need - 10) < 1e-9)
        #expect(e.recommendation == 10)
        #expect(e.desired == 4, "within the up cool-down: \(e.reason)")
        #expect(e.reason.contains("cooling down"))
        // A burst of arrivals outweighs the backlog: 366.7/s × 50 ms / (2 × 0.8) = 11.46 replicas.
        let f = StageSample(queued: 800, inFlight: 8, arrived: 2700, completed: 1600, serviceMsTotal: 80_000, slotsPerReplica: 2)
        let g = p.decide(f, replicas: 4, range: 1...16, now: 19_000, memory: e.memory)
        #expect(abs(g.need - 1100.0 / 3 * 0.05 / 1.6) < 1e-9)
        #expect(g.desired == 12 && g.reason.hasPrefix("up:"), "\(g.reason)")
    }

    @Test("after a broker restart (counters reset) the policy re-measures instead of reading a negative rate")
    func counterReset() {
        var sim = SimulatedStage()
        sim.run(for: 60) { _ in 200 }
        #expect(sim.target == 5)
        sim.arrived = 0
        sim.completed = 0
        sim.run(for: 10) { _ in 200 }
        #expect(sim.target == 5, "\(sim.changes)")
    }
}
