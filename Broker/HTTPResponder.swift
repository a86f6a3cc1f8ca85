import Foundation
import HumeCore
import HumeTransport
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP request as the responder understands it: a method and a path (the query string split off).
public struct HTTPRequest: Sendable {
    public var method: String
    public var path: String
    public var query: String
}

/// One HTTP response.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]

    public init(status: Int = 200, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    public init(status: Int = 200, contentType: String = "text/plain; charset=utf-8", text: String) {
        self.init(status: status, contentType: contentType, body: Array(text.utf8))
    }
}

/// A minimal HTTP/1.1 responder over a plain TCP socket, for `/metrics` and the status page. It serves one
/// connection at a time on the thread that calls `run` (give it its own), closes each connection after one
/// response, bounds every read and write by a timeout, and answers only GET and HEAD. No TLS, no keep-alive:
/// what a Prometheus scrape or a browser on a status page needs, without SwiftNIO's build cost.
public final class HTTPResponder: @unchecked Sendable {  // `run` is called once, on one thread; `stop` is a thread-safe eventfd.
    /// The address actually bound, "host:port" (the port resolved when 0 was asked for).
    public let address: String
    let listenFD: Int32
    /// Signal it to make `run` return.
    public let stop: WakeFD
    /// Longest a client may take to send its request or read the response (default 2 s).
    public var ioTimeoutMs = 2000

    /// Binds and listens on `address` ("127.0.0.1:9464", "0.0.0.0:9464", "localhost:0"; IPv4).
    /// - Throws: `HumeError` with code `invalidInput` for a malformed address, `system` when the socket calls fail.
    public init(address: String) throws {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw HumeError(.invalidInput, "The metrics address \"\(address)\" is not HOST:PORT, e.g. 127.0.0.1:9464.")
        }
        var host = String(address[..<colon])
        if host.isEmpty { host = "0.0.0.0" }
        if host == "localhost" { host = "127.0.0.1" }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw HumeError(.invalidInput, "The metrics address \"\(address)\" needs an IPv4 host such as 127.0.0.1.")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Self.failure("socket", address) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let e = Self.failure("bind", address)
            close(fd)
            throw e
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        listenFD = fd
        self.address = "\(host):\(UInt16(bigEndian: addr.sin_port))"
        stop = try WakeFD()
    }

    deinit { close(listenFD) }

    static func failure(_ function: String, _ address: String) -> HumeError {
        let e = SystemCallError(function, errno: errno, detail: String(cString: strerror(errno)))
        return HumeError(.system, "Cannot listen for HTTP on \(address): \(e.detail).", cause: e)
    }

    /// Serves requests until `stop` is signalled. Blocks: call it on a thread of its own.
    public func run(_ handler: (HTTPRequest) -> HTTPResponse) {
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0), pollfd(fd: stop.fd, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let rc = poll(&fds, 2, -1)
            if rc < 0 && errno == EINTR { continue }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let conn = accept(listenFD, nil, nil)
            guard conn >= 0 else { continue }
            _ = fcntl(conn, F_SETFD, FD_CLOEXEC)
            serve(conn, handler)
            close(conn)
        }
    }

    func serve(_ fd: Int32, _ handler: (HTTPRequest) -> HTTPResponse) {
        var tv = timeval(tv_sec: ioTimeoutMs / 1000, tv_usec: (ioTimeoutMs % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        // Read up to the end of the headers (bodies are not read: only GET and HEAD are served).
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        let terminator: [UInt8] = [13, 10, 13, 10]
        while buffer.count < 16_384 {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            buffer += chunk.prefix(n)
            if let _ = buffer.firstRange(of: terminator) { break }
        }
        let response: HTTPResponse
        var head = false
        if let request = Self.parse(buffer) {
            head = request.method == "HEAD"
            if request.method == "GET" || head {
                response = handler(request)
            } else {
                response = HTTPResponse(status: 405, text: "Only GET and HEAD are served here.\n")
            }
        } else {
            response = HTTPResponse(status: 400, text: "The request was not an HTTP/1.x request line with headers.\n")
        }
        write(fd, response, head: head)
    }

    static func parse(_ bytes: [UInt8]) -> HTTPRequest? {
        guard let end = bytes.firstIndex(of: 13) ?? bytes.firstIndex(of: 10) else { return nil }
        let line = String(decoding: bytes[..<end], as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { return nil }
        let target = parts[1]
        let q = target.firstIndex(of: "?")
        return HTTPRequest(method: String(parts[0]), path: String(target[..<(q ?? target.endIndex)]),
                           query: q.map { String(target[target.index(after: $0)...]) } ?? "")
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }

    func write(_ fd: Int32, _ r: HTTPResponse, head: Bool) {
        var out = Array(("HTTP/1.1 \(r.status) \(Self.reason(r.status))\r\nContent-Type: \(r.contentType)\r\n"
            + "Content-Length: \(r.body.count)\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n").utf8)
        if !head { out += r.body }
        var sent = 0
        while sent < out.count {
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            sent += n
        }
    }
}

/// Hands HTTP requests from the responder's thread to the broker's loop thread and the rendered responses back,
/// so pages are rendered from the state machine on its own thread, between loop rounds. Guarded by one condition.
final class RenderMailbox: @unchecked Sendable {  // every mutable field is read and written only under `cond`.
    let wake: WakeFD
    private let cond = NSCondition()
    private var pending: [(id: Int, request: HTTPRequest)] = []
    private var answers: [Int: HTTPResponse] = [:]
    private var abandoned: Set<Int> = []
    private var nextID = 0
    private var closed = false

    init() throws { wake = try WakeFD() }

    /// Called on the HTTP thread: waits up to `timeoutMs` for the broker loop to render the request.
    func render(_ request: HTTPRequest, timeoutMs: Int) -> HTTPResponse {
        cond.lock()
        defer { cond.unlock() }
        if closed { return HTTPResponse(status: 503, text: "The broker is stopping.\n") }
        nextID += 1
        let id = nextID
        pending.append((id, request))
        wake.wake()
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while answers[id] == nil && !closed {
            if !cond.wait(until: deadline) { break }
        }
        if let a = answers.removeValue(forKey: id) { return a }
        if pending.contains(where: { $0.id == id }) { pending.removeAll { $0.id == id } } else { abandoned.insert(id) }
        return HTTPResponse(status: 503, text: "The broker did not answer in time.\n")
    }

    /// Called on the broker thread: renders every waiting request.
    func serve(_ render: (HTTPRequest) -> HTTPResponse) {
        wake.drain()
        cond.lock()
        let work = pending
        pending.removeAll()
        cond.unlock()
        guard !work.isEmpty else { return }
        let done = work.map { ($0.id, render($0.request)) }
        cond.lock()
        for (id, r) in done where abandoned.remove(id) == nil { answers[id] = r }
        cond.broadcast()
        cond.unlock()
    }

    func close() {
        cond.lock()
        closed = true
        cond.broadcast()
        cond.unlock()
    }
}
