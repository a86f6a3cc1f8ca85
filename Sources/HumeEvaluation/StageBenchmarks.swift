import Foundation
import HumeCore
import HumeData
import HumeDenoiseStage
import HumeDiffusion
import HumeEditStage
import HumeEmbed
import HumeStages

/// Peak single-precision FLOP/s of one core: FMA width × FMA units × clock (AVX2+FMA: 2 × 8 × 2 per cycle).
public func peakFlopsPerCore() -> (flops: Double, note: String) {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    /// The first core's value of a cpuinfo field.
    func field(_ name: String) -> String? {
        info.split(separator: "\n").first { $0.hasPrefix(name) }.map { $0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces) }
    }
    let mhz = field("cpu MHz").flatMap(Double.init) ?? 2000
    let avx512 = info.contains(" avx512f"), fma = info.contains(" fma")
    // AMD's family 19h (Zen 3 and Zen 4) has two 256-bit FMA pipes: Zen 4 runs AVX-512 on them in two halves, so its
    // single-precision peak is 32 flop/cycle like AVX2's, not the 64 of two 512-bit units.
    let family = field("cpu family").flatMap { Int($0) }
    let halfPumped = info.contains("AuthenticAMD") && family == 0x19
    let perCycle: Double = avx512 && !halfPumped ? 64 : (fma ? 32 : 8)
    return (perCycle * mhz * 1e6, "\(Int(perCycle)) flop/cycle × \(Int(mhz)) MHz")
}

/// Seconds per generated image at 32² and 64² (median), FLOPs per image, fraction of peak (`hume bench denoise`).
public struct DenoiseBenchmark {
    public var images: DatabaseImages
    /// The settings; `k`, `steps`, `size` and `seed` are set per measurement.
    public var parameters = GenerateParameters()
    public var k = 16, steps = 20, repeats = 5

    public init(images: DatabaseImages) { self.images = images }

    /// One row per side: `size`, `seconds_per_image`, `flops_per_image` (useful: the neighbours a sample is made from,
    /// every level), `gflops`, `fraction_of_peak`, `window`, `levels`, `neighbours_used`,
    /// `fraction_of_peak_with_padding_lanes` (counting the kernel's 8-lane groups in full when neighbours are in lanes).
    public func run() throws -> [[String: Any]] {
        guard repeats >= 1 else { throw HumeError(.invalidInput, "--repeats must be at least 1.") }
        let generator = Generator(images: images)
        let ids = Array(0..<k).map { ($0 * 97) % images.count }
        let peak = peakFlopsPerCore()
        var rows: [[String: Any]] = []
        for side in GenerateParameters.sizes {
            var p = parameters; p.k = k; p.steps = steps; p.size = side
            var times: [Double] = []
            var usedCount = k
            for r in 0..<repeats {
                p.seed = UInt64(r + 1)
                let t0 = Date()
                let image = try generator.stageImage(ids: ids, parameters: p)
                times.append(Date().timeIntervalSince(t0))
                let meta = (try? JSONSerialization.jsonObject(with: Data(image.metadata))) as? [String: Any]
                usedCount = (meta?["used"] as? [Int])?.count ?? k
            }
            // Useful work: the neighbours the sample was made from (after margin and coherence), at every level.
            var flops = 0.0, computed = 0.0, levels: [[String: Any]] = []
            var level = p
            while true {
                let coarse = Generator.coarseSide(for: level.size)
                let w = Generator.configuration(level).window
                let n = coarse == nil ? level.steps : level.refineSteps
                flops += LocalEquivariantDenoiser.flopsPerCall(window: w, images: usedCount, pixels: level.size * level.size) * Double(n)
                let lanes = usedCount <= LocalEquivariantDenoiser.pixelLaneLimit ? usedCount : (usedCount + 7) / 8 * 8
                computed += LocalEquivariantDenoiser.flopsPerCall(window: w, images: lanes, pixels: level.size * level.size) * Double(n)
                levels.append(["size": level.size, "window": w, "steps": n])
                guard let c = coarse else { break }
                level.size = c
            }
            let s = median(times)
            rows.append(["size": side, "seconds_per_image": s, "flops_per_image": flops, "gflops": flops / s / 1e9,
                         "fraction_of_peak": flops / s / peak.flops, "window": levels[0]["window"]!, "levels": levels.reversed() as [[String: Any]],
                         "neighbours_used": usedCount,
                         // Above `pixelLaneLimit` neighbours the kernel computes them in SIMD lanes of 8: padding lanes
                         // are work, not useful work (at or below it, lanes run over pixels and nothing is padding).
                         "fraction_of_peak_with_padding_lanes": computed / s / peak.flops])
        }
        return rows
    }
}

/// Seconds per edit through the edit stage (median over the edit list's pairs), FLOPs per edit, fraction of peak
/// (`hume bench edit`).
public struct EditBenchmark {
    public var repeats = 3
    public var pairs: [EditPair]
    public var side = Editor().side
    public var root: URL
    public var modelDirectory: URL

    public init(pairs: [EditPair], root: URL, modelDirectory: URL) {
        self.pairs = pairs
        self.root = root
        self.modelDirectory = modelDirectory
    }

    public func run() throws -> [String: Any] {
        guard repeats >= 1 else { throw HumeError(.invalidInput, "--repeats must be at least 1.") }
        let stage = try EditStage(modelDirectory: modelDirectory, root: root)
        var editor = Editor()
        editor.side = side
        let peak = peakFlopsPerCore()
        let jobs = try EditEvaluation.jobs(pairs, side: side, root: root)
        _ = try runStages([stage], params: jobs[0].params, data: jobs[0].png)   // load the model, database, index
        var times: [Double] = []
        for _ in 0..<repeats {
            for job in jobs {
                let t0 = Date()
                _ = try runStages([stage], params: job.params, data: job.png)
                times.append(Date().timeIntervalSince(t0))
            }
        }
        // Denoiser calls: 2 per mask draw over k images each (at the mask's side), then the harmonising pass's steps over 2k images
        // (source + edit neighbours) at the working side.
        var maskEditor = editor
        maskEditor.side = min(side, editor.maskSide)
        let perImage = LocalEquivariantDenoiser.flopsPerCall(window: editor.harmonising.window, images: 1, pixels: side * side)
        let perMaskImage = LocalEquivariantDenoiser.flopsPerCall(window: maskEditor.configuration.window, images: 1,
                                                                 pixels: maskEditor.side * maskEditor.side)
        let flops = perMaskImage * Double(2 * editor.maskDraws * editor.k) + perImage * Double(editor.harmonisingSteps * 2 * editor.k)
        let s = median(times)
        return ["size": side, "k": editor.k, "edits": times.count, "seconds_per_edit": s,
                "flops_per_edit": flops, "gflops": flops / s / 1e9, "fraction_of_peak": flops / s / peak.flops,
                "peak_flops_per_core": peak.flops]
    }
}

/// Sentences/s of the embedder at batch 1, 32 and 256 on one thread, its accuracy against the fixtures, and the
/// reference (sentence-transformers, when importable) in the same run (`hume bench embed`).
public struct EmbedBenchmark {
    public var fixtures = "Tests/HumeEmbedTests/Fixtures/embeddings.json"
    public var sentences = 512, repeats = 3
    public var reference = "Ops/bench-embed-reference.py"
    /// The Python that runs the reference.
    public var python = "python3"
    public var modelDirectory: URL

    public init(modelDirectory: URL) { self.modelDirectory = modelDirectory }

    /// The fixtures' prompts and reference vectors.
    static func load(_ path: String) throws -> [(text: String, vector: [Float])] {
        guard let data = FileManager.default.contents(atPath: path),
              let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let prompts = o["prompts"] as? [[String: Any]] else {
            throw HumeError(.invalidInput, "could not read the embedding fixtures at \(path); run from the repository root or pass --fixtures")
        }
        return prompts.compactMap { p in
            guard let t = p["text"] as? String, let v = p["vector"] as? [NSNumber] else { return nil }
            return (t, v.map { $0.floatValue })
        }
    }

    public func run() throws -> [String: Any] {
        guard repeats >= 1 else { throw HumeError(.invalidInput, "--repeats must be at least 1.") }
        Embedder.setBLASThreads(1)
        let embedder = try Embedder(modelDirectory: modelDirectory)
        let fx = try Self.load(fixtures)
        // Accuracy.
        var minCos: Float = 1
        let got = try embedder.embed(fx.map(\.text))
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
                while i < texts.count { _ = try embedder.embedFlat(Array(texts[i..<min(texts.count, i + batch)])); i += batch }
                times.append(Date().timeIntervalSince(t0))
            }
            rates["\(batch)"] = Double(texts.count) / median(times)
        }
        // The reference, when sentence-transformers is importable.
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
        return result
    }
}
