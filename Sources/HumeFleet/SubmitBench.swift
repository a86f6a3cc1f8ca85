import Foundation
import HumeClient
import HumeCore

/// What `hume bench submit` measured: one `hume submit` of a batch of no-op jobs against a real broker and worker.
public struct SubmitBenchResult: Sendable {
    public var jobs = 0
    public var seconds = 0.0
    /// The client's peak resident set (its `ru_maxrss` once it has exited), MiB.
    public var clientPeakMiB = 0.0
    /// The broker's peak resident set (VmHWM) after the batch, MiB.
    public var brokerPeakMiB = 0.0
    /// The manifest the client wrote: lines, lines done, whether lines are in file order.
    public var manifestLines = 0, manifestDone = 0
    public var manifestInOrder = false
    public var exitStatus: Int32 = 0

    public var json: JSON {
        .object(["jobs": JSON(jobs), "seconds": .number((seconds * 10).rounded() / 10),
                 "jobs_per_s": .number((Double(jobs) / max(seconds, 0.001)).rounded()),
                 "client_peak_rss_mib": .number((clientPeakMiB * 10).rounded() / 10),
                 "broker_peak_rss_mib": .number((brokerPeakMiB * 10).rounded() / 10),
                 "manifest": .object(["lines": JSON(manifestLines), "done": JSON(manifestDone), "in_order": .bool(manifestInOrder)]),
                 "exit_status": JSON(Int(exitStatus))])
    }
}

/// `hume bench submit`: how much memory the client needs for a big batch. Writes a job file of `jobs` prompts, runs
/// `hume submit` on it against a broker serving `noop` and one worker, and reads the client's peak memory when it has
/// exited and the broker's after the batch. A client that holds the file or its results grows with the batch; one
/// that streams them does not.
public enum SubmitBench {
    public static func run(jobs: Int, workMs: Double, directory: String, log: (String) -> Void = { _ in }) throws -> SubmitBenchResult {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = directory + "/jobs.txt"
        guard FileManager.default.createFile(atPath: file, contents: nil), let h = FileHandle(forWritingAtPath: file) else {
            throw HumeError(.system, "Cannot write \(file).")
        }
        var chunk = ""
        for i in 1...jobs {
            chunk += "a sticker of job number \(i)\n"
            if chunk.utf8.count > 1 << 20 || i == jobs {
                h.write(Data(chunk.utf8))
                chunk = ""
            }
        }
        try h.close()
        let fleet = try LocalFleet(directory: directory, brokerArguments: ["--stages", "noop"])
        defer { fleet.stop() }
        try fleet.startWorker("noop", arguments: ["--work-ms", String(workMs), "--batch", "64"])
        try fleet.waitForWorkers(1)
        log("\(jobs) jobs written; submitting")
        let start = Date()
        let client = try Child(role: "client", arguments: ["submit", file, "--batch", "memory", "--route", "noop",
                                                            "--broker", fleet.endpoints.clients, "--out", directory + "/out", "--quiet"],
                               logPath: directory + "/client.log", environment: [:])
        client.process.waitUntilExit()
        var result = SubmitBenchResult()
        result.jobs = jobs
        result.seconds = Date().timeIntervalSince(start)
        result.exitStatus = client.process.terminationStatus
        // The client is the only child that has exited and been waited for, so the children's peak is its peak.
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        result.clientPeakMiB = Double(usage.ru_maxrss) / 1024
        result.brokerPeakMiB = peakRSSMiB(pid: fleet.broker.pid) ?? 0
        if let reader = LineReader(path: directory + "/out/manifest.jsonl") {
            var last = 0
            result.manifestInOrder = true
            while let line = reader.next() {
                guard let j = try? JSON.parse(Array(line)) else { continue }
                result.manifestLines += 1
                if j["status"]?.string == "done" { result.manifestDone += 1 }
                let n = j["line"]?.int ?? 0
                if n <= last { result.manifestInOrder = false }
                last = n
            }
        }
        return result
    }
}
