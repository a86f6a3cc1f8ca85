import ArgumentParser
import Foundation
import HumeEvaluation

/// `hume eval fidelity`: the command line of `FidelityEvaluation` (HumeEvaluation).
struct EvalFidelity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fidelity",
        abstract: "Recognised / near copy / seed diversity of generated stickers on prompts naming things the database holds.")

    @Option(help: "Prompt list (JSONL: prompt, concepts); default Ops/eval/fidelity-<emoji|tuxpaint>.jsonl for the database.")
    var prompts: String?
    @Option(help: "At most this many prompts (the list's first).") var count: Int?
    @Option(help: "Samples per prompt (seeds 1…n).") var seeds = 3
    @OptionGroup var options: GenerateOptions
    @Option(help: "A sample is a near copy when its aligned RMSE at 32² to some database image is below this.") var copyThreshold = 0.08
    @Flag(inversion: .prefixedNo, help: "Also score the first version's default (rank-only focus 0.3, consensus 2, no similarities).")
    var baseline = true
    @Option(help: "Sheet PNG (rows: best neighbour, the samples, then the baseline's); prompts and scores go to <sheet>.txt.")
    var sheet = "eval-fidelity.png"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        var evaluation = FidelityEvaluation(parameters: options.parameters,
                                            promptList: prompts ?? FidelityEvaluation.defaultList(for: options.database, executable: CommandLine.arguments[0]),
                                            root: humePaths.databases, modelDirectory: humePaths.model)
        evaluation.count = count
        evaluation.seeds = seeds
        evaluation.copyThreshold = copyThreshold
        evaluation.baseline = baseline
        evaluation.sheet = sheet
        if !json { evaluation.progress = { done, all in stderrLine("eval fidelity: \(done)/\(all) prompts") } }
        let result = try evaluation.run()
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        } else {
            // A measure without a value (seed diversity with one seed) prints as "n/a".
            func v(_ o: [String: Any], _ key: String) -> String { (o[key] as? Double).map { String(format: "%.3f", $0) } ?? "n/a" }
            func row(_ name: String, _ o: [String: Any]) -> String {
                "\(name): recognised \(v(o, "recognised")), near copy \(v(o, "near_copy")) (warped copy \(v(o, "warped_copy"))), "
                    + "faithful and new \(v(o, "faithful_and_new")) (unwarped \(v(o, "faithful_and_new_unwarped"))), seed diversity \(v(o, "seed_diversity"))"
            }
            print("eval fidelity: \(options.database), \(result["prompts"] as? Int ?? 0) prompts × \(seeds) seeds, retriever top-1 "
                  + "\(v(result, "retriever_top1")) (by the cosine alone \(v(result, "retriever_top1_cosine")))")
            print(row("this build", result))
            if baseline { print(row("first version's default", result["baseline"] as! [String: Any])) }
            print("sheet \(sheet) (rows: best neighbour, samples, baseline samples), details \(sheet).txt")
        }
    }
}
