import Foundation
import HumeCore
import HumeStages
import HumeData
import HumeUploadStage
import HumeWorker
import Testing

/// A configuration allowing `prefixes`, with short back-offs so retry tests take well under a second.
func configuration(allowing prefixes: [String]) throws -> UploadConfiguration {
    var c = UploadConfiguration(workingDirectory: NSTemporaryDirectory())
    c.allowed = try AllowList(prefixes)
    c.backoffMs = 20
    return c
}

func permanentMessage(_ o: StageOutcome, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    guard case .permanent(let m) = o else {
        Issue.record("expected a permanent failure, got \(o)", sourceLocation: sourceLocation)
        return ""
    }
    return m
}

func retryableMessage(_ o: StageOutcome, sourceLocation: SourceLocation = #_sourceLocation) -> String {
    guard case .retryable(let m) = o else {
        Issue.record("expected a retryable failure, got \(o)", sourceLocation: sourceLocation)
        return ""
    }
    return m
}

@Suite("Upload stage against real servers on loopback: nginx WebDAV, moto S3, a scripted HTTP server", .serialized)
struct UploadServerTests {
    @Test("http PUT to nginx: stored bytes and sha256 match, a repeat overwrites the same object, one connection serves every upload",
          .timeLimit(.minutes(1)))
    func nginxPut() throws {
        let nginx = try Nginx()
        defer { nginx.stop() }
        let stage = try UploadStage(configuration: configuration(allowing: [nginx.baseURL + "/out"]))
        let dest = JSON.string(nginx.baseURL + "/out/gen")
        var results: [JSON] = []
        for i in 0..<5 {
            results.append(try okJSON(stage.upload(task(key: "gen:\(i)", params: ["dest": dest], input: stageImage(seed: i), job: UInt64(i + 1)))))
        }
        for (i, r) in results.enumerated() {
            let name = UploadStage.objectName(key: "gen:\(i)", jobID: 0)
            #expect(r["url"]?.string == nginx.baseURL + "/out/gen/\(name).png")
            let stored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: nginx.root + "/out/gen/\(name).png")))
            #expect(stored.count == r["bytes"]?.int)
            #expect(try sha256sum(stored) == r["sha256"]?.string)
            #expect(try PNGCodec.decode(stored).pixels == (try StageImage(decoding: stageImage(seed: i)).pixels))
        }
        // The first job again: nginx answers 204 (replaced), the directory still holds five objects.
        let again = try okJSON(stage.upload(task(key: "gen:0", params: ["dest": dest], input: stageImage(seed: 0), job: 77)))
        #expect(again == results[0])
        #expect(try FileManager.default.contentsOfDirectory(atPath: nginx.root + "/out/gen").count == 5)
        let s = stage.statistics
        #expect(s.requests == 6 && s.objects == 6)
        #expect(s.connections == 1, "the easy handle should keep its connection alive across tasks: \(s)")
        // nginx refuses PUT under /readonly/ with 403: a permanent failure quoting the server.
        let ro = try UploadStage(configuration: configuration(allowing: [nginx.baseURL]))
        let m = permanentMessage(ro.upload(task(key: "x", params: ["dest": .string(nginx.baseURL + "/readonly")], input: stageImage())))
        #expect(m.contains("refused the upload to \(nginx.baseURL)/readonly/x.png with HTTP 403 Forbidden."), "\(m)")
    }

    @Test("a 503 is retried in the stage after a back-off; the second PUT succeeds with the same body and headers",
          .timeLimit(.minutes(1)))
    func retryAfter503() throws {
        let server = try ScriptedHTTPServer(script: [.status(503, "busy, try later"), .status(201, "")])
        defer { server.stop() }
        var config = try configuration(allowing: [server.url])
        config.httpHeaders = [try HTTPHeader(line: "Authorization: Bearer s3cret")]
        let stage = try UploadStage(configuration: config)
        let r = try okJSON(stage.upload(task(key: "r:1", params: ["dest": .string(server.url + "/up"), "headers": .object(["x-batch": .string("r")])],
                                             input: stageImage())))
        let requests = server.requests
        #expect(requests.count == 2)
        #expect(requests.allSatisfy { $0.method == "PUT" && $0.path == "/up/r_1-\(String(SHA256.hex(Array("r:1".utf8)).prefix(16))).png" })
        #expect(requests.allSatisfy { $0.headers["authorization"] == "Bearer s3cret" && $0.headers["x-batch"] == "r" })
        #expect(requests.allSatisfy { $0.headers["content-type"] == "image/png" })
        #expect(requests[0].body == requests[1].body && SHA256.hex(requests[1].body) == r["sha256"]?.string)
        #expect(stage.statistics.retries == 1)
    }

    @Test("5xx every time, a silent server, a closed port: retryable after the configured tries, bounded in time",
          .timeLimit(.minutes(1)))
    func retryableFailures() throws {
        let always503 = try ScriptedHTTPServer(script: [.status(503, "<html><title>503 Service Unavailable</title></html>")])
        defer { always503.stop() }
        let silent = try ScriptedHTTPServer(script: [.silence])
        defer { silent.stop() }
        let closed = freePort()
        var config = try configuration(allowing: [always503.url, silent.url, "http://127.0.0.1:\(closed)"])
        config.timeoutMs = 300
        config.connectTimeoutMs = 300
        let stage = try UploadStage(configuration: config)
        let m1 = retryableMessage(stage.upload(task(key: "a", params: ["dest": .string(always503.url)], input: stageImage())))
        #expect(m1 == "The server answered HTTP 503 Service Unavailable to the upload to \(always503.url)/a.png (tried 3 times).")
        #expect(always503.requests.count == 3)
        let start = Date()
        let m2 = retryableMessage(stage.upload(task(key: "b", params: ["dest": .string(silent.url)], input: stageImage())))
        let elapsed = Date().timeIntervalSince(start)
        #expect(m2.contains("timed out") && m2.contains("(curl error 28)") && m2.hasSuffix("(tried 3 times)."), "\(m2)")
        #expect(elapsed > 0.9 && elapsed < 5, "three 300 ms timeouts plus back-off: \(elapsed) s")
        let m3 = retryableMessage(stage.upload(task(key: "c", params: ["dest": .string("http://127.0.0.1:\(closed)")], input: stageImage())))
        #expect(m3.contains("(curl error 7)"), "\(m3)")
    }

    @Test("4xx other than 408/429 is permanent at once, with the server's text", .timeLimit(.minutes(1)))
    func permanentHTTP() throws {
        let server = try ScriptedHTTPServer(script: [.status(404, "no such collection\n")])
        defer { server.stop() }
        let stage = try UploadStage(configuration: configuration(allowing: [server.url]))
        let m = permanentMessage(stage.upload(task(key: "a", params: ["dest": .string(server.url + "/missing")], input: stageImage())))
        #expect(m == "The server refused the upload to \(server.url)/missing/a.png with HTTP 404 \"no such collection\".")
        #expect(server.requests.count == 1, "no retry for a permanent error")
    }

    @Test("s3:// against moto with SigV4: the image and its mask stored under deterministic keys, read back by boto3; a repeat makes no new object",
          .timeLimit(.minutes(2)))
    func s3Upload() throws {
        let moto = try Moto()
        defer { moto.stop() }
        var config = try configuration(allowing: ["s3://\(moto.bucket)/out", "s3://no-such-bucket"])
        config.s3Endpoint = moto.endpoint
        config.accessKeyID = moto.accessKeyID
        config.secretAccessKey = moto.secretAccessKey
        let stage = try UploadStage(configuration: config)
        let t = task(key: "edit:1", params: ["dest": .string("s3://\(moto.bucket)/out/b1")], input: stageImage(mask: true))
        let r = try okJSON(stage.upload(t))
        let name = UploadStage.objectName(key: "edit:1", jobID: 1)
        #expect(r["url"]?.string == "s3://\(moto.bucket)/out/b1/\(name).png")
        #expect(r["mask_url"]?.string == "s3://\(moto.bucket)/out/b1/\(name).mask.png")
        var objects = try moto.objects(prefix: "out/")
        #expect(objects.keys.sorted() == ["out/b1/\(name).mask.png", "out/b1/\(name).png"])
        #expect(objects["out/b1/\(name).png"]?.size == r["bytes"]?.int)
        #expect(objects["out/b1/\(name).png"]?.sha256 == r["sha256"]?.string)
        #expect(objects["out/b1/\(name).png"]?.contentType == "image/png")
        #expect(objects["out/b1/\(name).mask.png"]?.sha256 == r["mask_sha256"]?.string)
        var again = t
        again.jobID = 2
        #expect(try okJSON(stage.upload(again)) == r)
        objects = try moto.objects(prefix: "out/")
        #expect(objects.count == 2, "the retried upload overwrote its own objects")
        #expect(objects["out/b1/\(name).png"]?.sha256 == r["sha256"]?.string)
        // A bucket that does not exist: permanent, with S3's code and message.
        let m = permanentMessage(stage.upload(task(key: "x", params: ["dest": .string("s3://no-such-bucket/x")], input: stageImage())))
        #expect(m == "The server refused the upload to s3://no-such-bucket/x/x.png with HTTP 404 NoSuchBucket \"The specified bucket does not exist\".")
    }

    @Test("s3://: a wrong secret and missing credentials fail permanently with one sentence carrying the server's reason",
          .timeLimit(.minutes(2)))
    func s3RefusedCredentials() throws {
        let moto = try Moto()
        defer { moto.stop() }
        var config = try configuration(allowing: ["s3://\(moto.bucket)"])
        config.s3Endpoint = moto.endpoint
        config.accessKeyID = moto.accessKeyID
        config.secretAccessKey = "wrong" + moto.secretAccessKey
        let stage = try UploadStage(configuration: config)
        let dest = JSON.string("s3://\(moto.bucket)/out")
        let m = permanentMessage(stage.upload(task(key: "k", params: ["dest": dest], input: stageImage())))
        #expect(m.hasPrefix("The server refused the upload to s3://\(moto.bucket)/out/k.png with HTTP 403 SignatureDoesNotMatch \"The request signature we calculated does not match"), "\(m)")
        #expect(m.hasSuffix("\"."))
        #expect(stage.statistics.requests == 1, "a refused credential is not retried")
        config.accessKeyID = nil
        config.secretAccessKey = nil
        let m2 = permanentMessage(try UploadStage(configuration: config).upload(task(key: "k", params: ["dest": dest], input: stageImage())))
        #expect(m2.contains("needs S3 credentials and this worker has none"), "\(m2)")
        #expect(try moto.objects(prefix: "").isEmpty)
    }
}
