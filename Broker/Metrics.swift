import HumeCore

/// A latency histogram with fixed buckets (Prometheus style): O(log buckets) per observation, no allocation.
struct LatencyHistogram {
    /// Upper bounds in milliseconds; a last, implicit bucket is +Inf.
    static let boundsMs: [Double] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000]
    var counts = [UInt64](repeating: 0, count: boundsMs.count + 1)
    var sumMs: Double = 0
    var count: UInt64 = 0

    mutating func observe(ms: Double) {
        var lo = 0, hi = Self.boundsMs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ms <= Self.boundsMs[mid] { hi = mid } else { lo = mid + 1 }
        }
        counts[lo] += 1
        sumMs += ms
        count += 1
    }
}

/// What a worker reports about itself in HEARTBEAT (all optional header fields, PROTOCOL.md 4.2).
struct WorkerFigures {
    var tasksDone: UInt64?
    var tasksFailed: UInt64?
    var busyMs: Double?
    var rssBytes: UInt64?
    var executors: Int?

    /// Reads the figures a HEARTBEAT header carries; nil when it carries none.
    init?(_ header: JSON) {
        func count(_ k: String) -> UInt64? {
            guard let d = header[k]?.double, d >= 0, d < 1e18 else { return nil }
            return UInt64(d)
        }
        tasksDone = count("tasks_done")
        tasksFailed = count("tasks_failed")
        busyMs = header["busy_ms"]?.double.flatMap { $0 >= 0 && $0.isFinite ? $0 : nil }
        rssBytes = count("rss_bytes")
        executors = header["executors"]?.int.flatMap { $0 >= 0 ? $0 : nil }
        if tasksDone == nil && tasksFailed == nil && busyMs == nil && rssBytes == nil && executors == nil { return nil }
    }

    var json: [String: JSON] {
        var o: [String: JSON] = [:]
        if let v = tasksDone { o["tasks_done"] = .number(Double(v)) }
        if let v = tasksFailed { o["tasks_failed"] = .number(Double(v)) }
        if let v = busyMs { o["busy_ms"] = .number(v.rounded()) }
        if let v = rssBytes { o["rss_bytes"] = .number(Double(v)) }
        if let v = executors { o["executors"] = JSON(v) }
        return o
    }
}

/// Writes the Prometheus text exposition format (version 0.0.4): `# HELP`, `# TYPE`, then samples.
struct PrometheusText {
    private(set) var text = ""

    /// Starts a metric family.
    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{"
            for (i, (k, v)) in labels.enumerated() {
                if i > 0 { text += "," }
                text += k + "=\"" + Self.escape(v) + "\""
            }
            text += "}"
        }
        text += " " + Self.number(value) + "\n"
    }

    /// A histogram's buckets (cumulative, in seconds), sum and count.
    mutating func histogram(_ name: String, _ labels: [(String, String)], _ h: LatencyHistogram) {
        var cumulative: UInt64 = 0
        for (i, bound) in LatencyHistogram.boundsMs.enumerated() {
            cumulative += h.counts[i]
            sample(name + "_bucket", labels + [("le", Self.number(bound / 1000))], Double(cumulative))
        }
        sample(name + "_bucket", labels + [("le", "+Inf")], Double(h.count))
        sample(name + "_sum", labels, h.sumMs / 1000)
        sample(name + "_count", labels, Double(h.count))
    }

    static func escape(_ v: String) -> String {
        var out = ""
        for ch in v.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }
}

extension BrokerCore {
    /// The broker's metrics in the Prometheus text format: intake, every stage, every worker (with the figures the
    /// workers report about themselves), every batch, and the fleet as the supervisor reports it. Rendered on the
    /// broker thread between loop rounds, so every figure is one consistent, committed state.
    public func metricsText() -> String {
        var p = PrometheusText()
        p.family("hume_broker_uptime_seconds", "gauge", "Seconds since this broker process started.")
        p.sample("hume_broker_uptime_seconds", [], Double(clock &- startedAt) / 1000)
        p.family("hume_jobs_submitted_total", "counter", "Jobs accepted (new keys) since the broker started.")
        p.sample("hume_jobs_submitted_total", [], Double(submitted))
        p.family("hume_jobs_active", "gauge", "Jobs not yet finished, held in memory.")
        p.sample("hume_jobs_active", [], Double(jobs.count))
        p.family("hume_jobs_finished_total", "counter", "Jobs finished since the broker started, by final status.")
        for st in JobStatus.allCases where st != .active {
            p.sample("hume_jobs_finished_total", [("status", st.name)], Double(finishedCounts[Int(st.rawValue)]))
        }
        p.family("hume_job_duration_seconds", "histogram", "Time from a job's acceptance to its last stage's result (jobs done).")
        p.histogram("hume_job_duration_seconds", [], jobDuration)
        p.family("hume_bad_messages_total", "counter", "Messages refused with an ERROR.")
        p.sample("hume_bad_messages_total", [], Double(badMessages))
        p.family("hume_jobs_forgotten_total", "counter", "Ended jobs forgotten (--keep-ended) since the broker started.")
        p.sample("hume_jobs_forgotten_total", [], Double(forgotten))

        typealias Figure = (name: String, type: String, help: String, value: (StageState, [Worker]) -> Double)
        let stageFigures: [Figure] = [
            ("hume_stage_queued", "gauge", "Tasks waiting at the stage for a worker.", { s, _ in Double(s.queued) }),
            ("hume_stage_occupancy", "gauge", "Jobs at the stage: queued, leased or backing off before a retry.",
             { s, _ in Double(s.occupancy) }),
            ("hume_stage_in_flight", "gauge", "Tasks leased to workers now.", { _, ws in Double(ws.reduce(0) { $0 + $1.leaseCount }) }),
            ("hume_stage_queue_capacity", "gauge", "Most jobs the stage may hold.", { _, _ in Double(self.config.queueCapacity) }),
            ("hume_stage_bytes", "gauge", "Bytes of inputs and parameters held for the stage.", { s, _ in Double(s.bytes) }),
            ("hume_stage_workers", "gauge", "Workers registered for the stage.", { _, ws in Double(ws.count) }),
            ("hume_stage_credit", "gauge", "Free task slots the stage's workers have granted.", { _, ws in Double(ws.reduce(0) { $0 + $1.credit }) }),
            ("hume_stage_slots", "gauge", "Task slots of the stage's workers (their capacity).",
             { _, ws in Double(ws.reduce(0) { $0 + $1.capacity }) }),
            ("hume_stage_arrived_total", "counter", "Tasks that entered the stage.", { s, _ in Double(s.arrived) }),
            ("hume_stage_leases_total", "counter", "Leases granted (each dispatch of a task to a worker).", { s, _ in Double(s.leasesGranted) }),
            ("hume_stage_completed_total", "counter", "Tasks the stage finished successfully.", { s, _ in Double(s.completed) }),
            ("hume_stage_failures_total", "counter", "Attempts that failed (retryable or permanent).", { s, _ in Double(s.failures) }),
            ("hume_stage_retries_total", "counter", "Failed attempts that were scheduled for a retry.", { s, _ in Double(s.retries) }),
            ("hume_stage_dead_letters_total", "counter", "Jobs dead-lettered at the stage after too many attempts.",
             { s, _ in Double(s.deadLetters) }),
        ]
        let perStage = stages.map { s in (s, s.workers.compactMap { workers[$0] }) }
        // Stages that never saw a job or a worker stay out, as in `hume status`.
        let shown = perStage.filter { s, ws in !ws.isEmpty || s.arrived > 0 || s.occupancy > 0 }
        for f in stageFigures {
            p.family(f.name, f.type, f.help)
            for (s, ws) in shown { p.sample(f.name, [("stage", s.name)], f.value(s, ws)) }
        }
        p.family("hume_stage_service_seconds", "histogram", "Lease-to-DONE time of each answered task.")
        for (s, _) in shown { p.histogram("hume_stage_service_seconds", [("stage", s.name)], s.service) }

        // Workers, by name (a repeated name gets a #n suffix so series stay distinct).
        var seen: [String: Int] = [:]
        let ws: [(labels: [(String, String)], w: Worker)] = workers.values.sorted { ($0.name, $0.joinedAt) < ($1.name, $1.joinedAt) }.map { w in
            seen[w.name, default: 0] += 1
            let n = seen[w.name]!
            return ([("worker", n == 1 ? w.name : "\(w.name)#\(n)"), ("stage", stages[w.stage].name)], w)
        }
        p.family("hume_worker_leases", "gauge", "Tasks leased to the worker now.")
        for (l, w) in ws { p.sample("hume_worker_leases", l, Double(w.leaseCount)) }
        p.family("hume_worker_slots", "gauge", "The worker's task slots.")
        for (l, w) in ws { p.sample("hume_worker_slots", l, Double(w.capacity)) }
        p.family("hume_worker_draining", "gauge", "1 while the worker drains (takes no new work).")
        for (l, w) in ws { p.sample("hume_worker_draining", l, w.draining ? 1 : 0) }
        p.family("hume_worker_completed_total", "counter", "Tasks the broker accepted as done from this worker.")
        for (l, w) in ws { p.sample("hume_worker_completed_total", l, Double(w.done)) }
        let reported: [(String, String, String, (WorkerFigures) -> Double?)] = [
            ("hume_worker_tasks_done_total", "counter", "Tasks the worker reports it finished (any outcome).",
             { f in f.tasksDone.map { Double($0) } }),
            ("hume_worker_tasks_failed_total", "counter", "Tasks the worker reports it failed.", { f in f.tasksFailed.map { Double($0) } }),
            ("hume_worker_busy_seconds_total", "counter", "Time the worker reports its executors spent running tasks.",
             { f in f.busyMs.map { $0 / 1000 } }),
            ("hume_worker_resident_memory_bytes", "gauge", "The worker process's resident set size, as it reports it.",
             { f in f.rssBytes.map { Double($0) } }),
        ]
        for (name, type, help, get) in reported {
            p.family(name, type, help)
            for (l, w) in ws { if let f = w.figures, let v = get(f) { p.sample(name, l, v) } }
        }

        p.family("hume_batch_jobs", "gauge", "Jobs per batch and status, from the journal (includes earlier broker runs).")
        for name in batchCounts.keys.sorted() {
            let row = batchCounts[name]!.counts
            for st in JobStatus.allCases { p.sample("hume_batch_jobs", [("batch", name), ("status", st.name)], Double(row[Int(st.rawValue)])) }
        }

        // The fleet as the supervisor last reported it (`hume up`), if one is attached.
        let fleetStages = fleet["stages"]?.array ?? []
        let fleetFigures: [(String, String, String, String)] = [
            ("hume_fleet_replicas", "gauge", "Replicas the supervisor runs for the stage (its target).", "replicas"),
            ("hume_fleet_replicas_live", "gauge", "Replica processes alive and not draining.", "live"),
            ("hume_fleet_autoscale_min", "gauge", "The stage's autoscaling minimum.", "min"),
            ("hume_fleet_autoscale_max", "gauge", "The stage's autoscaling maximum.", "max"),
            ("hume_fleet_scale_changes_total", "counter", "Replica target changes (manual or autoscaled).", "changes"),
            ("hume_fleet_restarts_total", "counter", "Worker processes restarted after they crashed.", "restarts"),
        ]
        for (name, type, help, key) in fleetFigures {
            let rows = fleetStages.compactMap { st -> (String, Double)? in
                guard let stage = st["stage"]?.string, let v = (key == "min" || key == "max" ? st["autoscale"]?[key] : st[key])?.double
                else { return nil }
                return (stage, v)
            }
            guard !rows.isEmpty else { continue }
            p.family(name, type, help)
            for (stage, v) in rows { p.sample(name, [("stage", stage)], v) }
        }
        return p.text
    }
}
