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
        // The file is read twice, a line at a time: once to count the jobs for the progress bar, once to submit
        // them as the window opens. Memory holds what is unfinished, never the file or its results.
        guard let counter = LineReader(path: file) else { throw CLIFailure("Cannot read the job file \(file): \(UserFile.whyUnreadable(file)).") }
        var total = 0
        while let line = counter.next() { if line.contains(where: { $0 != 0x20 && $0 != 0x09 }) { total += 1 } }
        guard let reader = LineReader(path: file) else { throw CLIFailure("Cannot read the job file \(file): \(UserFile.whyUnreadable(file)).") }
        let batchName = batch ?? ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let stages = route.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
        let baseDirectory = (file as NSString).deletingLastPathComponent.isEmpty ? nil : (file as NSString).deletingLastPathComponent
        let dir = out ?? "out/\(batchName)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let manifest = dir + "/manifest.jsonl"
        let spill = try ManifestSpill(path: manifest + ".spill")
        var counts: [String: Int] = [:]
        func entry(line: Int, key: String, status: String, _ fields: [String: JSON] = [:]) {
            var o = fields
            o["line"] = JSON(line)
            o["key"] = .string(key)
            o["status"] = .string(status)
            spill.write(line: line, JSON.object(o).serialized)
            counts[status, default: 0] += 1
        }

        let conn = try BrokerConnection(endpoint: broker, curve: try environmentCurve())
        let sub = BatchSubmitter(connection: conn, batch: batchName, route: stages, jobs: [])
        sub.keepsResults = false
        sub.inputClosed = false
        sub.chunkSize = max(1, chunk)
        // Line number and key of each job without a result yet, by the submitter's index.
        var unfinished: [Int: (line: Int, key: String)] = [:]
        var invalid = 0
        let progress = ProgressBar(total: total, enabled: !quiet)
        var refusal: String?
        sub.onRefused = { _, msg in refusal = refusal ?? msg }
        sub.onResult = { [unowned sub] r in
            guard let job = unfinished.removeValue(forKey: r.index) else { return }
            let (k, v) = JobLines.bodyField(r.body, status: r.status)
            entry(line: job.line, key: job.key, status: r.status.name, ["job": .number(Double(r.jobID)), k: v])
            progress.update(sub.finishedCount + invalid)
        }
        /// The job on a line; nil for a blank line, or a bad one, which gets its manifest entry here.
        func job(_ raw: ArraySlice<UInt8>, line: Int) -> JobSpec? {
            let text = String(decoding: raw, as: UTF8.self)
            if text.trimmingCharacters(in: .whitespaces).isEmpty { return nil }
            do {
                return try JobLines.parse(text, batch: batchName, line: line, baseDirectory: baseDirectory)
            } catch {
                let message = (error as? HumeError)?.message ?? "Line \(line) is not a valid job: \(error)."
                entry(line: line, key: JobLines.derivedKey(batch: batchName, line: line), status: "invalid", ["error": .string(message)])
                invalid += 1
                return nil
            }
        }
        /// Reads lines until `room` jobs wait unsent (or the file ends); a bad line becomes its manifest entry.
        func readJobs(upTo room: Int) {
            while !sub.inputClosed && sub.unsent < room {
                guard let raw = reader.next() else {
                    sub.inputClosed = true
                    return
                }
                guard let spec = job(raw, line: reader.lineNumber) else { continue }
                unfinished[sub.add([spec]).lowerBound] = (reader.lineNumber, spec.key)
            }
        }

        let interrupted = WakeFlag()
        onTerminationSignal { interrupted.set() }
        var finished = false
        let start = Date()
        while !finished && !interrupted.isSet {
            if let t = timeout, Date().timeIntervalSince(start) > t { break }
            // Unsent jobs kept ready: a window's worth and a few chunks, however fast the broker takes them.
            readJobs(upTo: sub.windowSize + 4 * sub.chunkSize)
            finished = try sub.run(timeoutMs: sub.inputClosed ? 500 : 50)
        }
        progress.finish(sub.finishedCount + invalid)

        // Stopped early: what was read and is unfinished, and every line not yet read, is pending (or invalid).
        if !finished {
            for (_, job) in unfinished { entry(line: job.line, key: job.key, status: "pending") }
            while let raw = reader.next() {
                if let spec = job(raw, line: reader.lineNumber) { entry(line: reader.lineNumber, key: spec.key, status: "pending") }
            }
        }

        // The manifest: one line per job in file order (bad lines included), written atomically.
        try spill.writeManifest(to: manifest)
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
    /// Written before the bar ("hume db: reading ").
    let label: String
    let tty = isatty(2) != 0
    let start: Date
    var lastDraw = Date.distantPast

    init(total: Int, enabled: Bool, label: String = "", start: Date = Date()) {
        self.total = total
        self.enabled = enabled
        self.label = label
        self.start = start
    }

    func line(_ done: Int) -> String {
        let el = max(0.001, Date().timeIntervalSince(start))
        let rate = Double(done) / el
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let pct = total > 0 ? Double(done) / Double(total) * 100 : 100
        return label + "\(bar(Double(done) / Double(max(1, total)), width: 30)) \(done)/\(total) \(String(format: "%.1f", pct))% "
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
