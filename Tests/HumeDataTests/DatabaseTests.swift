import Foundation
import HumeCore
import HumeStages
import Testing
@testable import HumeData

/// Opens a built database or fails (never skips) with the command that builds it.
func openBuilt(_ name: String) throws -> Database {
    do {
        return try Database(named: name, root: testPaths.databases)
    } catch {
        Issue.record("The \(name) database is not built under \(testPaths.databases.path): run Ops/prepare-data.sh first (\(error)).")
        throw error
    }
}

@Suite("Image databases")
struct DatabaseTests {
    @Test("emoji manifest: count in range, captions present, no concept in both splits", arguments: [("emoji", 3_400...4_000), ("tuxpaint", 700...1_100)])
    func manifest(name: String, range: ClosedRange<Int>) throws {
        let db = try openBuilt(name)
        #expect(range.contains(db.count), "\(name) has \(db.count) items, expected \(range)")
        for item in db.items {
            #expect(!item.caption.trimmingCharacters(in: .whitespaces).isEmpty, "item \(item.id) has no caption")
            #expect(item.split == "train" || item.split == "test", "item \(item.id) split \(item.split)")
        }
        let trainConcepts = Set(db.items.filter { $0.split == "train" }.map(\.concept))
        let testConcepts = Set(db.items.filter { $0.split == "test" }.map(\.concept))
        #expect(trainConcepts.isDisjoint(with: testConcepts))
        #expect(!testConcepts.isEmpty && !trainConcepts.isEmpty)
    }

    @Test("image stores map every item at 32, 64 and 128, and unknown ids are refused")
    func imageStores() throws {
        let db = try openBuilt("emoji")
        for side in [32, 64, 128] {
            let store = try db.images(side: side)
            #expect(store.count == db.count)
            let last = try store.image(id: db.count - 1)
            #expect(last.count == side * side * 3)
            // Padding is white: the top-left pixel of most emoji is background.
            #expect(try store.image(id: 0)[0] > 200)
            #expect(throws: HumeError.self) { try store.image(id: db.count) }
            #expect(throws: HumeError.self) { try store.image(id: -1) }
        }
        #expect(throws: HumeError.self) { try db.images(side: 48) }
        #expect(throws: HumeError.self) { try db.images(side: 256) }
        #expect(Database.sides == [32, 64, 128] && db.hasImages(side: 128))
        // The same pictures at every side: a 128² tile halved by a box filter is close to the 64² one.
        let large = try db.images(side: 128), small = try db.images(side: 64)
        for id in stride(from: 0, to: db.count, by: 97) {
            let l = try large.image(id: id), s = try small.image(id: id)
            var diff = 0
            for y in 0..<64 {
                for x in 0..<64 {
                    for c in 0..<3 {
                        let sum = (0..<4).reduce(0) { $0 + Int(l[((2 * y + $1 / 2) * 128 + 2 * x + $1 % 2) * 3 + c]) }
                        diff += abs((sum + 2) / 4 - Int(s[(y * 64 + x) * 3 + c]))
                    }
                }
            }
            #expect(Double(diff) / Double(64 * 64 * 3) < 8, "item \(id): the 128² tile is not the 64² one's picture")
        }
        let images = try DatabaseImages(db)
        #expect(try images.store(side: 128).count == db.count && images.hasStore(side: 128))
        #expect(throws: StageInputError.self) { try images.store(side: 96) }
    }

    @Test("a database built before 128² stores opens for 32 and 64; 128 is one sentence naming the rebuild")
    func without128() throws {
        let built = try openBuilt("tuxpaint")
        let dir = URL(fileURLWithPath: NSTemporaryDirectory() + "hume-no128-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let copy = dir.appendingPathComponent("tuxpaint")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        for f in ["manifest.jsonl", "info.json", "images32.rgb", "images64.rgb"] {
            try FileManager.default.createSymbolicLink(at: copy.appendingPathComponent(f), withDestinationURL: built.directory.appendingPathComponent(f))
        }
        let db = try Database(named: "tuxpaint", root: dir)
        #expect(!db.hasImages(side: 128) && db.hasImages(side: 64))
        do {
            _ = try db.images(side: 128)
            Issue.record("a missing 128² store must be refused")
        } catch let e as HumeError {
            #expect(e.message == "The database \"tuxpaint\" has no 128×128 images (images128.rgb; it was built before there were any); run `Ops/prepare-data.sh`, which rebuilds it with Ops/build-db.sh and indexes it again.")
        }
        let images = try DatabaseImages(db)
        #expect(try images.store(side: 32).count == built.count && images.store(side: 64).count == built.count)
        #expect(!images.hasStore(side: 128))
        do {
            _ = try images.store(side: 128)
            Issue.record("a missing 128² store must be refused")
        } catch let e as StageInputError {
            #expect(e.message.hasPrefix("The database \"tuxpaint\" has no 128×128 images") && e.message.hasSuffix(".")
                    && e.message.contains("Ops/prepare-data.sh"))
        }
    }

    @Test("an unknown database name is one sentence listing the available ones")
    func unknownDatabase() throws {
        do {
            _ = try Database(named: "no-such-db", root: testPaths.databases)
            Issue.record("opened a database that does not exist")
        } catch let e as HumeError {
            #expect(e.code == .unknown)
            #expect(e.message.contains("no-such-db"))
            #expect(e.message.contains("emoji"))
        }
        #expect(throws: HumeError.self) { try Database(named: "../emoji", root: testPaths.databases) }
    }

    @Test("the database cache reopens a database when its folder is replaced or its generation committed, and only then; told by inotify or by a stat on every use",
          arguments: [true, false])
    func cacheSeesNewVersions(watch: Bool) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hume-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let opens = Counter()
        let cache = DatabaseCache<Int>(root: root, watch: watch) { _ in opens.next() }
        // A folder written aside and moved into place, as Ops/build-db.sh and hume db create do.
        func replace(_ files: [String: String]) throws {
            let aside = root.appendingPathComponent(".new"), live = root.appendingPathComponent("db"), old = root.appendingPathComponent(".old")
            try FileManager.default.createDirectory(at: aside, withIntermediateDirectories: true)
            for (name, text) in files { try Data(text.utf8).write(to: aside.appendingPathComponent(name)) }
            if FileManager.default.fileExists(atPath: live.path) { try FileManager.default.moveItem(at: live, to: old) }
            try FileManager.default.moveItem(at: aside, to: live)
            try? FileManager.default.removeItem(at: old)
        }
        try replace(["manifest.jsonl": "{}\n"])
        #expect(try cache.get("db") == 1 && cache.get("db") == 1, "opened once, then cached")
        #expect(DatabaseCache<Int>.commitFiles(directory: root.appendingPathComponent("db").path).count == 1, "no generation.json: the manifest alone")
        try replace(["manifest.jsonl": "{}\n"])   // the same bytes, a new folder
        #expect(try cache.get("db") == 2)
        try replace(["manifest.jsonl": "{}\n", DatabaseGeneration.fileName: "1"])
        #expect(try cache.get("db") == 3 && cache.get("db") == 3)
        // A commit of hume db: generation.json replaced by a rename, the manifest untouched.
        let generation = root.appendingPathComponent("db").appendingPathComponent(DatabaseGeneration.fileName)
        try Data("2".utf8).write(to: generation.appendingPathExtension("tmp"))
        #expect(rename(generation.appendingPathExtension("tmp").path, generation.path) == 0)
        #expect(try cache.get("db") == 4 && cache.get("db") == 4)
        // Written in place (not Hume's way, but seen): a new modification time or size.
        try Data("3 and more".utf8).write(to: generation, options: [])
        #expect(try cache.get("db") == 5 && cache.get("db") == 5)
        // Other files in the folder or the root change: checked, not reopened.
        try Data("x".utf8).write(to: root.appendingPathComponent("db").appendingPathComponent("images32.rgb"))
        try FileManager.default.createDirectory(at: root.appendingPathComponent("other"), withIntermediateDirectories: true)
        #expect(try cache.get("db") == 5)
    }

    @Test("the folder watch counts events in watched folders only, and none when nothing happened")
    func folderWatch() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hume-watch-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        let db = root.appendingPathComponent("db"), elsewhere = root.appendingPathComponent("elsewhere")
        for d in [db, elsewhere] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        let watch = FolderWatch()
        try #require(watch.isWatching, "inotify is available on Linux")
        watch.watch(root: root.path, directory: db.path)
        let start = watch.poll()
        #expect(watch.poll() == start && watch.poll() == start, "no events, no change")
        try Data("a".utf8).write(to: elsewhere.appendingPathComponent("f"))
        #expect(watch.poll() == start, "a folder inside another folder is not watched")
        try Data("a".utf8).write(to: db.appendingPathComponent("manifest.jsonl.tmp"))
        #expect(rename(db.appendingPathComponent("manifest.jsonl.tmp").path, db.appendingPathComponent("manifest.jsonl").path) == 0)
        let afterRename = watch.poll()
        #expect(afterRename == start + 1, "events seen at the next poll, counted once however many")
        #expect(watch.poll() == afterRename)
        try FileManager.default.moveItem(at: elsewhere, to: root.appendingPathComponent("moved"))
        #expect(watch.poll() == afterRename + 1, "the root's entries are watched")
        #expect(!FolderWatch(enabled: false).isWatching)
    }
}

/// Counts calls, from any thread.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
}
