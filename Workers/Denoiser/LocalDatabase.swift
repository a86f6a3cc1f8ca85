import Foundation
import HumeDiffusion
import HumeEmbedStage

// A local stand-in for HumeData's ImageStore/Database (written on the `retrieve` branch, not merged yet):
// it reads the files Ops/DATABASES.md describes and nothing more. Swap for HumeData once it lands.

/// One manifest line.
public struct DatabaseItem: Sendable, Decodable {
    public let id: Int
    public let caption: String
    public let group: String
    public let subgroup: String
    public let concept: String
    public let split: String
}

/// An image database: the manifest and the memory-mapped 32² and 64² RGB8 stores.
public final class LocalDatabase: Sendable {
    public let name: String
    public let directory: URL
    public let items: [DatabaseItem]
    let store32: Data
    let store64: Data

    /// `${HUME_HOME:-~/.cache/hume}/db`.
    public static var root: URL {
        let env = ProcessInfo.processInfo.environment
        if let h = env["HUME_HOME"], !h.isEmpty { return URL(fileURLWithPath: h).appendingPathComponent("db") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/hume/db")
    }

    /// Opens a database by name.
    /// - Throws: `StageInputError` naming the missing file (and the script that builds it).
    public init(name: String, root: URL = LocalDatabase.root) throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw StageInputError("The database name \"\(name)\" is not allowed; use a name like \"emoji\" or \"tuxpaint\".")
        }
        self.name = name
        directory = root.appendingPathComponent(name)
        let manifest = directory.appendingPathComponent("manifest.jsonl")
        guard let text = try? String(contentsOf: manifest, encoding: .utf8) else {
            throw StageInputError("The database \"\(name)\" is not built (no \(manifest.path)); run Ops/prepare-data.sh (or Ops/build-db.sh \(name)).")
        }
        let decoder = JSONDecoder()
        items = try text.split(separator: "\n").map { try decoder.decode(DatabaseItem.self, from: Data($0.utf8)) }
        store32 = try Data(contentsOf: directory.appendingPathComponent("images32.rgb"), options: .alwaysMapped)
        store64 = try Data(contentsOf: directory.appendingPathComponent("images64.rgb"), options: .alwaysMapped)
        guard store32.count == items.count * 3072, store64.count == items.count * 12288 else {
            throw StageInputError("The database \"\(name)\" has image stores that do not match its \(items.count) manifest items; rebuild it with Ops/build-db.sh \(name).")
        }
    }

    public var count: Int { items.count }

    /// The RGB8 bytes of image `id` at side 32 or 64.
    public func rgb8(_ id: Int, side: Int) -> [UInt8] {
        let n = side * side * 3
        let store = side == 64 ? store64 : store32
        return [UInt8](store[(id * n)..<((id + 1) * n)])
    }

    /// Image `id` as a diffusion image in [-1, 1].
    public func image(_ id: Int, side: Int) throws -> RGBImage {
        try RGBImage(width: side, height: side, rgb8: rgb8(id, side: side))
    }

    /// Checks ids, with one sentence naming the first bad one.
    public func check(ids: [Int]) throws {
        if let bad = ids.first(where: { $0 < 0 || $0 >= count }) {
            throw StageInputError("Neighbour id \(bad) is not in the database \"\(name)\", whose ids run from 0 to \(count - 1).")
        }
    }
}

/// Brute-force caption retrieval (a local stand-in for the retrieve branch's FAISS stage): cosine over the
/// MiniLM embeddings of every caption, computed once and cached beside the user's cache.
public struct CaptionIndex: Sendable {
    public let dimension: Int
    public let vectors: [Float]
    public let count: Int

    /// Loads `embeddings.f32` from the database when present (count × 384 float32), else the stage cache
    /// `~/.cache/hume/stage-cache/<db>-captions.f32`, else embeds the captions with `embed` and writes that cache.
    public init(database: LocalDatabase, dimension: Int = 384, embed: ([String]) throws -> [Float]) throws {
        self.dimension = dimension
        count = database.count
        let expected = database.count * dimension * 4
        let own = database.directory.appendingPathComponent("embeddings.f32")
        let cacheDir = database.directory.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("stage-cache")
        let cache = cacheDir.appendingPathComponent("\(database.name)-captions.f32")
        for url in [own, cache] {
            if let data = try? Data(contentsOf: url), data.count == expected {
                vectors = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                return
            }
        }
        vectors = try embed(database.items.map(\.caption))
        try? FileManager.default.createDirectory(at: cacheDir, withIntermediateDirectories: true)
        try? vectors.withUnsafeBytes { Data($0) }.write(to: cache, options: .atomic)
    }

    /// The `k` best ids (and cosine scores) for a unit query among the ids `allowed` accepts.
    public func search(_ query: [Float], k: Int, allowed: (Int) -> Bool = { _ in true }) -> [(id: Int, score: Float)] {
        var scored: [(id: Int, score: Float)] = []
        scored.reserveCapacity(count)
        vectors.withUnsafeBufferPointer { v in
            for i in 0..<count where allowed(i) {
                var s: Float = 0
                let base = i * dimension
                for j in 0..<dimension { s += v[base + j] * query[j] }
                scored.append((i, s))
            }
        }
        scored.sort { $0.score > $1.score || ($0.score == $1.score && $0.id < $1.id) }
        return Array(scored.prefix(k))
    }
}
