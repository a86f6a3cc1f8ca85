import Foundation
import GRDB
@testable import HumeBroker
import HumeCore
import Testing

/// The broker's SQLite journal on a real file: what one connection writes, a fresh connection reads back, as a
/// restarted broker would.
@Suite("Broker: SQLite journal")
struct SQLiteJournalTests {
    let path = NSTemporaryDirectory() + "hume-journal-\(UInt64.random(in: 0...UInt64.max)).sqlite"

    func withJournal<T>(_ body: (SQLiteJournal, Database) throws -> T) throws -> T {
        let queue = try SQLiteJournal.openQueue(path: path, sync: .normal)
        return try queue.inDatabase { db in try body(try SQLiteJournal(db), db) }
    }

    func row(_ i: Int, batch: String = "b") -> JournalJob {
        JournalJob(id: UInt64(i), key: "k\(i)", batch: batch, route: ["a", "b"], priority: 3, deadlineMs: 0,
                   params: Array("p\(i)".utf8), data: Array("d\(i)".utf8))
    }

    func cleanUp() { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }

    @Test("--sync full reaches SQLite: synchronous is FULL (2) on the journal's connection, NORMAL (1) for normal; WAL either way")
    func syncModeApplies() throws {
        defer { cleanUp() }
        for (mode, expected) in [(JournalSync.full, 2), (.normal, 1)] {
            let queue = try SQLiteJournal.openQueue(path: path, sync: mode)
            let (synchronous, journalMode) = try queue.inDatabase { db in
                (try Int.fetchOne(db, sql: "PRAGMA synchronous"), try String.fetchOne(db, sql: "PRAGMA journal_mode"))
            }
            #expect(synchronous == expected, "\(mode)")
            #expect(journalMode == "wal")
        }
    }

    @Test("Finished stages and ended jobs, written 64 rows per statement at commit, read back from a fresh connection")
    func roundTrip() throws {
        defer { cleanUp() }
        try withJournal { j, _ throws in
            try j.begin()
            for i in 1...150 { guard case .inserted = try j.insert(row(i)) else { Issue.record("k\(i) not inserted"); return } }
            for i in 1...100 { try j.advance(job: UInt64(i), stage: 1, output: Array("o\(i)".utf8)) }
            // 40 of the ended jobs had moved on a stage, 30 had not (and the journal is told so, as the broker does);
            // one ends as failed with an error sentence.
            for i in 61...130 {
                try j.finish(job: UInt64(i), status: i == 61 ? .failed : .done, body: i == 61 ? [] : Array("r\(i)".utf8),
                             error: i == 61 ? "It broke." : "", advanced: i <= 100)
            }
            try j.commit()
        }
        try withJournal { j, db throws in
            let active = try j.activeJobs()
            #expect(active.map(\.id) == (1...60).map(UInt64.init) + (131...150).map(UInt64.init))
            let first = try #require(active.first)
            #expect(first.stage == 1 && first.output == Array("o1".utf8) && first.data == Array("d1".utf8))
            #expect(first.route == ["a", "b"] && first.priority == 3 && first.params == Array("p1".utf8))
            let last = try #require(active.last)
            #expect(last.stage == 0 && last.output.isEmpty && last.status == .active)
            let counts = try #require(try j.batchCounts().first)
            #expect(counts.counts[.active] == 80 && counts.counts[.done] == 69 && counts.counts[.failed] == 1)
            // An ended job keeps no stage output of its own.
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM progress") == 60)
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_states WHERE status = 1") == 69)
            try j.begin()
            guard case .existing(let done) = try j.insert(row(100)) else { Issue.record("k100 inserted twice"); return }
            #expect(done.status == .done && done.output == Array("r100".utf8))
            guard case .existing(let failed) = try j.insert(row(61)) else { Issue.record("k61 inserted twice"); return }
            #expect(failed.status == .failed && failed.error == "It broke.")
            try j.commit()
        }
    }

    @Test("Jobs stored up to 64 per statement: a key the journal holds, or one repeated in the list, names the first job")
    func insertMany() throws {
        defer { cleanUp() }
        try withJournal { j, _ throws in
            try j.begin()
            var earlier = row(5)
            earlier.key = "earlier"
            _ = try j.insert(earlier)
            try j.finish(job: 5, status: .done, body: [5], error: "")
            // 150 jobs with ids 1001...1150; job 2's key is the one ended above, job 140's is job 100's.
            var jobs = (1...150).map { i in JournalJob(id: UInt64(1000 + i), key: i == 2 ? "earlier" : "k\(i == 140 ? 100 : i)", batch: "b",
                                                     route: ["a"], priority: 0, deadlineMs: 0, params: [], data: [UInt8(i)]) }
            jobs[140].route = ["a", "b"]
            let outcomes = try j.insert(jobs)
            #expect(outcomes.count == 150)
            for (k, o) in outcomes.enumerated() {
                switch (k, o) {
                case (1, .existing(let old)): #expect(old.id == 5 && old.status == .done && old.output == [5])
                case (139, .existing(let old)): #expect(old.id == 1100 && old.status == .active && old.data == [100])
                case (1, _), (139, _): Issue.record("job \(k) should have found its key taken")
                case (_, .inserted): break
                case (_, .existing): Issue.record("job \(k) was refused")
                }
            }
            try j.commit()
            let active = try j.activeJobs()
            #expect(active.count == 148 && !active.contains { $0.id == 1002 || $0.id == 1140 })
            #expect(active.first { $0.id == 1141 }?.route == ["a", "b"])
        }
    }

    @Test("A key whose job ended earlier in the same transaction is answered with that job's result")
    func endedInTheSameTransaction() throws {
        defer { cleanUp() }
        try withJournal { j, _ throws in
            try j.begin()
            _ = try j.insert(row(1))
            try j.advance(job: 1, stage: 1, output: [1])
            try j.finish(job: 1, status: .done, body: [9, 9], error: "")
            guard case .existing(let old) = try j.insert(row(1)) else { Issue.record("inserted twice"); return }
            #expect(old.id == 1 && old.status == .done && old.output == [9, 9])
            #expect(try j.activeJobs().isEmpty)
            try j.commit()
        }
    }

    @Test("A version 1 journal (progress, result, batch and route in the jobs row) is migrated in place on open")
    func migratesVersion1() throws {
        defer { cleanUp() }
        let old = try DatabaseQueue(path: path)
        try old.write { db in
            try db.execute(sql: """
                CREATE TABLE jobs(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, batch TEXT NOT NULL, route TEXT NOT NULL,
                  priority INTEGER NOT NULL, deadline INTEGER NOT NULL, params BLOB NOT NULL, data BLOB NOT NULL,
                  stage INTEGER NOT NULL DEFAULT 0, output BLOB, status INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '');
                CREATE TABLE failures(job INTEGER NOT NULL, stage TEXT NOT NULL, attempt INTEGER NOT NULL, error TEXT NOT NULL);
                INSERT INTO jobs VALUES(1, 'k1', 'b', 'a,b', 0, 0, x'', x'01', 0, x'0707', 1, '');
                INSERT INTO jobs VALUES(2, 'k2', 'b', 'a,b', 0, 0, x'', x'02', 1, x'0808', 0, '');
                INSERT INTO jobs VALUES(3, 'k3', 'b', 'a,b', 0, 0, x'', x'03', 0, NULL, 0, '');
                INSERT INTO jobs VALUES(4, 'k4', 'b', 'a,b', 0, 0, x'', x'04', 0, x'', 2, 'Refused.');
                """)
        }
        try old.close()
        try withJournal { j, db throws in
            #expect(try Int.fetchOne(db, sql: "PRAGMA user_version") == SQLiteJournal.schemaVersion)
            let columns = try db.columns(in: "jobs").map(\.name)
            #expect(columns == ["id", "key", "grp", "priority", "deadline", "params", "data"])
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM groups") == 1)
            let active = try j.activeJobs()
            #expect(active.map(\.id) == [2, 3])
            #expect(active[0].stage == 1 && active[0].output == [8, 8])
            #expect(active[1].stage == 0 && active[1].output.isEmpty && active[1].data == [3])
            let counts = try #require(try j.batchCounts().first)
            #expect(counts.counts[.active] == 2 && counts.counts[.done] == 1 && counts.counts[.failed] == 1)
            #expect(try j.maxJobID() == 4)
            try j.begin()
            guard case .existing(let done) = try j.insert(row(1)) else { Issue.record("k1 inserted twice"); return }
            #expect(done.status == .done && done.output == [7, 7])
            guard case .inserted = try j.insert(row(5)) else { Issue.record("k5 refused"); return }
            try j.finish(job: 5, status: .done, body: [5], error: "")
            try j.commit()
        }
        // Opening a migrated journal again changes nothing.
        try withJournal { j, _ throws in
            #expect(try j.activeJobs().map(\.id) == [2, 3])
            #expect(try j.batchCounts().first?.counts[.done] == 2)
        }
    }

    @Test("Ended jobs are forgotten by age: rows, results and failures go, keys are free again, active and recent jobs stay, the largest id is never forgotten")
    func forgetsEndedJobs() throws {
        defer { cleanUp() }
        try withJournal { j, db throws in
            try j.begin()
            for i in 1...10 { _ = try j.insert(row(i, batch: i <= 6 ? "old" : "new")) }
            j.now = 1_000
            for i in 1...5 { try j.finish(job: UInt64(i), status: i == 5 ? .failed : .done, body: [UInt8(i)], error: i == 5 ? "No." : "") }
            try j.recordFailure(job: 5, stage: "a", attempt: 1, error: "No.")
            j.now = 5_000
            for i in [7, 10] { try j.finish(job: UInt64(i), status: .done, body: [7], error: "") }
            try j.commit()
            // Ended before 2,000: jobs 1–5. At most 3 at a time, first by id.
            try j.begin()
            let first = try j.forget(endedBefore: 2_000, limit: 3)
            #expect(first == [BatchCounts(batch: "old", counts: [.done: 3])])
            let second = try j.forget(endedBefore: 2_000, limit: 3)
            #expect(second == [BatchCounts(batch: "old", counts: [.done: 1, .failed: 1])])
            #expect(try j.forget(endedBefore: 2_000, limit: 3).isEmpty)
            try j.commit()
            let three = try j.job(id: 3), failures = try j.failures(job: 5)
            #expect(three == nil && failures.isEmpty)
            #expect(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM results") == 2)
            #expect(try j.activeJobs().map(\.id) == [6, 8, 9])
            // Everything ended is old now: job 7 goes, job 10 (the largest id) stays, so the next id is still 11.
            try j.begin()
            #expect(try j.forget(endedBefore: 9_000, limit: 100) == [BatchCounts(batch: "new", counts: [.done: 1])])
            try j.commit()
            #expect(try j.maxJobID() == 10)
            // A forgotten key is free: the same key is a new job.
            try j.begin()
            var again = row(2)
            again.id = 11
            guard case .inserted = try j.insert(again) else { Issue.record("a forgotten key was still known"); return }
            try j.commit()
        }
        // The end times were stored: a fresh connection forgets by them.
        try withJournal { j, _ throws in
            try j.begin()
            // Job 10 is no longer the newest (11 is), and it ended at 5,000.
            #expect(try j.forget(endedBefore: 9_000, limit: 100) == [BatchCounts(batch: "new", counts: [.done: 1])])
            #expect(try j.activeJobs().map(\.id) == [6, 8, 9, 11])
            try j.commit()
        }
    }

    @Test("A version 3 journal gains end times on open: its ended jobs are dated to the upgrade, not forgotten at once")
    func migratesVersion3EndTimes() throws {
        defer { cleanUp() }
        let old = try DatabaseQueue(path: path)
        try old.write { db in
            try db.execute(sql: """
                CREATE TABLE groups(id INTEGER PRIMARY KEY, batch TEXT NOT NULL, route TEXT NOT NULL, UNIQUE(batch, route));
                CREATE TABLE progress(id INTEGER PRIMARY KEY, stage INTEGER NOT NULL, output BLOB NOT NULL);
                CREATE TABLE results(id INTEGER PRIMARY KEY, status INTEGER NOT NULL, output BLOB NOT NULL, error TEXT NOT NULL);
                CREATE TABLE failures(job INTEGER NOT NULL, stage TEXT NOT NULL, attempt INTEGER NOT NULL, error TEXT NOT NULL);
                CREATE TABLE jobs(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, grp INTEGER NOT NULL, priority INTEGER NOT NULL,
                  deadline INTEGER NOT NULL, params BLOB NOT NULL, data BLOB NOT NULL);
                INSERT INTO groups VALUES(1, 'b', 'a');
                INSERT INTO jobs VALUES(1, 'k1', 1, 0, 0, x'', x'01');
                INSERT INTO jobs VALUES(2, 'k2', 1, 0, 0, x'', x'02');
                INSERT INTO jobs VALUES(3, 'k3', 1, 0, 0, x'', x'03');
                INSERT INTO results VALUES(1, 1, x'07', '');
                INSERT INTO results VALUES(2, 1, x'08', '');
                PRAGMA user_version = 3;
                """)
        }
        try old.close()
        let before = wallMillis()
        try withJournal { j, db throws in
            #expect(try Int.fetchOne(db, sql: "PRAGMA user_version") == SQLiteJournal.schemaVersion)
            let at = try Int64.fetchAll(db, sql: "SELECT at FROM results ORDER BY id")
            #expect(at.count == 2 && at.allSatisfy { $0 >= Int64(before) && $0 <= Int64(wallMillis()) }, "\(at)")
            try j.begin()
            #expect(try j.forget(endedBefore: before, limit: 100).isEmpty)
            #expect(try j.forget(endedBefore: wallMillis() + 1, limit: 100) == [BatchCounts(batch: "b", counts: [.done: 2])])
            try j.commit()
            #expect(try j.activeJobs().map(\.id) == [3])
        }
    }
}
