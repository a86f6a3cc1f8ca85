import Foundation
import HumeCore
import HumeData
import HumeDiffusion
import HumeEditStage
import HumeEval
import HumeEmbedStage
import HumeRetrieveStage
import HumeStages

/// One line of an edit list (`Ops/eval/edits.jsonl`): a database picture, named by its exact caption, what a person
/// asks to change, and optionally `targets`: the captions of the pictures in that database a person would accept as the
/// edit done (named by hand when the list was written, as the fidelity lists name their concepts; empty when the
/// database holds no picture of the result, "a grinning face with a bow tie").
///
/// A pair may take its source from another database (`source_database`, and `source_style` to pick one drawing among
/// several of that caption in `emoji-styles`): a picture from elsewhere, edited with the pair's database, as a user's
/// own sticker is. Its caption is still named, for `--no-caption` runs to leave out.
public struct EditPair: Sendable, Equatable {
    public var database: String
    public var source: String
    public var edit: String
    public var targets: [String]? = nil
    public var sourceDatabase: String? = nil
    public var sourceStyle: String? = nil

    /// Parses a JSON Lines list; a bad line is one sentence naming the file and line.
    public static func parseList(_ text: String, file: String) throws -> [EditPair] {
        var out: [EditPair] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let o = try? JSON.parse(Array(line.utf8), what: "edit pair"), let d = o["database"]?.string, !d.isEmpty,
                  let src = o["source"]?.string, !src.isEmpty, let e = o["edit"]?.string, !e.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw HumeError(.invalidInput, "\(file) line \(n + 1) is not an object with non-empty \"database\", \"source\" and \"edit\" strings.")
            }
            var targets: [String]?
            if let t = o["targets"] {
                guard let list = t.array, list.allSatisfy({ $0.string != nil }) else {
                    throw HumeError(.invalidInput, "\(file) line \(n + 1): \"targets\" must be a list of captions.")
                }
                targets = list.compactMap(\.string)
            }
            for key in ["source_database", "source_style"] where o[key] != nil && o[key]?.string?.isEmpty != false {
                throw HumeError(.invalidInput, "\(file) line \(n + 1): \"\(key)\" must be a non-empty string.")
            }
            out.append(EditPair(database: d, source: src, edit: e, targets: targets, sourceDatabase: o["source_database"]?.string,
                                sourceStyle: o["source_style"]?.string))
        }
        guard !out.isEmpty else { throw HumeError(.invalidInput, "\(file) holds no edit pairs.") }
        return out
    }
}

/// Edit success on a fixed list of (picture, edit text) pairs (`hume eval edit`), defined without database labels.
///
/// The edit's **target** is the database picture the retriever puts first for the text "source caption + edit"
/// (another picture than the source; "grinning face with a bow tie", "A red apple. make it green"). An edit
/// **succeeds** when the result is closer to the target than the source was, by at least 5% (RMSE on RGB in [0, 1] at
/// the working side) and its masked region changed (mean absolute change there above 0.02); every pixel outside the mask must be
/// the source's (`outside_change`, which must be 0). Each pair goes through the edit stage as an edit job.
///
/// The retriever's target is wrong for about one pair in five ("grinning cat with heart eyes" finds the grinning cat
/// with smiling eyes), and the editor's own addition search now uses that query. So pairs whose
/// list line names `targets` are also scored against those (`edit_success_named`): the same rule with the named picture
/// nearest the result; a pair whose database holds no picture of the result (`targets` empty) counts as failed.
public struct EditEvaluation {
    /// The list (`Ops/eval/edits.jsonl`).
    public var pairs: [EditPair]
    /// The working side (the edit job's `size`).
    public var side = Editor().side
    /// The side the RMSEs are taken at (box-downsampled), nil: the working side, as the measure is defined. 32 reads the
    /// result as issue 15's fidelity metrics do, blind to the one-pixel offsets between two drawings' outlines that
    /// dominate the RMSE at 128².
    public var compareSide: Int?
    /// The sheet PNG (rows: source, mask, result, target).
    public var sheet = "eval-edit.png"
    /// Whether each job carries its source's caption; without, the editor knows the source by its pixels alone, as it
    /// does a picture of a user's own sent without one.
    public var captions = true
    public var root: URL
    public var modelDirectory: URL

    public init(pairs: [EditPair], root: URL, modelDirectory: URL) {
        self.pairs = pairs
        self.root = root
        self.modelDirectory = modelDirectory
    }

    /// `Ops/eval/edits.jsonl`, looked for under the working directory, then beside the executable's checkout.
    public static func defaultList(executable: String) -> String {
        let candidates = [URL(fileURLWithPath: "Ops/eval/edits.jsonl"),
                          URL(fileURLWithPath: executable).resolvingSymlinksInPath()
                              .deletingLastPathComponent().appendingPathComponent("../../../Ops/eval/edits.jsonl")]
        return (candidates.first { FileManager.default.fileExists(atPath: $0.path) } ?? candidates[0]).standardizedFileURL.path
    }

    /// Reads a pair list.
    public static func load(_ path: String) throws -> [EditPair] {
        let text = try UserFile.text(path, what: "the edit list")
        return try EditPair.parseList(text, file: path)
    }

    /// The success rule: the result at least 5% nearer the target than the source was (RMSE), and its masked region
    /// changed (mean absolute change above 0.02).
    static func succeeds(before: Double, after: Double, changed: Double) -> Bool {
        after < 0.95 * before && changed > 0.02
    }

    /// The edit jobs of `pairs`: params, the source as a PNG at `side`, the source's id, the named targets' ids (nil
    /// when the pair names none), and its database (each opened once). Every caption is checked before any edit runs.
    /// `captions`: whether the params carry the source's caption.
    /// A pair's source is `source` when it comes from the pair's own database (its id there), else nil.
    static func jobs(_ pairs: [EditPair], side: Int, root: URL, captions: Bool = true) throws
        -> [(params: [UInt8], png: [UInt8], source: Int?, sourcePixels: [UInt8], targets: [Int]?, images: DatabaseImages)] {
        var opened: [String: DatabaseImages] = [:]
        func open(_ name: String) throws -> DatabaseImages {
            let db = try opened[name] ?? DatabaseImages(named: name, root: root)
            opened[name] = db
            return db
        }
        return try pairs.enumerated().map { n, pair in
            let db = try open(pair.database)
            func id(_ caption: String, _ role: String, in db: DatabaseImages, style: String? = nil) throws -> Int {
                guard let id = db.database.items.firstIndex(where: { $0.caption == caption && (style == nil || $0.style == style) }) else {
                    throw HumeError(.invalidInput, "the \(db.name) database has no picture captioned \"\(caption)\"\(style.map { " in the style \($0)" } ?? "")\(role)")
                }
                return id
            }
            let sourceDB = try open(pair.sourceDatabase ?? pair.database)
            let sourceID = try id(pair.source, "", in: sourceDB, style: pair.sourceStyle)
            let sourcePixels = try sourceDB.rgb8(sourceID, side: side)
            let targets = try pair.targets?.map { try id($0, " (a target of \"\(pair.source)\" + \"\(pair.edit)\")", in: db) }
            let png = try PNGCodec.encode(PixelImage(width: side, height: side, channels: 3, pixels: sourcePixels))
            var fields: [String: JSON] = ["edit": .string(pair.edit), "database": .string(pair.database), "seed": JSON(n + 1),
                                          "size": JSON(side)]
            if captions { fields["caption"] = .string(pair.source) }
            let params = JSON.object(fields).bytes
            return (params, png, sourceDB.name == db.name ? sourceID : nil, sourcePixels, targets, db)
        }
    }

    /// RMSE on RGB in [0, 1] of two RGB8 images of the working side, taken at `compareSide` (else the working side).
    func rmse(_ a: [UInt8], _ b: [UInt8]) -> Double {
        let at = compareSide ?? side
        return Tiles.rmse(Tiles.downsample(a, side: side, to: at), Tiles.downsample(b, side: side, to: at))
    }

    /// Runs the pairs, writes the sheet, and returns the numbers and one line per pair.
    public func run() throws -> (result: [String: Any], lines: [String]) {
        let stage = try EditStage(modelDirectory: modelDirectory, root: root)
        let embed = try EmbedStage(modelDirectory: modelDirectory, batchSize: 64)
        let retrieve = RetrieveStage(root: root, batchSize: 64)
        let jobs = try Self.jobs(pairs, side: side, root: root, captions: captions)
        var rows: [[[UInt8]]] = [], lines: [String] = [], coverage: [Double] = [], seconds: [Double] = []
        var successes = 0, outsideChange = 0, namedSuccesses = 0, named = 0, namedWithPicture = 0
        var byDatabase: [String: (ok: Int, all: Int)] = [:]
        for (job, pair) in zip(jobs, pairs) {
            let db = job.images
            let source = job.sourcePixels
            // The target: the first picture other than the source (and not a copy of it) for "caption + edit".
            let text = pair.source + " " + pair.edit
            let params = JSON.object(["database": .string(pair.database), "k": JSON(8)]).bytes
            let found = try Neighbours(decoding: try runStages([embed, retrieve], params: params, data: Array(text.utf8)))
            guard let target = try found.ids.first(where: { id in try id != job.source && db.rgb8(id, side: side) != source }) else {
                throw HumeError(.invalidInput, "no picture but the source itself is near \"\(text)\" in \(pair.database)")
            }
            let targetPixels = try db.rgb8(target, side: side)
            let t0 = Date()
            let image = try StageImage(decoding: try runStages([stage], params: job.params, data: job.png))
            seconds.append(Date().timeIntervalSince(t0))
            let mask = image.mask?.pixels ?? []
            let out = image.pixels
            var inside = 0.0, insideCount = 0
            for p in 0..<(side * side) {
                for c in 0..<3 {
                    let d = abs(Int(out[3 * p + c]) - Int(source[3 * p + c]))
                    if mask[p] > 0 { inside += Double(d) / 255; insideCount += 1 } else { outsideChange = max(outsideChange, d) }
                }
            }
            let changed = insideCount > 0 ? inside / Double(insideCount) : 0
            let before = rmse(source, targetPixels), after = rmse(out, targetPixels)
            let ok = Self.succeeds(before: before, after: after, changed: changed)
            if ok { successes += 1 }
            // The named targets: the one nearest the result, by the same rule.
            var namedNote = ""
            if let ids = job.targets {
                named += 1
                if !ids.isEmpty { namedWithPicture += 1 }
                let nearest = try ids.map { id -> (String, Double, Double) in
                    let t = try db.rgb8(id, side: side)
                    return (db.database.items[id].caption, rmse(source, t), rmse(out, t))
                }.min { $0.2 < $1.2 }
                let namedOK = nearest.map { Self.succeeds(before: $0.1, after: $0.2, changed: changed) } ?? false
                if namedOK { namedSuccesses += 1 }
                namedNote = nearest.map { "; named target \($0.0): \(String(format: "%.3f", $0.1)) → \(String(format: "%.3f", $0.2)) \(namedOK ? "ok" : "no")" }
                    ?? "; no picture of the result: no"
            }
            byDatabase[pair.database, default: (0, 0)].all += 1
            if ok { byDatabase[pair.database]!.ok += 1 }
            coverage.append(Double(mask.filter { $0 > 0 }.count) / Double(side * side))
            lines.append("\(pair.database): \(pair.source) + \(pair.edit) → target \(db.database.items[target].caption): RMSE to target \(String(format: "%.3f", before)) → \(String(format: "%.3f", after)), mask \(Int(100 * coverage.last!))%, change inside \(String(format: "%.3f", changed)) \(ok ? "ok" : "no")\(namedNote)")
            rows.append([source, mask.flatMap { [$0, $0, $0] }, out, targetPixels])
        }
        try writeSheet(sheet, rows: rows, side: side)
        var result: [String: Any] = [
            "pairs": pairs.count, "size": side, "edit_success": Double(successes) / Double(pairs.count),
            "by_database": byDatabase.mapValues { Double($0.ok) / Double($0.all) },
            "mean_mask_coverage": coverage.reduce(0, +) / Double(coverage.count), "outside_change": outsideChange,
            "seconds_per_edit_median": median(seconds), "sheet": sheet, "captions": captions, "compare_side": compareSide ?? side]
        if named > 0 {
            result["edit_success_named"] = Double(namedSuccesses) / Double(named)
            result["pairs_named"] = named
            result["pairs_named_with_picture"] = namedWithPicture
        }
        return (result, lines)
    }
}
