/// Autoscaling of one stage's replicas: a pure policy over the broker's per-stage figures and a clock.
///
/// The policy sizes a stage by Little's law. Work arrives at `λ` tasks/s and each task holds one of a replica's `c`
/// slots for `S` seconds, so the stage needs `λ·S` busy slots; at a target utilisation `u` that is
/// `λ·S / (c·u)` replicas. A backlog needs more: to start every queued task within the target queue wait `W`, the
/// stage needs `queued·S / (c·W)` replicas. The recommendation is the larger of the two, clamped to the stage's
/// range.
///
/// Against flapping:
/// - **Hysteresis band**: it scales up only when the need exceeds the current count by more than `tolerance`, and
///   down only when one replica fewer would still have `downTolerance` to spare; in between it holds.
/// - **Up**: at once (a step in load is met within seconds), then not again for `upCooldownMs`, which gives new
///   workers time to start before the next reading counts against them.
/// - **Down**: only when every recommendation of the last `downStabilizationMs` was below the current count and
///   nothing changed for that long, and then in one step to the highest recommendation of the last rate window;
///   one noisy reading never shrinks a stage, and scale-down (which drains workers) is neither hasty nor a staircase.
/// - **Idle**: with nothing queued, nothing running and nothing arriving, the recommendation is the minimum, so an
///   idle stage returns to its minimum after one stabilisation window.
///
/// Everything the policy remembers between readings lives in `AutoscaleMemory`, which the caller stores and passes
/// back: `decide` has no other state and reads no clock, so tests drive it with synthetic traces and a mock clock.
public struct AutoscalePolicy: Sendable {
    /// Tunables; every one has a documented default.
    public struct Config: Sendable, Equatable {
        /// Longest a queued task should wait before a worker starts it, ms (default 2000).
        public var targetQueueWaitMs: Double = 2000
        /// Fraction of the slots the arrival rate should keep busy (default 0.8: 20% headroom).
        public var targetUtilization: Double = 0.8
        /// Hysteresis: relative excess of the need over the current count before scaling up (default 0.1).
        public var tolerance: Double = 0.1
        /// Hysteresis: spare capacity one replica fewer must keep before scaling down (default 0.2).
        public var downTolerance: Double = 0.2
        /// Window over which arrival and completion rates are measured, ms (default 3000).
        public var rateWindowMs: UInt64 = 3000
        /// After a scale-up, no further scale-up for this long, ms (default 4000).
        public var upCooldownMs: UInt64 = 4000
        /// Scale down only after every recommendation of this window was lower, and this long after the last change,
        /// ms (default 20,000).
        public var downStabilizationMs: UInt64 = 20_000
        /// Service time assumed before the stage has finished any task, ms (default 100).
        public var defaultServiceMs: Double = 100

        public init() {}
    }

    public var config: Config

    public init(config: Config = Config()) {
        self.config = config
    }

    /// What the policy decided for one reading.
    public struct Decision: Sendable, Equatable {
        /// The replica count to run (equal to the current one when holding).
        public var desired: Int
        /// What the load alone asks for, before cool-downs and stabilisation.
        public var recommendation: Int
        /// One sentence on why: the figures and the rule that applied.
        public var reason: String
        /// The memory to pass to the next call.
        public var memory: AutoscaleMemory
        /// Measured arrival rate (tasks/s), service time (ms) and the replica need as a real number.
        public var arrivalRate: Double
        public var serviceMs: Double
        public var need: Double
    }

    /// Decides the replica count for one stage from one reading.
    /// - Parameters:
    ///   - sample: the stage's figures from the broker now.
    ///   - replicas: the replica count the supervisor currently runs (its target).
    ///   - range: the stage's minimum and maximum replicas.
    ///   - now: the clock, ms (any monotonic origin).
    ///   - memory: what the previous call returned (`AutoscaleMemory()` the first time).
    public func decide(_ sample: StageSample, replicas: Int, range: ClosedRange<Int>, now: UInt64,
                       memory: AutoscaleMemory) -> Decision {
        var mem = memory
        if mem.firstSeenAt == nil { mem.firstSeenAt = now }
        let c = config

        // Counters went backwards: the broker restarted. Start the rates afresh and hold.
        if let last = mem.samples.last, sample.arrived < last.arrived || sample.completed < last.completed {
            mem.samples.removeAll()
            mem.recommendations.removeAll()
        }
        mem.samples.append(.init(at: now, arrived: sample.arrived, completed: sample.completed,
                                 serviceMsTotal: sample.serviceMsTotal))
        // Keep the newest sample at or before the window's start as the base, and everything after it.
        if let i = mem.samples.lastIndex(where: { $0.at + c.rateWindowMs <= now }), i > 0 {
            mem.samples.removeFirst(i)
        }
        if let slots = sample.slotsPerReplica, slots > 0 { mem.slotsPerReplica = slots }
        let slots = Double(max(1, mem.slotsPerReplica ?? 1))

        let base = mem.samples[0]
        let dtMs = Double(now &- base.at)
        var arrival = 0.0
        let haveRates = dtMs >= 1000
        if haveRates {
            arrival = Double(sample.arrived - base.arrived) * 1000 / dtMs
            let finished = sample.completed - base.completed
            if finished > 0 { mem.serviceMs = max(0.001, (sample.serviceMsTotal - base.serviceMsTotal) / Double(finished)) }
        }
        if mem.serviceMs == nil && sample.completed > 0 {
            // No recent window yet: the broker's mean over its whole life is the best guess.
            mem.serviceMs = max(0.001, sample.serviceMsTotal / Double(sample.completed))
        }
        let serviceMs = mem.serviceMs ?? c.defaultServiceMs
        // Arrivals, not completions: while a backlog drains, completions run ahead of the load and would overshoot.
        let rate = arrival
        let rateNeed = rate * serviceMs / 1000 / (slots * c.targetUtilization)
        let backlogNeed = Double(sample.queued) * serviceMs / (slots * c.targetQueueWaitMs)
        let need = max(rateNeed, backlogNeed)
        let idle = sample.queued == 0 && sample.inFlight == 0 && haveRates && rate == 0

        // The recommendation, with the hysteresis band around the current count.
        var rec: Int
        var why: String
        let figures = "queue \(sample.queued), in flight \(sample.inFlight), arrivals \(fmt(arrival))/s, "
            + "service \(fmt(serviceMs)) ms, \(Int(slots)) slot(s)/replica"
        if idle {
            rec = range.lowerBound
            why = "idle (nothing queued, running or arriving)"
        } else if !haveRates && replicas > 0 {
            rec = replicas
            why = "measuring (no rates until a second reading)"
        } else if need > Double(replicas) * (1 + c.tolerance) {
            rec = Int((need - 1e-9).rounded(.up))
            why = "need \(fmt(need)) replicas (\(fmt(rateNeed)) for \(Int(c.targetUtilization * 100))% utilisation, "
                + "\(fmt(backlogNeed)) to start the queue within \(fmt(c.targetQueueWaitMs / 1000)) s)"
        } else if replicas > 0 && need * (1 + c.downTolerance) <= Double(replicas - 1) {
            rec = max(0, Int((need - 1e-9).rounded(.up)))
            why = "need only \(fmt(need)) replicas"
        } else {
            rec = replicas
            why = "need \(fmt(need)) replicas, within the band for \(replicas)"
        }
        if sample.queued > 0 && rec == 0 {
            rec = 1
            why = "work is queued and no replica runs"
        }
        rec = min(max(rec, range.lowerBound), range.upperBound)
        mem.recommendations.append(.init(at: now, replicas: rec))
        mem.recommendations.removeAll { $0.at + c.downStabilizationMs < now }

        var desired = replicas
        var reason: String
        if replicas < range.lowerBound || replicas > range.upperBound {
            desired = min(max(replicas, range.lowerBound), range.upperBound)
            reason = "into the range \(range.lowerBound)..\(range.upperBound)"
            mem.lastChangeAt = now
            if desired > replicas { mem.lastUpAt = now }
        } else if rec > replicas {
            if let up = mem.lastUpAt, now < up + c.upCooldownMs {
                reason = "hold: \(why); cooling down after the last scale-up"
            } else {
                desired = rec
                reason = "up: \(why)"
                mem.lastUpAt = now
                mem.lastChangeAt = now
            }
        } else if rec < replicas {
            let quietSince = max(mem.firstSeenAt ?? now, mem.lastChangeAt ?? 0)
            let windowMax = mem.recommendations.map(\.replicas).max() ?? replicas
            let recent = mem.recommendations.filter { $0.at + c.rateWindowMs >= now }.map(\.replicas).max() ?? rec
            let window = "\(c.downStabilizationMs / 1000) s"
            if now < quietSince + c.downStabilizationMs {
                reason = "hold: \(why); scaling down waits for \(window) without a change"
            } else if windowMax >= replicas {
                reason = "hold: \(why), but \(windowMax) were needed within the last \(window)"
            } else {
                desired = recent
                reason = "down: \(why); below \(replicas) for \(window)"
                mem.lastChangeAt = now
            }
        } else {
            reason = "hold: \(why)"
        }
        return Decision(desired: desired, recommendation: rec, reason: reason + " — " + figures, memory: mem,
                        arrivalRate: arrival, serviceMs: serviceMs, need: need)
    }
}

/// One reading of a stage's figures, as the broker's STATUS reports them.
public struct StageSample: Sendable, Equatable {
    /// Tasks waiting at the stage (not leased).
    public var queued: Int
    /// Tasks leased to workers now.
    public var inFlight: Int
    /// Counter: tasks that have entered the stage since the broker started.
    public var arrived: UInt64
    /// Counter: tasks the stage finished successfully.
    public var completed: UInt64
    /// Counter: lease-to-DONE milliseconds summed over the completed tasks.
    public var serviceMsTotal: Double
    /// Slots (credit capacity) per registered worker; nil when none is registered.
    public var slotsPerReplica: Int?

    public init(queued: Int, inFlight: Int, arrived: UInt64, completed: UInt64, serviceMsTotal: Double,
                slotsPerReplica: Int? = nil) {
        self.queued = queued
        self.inFlight = inFlight
        self.arrived = arrived
        self.completed = completed
        self.serviceMsTotal = serviceMsTotal
        self.slotsPerReplica = slotsPerReplica
    }
}

/// What `AutoscalePolicy` carries from one reading to the next (opaque to callers).
public struct AutoscaleMemory: Sendable, Equatable {
    struct Sample: Sendable, Equatable {
        var at: UInt64
        var arrived: UInt64
        var completed: UInt64
        var serviceMsTotal: Double
    }

    struct Recommendation: Sendable, Equatable {
        var at: UInt64
        var replicas: Int
    }

    var samples: [Sample] = []
    var recommendations: [Recommendation] = []
    var firstSeenAt: UInt64?
    var lastUpAt: UInt64?
    var lastChangeAt: UInt64?
    var serviceMs: Double?
    var slotsPerReplica: Int?

    public init() {}
}

func fmt(_ x: Double) -> String {
    let r = (x * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(r)
}
