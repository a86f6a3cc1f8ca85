import ArgumentParser
import Foundation
import HumeCore
import HumeStages
import HumeData
import HumeDenoiseStage
import HumeDiffusion
import HumeEditStage
import HumeEmbed
import HumeEmbedStage
import HumeRetrieveStage
import HumeEvaluation
import HumeSearch
import HumeWorker

/// Loads the embedder with BLAS capped to `threads`, or one sentence saying how to get it (`modelUnavailable`).
func loadEmbedder(threads: Int = 1) throws -> Embedder {
    Embedder.setBLASThreads(threads)
    do { return try Embedder(modelDirectory: humePaths.model) } catch { throw modelUnavailable(error) }
}

/// A database's manifest and image stores.
func openImages(_ name: String) throws -> DatabaseImages {
    try DatabaseImages(named: name, root: humePaths.databases)
}

func write(_ bytes: [UInt8], to path: String) throws {
    do { try Data(bytes).write(to: URL(fileURLWithPath: path)) } catch { throw CLIFailure("could not write \(path): \(error.localizedDescription)") }
}

/// Writes RGB8 (`channels` 3) or gray (`channels` 1, written as RGB) pixels as a PNG.
func writePNG(_ path: String, width: Int, height: Int, channels: Int = 3, pixels: [UInt8]) throws {
    let rgb = channels == 1 ? pixels.flatMap { [$0, $0, $0] } : pixels
    try write(try PNGCodec.encode(PixelImage(width: width, height: height, channels: 3, pixels: rgb)), to: path)
}

func saveSheet(_ path: String, rows: [[[UInt8]]], side: Int) throws {
    try HumeEvaluation.writeSheet(path, rows: rows, side: side)
}

/// The integers of a metadata array.
func ints(_ v: Any?) -> [Int] { (v as? [Any] ?? []).compactMap { ($0 as? NSNumber)?.intValue } }

func metadataObject(_ image: StageImage) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(image.metadata))) as? [String: Any] ?? [:]
}

/// Text embedding without a fleet.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed", abstract: "Embed text lines (stdin or --file) with all-MiniLM-L6-v2.")

    @Option(help: "Read lines from this file instead of stdin.") var file: String?
    @Option(help: "jsonl (one JSON array per line) or npy (float32, N×384).") var format = "jsonl"
    @Option(help: "Write here instead of stdout (required for npy on a terminal).") var out: String?

    func run() throws {
        guard format == "jsonl" || format == "npy" else { throw CLIFailure("--format \(format) is not supported; use jsonl or npy") }
        let data: Data
        if let file {
            let d = try UserFile.read(file, what: "--file")
            data = d
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        let texts = lines.last == "" ? Array(lines.dropLast()) : lines
        let embedder = try loadEmbedder()
        // Emoji read as their names, as the embed stage reads them (PROTOCOL.md §11.1).
        let flat = try embedder.embedFlat(texts.map { EmojiNames.shared.spell($0) })
        let d = embedder.dimension
        var bytes: [UInt8]
        if format == "npy" {
            bytes = npyHeader(rows: texts.count, columns: d) + EmbedOutput(vector: flat, text: "").encoded()
        } else {
            var s = ""
            for i in 0..<texts.count {
                s += "[" + flat[(i * d)..<((i + 1) * d)].map { "\($0)" }.joined(separator: ",") + "]\n"
            }
            bytes = Array(s.utf8)
        }
        if let out { try write(bytes, to: out) } else { FileHandle.standardOutput.write(Data(bytes)) }
    }
}

/// A .npy v1.0 header for a little-endian float32 C-order (rows, columns) array, padded to 64 bytes.
func npyHeader(rows: Int, columns: Int) -> [UInt8] {
    var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
    let unpadded = 10 + dict.utf8.count + 1
    dict += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    let n = dict.utf8.count
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(dict.utf8)
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate one sticker for a prompt in one process: the embed, retrieve and denoise stages' own code, chained.")

    @Argument(help: "The prompt.") var prompt: String
    @Option(help: "Seed (0 or more).") var seed = 1
    @OptionGroup var options: GenerateOptions
    @Option(help: "Output PNG (the metadata JSON is in its tEXt chunk \"hume\").") var out: String
    @Option(help: "Also write a sheet of the neighbours beside the result.") var sheet: String?

    func validate() throws {
        guard !prompt.allSatisfy(\.isWhitespace) else { throw ValidationError("The prompt is empty; give a text such as \"a smiling sun\".") }
        guard seed >= 0 else { throw ValidationError("--seed must be 0 or more, got \(seed).") }
    }

    func run() throws {
        // The same job a client would submit with route embed,retrieve,denoise: the prompt as data, settings as params.
        var p = options.parameters
        p.seed = UInt64(seed)
        let database = p.database, size = p.size
        let embed: EmbedStage
        do { embed = try EmbedStage(modelDirectory: humePaths.model, batchSize: 1) } catch { throw modelUnavailable(error) }
        let retrieve = RetrieveStage(root: humePaths.databases, batchSize: 1), denoise = DenoiseStage(root: humePaths.databases)
        let body = try runStages([embed, retrieve, denoise], params: p.object.bytes, data: Array(prompt.utf8))
        let image = try StageImage(decoding: body)
        try write(image.png(), to: out)
        let ids = ints(metadataObject(image)["neighbours"])
        let images = try denoise.generator(for: database).images
        for id in ids { print("\(id)\t\(images.database.items[id].caption)") }
        if let sheet {
            try saveSheet(sheet, rows: [[image.pixels], ids.map { id in try images.rgb8(id, side: size) }], side: size)
        }
    }
}

extension PromptSet: ExpressibleByArgument {}

struct EvalGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Label agreement and copy rate of generated stickers on held-out concepts, retrieved vs random neighbours.")

    @Option(help: "Prompts: `concepts` (one per held-out concept, its base caption: each concept counts once) or `items` (every held-out item, so a concept with 25 skin-tone variants counts 25 times).")
    var prompts: PromptSet = .concepts
    @Option(help: "At most this many prompts (a seeded subset; absent: all).") var count: Int?
    @OptionGroup var options: GenerateOptions
    @Option(help: "A sample is a copy when its RMSE to the nearest real image, or to one of its neighbours shifted by up to --copy-shift pixels, is below this ([0,1] units).") var copyThreshold = 0.05
    @Option(help: "Shifts (pixels, each axis) under which a sample still counts as a copy of a neighbour.") var copyShift = 2
    @Option(help: "Samples per prompt: sample j (0-based) of prompt n uses seed n + 1 + j·prompts, so 1 gives the single-sample numbers; rates are means over all samples.") var seeds = 1
    @Option(help: "Contact sheet PNG (rows: sample, then neighbours); prompts go to <sheet>.txt.") var sheet = "eval-generate.png"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        var evaluation = HeldOutEvaluation(parameters: options.parameters, root: humePaths.databases,
                                           modelDirectory: humePaths.model)
        evaluation.promptSet = prompts
        evaluation.count = count
        evaluation.copyThreshold = copyThreshold
        evaluation.copyShift = copyShift
        evaluation.seeds = seeds
        evaluation.sheet = sheet
        let r = try evaluation.run()
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "%d held-out prompts × %d seeds, k=%d, %d², %d steps: label agreement %.3f (random neighbours %.3f), copy rate %.3f (random %.3f), %.0f s; sheet %@",
                         r["prompts"] as! Int, seeds, options.k, options.size, options.steps, r["label_agreement"] as! Double,
                         r["label_agreement_random"] as! Double, r["copy_rate"] as! Double, r["copy_rate_random"] as! Double,
                         r["seconds"] as! Double, sheet))
        }
    }
}

struct EditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit",
        abstract: "Edit a sticker by text in one process (the edit stage's own code): DiffEdit-style mask, transplant, harmonise.")

    @Argument(help: "Source picture, PNG or JPEG.") var source: String
    @Argument(help: "The edit text, e.g. \"with sunglasses\".") var text: String
    @Option(help: "Database name.") var database = "emoji"
    @Option(help: "The source's caption (else its neighbours are the nearest images by pixels).") var caption: String?
    @Option(name: .short, help: "Neighbours per side.") var k = 8
    @Option(help: "Seed.") var seed = 1
    @Option(help: "Working side: 32, 64 or 128 (default \(Editor().side)).") var size: Int?
    @Option(help: "Output PNG (the metadata JSON is in its tEXt chunk \"hume\").") var out: String
    @Option(help: "Mask PNG.") var mask: String?
    @Option(help: "Sheet: source, mask, result, transplant neighbour.") var sheet: String?

    func run() throws {
        let bytes = try UserFile.read(source, what: "the source image")
        // The same job a client would submit with route edit: the picture as data, the edit as params.
        var params: [String: JSON] = ["edit": .string(text), "database": .string(database), "k": JSON(k), "seed": JSON(seed)]
        if let caption { params["caption"] = .string(caption) }
        if let size { params["size"] = JSON(size) }
        let stage: EditStage
        do { stage = try EditStage(modelDirectory: humePaths.model, root: humePaths.databases) } catch { throw modelUnavailable(error) }
        let body = try runStages([stage], params: JSON.object(params).bytes, data: [UInt8](bytes))
        let image = try StageImage(decoding: body)
        let side = image.width
        try write(image.png(), to: out)
        let maskPixels = image.mask?.pixels ?? []
        if let mask { try writePNG(mask, width: side, height: side, channels: 1, pixels: maskPixels) }
        let meta = metadataObject(image)
        // A recolour transplants nothing: its metadata names the colour and `transplant` is null.
        let transplant = (meta["transplant"] as? NSNumber)?.intValue
        let db = try openImages(database)
        let covered = Double(maskPixels.filter { $0 > 0 }.count) / Double(side * side)
        if let t = transplant {
            print(String(format: "mask covers %.0f%%; transplanted from %d (%@)", 100 * covered, t, db.database.items[t].caption))
        } else {
            print(String(format: "mask covers %.0f%%; recoloured %@, nothing transplanted", 100 * covered, (meta["recolour"] as? String) ?? "?"))
        }
        if let sheet {
            let decoded = try EditStage.decodeSource([UInt8](bytes))
            let src = Editor.resize(decoded.pixels, width: decoded.width, height: decoded.height, to: side)
            // The last column is the transplanted neighbour, or the source again for a recolour.
            try saveSheet(sheet, rows: [[src, maskPixels.flatMap { [$0, $0, $0] }, image.pixels, try transplant.map { try db.rgb8($0, side: side) } ?? src]],
                       side: side)
        }
    }
}

/// `hume eval edit`: a fixed list of (picture, edit) pairs; success without labels (`EditEvaluation`): the result is
/// closer than the source to the retriever's first picture for "caption + edit", and the masked region changed.
struct EvalEdit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit", abstract: "Edit success on a fixed list of (picture, edit) pairs, with a source/mask/result/target sheet.")

    @Option(help: "Edit list (JSONL: database, source caption, edit); default Ops/eval/edits.jsonl.") var pairs: String?
    @Option(help: "Working side: 32, 64 or 128.") var size = Editor().side
    @Option(help: "Sheet PNG (rows: source, mask, result, target).") var sheet = "eval-edit.png"
    @Flag(help: "Send the jobs without the source's caption (the editor then knows each source by its pixels alone).")
    var noCaption = false
    @Option(help: "Side the RMSEs are compared at, box-downsampled: 32, 64 or 128, at most --size (default: --size, as the measure is defined).")
    var compareSide: Int?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard GenerateParameters.sizes.contains(size) else { throw ValidationError("--size must be 32, 64 or 128.") }
        if let c = compareSide, !GenerateParameters.sizes.contains(c) || c > size {
            throw ValidationError("--compare-side must be 32, 64 or 128 and at most --size (\(size)).")
        }
    }

    func run() throws {
        var evaluation = EditEvaluation(pairs: try EditEvaluation.load(pairs ?? EditEvaluation.defaultList(executable: CommandLine.arguments[0])),
                                        root: humePaths.databases, modelDirectory: humePaths.model)
        evaluation.sheet = sheet
        evaluation.side = size
        evaluation.captions = !noCaption
        evaluation.compareSide = compareSide
        let (result, lines) = try evaluation.run()
        if json { return try printJSON(result) }
        lines.forEach { print($0) }
        print(String(format: "edit success %.2f over %d pairs at %d²; mean mask coverage %.2f; largest change outside the mask %d; sheet %@",
                     result["edit_success"] as! Double, result["pairs"] as! Int, size, result["mean_mask_coverage"] as! Double,
                     result["outside_change"] as! Int, sheet))
    }
}
