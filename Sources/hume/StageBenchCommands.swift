import ArgumentParser
import Foundation
import HumeData
import HumeDiffusion
import HumeEmbed
import HumeEvaluation
import HumeStages

/// Prints `object` as one line of sorted JSON.
func printJSON(_ object: Any) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
}

struct BenchEmbed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Sentences/s at batch 1, 32 and 256 on one thread, accuracy against the fixtures, and the reference in the same run.")

    @Option(help: "Embedding fixtures.") var fixtures = "Tests/HumeEmbedTests/Fixtures/embeddings.json"
    @Option(help: "Sentences per measurement.") var sentences = 512
    @Option(help: "Repetitions (median).") var repeats = 3
    @Option(help: "Reference script.") var reference = "Ops/bench-embed-reference.py"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        var b = EmbedBenchmark(modelDirectory: humePaths.model)
        b.fixtures = fixtures; b.sentences = sentences; b.repeats = repeats; b.reference = reference
        b.python = ProcessInfo.processInfo.environment["HUME_REFERENCE_PYTHON"] ?? "python3"
        let result = try b.run()
        if json { return try printJSON(result) }
        let rates = result["sentences_per_s"] as! [String: Double]
        let referenceRates = result["reference_sentences_per_s"] as? [String: Double]
        print(String(format: "accuracy: min cosine %.6f over %d fixture prompts", result["min_cosine_vs_fixtures"] as! Double, result["fixtures"] as! Int))
        for k in ["1", "32", "256"] {
            var line = String(format: "batch %3@: %8.1f sentences/s", k, rates[k]!)
            if let r = referenceRates?[k] { line += String(format: "   reference %8.1f   ratio %.2f×", r, rates[k]! / r) }
            print(line)
        }
        if referenceRates == nil { print("reference: sentence-transformers not importable by \(b.python) (set HUME_REFERENCE_PYTHON)") }
    }
}

struct BenchDenoise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "denoise", abstract: "Seconds per generated image at 32², 64² and 128² (median), useful FLOPs per image (the neighbours a sample is made from, every level), fraction of peak.")

    @Option(help: "Database name.") var database = Database.defaultName
    @Option(name: .short, help: "Neighbours.") var k = 16
    @Option(help: "DDIM steps.") var steps = 20
    @Option(help: "Images per size (median).") var repeats = 5
    @Option(help: "Further denoise parameters as a JSON object, e.g. '{\"coherence\": 0, \"register\": false, \"patch_scale\": 1.5}'.")
    var settings = "{}"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        var b = DenoiseBenchmark(images: try openImages(database))
        b.parameters = try GenerateParameters(json: Array(settings.utf8))
        b.k = k; b.steps = steps; b.repeats = repeats
        let rows = try b.run()
        let peak = peakFlopsPerCore()
        if json {
            return try printJSON(["k": k, "steps": steps, "repeats": repeats, "peak_flops_per_core": peak.flops, "results": rows] as [String: Any])
        }
        print("peak per core: \(peak.note) = \(String(format: "%.1f", peak.flops / 1e9)) GFLOP/s")
        for r in rows {
            print(String(format: "%2d²: %.3f s/image (median of %d), %.2f GFLOP/image, %.2f GFLOP/s = %.1f%% of one core's peak",
                         r["size"] as! Int, r["seconds_per_image"] as! Double, repeats, (r["flops_per_image"] as! Double) / 1e9,
                         r["gflops"] as! Double, 100 * (r["fraction_of_peak"] as! Double)))
        }
    }
}

struct BenchEdit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Seconds per edit through the edit stage (median over the eval's fixed pairs), FLOPs per edit, fraction of peak.")

    @Option(help: "Passes over the fixed (image, edit) pairs of `hume eval edit` (median over all edits).") var repeats = 3
    @Option(help: "Edit list (JSONL: database, source caption, edit); default Ops/eval/edits.jsonl.") var pairs: String?
    @Option(help: "Working side: 32, 64 or 128.") var size = Editor().side
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard GenerateParameters.sizes.contains(size) else { throw ValidationError("--size must be 32, 64 or 128.") }
    }

    func run() throws {
        var b = EditBenchmark(pairs: try EditEvaluation.load(pairs ?? EditEvaluation.defaultList(executable: CommandLine.arguments[0])),
                              root: humePaths.databases, modelDirectory: humePaths.model)
        b.repeats = repeats
        b.side = size
        let out = try b.run()
        if json { return try printJSON(out) }
        let (side, s, n, flops) = (out["size"] as! Int, out["seconds_per_edit"] as! Double, out["edits"] as! Int, out["flops_per_edit"] as! Double)
        let peak = peakFlopsPerCore()
        print(String(format: "%d² edit: %.3f s/edit (median of %d, embedding and retrieval included), %.2f GFLOP of denoising per edit, %.2f GFLOP/s = %.1f%% of one core's peak (%@)",
                     side, s, n, flops / 1e9, flops / s / 1e9, 100 * flops / s / peak.flops, peak.note))
    }
}
