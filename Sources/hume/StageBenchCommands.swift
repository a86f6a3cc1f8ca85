import ArgumentParser
import Foundation
import HumeCore
import HumeStages
import HumeData
import HumeDenoiseStage
import HumeDiffusion
import HumeEditStage
import HumeEmbed
import HumeEvaluation


/// The fixtures' prompts and reference vectors (Tests/HumeEmbedTests/Fixtures/embeddings.json).
func embedFixtures(_ path: String) -> [(text: String, vector: [Float])] {
    guard let data = FileManager.default.contents(atPath: path),
          let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let prompts = o["prompts"] as? [[String: Any]] else {
        fail("could not read the embedding fixtures at \(path); run from the repository root or pass --fixtures")
    }
    return prompts.compactMap { p in
        guard let t = p["text"] as? String, let v = p["vector"] as? [NSNumber] else { return nil }
        return (t, v.map { $0.floatValue })
    }
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
        guard repeats >= 1 else { fail("--repeats must be at least 1.") }
        let embedder = loadEmbedder()
        let fx = embedFixtures(fixtures)
        // Accuracy.
        var minCos: Float = 1
        let got = reporting { try embedder.embed(fx.map(\.text)) }
        for (g, f) in zip(got, fx) { minCos = min(minCos, zip(g, f.vector).reduce(0) { $0 + $1.0 * $1.1 }) }
        // Sentences: the fixture prompts, cycled.
        let texts = (0..<sentences).map { fx[$0 % fx.count].text }
        let textFile = FileManager.default.temporaryDirectory.appendingPathComponent("hume-bench-embed-\(getpid()).txt")
        try texts.joined(separator: "\n").write(to: textFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: textFile) }
        var rates: [String: Double] = [:]
        for batch in [1, 32, 256] {
            var times: [Double] = []
            for _ in 0..<repeats {
                let t0 = Date()
                var i = 0
                while i < texts.count { _ = reporting { try embedder.embedFlat(Array(texts[i..<min(texts.count, i + batch)])) }; i += batch }
                times.append(Date().timeIntervalSince(t0))
            }
            rates["\(batch)"] = Double(texts.count) / median(times)
        }
        // The reference, when sentence-transformers is importable.
        let python = ProcessInfo.processInfo.environment["HUME_REFERENCE_PYTHON"] ?? "python3"
        var referenceRates: [String: Double]? = nil
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, reference, textFile.path, "--repeats", "\(repeats)"]
        let pipe = Pipe(); p.standardOutput = pipe; p.standardError = FileHandle.nullDevice
        if (try? p.run()) != nil {
            let out = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            if p.terminationStatus == 0, let o = try? JSONSerialization.jsonObject(with: out) as? [String: Double] { referenceRates = o }
        }
        var result: [String: Any] = ["sentences_per_s": rates, "min_cosine_vs_fixtures": Double(minCos), "fixtures": fx.count,
                                     "sentences": texts.count, "threads": 1]
        if let r = referenceRates {
            result["reference_sentences_per_s"] = r
            result["ratio"] = Dictionary(uniqueKeysWithValues: rates.compactMap { k, v in r[k].map { (k, v / $0) } })
        }
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print(String(format: "accuracy: min cosine %.6f over %d fixture prompts", minCos, fx.count))
        for b in ["1", "32", "256"] {
            var line = String(format: "batch %3@: %8.1f sentences/s", b, rates[b]!)
            if let r = referenceRates?[b] { line += String(format: "   reference %8.1f   ratio %.2f×", r, rates[b]! / r) }
            print(line)
        }
        if referenceRates == nil { print("reference: sentence-transformers not importable by \(python) (set HUME_REFERENCE_PYTHON)") }
    }
}

/// Peak single-precision FLOP/s of one core: FMA width × FMA units × clock (AVX2+FMA: 2 × 8 × 2 per cycle).
func peakFlopsPerCore() -> (flops: Double, note: String) {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let mhz = info.split(separator: "\n").first { $0.hasPrefix("cpu MHz") }.flatMap { Double($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) } ?? 2000
    let avx512 = info.contains(" avx512f"), fma = info.contains(" fma")
    let perCycle: Double = avx512 ? 64 : (fma ? 32 : 8)
    return (perCycle * mhz * 1e6, "\(Int(perCycle)) flop/cycle × \(Int(mhz)) MHz")
}

struct BenchDenoise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "denoise", abstract: "Seconds per generated image at 32² and 64² (median), FLOPs per image, fraction of peak.")

    @Option(help: "Database name.") var database = Database.defaultName
    @Option(name: .short, help: "Neighbours.") var k = 16
    @Option(help: "DDIM steps.") var steps = 20
    @Option(help: "Images per size (median).") var repeats = 5
    @Option(help: "Further denoise parameters as a JSON object, e.g. '{\"coherence\": 0, \"register\": false, \"patch_scale\": 1.5}'.")
    var settings = "{}"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard repeats >= 1 else { fail("--repeats must be at least 1.") }
        let base = reporting { try GenerateParameters(json: Array(settings.utf8)) }
        let db = openImages(database)
        let generator = Generator(images: db)
        let ids = Array(0..<k).map { ($0 * 97) % db.count }
        let peak = peakFlopsPerCore()
        var rows: [[String: Any]] = []
        for side in [32, 64] {
            var p = base; p.k = k; p.steps = steps; p.size = side
            var times: [Double] = []
            for r in 0..<repeats {
                p.seed = UInt64(r + 1)
                let t0 = Date()
                _ = reporting { try generator.stageImage(ids: ids, parameters: p) }
                times.append(Date().timeIntervalSince(t0))
            }
            let w = LocalDenoiserConfiguration.standard(imageSide: side).window
            let flops = LocalEquivariantDenoiser.flopsPerCall(window: w, images: k, pixels: side * side) * Double(steps)
            let s = median(times)
            rows.append(["size": side, "seconds_per_image": s, "flops_per_image": flops, "gflops": flops / s / 1e9,
                         "fraction_of_peak": flops / s / peak.flops, "window": w])
        }
        if json {
            let out: [String: Any] = ["k": k, "steps": steps, "repeats": repeats, "peak_flops_per_core": peak.flops, "results": rows]
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
            return
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
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard repeats >= 1 else { fail("--repeats must be at least 1.") }
        let stage: EditStage = reporting { try EditStage() }
        let db = openImages("emoji")
        let items = db.database.items
        let editor = Editor()
        let side = editor.side
        let peak = peakFlopsPerCore()
        var jobs: [(params: [UInt8], png: [UInt8])] = []
        for (n, (sourceCaption, text, _)) in EvalEdit.pairs.enumerated() {
            guard let sourceID = items.firstIndex(where: { $0.caption == sourceCaption }) else { fail("the emoji database has no \"\(sourceCaption)\"") }
            let png = reporting { try PNGCodec.encode(PixelImage(width: side, height: side, channels: 3, pixels: try db.rgb8(sourceID, side: side))) }
            jobs.append((JSON.object(["edit": .string(text), "caption": .string(sourceCaption), "database": .string("emoji"),
                                      "seed": JSON(n + 1)]).bytes, png))
        }
        _ = reporting { try runStages([stage], params: jobs[0].params, data: jobs[0].png) }   // load the model, database, index
        var times: [Double] = []
        for _ in 0..<repeats {
            for job in jobs {
                let t0 = Date()
                _ = reporting { try runStages([stage], params: job.params, data: job.png) }
                times.append(Date().timeIntervalSince(t0))
            }
        }
        // Denoiser calls: 2 per mask draw over k images each, then `steps` calls over 2k images (source + edit neighbours).
        let perImage = LocalEquivariantDenoiser.flopsPerCall(window: editor.configuration.window, images: 1, pixels: side * side)
        let flops = perImage * Double(2 * editor.maskDraws * editor.k + editor.steps * 2 * editor.k)
        let s = median(times)
        let out: [String: Any] = ["size": side, "k": editor.k, "edits": times.count, "seconds_per_edit": s,
                                  "flops_per_edit": flops, "gflops": flops / s / 1e9, "fraction_of_peak": flops / s / peak.flops,
                                  "peak_flops_per_core": peak.flops]
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "%d² edit: %.3f s/edit (median of %d, embedding and retrieval included), %.2f GFLOP of denoising per edit, %.2f GFLOP/s = %.1f%% of one core's peak (%@)",
                         side, s, times.count, flops / 1e9, flops / s / 1e9, 100 * flops / s / peak.flops, peak.note))
        }
    }
}
