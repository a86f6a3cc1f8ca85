import CCurl
import Foundation

/// Counters an upload worker keeps (for tests and status).
public struct UploadStatistics: Sendable, Equatable {
    /// Objects stored.
    public var objects = 0
    /// Bytes stored.
    public var bytes = 0
    /// Tries that failed retryably and were tried again inside a task.
    public var retries = 0
    /// TCP connections opened; fewer than the HTTP uploads means connections were reused.
    public var connections = 0
    /// HTTP(S) and S3 requests sent.
    public var requests = 0
}

/// Thread-safe counters.
final class StatisticsBox: @unchecked Sendable {  // `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value = UploadStatistics()

    func update(_ change: (inout UploadStatistics) -> Void) {
        lock.lock()
        change(&value)
        lock.unlock()
    }

    var snapshot: UploadStatistics {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}

/// How S3 requests are addressed: path-style against a configured endpoint, virtual-hosted against AWS.
enum S3Addressing {
    /// Parses an endpoint such as `http://127.0.0.1:9000` (a path, if any, is kept as a prefix).
    static func endpoint(_ text: String) throws -> Destination {
        let d: Destination
        do { d = try Destination(parsing: text) } catch let e as UploadError {
            throw UploadError.permanent("The S3 endpoint \"\(text)\" is invalid: \(e.message.lowercasedFirst)")
        }
        guard d.kind == .http || d.kind == .https else {
            throw UploadError.permanent("The S3 endpoint \"\(text)\" must be an http:// or https:// URL.")
        }
        return d
    }

    /// The HTTP URL of an object.
    static func url(of object: Destination, endpoint: String?, region: String) throws -> String {
        let bucket = object.authority
        if let endpoint {
            let e = try S3Addressing.endpoint(endpoint)
            return Destination(kind: e.kind, authority: e.authority, segments: e.segments + [bucket] + object.segments).description
        }
        // Virtual-hosted on AWS, except for bucket names with dots (their TLS certificate would not match).
        if bucket.contains(".") { return "https://s3.\(region).amazonaws.com/\(bucket)/\(object.s3Key)" }
        return "https://\(bucket).s3.\(region).amazonaws.com/\(object.s3Key)"
    }
}

/// What a server said in an error response, as text for one sentence: S3's `<Code>` and `<Message>`, an HTML
/// page's `<title>`, or the first 300 characters of a plain body.
func serverMessage(_ response: HTTPResponse) -> String {
    let text = String(decoding: response.body, as: UTF8.self)
    func element(_ name: String) -> String? {
        guard let open = text.range(of: "<\(name)>"), let close = text.range(of: "</\(name)>", range: open.upperBound..<text.endIndex)
        else { return nil }
        return unescapeXML(String(text[open.upperBound..<close.lowerBound]))
    }
    var parts: [String] = []
    if let code = element("Code") {
        parts.append(code)
        if let m = element("Message") { parts.append("\"" + tidy(m) + "\"") }
    } else if let title = element("title") {
        parts.append(tidy(title))
    } else if !text.isEmpty {
        let plain = tidy(text.replacingOccurrences(of: "<[^>]*>", with: " ", options: .regularExpression))
        if !plain.isEmpty { parts.append("\"" + plain + "\"") }
    }
    return parts.joined(separator: " ")
}

/// Collapses white space, drops a final period, and cuts at 300 characters.
func tidy(_ s: String) -> String {
    var t = s.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    if t.count > 300 { t = String(t.prefix(300)) + "…" }
    while t.hasSuffix(".") { t.removeLast() }
    return t
}

func unescapeXML(_ s: String) -> String {
    s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
        .replacingOccurrences(of: "&amp;", with: "&")
}

/// Stores objects at destinations: one try (`put`) or a bounded series with back-off (`store`).
struct ObjectStore: Sendable {
    let configuration: UploadConfiguration
    let pool: CurlPool
    let statistics: StatisticsBox

    /// Stores `bytes` at `object`, retrying retryable failures up to `configuration.attempts` tries with a doubling
    /// back-off. Blocks the calling thread.
    /// - Throws: `UploadError`: permanent at once, retryable once the tries are used up.
    func store(_ bytes: [UInt8], sha256: String, at object: Destination, headers: [HTTPHeader]) throws {
        var pause = configuration.backoffMs
        for attempt in 1...configuration.attempts {
            do {
                try put(bytes, sha256: sha256, at: object, headers: headers)
                statistics.update { $0.objects += 1; $0.bytes += bytes.count }
                return
            } catch let e as UploadError where e.code == .retryable {
                if attempt == configuration.attempts {
                    let tries = configuration.attempts == 1 ? "" : " (tried \(configuration.attempts) times)"
                    throw UploadError(.retryable, e.message.dropLastPeriod + tries + ".", cause: e.cause)
                }
                statistics.update { $0.retries += 1 }
                usleep(UInt32(min(pause, 4_000)) * 1000)
                pause = min(max(pause * 2, 1), 4_000)
            }
        }
    }

    /// One try.
    func put(_ bytes: [UInt8], sha256: String, at object: Destination, headers: [HTTPHeader]) throws {
        switch object.kind {
        case .file:
            try FileWriter.write(bytes, to: object.path)
        case .http, .https:
            let all = [HTTPHeader(name: "Content-Type", value: "image/png")] + configuration.httpHeaders + headers
            try send(bytes, url: object.description, shownAs: object.description, headers: all, sigv4: nil)
        case .s3:
            guard let id = configuration.accessKeyID, let secret = configuration.secretAccessKey else {
                throw UploadError.permanent("The upload to \(object) needs S3 credentials and this worker has none; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or --s3-access-key-id and --s3-secret-access-key-file).")
            }
            let url = try S3Addressing.url(of: object, endpoint: configuration.s3Endpoint, region: configuration.s3Region)
            var all = [HTTPHeader(name: "Content-Type", value: "image/png"),
                       // Signed by libcurl's SigV4 (it signs every x-amz-* header) and checked by the server.
                       HTTPHeader(name: "x-amz-content-sha256", value: sha256)]
            if let token = configuration.sessionToken { all.append(HTTPHeader(name: "X-Amz-Security-Token", value: token)) }
            try send(bytes, url: url, shownAs: object.description, headers: all,
                     sigv4: CurlEasy.SigV4(region: configuration.s3Region, accessKeyID: id, secretAccessKey: secret))
        }
    }

    func send(_ bytes: [UInt8], url: String, shownAs name: String, headers: [HTTPHeader], sigv4: CurlEasy.SigV4?) throws {
        let response: HTTPResponse
        do {
            response = try pool.withHandle { easy in
                try easy.put(url: url, body: bytes, headers: headers, sigv4: sigv4,
                             connectTimeoutMs: configuration.connectTimeoutMs, timeoutMs: configuration.timeoutMs)
            }
        } catch let f as CurlFailure {
            statistics.update { $0.requests += 1; $0.connections += f.newConnections }
            let what = f.code == CURLE_OPERATION_TIMEDOUT ? "timed out" : "failed"
            let sentence = "The upload to \(name) \(what): \(tidy(f.message)) (curl error \(f.code.rawValue))."
            throw UploadError(CurlEasy.isRetryable(f.code) ? .retryable : .permanent, sentence)
        }
        statistics.update { $0.requests += 1; $0.connections += response.newConnections }
        switch response.status {
        case 200..<300:
            return
        case 408, 429, 500..<600:
            throw UploadError.retryable("The server answered HTTP \(response.status)\(detail(response)) to the upload to \(name).")
        default:
            throw UploadError.permanent("The server refused the upload to \(name) with HTTP \(response.status)\(detail(response)).")
        }
    }

    /// The server's words after "HTTP 403", without repeating the status (nginx's titles start with it).
    func detail(_ response: HTTPResponse) -> String {
        var m = serverMessage(response)
        if m.hasPrefix("\(response.status) ") { m.removeFirst("\(response.status) ".count) }
        return m.isEmpty ? "" : " " + m
    }
}

extension String {
    var dropLastPeriod: String { hasSuffix(".") ? String(dropLast()) : self }
}

/// Writes files atomically: a temporary name in the same directory, fsync, rename over the target, fsync the
/// directory. A reader sees the old file or the whole new one, never a part; a retried write replaces the file.
enum FileWriter {
    static func write(_ bytes: [UInt8], to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        try makeDirectories(dir)
        let temp = dir + "/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = retryingEINTR { open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { throw classify(errno: errno, "create \(temp)", path: temp) }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        do {
            defer { close(fd) }
            var at = 0
            while at < bytes.count {
                let n = bytes.withUnsafeBytes { raw in retryingEINTR { Glibc.write(fd, raw.baseAddress! + at, raw.count - at) } }
                guard n > 0 else { throw classify(errno: n == 0 ? EIO : errno, "write \(temp)", path: temp) }
                at += n
            }
            guard retryingEINTR({ fsync(fd) }) == 0 else { throw classify(errno: errno, "fsync \(temp)", path: temp) }
        }
        guard rename(temp, path) == 0 else { throw classify(errno: errno, "rename \(temp) to \(path)", path: path) }
        ok = true
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = retryingEINTR { fsync(dfd) }
            close(dfd)
        }
    }

    /// `mkdir -p`: creates each missing directory of an absolute path.
    static func makeDirectories(_ dir: String) throws {
        var current = ""
        for component in dir.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw classify(errno: errno, "create the directory \(current)", path: current)
            }
        }
        var st = stat()
        guard stat(dir, &st) == 0 else { throw classify(errno: errno, "create the directory \(dir)", path: dir) }
        guard st.st_mode & S_IFMT == S_IFDIR else { throw classify(errno: ENOTDIR, "create the directory \(dir)", path: dir) }
    }

    /// Errors no retry fixes (permissions, a file where a directory should be, a read-only file system) are
    /// permanent; the rest (a full disk, I/O errors) may clear.
    static func classify(errno code: Int32, _ what: String, path: String) -> UploadError {
        let permanent: Set<Int32> = [EACCES, EPERM, EROFS, ENOTDIR, EISDIR, EEXIST, ENAMETOOLONG, ELOOP]
        let sentence = "Could not \(what): \(String(cString: strerror(code)))."
        return UploadError(permanent.contains(code) ? .permanent : .retryable, sentence,
                           cause: FileSystemCallError(function: what.split(separator: " ").first.map(String.init) ?? "?", errno: code, path: path))
    }

    static func retryingEINTR<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let r = call()
            if r == -1 && errno == EINTR { continue }
            return r
        }
    }
}
