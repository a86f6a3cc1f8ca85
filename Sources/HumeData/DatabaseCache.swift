import Foundation
import HumeCore

/// Values opened from the databases of one folder (an index, the image stores), each opened on first use and opened
/// again when its database changes on disk: how a running worker picks up `hume db add` (or a rebuilt database)
/// without a restart.
///
/// A database's change token is the identity of the file its commit replaces: `generation.json` for a database
/// `hume db` made, else `manifest.jsonl` (Ops/build-db.sh replaces the whole folder). Both are replaced by a rename,
/// so a new inode means a new version. The token is read on every use by default (one `stat`, about a microsecond,
/// so a job submitted after `hume db add` returns sees the new version); `recheckSeconds` can space the checks out,
/// and `fresh: true` checks at once regardless.
public final class DatabaseCache<Value: Sendable>: @unchecked Sendable {
    // Safe: `entries` is only touched under `lock`; everything else is immutable.
    public let root: URL
    /// `root.path`, made once: every `get` stats a file under it.
    let rootPath: String
    let recheckSeconds: Double
    let open: @Sendable (String) throws -> Value
    private let lock = NSLock()
    private var entries: [String: (value: Value, token: ChangeToken?, checkedAt: UInt64, files: [String])] = [:]

    /// - Parameters:
    ///   - root: the folder holding the databases.
    ///   - open: opens the value of a database by name (it may throw one sentence for an unknown database).
    public init(root: URL, recheckSeconds: Double = 0, open: @escaping @Sendable (String) throws -> Value) {
        self.root = root
        self.rootPath = root.path
        self.recheckSeconds = recheckSeconds
        self.open = open
    }

    /// The identity of a version of a database: device, inode, modification time and size of its commit file.
    struct ChangeToken: Equatable {
        var device: UInt64, inode: UInt64, seconds: Int, nanoseconds: Int, size: Int64
    }

    /// The files whose identity tells a new version of the database in `directory`, in the order they are looked for:
    /// `generation.json` then `manifest.jsonl` for a database `hume db` made; `manifest.jsonl` alone for one
    /// Ops/build-db.sh made, which `hume db add` refuses and which changes only by its folder being replaced — and
    /// then `manifest.jsonl` is a new file too. One `stat` per use instead of two for the built-in databases.
    static func commitFiles(directory: String) -> [String] {
        let generation = directory + "/" + DatabaseGeneration.fileName, manifest = directory + "/manifest.jsonl"
        var st = stat()
        return stat(generation, &st) == 0 ? [generation, manifest] : [manifest]
    }

    /// The current version of the database whose commit files are `files` (`commitFiles`); nil when it does not exist.
    static func changeToken(files: [String]) -> ChangeToken? {
        for file in files {
            var st = stat()
            if stat(file, &st) == 0 {
                return ChangeToken(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), seconds: st.st_mtim.tv_sec,
                                   nanoseconds: st.st_mtim.tv_nsec, size: Int64(st.st_size))
            }
        }
        return nil
    }

    /// The value for database `name`, opened again if the database changed since it was opened.
    /// - Parameter fresh: check for a new version now instead of at most every `recheckSeconds`.
    public func get(_ name: String, fresh: Bool = false) throws -> Value {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        let cached = entries[name]
        lock.unlock()
        if let cached, !fresh, Double(now &- cached.checkedAt) < recheckSeconds * 1e9 { return cached.value }
        // The paths are made once per version: this runs for every query the retrieve stage answers.
        let directory = rootPath + "/" + name
        let files = cached?.files ?? Self.commitFiles(directory: directory)
        let token = Self.changeToken(files: files)
        if let cached, cached.token == token {
            lock.lock()
            entries[name]?.checkedAt = now
            lock.unlock()
            return cached.value
        }
        // A new version (or the first use): the files to watch are chosen again and their token read before opening,
        // so a change during the open is seen at the next use. Opened outside the lock: opening a large index takes
        // a while, and two racing opens are harmless.
        let watched = Self.commitFiles(directory: directory)
        let opened = watched == files ? token : Self.changeToken(files: watched)
        let value = try open(name)
        lock.lock()
        entries[name] = (value, opened, now, watched)
        lock.unlock()
        return value
    }
}
