import Foundation
import HumeCore
import HTTPTypes
import Hummingbird

/// A refusal as an RFC 9457 problem document: `application/problem+json` with `type` `about:blank`, `title` the
/// status's reason phrase, `status`, `detail` one sentence for the person who sent the request, and `code` (the
/// broker's error code where there is one, else the gateway's).
struct Problem: Error, Sendable {
    var status: HTTPResponse.Status
    var code: String
    var detail: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ code: String, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        // Sentences built from parts ("Job 3: the source…" or "the source…") start with a capital either way.
        self.detail = detail.prefix(1).uppercased() + detail.dropFirst()
        self.headers = headers
    }

    static func badRequest(_ detail: String) -> Problem { Problem(.badRequest, "bad_request", detail) }

    /// The broker's `ERROR` reply as the HTTP status that fits its code.
    static func broker(code: String, message: String) -> Problem {
        switch code {
        case "too_large": Problem(.contentTooLarge, code, message)
        case "timeout": Problem(.gatewayTimeout, code, message)
        case "bad_request", "unknown", "bad_version", "invalid_input", "permanent": Problem(.badRequest, code, message)
        default: Problem(.badGateway, code, message)
        }
    }

    /// The broker's `ERROR` reply message as a problem (`fallback` when it carries no sentence).
    static func broker(_ reply: Message, fallback: String = "The broker refused the request.") -> Problem {
        broker(code: reply.header["code"]?.string ?? "error", message: reply.header["message"]?.string ?? fallback)
    }

    /// A `HumeError` raised in the gateway (the broker did not answer, bad input found here).
    static func from(_ e: HumeError) -> Problem {
        switch e.code {
        case .timeout: Problem(.gatewayTimeout, e.code.rawValue, e.message)
        case .badRequest, .invalidInput: Problem(.badRequest, e.code.rawValue, e.message)
        case .tooLarge: Problem(.contentTooLarge, e.code.rawValue, e.message)
        default: Problem(.serviceUnavailable, e.code.rawValue, e.message)
        }
    }

    var response: Response {
        let body: JSON = .object([
            "type": .string("about:blank"), "title": .string(status.reasonPhrase), "status": JSON(status.code),
            "detail": .string(detail), "code": .string(code),
        ])
        var h = headers
        h[.contentType] = "application/problem+json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body.bytes)))
    }
}

/// Turns every error a handler or the router throws into a problem document, so that no refusal reaches a client as
/// an empty or HTML body: Hummingbird's own (no such route, body too large) with a sentence of ours.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let p as Problem {
            return p.response
        } catch let e as HumeError {
            return Problem.from(e).response
        } catch let e as any HTTPResponseError {
            if e.status == .notFound, let allowed = Self.allowedMethods(request.uri.path) {
                return Problem(.methodNotAllowed, "bad_request", "\(request.uri.path) takes \(allowed), not \(request.method.rawValue).",
                               headers: [.allow: allowed]).response
            }
            let detail: String
            switch e.status {
            case .notFound: detail = "There is no \(request.method.rawValue) \(request.uri.path) here; see /v1/openapi.json for what there is."
            case .contentTooLarge: detail = "The request body is larger than this gateway takes (\(GatewayLimits.current.maxBodyBytes) bytes)."
            case .methodNotAllowed: detail = "\(request.uri.path) does not take \(request.method.rawValue); see /v1/openapi.json."
            default: detail = "The request was refused (\(e.status.code) \(e.status.reasonPhrase))."
            }
            return Problem(e.status, e.status == .notFound ? "not_found" : "bad_request", detail).response
        } catch {
            return Problem(.internalServerError, "system", "The gateway failed while answering: \(error).").response
        }
    }
}

extension ProblemMiddleware {
    /// The methods a path of the API takes (nil for a path that is not one), for 405's `Allow`.
    static func allowedMethods(_ path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, parts[0].isEmpty, parts[1] == "v1" else { return nil }
        switch (parts.count, parts[2]) {
        case (3, "jobs"): return "POST"
        case (4, "jobs") where !parts[3].isEmpty: return "GET, DELETE"
        case (5, "jobs") where !parts[3].isEmpty && parts[4] == "image": return "GET"
        case (4, "batches") where !parts[3].isEmpty: return "GET"
        case (3, "events"), (3, "openapi.json"), (3, "health"): return "GET"
        default: return nil
        }
    }
}

/// Bearer-token authentication (RFC 6750): with tokens configured, every request but the OpenAPI document and the
/// health check needs `Authorization: Bearer <one of them>`.
struct BearerMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: [[UInt8]]
    static var open: Set<String> { ["/v1/openapi.json", "/v1/health"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !tokens.isEmpty, !Self.open.contains(request.uri.path) else { return try await next(request, context) }
        guard let value = request.headers[.authorization] else {
            throw Problem(.unauthorized, "unauthorized", "This gateway needs an Authorization: Bearer <token> header.",
                          headers: [.wwwAuthenticate: "Bearer realm=\"hume\""])
        }
        let parts = value.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer",
              tokens.contains(where: { Self.equal($0, Array(parts[1].utf8)) }) else {
            throw Problem(.unauthorized, "unauthorized", "The bearer token is not one this gateway accepts.",
                          headers: [.wwwAuthenticate: "Bearer realm=\"hume\", error=\"invalid_token\""])
        }
        return try await next(request, context)
    }

    /// Compares in time that depends on the lengths only, not on where the bytes first differ.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
