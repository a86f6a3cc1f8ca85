import Foundation
import HumeCore
import HumeData

/// What one gateway takes, set once at start.
struct GatewayLimits: Sendable {
    var maxBodyBytes = 48 << 20
    var maxJobsPerRequest = 1_000
    var maxSourceBytes = 32 << 20
    var maxSourceSide = 2_048
    var maxWaitSeconds = 60
    var brokerTimeoutMs: UInt64 = 10_000

    nonisolated(unsafe) static var current = GatewayLimits()  // written once in `main`, before the server starts
}

/// A `POST /v1/jobs` body made into what SUBMIT needs, with every refusal one sentence. A field that is given must
/// have its type: `null` is refused like any other wrong value (leave the field out instead).
///
/// One job: `{"kind": "generate", "prompt": "a red apple", "params": {"seed": 2}}`, `{"kind": "edit",
/// "source_base64": "<PNG>", "edit": "wearing sunglasses", "caption": "smiling face"}`, or any route: `{"route":
/// ["noop"], "data": "hello"}`. Several: the same fields at the top (batch, kind or route, params) and `"jobs": [{…}]`,
/// each with its own data and optionally its own `key`, `params` (merged over the top-level ones), `priority` and
/// `deadline_ms`.
struct JobRequest {
    var batch: String
    var route: [String]
    var jobs: [JobSpec]
    /// Whether the body named one job (no `jobs` array): the reply is then one job, not a list.
    var single: Bool

    static let dataFields = ["prompt", "data", "data_base64", "source_base64"]

    /// - Parameters:
    ///   - fields: the body's object (or the multipart form's fields).
    ///   - source: a multipart form's `source` file, the PNG of an edit.
    ///   - idempotencyKey: the `Idempotency-Key` header: the key of a single job; `<key>/<i>` for job `i` of several.
    init(fields: [String: JSON], source: [UInt8]? = nil, idempotencyKey: String?, limits: GatewayLimits) throws {
        let batch = try Self.string(fields, "batch") ?? "http"
        guard (1...200).contains(batch.utf8.count) else {
            throw Problem.badRequest("\"batch\" must be 1 to 200 bytes of text.")
        }
        self.batch = batch
        let kind = try Self.string(fields, "kind")
        let route: [String]
        if let r = fields["route"] {
            guard let list = r.array, (1...16).contains(list.count), list.allSatisfy({ $0.string != nil }) else {
                throw Problem.badRequest("\"route\" must be an array of 1 to 16 stage names.")
            }
            route = list.compactMap(\.string)
        } else {
            switch kind {
            case "generate": route = ["embed", "retrieve", "denoise"]
            case "edit": route = ["edit"]
            case nil: throw Problem.badRequest("Name a \"kind\" (\"generate\" or \"edit\") or a \"route\" (an array of stage names).")
            case let k?: throw Problem.badRequest("\"kind\" is \"\(k)\"; it must be \"generate\" or \"edit\".")
            }
        }
        if let k = kind, !["generate", "edit"].contains(k) {
            throw Problem.badRequest("\"kind\" is \"\(k)\"; it must be \"generate\" or \"edit\".")
        }
        self.route = route
        var common = try Self.object(fields, "params", what: "\"params\"") ?? [:]
        // `edit` and `caption` at the top are the edit stage's parameters, as people write them.
        for name in ["edit", "caption"] where fields[name] != nil {
            guard let s = fields[name]?.string else { throw Problem.badRequest("\"\(name)\" must be a string.") }
            common[name] = .string(s)
        }
        if let idem = idempotencyKey {
            guard (1...1024).contains(idem.utf8.count) else {
                throw Problem.badRequest("The Idempotency-Key header must be 1 to 1024 bytes.")
            }
        }
        if let list = fields["jobs"] {
            guard let items = list.array else { throw Problem.badRequest("\"jobs\" must be an array of job objects.") }
            guard (1...limits.maxJobsPerRequest).contains(items.count) else {
                throw Problem(.badRequest, "too_large",
                              "\"jobs\" holds \(items.count) jobs; one request takes 1 to \(limits.maxJobsPerRequest).")
            }
            if let d = Self.dataFields.first(where: { fields[$0] != nil }) {
                throw Problem.badRequest("\"\(d)\" belongs inside each job of \"jobs\", not beside it.")
            }
            single = false
            jobs = try items.enumerated().map { i, item in
                guard let o = item.object else { throw Problem.badRequest("Job \(i) of \"jobs\" is not a JSON object.") }
                return try Self.job(o, index: i, common: common, route: route, kind: kind, source: nil,
                                    defaultKey: idempotencyKey.map { "\($0)/\(i)" }, limits: limits)
            }
        } else {
            single = true
            jobs = [try Self.job(fields, index: nil, common: common, route: route, kind: kind, source: source,
                                 defaultKey: idempotencyKey, limits: limits)]
            if let idem = idempotencyKey, let k = try Self.string(fields, "key"), k != idem {
                throw Problem.badRequest("The body's \"key\" and the Idempotency-Key header differ; give one.")
            }
        }
    }

    private static func job(_ o: [String: JSON], index: Int?, common: [String: JSON], route: [String], kind: String?,
                            source: [UInt8]?, defaultKey: String?, limits: GatewayLimits) throws -> JobSpec {
        let which = index.map { "Job \($0): " } ?? ""
        var params = common
        if let own = try object(o, "params", what: "\(which)\"params\""), index != nil {
            for (k, v) in own { params[k] = v }
        }
        let given = dataFields.filter { o[$0] != nil }
        guard given.count + (source == nil ? 0 : 1) <= 1 else {
            throw Problem.badRequest("\(which)give one of \"prompt\", \"data\", \"data_base64\" and \"source_base64\", not several.")
        }
        var data: [UInt8] = []
        if let s = source {
            data = s
        } else if let f = given.first {
            guard let text = o[f]?.string else { throw Problem.badRequest("\(which)\"\(f)\" must be a string.") }
            if f.hasSuffix("_base64") {
                guard let d = Data(base64Encoded: text) else {
                    throw Problem.badRequest("\(which)\"\(f)\" is not valid base64.")
                }
                data = [UInt8](d)
            } else {
                data = Array(text.utf8)
            }
        }
        if kind == "generate" && data.isEmpty {
            throw Problem.badRequest("\(which)a generate job needs a \"prompt\": the text to make a sticker of.")
        }
        if kind == "edit" || route.first == "edit" {
            try checkSource(data, which: which, limits: limits)
            guard let e = params["edit"]?.string, !e.isEmpty else {
                throw Problem.badRequest("\(which)an edit job needs \"edit\": what to change, e.g. \"wearing sunglasses\".")
            }
        }
        guard data.count <= 32 << 20 else {
            throw Problem(.contentTooLarge, "too_large", "\(which)the job's data is \(data.count) bytes; at most 32 MiB.")
        }
        let key = try string(o, "key") ?? defaultKey ?? ""
        guard key.utf8.count <= 1024 else { throw Problem.badRequest("\(which)\"key\" is longer than 1024 bytes.") }
        let priority = try integer(o, "priority", which: which, range: 0...255) ?? 0
        let deadline = try integer(o, "deadline_ms", which: which, range: 0...Int(Int64.max)) ?? 0
        let paramBytes = params.isEmpty ? [] : JSON.object(params).bytes
        return JobSpec(priority: UInt8(priority), deadlineMs: UInt64(deadline), key: key, params: paramBytes, data: data)
    }

    /// A source picture's kind and size from its first bytes (a PNG's signature and IHDR, a JPEG's header), so a picture
    /// that could never be edited is refused here in one sentence.
    static func checkSource(_ b: [UInt8], which: String, limits: GatewayLimits) throws {
        guard !b.isEmpty else {
            throw Problem.badRequest("\(which)an edit job needs its source picture: a PNG or JPEG in \"source_base64\" or a form file \"source\".")
        }
        guard b.count <= limits.maxSourceBytes else {
            throw Problem(.contentTooLarge, "too_large", "\(which)the source picture is \(b.count) bytes; at most \(limits.maxSourceBytes).")
        }
        let w: Int, h: Int, kind: String
        if let size = PNGCodec.storedSize(b) {
            (w, h, kind) = (size.width, size.height, "PNG")
        } else if JPEGCodec.isJPEG(b) {
            guard let size = JPEGCodec.storedSize(b) else {
                throw Problem.badRequest("\(which)the source JPEG's header cannot be read.")
            }
            (w, h, kind) = (size.width, size.height, "JPEG")
        } else {
            throw Problem.badRequest("\(which)the source is not a PNG or JPEG file (no PNG signature and header, no JPEG start marker).")
        }
        guard w > 0, h > 0 else { throw Problem.badRequest("\(which)the source \(kind) says it is \(w)×\(h) pixels.") }
        guard w <= limits.maxSourceSide, h <= limits.maxSourceSide else {
            throw Problem(.contentTooLarge, "too_large",
                          "\(which)the source \(kind) is \(w)×\(h) pixels; at most \(limits.maxSourceSide) a side.")
        }
    }

    static func string(_ o: [String: JSON], _ name: String) throws -> String? {
        guard let v = o[name] else { return nil }
        guard let s = v.string else { throw Problem.badRequest("\"\(name)\" must be a string.") }
        return s
    }

    static func object(_ o: [String: JSON], _ name: String, what: String) throws -> [String: JSON]? {
        guard let v = o[name] else { return nil }
        guard let obj = v.object else { throw Problem.badRequest("\(what) must be a JSON object.") }
        return obj
    }

    static func integer(_ o: [String: JSON], _ name: String, which: String, range: ClosedRange<Int>) throws -> Int? {
        guard let v = o[name] else { return nil }
        guard let d = v.double, d.rounded() == d, d >= Double(range.lowerBound), d <= Double(range.upperBound) else {
            throw Problem.badRequest("\(which)\"\(name)\" must be a whole number from \(range.lowerBound) to \(range.upperBound).")
        }
        return Int(d)
    }
}

/// `multipart/form-data` (RFC 7578), enough for a form with a file: each part's `name`, and its bytes.
enum Multipart {
    static func boundary(contentType: String) -> String? {
        for param in contentType.split(separator: ";").dropFirst() {
            let kv = param.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            if kv.count == 2, kv[0].lowercased() == "boundary" {
                let v = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                return (1...70).contains(v.utf8.count) ? v : nil
            }
        }
        return nil
    }

    /// The parts by name (a repeated name keeps the first).
    static func parse(_ body: [UInt8], boundary: String) throws -> [String: [UInt8]] {
        let delimiter = Array("--\(boundary)".utf8)
        let crlf: [UInt8] = [13, 10]
        var parts: [String: [UInt8]] = [:]
        guard var at = find(delimiter, in: body, from: 0) else {
            throw Problem.badRequest("The multipart body has no part delimited by its boundary.")
        }
        var count = 0
        while true {
            at += delimiter.count
            if body.count >= at + 2, body[at] == 45, body[at + 1] == 45 { break }  // "--": the closing delimiter
            guard body.count >= at + 2, body[at] == 13, body[at + 1] == 10 else {
                throw Problem.badRequest("The multipart body is malformed after a boundary.")
            }
            at += 2
            guard let headerEnd = find(crlf + crlf, in: body, from: at) else {
                throw Problem.badRequest("A multipart part has no end to its headers.")
            }
            let headers = String(decoding: body[at..<headerEnd], as: UTF8.self)
            let contentStart = headerEnd + 4
            guard let next = find(crlf + delimiter, in: body, from: contentStart) else {
                throw Problem.badRequest("The multipart body ends without its closing boundary.")
            }
            count += 1
            guard count <= 32 else { throw Problem.badRequest("The multipart body has more than 32 parts.") }
            guard let name = partName(headers) else {
                throw Problem.badRequest("A multipart part has no Content-Disposition form-data name.")
            }
            if parts[name] == nil { parts[name] = Array(body[contentStart..<next]) }
            at = next + 2
        }
        return parts
    }

    static func partName(_ headers: String) -> String? {
        for line in headers.split(separator: "\r\n") where line.lowercased().hasPrefix("content-disposition:") {
            for param in line.split(separator: ";").dropFirst() {
                let kv = param.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].lowercased() == "name" {
                    return kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
            }
        }
        return nil
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        let first = needle[0]
        var i = from
        let last = hay.count - needle.count
        while i <= last {
            if hay[i] == first, hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
