import ArgumentParser
import Foundation
import HumeClient
import HumeCore

/// `hume-gateway bench`: what the gateway adds to one job's round trip. Sequential no-op jobs, one at a time, through
/// the ZeroMQ client protocol (the Swift client's connection) and through the gateway (`POST /v1/jobs` with
/// `Prefer: wait`, on one keep-alive connection); medians and 99th percentiles of each. Throughput under load is
/// `Ops/bench-gateway.sh` (wrk), which runs this too.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Round-trip latency of no-op jobs: the ZeroMQ client protocol vs the gateway's HTTP (see Ops/bench-gateway.sh).")

    @Option(help: "The broker's client endpoint (a broker serving noop, with a noop worker).") var broker = "tcp://127.0.0.1:5556"
    @Option(help: "The gateway's HOST:PORT (in front of the same broker).") var gateway = "127.0.0.1:8080"
    @Option(help: "Jobs per path (after 100 unmeasured ones).") var count = 2000
    @Option(help: "Route of the jobs.") var route = "noop"
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let tag = "\(UInt64(Date().timeIntervalSince1970 * 1000))"
        let zmq = try zmqRoundTrips(tag: tag)
        let web = try httpRoundTrips(tag: tag)
        let out: JSON = .object([
            "jobs": JSON(count),
            "zmq_p50_ms": .number(Self.quantile(zmq, 0.5)), "zmq_p99_ms": .number(Self.quantile(zmq, 0.99)),
            "http_p50_ms": .number(Self.quantile(web, 0.5)), "http_p99_ms": .number(Self.quantile(web, 0.99)),
            "added_p50_ms": .number(Self.quantile(web, 0.5) - Self.quantile(zmq, 0.5)),
        ])
        if json {
            print(out.serialized)
        } else {
            print(String(format: "no-op round trip, %d jobs one at a time: ZeroMQ p50 %.3f ms (p99 %.3f), HTTP p50 %.3f ms (p99 %.3f); the gateway adds %.3f ms at p50",
                         count, Self.quantile(zmq, 0.5), Self.quantile(zmq, 0.99), Self.quantile(web, 0.5),
                         Self.quantile(web, 0.99), Self.quantile(web, 0.5) - Self.quantile(zmq, 0.5)))
        }
    }

    static func quantile(_ xs: [Double], _ q: Double) -> Double {
        guard !xs.isEmpty else { return .nan }
        let s = xs.sorted()
        return s[min(s.count - 1, Int(Double(s.count - 1) * q + 0.5))]
    }

    static func nowMs() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }

    /// One SUBMIT of one job, then its RESULT, `count` times, on one connection.
    func zmqRoundTrips(tag: String) throws -> [Double] {
        let c = try BrokerConnection(endpoint: broker)
        var times: [Double] = []
        for i in 0..<(count + 100) {
            let req = c.newRequestID()
            let spec = JobSpec(key: "bench-zmq-\(tag)-\(i)", data: Array("zmq \(i)".utf8))
            let start = Self.nowMs()
            try c.send(Message(.submit, header: .object(["req": JSON(Int(req)), "batch": .string("bench-zmq-\(tag)"),
                                                         "route": .array([.string(route)])]), records: [spec.encode()]))
            var finished = false
            while !finished {
                guard let m = try c.receive(timeoutMs: 10_000) else {
                    throw HumeError(.timeout, "The broker at \(broker) did not finish a no-op job within 10 s; is a \(route) worker running?")
                }
                if m.command == .error || m.command == .busy {
                    throw HumeError(.system, "The broker answered \(m.command.rawValue): \(m.header.serialized)")
                }
                finished = m.command == .result
            }
            if i >= 100 { times.append(Self.nowMs() - start) }
        }
        return times
    }

    /// `POST /v1/jobs` with `Prefer: wait=10`, `count` times, on one keep-alive TCP connection.
    func httpRoundTrips(tag: String) throws -> [Double] {
        let (host, port) = try Serve.parseBind(gateway)
        let conn = try KeepAliveConnection(host: host, port: port)
        var times: [Double] = []
        for i in 0..<(count + 100) {
            let body = #"{"route":["\#(route)"],"batch":"bench-http-\#(tag)","data":"http \#(i)","key":"bench-http-\#(tag)-\#(i)"}"#
            let request = "POST /v1/jobs HTTP/1.1\r\nHost: \(gateway)\r\nContent-Type: application/json\r\nPrefer: wait=10\r\n"
                + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
            let start = Self.nowMs()
            let (status, reply) = try conn.exchange(Array(request.utf8))
            guard status == 200 else {
                throw HumeError(.system, "The gateway answered \(status): \(String(decoding: reply, as: UTF8.self))")
            }
            if i >= 100 { times.append(Self.nowMs() - start) }
        }
        return times
    }
}

/// A blocking HTTP/1.1 client connection for the benchmark: writes a request, reads one response with a
/// Content-Length body. Only what `bench` needs.
final class KeepAliveConnection {
    let fd: Int32
    var buffer: [UInt8] = []

    init(host: String, port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { throw HumeError(.system, "Could not connect to the gateway at \(host):\(port).") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    func exchange(_ request: [UInt8]) throws -> (Int, [UInt8]) {
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw HumeError(.system, "The gateway closed the connection.") }
            sent += n
        }
        let crlf2: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while true {
            if headerEnd == nil, let e = find(crlf2) { headerEnd = e }
            if let e = headerEnd {
                let head = String(decoding: buffer[..<e], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if buffer.count >= e + 4 + length {
                    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
                    let body = Array(buffer[(e + 4)..<(e + 4 + length)])
                    buffer.removeFirst(e + 4 + length)
                    return (status, body)
                }
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = read(fd, &chunk, chunk.count)
            guard n > 0 else { throw HumeError(.system, "The gateway closed the connection.") }
            buffer += chunk[..<n]
        }
    }

    func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        for i in 0...(buffer.count - needle.count) where buffer[i] == needle[0] && buffer[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }
}
