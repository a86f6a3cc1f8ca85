import Foundation
import HumeCore
import HumeData
import HumeDiffusion
import HumeEmbed
import HumeSearch
import HumeStages

/// The `edit` stage: a source PNG (the job's data) in, a `StageImage` with a `MASK` section out (PROTOCOL.md,
/// "Stage payloads").
///
/// The source image has to reach the editor, and a stage's input is only the previous stage's output, so an edit
/// job's route is `edit` alone: this stage finds the neighbours of the edit text (and of the caption, when given)
/// in-process, with the embed stage's model and the retrieve stage's index (`NeighbourSearch`). The result's metadata records how it was made: `edit`, `caption` (or null),
/// `source_neighbours_by` (`caption` or `pixels`), `database`, `k`, `seed`, `size`, `steps`, `strength`,
/// `source_neighbours`, `neighbours` (the edit's: found for the edit text, or ranked for an addition or removal), `transplant`, `mask_fraction`, `version`.
/// `@unchecked Sendable`: the image cache is guarded by `lock`; everything else is immutable or thread-safe.
public final class EditStage: Stage, @unchecked Sendable {
    /// Largest source accepted: 2048 pixels a side and 32 MiB (the broker's blob limit).
    public static let sourceLimits = PictureLimits(maxDimension: 2048, maxBytes: 32 << 20)

    /// A source picture (`PictureCodec`: PNG or JPEG) as RGB, within `sourceLimits`.
    public static func decodeSource(_ bytes: [UInt8]) throws -> PixelImage {
        try PictureCodec.decode(bytes, limits: sourceLimits)
    }

    public let name: String
    public let batchSize = 1
    public let concurrency = 1
    /// Texts to neighbours: the edit text's and the caption's.
    let search: NeighbourSearch
    private let lock = NSLock()
    // Guarded by `lock`; entries are immutable, replaced when their database changes.
    private var images: [String: DatabaseImages] = [:]

    /// Loads the text model; databases are opened on first use.
    /// - Parameter root: the folder holding the databases.
    public init(name: String = "edit", modelDirectory: URL, root: URL) throws {
        self.name = name
        Embedder.setBLASThreads(1)
        let embedder = try Embedder(modelDirectory: modelDirectory)
        search = NeighbourSearch(embed: { try embedder.embedFlat($0) }, databases: IndexedDatabases(root: root))
    }

    /// The database `name`'s images (its index is the search's), opened on first use.
    /// - Throws: `HumeError(.unknown)` naming the available databases.
    func database(_ name: String) throws -> DatabaseImages {
        let loaded = try search.databases.database(name)
        lock.lock(); defer { lock.unlock() }
        // The search reopens a database that grew; its images follow.
        if let d = images[name], d.database === loaded.database { return d }
        let d = try DatabaseImages(loaded.database)
        images[name] = d
        return d
    }

    /// Edits one source: the whole of what `run` does for a task, minus the error mapping.
    public func edit(source png: [UInt8], parameters p: EditParameters) throws -> StageImage {
        var editor = Editor()
        if let k = p.k { editor.k = k }
        if let s = p.size { editor.side = s }
        if let s = p.steps { editor.steps = s; editor.fineSteps = s }
        let decoded: PixelImage
        do { decoded = try EditStage.decodeSource(png) } catch let e as HumeError {
            throw StageInputError("The source image could not be read as a PNG or JPEG: " + e.message.prefix(1).lowercased() + e.message.dropFirst())
        }
        let db = try database(p.database)
        // A job that names no size gets 64² from a database built before 128² stores; one that asks for 128 is refused.
        if p.size == nil, !db.hasStore(side: editor.side) { editor.side = 64 }
        // Checked before any path, a recolour's included: a size the database has no store for is refused alike.
        let store = try db.store(side: editor.side)
        let sourceBytes = Editor.resize(decoded.pixels, width: decoded.width, height: decoded.height, to: editor.side)
        // A recolour ("make it green") changes the source's own colour; no other picture is pasted in.
        if let colour = Recolour.parse(p.edit),
           let r = colour.apply(rgb8: sourceBytes, width: editor.side, height: editor.side) {
            return try result(pixels: r.pixels, mask: r.mask, side: editor.side, meta: [
                "edit": p.sentEdit, "caption": p.sentCaption.map { $0 as Any } ?? NSNull(), "source_neighbours_by": NSNull(),
                "database": db.name, "k": editor.k, "seed": p.seed, "size": editor.side, "steps": 0, "strength": 0,
                "source_neighbours": [Int](), "neighbours": [Int](), "transplant": NSNull(), "removes": NSNull(),
                "recolour": colour.name,
            ])
        }
        let source = try RGBImage(width: editor.side, height: editor.side, rgb8: sourceBytes)
        // Neighbours found by pixels carry no similarity to a text: they are weighed alike.
        // The whole store ranked by pixel distance to the source: once, for whichever of the uses below needs it.
        var byPixels: [Int]?
        func nearestByPixels() throws -> [Int] {
            if let ranked = byPixels { return ranked }
            let ranked = try editor.nearestByPixels(source, count: store.count) { try store.image(id: $0) }
            byPixels = ranked
            return ranked
        }
        let removed = Self.removedThing(p.edit)
        let adds = removed == nil && !Self.replaces(p.edit)
        // An addition also searches with the source's caption and the edit as one text. Without a caption, a caption
        // read from the source's pixels stands in for it (`readKind`).
        let kindCaption = try p.caption ?? (adds ? try readKind(source: sourceBytes, ranked: try nearestByPixels(), edit: p.edit, database: db,
                                                                  store: store) : nil)
        let combined = adds ? kindCaption.map { Self.combined(caption: $0, edit: p.edit) } : nil
        let texts = [p.edit] + (kindCaption.map { [$0] } ?? []) + (combined.map { [$0] } ?? [])
        let loaded = try search.databases.database(p.database)
        let vectors = try search.embed(texts)
        let d = Database.dimension
        // The editor's searches rank by the embedding alone (`words: false`): its rules were built on those similarities,
        // and the caption-word re-ranking generation uses cost one pair of the development edit list (0.78 → 0.75).
        let found = try loaded.search(Array(vectors.prefix(min(texts.count, 2) * d)), k: editor.k, prompts: Array(texts.prefix(2)),
                                     words: false)
        let sourceIDs = p.caption != nil ? found[1].ids : try nearestByPixels()
        let sourceScores = p.caption != nil ? found[1].scores : nil
        var editIDs = found[0].ids
        var editScores = found[0].scores
        var donors: (ids: [Int], scores: [Double])?
        if let combined {
            // An addition to a captioned source: pictures of the source's kind with the edit (`additionDonors`).
            let ranked = try Self.additionDonors(loaded, vectors: vectors, edit: p.edit, combined: combined, kind: found[1].ids,
                                                 k: editor.k)
            editIDs = ranked.neighbours.map(\.id)
            editScores = ranked.neighbours.map(\.score)
            donors = (ranked.donors.map(\.id), ranked.donors.map(\.score))
        } else if let thing = removed {
            // A removal: a sentence embedding hardly hears "without", so "without the hat" finds hats. The edit's
            // neighbours are instead pictures of the source's caption with the thing taken out of it ("smiling face with
            // sunglasses" → "smiling face", "cowboy hat face" → "face"), or, without a caption, the pictures nearest the
            // source by pixels; either ranked by their similarity to that text less their similarity to the thing.
            let pool = max(32, 4 * editor.k)
            let rest = p.caption.flatMap { Self.caption($0, without: thing) }
            // The thing and the rest of the caption in one embedding call (the rest's first `pool` are its nearest).
            let hits = try search.neighbours(of: [thing] + (rest.map { [$0] } ?? []), database: p.database, k: 256, words: false)
            let thingHits = hits[0]
            let like = rest != nil
                ? Neighbours(database: p.database, ids: Array(hits[1].ids.prefix(pool)), scores: hits[1].scores.map { Array($0.prefix(pool)) })
                : Neighbours(database: p.database, ids: Array(try nearestByPixels().prefix(pool)))
            var thingScore: [Int: Double] = [:]
            for (id, s) in zip(thingHits.ids, thingHits.scores ?? []) { thingScore[id] = s }
            let floor = (thingHits.scores ?? []).min() ?? 0
            // Without scores (pixel neighbours), nearness breaks ties.
            let ranked = like.ids.enumerated().map { i, id in
                (id: id, score: (like.scores.map { $0[i] } ?? -0.002 * Double(i)) - (thingScore[id] ?? floor))
            }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }.prefix(editor.k)
            editIDs = ranked.map(\.id)
            editScores = ranked.map(\.score)
            editor.keepsDonorBackdrop = true
        } else if Self.replaces(p.edit) {
            // The thing becomes another ("make it a thought balloon", "open them"): where the new one is backdrop, the old
            // one goes (the speech balloon's tail, the closed blades), as in a removal.
            editor.keepsDonorBackdrop = true
        }
        try db.check(ids: sourceIDs + editIDs + (donors?.ids ?? []))
        // A donor's base: its caption without the added thing ("smiling face with sunglasses" → "smiling face"), the
        // pictures that text finds ranked by their pixels' distance to the donor's at 32². An addition that would paste
        // its donor whole keeps only what the donor adds to its base (`Editor.wholeDonorShare`).
        let thing = Self.addedThing(p.edit)
        let bases = { (id: Int) throws -> [Int] in
            guard let thing, let rest = Self.caption(db.database.items[id].caption, without: thing) else { return [] }
            // The pictures of that text: those within 0.02 of its first neighbour's similarity (its drawings in each
            // style), so a picture that merely holds its words and draws something else where the addition is (the
            // heart-eyes face for "smiling face") is no base.
            let hits = try self.search.neighbours(of: [rest], database: p.database, k: 16, words: false)[0]
            let scores = hits.scores ?? [], top = scores.first ?? 0
            let found = hits.ids.indices.filter { $0 >= scores.count || scores[$0] >= top - 0.02 }.map { hits.ids[$0] }
            let store = try db.store(side: 32), donor = try store.image(id: id)
            let distance = try found.map { Editor.squaredDistance(try store.image(id: $0), donor) }
            return found.indices.sorted { distance[$0] != distance[$1] ? distance[$0] < distance[$1] : found[$0] < found[$1] }.map { found[$0] }
        }
        let r = try editor.edit(source: source, sourceIDs: sourceIDs, editIDs: editIDs,
                                image: { try RGBImage(width: editor.side, height: editor.side, rgb8: db.rgb8($0, side: editor.side)) },
                                seed: p.seed, sourceScores: sourceScores, editScores: editScores, donors: donors,
                                bases: adds ? bases : nil)
        return try result(pixels: r.image.rgb8(), mask: r.mask, side: editor.side, meta: [
            "edit": p.sentEdit, "caption": p.sentCaption.map { $0 as Any } ?? NSNull(), "source_neighbours_by": p.caption != nil ? "caption" : "pixels",
            "database": db.name, "k": editor.k, "seed": p.seed, "size": editor.side, "steps": editor.harmonisingSteps,
            "strength": editor.strength, "source_neighbours": sourceIDs, "neighbours": editIDs, "transplant": r.transplantID,
            "transplant_cut_by": r.cut.map { $0 as Any } ?? NSNull(),
            "removes": removed.map { $0 as Any } ?? NSNull(), "recolour": NSNull(),
            "kind_caption": (p.caption == nil ? kindCaption : nil).map { $0 as Any } ?? NSNull(),
        ])
    }

    /// The caption an addition to a source that came without one is read with. The source's own, when it is in the
    /// database: its nearest picture by pixels within RMSE 0.02. A picture from elsewhere (a user's sticker, another
    /// set's drawing) is nearest in colour to whatever plain shape shares its colours, which is often not its kind:
    /// an orange smiley's nearest Noto picture is the yellow circle, and "yellow circle with heart eyes" found the
    /// yellow heart, pasted over the face. So of the captions of its first 4 pictures by pixels, the one that, with the
    /// edit added ("slightly smiling face with heart eyes"), the database answers best (the highest first similarity,
    /// the first in pixel order on a tie) is taken: the source is read as the kind of thing the edit makes sense on.
    func readKind(source: [UInt8], ranked: [Int], edit: String, database db: DatabaseImages, store: ImageStore) throws -> String? {
        let items = db.database.items
        guard let first = ranked.first else { return nil }
        let d = try source.withUnsafeBufferPointer { Editor.squaredDistance(try store.image(id: first), $0) }
        if (Double(d) / Double(max(1, source.count))).squareRoot() / 255 < 0.02 { return items[first].caption }
        var captions: [String] = []
        for id in ranked.prefix(4) where !captions.contains(items[id].caption) { captions.append(items[id].caption) }
        guard captions.count > 1 else { return captions.first }
        let hits = try search.neighbours(of: captions.map { Self.combined(caption: $0, edit: edit) }, database: db.name, k: 1, words: false)
        var best = 0, bestScore = -Double.infinity
        for (i, h) in hits.enumerated() {
            let score = h.scores?.first ?? -Double.infinity
            if score > bestScore { best = i; bestScore = score }
        }
        return captions[best]
    }

    /// The stage image of an edit: its pixels, its `MASK`, and the metadata given plus `mask_fraction` and `version`.
    func result(pixels: [UInt8], mask: [UInt8], side: Int, meta: [String: Any]) throws -> StageImage {
        let covered = Double(mask.filter { $0 > 0 }.count) / Double(side * side)
        var meta = meta
        meta["mask_fraction"] = (covered * 1e4).rounded() / 1e4
        meta["version"] = StageImage.version
        let json = try JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys])
        return StageImage(width: side, height: side, metadata: [UInt8](json), pixels: pixels,
                          sections: [.init(tag: "MASK", width: side, height: side, channels: 1, pixels: mask)])
    }

    /// The text of a captioned source with an edit added: "grinning cat" + "with heart eyes" → "grinning cat with heart
    /// eyes"; a caption's closing full stop goes ("A dog." + "wearing a party hat" → "A dog wearing a party hat").
    public static func combined(caption: String, edit: String) -> String {
        var c = caption.trimmingCharacters(in: .whitespacesAndNewlines)
        while let last = c.last, ".!".contains(last) { c.removeLast() }
        return c + " " + edit.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether an edit text asks for the thing itself to change: a verb acting on "it" or "them" ("make it a tennis
    /// ball", "turn it into a rose", "make it happy", "light it", "open them"). The result is then a picture of what
    /// the edit names, not of the source's kind with something added, so the edit text alone finds its neighbours.
    public static func replaces(_ edit: String) -> Bool {
        let words = edit.lowercased().split(whereSeparator: { !$0.isLetter })
        return words.count >= 2 && (words[1] == "it" || words[1] == "them")
    }

    /// The edit's neighbours for an addition to a captioned source: the pictures that are the source's kind *with* the
    /// edit ("grinning cat" + "with heart eyes" → "smiling cat with heart-eyes", not the human "smiling face with
    /// heart-eyes" that the edit text alone finds first, nor another grinning cat).
    ///
    /// Candidates are the first `max(32, 4k)` of the edit text's and of the combined text's (`combined`) neighbours,
    /// each scored 2·s(combined) − s(caption) with s the similarity to a text's embedding: the combined text's similarity
    /// moved on by the step from the caption to it. A picture of the source's kind alone is as near the caption as the
    /// combined text and drops back; one of that kind with the edit rises; a picture of the added thing alone (a party
    /// hat for "a dog wearing a party hat", when the database holds no dog in one) keeps the edit's share.
    ///
    /// Two kinds of candidate are left out, since as edit neighbours they pull the edit's prediction back to the source
    /// (the mask shrinks to a few pixels) and as donors they fit the source best and bring nothing of the edit:
    /// - pictures no nearer the combined text than the caption ("grinning face with a monocle" is not another grinning
    ///   face);
    /// - the source's twins: pictures no nearer the edit text than the source's own kind is, the median over the
    ///   caption's `k` neighbours ("grinning cat with smiling eyes" for "with heart eyes" on a grinning cat).
    /// When that leaves none, the twins are kept; when still none, every candidate.
    ///
    /// The transplant's donors are those neighbours, after any candidate left out that scores above every one kept and
    /// is moved on by the step from the caption to the combined text, s(combined) − s(caption), further than the
    /// caption's first neighbour (the source's own picture, or one with its very caption) is. The rules guard the
    /// conditioning against the source's kind, but a picture the score puts first is the edit's best donor even when the
    /// caption is near it ("see-no-evil monkey" for "monkey face" + "covering its eyes" is a hair less near the combined
    /// text than the caption, and no nearer the edit text than monkeys are; without it the donor was a person's face).
    /// A twin that scores lower, or a picture of the caption itself, stays out: it fits the source best and brings
    /// nothing.
    /// - Parameters:
    ///   - vectors: the unit embeddings of the edit text, the caption and the combined text, back to back.
    ///   - kind: the caption's neighbours.
    static func additionDonors(_ loaded: LoadedDatabase, vectors: [Float], edit: String, combined: String, kind: [Int], k: Int) throws
        -> (neighbours: [(id: Int, score: Double)], donors: [(id: Int, score: Double)]) {
        let d = Database.dimension
        precondition(vectors.count == 3 * d)
        let pool = max(32, 4 * k)
        let queries = Array(vectors[0 ..< d]) + Array(vectors[2 * d ..< 3 * d])
        var candidates: [Int] = [], seen = Set<Int>()
        for hits in try loaded.search(queries, k: pool, prompts: [edit, combined], words: false) {
            for id in hits.ids where seen.insert(id).inserted { candidates.append(id) }
        }
        let embeddings = try loaded.database.embeddings()
        let all = embeddings.all
        func similarity(_ id: Int, _ text: Int) -> Double {
            var s: Float = 0
            for j in 0..<d { s += all[id * d + j] * vectors[text * d + j] }
            return Double(s)
        }
        let kindToEdit = kind.map { similarity($0, 0) }.sorted()
        let sourceToEdit = kindToEdit.isEmpty ? -Double.infinity : kindToEdit[kindToEdit.count / 2]
        // `step`: how far the step from the caption to the combined text moves a candidate, s(combined) − s(caption).
        typealias Scored = (id: Int, score: Double, step: Double, carries: Bool)
        let scored = candidates.map { id -> Scored in
            let toCaption = similarity(id, 1), toCombined = similarity(id, 2)
            return (id, 2 * toCombined - toCaption, toCombined - toCaption, similarity(id, 0) > sourceToEdit)
        }
        var kept = scored.filter { $0.step > 0 && $0.carries }
        if kept.isEmpty { kept = scored.filter { $0.step > 0 } }
        if kept.isEmpty { kept = scored }
        func ranked(_ list: [Scored]) -> [(id: Int, score: Double)] {
            list.sorted { $0.score != $1.score ? $0.score > $1.score : $0.id < $1.id }.prefix(k).map { ($0.id, $0.score) }
        }
        // Re-admitted: above every kept score, and moved on by the step from the caption to the combined text further than
        // the caption's own first picture is (a picture with the source's very caption is the kind without the edit).
        let best = kept.map(\.score).max() ?? -.infinity
        let kindStep = kind.first.map { similarity($0, 2) - similarity($0, 1) } ?? .infinity
        let readmitted = scored.filter { $0.score > best && $0.step > kindStep }
        return (ranked(kept), ranked(readmitted + kept))
    }

    /// The thing an edit text asks to take away ("without the hat", "remove the sunglasses", "take off its mask",
    /// "no glasses" → "hat", "sunglasses", "mask", "glasses"), or nil for an edit that adds or changes something.
    public static func removedThing(_ edit: String) -> String? {
        thing(in: edit, after: ["without ", "with no ", "remove ", "take off ", "take away ", "take out ", "get rid of ",
                                "no ", "minus ", "lose ", "drop "])
    }

    /// The thing an addition names: its text after a leading "with", "wearing", "holding", "having" or "add" and an
    /// article ("wearing sunglasses" → "sunglasses", "with a party hat" → "party hat"); nil for any other edit, a
    /// removal's "with no …" included.
    public static func addedThing(_ edit: String) -> String? {
        removedThing(edit) == nil ? thing(in: edit, after: ["with ", "wearing ", "holding ", "having ", "add "]) : nil
    }

    /// The lowercased text of `edit` after the first of `openings` it begins with and an article, or nil.
    static func thing(in edit: String, after openings: [String]) -> String? {
        var text = edit.lowercased().trimmingCharacters(in: .whitespacesAndNewlines.union(.punctuationCharacters))
        guard let opening = openings.first(where: { text.hasPrefix($0) }) else { return nil }
        text.removeFirst(opening.count)
        for article in ["the ", "a ", "an ", "its ", "his ", "her ", "their ", "any ", "some "] where text.hasPrefix(article) {
            text.removeFirst(article.count)
            break
        }
        text = text.trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? nil : text
    }

    /// A caption with a thing taken out: the "with …" clause that names it ("smiling face with sunglasses" → "smiling
    /// face"), else its words and the word that modifies them ("cowboy hat face" → "face"). Nil when nothing is left or
    /// the caption does not name the thing.
    public static func caption(_ caption: String, without thing: String) -> String? {
        let words = caption.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        let thingWords = Set(thing.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init))
        func names(_ w: String) -> Bool { thingWords.contains(w) || thingWords.contains { w.hasPrefix($0) && w.count <= $0.count + 2 } }
        if let with = words.lastIndex(of: "with"), with > 0, words[(with + 1)...].contains(where: names) {
            return words[..<with].joined(separator: " ")
        }
        guard words.contains(where: names) else { return nil }
        var keep = [Bool](repeating: true, count: words.count)
        for (i, w) in words.enumerated() where names(w) {
            keep[i] = false
            if i > 0 && i < words.count - 1 { keep[i - 1] = false }  // "cowboy" in "cowboy hat face"
        }
        let rest = words.indices.filter { keep[$0] }.map { words[$0] }.joined(separator: " ")
        return rest.isEmpty ? nil : rest
    }

    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        tasks.map { task in
            StageOutcome.of { try edit(source: task.input, parameters: EditParameters(json: task.params)).encoded() }
        }
    }
}
