import ArgumentParser
import Foundation
import HumeClient
import HumeCore
import HumeFleet

struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a file of jobs (text lines or JSONL), show progress, write manifest.jsonl. Re-running resumes.")

    @Argument(help: "Job file: one prompt per line, or one JSON job per line.") var file: String
    @Option(help: "Batch name (default: the file's base name).") var batch: String?
    @Option(help: "Comma-separated stages each job runs through.") var route = "noop"
    @Option(help: "Directory for manifest.jsonl (default: out/BATCH).") var out: String?
    @Option(help: "The broker's client endpoint.") var broker = Defaults.clients
    @Option(help: "Jobs per SUBMIT message.") var chunk = 500
    @Option(help: "Give up after this many seconds (the jobs go on; re-run to collect them).") var timeout: Double?
    @Flag(help: "No progress bar.") var quiet = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else { fail("Cannot read \(file).") }
        let batchName = batch ?? ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let stages = route.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
        let text = String(decoding: data, as: UTF8.self)
        let baseDirectory = (file as NSString).deletingLastPathComponent.isEmpty ? nil : (file as NSString).deletingLastPathComponent
        let parsed = JobLines.parseFile(text, batch: batchName, baseDirectory: baseDirectory)
        let specs = parsed.jobs.map(\.spec)
        let lineOf = parsed.jobs.map(\.line)
        let badLines = parsed.invalid
        let conn = reporting { try BrokerConnection(endpoint: broker) }
        let sub = BatchSubmitter(connection: conn, batch: batchName, route: stages, jobs: specs)
        sub.chunkSize = max(1, chunk)
        let progress = ProgressBar(total: specs.count, enabled: !quiet)
        var refusal: String?
        sub.onRefused = { _, msg in refusal = refusal ?? msg }
        sub.onResult = { _ in progress.update(sub.finishedCount) }
        let interrupted = WakeFlag()
        onTerminationSignal { interrupted.set() }
        var finished = false
        let start = Date()
        while !finished && !interrupted.isSet {
            if let t = timeout, Date().timeIntervalSince(start) > t { break }
            finished = reporting { try sub.run(timeoutMs: 500) }
        }
        progress.finish(sub.finishedCount)

        // The manifest: one line per job in file order (bad lines included), written atomically.
        let dir = out ?? "out/\(batchName)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var lines: [(Int, String)] = badLines.map { (ln, msg) in
            (ln, JSON.object(["line": JSON(ln), "key": .string(JobLines.derivedKey(batch: batchName, line: ln)),
                              "status": .string("invalid"), "error": .string(msg)]).serialized)
        }
        var counts: [String: Int] = ["invalid": badLines.count]
        for (i, spec) in specs.enumerated() {
            var o: [String: JSON] = ["line": JSON(lineOf[i]), "key": .string(spec.key)]
            if let r = sub.results[i] {
                o["job"] = .number(Double(r.jobID))
                o["status"] = .string(r.status.name)
                let (k, v) = JobLines.bodyField(r.body, status: r.status)
                o[k] = v
                counts[r.status.name, default: 0] += 1
            } else {
                o["status"] = .string("pending")
                counts["pending", default: 0] += 1
            }
            lines.append((lineOf[i], JSON.object(o).serialized))
        }
        lines.sort { $0.0 < $1.0 }
        let manifest = dir + "/manifest.jsonl"
        let body = lines.map(\.1).joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
        _ = FileManager.default.createFile(atPath: manifest + ".tmp", contents: Data(body.utf8))
        _ = rename(manifest + ".tmp", manifest)
        let summary = counts.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        stderrLine("hume submit: batch \(batchName): \(summary); manifest: \(manifest)")
        if let refusal { stderrLine("hume submit: the broker refused some jobs: \(refusal)") }
        if !finished { Foundation.exit(interrupted.isSet ? 130 : 2) }
        if counts.keys.contains(where: { $0 != "done" && counts[$0]! > 0 }) { Foundation.exit(1) }
    }
}

/// A flag set from a signal handler.
final class WakeFlag: @unchecked Sendable {  // guarded by the lock.
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// A progress bar on stderr with rate and ETA: redrawn in place on a terminal, a line every few seconds otherwise.
final class ProgressBar {
    let total: Int
    let enabled: Bool
    let tty = isatty(2) != 0
    let start = Date()
    var lastDraw = Date.distantPast

    init(total: Int, enabled: Bool) {
        self.total = total
        self.enabled = enabled
    }

    func line(_ done: Int) -> String {
        let el = max(0.001, Date().timeIntervalSince(start))
        let rate = Double(done) / el
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let pct = total > 0 ? Double(done) / Double(total) * 100 : 100
        return "\(bar(Double(done) / Double(max(1, total)), width: 30)) \(done)/\(total) \(String(format: "%.1f", pct))% "
            + "\(Int(rate.rounded()))/s ETA \(Int(eta) / 60):\(String(format: "%02d", Int(eta) % 60))"
    }

    func update(_ done: Int) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > (tty ? 0.1 : 5) else { return }
        lastDraw = now
        FileHandle.standardError.write(Data(((tty ? "\r" : "") + line(done) + (tty ? "" : "\n")).utf8))
    }

    func finish(_ done: Int) {
        guard enabled else { return }
        FileHandle.standardError.write(Data(((tty ? "\r" : "") + line(done) + "\n").utf8))
    }
}
