import Foundation
import HumeCore
import HumeFleet
import HumeTransport
import Testing

private let jsonType = ["Content-Type": "application/json"]

@Suite("hume-gateway: HTTP/JSON against a live broker and workers", .serialized)
struct GatewayTests {
    @Test("Every endpoint over noop workers: submit, wait, job, batch, cancel, image refusals, 404/405/415, bad bodies",
          .timeLimit(.minutes(3)))
    func endpoints() throws {
        // noop2 is served with no worker: its jobs wait, so they can be cancelled.
        let live = try LiveFleet("endpoints", stages: "noop,noop2")
        defer { live.stop() }
        let gw = try live.gateway()
        defer { gw.stop() }
        let b = gw.base

        // One job: 202 once durable, with its URL.
        let first = try http("POST", b + "/v1/jobs", headers: jsonType, json: #"{"route":["noop"],"data":"hello","batch":"web"}"#)
        #expect(first.status == 202, "\(first.text)")
        let id = try #require(first.json["id"]?.int)
        #expect(first.headers["location"] == "/v1/jobs/\(id)")
        #expect(first.json["status"]?.string == "active" && first.json["duplicate"] == .bool(false))
        // Prefer: wait gives the result in the same exchange.
        let waited = try http("POST", b + "/v1/jobs", headers: jsonType.merging(["Prefer": "wait=20"]) { $1 },
                              json: #"{"route":["noop"],"data":"hello again","batch":"web"}"#)
        #expect(waited.status == 200 && waited.json["output"]?.string == "hello again", "\(waited.text)")
        #expect(waited.headers["preference-applied"] == "wait=20")
        // GET the first one: done by now (the broker's journal says so).
        var job = JSON.null
        let deadline = Date().addingTimeInterval(20)
        repeat {
            job = try http("GET", b + "/v1/jobs/\(id)").json
        } while job["status"]?.string == "active" && Date() < deadline && usleep(50_000) == 0
        #expect(job["status"]?.string == "done" && job["output"]?.string == "hello" && job["batch"]?.string == "web")
        #expect(job["stage"] == JSON(1) && job["stages"] == JSON(1) && job["key"]?.string?.hasPrefix("web#") == true)
        #expect(first.json["key"] == job["key"], "the gateway derives the key the broker derives")

        // A batch of jobs, one of which the stage refuses: the refusal is that job's, with the stage's sentence.
        let several = try http("POST", b + "/v1/jobs", headers: jsonType.merging(["Prefer": "wait=20"]) { $1 },
                               json: #"{"route":["noop"],"batch":"web","jobs":[{"data":"a"},{"data":"b #invalid"},{"data":"c"}]}"#)
        #expect(several.status == 200, "\(several.text)")
        let jobs = several.json["jobs"]?.array ?? []
        #expect(jobs.map { $0["status"]?.string ?? "" } == ["done", "failed", "done"])
        #expect(jobs[1]["error"]?.string == "Stage noop refused the job: The input asks to be refused (#invalid).")
        #expect(several.json["accepted"] == JSON(3))
        let batch = try http("GET", b + "/v1/batches/web").json
        #expect(batch["total"] == JSON(5) && batch["done"] == JSON(4) && batch["failed"] == JSON(1) && batch["progress"] == JSON(1))
        #expect(try http("GET", b + "/v1/batches/nothing-here").status == 404)

        // Cancel a job waiting at a stage with no worker; a second cancel changes nothing.
        let queued = try http("POST", b + "/v1/jobs", headers: jsonType, json: #"{"route":["noop2"],"data":"never","batch":"q"}"#)
        let qid = try #require(queued.json["id"]?.int)
        let cancel = try http("DELETE", b + "/v1/jobs/\(qid)")
        #expect(cancel.status == 200 && cancel.json["cancelled"] == .bool(true) && cancel.json["status"]?.string == "cancelled")
        #expect(cancel.json["error"]?.string == "Cancelled at the client's request.")
        #expect(try http("DELETE", b + "/v1/jobs/\(qid)").json["cancelled"] == .bool(false))

        // Images: a text result is not one, an unknown job is 404, a bad part is 400.
        let notImage = try http("GET", b + "/v1/jobs/\(id)/image")
        #expect(notImage.status == 409 && notImage.headers["content-type"] == "application/problem+json")
        #expect(notImage.detail.contains("not an image"))
        #expect(try http("GET", b + "/v1/jobs/999999/image").status == 404)
        #expect(try http("GET", b + "/v1/jobs/\(id)/image?part=alpha").status == 400)

        // Refusals, each one sentence in a problem document.
        let cases: [(String, String, [String: String], String?, Int, String)] = [
            ("GET", "/v1/jobs/999999", [:], nil, 404, "There is no job 999999: never made, or ended longer ago than the broker keeps ended jobs (--keep-ended)."),
            ("GET", "/v1/jobs/abc", [:], nil, 400, "A job id is a whole number"),
            ("POST", "/v1/jobs", jsonType, "{not json", 400, "not valid JSON"),
            ("POST", "/v1/jobs", jsonType, "[1,2]", 400, "must be a JSON object"),
            ("POST", "/v1/jobs", jsonType, #"{"data":"x"}"#, 400, "Name a \"kind\""),
            ("POST", "/v1/jobs", jsonType, #"{"kind":"paint","prompt":"x"}"#, 400, "\"kind\" is \"paint\""),
            ("POST", "/v1/jobs", jsonType, #"{"route":["nope"],"data":"x"}"#, 400, "Unknown stage \"nope\""),
            ("POST", "/v1/jobs", jsonType, #"{"route":["noop"],"data_base64":"***"}"#, 400, "not valid base64"),
            ("POST", "/v1/jobs", jsonType, #"{"route":["noop"],"data":"x","priority":300}"#, 400, "\"priority\" must be a whole number from 0 to 255"),
            ("POST", "/v1/jobs", jsonType, #"{"kind":"generate"}"#, 400, "needs a \"prompt\""),
            ("POST", "/v1/jobs", jsonType, #"{"kind":"edit","source_base64":"aGVsbG8=","edit":"x"}"#, 400, "not a PNG or JPEG file"),
            ("POST", "/v1/jobs", ["Content-Type": "text/plain"], "hi", 415, "application/json or multipart/form-data"),
            ("PUT", "/v1/jobs", [:], nil, 405, "/v1/jobs takes POST"),
            ("GET", "/v2/anything", [:], nil, 404, "There is no GET /v2/anything here"),
        ]
        for (method, path, headers, body, status, sentence) in cases {
            let r = try http(method, b + path, headers: headers, json: body)
            #expect(r.status == status, "\(method) \(path): \(r.status) \(r.text)")
            #expect(r.headers["content-type"] == "application/problem+json", "\(method) \(path)")
            #expect(r.detail.contains(sentence), "\(method) \(path): \(r.detail)")
            #expect(r.json["status"] == JSON(status) && r.json["title"]?.string != nil)
        }
        #expect(try http("PUT", b + "/v1/jobs").headers["allow"] == "POST")
        // More jobs than one request takes: 413, nothing stored.
        let many = "{\"route\":[\"noop\"],\"batch\":\"toomany\",\"jobs\":[" + (0..<1001).map { "{\"data\":\"\($0)\"}" }.joined(separator: ",") + "]}"
        let tooMany = try http("POST", b + "/v1/jobs", headers: jsonType, json: many)
        #expect(tooMany.status == 400 && tooMany.json["code"]?.string == "too_large" && tooMany.detail.contains("1001 jobs"))
        #expect(try http("GET", b + "/v1/batches/toomany").status == 404)
        // After all that, the gateway and the broker still work.
        #expect(try http("POST", b + "/v1/jobs", headers: jsonType.merging(["Prefer": "wait=20"]) { $1 },
                         json: #"{"route":["noop"],"data":"still here"}"#).json["output"]?.string == "still here")
        #expect(try http("GET", b + "/v1/health").json["status"]?.string == "ok")
    }

    @Test("Real stages: a generate job's PNG, then a multipart edit of it (and of a JPEG) with its PNG and mask; bad pictures refused in one sentence",
          .timeLimit(.minutes(4)))
    func generateAndEdit() throws {
        let stages = ["embed", "retrieve", "denoise", "edit"]
        let live = try LiveFleet("real", stages: stages.joined(separator: ","), workers: stages, joinTimeoutMs: 120_000)
        defer { live.stop() }
        let gw = try live.gateway()
        defer { gw.stop() }
        let dir = live.dir
        let wait = jsonType.merging(["Prefer": "wait=60"]) { $1 }
        let gen = try http("POST", gw.base + "/v1/jobs", headers: wait, json: """
            {"kind":"generate","prompt":"a grinning face","params":{"database":"emoji","size":32,"steps":4,"k":4,"seed":2}}
            """, maxTime: 90)
        #expect(gen.status == 200 && gen.json["status"]?.string == "done", "\(gen.text)")
        #expect(gen.json["image"]?["width"] == JSON(32) && gen.json["image"]?["metadata"]?["prompt"]?.string == "a grinning face")
        let id = try #require(gen.json["id"]?.int)
        let png = try http("GET", gw.base + "/v1/jobs/\(id)/image")
        #expect(png.status == 200 && png.headers["content-type"] == "image/png")
        #expect(pngSize(png.body).map { "\($0.0)x\($0.1)" } == "32x32")
        #expect(try http("GET", gw.base + "/v1/jobs/\(id)/image?part=mask").status == 409, "a generated image has no mask")

        // The edit: the PNG in as a form file, a PNG and a mask out.
        let source = dir + "/source.png"
        try Data(png.body).write(to: URL(fileURLWithPath: source))
        let edit = try http("POST", gw.base + "/v1/jobs", headers: ["Prefer": "wait=60"],
                            form: ["source=@\(source);type=image/png", "edit=wearing sunglasses", "caption=grinning face",
                                   "params={\"size\":32}"], maxTime: 90)
        #expect(edit.status == 200 && edit.json["status"]?.string == "done", "\(edit.text)")
        let eid = try #require(edit.json["id"]?.int)
        #expect(edit.json["image"]?["metadata"]?["edit"]?.string == "wearing sunglasses")
        let mask = try http("GET", gw.base + "/v1/jobs/\(eid)/image?part=mask")
        let edited = try http("GET", gw.base + "/v1/jobs/\(eid)/image")
        #expect(mask.status == 200 && pngSize(mask.body).map { "\($0.0)x\($0.1)" } == "32x32")
        #expect(edited.status == 200 && pngSize(edited.body).map { "\($0.0)x\($0.1)" } == "32x32")

        // A JPEG source (a photo, stored sideways with an EXIF orientation: Tests/Fixtures/jpeg) is edited like a PNG.
        let jpeg = repositoryRoot() + "/Tests/Fixtures/jpeg/orientation6.jpg"
        let photo = try http("POST", gw.base + "/v1/jobs", headers: ["Prefer": "wait=60"],
                             form: ["source=@\(jpeg);type=image/jpeg", "edit=wearing sunglasses", "params={\"size\":32}"], maxTime: 90)
        #expect(photo.status == 200 && photo.json["status"]?.string == "done", "\(photo.text)")
        // A JPEG too large is refused from its header, as a PNG is.
        var wideJPEG = Array(try Data(contentsOf: URL(fileURLWithPath: jpeg)))
        let sof = try #require((0 ..< wideJPEG.count - 9).first { wideJPEG[$0] == 0xFF && wideJPEG[$0 + 1] == 0xC0 })
        wideJPEG.replaceSubrange(sof + 5 ..< sof + 9, with: [0, 16, 0x13, 0x88] as [UInt8])  // 16 high, 5000 wide
        try Data(wideJPEG).write(to: URL(fileURLWithPath: dir + "/wide.jpg"))
        let wide = try http("POST", gw.base + "/v1/jobs", form: ["source=@\(dir)/wide.jpg", "edit=x"])
        #expect(wide.status == 413 && wide.detail == "The source JPEG is 5000×16 pixels; at most 2048 a side.", "\(wide.text)")

        // Bad PNGs: not one, too many pixels (refused at the gateway), and a corrupt one (refused by the edit stage).
        try Data("not a picture".utf8).write(to: URL(fileURLWithPath: dir + "/text.png"))
        let notPNG = try http("POST", gw.base + "/v1/jobs", form: ["source=@\(dir)/text.png", "edit=x"])
        #expect(notPNG.status == 400 && notPNG.detail == "The source is not a PNG or JPEG file (no PNG signature and header, no JPEG start marker).",
                "\(notPNG.text)")
        var huge = Array(png.body)
        huge.replaceSubrange(16..<24, with: [0, 0, 0x13, 0x88, 0, 0, 0, 10] as [UInt8])  // 5000 × 10
        try Data(huge).write(to: URL(fileURLWithPath: dir + "/huge.png"))
        let tooBig = try http("POST", gw.base + "/v1/jobs", form: ["source=@\(dir)/huge.png", "edit=x"])
        #expect(tooBig.status == 413 && tooBig.detail.contains("5000×10"), "\(tooBig.text)")
        var corrupt = Array(png.body.prefix(40))
        corrupt += [UInt8](repeating: 7, count: 64)
        try Data(corrupt).write(to: URL(fileURLWithPath: dir + "/corrupt.png"))
        let broken = try http("POST", gw.base + "/v1/jobs", headers: ["Prefer": "wait=60"],
                              form: ["source=@\(dir)/corrupt.png", "edit=wearing sunglasses", "params={\"size\":32}"], maxTime: 90)
        #expect(broken.json["status"]?.string == "failed" && broken.json["error"]?.string?.hasPrefix("Stage edit refused the job:") == true,
                "\(broken.text)")
    }

    @Test("Concurrent single-job POSTs, coalesced into shared SUBMITs, each get their own job, key and result",
          .timeLimit(.minutes(2)))
    func concurrentPosts() throws {
        let live = try LiveFleet("concurrent", stages: "noop")
        defer { live.stop() }
        let gw = try live.gateway()
        defer { gw.stop() }
        let base = gw.base
        // 16 clients at once, 8 jobs each; one in 8 is refused by the stage, every one has its own key.
        let threads = (0..<16).map { t in
            StartedThread { () -> [HTTPReply] in
                try (0..<8).map { i in
                    let data = i == 5 ? "c\(t)-\(i) #invalid" : "c\(t)-\(i)"
                    return try http("POST", base + "/v1/jobs", headers: ["Content-Type": "application/json", "Prefer": "wait=30",
                                                                        "Idempotency-Key": "conc-\(t)-\(i)"],
                                    json: "{\"route\":[\"noop\"],\"batch\":\"conc\",\"data\":\"\(data)\"}", maxTime: 60)
                }
            }
        }
        var ids = Set<Int>()
        for (t, thread) in threads.enumerated() {
            for (i, r) in try thread.wait().enumerated() {
                #expect(r.status == 200 && r.json["key"]?.string == "conc-\(t)-\(i)", "\(r.text)")
                if i == 5 {
                    #expect(r.json["status"]?.string == "failed")
                } else {
                    #expect(r.json["output"]?.string == "c\(t)-\(i)", "\(r.text)")
                }
                ids.insert(r.json["id"]?.int ?? 0)
            }
        }
        #expect(ids.count == 128 && !ids.contains(0))
        let batch = try http("GET", base + "/v1/batches/conc").json
        #expect(batch["total"] == JSON(128) && batch["done"] == JSON(112) && batch["failed"] == JSON(16))
    }

    @Test("The served OpenAPI document is docs/openapi.json, and `hume-gateway openapi` prints the same", .timeLimit(.minutes(1)))
    func openAPI() throws {
        let committed = try String(contentsOfFile: repositoryRoot() + "/docs/openapi.json", encoding: .utf8)
        let (rc, printed, _) = try runProcess(GatewayProcess.executable, ["openapi"])
        #expect(rc == 0 && printed == committed, "regenerate with python3 Ops/openapi-swift.py")
        let dir = freshDirectory("openapi")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gw = try GatewayProcess(broker: "tcp://127.0.0.1:1", directory: dir)
        defer { gw.stop() }
        let served = try http("GET", gw.base + "/v1/openapi.json")
        #expect(served.status == 200 && served.text + "\n" == committed)
        #expect(served.json["openapi"]?.string == "3.1.0")
    }

    @Test("Idempotency-Key: a retry gets the same job, across a gateway restart too; a conflicting body key is refused",
          .timeLimit(.minutes(2)))
    func idempotency() throws {
        let live = try LiveFleet("idem", stages: "noop")
        defer { live.stop() }
        var gw = try live.gateway()
        let body = #"{"route":["noop"],"data":"pay once"}"#
        let headers = jsonType.merging(["Idempotency-Key": "order-17", "Prefer": "wait=20"]) { $1 }
        let a = try http("POST", gw.base + "/v1/jobs", headers: headers, json: body)
        #expect(a.status == 200 && a.json["duplicate"] == .bool(false) && a.json["key"]?.string == "order-17", "\(a.text)")
        let b = try http("POST", gw.base + "/v1/jobs", headers: headers, json: body)
        #expect(b.json["id"] == a.json["id"] && b.json["duplicate"] == .bool(true) && b.json["output"]?.string == "pay once")
        gw.stop()
        gw = try live.gateway()
        defer { gw.stop() }
        let c = try http("POST", gw.base + "/v1/jobs", headers: headers, json: body)
        #expect(c.json["id"] == a.json["id"] && c.json["duplicate"] == .bool(true))
        #expect(try http("GET", gw.base + "/v1/jobs/\(a.json["id"]?.int ?? 0)").json["output"]?.string == "pay once")
        // Several jobs under one key: key/i each.
        let batch = try http("POST", gw.base + "/v1/jobs", headers: headers,
                             json: #"{"route":["noop"],"jobs":[{"data":"x"},{"data":"y","key":"own"}]}"#)
        #expect(batch.json["jobs"]?.array?.map { $0["key"]?.string ?? "" } == ["order-17/0", "own"])
        let conflict = try http("POST", gw.base + "/v1/jobs", headers: headers, json: #"{"route":["noop"],"data":"x","key":"other"}"#)
        #expect(conflict.status == 400 && conflict.detail.contains("Idempotency-Key"))
    }

    @Test("BUSY is 429 with Retry-After; once results free the window the same request is taken", .timeLimit(.minutes(2)))
    func busy() throws {
        let live = try LiveFleet("busy", stages: "noop,noop2", workers: [], brokerArguments: ["--window", "2"])
        defer { live.stop() }
        let gw = try live.gateway()
        defer { gw.stop() }
        let fleet = live.fleet
        let two = try http("POST", gw.base + "/v1/jobs", headers: jsonType, json: #"{"route":["noop2"],"jobs":[{"data":"1"},{"data":"2"}]}"#)
        #expect(two.status == 202, "\(two.text)")
        let third = try http("POST", gw.base + "/v1/jobs", headers: jsonType, json: #"{"route":["noop"],"data":"3"}"#)
        #expect(third.status == 429, "\(third.text)")
        #expect(Int(third.headers["retry-after"] ?? "") ?? 0 >= 1)
        #expect(third.json["code"]?.string == "busy" && third.detail.hasPrefix("Hume is busy"))
        // Three at once can never fit a window of two: that is 413, not 429.
        let never = try http("POST", gw.base + "/v1/jobs", headers: jsonType, json: #"{"route":["noop"],"jobs":[{"data":"a"},{"data":"b"},{"data":"c"}]}"#)
        #expect(never.status == 413, "\(never.text)")
        // Free the window: cancel the two waiting jobs; the refused request now goes through.
        for j in two.json["jobs"]?.array ?? [] { _ = try http("DELETE", gw.base + "/v1/jobs/\(j["id"]?.int ?? 0)") }
        try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)
        let retried = try http("POST", gw.base + "/v1/jobs", headers: jsonType.merging(["Prefer": "wait=20"]) { $1 },
                               json: #"{"route":["noop"],"data":"3"}"#)
        #expect(retried.status == 200 && retried.json["output"]?.string == "3", "\(retried.text)")
    }

    @Test("GET /v1/events streams results as they finish, filters by batch, resumes after Last-Event-ID, and says gap for a stale id",
          .timeLimit(.minutes(2)))
    func events() throws {
        let live = try LiveFleet("events", stages: "noop")
        defer { live.stop() }
        let gw = try live.gateway()
        defer { gw.stop() }
        // A reader that connects first and waits for 4 events of batch "ev".
        let base = gw.base
        let reader = StartedThread { try http("GET", base + "/v1/events?batch=ev&limit=4", maxTime: 40) }
        usleep(500_000)
        _ = try http("POST", gw.base + "/v1/jobs", headers: jsonType, json: #"{"route":["noop"],"batch":"other","data":"not this one"}"#)
        let sent = try http("POST", gw.base + "/v1/jobs", headers: jsonType,
                            json: #"{"route":["noop"],"batch":"ev","jobs":[{"data":"e0"},{"data":"e1"},{"data":"e2"},{"data":"e3 #invalid"}]}"#)
        let ids = Set((sent.json["jobs"]?.array ?? []).compactMap { $0["id"]?.int })
        let stream = try reader.wait()
        #expect(stream.status == 200 && stream.headers["content-type"] == "text/event-stream")
        let got = sseEvents(stream.text).filter { $0.event == "result" }
        #expect(got.count == 4, "\(stream.text)")
        #expect(Set(got.compactMap { (try? JSON.parse($0.data))?["id"]?.int }) == ids)
        #expect(got.allSatisfy { (try? JSON.parse($0.data))?["batch"]?.string == "ev" })
        let failed = got.compactMap { try? JSON.parse($0.data) }.first { $0["status"]?.string == "failed" }
        #expect(failed?["error"]?.string?.contains("#invalid") == true)
        // Resume after the second event: exactly the last two come back, in order.
        let resumed = try http("GET", gw.base + "/v1/events?batch=ev&limit=2", headers: ["Last-Event-ID": got[1].id ?? ""], maxTime: 20)
        #expect(sseEvents(resumed.text).filter { $0.event == "result" }.map(\.id) == [got[2].id, got[3].id], "\(resumed.text)")
        // An id from another gateway process: a gap event, then everything still held (5 results so far).
        let stale = try http("GET", gw.base + "/v1/events?limit=5", headers: ["Last-Event-ID": "1-3"], maxTime: 20)
        let staleEvents = sseEvents(stale.text)
        #expect(staleEvents.first?.event == "gap" && staleEvents.filter { $0.event == "result" }.count == 5, "\(stale.text)")
        // Id 0: everything held, no gap.
        let all = sseEvents(try http("GET", gw.base + "/v1/events?limit=5&last_event_id=0", maxTime: 20).text)
        #expect(all.map(\.event) == Array(repeating: "result", count: 5) && all.map(\.id) == staleEvents.filter { $0.event == "result" }.map(\.id))
    }

    @Test("Bearer tokens: none or a wrong one is 401 with WWW-Authenticate, the right one works; beyond loopback needs tokens",
          .timeLimit(.minutes(2)))
    func tokens() throws {
        let live = try LiveFleet("tokens", stages: "noop")
        defer { live.stop() }
        let dir = live.dir, fleet = live.fleet
        let tokenFile = dir + "/tokens"
        try "# who may submit\nalpha-0123456789abcdef\nbravo-0123456789abcdef  # the second\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let gw = try live.gateway(["--token-file", tokenFile])
        defer { gw.stop() }
        let body = #"{"route":["noop"],"data":"secret"}"#
        let none = try http("POST", gw.base + "/v1/jobs", headers: jsonType, json: body)
        #expect(none.status == 401 && none.headers["www-authenticate"]?.hasPrefix("Bearer") == true && none.detail.contains("Authorization"))
        let wrong = try http("POST", gw.base + "/v1/jobs", headers: jsonType.merging(["Authorization": "Bearer alpha-0123456789abcdeX"]) { $1 }, json: body)
        #expect(wrong.status == 401 && wrong.headers["www-authenticate"]?.contains("invalid_token") == true)
        #expect(try http("GET", gw.base + "/v1/jobs/1").status == 401)
        #expect(try http("GET", gw.base + "/v1/events?limit=0").status == 401)
        let right = try http("POST", gw.base + "/v1/jobs", headers: jsonType.merging(["Authorization": "Bearer bravo-0123456789abcdef", "Prefer": "wait=20"]) { $1 }, json: body)
        #expect(right.status == 200 && right.json["output"]?.string == "secret")
        #expect(try http("GET", gw.base + "/v1/openapi.json").status == 200, "the document is public")
        // Beyond loopback without tokens: it refuses to start, saying why.
        let (rc, _, err) = try runProcess(GatewayProcess.executable, ["--broker", fleet.endpoints.clients, "--bind", "0.0.0.0:0"], timeout: 20)
        #expect(rc != 0 && err.contains("beyond loopback") && err.contains("--token-file"), "\(err)")
        let (rc2, _, err2) = try runProcess(GatewayProcess.executable, ["--bind", "127.0.0.1:0", "--token-file", dir + "/missing"], timeout: 20)
        #expect(rc2 != 0 && err2.contains("cannot be read"), "\(err2)")
    }

    @Test("To a CURVE broker the gateway connects with its own key; with a key the broker does not list, requests time out as 504",
          .timeLimit(.minutes(2)))
    func curve() throws {
        let dir = freshDirectory("curve")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = dir + "/keys", allowed = dir + "/allowed"
        try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: true)
        var pairs: [String: CurveKeyPair] = [:]
        for name in ["broker", "worker", "gateway", "stranger"] {
            let pair = try CurveKeyPair.generate()
            _ = try pair.write(directory: keys, name: name)
            pairs[name] = pair
        }
        for name in ["worker", "gateway"] {
            try FileManager.default.copyItem(atPath: "\(keys)/\(name).pub", toPath: "\(allowed)/\(name).pub")
        }
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--stages", "noop", "--curve-key", keys + "/broker.key", "--allow-keys", allowed],
                                   environment: ["HUME_CURVE_KEY": keys + "/worker.key", "HUME_SERVER_KEY": keys + "/broker.pub"],
                                   curve: CurveClientConfig(keys: pairs["worker"]!, serverKey: pairs["broker"]!.publicKey))
        defer { fleet.stop() }
        try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)
        let gw = try GatewayProcess(broker: fleet.endpoints.clients, directory: dir,
                                    arguments: ["--curve-key", keys + "/gateway.key", "--server-key", keys + "/broker.pub"])
        defer { gw.stop() }
        let ok = try http("POST", gw.base + "/v1/jobs", headers: jsonType.merging(["Prefer": "wait=20"]) { $1 },
                          json: #"{"route":["noop"],"data":"over curve"}"#)
        #expect(ok.status == 200 && ok.json["output"]?.string == "over curve", "\(ok.text)")
        let stranger = try GatewayProcess(broker: fleet.endpoints.clients, directory: dir,
                                          arguments: ["--curve-key", keys + "/stranger.key", "--server-key", keys + "/broker.pub", "--broker-timeout", "1"])
        defer { stranger.stop() }
        let refused = try http("POST", stranger.base + "/v1/jobs", headers: jsonType, json: #"{"route":["noop"],"data":"x"}"#)
        #expect(refused.status == 504, "\(refused.text)")
    }

    @Test("kill -9 of the broker with jobs unfinished: the gateway re-attaches after the restart, so every result still reaches the event stream",
          .timeLimit(.minutes(2)))
    func brokerRestart() throws {
        // noop2 has no worker yet: the jobs wait at the broker when it is killed.
        let live = try LiveFleet("restart", stages: "noop2", workers: [])
        defer { live.stop() }
        let gw = try live.gateway()
        defer { gw.stop() }
        let sent = try http("POST", gw.base + "/v1/jobs", headers: jsonType,
                            json: #"{"route":["noop2"],"batch":"rs","jobs":[{"data":"a"},{"data":"b"},{"data":"c","key":"rs-own"}]}"#)
        let ids = Set((sent.json["jobs"]?.array ?? []).compactMap { $0["id"]?.int })
        #expect(sent.status == 202 && ids.count == 3, "\(sent.text)")
        let base = gw.base
        let reader = StartedThread { try http("GET", base + "/v1/events?batch=rs&limit=3", maxTime: 60) }
        live.fleet.killBroker()
        try live.fleet.startBroker()
        try live.fleet.startWorker("noop2")
        let stream = try reader.wait()
        let got = sseEvents(stream.text).filter { $0.event == "result" }.compactMap { try? JSON.parse($0.data) }
        #expect(Set(got.compactMap { $0["id"]?.int }) == ids, "\(stream.text)")
        #expect(got.allSatisfy { $0["status"]?.string == "done" })
        #expect(try http("GET", gw.base + "/v1/batches/rs").json["done"] == JSON(3))
    }

    @Test("hume up --gateway runs the gateway beside the fleet, restarts it after kill -9, and stops it on the way out",
          .timeLimit(.minutes(2)))
    func underHumeUp() throws {
        let dir = freshDirectory("up")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let up = Process()
        up.executableURL = URL(fileURLWithPath: humeExecutable())
        up.arguments = ["up", "noop=1", "--dir", dir, "--bind-workers", "tcp://127.0.0.1:0", "--bind-clients", "tcp://127.0.0.1:0",
                        "--bind-control", "tcp://127.0.0.1:0", "--gateway", "127.0.0.1:0"]
        up.standardOutput = FileHandle.nullDevice
        up.standardError = FileHandle.nullDevice
        try up.run()
        defer { if up.isRunning { kill(up.processIdentifier, SIGKILL) } }
        // The gateway says where it serves in its log; after a restart it serves on a new port (port 0), said again.
        func served(after count: Int) -> String? {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                let log = (try? String(contentsOfFile: dir + "/logs/gateway.log", encoding: .utf8)) ?? ""
                let lines = log.split(separator: "\n").filter { $0.contains("serving http://") }
                if lines.count > count, let url = lines.last?.split(separator: " ").first(where: { $0.hasPrefix("http://") }) {
                    return String(url)
                }
                usleep(50_000)
            }
            return nil
        }
        let body = #"{"route":["noop"],"data":"through hume up"}"#
        let wait = jsonType.merging(["Prefer": "wait=20"]) { $1 }
        let first = try #require(served(after: 0))
        #expect(try http("POST", first + "/v1/jobs", headers: wait, json: body).json["output"]?.string == "through hume up")
        let pids = try runProcess("/usr/bin/pgrep", ["-f", "hume-gateway --broker"]).1.split(separator: "\n").compactMap { Int32($0) }
        let ours = pids.filter { pid in
            ((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "").contains("PPid:\t\(up.processIdentifier)\n")
        }
        try #require(ours.count == 1, "the gateway is a child of hume up")
        kill(ours[0], SIGKILL)
        let second = try #require(served(after: 1), "hume up restarts the gateway")
        #expect(try http("POST", second + "/v1/jobs", headers: wait, json: body).json["duplicate"] == .bool(true))
        kill(up.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(40)
        while up.isRunning && Date() < deadline { usleep(50_000) }
        #expect(!up.isRunning)
        let left = try runProcess("/usr/bin/pgrep", ["-f", "hume-gateway --broker"]).1.split(separator: "\n").compactMap { Int32($0) }
        #expect(left.allSatisfy { pid in
            !((try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "").contains("PPid:\t\(up.processIdentifier)\n")
        })
        #expect((try? String(contentsOfFile: "/proc/\(ours[0])/status", encoding: .utf8)) == nil)
    }

    @Test("SIGTERM with an event stream open: the stream ends and the gateway exits, instead of waiting on it for ever",
          .timeLimit(.minutes(1)))
    func stopsWithOpenStream() throws {
        let dir = freshDirectory("stop")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gw = try GatewayProcess(broker: "tcp://127.0.0.1:9", directory: dir)
        defer { gw.stop() }
        let base = gw.base
        let reader = StartedThread { try http("GET", base + "/v1/events", maxTime: 30) }
        usleep(500_000)
        let started = Date()
        kill(gw.process.processIdentifier, SIGTERM)
        let stream = try reader.wait()
        #expect(stream.status == 200 && Date().timeIntervalSince(started) < 10, "the stream ended after \(Date().timeIntervalSince(started)) s")
        let deadline = Date().addingTimeInterval(10)
        while gw.process.isRunning && Date() < deadline { usleep(20_000) }
        #expect(!gw.process.isRunning, "the gateway exits once its streams have ended")
    }

    @Test("A broker that is not there: POST answers 504 within the timeout, health 503; no request hangs", .timeLimit(.minutes(1)))
    func brokerAway() throws {
        let dir = freshDirectory("away")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A port nothing listens on.
        let gw = try GatewayProcess(broker: "tcp://127.0.0.1:9", directory: dir, arguments: ["--broker-timeout", "1"])
        defer { gw.stop() }
        let started = Date()
        let r = try http("POST", gw.base + "/v1/jobs", headers: jsonType, json: #"{"route":["noop"],"data":"x"}"#, maxTime: 15)
        #expect(r.status == 504 && r.detail.contains("did not answer"), "\(r.text)")
        #expect(Date().timeIntervalSince(started) < 8)
        #expect(try http("GET", gw.base + "/v1/jobs/1", maxTime: 15).status == 504)
        #expect(try http("GET", gw.base + "/v1/health", maxTime: 15).status == 503)
    }
}

/// A PNG's width and height from its IHDR chunk (nil when the bytes are not a PNG).
func pngSize(_ b: [UInt8]) -> (Int, Int)? {
    guard b.count >= 24, b.prefix(8).elementsEqual([137, 80, 78, 71, 13, 10, 26, 10] as [UInt8]) else { return nil }
    func be32(_ at: Int) -> Int { (at..<at + 4).reduce(0) { $0 << 8 | Int(b[$1]) } }
    return (be32(16), be32(20))
}

/// A body run on a thread of its own, started at once; `wait` returns its result.
final class StartedThread<T: Sendable>: @unchecked Sendable {  // `result` is written once, before `done` is signalled
    private var result: Result<T, any Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            result = Result { try body() }
            done.signal()
        }
        thread.start()
    }

    func wait() throws -> T {
        done.wait()
        return try result!.get()
    }
}
