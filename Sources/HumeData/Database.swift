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

    public init(id: Int, caption: String, keywords: [String], group: String, subgroup: String, concept: String, split: String,
                style: String = "") {
        self.id = id
        self.caption = caption
        self.keywords = keywords
        self.group = group
        self.subgroup = subgroup
        self.concept = concept
        self.split = split
        self.style = style
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
        let path = directory.appendingPathComponent("manifest.jsonl").path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HumeError(.unknown, "The database \(directory.path) has no readable manifest.jsonl; run Ops/prepare-data.sh.")
        }
        manifestDigest = Database.digest(data)
        var items: [DatabaseItem] = []
        var lineNo = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
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
                                      split: try optional("split", "train"), style: try optional("style", "")))
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
            "\(name) (\(licence), \(url)): \(count) images; \(copyright)"
        }
    }

    /// The sources of the database's images, from `info.json`; empty when it records none.
    public var attribution: [Attribution] {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("info.json").path),
              let info = try? JSON.parse([UInt8](data), what: "info.json"), let list = info["attribution"]?.array else { return [] }
        return list.compactMap { a in
            guard let name = a["name"]?.string else { return nil }
            return Attribution(name: name, licence: a["licence"]?.string ?? "", url: a["url"]?.string ?? "",
                               copyright: a["copyright"]?.string ?? "", count: a["count"]?.int ?? 0)
        }
    }

    /// The memory-mapped image store at `side` (32 or 64).
    /// - Throws: `HumeError` for another side, a missing file, or a size that does not match the manifest.
    public func images(side: Int) throws -> ImageStore {
        guard side == 32 || side == 64 else {
            throw HumeError(.invalidInput, "Image size \(side) is not stored; databases hold 32 and 64.")
        }
        return try ImageStore(path: directory.appendingPathComponent("images\(side).rgb").path, side: side, expectedCount: count)
    }

    /// Path of the caption embeddings (`embeddings.f32`: count × 384 little-endian float32, no header).
    public var embeddingsPath: URL { directory.appendingPathComponent("embeddings.f32") }
    /// Path of the FAISS index (`index.faiss`).
    public var indexPath: URL { directory.appendingPathComponent("index.faiss") }
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
        guard f.count == count * Database.dimension * 4 else {
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
