import Foundation
import HumeCore

/// Values opened from the databases of one folder (an index, the image stores), each opened on first use and opened
/// again when its database changes on disk: how a running worker picks up `hume db add` (or a rebuilt database)
/// without a restart.
///
/// A database's change token is the identity of the file its commit replaces: `generation.json` for a database
/// `hume db` made, else `manifest.jsonl` (Ops/build-db.sh replaces the whole folder). Both are replaced by a rename,
/// so a new inode means a new version. The token is read again (one `stat`) whenever something may have changed:
/// an inotify instance (`FolderWatch`) watches the root folder's entries and each open database's folder, and a use
/// with no event queued since the last check, within the last second, returns the open value after one non-blocking
/// `read` (a third of a `stat`, and no path walk). The kernel queues the event before `rename` returns, so a job that
/// reaches a stage after `hume db add` returns sees the new version, as with a `stat` on every use. Without inotify
/// (or on a file system whose changes it does not see, such as another machine writing over NFS) every use stats, at
/// most a second late. `fresh: true` checks at once regardless.
public final class DatabaseCache<Value: Sendable>: @unchecked Sendable {
    // Safe: `entries` and `watch` are only touched under `lock`; everything else is immutable.
    public let root: URL
    /// `root.path`, made once: every check stats a file under it.
    @usableFromInline let rootPath: String
    @usableFromInline let open: @Sendable (String) throws -> Value
    @usableFromInline let lock = NSLock()
    @usableFromInline var entries: [String: Entry] = [:]
    @usableFromInline let watch: FolderWatch
    /// How long a value is trusted on the watch's word alone, in nanoseconds: the bound on staleness where inotify
    /// misses a change.
    @usableFromInline static var watchedTrustNanoseconds: UInt64 { 1_000_000_000 }

    /// An open value and what it was opened from.
    @usableFromInline struct Entry {
        @usableFromInline var value: Value
        @usableFromInline var token: ChangeToken?
        /// When the token was last compared, and the watch's count of events then.
        @usableFromInline var checkedAt: UInt64, checkedEpoch: UInt64
        /// The commit files whose identity is the token (`commitFiles`).
        @usableFromInline var files: [String]

        @usableFromInline init(value: Value, token: ChangeToken?, checkedAt: UInt64, checkedEpoch: UInt64, files: [String]) {
            self.value = value
            self.token = token
            self.checkedAt = checkedAt
            self.checkedEpoch = checkedEpoch
            self.files = files
        }
    }

    /// - Parameters:
    ///   - root: the folder holding the databases.
    ///   - watch: let inotify tell when to check (false: check on every use, as where inotify is missing).
    ///   - open: opens the value of a database by name (it may throw one sentence for an unknown database).
    public init(root: URL, watch: Bool = true, open: @escaping @Sendable (String) throws -> Value) {
        self.root = root
        self.watch = FolderWatch(enabled: watch)
        self.rootPath = root.path
        self.open = open
    }

    /// The identity of a version of a database: device, inode, modification time and size of its commit file.
    @usableFromInline struct ChangeToken: Equatable {
        var device: UInt64, inode: UInt64, seconds: Int, nanoseconds: Int, size: Int64
    }

    /// The files whose identity tells a new version of the database in `directory`, in the order they are looked for:
    /// `generation.json` then `manifest.jsonl` for a database `hume db` made; `manifest.jsonl` alone for one
    /// Ops/build-db.sh made, which `hume db add` refuses and which changes only by its folder being replaced — and
    /// then `manifest.jsonl` is a new file too. One `stat` per use instead of two for the built-in databases.
    @usableFromInline static func commitFiles(directory: String) -> [String] {
        let generation = directory + "/" + DatabaseGeneration.fileName, manifest = directory + "/manifest.jsonl"
        var st = stat()
        return stat(generation, &st) == 0 ? [generation, manifest] : [manifest]
    }

    /// The current version of the database whose commit files are `files` (`commitFiles`); nil when it does not exist.
    @usableFromInline static func changeToken(files: [String]) -> ChangeToken? {
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
    /// - Parameter fresh: check for a new version now, whatever the watch says.
    /// Inlinable so that it is specialised for the caller's `Value`: generic, it looked up type metadata at run time on
    /// every call, a fifth of its cost.
    @inlinable public func get(_ name: String, fresh: Bool = false) throws -> Value {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.lock()
        // Drained before the token is read: an event queued after this is seen at the next use.
        let epoch = watch.poll(), watching = watch.isWatching   // read under the lock: `watch` may turn itself off
        let cached = entries[name]
        lock.unlock()
        if let cached, !fresh {
            if watching, cached.checkedEpoch == epoch, now &- cached.checkedAt < Self.watchedTrustNanoseconds { return cached.value }
        }
        // The paths are made once per version.
        let directory = rootPath + "/" + name
        let files = cached?.files ?? Self.commitFiles(directory: directory)
        let token = Self.changeToken(files: files)
        if let cached, cached.token == token {
            lock.lock()
            entries[name]?.checkedAt = now
            entries[name]?.checkedEpoch = epoch
            lock.unlock()
            return cached.value
        }
        // A new version (or the first use): the folders are watched, then the files to watch are chosen again and
        // their token read before opening, so a change during the open is seen at the next use. Opened outside the
        // lock: opening a large index takes a while, and two racing opens are harmless.
        lock.lock()
        watch.watch(root: rootPath, directory: directory)
        let watchedEpoch = watch.poll()
        lock.unlock()
        let watched = Self.commitFiles(directory: directory)
        let opened = watched == files && watchedEpoch == epoch ? token : Self.changeToken(files: watched)
        let value = try open(name)
        lock.lock()
        entries[name] = Entry(value: value, token: opened, checkedAt: now, checkedEpoch: watchedEpoch, files: watched)
        lock.unlock()
        return value
    }
}

/// Whether anything happened in a set of folders since the last look, told by an inotify instance: `poll` drains
/// its queue with one non-blocking `read` and counts the reads that found events. Not thread-safe (`DatabaseCache`
/// holds its lock). If inotify cannot be had, or a watch cannot be added, `isWatching` is false for good and the
/// caller checks every time.
@usableFromInline final class FolderWatch {
    private let fd: Int32
    @usableFromInline private(set) var isWatching: Bool
    /// Bumped by every `poll` that found an event (or could not tell).
    private(set) var epoch: UInt64 = 0
    private var watchedRoot = false
    private var buffer = [UInt8](repeating: 0, count: 4096)

    init(enabled: Bool = true) {
        #if os(Linux)
        fd = enabled ? inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC)) : -1
        #else
        fd = -1
        #endif
        isWatching = fd >= 0
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Watches `root`'s entries (a database folder created, replaced or removed) and `directory`'s (a commit file
    /// renamed, written or removed). A folder already watched keeps its watch; a replaced one gets a new one.
    @usableFromInline func watch(root: String, directory: String) {
        #if os(Linux)
        guard isWatching else { return }
        let entries = UInt32(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
        if !watchedRoot {
            watchedRoot = inotify_add_watch(fd, root, entries) >= 0
            if !watchedRoot { isWatching = false; return }
        }
        // A missing folder is not watched; its creation shows in the root's events.
        let contents = entries | UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)
        if inotify_add_watch(fd, directory, contents) < 0 && errno != ENOENT { isWatching = false }
        #endif
    }

    /// The count of polls that found something, after draining the queue.
    @usableFromInline func poll() -> UInt64 {
        guard isWatching else { return epoch }
        var found = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { found = true; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno != EAGAIN { found = true }   // cannot tell: assume a change
            break
        }
        if found { epoch &+= 1 }
        return epoch
    }
}
