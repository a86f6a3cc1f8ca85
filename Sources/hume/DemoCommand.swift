import ArgumentParser
import Foundation
import HumeCore
import HumeDemo
import HumeStages

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The main job: a local fleet makes images for a prompt file and a few edits, and leaves PNGs, manifest.jsonl, a contact sheet and index.html in --out.",
        discussion: "Needs the model and the image databases: Ops/demo.sh prepares them and then runs this.")

    @Option(help: "Prompt file: text lines or JSONL jobs.") var prompts = "Ops/examples/prompts.txt"
    @Option(help: "Output directory.") var out = "out"
    @Option(help: "Edit jobs (sources from the emoji database), 0 to \(Demo.editPairs.count).") var edits = 4
    @Option(help: "Denoise worker processes.") var denoisers = 1
    @Option(help: "DDIM steps for every job (default: each stage's own).") var steps: Int?
    @Option(help: "Image side for every generated image, 32, 64 or 128 (default: the denoise stage's).") var size: Int?
    @Option(help: "Give up after this many seconds.") var timeout = 900.0
    @Flag(help: "No progress bar.") var quiet = false

    func run() throws {
        guard (0...Demo.editPairs.count).contains(edits) else { throw CLIFailure("--edits must be from 0 to \(Demo.editPairs.count).") }
        guard (1...16).contains(denoisers) else { throw CLIFailure("--denoisers must be from 1 to 16.") }
        if let size { guard GenerateParameters.sizes.contains(size) else { throw CLIFailure("--size must be 32, 64 or 128.") } }
        if let steps { guard (1...200).contains(steps) else { throw CLIFailure("--steps must be from 1 to 200.") } }
        guard timeout > 0 else { throw CLIFailure("--timeout must be a positive number of seconds.") }
        var o = Demo.Options(prompts: prompts, databases: humePaths.databases)
        o.out = out
        o.edits = edits
        o.denoisers = denoisers
        o.steps = steps
        o.size = size
        o.timeout = timeout
        var demo = Demo(options: o)
        var bar: ProgressBar?
        demo.onProgress = { done, total in
            if bar == nil { bar = ProgressBar(total: total, enabled: !quiet) }
            bar?.update(done)
        }
        demo.onNews = { stderrLine("hume demo: " + $0) }
        let start = Date()
        let r = try demo.run()
        bar?.finish(r.done + r.failed)
        stderrLine(String(format: "hume demo: %d of %d jobs done in %.1f s (%.1f jobs/s; fleet start %.1f s, all %.1f s)",
                          r.done, r.jobs, r.seconds, Double(r.done) / max(r.seconds, 0.001), r.startupSeconds,
                          Date().timeIntervalSince(start))
                   + (r.failed > 0 ? "; \(r.failed) failed (see the manifest)" : ""))
        print("gallery:       \(r.gallery)\nmanifest:      \(r.manifest)\ncontact sheet: \(r.contactSheet)")
        if r.failed > 0 { Foundation.exit(1) }
    }
}
