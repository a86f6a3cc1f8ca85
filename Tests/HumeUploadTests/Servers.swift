import Foundation
import HumeFleet
import HumeCore
import Testing

// Real servers on loopback for the upload tests: nginx (WebDAV PUT), moto (S3), and a scripted HTTP/1.1 server
// that answers each request as a test says (503 then 201, silence, …). Each test starts its own and stops it.

/// The repository root, found from this file's path (Tests/HumeUploadTests/Servers.swift).
func repoRoot(_ file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}

/// A fresh temporary directory.
func tempDir(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "hume-upload-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// A free loopback TCP port (bound and released).
func freePort() -> Int { freeLoopbackPort() }

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
func accepts(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    return Loopback.connect(fd, port: port)
}

/// Runs a program to completion (bounded); returns exit status, stdout and stderr.
@discardableResult
func run(_ executable: String, _ args: [String], timeout: TimeInterval = 60) throws -> (Int32, String, String) {
    try runProcess(executable, args, timeout: timeout)
}

/// A child server process that is killed (and reaped) by `stop`.
final class ServerProcess {
    let process = Process()
    let log: String

    init(_ executable: String, _ args: [String], log: String, environment: [String: String] = [:]) throws {
        self.log = log
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Waits until the server accepts connections on `port`.
    func waitUntilListening(port: Int, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if accepts(port: port) { return }
            if !process.isRunning { break }
            usleep(50_000)
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        throw HumeError(.timeout, "The server \(process.executableURL?.lastPathComponent ?? "?") did not listen on port \(port): \(text.suffix(800))")
    }

    /// Kills the server with SIGKILL and reaps it. Not SIGTERM: children inherit the test runner's blocked-signal
    /// mask, so a server that does not unblock SIGTERM itself (nginx in single-process mode, python) never sees it;
    /// and a test server holds nothing that needs a graceful stop.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// nginx from Debian as a child: WebDAV PUT under `root`, everything (config, pid, logs, temp files) in one temp
/// directory, so it needs no root-owned path. `/readonly/` refuses PUT with 403.
final class Nginx {
    let directory: String
    let root: String
    let port: Int
    private var server: ServerProcess?

    init() throws {
        directory = tempDir("nginx")
        root = directory + "/www"
        try FileManager.default.createDirectory(atPath: root + "/readonly", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true)
        var lastError: Error?
        for _ in 0..<3 {  // the free port can be taken between the probe and nginx's bind
            let port = freePort()
            let d = directory
            let conf = """
                daemon off;
                master_process off;
                worker_processes 1;
                pid \(d)/nginx.pid;
                error_log \(d)/error.log notice;
                events { worker_connections 64; }
                http {
                    access_log \(d)/access.log;
                    client_body_temp_path \(d)/tmp/body;
                    proxy_temp_path \(d)/tmp/proxy;
                    fastcgi_temp_path \(d)/tmp/fastcgi;
                    uwsgi_temp_path \(d)/tmp/uwsgi;
                    scgi_temp_path \(d)/tmp/scgi;
                    server {
                        listen 127.0.0.1:\(port);
                        root \(root);
                        client_max_body_size 64m;
                        location / {
                            dav_methods PUT;
                            create_full_put_path on;
                            dav_access user:rw group:r all:r;
                        }
                        location /readonly/ { limit_except GET { deny all; } }
                    }
                }
                """
            try conf.write(toFile: d + "/nginx.conf", atomically: true, encoding: .utf8)
            let s = try ServerProcess("/usr/sbin/nginx", ["-p", d, "-c", d + "/nginx.conf", "-e", d + "/error.log"], log: d + "/stdout.log")
            do {
                try s.waitUntilListening(port: port, timeout: 10)
                self.port = port
                server = s
                return
            } catch {
                s.stop()
                lastError = error
            }
        }
        throw lastError ?? HumeError(.system, "nginx did not start.")
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    func stop() {
        server?.stop()
        server = nil
    }

    deinit { stop() }
}

/// The venv Ops/setup.sh makes for test tools: `${HUME_HOME:-~/.cache/hume}/venv`.
func humeVenv() -> String {
    let env = ProcessInfo.processInfo.environment
    let home = env["HUME_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.cache/hume")
    return home + "/venv"
}

/// moto's standalone S3 server as a child on a free loopback port, with an IAM user, its key and one bucket;
/// authentication is on, so every request must carry a valid SigV4 signature made with that key.
final class Moto {
    let directory: String
    let port: Int
    let bucket: String
    let accessKeyID: String
    let secretAccessKey: String
    private var server: ServerProcess?

    init(bucket: String = "hume-out") throws {
        let venv = humeVenv()
        guard FileManager.default.isExecutableFile(atPath: venv + "/bin/moto_server") else {
            Issue.record("moto_server is missing from \(venv): run Ops/setup.sh to install it.")
            throw HumeError(.system, "moto missing; run Ops/setup.sh")
        }
        directory = tempDir("moto")
        self.bucket = bucket
        var started: (ServerProcess, Int)?
        var lastError: Error?
        for _ in 0..<3 {
            let port = freePort()
            let s = try ServerProcess(venv + "/bin/moto_server", ["-H", "127.0.0.1", "-p", "\(port)"], log: directory + "/moto.log")
            do {
                try s.waitUntilListening(port: port, timeout: 30)
                started = (s, port)
                break
            } catch {
                s.stop()
                lastError = error
            }
        }
        guard let (s, port) = started else { throw lastError ?? HumeError(.system, "moto did not start.") }
        server = s
        self.port = port
        let (rc, out, err) = try run(venv + "/bin/python", [repoRoot() + "/Ops/s3_fixture.py", "setup", "http://127.0.0.1:\(port)", bucket])
        guard rc == 0, let keys = try? JSON.parse(out), let id = keys["id"]?.string, let secret = keys["secret"]?.string else {
            s.stop()
            throw HumeError(.system, "The S3 fixture set-up failed (\(rc)): \(err.suffix(800))")
        }
        accessKeyID = id
        secretAccessKey = secret
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// Every object under `prefix`, read back with boto3: key → (size, sha256, content type).
    func objects(prefix: String) throws -> [String: (size: Int, sha256: String, contentType: String)] {
        let (rc, out, err) = try run(humeVenv() + "/bin/python", [repoRoot() + "/Ops/s3_fixture.py", "list", endpoint, bucket, prefix,
                                                                   accessKeyID, secretAccessKey])
        guard rc == 0, let list = try? JSON.parse(out).array else {
            throw HumeError(.system, "Listing the bucket failed (\(rc)): \(err.suffix(800))")
        }
        var result: [String: (size: Int, sha256: String, contentType: String)] = [:]
        for o in list {
            result[o["key"]?.string ?? ""] = (o["size"]?.int ?? -1, o["sha256"]?.string ?? "", o["content_type"]?.string ?? "")
        }
        return result
    }

    func stop() {
        server?.stop()
        server = nil
    }

    deinit { stop() }
}

/// A minimal HTTP/1.1 server on a loopback socket that answers requests from a script, one entry per request in
/// arrival order (the last entry repeats), keeping connections alive. It records every request it read.
final class ScriptedHTTPServer: @unchecked Sendable {  // `requests`, `cursor`, `connections` and `stopped` are only touched under `lock`.
    enum Reply: Sendable {
        /// Answer with this status and body.
        case status(Int, String)
        /// Read the request and never answer (until the server stops).
        case silence
    }

    struct Request: Sendable {
        var method: String
        var path: String
        var headers: [String: String]
        var body: [UInt8]
    }

    let port: Int
    private let listener: Int32
    private let script: [Reply]
    private let lock = NSLock()
    private var requestsSeen: [Request] = []
    private var cursor = 0
    private var openSockets: [Int32] = []
    private var accepted = 0
    private var stopped = false

    init(script: [Reply]) throws {
        self.script = script
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard let bound = Loopback.bind(fd), listen(fd, 16) == 0 else {
            close(fd)
            throw HumeError(.system, "The scripted server could not listen.")
        }
        listener = fd
        port = bound
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    var url: String { "http://127.0.0.1:\(port)" }

    var requests: [Request] {
        lock.lock()
        defer { lock.unlock() }
        return requestsSeen
    }

    /// Connections accepted so far.
    var connections: Int {
        lock.lock()
        defer { lock.unlock() }
        return accepted
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 { return }
            lock.lock()
            if stopped { lock.unlock(); close(fd); return }
            openSockets.append(fd)
            accepted += 1
            lock.unlock()
            let t = Thread { [self] in serve(fd) }
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer {
            lock.lock()
            openSockets.removeAll { $0 == fd }
            close(fd)
            lock.unlock()
        }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            buffer += chunk[0..<n]
            return true
        }
        while true {
            var end: Int?
            while end == nil {
                if let r = find(buffer, Array("\r\n\r\n".utf8)) { end = r } else if !fill() { return }
            }
            let head = String(decoding: buffer[0..<end!], as: UTF8.self).components(separatedBy: "\r\n")
            buffer.removeFirst(end! + 4)
            let first = head[0].split(separator: " ")
            var headers: [String: String] = [:]
            for line in head.dropFirst() {
                if let c = line.firstIndex(of: ":") {
                    headers[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
                }
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            if headers["expect"]?.lowercased() == "100-continue" { send(fd, "HTTP/1.1 100 Continue\r\n\r\n") }
            while buffer.count < length { if !fill() { return } }
            let body = Array(buffer[0..<length])
            buffer.removeFirst(length)
            lock.lock()
            requestsSeen.append(Request(method: first.first.map(String.init) ?? "", path: first.count > 1 ? String(first[1]) : "",
                                        headers: headers, body: body))
            let reply = script[min(cursor, script.count - 1)]
            cursor += 1
            lock.unlock()
            switch reply {
            case .status(let code, let text):
                send(fd, "HTTP/1.1 \(code) Scripted\r\nContent-Type: text/plain\r\nContent-Length: \(text.utf8.count)\r\n\r\n\(text)")
            case .silence:
                while fill() {}  // until the client gives up or the server stops
                return
            }
        }
    }

    private func send(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var at = 0
        while at < bytes.count {
            let n = bytes[at...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            at += n
        }
    }

    private func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<i + needle.count]) == needle { return i }
        return nil
    }

    func stop() {
        lock.lock()
        let wasStopped = stopped
        stopped = true
        let sockets = openSockets
        openSockets = []
        lock.unlock()
        guard !wasStopped else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for s in sockets { shutdown(s, Int32(SHUT_RDWR)) }
    }

    deinit { stop() }
}
