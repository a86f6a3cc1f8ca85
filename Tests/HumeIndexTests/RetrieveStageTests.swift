import Foundation
import HumeCore
import HumeStages
import HumeData
import HumeEmbed
import HumeRetrieveStage
import HumeSearch
import HumeWorker
import Testing

/// One stage for the suite: it caches the loaded index, as a worker does.
let sharedStage = RetrieveStage(root: testPaths.databases, batchSize: 16)

/// The embed stage's payload for a bare vector (no text).
func query(_ v: [Float]) -> [UInt8] { EmbedOutput(vector: v, text: "").encoded() }

func task(_ params: String, _ input: [UInt8]) -> StageTask {
    StageTask(lease: 1, jobID: 1, attempt: 0, key: "t", params: Array(params.utf8), input: input)
}

/// The emoji database with its index, or a failure (not a skip) saying how to build it.
func requireEmojiIndex() throws {
    do { _ = try sharedStage.databases.database("emoji"); _ = try sharedStage.databases.database(Database.defaultName) } catch {
        Issue.record("The emoji database and its index are needed: run Ops/prepare-data.sh first (\(error)).")
        throw error
    }
}

@Suite("Retrieve stage", .serialized)
struct RetrieveStageTests {
    @Test("\"a red apple\" finds an apple among the top results of emoji")
    func redApple() throws {
        try requireEmojiIndex()
        let embedder = try Embedder(modelDirectory: testPaths.model)
        let q = try embedder.embed("a red apple")
        let out = try sharedStage.run([task(#"{"database": "emoji", "k": 5}"#, query(q))])
        guard case .ok(let bytes) = out[0] else { Issue.record("not ok: \(out[0])"); return }
        let a = try Neighbours(decoding: bytes)
        #expect(a.database == "emoji")
        #expect(a.ids.count == 5 && a.scores?.count == 5 && a.captions.count == 5)
        #expect(a.captions.contains { $0.contains("apple") }, "top 5: \(a.captions)")
        #expect(a.scores == a.scores?.sorted(by: >))
    }

    @Test("a stored embedding retrieves its own item first; default params are the default database and k = 16")
    func ownItem() throws {
        try requireEmojiIndex()
        let db = try sharedStage.databases.database(Database.defaultName).database
        let out0 = try sharedStage.run([task("", query(try db.embeddings().vector(0)))])
        if case .ok(let bytes) = out0[0] { #expect(try Neighbours(decoding: bytes).database == Database.defaultName) }
        let emb = try db.embeddings()
        let out = try sharedStage.run([task("", query(emb.vector(42))), task("{}", query(emb.vector(7)))])
        for (o, id) in zip(out, [42, 7]) {
            guard case .ok(let bytes) = o else { Issue.record("not ok: \(o)"); continue }
            let a = try Neighbours(decoding: bytes)
            #expect(a.ids.count == 16)
            #expect(a.scores![0] > 0.999)
            #expect(db.items[a.ids[0]].retrievalText == db.items[id].retrievalText)
        }
    }

    @Test("the text after the embedding is echoed as \"prompt\"; text that is not UTF-8 is refused")
    func echoesPrompt() throws {
        try requireEmojiIndex()
        let q = query([Float](repeating: 1 / Float(384).squareRoot(), count: 384))
        let out = try sharedStage.run([task(#"{"k": 2}"#, q + Array("a red apple 🍎".utf8)), task(#"{"k": 2}"#, q),
                                       task(#"{"k": 2}"#, q + [0xff, 0xfe])])
        guard case .ok(let a) = out[0], case .ok(let b) = out[1] else { Issue.record("not ok: \(out)"); return }
        #expect(try Neighbours(decoding: a).prompt == "a red apple 🍎")
        #expect(try Neighbours(decoding: b).prompt == nil)
        // (The text's words also re-rank what the embedding found: CaptionWordsTests.)
        guard case .permanent(let m) = out[2] else { Issue.record("accepted a non-UTF-8 text: \(out[2])"); return }
        #expect(m.contains("not valid UTF-8"))
    }

    @Test("bad inputs fail permanently with one clear sentence, and do not spoil the batch")
    func badInputs() throws {
        try requireEmojiIndex()
        let good = query([Float](repeating: 1 / Float(384).squareRoot(), count: 384))
        let tasks = [
            task("{}", Array(good.prefix(100))),
            task(#"{"database": "nope"}"#, good),
            task(#"{"k": 0}"#, good),
            task(#"{"k": 257}"#, good),
            task(#"{"k": "ten"}"#, good),
            task("[1, 2]", good),
            task("{", good),
            task("{}", query([Float](repeating: .nan, count: 384))),
            task(#"{"k": 3}"#, good),
        ]
        let out = try sharedStage.run(tasks)
        // One at a time (the stage's own path for a single task): the same outcome, byte for byte.
        for (t, o) in zip(tasks, out) { #expect(try sharedStage.run([t]) == [o]) }
        func message(_ o: StageOutcome) -> String? { if case .permanent(let m) = o { return m }; return nil }
        #expect(message(out[0])?.contains("(1536 bytes), got 100 bytes") == true, "\(out[0])")
        #expect(message(out[1])?.contains("Unknown database \"nope\"") == true, "\(out[1])")
        #expect(message(out[1])?.contains("emoji") == true)
        #expect(message(out[2])?.contains("from 1 to 256") == true, "\(out[2])")
        #expect(message(out[3])?.contains("from 1 to 256") == true)
        #expect(message(out[4])?.contains("\"k\"") == true)
        #expect(message(out[5])?.contains("JSON object") == true)
        #expect(message(out[6])?.contains("not valid JSON") == true)
        #expect(message(out[7])?.contains("NaN") == true)
        guard case .ok(let bytes) = out[8] else { Issue.record("good task failed: \(out[8])"); return }
        #expect(try Neighbours(decoding: bytes).ids.count == 3)
    }

    @Test("the stage's payloads are byte for byte Neighbours.encoded() of the search, captions with quotes and accents included")
    func payloadBytes() throws {
        try requireEmojiIndex()
        let loaded = try sharedStage.databases.database("emoji")
        let emb = try loaded.database.embeddings()
        let ids = [0, 1, 17, 500, loaded.database.count - 1]
        var queries: [Float] = []
        for i in ids { queries += emb.vector(i) }
        let prompts = ["plain", #"a "quoted" \ prompt"#, "café ☕", "", "tab\there"]
        for k in [1, 16, loaded.database.count + 3] {
            let fast = try loaded.payloads(queries, k: k, prompts: prompts)
            let reference = try loaded.search(queries, k: k, prompts: prompts).map { $0.encoded() }
            #expect(fast == reference, "k = \(k)")
            // And both are the JSON object's own serialisation (sorted keys), as the payload was always written.
            let generic = try loaded.search(queries, k: k, prompts: prompts).map { n in
                JSON.object(["captions": .array(n.captions.map { JSON($0) }), "database": .string(n.database!), "ids": .array(n.ids.map { JSON($0) }),
                             "prompt": .string(n.prompt ?? ""), "scores": .array(n.scores!.map { .number(($0 * 1e6).rounded() / 1e6) })]).serialized
            }
            #expect(fast.map { String(decoding: $0, as: UTF8.self) } == generic)
            #expect(try Neighbours(decoding: fast[1]).prompt == prompts[1])
        }
        // Captions that need escaping are in the database (or the test proves nothing about them).
        #expect(loaded.database.items.contains { $0.caption.contains("\"") || $0.caption.unicodeScalars.contains { $0.value > 127 } })
    }
}
