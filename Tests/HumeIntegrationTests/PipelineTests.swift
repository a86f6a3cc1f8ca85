import Foundation
import HumeClient
import HumeCore
import HumeStages
import HumeData
import HumeFleet
import Testing

/// Runs blocking work (processes, ZeroMQ polling, sleeps) on a thread of its own and resumes when it ends, so a test
/// never blocks the cooperative thread pool. Assertions stay in the async test body: the closure returns data.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.name = "hume-test-blocking"
        thread.start()
    }
}

/// One generate job of the live test: what is sent, and what the image must record.
struct GenerateCase: Sendable {
    var key: String
    var prompt: String
    var database: String
    var seed: Int
    var k = 4
    /// Send the prompt as the job's data (true) or only as the "prompt" parameter (false).
    var promptAsData = true
    /// For jobs that must fail: words the one-sentence error must contain.
    var failure: String?
    /// Overrides of the params object (bad values).
    var extra: [String: JSON] = [:]

    var spec: JobSpec {
        var p: [String: JSON] = ["database": .string(database), "k": JSON(k), "seed": JSON(seed), "size": JSON(32), "steps": JSON(4)]
        if !promptAsData { p["prompt"] = .string(prompt) }
        for (key, v) in extra { p[key] = v }
        return JobSpec(key: key, params: JSON.object(p).bytes, data: promptAsData ? Array(prompt.utf8) : [])
    }
}

/// What the live run brought back, for the assertions.
struct LiveRun: Sendable {
    var generate: [JobResult?]
    var edit: [JobResult?]
    var editSource: [UInt8]
    var cliStatus: Int32
    var cliError: String
    var cliPNG: [UInt8]
    var searchJSON: String
    var processesLeft: [Int32]
    var logs: String
}

/// The metadata object of a stage image.
func metadata(_ image: StageImage) throws -> [String: JSON] {
    try #require(try JSON.parse(image.metadata).object)
}

/// A sentence the user reads: ends with a full stop and has no second sentence inside.
func isOneSentence(_ s: String) -> Bool {
    s.hasSuffix(".") && !s.dropLast().contains(". ")
}

@Suite("Live pipeline: broker and embed, retrieve, denoise, edit workers as processes", .serialized)
struct PipelineTests {
    static let cases: [GenerateCase] = [
        GenerateCase(key: "apple-7", prompt: "a red apple", database: "emoji", seed: 7),
        GenerateCase(key: "apple-7-again", prompt: "a red apple", database: "emoji", seed: 7),
        GenerateCase(key: "apple-8", prompt: "a red apple", database: "emoji", seed: 8),
        GenerateCase(key: "sun", prompt: "a smiling sun", database: "tuxpaint", seed: 1),
        GenerateCase(key: "cat", prompt: "a cat", database: "tuxpaint", seed: 2),
        GenerateCase(key: "face-param", prompt: "grinning face", database: "emoji", seed: 3, promptAsData: false),
        GenerateCase(key: "unicode", prompt: "café ☕ at night", database: "emoji", seed: 4),
        GenerateCase(key: "bad-db", prompt: "a red apple", database: "nope", seed: 1, failure: "Unknown database \"nope\""),
        GenerateCase(key: "bad-k0", prompt: "a red apple", database: "emoji", seed: 1, k: 0, failure: "The \"k\" parameter is 0; it must be a whole number from 1 to 256"),
        GenerateCase(key: "bad-k", prompt: "a red apple", database: "tuxpaint", seed: 1, failure: "The \"k\" parameter is \"many\"; it must be a whole number from 1 to 256",
                     extra: ["k": .string("many")]),
        GenerateCase(key: "no-prompt", prompt: "", database: "emoji", seed: 1, failure: "no \"prompt\""),
        GenerateCase(key: "bad-size", prompt: "a red apple", database: "emoji", seed: 1, failure: "must be 32, 64 or 128",
                     extra: ["size": JSON(48)]),
    ]

    /// Starts the fleet, runs both batches and the one-shot CLI, stops everything; returns what came back.
    static func live() throws -> LiveRun {
        let dir = tempDir("pipeline")
        let fleet = try LocalFleet(directory: dir)
        defer { fleet.stop() }
        for stage in ["embed", "retrieve", "denoise", "edit"] { try fleet.startWorker(stage) }
        try fleet.waitForWorkers(4, timeoutMs: 60_000)
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)

        let generate = BatchSubmitter(connection: conn, batch: "pipe-gen", route: ["embed", "retrieve", "denoise"],
                                      jobs: cases.map(\.spec))
        _ = try generate.run(timeoutMs: 120_000)

        // Edit jobs: a 32² emoji (grinning face) as a PNG, a non-PNG, and a 64² source without a caption.
        let store32 = try Database(named: "emoji", root: testPaths.databases).images(side: 32), store64 = try Database(named: "emoji", root: testPaths.databases).images(side: 64)
        let source = try store32.copy(id: 0)
        let png32 = try PNGCodec.encode(PixelImage(width: 32, height: 32, channels: 3, pixels: source))
        let png64 = try PNGCodec.encode(PixelImage(width: 64, height: 64, channels: 3, pixels: try store64.copy(id: 0)))
        let editJobs = [
            JobSpec(key: "edit-ok", params: JSON.object(["edit": .string("with sunglasses"), "caption": .string("grinning face"),
                                                         "seed": JSON(1), "size": JSON(32)]).bytes, data: png32),
            JobSpec(key: "edit-gif", params: JSON.object(["edit": .string("with sunglasses")]).bytes, data: Array("GIF89a not a png".utf8)),
            JobSpec(key: "edit-64", params: JSON.object(["edit": .string("with a party hat"), "seed": JSON(2)]).bytes, data: png64),
        ]
        let edit = BatchSubmitter(connection: conn, batch: "pipe-edit", route: ["edit"], jobs: editJobs)
        _ = try edit.run(timeoutMs: 120_000)

        // The one-shot command with the first job's settings, and the neighbours `hume search` finds for a prompt.
        let (rc, _, err) = try hume(["generate", "a red apple", "--database", "emoji", "-k", "4", "--seed", "7", "--size", "32",
                                     "--steps", "4", "--out", dir + "/cli.png"], timeout: 120)
        let cliPNG = FileManager.default.contents(atPath: dir + "/cli.png").map { [UInt8]($0) } ?? []
        let (_, search, _) = try hume(["search", "a smiling sun", "--database", "tuxpaint", "-k", "4", "--json"], timeout: 120)

        var logs = ""
        for f in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where f.hasSuffix(".log") {
            logs += "== \(f)\n" + String((try? String(contentsOfFile: dir + "/" + f, encoding: .utf8))?.suffix(1500) ?? "") + "\n"
        }
        let pids = [fleet.broker.pid] + fleet.workers.map(\.pid)
        fleet.stop()
        let left = pids.filter { kill($0, 0) == 0 }
        return LiveRun(generate: generate.results, edit: edit.results, editSource: source, cliStatus: rc, cliError: err,
                       cliPNG: cliPNG, searchJSON: search, processesLeft: left, logs: logs)
    }

    @Test("generate and edit jobs through real worker processes: provenance, determinism, one-sentence failures that fail only their job",
          .timeLimit(.minutes(5)))
    func pipeline() async throws {
        let run = try await onOwnThread { try PipelineTests.live() }
        #expect(run.processesLeft.isEmpty, "processes still running after stop: \(run.processesLeft)")
        let counts = [
            "emoji": try Database(named: "emoji", root: testPaths.databases).count, "tuxpaint": try Database(named: "tuxpaint", root: testPaths.databases).count,
        ]
        let emojiItems = try Database(named: "emoji", root: testPaths.databases).items
        var images: [String: StageImage] = [:]
        for (c, result) in zip(Self.cases, run.generate) {
            let r = try #require(result, "job \(c.key) has no result; logs:\n\(run.logs)")
            let body = String(decoding: r.body, as: UTF8.self)
            if let failure = c.failure {
                #expect(r.status == .failed, "\(c.key) should fail, got \(r.status.name)")
                #expect(body.contains(failure), "\(c.key): \(body)")
                #expect(isOneSentence(body), "\(c.key): not one sentence: \(body)")
                continue
            }
            #expect(r.status == .done, "\(c.key) failed: \(body)\n\(run.logs)")
            guard r.status == .done else { continue }
            let image = try StageImage(decoding: r.body)
            images[c.key] = image
            #expect(image.width == 32 && image.height == 32 && image.pixels.count == 32 * 32 * 3)
            let m = try metadata(image)
            #expect(m["prompt"]?.string == c.prompt, "\(c.key): prompt \(String(describing: m["prompt"]))")
            #expect(m["database"]?.string == c.database)
            #expect(m["k"]?.int == 4 && m["seed"]?.int == c.seed && m["steps"]?.int == 4 && m["size"]?.int == 32)
            #expect(m["version"]?.int == StageImage.version)
            let ids = (m["neighbours"]?.array ?? []).compactMap(\.int)
            #expect(ids.count == 4, "\(c.key): neighbours \(ids)")
            #expect(ids.allSatisfy { (0..<counts[c.database]!).contains($0) }, "\(c.key): ids \(ids) outside \(c.database)")
        }
        // Retrieval found the prompt's concept, and the same neighbours as `hume search`.
        let appleIDs = (try metadata(try #require(images["apple-7"]))["neighbours"]?.array ?? []).compactMap(\.int)
        #expect(appleIDs.contains { emojiItems[$0].caption.contains("apple") }, "a red apple: \(appleIDs.map { emojiItems[$0].caption })")
        let sunIDs = (try metadata(try #require(images["sun"]))["neighbours"]?.array ?? []).compactMap(\.int)
        #expect((try JSON.parse(run.searchJSON))["ids"]?.array?.compactMap(\.int) == sunIDs)
        // The same seed gives the same pixels; another seed other pixels.
        #expect(images["apple-7"]?.pixels == images["apple-7-again"]?.pixels)
        #expect(images["apple-7"]?.pixels != images["apple-8"]?.pixels)
        // The one-shot command makes what the fleet makes: same pixels, same metadata in its PNG.
        #expect(run.cliStatus == 0, "hume generate: \(run.cliError)")
        let cli = try PNGCodec.decode(run.cliPNG)
        #expect(cli.pixels == images["apple-7"]?.pixels)
        #expect(try StageImage.metadata(fromPNG: run.cliPNG) == images["apple-7"]?.metadata)

        // Edit: image + mask, the source kept exactly outside the mask; a non-PNG fails alone.
        #expect(run.edit.count == 3)
        let ok = try #require(run.edit[0])
        #expect(ok.status == .done, "edit failed: \(String(decoding: ok.body, as: UTF8.self))\n\(run.logs)")
        let edited = try StageImage(decoding: ok.body)
        let mask = try #require(edited.mask)
        #expect(edited.width == 32 && mask.width == 32 && mask.height == 32 && mask.channels == 1)
        let covered = mask.pixels.filter { $0 == 255 }.count
        #expect(covered > 0 && covered < 32 * 32, "mask covers \(covered) pixels")
        var changedInside = 0
        for p in 0..<(32 * 32) {
            let same = edited.pixels[(3 * p)..<(3 * p + 3)] == run.editSource[(3 * p)..<(3 * p + 3)]
            if mask.pixels[p] == 0 { #expect(same, "pixel \(p) outside the mask changed") } else if !same { changedInside += 1 }
        }
        #expect(changedInside > 0, "the edit changed nothing inside the mask")
        let em = try metadata(edited)
        #expect(em["edit"]?.string == "with sunglasses" && em["caption"]?.string == "grinning face")
        #expect((em["neighbours"]?.array ?? []).compactMap(\.int).allSatisfy { (0..<counts["emoji"]!).contains($0) })
        let gif = try #require(run.edit[1])
        let gifError = String(decoding: gif.body, as: UTF8.self)
        #expect(gif.status == .failed && gifError.contains("not a PNG") && isOneSentence(gifError), "\(gifError)")
        let big = try #require(run.edit[2])
        #expect(big.status == .done, "64² edit: \(String(decoding: big.body, as: UTF8.self))")
        if big.status == .done {
            let m = try metadata(try StageImage(decoding: big.body))
            #expect(m["source_neighbours_by"]?.string == "pixels" && m["caption"] == JSON.null)
            #expect(m["size"]?.int == 128, "an edit without a size is made at the default side, 128")
        }
    }

    @Test("hume bench e2e reports throughput, every stage's utilisation and the slowest stage's, per replica count",
          .timeLimit(.minutes(5)))
    func benchE2E() async throws {
        let (rc, out, err) = try await onOwnThread {
            try hume(["bench", "e2e", "--prompts", "12", "--replicas", "1,2", "--steps", "2", "-k", "4", "--json"], timeout: 240)
        }
        #expect(rc == 0, "\(err)")
        let j = try JSON.parse(out)
        #expect(j["scaled_stage"]?.string == "denoise" || j["scaled_stage"]?.string == "retrieve" || j["scaled_stage"]?.string == "embed")
        let runs = j["runs"]?.array ?? []
        #expect(runs.count == 2)
        let scaled = j["scaled_stage"]?.string ?? ""
        #expect(runs.map { $0["replicas"]?[scaled]?.int } == [1, 2])
        for r in runs {
            #expect(r["done"]?.int == 12 && r["failed"]?.int == 0 && r["bad_outputs"]?.int == 0, "\(r.serialized)")
            #expect((r["prompts_per_s"]?.double ?? 0) > 0)
            for stage in ["embed", "retrieve", "denoise"] {
                let u = r["utilisation"]?[stage]?.double ?? -1
                #expect(u > 0 && u <= 1.05, "\(stage) utilisation \(u)")
            }
        }
        let slowest = j["slowest_stage_utilisation"]?.double ?? -1
        #expect(slowest > 0 && slowest <= 1.05)
    }

    @Test("hume eval generate and hume bench edit print their JSON with the fields the README quotes", .timeLimit(.minutes(5)))
    func evalAndBenchEdit() async throws {
        let (rc, out, err) = try await onOwnThread {
            try hume(["eval", "generate", "--count", "4", "--size", "32", "--steps", "4", "--json",
                      "--sheet", FileManager.default.temporaryDirectory.appendingPathComponent("hume-eval-\(getpid()).png").path], timeout: 240)
        }
        #expect(rc == 0, "\(err)")
        let j = try JSON.parse(out)
        // The defaults: similarity weights, no rank prior, no labels.
        #expect(j["prompts"]?.int == 4 && j["prompt_set"]?.string == "concepts" && j["focus"]?.double == 0
                && j["consensus"]?.double == 0 && j["temperature"]?.double == 0.02, "\(out)")
        for key in ["label_agreement", "label_agreement_random", "copy_rate", "first_neighbour_agreement", "neighbour_agreement"] {
            let v = j[key]?.double ?? -1
            #expect(v >= 0 && v <= 1, "\(key) = \(v)")
        }
        let (rc2, out2, err2) = try await onOwnThread { try hume(["bench", "edit", "--repeats", "1", "--json"], timeout: 240) }
        #expect(rc2 == 0, "\(err2)")
        let b = try JSON.parse(out2)
        #expect((b["edits"]?.int ?? 0) >= 40 && (b["seconds_per_edit"]?.double ?? 0) > 0 && (b["flops_per_edit"]?.double ?? 0) > 0)
        // Bad settings: one sentence and exit 1, never a crash; a generate setting the stages' parser refuses is a usage
        // error (exit 64, swift-argument-parser's), caught before anything loads, with the sentence a worker would send.
        let bad: [([String], String, Int32)] = [
            (["eval", "generate", "--count=-1"], "--count must be at least 1", 1),
            (["eval", "generate", "--copy-shift=-1", "--size", "32"], "--copy-shift must be from 0 to 31", 1),
            (["eval", "generate", "--focus", "11"], "Error: The \"focus\" parameter is 11; it must be a number from 0 to 10.", 64),
            (["bench", "denoise", "--repeats", "0"], "--repeats must be at least 1", 1),
            (["bench", "core", "--forget", "--tasks", "1"], "Error: --forget needs --tasks 2 or more: the newest job is never forgotten.", 1),
            (["eval", "edit", "--size", "48"], "Error: --size must be 32, 64 or 128.", 64),
            (["eval", "edit", "--size", "64", "--compare-side", "128"], "Error: --compare-side must be 32, 64 or 128 and at most --size (64).", 64),
            (["bench", "edit", "--size", "256"], "--size must be 32, 64 or 128", 64),
            (["eval", "edit", "--pairs", "/nonexistent/edits.jsonl"], "Error: Cannot read the edit list /nonexistent/edits.jsonl: there is no such file.", 1),
        ]
        for (args, expected, code) in bad {
            let (rc, _, err) = try await onOwnThread { try hume(args, timeout: 120) }
            #expect(rc == code && err.contains(expected), "\(args): rc \(rc), \(err)")
        }
    }

    @Test("hume eval edit scores against the retriever's target and against the targets a list names; a missing target is one sentence",
          .timeLimit(.minutes(5)))
    func evalEditNamedTargets() async throws {
        let dir = tempDir("evaledit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let list = dir + "/pairs.jsonl"
        // A recolour whose named target is its twin (done), and one whose list says no picture shows the result (failed).
        try ([#"{"database": "emoji", "source": "red heart", "edit": "make it blue", "targets": ["blue heart"]}"#,
              #"{"database": "emoji", "source": "grinning face", "edit": "with a bow tie", "targets": []}"#].joined(separator: "\n") + "\n")
            .write(toFile: list, atomically: true, encoding: .utf8)
        let sheet = dir + "/sheet.png"
        let (rc, out, err) = try await onOwnThread {
            try hume(["eval", "edit", "--pairs", list, "--size", "32", "--json", "--sheet", sheet], timeout: 240)
        }
        #expect(rc == 0, "\(err)")
        let j = try JSON.parse(out)
        #expect(j["pairs"]?.int == 2 && j["pairs_named"]?.int == 2 && j["pairs_named_with_picture"]?.int == 1, "\(out)")
        #expect(j["edit_success_named"]?.double == 0.5 && j["outside_change"]?.int == 0, "\(out)")
        #expect(j["compare_side"]?.int == 32, "the RMSEs are taken at the working side unless asked: \(out)")
        try (#"{"database": "emoji", "source": "red heart", "edit": "make it blue", "targets": ["a heart nobody drew"]}"# + "\n")
            .write(toFile: list, atomically: true, encoding: .utf8)
        let (rc2, _, err2) = try await onOwnThread { try hume(["eval", "edit", "--pairs", list, "--size", "32", "--json", "--sheet", sheet], timeout: 240) }
        #expect(rc2 == 1 && err2.contains("has no picture captioned \"a heart nobody drew\""), "rc \(rc2): \(err2)")
    }

    @Test("hume edit: a recolour says what it did (no transplant), an addition names its donor; both write the PNG and sheet; a source that cannot be read is one sentence saying why",
          .timeLimit(.minutes(5)))
    func editCommand() async throws {
        let dir = tempDir("edit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A source the user brings: a red disc on white, drawn here.
        let side = 96
        var px = [UInt8](repeating: 255, count: 3 * side * side)
        for y in 0..<side { for x in 0..<side where (x - 48) * (x - 48) + (y - 48) * (y - 48) <= 900 {
            px[3 * (y * side + x)] = 230; px[3 * (y * side + x) + 1] = 40; px[3 * (y * side + x) + 2] = 30
        } }
        let source = dir + "/disc.png"
        try Data(PNGCodec.encode(PixelImage(width: side, height: side, channels: 3, pixels: px))).write(to: URL(fileURLWithPath: source))
        for (text, expected) in [("make it blue", "recoloured blue, nothing transplanted"), ("with sunglasses", "transplanted from ")] {
            let out = dir + "/out.png", sheet = dir + "/sheet.png"
            let (rc, stdout, err) = try await onOwnThread {
                try hume(["edit", source, text, "--size", "64", "--out", out, "--sheet", sheet], timeout: 120)
            }
            #expect(rc == 0 && stdout.contains(expected), "\(text): rc \(rc), \(stdout) \(err)")
            #expect(FileManager.default.fileExists(atPath: out) && FileManager.default.fileExists(atPath: sheet), "\(text)")
        }
        // A source that is not there, or is a directory: one sentence that says which, and no output.
        for (path, why) in [(dir + "/missing.png", "there is no such file"), (dir, "it is a directory")] {
            let (rc, _, err) = try await onOwnThread { try hume(["edit", path, "with sunglasses", "--out", dir + "/none.png"]) }
            #expect(rc != 0 && err.contains("Cannot read the source image \(path): \(why)."), "rc \(rc): \(err)")
            #expect(err.split(separator: "\n").count == 1, "one line: \(err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/none.png"))
        }
    }

    @Test("hume eval fidelity scores a prompt list with the baseline and writes its sheet; a bad list or concept is one sentence",
          .timeLimit(.minutes(5)))
    func evalFidelity() async throws {
        let dir = tempDir("fidelity")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let list = dir + "/prompts.jsonl"
        let lines = [#"{"prompt": "a juicy strawberry", "concepts": ["strawberry"]}"#,
                     #"{"prompt": "a rocket flying to space", "concepts": ["rocket"]}"#]
        try (lines.joined(separator: "\n") + "\n").write(toFile: list, atomically: true, encoding: .utf8)
        let sheet = dir + "/sheet.png"
        let (rc, out, err) = try await onOwnThread {
            try hume(["eval", "fidelity", "--prompts", list, "--seeds", "2", "--steps", "4", "--size", "32", "--json", "--sheet", sheet], timeout: 240)
        }
        #expect(rc == 0, "\(err)")
        let j = try JSON.parse(out)
        #expect(j["database"]?.string == "emoji-styles" && j["prompts"]?.int == 2 && j["samples"]?.int == 4)
        for key in ["recognised", "near_copy", "faithful_and_new", "seed_diversity", "warped_copy"] {
            let v = j[key]?.double ?? -1, b = j["baseline"]?[key]?.double ?? -1
            #expect(v >= 0 && v <= 1 && b >= 0 && b <= 1, "\(key) = \(v), baseline \(b)")
        }
        // Both prompts name things the database holds, and the retriever finds them.
        #expect(j["retriever_top1"]?.double == 1 && j["retriever_top1_cosine"]?.double == 1)
        let image = try PNGCodec.decode([UInt8](try #require(FileManager.default.contents(atPath: sheet))))
        #expect(image.height == 2 * 32 + 3 * 2 && image.width == 5 * 32 + 6 * 2, "rows: best neighbour, 2 samples, 2 baseline samples")
        #expect(try String(contentsOfFile: sheet + ".txt", encoding: .utf8).contains("a juicy strawberry [strawberry] top1: strawberry"))
        // One line per sample, counted exactly as the totals are: each number can be checked from the file alone.
        let records = try String(contentsOfFile: sheet + ".samples.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSON.parse(String($0)) }
        #expect(records.count == 4 && records.map { $0["seed"]?.int ?? 0 } == [1, 2, 1, 2])
        func share(_ key: String) -> Double { Double(records.filter { $0[key] == .bool(true) }.count) / Double(records.count) }
        for key in ["recognised", "near_copy", "faithful_and_new", "warped_copy"] {
            #expect(share(key) == j[key]?.double, "\(key): the samples file gives \(share(key)), the totals \(j[key]?.double ?? -1)")
        }
        for r in records {
            let nearest = r["nearest"]?["concept"]?.string ?? ""
            #expect(r["recognised"] == .bool((r["concepts"]?.array ?? []).contains(.string(nearest))), "\(r)")
            #expect(r["near_copy"] == .bool((r["copy_distance"]?.double ?? 1) < 0.08) && !(r["used"]?.array ?? []).isEmpty, "\(r)")
        }
        // One seed has no seed diversity: null in the JSON, not a failed write.
        let (rc1, out1, err1) = try await onOwnThread {
            try hume(["eval", "fidelity", "--prompts", list, "--seeds", "1", "--steps", "4", "--size", "32", "--json", "--no-baseline",
                      "--sheet", sheet], timeout: 240)
        }
        #expect(rc1 == 0, "\(err1)")
        let j1 = try JSON.parse(out1)
        #expect(j1["seed_diversity"] == .null && j1["recognised"]?.double != nil, "\(out1)")
        // And as text: "n/a", not a crash (it aborted on the missing number).
        let (rc1t, out1t, err1t) = try await onOwnThread {
            try hume(["eval", "fidelity", "--prompts", list, "--seeds", "1", "--steps", "4", "--size", "32", "--no-baseline",
                      "--sheet", sheet], timeout: 240)
        }
        #expect(rc1t == 0 && out1t.contains("seed diversity n/a") && out1t.contains("retriever top-1 1.000"), "\(out1t)\(err1t)")
        try #"{"prompt": "a unicorn", "concepts": ["no such thing"]}"#.write(toFile: list, atomically: true, encoding: .utf8)
        let (rc2, _, err2) = try await onOwnThread { try hume(["eval", "fidelity", "--prompts", list], timeout: 120) }
        #expect(rc2 == 1 && err2.contains("names the concept \"no such thing\", which the database emoji-styles does not hold"), "\(err2)")
        try "not json\n".write(toFile: list, atomically: true, encoding: .utf8)
        let (rc3, _, err3) = try await onOwnThread { try hume(["eval", "fidelity", "--prompts", list], timeout: 120) }
        #expect(rc3 == 1 && err3.contains("line 1 is not a JSON object"), "\(err3)")
    }
}
