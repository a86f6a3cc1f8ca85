import Foundation
import HumeCore
import HumeStages
import HumeData
import HumeUploadStage
import HumeWorker
import Testing

/// A stage image like the denoise stage's (or the edit stage's, with a mask).
func stageImage(width: Int = 8, height: Int = 6, prompt: String = "a red apple", mask: Bool = false, seed: Int = 7) -> [UInt8] {
    let pixels = (0..<(width * height * 3)).map { UInt8(truncatingIfNeeded: $0 * 7 + seed) }
    var meta: [String: JSON] = ["database": .string("emoji"), "k": JSON(16), "seed": JSON(seed), "steps": JSON(20), "size": JSON(width),
                                "neighbours": .array([JSON(3), JSON(1), JSON(4)]), "version": JSON(1)]
    meta[mask ? "edit" : "prompt"] = .string(prompt)
    var sections: [StageImage.Section] = []
    if mask {
        sections.append(.init(tag: "MASK", width: width, height: height, channels: 1,
                              pixels: (0..<(width * height)).map { $0 % 3 == 0 ? 255 : 0 }))
    }
    return StageImage(width: width, height: height, metadata: JSON.object(meta).bytes, pixels: pixels, sections: sections).encoded()
}

func task(key: String, params: [String: JSON], input: [UInt8], job: UInt64 = 1) -> StageTask {
    StageTask(lease: 1, jobID: job, attempt: 1, key: key, params: JSON.object(params).bytes, input: input)
}

/// The chunk types and raw data of a PNG, in order.
func pngChunks(_ png: [UInt8]) -> [(type: String, data: [UInt8])] {
    var out: [(String, [UInt8])] = []
    var p = 8
    while p + 12 <= png.count {
        let n = Int(png[p]) << 24 | Int(png[p + 1]) << 16 | Int(png[p + 2]) << 8 | Int(png[p + 3])
        out.append((String(decoding: png[(p + 4)..<(p + 8)], as: UTF8.self), Array(png[(p + 8)..<(p + 8 + n)])))
        p += 12 + n
    }
    return out
}

/// The parsed result of a successful upload.
func okJSON(_ outcome: StageOutcome, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
    guard case .ok(let body) = outcome else {
        Issue.record("expected ok, got \(outcome)", sourceLocation: sourceLocation)
        throw HumeError(.system, "not ok")
    }
    return try JSON.parse(body)
}

func sha256sum(_ bytes: [UInt8]) throws -> String {
    let path = tempDir("sum") + "/data"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let (_, out, _) = try run("/usr/bin/sha256sum", [path])
    return String(out.prefix(64))
}

@Suite("Upload stage: hashing, destinations, names, parameters, encoding, file://")
struct UploadStageTests {
    @Test("SHA-256 matches the standard vectors and coreutils' sha256sum at every padding boundary")
    func sha256() throws {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let dir = tempDir("sha")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let lengths = [1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 100_003]
        var expected: [String] = []
        for n in lengths {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) }
            try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(n)"))
            expected.append(SHA256.hex(bytes))
        }
        let (rc, out, _) = try run("/usr/bin/sha256sum", lengths.map { "\(dir)/\($0)" })
        #expect(rc == 0)
        #expect(out.split(separator: "\n").map { String($0.prefix(64)) } == expected)
    }

    @Test("destinations are normalised; bad ones are refused with one sentence naming the problem")
    func destinations() throws {
        #expect(try Destination(parsing: "S3://my-bucket//out/gen/").description == "s3://my-bucket/out/gen")
        #expect(try Destination(parsing: "HTTP://Example.COM:80/a").description == "http://example.com/a")
        #expect(try Destination(parsing: "https://h:8443/a/b").description == "https://h:8443/a/b")
        #expect(try Destination(parsing: "http://[::1]:8080/x").description == "http://[::1]:8080/x")
        #expect(try Destination(parsing: "file:///srv/out/").description == "file:///srv/out")
        let bad: [(String, String)] = [
            ("/srv/out", "is not a URL"),
            ("ftp://h/x", "scheme \"ftp\""),
            ("http://user:pw@h/x", "credentials"),
            ("http://h/x?a=1", "query"),
            ("file:///srv/../etc", "\"..\" path segment"),
            ("file:///srv/a b", "segments may hold only"),
            ("s3://UP/x", "bucket name"),
            ("file:///", "root directory"),
            ("http://h:99999/x", "port"),
            ("file://otherhost/x", "is local"),
        ]
        for (text, phrase) in bad {
            do {
                _ = try Destination(parsing: text)
                Issue.record("\(text) should be refused")
            } catch let e as UploadError {
                #expect(e.code == .permanent)
                #expect(e.message.contains(phrase), "\(e.message)")
                #expect(e.message.hasSuffix("."), "one sentence: \(e.message)")
            }
        }
        let allow = try AllowList(["s3://bkt/out", "file:///srv/out"])
        #expect(allow.permits(try Destination(parsing: "s3://bkt/out")))
        #expect(allow.permits(try Destination(parsing: "s3://bkt/out/x/y")))
        #expect(!allow.permits(try Destination(parsing: "s3://bkt/outside")), "prefixes match whole segments")
        #expect(!allow.permits(try Destination(parsing: "s3://cat/out")))
        #expect(!allow.permits(try Destination(parsing: "file:///srv")))
        #expect(!allow.permits(try Destination(parsing: "http://bkt/out")))
        #expect(throws: UploadError.self) { try AllowList(["nonsense"]) }
    }

    @Test("object names are the key when it is safe, else a sanitised key plus a hash; never shared by two keys")
    func objectNames() {
        #expect(UploadStage.objectName(key: "batch-7_x.1", jobID: 9) == "batch-7_x.1")
        let a = UploadStage.objectName(key: "demo:1", jobID: 1)
        #expect(a.hasPrefix("demo_1-") && a.count == "demo_1-".count + 16)
        #expect(UploadStage.objectName(key: "demo:1", jobID: 2) == a, "the name depends on the key, not on the job id")
        #expect(UploadStage.objectName(key: "demo_1", jobID: 1) != a)
        #expect(UploadStage.objectName(key: "demo/1", jobID: 1) != a)
        #expect(UploadStage.objectName(key: "", jobID: 42) == "job-42")
        #expect(UploadStage.objectName(key: "../etc/passwd", jobID: 1).hasPrefix("_._etc_passwd-"))
        let long = UploadStage.objectName(key: String(repeating: "x", count: 500), jobID: 1)
        #expect(long.count == 80 + 1 + 16)
        #expect(UploadStage.objectName(key: "🍎 apple", jobID: 1).hasPrefix("__apple-"))
    }

    @Test("parameters: dest from the job or the worker default; bad name and headers are refused")
    func parameters() throws {
        let p = try UploadParameters(json: JSON.object(["dest": .string("s3://b/x"), "prompt": .string("ignored")]).bytes, defaultDestination: nil)
        #expect(p.destination == "s3://b/x" && p.name == nil && p.headers.isEmpty)
        #expect(try UploadParameters(json: [], defaultDestination: "file:///srv/out").destination == "file:///srv/out")
        let named = try UploadParameters(json: JSON.object(["dest": .string("s3://b/x"), "name": .string("cover.png"), "headers": .object(["x-a": .string("1")])]).bytes,
                                         defaultDestination: nil)
        #expect(named.name == "cover" && named.headers == [HTTPHeader(name: "x-a", value: "1")])
        let bad: [([UInt8], String)] = [
            ([], "no \"dest\" parameter"),
            (Array("[1]".utf8), "not a JSON object"),
            (JSON.object(["dest": JSON(3)]).bytes, "must be a string"),
            (JSON.object(["dest": .string("s3://b/x"), "name": .string("../up")]).bytes, "\"name\" parameter"),
            (JSON.object(["dest": .string("s3://b/x"), "headers": .object(["Authorization": .string("x")])]).bytes, "may not set \"Authorization\""),
            (JSON.object(["dest": .string("s3://b/x"), "headers": .object(["bad name": .string("x")])]).bytes, "not an HTTP token"),
            (JSON.object(["dest": .string("s3://b/x"), "headers": .object(["x": .string("a\r\nInjected: 1")])]).bytes, "control character"),
        ]
        for (json, phrase) in bad {
            #expect {
                try UploadParameters(json: json, defaultDestination: nil)
            } throws: { e in
                ((e as? UploadError)?.message.contains(phrase) ?? false)
            }
        }
    }

    @Test("a stage image becomes a PNG with its pixels and its metadata as text chunks; an edit's mask a second PNG")
    func encodeStageImage() throws {
        let input = stageImage(prompt: "Café au lait", mask: false)
        let e = try UploadStage.encode(input)
        let source = try StageImage(decoding: input)
        let decoded = try PNGCodec.decode(e.png)
        #expect(decoded.width == 8 && decoded.height == 6 && decoded.pixels == source.pixels)
        let text = Dictionary(try PNGCodec.textChunks(e.png), uniquingKeysWith: { a, _ in a })
        #expect(text["prompt"] == "Café au lait")
        #expect(text["database"] == "emoji" && text["k"] == "16" && text["seed"] == "7" && text["steps"] == "20")
        #expect(text["neighbours"] == "[3,1,4]" && text["version"] == "1")
        #expect(text["Software"]?.hasPrefix("Hume") == true)
        #expect(e.mask == nil)
        // A prompt Latin-1 cannot hold goes in an iTXt chunk (UTF-8), and libpng still reads the file.
        let emoji = try UploadStage.encode(stageImage(prompt: "an apple 🍎", mask: true))
        let itxt = pngChunks(emoji.png).filter { $0.type == "iTXt" }
        #expect(itxt.count == 1)
        #expect(itxt.first.map { String(decoding: $0.data, as: UTF8.self) } == "edit\0\0\0\0\0an apple 🍎")
        #expect(try PNGCodec.decode(emoji.png).pixels == (try StageImage(decoding: stageImage(prompt: "an apple 🍎", mask: true)).pixels))
        let mask = try PNGCodec.decode(try #require(emoji.mask))
        #expect(mask.pixels.enumerated().allSatisfy { i, v in v == ((i / 3) % 3 == 0 ? 255 : 0) })
        // Encoding is deterministic: a retry stores the same bytes.
        #expect(try UploadStage.encode(input).png == e.png)
    }

    @Test("a PNG input is stored as is; corrupt or foreign input is refused with one sentence")
    func inputs() throws {
        let png = try PNGCodec.encode(PixelImage(width: 3, height: 2, channels: 3, pixels: Array(repeating: 9, count: 18)))
        #expect(try UploadStage.encode(png).png == png)
        var flipped = png
        flipped[40] ^= 0xff
        var truncatedImage = stageImage()
        truncatedImage.removeLast(10)
        let cases: [([UInt8], String)] = [
            ([], "neither a Hume stage image (HIMG) nor a PNG: it is empty"),
            (Array("hello world".utf8), "it starts with the bytes 68 65 6c 6c"),
            (flipped, "corrupt PNG"),
            (Array(png.prefix(30)), "corrupt PNG"),
            (truncatedImage, "corrupt stage image: the stage image is truncated in its pixels"),
            (StageImage(width: 2, height: 2, metadata: Array("not json".utf8), pixels: Array(repeating: 0, count: 12)).encoded(),
             "metadata is not a JSON object"),
            (StageImage(width: 2, height: 2, metadata: [], pixels: Array(repeating: 0, count: 12),
                        sections: [.init(tag: "MASK", width: 1, height: 1, channels: 1, pixels: [0])]).encoded(), "MASK section is 1×1×1"),
        ]
        for (input, phrase) in cases {
            do {
                _ = try UploadStage.encode(input)
                Issue.record("input should be refused: \(phrase)")
            } catch let e as UploadError {
                #expect(e.code == .permanent)
                #expect(e.message.contains(phrase), "\(e.message)")
                #expect(e.message.hasSuffix(".") && !e.message.dropLast().contains(". "), "one sentence: \(e.message)")
            }
        }
    }

    @Test("file://: written atomically with its mask, the result carries url/bytes/sha256, a repeat overwrites the same file",
          .timeLimit(.minutes(1)))
    func fileDestination() throws {
        let dir = tempDir("file")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = UploadConfiguration(workingDirectory: dir)
        config.allowed = try AllowList(["file://\(dir)/out"])
        let stage = try UploadStage(configuration: config)
        let t = task(key: "edits:3", params: ["dest": .string("file://\(dir)/out/run1")], input: stageImage(mask: true))
        let r = try okJSON(stage.upload(t))
        let name = UploadStage.objectName(key: "edits:3", jobID: 1)
        #expect(r["url"]?.string == "file://\(dir)/out/run1/\(name).png")
        let stored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/run1/\(name).png")))
        #expect(r["bytes"]?.int == stored.count)
        #expect(r["sha256"]?.string == (try sha256sum(stored)))
        let mask = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/run1/\(name).mask.png")))
        #expect(r["mask_url"]?.string == "file://\(dir)/out/run1/\(name).mask.png")
        #expect(r["mask_sha256"]?.string == SHA256.hex(mask) && r["mask_bytes"]?.int == mask.count)
        // The same job again (a retried lease, a re-run batch): the same object, no second one, no temp files left.
        var again = t
        again.jobID = 99
        again.attempt = 2
        let r2 = try okJSON(stage.upload(again))
        #expect(r2 == r)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out/run1").sorted() == ["\(name).mask.png", "\(name).png"])
        #expect(stage.statistics.objects == 4)
    }

    @Test("a destination outside the allowed prefixes fails permanently; the default allows only ./out")
    func allowedPrefixes() throws {
        let dir = tempDir("allow")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stage = try UploadStage(configuration: UploadConfiguration(workingDirectory: dir))
        #expect(stage.configuration.allowed.description == "file://\(dir)/out")
        let outcomes = ["file://\(dir)/elsewhere", "file://\(dir)/outside", "s3://bucket/out", "http://127.0.0.1:1/x"].map {
            stage.upload(task(key: "k", params: ["dest": .string($0)], input: stageImage()))
        }
        for o in outcomes {
            guard case .permanent(let m) = o else { Issue.record("expected a permanent failure, got \(o)"); continue }
            #expect(m.contains("outside this worker's allowed prefixes (allowed: file://\(dir)/out)"), "\(m)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/elsewhere"))
        #expect(try okJSON(stage.upload(task(key: "k", params: ["dest": .string("file://\(dir)/out/x")], input: stageImage())))["bytes"] != nil)
        // The environment and an empty list.
        let env = try UploadConfiguration(environment: ["HUME_UPLOAD_ALLOW": "s3://abc/x, file:///srv/out", "AWS_REGION": "eu-west-1",
                                                        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"], workingDirectory: dir)
        #expect(env.allowed.description == "s3://abc/x, file:///srv/out" && env.s3Region == "eu-west-1" && env.s3Endpoint == "http://127.0.0.1:9000")
        var none = UploadConfiguration(workingDirectory: dir)
        none.allowed = try AllowList([])
        guard case .permanent(let m) = try UploadStage(configuration: none).upload(task(key: "k", params: ["dest": .string("file://\(dir)/out")], input: stageImage()))
        else { Issue.record("expected a permanent failure"); return }
        #expect(m.contains("none are configured"), "\(m)")
    }
}
