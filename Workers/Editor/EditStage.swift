import Foundation
import HumeData
import HumeDenoiseStage
import HumeDiffusion
import HumeEmbed
import HumeEmbedStage
import HumeWorker

/// The `edit` stage: the job's data (a PNG) in, a `StageImage` with a `MASK` section out.
///
/// Parameters (read here): `edit` (string, required), `caption` (string, optional: the source's caption,
/// else its neighbours are the nearest images by pixels), `database` ("emoji"), `k` (8), `seed` (1).
/// It embeds the edit text and searches captions in-process (the local stand-in for embed → retrieve, so
/// one stage has both the source pixels and the text's neighbours).
public final class EditStage: Stage, @unchecked Sendable {
    public let name: String
    public let batchSize = 1
    public let concurrency = 1
    let embedder: Embedder
    private let lock = NSLock()
    // Guarded by `lock` (that is what makes the `@unchecked Sendable` safe); entries are immutable.
    private var cache: [String: (LocalDatabase, CaptionIndex)] = [:]

    public init(name: String = "edit") throws {
        Embedder.setBLASThreads(1)
        self.name = name
        embedder = try Embedder(modelDirectory: Embedder.defaultModelDirectory)
    }

    func database(_ name: String) throws -> (LocalDatabase, CaptionIndex) {
        lock.lock(); defer { lock.unlock() }
        if let d = cache[name] { return d }
        let db = try LocalDatabase(name: name)
        let e = embedder
        let entry = (db, try CaptionIndex(database: db, embed: { try e.embedFlat($0) }))
        cache[name] = entry
        return entry
    }

    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        tasks.map { task in
            do {
                guard let o = (try? JSONSerialization.jsonObject(with: Data(task.params))) as? [String: Any] else {
                    throw StageInputError("The job's parameters are not a JSON object; send {\"edit\": \"...\"}.")
                }
                guard let text = o["edit"] as? String, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw StageInputError("The job has no non-empty \"edit\" text; an edit job needs one, e.g. \"with sunglasses\".")
                }
                let p = try GenerateParameters(json: task.params)
                var editor = Editor()
                if o["k"] != nil { editor.k = p.k }
                let png = try PNGFile.decodeRGB(task.input)
                let source = try RGBImage(width: editor.side, height: editor.side,
                                          rgb8: Editor.resize(png.pixels, width: png.width, height: png.height, to: editor.side))
                let (db, index) = try database(p.database)
                func search(_ s: String) throws -> [Int] { index.search(try embedder.embed(s), k: editor.k).map(\.id) }
                let sourceIDs = try (o["caption"] as? String).map(search) ?? editor.nearestByPixels(source, database: db)
                let editIDs = try search(text)
                let r = try editor.edit(source: source, sourceIDs: sourceIDs, editIDs: editIDs, database: db, seed: p.seed)
                let meta: [String: Any] = ["edit": text, "database": db.name, "k": editor.k, "seed": p.seed, "size": editor.side,
                                           "steps": editor.steps, "source_neighbours": sourceIDs, "neighbours": editIDs,
                                           "transplant": r.transplantID, "version": StageImage.version]
                return .ok(try Editor.stageImage(result: r.image, mask: r.mask, metadata: meta).encoded())
            } catch let e as StageInputError {
                return .permanent(e.message)
            } catch let e as DiffusionError {
                return .permanent(e.message)
            } catch {
                return .retryable("\(error)")
            }
        }
    }
}
