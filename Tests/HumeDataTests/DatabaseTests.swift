import Foundation
import HumeCore
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

    @Test("image stores map every item at 32 and 64, and unknown ids are refused")
    func imageStores() throws {
        let db = try openBuilt("emoji")
        for side in [32, 64] {
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
}
