import Foundation
import HumeCore
import HumeFleet

/// A `hume-gateway` process (the real executable, beside the test runner in the build folder) and curl-level HTTP.
final class GatewayProcess {
    let process = Process()
    let base: String
    let log: String

    static var executable: String { (humeExecutable() as NSString).deletingLastPathComponent + "/hume-gateway" }

    /// Starts a gateway for the broker at `broker` on a free loopback port and waits until it listens.
    init(broker: String, directory: String, arguments: [String] = [], environment: [String: String] = [:]) throws {
        let ready = directory + "/gateway-\(UInt32.random(in: 0...UInt32.max)).ready"
        log = ready + ".log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["--broker", broker, "--bind", "127.0.0.1:0", "--ready-file", ready] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let d = FileManager.default.contents(atPath: ready), let s = String(data: d, encoding: .utf8), s.hasSuffix("\n") {
                base = "http://" + s.trimmingCharacters(in: .whitespacesAndNewlines)
                return
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        if process.isRunning { process.terminate() }
        throw HumeError(.system, "hume-gateway did not start: \(text.suffix(600))")
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}

/// A broker serving `stages` with workers for `workers`, in a fresh directory; `stop` ends it and removes the directory.
final class LiveFleet {
    let dir: String
    let fleet: LocalFleet

    init(_ name: String, stages: String, workers: [String] = ["noop"], brokerArguments: [String] = [],
         joinTimeoutMs: Int = 30_000) throws {
        dir = freshDirectory(name)
        fleet = try LocalFleet(directory: dir, brokerArguments: ["--stages", stages] + brokerArguments)
        for w in workers { try fleet.startWorker(w) }
        if !workers.isEmpty { try fleet.waitForWorkers(workers.count, timeoutMs: joinTimeoutMs) }
    }

    /// A gateway in front of this broker.
    func gateway(_ arguments: [String] = []) throws -> GatewayProcess {
        try GatewayProcess(broker: fleet.endpoints.clients, directory: dir, arguments: arguments)
    }

    func stop() {
        fleet.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// One HTTP exchange as curl saw it.
struct HTTPReply {
    var status: Int
    /// Header names in lower case (the last value of a repeated header).
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSON { (try? JSON.parse(body)) ?? .null }
    /// A problem document's sentence.
    var detail: String { json["detail"]?.string ?? "" }
}

/// Runs curl: `method` to `url` with `headers`, the body from `body` (or a form with `form`), at most `maxTime` s.
func http(_ method: String, _ url: String, headers: [String: String] = [:], json: String? = nil, body: [UInt8]? = nil,
          form: [String] = [], maxTime: Double = 30) throws -> HTTPReply {
    let dir = NSTemporaryDirectory() + "hume-curl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var args = ["-s", "-S", "-X", method, "-o", dir + "/body", "-D", dir + "/headers", "-w", "%{http_code}",
                "--max-time", String(maxTime)]
    var h = headers
    if let json {
        h["Content-Type"] = h["Content-Type"] ?? "application/json"
        try Data(json.utf8).write(to: URL(fileURLWithPath: dir + "/request"))
        args += ["--data-binary", "@" + dir + "/request"]
    } else if let body {
        try Data(body).write(to: URL(fileURLWithPath: dir + "/request"))
        args += ["--data-binary", "@" + dir + "/request"]
    }
    for f in form { args += ["-F", f] }
    for (k, v) in h { args += ["-H", "\(k): \(v)"] }
    let (_, out, err) = try runProcess("/usr/bin/curl", args + [url], timeout: maxTime + 10)
    guard let status = Int(out.trimmingCharacters(in: .whitespacesAndNewlines)), status > 0 else {
        throw HumeError(.system, "curl \(method) \(url) failed: \(err)")
    }
    var headersOut: [String: String] = [:]
    let rawHeaders = (try? String(contentsOfFile: dir + "/headers", encoding: .utf8)) ?? ""
    for line in rawHeaders.split(separator: "\r\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headersOut[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    let data = FileManager.default.contents(atPath: dir + "/body") ?? Data()
    return HTTPReply(status: status, headers: headersOut, body: [UInt8](data))
}

/// The events of a Server-Sent Events stream: (id, event, data).
func sseEvents(_ text: String) -> [(id: String?, event: String, data: String)] {
    var out: [(String?, String, String)] = []
    for block in text.components(separatedBy: "\n\n") {
        var id: String?, event = "message", data: [String] = []
        var any = false
        for line in block.split(separator: "\n") {
            if line.hasPrefix("id: ") { id = String(line.dropFirst(4)); any = true }
            if line.hasPrefix("event: ") { event = String(line.dropFirst(7)); any = true }
            if line.hasPrefix("data: ") { data.append(String(line.dropFirst(6))); any = true }
        }
        if any && !data.isEmpty { out.append((id, event, data.joined(separator: "\n"))) }
    }
    return out
}

func freshDirectory(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "hume-gw-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// The repository root, from this file's path (Tests/HumeGatewayTests/GatewayRig.swift).
func repositoryRoot(_ file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}
