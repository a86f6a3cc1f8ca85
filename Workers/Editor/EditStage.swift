import Foundation
import HumeCore
import HumeData
import HumeDenoiseStage
import HumeDiffusion
import HumeEmbed
import HumeEmbedStage
import HumeRetrieveStage
import HumeWorker

/// What an edit job asks for, from its parameters (keys, types and defaults listed here, where they are read).
public struct EditParameters: Sendable, Equatable {
    /// `edit` (string, required, non-empty): what to change, e.g. "with sunglasses".
    public var edit: String
    /// `caption` (string, optional): what the source shows; its neighbours condition the editor. Absent: the
    /// source's neighbours are the database images nearest to it in pixels.
    public var caption: String?
    /// `database` (string, default "emoji").
    public var database = "emoji"
    /// `k` (int 1…256, default `Editor().k` = 8): neighbours per side (source and edit text).
    public var k: Int?
    /// `seed` (int ≥ 0, default 1).
    public var seed: UInt64 = 1
    /// `size` (32 or 64, default 32): the working side; the source is resized to it by area averaging.
    public var size: Int?
    /// `steps` (int 1…200, default `Editor().steps` = 10): DDIM steps of the harmonising pass.
    public var steps: Int?

    /// Parses a job's parameter object.
    /// - Throws: `StageInputError` naming the bad key and what is allowed.
    public init(json params: [UInt8]) throws {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(params))) as? [String: Any] else {
            throw StageInputError("The job's parameters are not a JSON object; an edit job sends {\"edit\": \"...\"}.")
        }
        guard let text = o["edit"] as? String, !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw StageInputError("The job has no non-empty \"edit\" text; an edit job needs one, e.g. \"with sunglasses\".")
        }
        edit = text
        if let c = o["caption"], !(c is NSNull) {
            guard let s = c as? String, !s.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw StageInputError("The \"caption\" parameter must be a non-empty string describing the source image, or absent.")
            }
            caption = s
        }
        // The shared keys are validated the same way as for generation.
        let p = try GenerateParameters(json: params)
        // Edits default to the one-style `emoji` database (a transplanted part should match a Noto source), not to
        // generation's default.
        database = o["database"] == nil ? "emoji" : p.database
        seed = p.seed
        if o["k"] != nil { k = p.k }
        if o["size"] != nil { size = p.size }
        if o["steps"] != nil { steps = p.steps }
    }
}

/// The `edit` stage: a source PNG (the job's data) in, a `StageImage` with a `MASK` section out (PROTOCOL.md,
/// "Stage payloads").
///
/// The source image has to reach the editor, and a stage's input is only the previous stage's output, so an edit
/// job's route is `edit` alone: this stage runs the embed and retrieve stages' own code in-process for the edit text
/// (and the caption, when given). The result's metadata records how it was made: `edit`, `caption` (or null),
/// `source_neighbours_by` (`caption` or `pixels`), `database`, `k`, `seed`, `size`, `steps`, `strength`,
/// `source_neighbours`, `neighbours` (the edit text's), `transplant`, `mask_fraction`, `version`.
/// `@unchecked Sendable`: the image cache is guarded by `lock`; everything else is immutable or thread-safe.
public final class EditStage: Stage, @unchecked Sendable {
    /// Largest source accepted: 2048 pixels a side and 32 MiB (the broker's blob limit).
    public static let sourceLimits = PNGCodec.Limits(maxDimension: 2048, maxBytes: 32 << 20)

    public let name: String
    public let batchSize = 1
    public let concurrency = 1
    let embed: EmbedStage
    let retrieve: RetrieveStage
    private let lock = NSLock()
    // Guarded by `lock`; entries are immutable.
    private var images: [String: DatabaseImages] = [:]

    /// Loads the text model; databases are opened on first use.
    /// - Parameter root: the folder holding the databases.
    public init(name: String = "edit", modelDirectory: URL = Embedder.defaultModelDirectory,
                root: URL = Database.databasesRoot) throws {
        self.name = name
        embed = try EmbedStage(name: "embed", modelDirectory: modelDirectory, batchSize: 2)
        retrieve = RetrieveStage(name: "retrieve", root: root, batchSize: 2)
    }

    /// The database `name`'s images (and, through the retrieve stage, its index), opened on first use.
    /// - Throws: `HumeError(.unknown)` naming the available databases.
    func database(_ name: String) throws -> DatabaseImages {
        let loaded = try retrieve.database(name)
        lock.lock(); defer { lock.unlock() }
        if let d = images[name] { return d }
        let d = try DatabaseImages(loaded.database)
        images[name] = d
        return d
    }

    /// The `k` nearest database ids of each text with their similarities, through the embed and retrieve stages (the
    /// same payloads the broker would carry between them).
    /// - Throws: `StageInputError` with the stage's sentence when either refuses.
    func neighbours(of texts: [String], database: String, k: Int) throws -> [(ids: [Int], scores: [Double])] {
        func check(_ o: StageOutcome) throws -> [UInt8] {
            switch o {
            case .ok(let b): return b
            case .permanent(let m): throw StageInputError(m)
            case .retryable(let m): throw HumeError(.retryable, m)
            }
        }
        let embedded = try embed.run(texts.map {
            StageTask(lease: 0, jobID: 0, attempt: 1, key: "", params: [], input: Array($0.utf8))
        }).map(check)
        let params = JSON.object(["database": .string(database), "k": JSON(k)]).bytes
        let found = try retrieve.run(embedded.map {
            StageTask(lease: 0, jobID: 0, attempt: 1, key: "", params: params, input: $0)
        }).map(check)
        return try found.map { let a = try RetrieveAnswer($0); return (a.ids, a.scores) }
    }

    /// Edits one source: the whole of what `run` does for a task, minus the error mapping.
    public func edit(source png: [UInt8], parameters p: EditParameters) throws -> StageImage {
        var editor = Editor()
        if let k = p.k { editor.k = k }
        if let s = p.size { editor.side = s }
        if let s = p.steps { editor.steps = s }
        let decoded: PixelImage
        do { decoded = try PNGCodec.decode(png, limits: EditStage.sourceLimits) } catch let e as HumeError {
            throw StageInputError("The source image could not be read as a PNG: " + e.message.prefix(1).lowercased() + e.message.dropFirst())
        }
        let source = try RGBImage(width: editor.side, height: editor.side,
                                  rgb8: Editor.resize(decoded.pixels, width: decoded.width, height: decoded.height, to: editor.side))
        let db = try database(p.database)
        let texts = [p.edit] + (p.caption.map { [$0] } ?? [])
        let found = try neighbours(of: texts, database: p.database, k: editor.k)
        // Neighbours found by pixels carry no similarity to a text: they are weighed alike.
        let sourceIDs = p.caption != nil ? found[1].ids : try editor.nearestByPixels(source, images: db)
        let sourceScores = p.caption != nil ? found[1].scores : nil
        let editIDs = found[0].ids
        let r = try editor.edit(source: source, sourceIDs: sourceIDs, editIDs: editIDs, images: db, seed: p.seed,
                                sourceScores: sourceScores, editScores: found[0].scores)
        let covered = Double(r.mask.filter { $0 > 0 }.count) / Double(editor.side * editor.side)
        let meta: [String: Any] = [
            "edit": p.edit, "caption": p.caption.map { $0 as Any } ?? NSNull(), "source_neighbours_by": p.caption != nil ? "caption" : "pixels",
            "database": db.name, "k": editor.k, "seed": p.seed, "size": editor.side, "steps": editor.steps,
            "strength": editor.strength, "source_neighbours": sourceIDs, "neighbours": editIDs, "transplant": r.transplantID,
            "mask_fraction": (covered * 1e4).rounded() / 1e4, "version": StageImage.version,
        ]
        return try Editor.stageImage(result: r.image, mask: r.mask, metadata: meta)
    }

    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        tasks.map { task in
            do {
                return .ok(try edit(source: task.input, parameters: EditParameters(json: task.params)).encoded())
            } catch {
                return stageOutcome(for: error)
            }
        }
    }
}
