import Foundation
import HumeCore
import HumeStages

/// A database with its 32², 64² and 128² image stores mapped.
///
/// This is how the denoise and edit stages see a database: the manifest for ids and captions, and the
/// memory-mapped pixels of the neighbours they condition on. Opening one maps the stores once.
///
/// A database built before there were 128² stores (no `images128.rgb`) still opens and serves 32 and 64; asking it
/// for 128 is one sentence naming the rebuild.
public final class DatabaseImages: Sendable {
    /// The manifest and paths.
    public let database: Database
    let store32: ImageStore
    let store64: ImageStore
    /// nil when the database has no 128² store (built before there were any).
    let store128: ImageStore?

    /// Maps the image stores of `database`.
    /// - Throws: `HumeError` when the 32² or 64² store is missing, or a store does not match the manifest.
    public init(_ database: Database) throws {
        self.database = database
        store32 = try database.images(side: 32)
        store64 = try database.images(side: 64)
        store128 = database.hasImages(side: 128) ? try database.images(side: 128) : nil
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

    /// Whether the store of `side` is there (32 and 64 always are; 128 is absent from a database built before it).
    public func hasStore(side: Int) -> Bool {
        side == 32 || side == 64 || (side == 128 && store128 != nil)
    }

    /// The store of `side` (32, 64 or 128).
    /// - Throws: `StageInputError` for any other side, or for 128 when the database was built without that store.
    public func store(side: Int) throws -> ImageStore {
        switch side {
        case 32: return store32
        case 64: return store64
        case 128:
            guard let store128 else { throw StageInputError(Database.missing128(name: name, madeByHumeDB: database.generation != nil)) }
            return store128
        default: throw StageInputError("Image size \(side) is not stored; databases hold 32, 64 and 128.")
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
