import Foundation
import HumeCore
import HumeData
import HumeDiffusion
import HumeEditStage
import HumeStages

/// Edit success on a fixed list of (image, edit) pairs (`hume eval edit`): each source goes through the edit stage as an
/// edit job; the edit succeeds when the real image nearest to the result inside the mask is in the target's subgroup.
public struct EditEvaluation {
    /// (source caption, edit text, target caption): the target's subgroup is what the edit should produce.
    public static let pairs: [(String, String, String)] = [
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

    /// The sheet PNG (rows: source, mask, result, transplant).
    public var sheet = "eval-edit.png"
    public var root: URL
    public var modelDirectory: URL

    public init(root: URL, modelDirectory: URL) {
        self.root = root
        self.modelDirectory = modelDirectory
    }

    /// The edit jobs of `pairs` on `db` (the emoji database): params and the source as a PNG, with the ids involved.
    static func jobs(_ db: DatabaseImages, side: Int) throws -> [(params: [UInt8], png: [UInt8], source: Int, target: Int)] {
        let items = db.database.items
        return try pairs.enumerated().map { n, pair in
            let (sourceCaption, text, target) = pair
            guard let sourceID = items.firstIndex(where: { $0.caption == sourceCaption }),
                  let targetID = items.firstIndex(where: { $0.caption == target }) else {
                throw HumeError(.invalidInput, "the emoji database has no \"\(sourceCaption)\" or \"\(target)\"")
            }
            let png = try PNGCodec.encode(PixelImage(width: side, height: side, channels: 3, pixels: try db.rgb8(sourceID, side: side)))
            let params = JSON.object(["edit": .string(text), "caption": .string(sourceCaption), "database": .string("emoji"),
                                      "seed": JSON(n + 1)]).bytes
            return (params, png, sourceID, targetID)
        }
    }

    /// Runs the pairs, writes the sheet, and returns the numbers and one line per pair.
    public func run() throws -> (result: [String: Any], lines: [String]) {
        let stage = try EditStage(modelDirectory: modelDirectory, root: root)
        let db = try DatabaseImages(named: "emoji", root: root)
        let items = db.database.items
        let side = Editor().side
        let all = try (0..<db.count).map { id in try db.rgb8(id, side: side) }
        var rows: [[[UInt8]]] = [], successes = 0, lines: [String] = [], coverage: [Double] = []
        for (job, (sourceCaption, text, _)) in zip(try Self.jobs(db, side: side), Self.pairs) {
            // Through the edit stage, as an edit job: the source as a PNG, its caption and the edit text as params.
            let image = try StageImage(decoding: try runStages([stage], params: job.params, data: job.png))
            let mask = image.mask?.pixels ?? []
            let meta = (try? JSONSerialization.jsonObject(with: Data(image.metadata))) as? [String: Any] ?? [:]
            let transplant = (meta["transplant"] as? NSNumber)?.intValue ?? 0
            let out = image.pixels
            var best = (id: -1, d: Int.max)
            for (i, img) in all.enumerated() where i != job.source {
                var d = 0
                for p in 0..<(side * side) where mask[p] > 0 { for c in 0..<3 { let t = Int(img[3 * p + c]) - Int(out[3 * p + c]); d += t * t } }
                if d < best.d { best = (i, d) }
            }
            let ok = best.id >= 0 && items[best.id].subgroup == items[job.target].subgroup
            if ok { successes += 1 }
            coverage.append(Double(mask.filter { $0 > 0 }.count) / Double(side * side))
            lines.append("\(sourceCaption) + \(text): mask \(Int(100 * coverage.last!))%, crop nearest \(items[best.id].caption) [\(items[best.id].subgroup)], target [\(items[job.target].subgroup)] \(ok ? "ok" : "no")")
            rows.append([all[job.source], mask.flatMap { [$0, $0, $0] }, out, all[transplant]])
        }
        try writeSheet(sheet, rows: rows, side: side)
        let rate = Double(successes) / Double(Self.pairs.count)
        return (["pairs": Self.pairs.count, "edit_success": rate,
                 "mean_mask_coverage": coverage.reduce(0, +) / Double(coverage.count), "sheet": sheet], lines)
    }
}
