import Foundation
import HumeCore
import HumeData
import HumeStages
import HTTPTypes
import Hummingbird

/// The gateway's endpoints (docs/openapi.json says the same for machines).
struct Gateway: Sendable {
    let link: BrokerLink
    let events: EventLog
    let limits: GatewayLimits

    func register(_ router: Router<BasicRequestContext>) {
        router.post("/v1/jobs") { request, _ in try await submit(request) }
        router.get("/v1/jobs/:id") { _, context in try await job(context) }
        router.get("/v1/jobs/:id/image") { request, context in try await image(request, context) }
        router.delete("/v1/jobs/:id") { _, context in try await cancel(context) }
        router.get("/v1/batches/:name") { _, context in try await batch(context) }
        router.get("/v1/events") { request, _ in events(request) }
        router.get("/v1/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        router.get("/v1/health") { _, _ in try await health() }
    }

    // MARK: POST /v1/jobs

    func submit(_ request: Request) async throws -> Response {
        var request = request
        let body = [UInt8](buffer: try await request.collectBody(upTo: limits.maxBodyBytes))
        let contentType = request.headers[.contentType] ?? ""
        var fields: [String: JSON]
        var source: [UInt8]?
        if contentType.lowercased().hasPrefix("multipart/form-data") {
            guard let boundary = Multipart.boundary(contentType: contentType) else {
                throw Problem.badRequest("The multipart/form-data Content-Type has no boundary.")
            }
            var parts = try Multipart.parse(body, boundary: boundary)
            source = parts.removeValue(forKey: "source")
            fields = [:]
            for (name, bytes) in parts {
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw Problem.badRequest("The form field \"\(name)\" is not UTF-8 text.")
                }
                switch name {
                case "params":
                    fields[name] = try parseJSON(Array(text.utf8), what: "The form field \"params\"")
                case "route":
                    fields[name] = .array(text.split(separator: ",").map { .string(String($0)) })
                case "priority", "deadline_ms":
                    guard let n = Double(text) else { throw Problem.badRequest("The form field \"\(name)\" must be a number.") }
                    fields[name] = .number(n)
                default:
                    fields[name] = .string(text)
                }
            }
            if fields["kind"] == nil && fields["route"] == nil && source != nil { fields["kind"] = .string("edit") }
        } else if contentType.isEmpty || contentType.lowercased().hasPrefix("application/json") {
            guard let o = try parseJSON(body, what: "The request body").object else {
                throw Problem.badRequest("The request body must be a JSON object.")
            }
            fields = o
        } else {
            throw Problem(.unsupportedMediaType, "bad_request",
                          "POST /v1/jobs takes application/json or multipart/form-data, not \(contentType) (with curl: -H 'Content-Type: application/json').")
        }
        let idem = request.headers[HTTPField.Name("Idempotency-Key")!]
        let jobs = try JobRequest(fields: fields, source: source, idempotencyKey: idem, limits: limits)
        let waitSeconds = Self.preferredWait(request.headers[HTTPField.Name("Prefer")!], max: limits.maxWaitSeconds)
        let header: [String: JSON] = ["batch": .string(jobs.batch), "route": .array(jobs.route.map { .string($0) })]
        // The keys the broker stores: given, or derived from the content as the broker derives them (PROTOCOL.md §7).
        let keys = jobs.jobs.map { $0.key.isEmpty ? $0.derivedKey(batch: jobs.batch, routeNames: jobs.route) : $0.key }
        let answer = try await link.request(.submit, header: header, records: jobs.jobs.map { $0.encode() }, keys: keys,
                                            timeoutMs: limits.brokerTimeoutMs, waitMs: UInt64(waitSeconds) * 1000)
        let reply = answer.reply
        switch reply.command {
        case .ack:
            break
        case .busy:
            let ms = reply.header["retry_after_ms"]?.int ?? 250
            let seconds = max(1, (ms + 999) / 1000)
            let reason = reply.header["reason"]?.string ?? "the broker is busy"
            throw Problem(.tooManyRequests, "busy", "Hume is busy (\(reason)); retry after \(seconds) s.",
                          headers: [.retryAfter: String(seconds)])
        case .error:
            throw Problem.broker(reply, fallback: "The broker refused the jobs.")
        default:
            throw Problem(.badGateway, "system", "The broker answered SUBMIT with \(reply.command.rawValue).")
        }
        let acks = try reply.records.map { try AckRecord.decode($0) }
        guard acks.count == jobs.jobs.count else {
            throw Problem(.badGateway, "system", "The broker acknowledged \(acks.count) of \(jobs.jobs.count) jobs.")
        }
        var views: [JSON] = []
        var allFinished = true
        for (key, ack) in zip(keys, acks) {
            var view: [String: JSON]
            if let r = answer.results[ack.jobID] {
                view = Self.view(id: r.jobID, status: r.status.rawValue, key: r.key, batch: jobs.batch, body: r.body)
            } else {
                allFinished = false
                view = ["id": JSON(Int(ack.jobID)), "status": .string("active"), "batch": .string(jobs.batch),
                        "key": .string(key), "url": .string("/v1/jobs/\(ack.jobID)")]
            }
            view["duplicate"] = .bool(ack.duplicate)
            views.append(.object(view))
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        if waitSeconds > 0 { headers[HTTPField.Name("Preference-Applied")!] = "wait=\(waitSeconds)" }
        let status: HTTPResponse.Status = waitSeconds > 0 && allFinished ? .ok : .accepted
        if jobs.single {
            if case .object(let o) = views[0], let id = o["id"]?.int { headers[.location] = "/v1/jobs/\(id)" }
            return Self.json(views[0], status: status, headers: headers)
        }
        let out: JSON = .object([
            "batch": .string(jobs.batch), "accepted": JSON(reply.header["accepted"]?.int ?? 0),
            "duplicates": JSON(reply.header["duplicates"]?.int ?? 0), "jobs": .array(views),
        ])
        return Self.json(out, status: status, headers: headers)
    }

    /// `Prefer: wait=N` (RFC 7240): how long the client will wait for results, capped.
    static func preferredWait(_ prefer: String?, max: Int) -> Int {
        guard let p = prefer else { return 0 }
        for item in p.split(separator: ",") {
            let kv = item.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].lowercased() == "wait", let n = Int(kv[1].trimmingCharacters(in: .whitespaces)), n >= 0 {
                return min(n, max)
            }
        }
        return 0
    }

    // MARK: GET /v1/jobs/{id}, /image, DELETE

    func lookup(_ context: BasicRequestContext) async throws -> JobRecord {
        let id = try Self.jobID(context)
        let answer = try await link.request(.lookup, header: ["jobs": .array([JSON(Int(id))])], timeoutMs: limits.brokerTimeoutMs)
        let reply = answer.reply
        if reply.command == .error {
            throw Problem.broker(reply)
        }
        guard reply.command == .lookup, let first = reply.records.first, let rec = try? JobRecord.decode(first) else {
            throw Problem(.badGateway, "system", "The broker's answer to LOOKUP could not be read.")
        }
        guard rec.status != JobRecord.unknownStatus else {
            throw Problem(.notFound, "not_found", "There is no job \(id): never made, or ended longer ago than the broker keeps ended jobs (--keep-ended).")
        }
        return rec
    }

    func job(_ context: BasicRequestContext) async throws -> Response {
        let rec = try await lookup(context)
        var view = Self.view(id: rec.jobID, status: rec.status, key: rec.key, batch: rec.batch, body: rec.body)
        view["stage"] = JSON(Int(rec.stage))
        view["stages"] = JSON(Int(rec.stages))
        return Self.json(.object(view))
    }

    func image(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let part = request.uri.queryParameters.get("part") ?? "image"
        guard part == "image" || part == "mask" else {
            throw Problem.badRequest("\"part\" is \"\(part)\"; it must be \"image\" or \"mask\".")
        }
        let rec = try await lookup(context)
        guard let status = rec.jobStatus, status == .done else {
            let what = rec.jobStatus == .active
                ? "is not finished yet (\(rec.stage) of \(rec.stages) stages done)"
                : "ended \(rec.jobStatus?.name ?? "?"): \(String(decoding: rec.body, as: UTF8.self))"
            throw Problem(.conflict, "not_an_image", "Job \(rec.jobID) \(what)")
        }
        guard let img = try? StageImage(decoding: rec.body) else {
            throw Problem(.conflict, "not_an_image", "Job \(rec.jobID)'s result is not an image; GET /v1/jobs/\(rec.jobID) shows it.")
        }
        let png: [UInt8]
        if part == "mask" {
            guard let m = img.mask, m.channels == 1 else {
                throw Problem(.conflict, "not_an_image", "Job \(rec.jobID)'s image has no mask (only edits have one).")
            }
            png = try PNGCodec.encode(PixelImage(width: m.width, height: m.height, channels: 3,
                                                 pixels: m.pixels.flatMap { [$0, $0, $0] }))
        } else {
            png = try img.png()
        }
        return Response(status: .ok, headers: [.contentType: "image/png"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
    }

    func cancel(_ context: BasicRequestContext) async throws -> Response {
        let id = try Self.jobID(context)
        let answer = try await link.request(.cancel, header: ["jobs": .array([JSON(Int(id))])], timeoutMs: limits.brokerTimeoutMs)
        if answer.reply.command == .error {
            throw Problem.broker(answer.reply)
        }
        let cancelled = (answer.reply.header["cancelled"]?.int ?? 0) > 0
        let rec = try await lookup(context)
        var view = Self.view(id: rec.jobID, status: rec.status, key: rec.key, batch: rec.batch, body: rec.body)
        view["cancelled"] = .bool(cancelled)
        return Self.json(.object(view))
    }

    // MARK: GET /v1/batches/{name}

    func batch(_ context: BasicRequestContext) async throws -> Response {
        guard let raw = context.parameters.get("name") else { throw Problem.badRequest("A batch name is needed.") }
        let name = raw.removingPercentEncoding ?? raw
        let status = try await brokerStatus()
        guard let b = status["batches"]?.array?.first(where: { $0["batch"]?.string == name }), var o = b.object else {
            throw Problem(.notFound, "not_found", "There is no batch named \"\(name)\": never submitted, or every job of it ended longer ago than the broker keeps ended jobs (--keep-ended).")
        }
        let total = o["total"]?.int ?? 0, active = o["active"]?.int ?? 0
        o["finished"] = JSON(total - active)
        o["progress"] = .number(total == 0 ? 1 : Double(total - active) / Double(total))
        return Self.json(.object(o))
    }

    func brokerStatus() async throws -> JSON {
        let answer = try await link.request(.status, header: [:], timeoutMs: limits.brokerTimeoutMs)
        guard answer.reply.command == .status else {
            throw Problem(.badGateway, "system", "The broker answered STATUS with \(answer.reply.command.rawValue).")
        }
        return answer.reply.header
    }

    func health() async throws -> Response {
        do {
            let answer = try await link.request(.status, header: [:], timeoutMs: 2_000)
            let up = answer.reply.command == .status
            return Self.json(.object(["status": .string(up ? "ok" : "broker_error"), "broker": .string(link.endpoint)]),
                             status: up ? .ok : .serviceUnavailable)
        } catch {
            return Self.json(.object(["status": .string("broker_unreachable"), "broker": .string(link.endpoint)]), status: .serviceUnavailable)
        }
    }

    // MARK: GET /v1/events

    func events(_ request: Request) -> Response {
        let filter = request.uri.queryParameters.get("batch")
        let limitText = request.uri.queryParameters.get("limit")
        let limit = limitText.flatMap { Int($0) }
        if let text = limitText, !(0...1_000_000_000).contains(limit ?? -1) {
            return Problem.badRequest("\"limit\" is \"\(text)\"; it must be a whole number of events from 0 to 1,000,000,000.").response
        }
        let lastID = request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters.get("last_event_id")
        let log = events
        let start = log.resumePoint(after: lastID)
        let body = ResponseBody { writer in
            let (bell, remove) = log.doorbell()
            defer { remove() }
            var next = start.next
            var sent = 0
            // Tell the reader where the stream starts: a retry interval, and a gap if it asked for events that are gone.
            var head = "retry: 1000\n\n"
            if start.gap {
                head += "id: \(log.id(next - 1))\nevent: gap\ndata: {\"resumed_from\":\"\(log.id(next))\"}\n\n"
            }
            try await writer.write(ByteBuffer(string: head))
            var bells = bell.makeAsyncIterator()
            while limit.map({ sent < $0 }) ?? true {
                let batch = log.events(from: next, limit: 256)
                if batch.isEmpty {
                    guard await bells.next() != nil else { break }
                    if log.events(from: next, limit: 1).isEmpty {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    }
                    continue
                }
                if let first = batch.first, first.seq > next {
                    // Readers slower than the ring lose the oldest events; say so rather than skip silently.
                    try await writer.write(ByteBuffer(string: "id: \(log.id(first.seq - 1))\nevent: gap\ndata: {\"resumed_from\":\"\(log.id(first.seq))\"}\n\n"))
                }
                var text = ""
                for e in batch {
                    next = e.seq + 1
                    guard filter == nil || e.batch == filter else { continue }
                    text += "id: \(log.id(e.seq))\nevent: result\ndata: \(e.summary.json)\n\n"
                    sent += 1
                    if let l = limit, sent >= l { break }
                }
                if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    // MARK: Views

    static func jobID(_ context: BasicRequestContext) throws -> UInt64 {
        guard let text = context.parameters.get("id"), let id = UInt64(text), id > 0, id <= 1 << 53 else {
            throw Problem.badRequest("A job id is a whole number from 1 to 2^53, as POST /v1/jobs returned it.")
        }
        // Ids count up from 1; the broker's JSON reads whole numbers below 9·10¹⁵, and no job has a larger id.
        guard id < 9_000_000_000_000_000 else { throw Problem(.notFound, "not_found", "There is no job \(id).") }
        return id
    }

    /// A job as JSON: id, key, batch, status, and what it made (an image's size, metadata and URLs; text output; or
    /// the error sentence).
    static func view(id: UInt64, status: UInt8, key: String, batch: String?, body: [UInt8]) -> [String: JSON] {
        let st = JobStatus(rawValue: status)
        var o: [String: JSON] = [
            "id": JSON(Int(id)), "key": .string(key), "status": .string(st?.name ?? "unknown"),
            "url": .string("/v1/jobs/\(id)"), "batch": batch.map { .string($0) } ?? .null,
        ]
        switch st {
        case .done?:
            if let h = StageImage.header(of: body) {
                var image: [String: JSON] = ["width": JSON(h.width), "height": JSON(h.height), "url": .string("/v1/jobs/\(id)/image")]
                image["metadata"] = (try? JSON.parse(body[h.metadata])) ?? .null
                if ResultSummary.hasMask(body, after: h.pixels) {
                    image["mask_url"] = .string("/v1/jobs/\(id)/image?part=mask")
                }
                o["image"] = .object(image)
            } else if let text = String(validating: body, as: UTF8.self) {
                o["output"] = .string(text)
            } else {
                o["output_base64"] = .string(Data(body).base64EncodedString())
            }
        case .active?, nil:
            break
        default:
            o["error"] = .string(String(decoding: body, as: UTF8.self))
        }
        return o
    }

    static func json(_ value: JSON, status: HTTPResponse.Status = .ok, headers: HTTPFields = [.contentType: "application/json"]) -> Response {
        Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.bytes)))
    }
}

func parseJSON(_ bytes: [UInt8], what: String) throws -> JSON {
    do {
        return try JSON.parse(bytes, what: what)
    } catch let e as HumeError {
        throw Problem.badRequest(e.message)
    }
}
