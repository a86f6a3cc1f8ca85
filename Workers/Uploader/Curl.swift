import CCurl
import Foundation

/// What a server answered to one request.
struct HTTPResponse: Sendable {
    var status: Int
    /// The body, cut at `HTTPResponse.bodyLimit` bytes (only error messages are read from it).
    var body: [UInt8]
    /// The response's Content-Type, if any.
    var contentType: String?
    /// New connections this request opened (0 when it reused one).
    var newConnections: Int
}

extension HTTPResponse {
    static let bodyLimit = 64 << 10
}

/// A transfer that failed below HTTP: no connection, a timeout, a TLS failure.
struct CurlFailure: Error, Sendable {
    var code: CURLcode
    /// libcurl's own detailed message (CURLOPT_ERRORBUFFER), or its generic one.
    var message: String
    var newConnections: Int
}

/// One libcurl easy handle. Not thread-safe: a `CurlPool` lends it to one thread at a time. The handle keeps its
/// connection cache across `curl_easy_reset`, which is how consecutive uploads reuse a connection.
final class CurlEasy {
    let handle: UnsafeMutableRawPointer
    /// CURLOPT_ERRORBUFFER: libcurl writes its message here; it must live as long as the handle.
    let errorBuffer: UnsafeMutablePointer<CChar>

    /// Collects the response body and headers the callbacks receive.
    final class Sink {
        var body: [UInt8] = []
    }

    static let globalInit: CURLcode = hume_curl_global_init_all()

    static let write: curl_write_callback = { data, size, count, userdata in
        let length = size * count
        guard let data, let userdata else { return length }
        let sink = Unmanaged<Sink>.fromOpaque(userdata).takeUnretainedValue()
        let room = max(0, HTTPResponse.bodyLimit - sink.body.count)
        if room > 0 {
            data.withMemoryRebound(to: UInt8.self, capacity: length) {
                sink.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: min(room, length)))
            }
        }
        return length
    }

    init() throws {
        guard CurlEasy.globalInit == CURLE_OK else {
            throw UploadError.retryable("libcurl could not initialise (curl_global_init returned \(CurlEasy.globalInit.rawValue)).")
        }
        guard let h = curl_easy_init() else { throw UploadError.retryable("libcurl could not create a handle (curl_easy_init).") }
        handle = h
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// AWS Signature Version 4 settings for one request.
    struct SigV4 {
        var region: String
        var accessKeyID: String
        var secretAccessKey: String
    }

    /// PUTs `body` to `url`. Blocks the calling thread (never call it on the cooperative pool).
    /// - Returns: the HTTP response, whatever its status.
    /// - Throws: `CurlFailure` when no HTTP response arrived.
    func put(url: String, body: [UInt8], headers: [HTTPHeader], sigv4: SigV4?, connectTimeoutMs: Int,
             timeoutMs: Int) throws -> HTTPResponse {
        curl_easy_reset(handle)  // keeps live connections, the DNS and TLS session caches
        errorBuffer[0] = 0
        var list: UnsafeMutablePointer<curl_slist>?
        for h in headers { list = curl_slist_append(list, "\(h.name): \(h.value)") }
        defer { curl_slist_free_all(list) }
        let sink = Sink()
        var codes: [CURLcode] = []
        codes.append(hume_curl_easy_setopt_string(handle, CURLOPT_URL, url))
        codes.append(hume_curl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https"))
        codes.append(hume_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        codes.append(hume_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, connectTimeoutMs))
        codes.append(hume_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeoutMs))
        codes.append(hume_curl_easy_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1))
        codes.append(hume_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, "hume-upload/1"))
        codes.append(hume_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer))
        codes.append(hume_curl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, list))
        codes.append(hume_curl_easy_setopt_data_callback(handle, CURLOPT_WRITEFUNCTION, CurlEasy.write))
        // The body goes as POSTFIELDS with the method overridden to PUT: libcurl then knows the whole body up
        // front (SigV4 and retries need no rewinding) and sends no `Expect: 100-continue` below 1 MiB.
        codes.append(hume_curl_easy_setopt_string(handle, CURLOPT_CUSTOMREQUEST, "PUT"))
        codes.append(hume_curl_easy_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
        if let s = sigv4 {
            codes.append(hume_curl_easy_setopt_string(handle, CURLOPT_AWS_SIGV4, "aws:amz:\(s.region):s3"))
            codes.append(hume_curl_easy_setopt_string(handle, CURLOPT_USERNAME, s.accessKeyID))
            codes.append(hume_curl_easy_setopt_string(handle, CURLOPT_PASSWORD, s.secretAccessKey))
        }
        if let bad = codes.first(where: { $0 != CURLE_OK }) {
            throw CurlFailure(code: bad, message: String(cString: curl_easy_strerror(bad)), newConnections: 0)
        }
        // An empty body still needs a valid pointer, or libcurl would read the body from a callback.
        let storage = body.isEmpty ? [0] : body
        let code: CURLcode = withExtendedLifetime(sink) {
            storage.withUnsafeBytes { raw in
                _ = hume_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(sink).toOpaque())
                _ = hume_curl_easy_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress!))
                let c = curl_easy_perform(handle)
                // Drop the pointers into this frame's buffers before they go away.
                _ = hume_curl_easy_setopt_pointer(handle, CURLOPT_POSTFIELDS, nil)
                _ = hume_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, nil)
                return c
            }
        }
        var connects = 0
        _ = hume_curl_easy_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connects)
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            throw CurlFailure(code: code, message: detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail,
                              newConnections: connects)
        }
        var status = 0
        _ = hume_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var type: UnsafeMutablePointer<CChar>?
        _ = hume_curl_easy_getinfo_string(handle, CURLINFO_CONTENT_TYPE, &type)
        return HTTPResponse(status: status, body: sink.body, contentType: type.map { String(cString: $0) }, newConnections: connects)
    }

    /// Failures that a later attempt may not repeat: no connection, a timeout, a dropped or garbled reply.
    static func isRetryable(_ code: CURLcode) -> Bool {
        [CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT,
         CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_SSL_CONNECT_ERROR,
         CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_HTTP3, CURLE_AGAIN, CURLE_WEIRD_SERVER_REPLY].contains(code)
    }
}

/// Lends easy handles to threads, one at a time each, and keeps them between tasks so connections are reused.
/// A worker's executor threads each hold at most one handle while running a task, so the pool never grows past
/// the stage's concurrency.
final class CurlPool: @unchecked Sendable {  // `idle` and `created` are only touched under `lock`.
    private let lock = NSLock()
    private var idle: [CurlEasy] = []
    private var created = 0

    /// Runs `body` with a handle that no other thread uses meanwhile.
    func withHandle<T>(_ body: (CurlEasy) throws -> T) throws -> T {
        lock.lock()
        let reused = idle.popLast()
        lock.unlock()
        let easy: CurlEasy
        if let reused { easy = reused } else {
            easy = try CurlEasy()
            lock.lock()
            created += 1
            lock.unlock()
        }
        defer {
            lock.lock()
            idle.append(easy)
            lock.unlock()
        }
        return try body(easy)
    }

    /// Handles made so far.
    var handles: Int {
        lock.lock()
        defer { lock.unlock() }
        return created
    }
}
