import ArgumentParser
import Foundation
import HumeCore
import HumeFleet

/// `hume bench submit`: the client's and the broker's peak memory for one big `hume submit` (HumeFleet's `SubmitBench`).
struct BenchSubmit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Peak memory of hume submit and of the broker for one batch of no-op jobs (a million by default).")

    @Option(help: "Jobs in the batch.") var jobs = 1_000_000
    @Option(help: "Milliseconds of simulated work per task in the one noop worker.") var workMs = 0.0
    @Option(help: "Directory for the job file, journal and manifest (default: a fresh temporary one, removed after).")
    var directory: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard jobs >= 1, workMs >= 0 else { throw CLIFailure("--jobs must be at least 1 and --work-ms at least 0.") }
        let dir = directory ?? NSTemporaryDirectory() + "hume-bench-submit-\(getpid())"
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let r = try SubmitBench.run(jobs: jobs, workMs: workMs, directory: dir, log: { if !json { stderrLine("bench submit: " + $0) } })
        if json { print(r.json.serialized) } else {
            print(String(format: "%d jobs in %.1f s (%.0f/s): client peak %.1f MiB, broker peak %.1f MiB; manifest %d lines, %d done%@",
                         r.jobs, r.seconds, Double(r.jobs) / max(r.seconds, 0.001), r.clientPeakMiB, r.brokerPeakMiB,
                         r.manifestLines, r.manifestDone, r.manifestInOrder ? ", in file order" : ", NOT in file order"))
        }
        if r.exitStatus != 0 || r.manifestDone != r.jobs || !r.manifestInOrder { Foundation.exit(1) }
    }
}
