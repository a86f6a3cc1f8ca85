import ArgumentParser
import Foundation
import HumeData
import HumeDenoiseStage
import HumeDiffusion
import HumeEmbed
import HumeEmbedStage

/// Loads the embedder or exits with one sentence.
func loadEmbedder() -> Embedder {
    Embedder.setBLASThreads(1)
    do { return try Embedder(modelDirectory: Embedder.defaultModelDirectory) } catch {
        fail("the MiniLM model could not be loaded from \(Embedder.defaultModelDirectory.path) (\(error)); run Ops/fetch-model.sh")
    }
}

func openDatabase(_ name: String) -> LocalDatabase {
    do { return try LocalDatabase(name: name) } catch let e as StageInputError { fail(e.message) } catch { fail("\(error)") }
}

func write(_ bytes: [UInt8], to path: String) {
    do { try Data(bytes).write(to: URL(fileURLWithPath: path)) } catch { fail("could not write \(path): \(error.localizedDescription)") }
}

func writePNG(_ path: String, width: Int, height: Int, channels: Int = 3, pixels: [UInt8]) {
    do { write(try PNGFile.encode(width: width, height: height, channels: channels, pixels: pixels), to: path) } catch {
        fail("could not encode \(path): \(error)")
    }
}

/// A contact sheet: rows of equally sized RGB8 tiles separated by a 2-pixel white gutter.
func contactSheet(rows: [[[UInt8]]], side: Int) -> (width: Int, height: Int, pixels: [UInt8]) {
    let gap = 2, columns = rows.map(\.count).max() ?? 1
    let w = columns * (side + gap) + gap, h = rows.count * (side + gap) + gap
    var out = [UInt8](repeating: 255, count: w * h * 3)
    for (r, row) in rows.enumerated() {
        for (c, tile) in row.enumerated() where tile.count == side * side * 3 {
            let x0 = gap + c * (side + gap), y0 = gap + r * (side + gap)
            for y in 0..<side {
                let dst = ((y0 + y) * w + x0) * 3
                out.replaceSubrange(dst..<(dst + side * 3), with: tile[(y * side * 3)..<((y + 1) * side * 3)])
            }
        }
    }
    return (w, h, out)
}

/// Text embedding without a fleet.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed", abstract: "Embed text lines (stdin or --file) with all-MiniLM-L6-v2.")

    @Option(help: "Read lines from this file instead of stdin.") var file: String?
    @Option(help: "jsonl (one JSON array per line) or npy (float32, N×384).") var format = "jsonl"
    @Option(help: "Write here instead of stdout (required for npy on a terminal).") var out: String?

    func run() throws {
        guard format == "jsonl" || format == "npy" else { fail("--format \(format) is not supported; use jsonl or npy") }
        let data: Data
        if let file {
            guard let d = FileManager.default.contents(atPath: file) else { fail("could not read --file \(file)") }
            data = d
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        let texts = lines.last == "" ? Array(lines.dropLast()) : lines
        let embedder = loadEmbedder()
        let flat = reporting { try embedder.embedFlat(texts) }
        let d = embedder.dimension
        var bytes: [UInt8]
        if format == "npy" {
            bytes = npyHeader(rows: texts.count, columns: d) + EmbedStage.littleEndianBytes(flat[...])
        } else {
            var s = ""
            for i in 0..<texts.count {
                s += "[" + flat[(i * d)..<((i + 1) * d)].map { "\($0)" }.joined(separator: ",") + "]\n"
            }
            bytes = Array(s.utf8)
        }
        if let out { write(bytes, to: out) } else { FileHandle.standardOutput.write(Data(bytes)) }
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

/// In-process retrieval + generation shared by `generate` and `eval generate`.
struct OneShot {
    let database: LocalDatabase
    let embedder: Embedder
    let index: CaptionIndex

    init(database name: String) {
        let db = openDatabase(name), e = loadEmbedder()
        database = db
        embedder = e
        index = reporting { try CaptionIndex(database: db, embed: { try e.embedFlat($0) }) }
    }

    func neighbours(_ text: String, k: Int, trainOnly: Bool = false) -> [Int] {
        let q = reporting { try embedder.embed(text) }
        let items = database.items
        return index.search(q, k: k, allowed: { !trainOnly || items[$0].split == "train" }).map(\.id)
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Generate one sticker for a prompt in one process (embed → retrieve → denoise).")

    @Argument(help: "The prompt.") var prompt: String
    @Option(help: "Database name.") var database = "emoji"
    @Option(name: .short, help: "Neighbours.") var k = 16
    @Option(help: "Seed.") var seed = 1
    @Option(help: "Side: 32 or 64.") var size = Generator.defaultSize
    @Option(help: "DDIM steps.") var steps = 20
    @Option(help: "γ: weight of the prompt's neighbours over a random background sample.") var guidance: Double?
    @Option(help: "Output PNG.") var out: String
    @Option(help: "Also write a sheet of the neighbours beside the result.") var sheet: String?

    func run() throws {
        guard !prompt.trimmingCharacters(in: .whitespaces).isEmpty else { fail("the prompt is empty; give a text such as \"a smiling sun\"") }
        let one = OneShot(database: database)
        let ids = one.neighbours(prompt, k: k)
        var params: [String: Any] = ["prompt": prompt, "database": database, "k": k, "seed": seed, "size": size, "steps": steps]
        if let guidance { params["guidance"] = guidance }
        let p = reporting { try GenerateParameters(json: [UInt8](try JSONSerialization.data(withJSONObject: params))) }
        let image = reporting { try Generator(database: one.database).stageImage(ids: ids, parameters: p) }
        writePNG(out, width: image.width, height: image.height, pixels: image.pixels)
        for id in ids { print("\(id)\t\(one.database.items[id].caption)") }
        if let sheet {
            let s = contactSheet(rows: [[image.pixels], ids.map { one.database.rgb8($0, side: size) }], side: size)
            writePNG(sheet, width: s.width, height: s.height, pixels: s.pixels)
        }
    }
}


/// Nearest real image by pixel L2 over a whole database at one side, in [0, 1] units.
struct PixelIndex {
    let count: Int, dims: Int
    let values: [Float]

    init(_ db: LocalDatabase, side: Int) {
        count = db.count; dims = side * side * 3
        var v = [Float](repeating: 0, count: count * dims)
        for i in 0..<count { for (j, b) in db.rgb8(i, side: side).enumerated() { v[i * dims + j] = Float(b) / 255 } }
        values = v
    }

    /// The nearest id and its RMSE.
    func nearest(_ rgb8: [UInt8], excluding: Set<Int> = []) -> (id: Int, rmse: Double) {
        let q = rgb8.map { Float($0) / 255 }
        var best = (id: -1, d: Float.infinity)
        values.withUnsafeBufferPointer { v in
            for i in 0..<count where !excluding.contains(i) {
                var s: Float = 0
                let base = i * dims
                for j in 0..<dims { let t = v[base + j] - q[j]; s += t * t }
                if s < best.d { best = (i, s) }
            }
        }
        return (best.id, (Double(best.d) / Double(dims)).squareRoot())
    }
}

struct EvalGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Label agreement and copy rate of generated stickers on held-out concepts, retrieved vs random neighbours.")

    @Option(help: "Database name.") var database = "emoji"
    @Option(help: "Prompts (a seeded subset of the held-out items' captions).") var count = 100
    @Option(name: .short, help: "Neighbours.") var k = 16
    @Option(help: "Side: 32 or 64.") var size = Generator.defaultSize
    @Option(help: "DDIM steps.") var steps = 20
    @Option(help: "γ over a random background sample (absent: none).") var guidance: Double?
    @Option(help: "A sample is a copy when its RMSE to the nearest real image is below this ([0,1] units).") var copyThreshold = 0.05
    @Option(help: "Contact sheet PNG (rows: sample, then neighbours); prompts go to <sheet>.txt.") var sheet = "eval-generate.png"
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let one = OneShot(database: database)
        let db = one.database
        var rng = SeededRandom(seed: 20241123)
        var test = db.items.filter { $0.split == "test" }.map(\.id)
        for i in stride(from: test.count - 1, to: 0, by: -1) { test.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        let prompts = Array(test.prefix(count))
        let train = db.items.filter { $0.split == "train" }.map(\.id)
        let pixels = PixelIndex(db, side: size)
        let generator = Generator(database: db)
        var agree = 0, agreeRandom = 0, copies = 0, copiesRandom = 0
        var rows: [[[UInt8]]] = [], captions: [String] = []
        let start = Date()
        for (n, id) in prompts.enumerated() {
            let item = db.items[id]
            let ids = one.neighbours(item.caption, k: k, trainOnly: true)
            var randomIDs: [Int] = []
            while randomIDs.count < k { let r = train[Int(rng.next() % UInt64(train.count))]; if !randomIDs.contains(r) { randomIDs.append(r) } }
            var p = GenerateParameters()
            p.prompt = item.caption; p.database = database; p.k = k; p.seed = UInt64(n + 1); p.size = size; p.steps = steps
            p.guidance = guidance
            let sample = reporting { try generator.stageImage(ids: ids, parameters: p) }.pixels
            let sampleRandom = reporting { try generator.stageImage(ids: randomIDs, parameters: p) }.pixels
            let near = pixels.nearest(sample), nearRandom = pixels.nearest(sampleRandom)
            if db.items[near.id].subgroup == item.subgroup { agree += 1 }
            if db.items[nearRandom.id].subgroup == item.subgroup { agreeRandom += 1 }
            if near.rmse < copyThreshold { copies += 1 }
            if nearRandom.rmse < copyThreshold { copiesRandom += 1 }
            if rows.count < 24 {
                rows.append([sample] + ids.prefix(8).map { db.rgb8($0, side: size) })
                captions.append("\(item.caption) [\(item.subgroup)] → nearest: \(db.items[near.id].caption) [\(db.items[near.id].subgroup)] rmse \(String(format: "%.3f", near.rmse))")
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let s = contactSheet(rows: rows, side: size)
        writePNG(sheet, width: s.width, height: s.height, pixels: s.pixels)
        try? captions.joined(separator: "\n").appending("\n").write(toFile: sheet + ".txt", atomically: true, encoding: .utf8)
        let total = Double(max(1, prompts.count))
        let result: [String: Any] = [
            "database": database, "prompts": prompts.count, "k": k, "size": size, "steps": steps,
            "label_agreement": Double(agree) / total, "label_agreement_random": Double(agreeRandom) / total,
            "copy_rate": Double(copies) / total, "copy_rate_random": Double(copiesRandom) / total,
            "copy_threshold_rmse": copyThreshold, "seconds": seconds, "sheet": sheet,
        ]
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "%d held-out prompts, k=%d, %d², %d steps: label agreement %.3f (random neighbours %.3f), copy rate %.3f (random %.3f), %.0f s; sheet %@",
                         prompts.count, k, size, steps, Double(agree) / total, Double(agreeRandom) / total,
                         Double(copies) / total, Double(copiesRandom) / total, seconds, sheet))
        }
    }
}

struct EditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit", abstract: "Edit a sticker by text in one process: DiffEdit-style mask, transplant, harmonise.")

    @Argument(help: "Source PNG.") var source: String
    @Argument(help: "The edit text, e.g. \"with sunglasses\".") var text: String
    @Option(help: "Database name.") var database = "emoji"
    @Option(help: "The source's caption (else its neighbours are the nearest images by pixels).") var caption: String?
    @Option(name: .short, help: "Neighbours per side.") var k = 8
    @Option(help: "Seed.") var seed = 1
    @Option(help: "Output PNG.") var out: String
    @Option(help: "Mask PNG.") var mask: String?
    @Option(help: "Sheet: source, mask, result, transplant neighbour.") var sheet: String?

    func run() throws {
        guard let bytes = FileManager.default.contents(atPath: source) else { fail("could not read the source image \(source)") }
        let decoded = reporting { try PNGFile.decodeRGB([UInt8](bytes)) }
        var editor = Editor(); editor.k = k
        let one = OneShot(database: database)
        let src = reporting { try RGBImage(width: editor.side, height: editor.side,
                                            rgb8: Editor.resize(decoded.pixels, width: decoded.width, height: decoded.height, to: editor.side)) }
        let sourceIDs = caption.map { one.neighbours($0, k: k) } ?? editor.nearestByPixels(src, database: one.database)
        let editIDs = one.neighbours(text, k: k)
        let r = reporting { try editor.edit(source: src, sourceIDs: sourceIDs, editIDs: editIDs, database: one.database, seed: UInt64(seed)) }
        let side = editor.side
        writePNG(out, width: side, height: side, pixels: r.image.rgb8())
        if let mask { writePNG(mask, width: side, height: side, channels: 1, pixels: r.mask) }
        let covered = Double(r.mask.filter { $0 > 0 }.count) / Double(side * side)
        print(String(format: "mask covers %.0f%%; transplanted from %d (%@)", 100 * covered, r.transplantID, one.database.items[r.transplantID].caption))
        if let sheet {
            let maskRGB = r.mask.flatMap { [$0, $0, $0] }
            let s = contactSheet(rows: [[src.rgb8(), maskRGB, r.image.rgb8(), one.database.rgb8(r.transplantID, side: side)]], side: side)
            writePNG(sheet, width: s.width, height: s.height, pixels: s.pixels)
        }
    }
}

/// `hume eval edit`: a fixed list of (source, edit) pairs; success = the masked crop's nearest real image (L2 over
/// the masked pixels only, whole database, source image excluded) has the edit target's subgroup.
struct EvalEdit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edit", abstract: "Edit success on a fixed list of (image, edit) pairs, with a source/mask/result sheet.")

    @Option(help: "Sheet PNG (rows: source, mask, result, transplant).") var sheet = "eval-edit.png"
    @Flag(help: "Print JSON.") var json = false

    /// (source caption, edit text, target caption): the target's subgroup is what the edit should produce.
    static let pairs: [(String, String, String)] = [
        ("grinning face", "smiling face with sunglasses", "smiling face with sunglasses"),
        ("grinning face", "face with medical mask", "face with medical mask"),
        ("slightly smiling face", "smiling face with heart-eyes", "smiling face with heart-eyes"),
        ("grinning face", "cowboy hat face", "cowboy hat face"),
        ("slightly smiling face", "nerd face", "nerd face"),
        ("neutral face", "zipper-mouth face", "zipper-mouth face"),
        ("slightly smiling face", "face with tears of joy", "face with tears of joy"),
        ("red apple", "green apple", "green apple"),
        ("grinning face", "smiling face with halo", "smiling face with halo"),
        ("neutral face", "sleeping face", "sleeping face"),
    ]

    func run() throws {
        let one = OneShot(database: "emoji")
        let db = one.database
        let editor = Editor()
        let side = editor.side
        let all = (0..<db.count).map { db.rgb8($0, side: side) }
        var rows: [[[UInt8]]] = [], successes = 0, lines: [String] = [], coverage: [Double] = []
        for (n, (sourceCaption, text, target)) in EvalEdit.pairs.enumerated() {
            guard let sourceID = db.items.firstIndex(where: { $0.caption == sourceCaption }),
                  let targetID = db.items.firstIndex(where: { $0.caption == target }) else { fail("the emoji database has no \"\(sourceCaption)\" or \"\(target)\"") }
            let source = reporting { try db.image(sourceID, side: side) }
            let r = reporting { try editor.edit(source: source, sourceIDs: one.neighbours(sourceCaption, k: editor.k),
                                                editIDs: one.neighbours(text, k: editor.k), database: db, seed: UInt64(n + 1)) }
            let out = r.image.rgb8()
            var best = (id: -1, d: Int.max)
            for (i, img) in all.enumerated() where i != sourceID {
                var d = 0
                for p in 0..<(side * side) where r.mask[p] > 0 { for c in 0..<3 { let t = Int(img[3 * p + c]) - Int(out[3 * p + c]); d += t * t } }
                if d < best.d { best = (i, d) }
            }
            let ok = best.id >= 0 && db.items[best.id].subgroup == db.items[targetID].subgroup
            if ok { successes += 1 }
            coverage.append(Double(r.mask.filter { $0 > 0 }.count) / Double(side * side))
            lines.append("\(sourceCaption) + \(text): mask \(Int(100 * coverage.last!))%, crop nearest \(db.items[best.id].caption) [\(db.items[best.id].subgroup)], target [\(db.items[targetID].subgroup)] \(ok ? "ok" : "no")")
            rows.append([source.rgb8(), r.mask.flatMap { [$0, $0, $0] }, out, db.rgb8(r.transplantID, side: side)])
        }
        let s = contactSheet(rows: rows, side: side)
        writePNG(sheet, width: s.width, height: s.height, pixels: s.pixels)
        let rate = Double(successes) / Double(EvalEdit.pairs.count)
        if json {
            let o: [String: Any] = ["pairs": EvalEdit.pairs.count, "edit_success": rate,
                                    "mean_mask_coverage": coverage.reduce(0, +) / Double(coverage.count), "sheet": sheet]
            print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
        } else {
            lines.forEach { print($0) }
            print(String(format: "edit success %.2f over %d pairs; sheet %@", rate, EvalEdit.pairs.count, sheet))
        }
    }
}
