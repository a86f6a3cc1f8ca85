import Foundation
import HumeCore

/// The broker's status page: stages, workers, batches and the fleet's scaling decisions as one HTML page with
/// progress bars, rendered from a STATUS snapshot (the same JSON `hume status --json` prints). It refreshes itself
/// every `refreshSeconds` and needs no script. `images`, the latest stage images, are shown newest first as inline
/// thumbnails.
public func statusPageHTML(_ s: JSON, images: [RecentImage] = [], refreshSeconds: Int = 2) -> String {
    func esc(_ v: String) -> String { htmlEscape(v) }
    func int(_ j: JSON?) -> Int { j?.int ?? Int(j?.double ?? 0) }
    func bar(_ fraction: Double, _ kind: String = "") -> String {
        let pct = Int((min(1, max(0, fraction)) * 100).rounded())
        return "<div class=\"bar \(kind)\"><div style=\"width:\(pct)%\"></div></div>"
    }
    func rows(_ cells: [String]) -> String { "<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n" }
    func head(_ cells: [String]) -> String { "<tr>" + cells.map { "<th>\($0)</th>" }.joined() + "</tr>\n" }

    var fleetByStage: [String: JSON] = [:]
    for f in s["fleet"]?["stages"]?.array ?? [] { if let n = f["stage"]?.string { fleetByStage[n] = f } }

    var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="\(refreshSeconds)">
        <title>Hume — fleet status</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #f7f8fa; }
        h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
        .meta { color: #5a6272; }
        table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px #0002; min-width: 640px; }
        th, td { padding: 5px 10px; text-align: right; border-bottom: 1px solid #e6e8ee; white-space: nowrap; }
        th:first-child, td:first-child { text-align: left; } th { background: #eef1f6; font-weight: 600; }
        .bar { display: inline-block; width: 160px; height: 12px; background: #e3e7ee; border-radius: 6px; overflow: hidden;
               vertical-align: middle; }
        .bar > div { height: 100%; background: #3b82f6; } .bar.queue > div { background: #f59e0b; }
        .bar.busy > div { background: #10b981; }
        .draining { color: #b45309; } .empty { color: #8a93a3; font-style: italic; }
        td.reason { text-align: left; white-space: normal; max-width: 640px; color: #3a4150; }
        .outputs { display: flex; flex-wrap: wrap; gap: 10px; } .outputs figure { margin: 0; width: 96px; font-size: 11px;
               color: #5a6272; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
        .outputs img { width: 96px; height: 96px; image-rendering: pixelated; background: #fff; box-shadow: 0 1px 2px #0002; }
        </style></head><body>
        <h1>Hume — fleet status</h1>

        """
    let fin = s["finished"]
    h += "<p class=\"meta\">up \(int(s["uptime_ms"]) / 1000) s · \(int(s["submitted"])) submitted · "
        + "\(int(s["active_jobs"])) active · \(int(fin?["done"])) done · \(int(fin?["failed"])) failed · "
        + "\(int(fin?["dead_letter"])) dead-lettered · \(int(s["bad_messages"])) bad messages</p>\n"

    h += "<h2>Stages</h2>\n<table id=\"stages\">\n"
        + head(["stage", "queue", "queued", "in flight", "workers", "replicas", "done", "retries", "dead", "mean ms"])
    var anyStage = false
    for st in s["stages"]?.array ?? [] {
        let name = st["name"]?.string ?? "?"
        guard int(st["workers"]) > 0 || int(st["arrived"]) > 0 || int(st["occupancy"]) > 0 || fleetByStage[name] != nil else { continue }
        anyStage = true
        let cap = max(1, int(st["queue_capacity"]))
        var replicas = "—"
        if let f = fleetByStage[name] {
            replicas = "\(int(f["live"]))/\(int(f["replicas"]))"
            if let a = f["autoscale"], a != .null { replicas += " (\(int(a["min"]))..\(int(a["max"])))" }
        }
        h += rows([esc(name), bar(Double(int(st["occupancy"])) / Double(cap), "queue"), "\(int(st["queued"]))",
                   "\(int(st["in_flight"]))", "\(int(st["workers"]))", replicas, "\(int(st["completed"]))",
                   "\(int(st["retries"]))", "\(int(st["dead_letters"]))", "\(st["mean_service_ms"]?.double ?? 0)"])
    }
    if !anyStage { h += "<tr><td class=\"empty\" colspan=\"10\">no stage has workers or jobs yet</td></tr>\n" }
    h += "</table>\n"

    h += "<h2>Workers</h2>\n<table id=\"workers\">\n"
        + head(["worker", "stage", "busy", "leases", "done", "busy s", "RSS MiB", ""])
    let workers = s["workers"]?.array ?? []
    for w in workers {
        let cap = max(1, int(w["capacity"]))
        let rss = w["rss_bytes"]?.double.map { String(Int(($0 / 1_048_576).rounded())) } ?? "—"
        let busy = w["busy_ms"]?.double.map { String(Int(($0 / 1000).rounded())) } ?? "—"
        let draining = w["draining"]?.bool == true ? "<span class=\"draining\">draining</span>" : ""
        h += rows([esc(w["name"]?.string ?? "?"), esc(w["stage"]?.string ?? "?"), bar(Double(int(w["leases"])) / Double(cap), "busy"),
                   "\(int(w["leases"]))/\(cap)", "\(int(w["done"]))", busy, rss, draining])
    }
    if workers.isEmpty { h += "<tr><td class=\"empty\" colspan=\"8\">no workers connected</td></tr>\n" }
    h += "</table>\n"

    h += "<h2>Batches</h2>\n<table id=\"batches\">\n"
        + head(["batch", "progress", "total", "done", "active", "failed", "dead", "cancelled", "expired"])
    let batches = s["batches"]?.array ?? []
    for b in batches {
        let total = max(1, int(b["total"]))
        let finished = int(b["total"]) - int(b["active"])
        h += rows([esc(b["batch"]?.string ?? "?"), bar(Double(finished) / Double(total)), "\(int(b["total"]))", "\(int(b["done"]))",
                   "\(int(b["active"]))", "\(int(b["failed"]))", "\(int(b["dead_letter"]))", "\(int(b["cancelled"]))",
                   "\(int(b["expired"]))"])
    }
    if batches.isEmpty { h += "<tr><td class=\"empty\" colspan=\"9\">no batches yet</td></tr>\n" }
    h += "</table>\n"

    h += "<h2>Latest outputs</h2>\n<div class=\"outputs\" id=\"outputs\">\n"
    for img in images.reversed() {
        let label = "job \(img.job) · \(img.stage)" + (img.text.isEmpty ? "" : " · " + img.text)
        h += "<figure><img src=\"data:image/bmp;base64,\(Data(img.bmp).base64EncodedString())\" alt=\"\(esc(label))\" "
            + "title=\"\(esc(label))\"><figcaption>\(esc(label))</figcaption></figure>\n"
    }
    if images.isEmpty { h += "<p class=\"empty\">no stage has produced an image yet</p>\n" }
    h += "</div>\n"

    let decisions = s["fleet"]?["decisions"]?.array ?? []
    if !decisions.isEmpty {
        h += "<h2>Scaling decisions</h2>\n<table id=\"decisions\">\n" + head(["stage", "change", "by", "when", "why"])
        let now = s["now_ms"]?.double ?? 0
        for d in decisions.reversed().prefix(12) {
            let ago = max(0, Int(((now - (d["at_ms"]?.double ?? now)) / 1000).rounded()))
            h += "<tr><td>\(esc(d["stage"]?.string ?? "?"))</td><td>\(int(d["from"])) → \(int(d["to"]))</td>"
                + "<td>\(esc(d["source"]?.string ?? ""))</td><td>\(ago) s ago</td>"
                + "<td class=\"reason\">\(esc(d["reason"]?.string ?? ""))</td></tr>\n"
        }
        h += "</table>\n"
    }
    h += "<p class=\"meta\">Metrics for Prometheus: <a href=\"/metrics\">/metrics</a> · this page as JSON: "
        + "<a href=\"/status.json\">/status.json</a></p>\n</body></html>\n"
    return h
}
