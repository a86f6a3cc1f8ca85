import Foundation
import HumeCore
import HumeStages

/// A database with its 32² and 64² image stores mapped.
///
/// This is how the denoise and edit stages see a database: the manifest for ids and captions, and the
/// memory-mapped pixels of the neighbours they condition on. Opening one maps both stores once.
public final class DatabaseImages: Sendable {
    /// The manifest and paths.
    public let database: Database
    let store32: ImageStore
    let store64: ImageStore

    /// Maps the image stores of `database`.
    /// - Throws: `HumeError` when a store is missing or does not match the manifest.
    public init(_ database: Database) throws {
        self.database = database
        store32 = try database.images(side: 32)
        store64 = try database.images(side: 64)
    }

    /// Opens the database `name` under `root` (see `Database.init(named:root:)`) and maps its stores.
    /// - Throws: `HumeError(.unknown)` naming the available databases when `name` is not built.
    public convenience init(named name: String, root: URL) throws {
        try self.init(Database(named: name, root: root))
    }

    /// The database's name.
    public var name: String { database.name }
    /// Number of items (ids run from 0 to `count - 1`).
    public var count: Int { database.count }

    /// The store of `side` (32 or 64).
    /// - Throws: `StageInputError` for any other side.
    public func store(side: Int) throws -> ImageStore {
        switch side {
        case 32: return store32
        case 64: return store64
        default: throw StageInputError("Image size \(side) is not stored; databases hold 32 and 64.")
        }
    }

    /// A copy of the interleaved RGB8 pixels of image `id` at `side`.
    public func rgb8(_ id: Int, side: Int) throws -> [UInt8] {
        try check(ids: [id])
        return try store(side: side).copy(id: id)
    }

    /// Checks neighbour ids, with one sentence naming the first bad one.
    /// - Throws: `StageInputError`.
    public func check(ids: [Int]) throws {
        if let bad = ids.first(where: { $0 < 0 || $0 >= count }) {
            throw StageInputError("Neighbour id \(bad) is not in the database \"\(name)\", whose ids run from 0 to \(count - 1).")
        }
    }
}
