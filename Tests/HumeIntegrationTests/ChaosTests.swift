import Foundation
import HumeCore
import Testing

/// The chaos benchmark's short form: real broker, worker and client processes killed with -9 at seeded moments.
@Suite("Chaos: kill -9 of the broker, workers and the client during batches", .serialized)
struct ChaosTests {
    func chaos(_ args: [String]) async throws -> JSON {
        let (rc, out, err) = try await onOwnThread { try hume(["bench", "chaos", "--json"] + args, timeout: 170) }
        let j = try JSON.parse(out)
        #expect(rc == 0, "chaos failed: \(out)\n\(err.suffix(2000))")
        return j
    }

    @Test("hume submit through three noop stages: every job done once in the manifest and the journal, the client never hangs",
          .timeLimit(.minutes(3)))
    func submitUnderKills() async throws {
        let j = try await chaos(["--rounds", "2", "--jobs", "1500", "--kills", "8", "--gap-ms", "80-400", "--hang-bound", "45"])
        #expect(j["failed_rounds"]?.int == 0 && j["lost"]?.int == 0 && j["duplicated"]?.int == 0 && j["hung"]?.int == 0, "\(j.serialized)")
        #expect(j["kills"]?.int == 16)
        for r in j["rounds"]?.array ?? [] {
            #expect(r["journal"]?["done"]?.int == 1500 && r["manifest"]?["done"]?.int == 1500, "\(r.serialized)")
            // The kills must land on a running batch to test anything.
            #expect((r["kills_after_finish"]?.int ?? 99) <= 2, "\(r.serialized)")
            let kinds = r["kills"]
            #expect((kinds?["broker"]?.int ?? 0) + (kinds?["worker"]?.int ?? 0) + (kinds?["client"]?.int ?? 0) == 8)
        }
    }

    @Test("hume stream under the same kills: every key answered once, under one job id", .timeLimit(.minutes(3)))
    func streamUnderKills() async throws {
        let j = try await chaos(["--rounds", "1", "--jobs", "1500", "--kills", "6", "--gap-ms", "80-400", "--client", "stream",
                                 "--seed", "7", "--hang-bound", "45"])
        #expect(j["failed_rounds"]?.int == 0 && j["lost"]?.int == 0 && j["duplicated"]?.int == 0 && j["hung"]?.int == 0, "\(j.serialized)")
    }
}
