import Foundation
import HumeCore
import HumeStages

/// One item of a database's `manifest.jsonl` (see Ops/DATABASES.md).
public struct DatabaseItem: Sendable, Equatable {
    /// 0-based id: the index into the image stores and the embeddings.
    public var id: Int
    /// The text that describes the image (non-empty).
    public var caption: String
    /// Extra words (may be empty).
    public var keywords: [String]
    /// Coarse label (emoji group, tuxpaint top-level folder).
    public var group: String
    /// Fine label (emoji subgroup, tuxpaint second-level folder).
    public var subgroup: String
    /// The held-out unit: all variants of one thing share it.
    public var concept: String
    /// `"train"` or `"test"`.
    public var split: String
    /// The drawing style (`noto`, `openmoji`, `emojione` in `emoji-styles`), or "" when the database names none.
    public var style: String
    /// Where the picture came from (a code point sequence, a stamp's path, a user's file), or "".
    public var source: String
    /// SHA-256 of the decoded picture (`hume db` databases), for refusing duplicates.
    public var digest: String?
    /// The longer side of the source picture in pixels (`hume db` databases), or nil when not recorded: a picture
    /// smaller than the sample is enlarged, and blurred, to be stored at the sample's side.
    public var side: Int?

    public init(id: Int, caption: String, keywords: [String], group: String, subgroup: String, concept: String, split: String,
                style: String = "", source: String = "", digest: String? = nil, side: Int? = nil) {
        self.id = id
        self.caption = caption
        self.keywords = keywords
        self.group = group
        self.subgroup = subgroup
        self.concept = concept
        self.split = split
        self.style = style
        self.source = source
        self.digest = digest
        self.side = side
    }

    /// The manifest line (without its newline), as `hume db` writes it; labels that are empty are left out.
    public var json: JSON {
        var o: [String: JSON] = ["id": JSON(id), "caption": .string(caption), "keywords": .array(keywords.map { .string($0) }),
                                 "concept": .string(concept), "split": .string(split), "source": .string(source)]
        if !group.isEmpty { o["group"] = .string(group) }
        if !subgroup.isEmpty { o["subgroup"] = .string(subgroup) }
        if !style.isEmpty { o["style"] = .string(style) }
        if let digest { o["sha256"] = .string(digest) }
        if let side { o["side"] = JSON(side) }
        return .object(o)
    }

    /// The text embedded for retrieval: the caption followed by the keywords not already in it
    /// (see `hume index build` for why).
    public var retrievalText: String {
        let lower = caption.lowercased()
        let extra = keywords.filter { !lower.contains($0.lowercased()) }
        return extra.isEmpty ? caption : caption + ": " + extra.joined(separator: ", ")
    }
}

/// An image database directory: manifest, image stores, caption embeddings and FAISS index.
///
/// Layout: `${HUME_HOME:-~/.cache/hume}/db/<name>/` as written by `Ops/build-db.sh` (Ops/DATABASES.md);
/// `embeddings.f32` and `index.faiss` are added by `hume index build`.
public final class Database: Sendable {
    /// The embedding dimension (all-MiniLM-L6-v2).
    public static let dimension = 384
    /// The database generation uses when a job names none: the emoji in several open styles side by side
    /// (Ops/DATABASES.md), chosen by `hume eval fidelity` over the Noto-only `emoji` (README, "Fidelity").
    public static let defaultName = GenerateParameters.defaultDatabase

    /// Database name (`emoji`, `tuxpaint`).
    public let name: String
    /// The database directory.
    public let directory: URL
    /// Items in id order (`items[i].id == i`).
    public let items: [DatabaseItem]
    /// A 64-bit FNV-1a digest of `manifest.jsonl` (16 hex digits), for staleness stamps.
    public let manifestDigest: String
    /// The committed state of a database `hume db` made (`generation.json`), nil for one built by Ops/build-db.sh.
    /// Its stores may hold more than `count` items at the end (an `add` in progress or interrupted); readers use the
    /// first `count` only.
    public let generation: DatabaseGeneration?

    /// Names of the databases built under `root` (folders that contain a `manifest.jsonl`), sorted.
    public static func available(root: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && FileManager.default.fileExists(atPath: root.appendingPathComponent($0).appendingPathComponent("manifest.jsonl").path) }.sorted()
    }

    /// Opens the database `name` under `root`.
    /// - Throws: `HumeError(.unknown)` naming the available databases when `name` is not built there;
    ///   `HumeError(.invalidInput)` when the manifest is malformed.
    public convenience init(named name: String, root: URL) throws {
        let valid = !name.isEmpty && !name.hasPrefix(".") && !name.contains("/")
        let dir = root.appendingPathComponent(name)
        guard valid, FileManager.default.fileExists(atPath: dir.appendingPathComponent("manifest.jsonl").path) else {
            let avail = Database.available(root: root)
            let list = avail.isEmpty ? "none are built (run Ops/prepare-data.sh)" : "available: " + avail.joined(separator: ", ")
            throw HumeError(.unknown, "Unknown database \"\(name)\" in \(root.path); \(list).")
        }
        try self.init(directory: dir)
    }

    /// Opens the database in `directory` (its name is the folder's name).
    /// - Throws: `HumeError` when `manifest.jsonl` is missing or malformed.
    public init(directory: URL) throws {
        self.directory = directory
        self.name = directory.lastPathComponent
        generation = try DatabaseGeneration.read(directory: directory)
        let path = directory.appendingPathComponent("manifest.jsonl").path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HumeError(.unknown, "The database \(directory.path) has no readable manifest.jsonl; run Ops/prepare-data.sh.")
        }
        manifestDigest = Database.digest(data)
        var items: [DatabaseItem] = []
        var lineNo = 0
        let limit = generation?.count ?? Int.max
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            if items.count == limit { break }
            lineNo += 1
            let j = try JSON.parse(line, what: "\(path) line \(lineNo)")
            func str(_ k: String) throws -> String {
                guard let s = j[k]?.string else {
                    throw HumeError(.invalidInput, "\(path) line \(lineNo) has no string field \"\(k)\".")
                }
                return s
            }
            guard let id = j["id"]?.int, id == items.count else {
                throw HumeError(.invalidInput, "\(path) line \(lineNo) must have id \(items.count) (ids are dense and in order).")
            }
            // Labels are optional: a database without groups or subgroups has "" (no label); without a concept, each
            // caption is its own concept; without a split, every item is in the train split.
            func optional(_ k: String, _ fallback: String) throws -> String {
                guard let v = j[k], v != .null else { return fallback }
                guard let s = v.string else { throw HumeError(.invalidInput, "\(path) line \(lineNo) has a field \"\(k)\" that is not a string.") }
                return s
            }
            let kws = (j["keywords"]?.array ?? []).compactMap(\.string)
            let caption = try str("caption")
            items.append(DatabaseItem(id: id, caption: caption, keywords: kws, group: try optional("group", ""),
                                      subgroup: try optional("subgroup", ""), concept: try optional("concept", caption),
                                      split: try optional("split", "train"), style: try optional("style", ""),
                                      source: j["source"]?.string ?? "", digest: j["sha256"]?.string,
                                      side: j["side"]?.int.flatMap { $0 > 0 ? $0 : nil }))
        }
        if let generation, items.count < generation.count {
            throw HumeError(.invalidInput, "\(path) lists \(items.count) items but generation \(generation.number) commits \(generation.count).")
        }
        self.items = items
    }

    /// Number of items.
    public var count: Int { items.count }

    /// Where a database's images come from and under which licence (`info.json`'s `attribution`, Ops/DATABASES.md).
    public struct Attribution: Sendable, Equatable {
        /// The source's name ("OpenMoji").
        public var name: String
        /// SPDX licence id ("CC-BY-SA-4.0").
        public var licence: String
        /// The upstream project.
        public var url: String
        /// The copyright line.
        public var copyright: String
        /// How many of the database's items come from it.
        public var count: Int

        public init(name: String, licence: String, url: String, copyright: String, count: Int) {
            self.name = name
            self.licence = licence
            self.url = url
            self.copyright = copyright
            self.count = count
        }

        /// One line for a person: "OpenMoji (CC-BY-SA-4.0, https://openmoji.org): 3,655 images; © …".
        public var line: String {
            let about = [licence, url].filter { !$0.isEmpty }.joined(separator: ", ")
            return name + (about.isEmpty ? "" : " (\(about))") + ": \(count) images" + (copyright.isEmpty ? "" : "; \(copyright)")
        }
    }

    /// When `hume db create` made the database (`info.json`'s `created_at`), nil for a built-in one.
    public var createdAt: String? { info?["created_at"]?.string }

    /// `info.json`, nil when missing or malformed.
    public var info: JSON? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("info.json").path) else { return nil }
        return try? JSON.parse([UInt8](data), what: "info.json")
    }

    /// The sources of the database's images, from `info.json`; empty when it records none.
    public var attribution: [Attribution] {
        guard let list = info?["attribution"]?.array else { return [] }
        return list.compactMap { a in
            guard let name = a["name"]?.string else { return nil }
            return Attribution(name: name, licence: a["licence"]?.string ?? "", url: a["url"]?.string ?? "",
                               copyright: a["copyright"]?.string ?? "", count: a["count"]?.int ?? 0)
        }
    }

    /// The sides of the square image stores a database holds (`images<side>.rgb`, Ops/DATABASES.md): every size a job
    /// may ask for.
    public static let sides = GenerateParameters.sizes

    /// Whether the database has its store at `side`: one built before 128² stores existed has none at 128.
    public func hasImages(side: Int) -> Bool {
        Database.sides.contains(side) && FileManager.default.fileExists(atPath: imagesPath(side: side).path)
    }

    /// Path of the image store at `side` (`images<side>.rgb`).
    public func imagesPath(side: Int) -> URL { directory.appendingPathComponent("images\(side).rgb") }

    /// The memory-mapped image store at `side` (32, 64 or 128).
    /// - Throws: `HumeError` for another side, a missing file (for a 128² store absent from a database built before
    ///   there were any, one sentence naming the rebuild), or a size that does not match the manifest.
    public func images(side: Int) throws -> ImageStore {
        guard Database.sides.contains(side) else {
            throw HumeError(.invalidInput, "Image size \(side) is not stored; databases hold 32, 64 and 128.")
        }
        let path = imagesPath(side: side).path
        if side == 128, !FileManager.default.fileExists(atPath: path) {
            throw HumeError(.unknown, Database.missing128(name: name, madeByHumeDB: generation != nil))
        }
        return try ImageStore(path: path, side: side, expectedCount: count, allowTail: generation != nil)
    }

    /// The sentence for a database built before 128² stores: what has none, and the command that gives it one.
    static func missing128(name: String, madeByHumeDB: Bool) -> String {
        let fix = madeByHumeDB
            ? "remove it and create it again from its pictures (`hume db remove \(name)`, then `hume db create \(name) --images DIR`)"
            : "run `Ops/prepare-data.sh`, which rebuilds it with Ops/build-db.sh and indexes it again"
        return "The database \"\(name)\" has no 128×128 images (images128.rgb; it was built before there were any); \(fix)."
    }

    /// Path of the caption embeddings (`embeddings.f32`: count × 384 little-endian float32, no header).
    public var embeddingsPath: URL { directory.appendingPathComponent("embeddings.f32") }
    /// Path of the FAISS index: the committed generation's (`index-<N>.faiss`), else `index.faiss`.
    public var indexPath: URL { directory.appendingPathComponent(generation?.indexFile ?? "index.faiss") }
    /// Path of the stamp that says which manifest and model built the embeddings and index (`index.stamp`).
    public var indexStampPath: URL { directory.appendingPathComponent("index.stamp") }

    /// The caption embeddings, memory-mapped.
    /// - Throws: `HumeError` when the file is missing (run `hume index build`) or not count × 384 floats.
    public func embeddings() throws -> Embeddings {
        let path = embeddingsPath.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw HumeError(.unknown, "The database \(name) has no embeddings.f32; run `hume index build --database \(name)` (or Ops/prepare-data.sh).")
        }
        let f = try MappedFile(path: path)
        let need = count * Database.dimension * 4
        guard f.count == need || (generation != nil && f.count > need) else {
            throw HumeError(.invalidInput, "\(path) is \(f.count) bytes but \(count) items × \(Database.dimension) float32 need \(count * Database.dimension * 4); rebuild it with `hume index build --database \(name)`.")
        }
        return Embeddings(file: f, count: count, dimension: Database.dimension)
    }

    /// 64-bit FNV-1a of `data`, as 16 hex digits.
    static func digest(_ data: Data) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in data { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(format: "%016llx", h)
    }
}

/// N × d float32 vectors, memory-mapped, row-major.
public struct Embeddings: Sendable {
    let file: MappedFile
    /// Number of vectors.
    public let count: Int
    /// Dimension of each vector.
    public let dimension: Int

    /// All vectors (valid while this value lives).
    public var all: UnsafeBufferPointer<Float> {
        guard let base = file.base else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: count * dimension)
    }

    /// A copy of vector `id`.
    public func vector(_ id: Int) -> [Float] {
        precondition(id >= 0 && id < count)
        return Array(all[id * dimension ..< (id + 1) * dimension])
    }
}

/// The committed state of a database that `hume db` creates and grows (`generation.json`, Ops/DATABASES.md).
///
/// `hume db add` appends to the stores, writes a new index file, and then replaces `generation.json` by a rename:
/// that rename is the commit. Readers take the first `count` items of each store and the generation's index file,
/// so they see the old generation or the new one, never a mixture.
public struct DatabaseGeneration: Sendable, Equatable {
    /// Increases by one with every commit (1 for a new database).
    public var number: Int
    /// Committed items.
    public var count: Int
    /// The index file of this generation, in the database folder.
    public var indexFile: String
    /// The FAISS index type (`flat`, `hnsw`, `ivfpq`).
    public var indexType: String
    /// What embedded the captions (model and vocabulary digests), so a different model is noticed.
    public var model: String

    public init(number: Int, count: Int, indexFile: String, indexType: String, model: String) {
        self.number = number
        self.count = count
        self.indexFile = indexFile
        self.indexType = indexType
        self.model = model
    }

    public static let fileName = "generation.json"

    public var json: JSON {
        .object(["format": JSON(1), "generation": JSON(number), "count": JSON(count), "index": .string(indexFile),
                 "index_type": .string(indexType), "model": .string(model)])
    }

    /// The generation committed in `directory`, nil when it has none (a database Ops/build-db.sh made).
    /// - Throws: `HumeError(.invalidInput)` when the file is not a generation this version reads.
    public static func read(directory: URL) throws -> DatabaseGeneration? {
        let path = directory.appendingPathComponent(fileName).path
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let j = try JSON.parse([UInt8](data), what: path)
        guard j["format"]?.int == 1, let n = j["generation"]?.int, let c = j["count"]?.int, c >= 0,
              let ix = j["index"]?.string, !ix.contains("/"), let t = j["index_type"]?.string else {
            throw HumeError(.invalidInput, "\(path) is not a format-1 database generation.")
        }
        return DatabaseGeneration(number: n, count: c, indexFile: ix, indexType: t, model: j["model"]?.string ?? "")
    }
}
