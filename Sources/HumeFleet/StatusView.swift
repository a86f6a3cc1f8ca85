import HumeCore

/// Renders STATUS snapshots as the text `hume status` prints: a summary line, then stages, workers, batches and the
/// fleet's last scaling decisions, with progress bars. Given successive snapshots (`hume status --watch`) it also
/// shows rates and ETAs, computed from the change since the previous one.
public struct StatusView {
    var previous: JSON?
    /// Columns available; long cells (reasons) are cut to fit. Default 120.
    public var width: Int

    public init(width: Int = 120) {
        self.width = width
    }

    /// The text for one snapshot (ends with a newline).
    public mutating func render(_ s: JSON) -> String {
        defer { previous = s }
        let dt = rateInterval(s)
        func rate(_ now: Double?, _ before: Double?) -> String {
            guard let dt, let now, let before, now >= before else { return "—" }
            return fmt1((now - before) / dt)
        }
        func d(_ j: JSON?) -> Double { j?.double ?? 0 }
        func i(_ j: JSON?) -> Int { Int(j?.double ?? 0) }

        var out = ""
        let fin = s["finished"]
        out += "hume status — broker up \(duration(d(s["uptime_ms"]) / 1000)) · \(i(s["submitted"])) submitted · "
            + "\(i(s["active_jobs"])) active · \(i(fin?["done"])) done · \(i(fin?["failed"])) failed · "
            + "\(i(fin?["dead_letter"])) dead-lettered · \(i(s["bad_messages"])) bad messages"
        if let keep = s["keep_ended_ms"]?.double {
            out += " · ended jobs kept \(duration(keep / 1000)), \(i(s["forgotten"])) forgotten"
        }
        out += "\n\n"

        var fleet: [String: JSON] = [:]
        for f in s["fleet"]?["stages"]?.array ?? [] { if let n = f["stage"]?.string { fleet[n] = f } }
        var prevStages: [String: JSON] = [:]
        for st in previous?["stages"]?.array ?? [] { if let n = st["name"]?.string { prevStages[n] = st } }

        var rows: [[String]] = [["STAGE", "QUEUE", "QUEUED", "IN-FLIGHT", "WORKERS", "REPLICAS", "DONE", "DONE/s", "RETRIES",
                                 "DEAD", "MEAN-MS"]]
        for st in s["stages"]?.array ?? [] {
            let name = st["name"]?.string ?? "?"
            guard i(st["workers"]) > 0 || d(st["arrived"]) > 0 || i(st["occupancy"]) > 0 || d(st["completed"]) > 0
                || fleet[name] != nil else { continue }
            var replicas = "—"
            if let f = fleet[name] {
                replicas = "\(i(f["live"]))/\(i(f["replicas"]))"
                if let a = f["autoscale"], a != .null { replicas += " (\(i(a["min"]))..\(i(a["max"])))" }
                if i(f["draining"]) > 0 { replicas += " -\(i(f["draining"]))" }
            }
            let cap = max(1, i(st["queue_capacity"]))
            rows.append([name, bar(Double(i(st["occupancy"])) / Double(cap), width: 16), "\(i(st["queued"]))",
                         "\(i(st["in_flight"]))", "\(i(st["workers"]))", replicas, "\(i(st["completed"]))",
                         rate(st["completed"]?.double, prevStages[name]?["completed"]?.double), "\(i(st["retries"]))",
                         "\(i(st["dead_letters"]))", fmt1(d(st["mean_service_ms"]))])
        }
        out += rows.count > 1 ? table(rows) : "(no stage has workers or jobs yet)\n"

        let workers = s["workers"]?.array ?? []
        out += "\n"
        if workers.isEmpty {
            out += "(no workers connected)\n"
        } else {
            var prevWorkers: [String: JSON] = [:]
            for w in previous?["workers"]?.array ?? [] { if let n = w["name"]?.string { prevWorkers[n] = w } }
            var wr: [[String]] = [["WORKER", "STAGE", "BUSY", "LEASES", "DONE", "DONE/s", "BUSY-S", "RSS-MB", ""]]
            for w in workers {
                let name = w["name"]?.string ?? "?"
                let cap = max(1, i(w["capacity"]))
                wr.append([name, w["stage"]?.string ?? "?", bar(Double(i(w["leases"])) / Double(cap), width: 8),
                           "\(i(w["leases"]))/\(cap)", "\(i(w["done"]))", rate(w["done"]?.double, prevWorkers[name]?["done"]?.double),
                           w["busy_ms"]?.double.map { String(Int(($0 / 1000).rounded())) } ?? "—",
                           w["rss_bytes"]?.double.map { String(Int(($0 / 1_048_576).rounded())) } ?? "—",
                           w["draining"]?.bool == true ? "draining" : ""])
            }
            out += table(wr)
        }

        let batches = s["batches"]?.array ?? []
        out += "\n"
        if batches.isEmpty {
            out += "(no batches yet)\n"
        } else {
            var prevBatches: [String: JSON] = [:]
            for b in previous?["batches"]?.array ?? [] { if let n = b["batch"]?.string { prevBatches[n] = b } }
            var br: [[String]] = [["BATCH", "PROGRESS", "FINISHED", "DONE", "ACTIVE", "FAILED", "DEAD", "CANCELLED", "JOBS/s", "ETA"]]
            for b in batches {
                let name = b["batch"]?.string ?? "?"
                let total = i(b["total"]), active = i(b["active"])
                let finished = total - active
                let fraction = Double(finished) / Double(max(1, total))
                var eta = active == 0 ? "done" : "—"
                var r = "—"
                if let dt, let p = prevBatches[name] {
                    let before = i(p["total"]) - i(p["active"])
                    let perS = Double(finished - before) / dt
                    r = fmt1(perS)
                    if active > 0 && perS > 0 { eta = duration(Double(active) / perS) }
                }
                br.append([name, bar(fraction, width: 20) + " " + fmt1(fraction * 100) + "%", "\(finished)/\(total)",
                           "\(i(b["done"]))", "\(active)", "\(i(b["failed"]))", "\(i(b["dead_letter"]))", "\(i(b["cancelled"]))", r, eta])
            }
            out += table(br)
        }

        let decisions = s["fleet"]?["decisions"]?.array ?? []
        if !decisions.isEmpty {
            out += "\nSCALING (latest last)\n"
            let now = d(s["now_ms"])
            for dec in decisions.suffix(5) {
                let ago = duration(max(0, (now - d(dec["at_ms"])) / 1000))
                let line = "  \(ago) ago  \(dec["stage"]?.string ?? "?")  \(i(dec["from"])) → \(i(dec["to"]))  "
                    + "\(dec["source"]?.string ?? "")  \(dec["reason"]?.string ?? "")"
                out += String(line.prefix(max(40, width))) + "\n"
            }
        }
        return out
    }

    /// Seconds between the previous snapshot and this one, when both carry the broker's clock and it moved on.
    func rateInterval(_ s: JSON) -> Double? {
        guard let a = previous?["now_ms"]?.double, let b = s["now_ms"]?.double, b > a,
              (s["uptime_ms"]?.double ?? 0) >= (previous?["uptime_ms"]?.double ?? 0) else { return nil }
        return (b - a) / 1000
    }
}

/// A text progress bar: `[#####.....]`.
public func bar(_ fraction: Double, width: Int) -> String {
    let n = Int((min(1, max(0, fraction)) * Double(width)).rounded())
    return "[" + String(repeating: "#", count: n) + String(repeating: ".", count: width - n) + "]"
}

/// Left-aligned columns, two spaces apart.
func table(_ rows: [[String]]) -> String {
    var widths: [Int] = []
    for r in rows {
        for (k, c) in r.enumerated() {
            if k >= widths.count { widths.append(0) }
            widths[k] = max(widths[k], c.count)
        }
    }
    var out = ""
    for r in rows {
        var line = ""
        for (k, c) in r.enumerated() {
            line += k == r.count - 1 ? c : c + String(repeating: " ", count: widths[k] - c.count + 2)
        }
        while line.hasSuffix(" ") { line.removeLast() }
        out += line + "\n"
    }
    return out
}

func fmt1(_ x: Double) -> String {
    guard x.isFinite else { return "—" }
    let r = (x * 10).rounded() / 10
    return r == r.rounded() ? String(Int(r)) : String(r)
}

/// 75 → "1m15s", 4000 → "1h06m", 604800 → "7d00h" (two days and more in days).
func duration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "—" }
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m\(String(format2: s % 60))s" }
    if s < 172_800 { return "\(s / 3600)h\(String(format2: (s / 60) % 60))m" }
    return "\(s / 86_400)d\(String(format2: (s / 3600) % 24))h"
}

extension String {
    init(format2 v: Int) { self = v < 10 ? "0\(v)" : "\(v)" }
}
