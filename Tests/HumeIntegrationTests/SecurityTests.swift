import Foundation
import HumeClient
import HumeCore
import HumeTransport
import HumeFleet
import Testing

/// A TCP relay on 127.0.0.1 that forwards every connection to `target` and records every byte it carries, both
/// ways: a capture of the traffic on the port, without needing tcpdump.
final class RecordingRelay: @unchecked Sendable {  // `captured` is guarded by `lock`; `listener` is set once.
    let port: Int
    let listener: Int32
    let lock = NSLock()
    var captured: [UInt8] = []

    init(targetPort: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard let bound = Loopback.bind(fd), listen(fd, 8) == 0 else { throw HumeError(.system, "relay: cannot listen") }
        listener = fd
        port = bound
        let t = Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                if !Loopback.connect(upstream, port: targetPort) { close(client); close(upstream); continue }
                self.pump(from: client, to: upstream)
                self.pump(from: upstream, to: client)
            }
        }
        t.start()
    }

    func pump(from: Int32, to: Int32) {
        Thread { [self] in
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(from, &buf, buf.count)
                if n <= 0 { break }
                lock.lock(); captured += buf[0..<n]; lock.unlock()
                var off = 0
                while off < n {
                    let w = buf[off..<n].withUnsafeBytes { write(to, $0.baseAddress, $0.count) }
                    if w <= 0 { break }
                    off += w
                }
            }
            shutdown(to, Int32(SHUT_WR))
        }.start()
    }

    var bytes: [UInt8] { lock.lock(); defer { lock.unlock() }; return captured }

    func stop() { shutdown(listener, Int32(SHUT_RDWR)); Glibc.close(listener) }
}

extension Array where Element == UInt8 {
    func contains(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, count >= needle.count else { return false }
        return (0...(count - needle.count)).contains { i in self[i..<(i + needle.count)].elementsEqual(needle) }
    }
}

/// Keys for a broker, a worker, a client and a stranger, and an allow list holding the worker and the client.
struct TestKeys {
    let dir: String
    let broker: CurveKeyPair, worker: CurveKeyPair, client: CurveKeyPair, stranger: CurveKeyPair
    var allowed: String { dir + "/allowed" }

    init(_ dir: String) throws {
        self.dir = dir
        (broker, worker, client, stranger) = (try .generate(), try .generate(), try .generate(), try .generate())
        for (name, k) in [("broker", broker), ("worker", worker), ("client", client), ("stranger", stranger)] {
            _ = try k.write(directory: dir, name: name)
        }
        try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: true)
        for n in ["worker", "client"] { try FileManager.default.copyItem(atPath: "\(dir)/\(n).pub", toPath: "\(allowed)/\(n).pub") }
    }

    func clientConfig(_ k: CurveKeyPair) -> CurveClientConfig { CurveClientConfig(keys: k, serverKey: broker.publicKey) }
    var brokerArguments: [String] { ["--curve-key", dir + "/broker.key", "--allow-keys", allowed] }
    var workerEnvironment: [String: String] {
        ["OPENBLAS_NUM_THREADS": "1", "HUME_CURVE_KEY": dir + "/worker.key", "HUME_SERVER_KEY": dir + "/broker.pub"]
    }
}

@Suite("Security: CURVE on the broker's endpoints", .serialized)
struct SecurityTests {
    @Test("listed keys get work done; an unlisted key and a plaintext peer get nothing, and the broker says why",
          .timeLimit(.minutes(2)))
    func onlyListedKeys() throws {
        let dir = tempDir("curve")
        let keys = try TestKeys(dir + "/keys")
        let fleet = try LocalFleet(directory: dir, brokerArguments: keys.brokerArguments, environment: keys.workerEnvironment,
                                   curve: keys.clientConfig(keys.client))
        defer { fleet.stop() }
        try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)

        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients, curve: keys.clientConfig(keys.client))
        let sub = BatchSubmitter(connection: conn, batch: "sec", route: ["noop"], jobs: specs(20, prefix: "sec"))
        #expect(try sub.run(timeoutMs: 20_000))
        #expect(sub.results.allSatisfy { $0?.status == .done })

        // A stranger's key and a plaintext client: no reply at all, on the client and the control endpoints.
        for ep in [fleet.endpoints.clients, fleet.endpoints.control] {
            let stranger = try BrokerConnection(endpoint: ep, curve: keys.clientConfig(keys.stranger))
            #expect(throws: HumeError.self) { try stranger.request(.status, timeoutMs: 1500) }
            let plain = try BrokerConnection(endpoint: ep, curve: nil)
            #expect(throws: HumeError.self) { try plain.request(.status, timeoutMs: 1500) }
        }
        // A worker with an unlisted key never joins.
        var env = keys.workerEnvironment
        env["HUME_CURVE_KEY"] = keys.dir + "/stranger.key"
        let outsider = Process()
        outsider.executableURL = URL(fileURLWithPath: humeExecutable())
        outsider.arguments = ["worker", "noop", "--broker", fleet.endpoints.workers, "--name", "outsider"]
        outsider.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        outsider.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try outsider.run()
        defer { kill(outsider.processIdentifier, SIGKILL); outsider.waitUntilExit() }
        usleep(1_500_000)
        let names = try fleet.status()["workers"]?.array?.compactMap { $0["name"]?.string } ?? []
        #expect(names == ["noop-1"], "\(names)")
        let log = (try? String(contentsOfFile: dir + "/broker.log", encoding: .utf8)) ?? ""
        #expect(log.contains("refused a CURVE handshake") && log.contains(keys.stranger.publicKey), "the broker log should name the refused key")
    }

    @Test("a capture of the client port shows the prompt in plaintext mode and never under CURVE", .timeLimit(.minutes(2)))
    func captureShowsNoPrompt() throws {
        let secret = "a secret purple giraffe reading poetry"
        for useCurve in [false, true] {
            let dir = tempDir("capture-\(useCurve)")
            let keys = try TestKeys(dir + "/keys")
            let fleet = try LocalFleet(directory: dir, brokerArguments: useCurve ? keys.brokerArguments : [],
                                       environment: useCurve ? keys.workerEnvironment : ["OPENBLAS_NUM_THREADS": "1"],
                                       curve: useCurve ? keys.clientConfig(keys.client) : nil)
            defer { fleet.stop() }
            try fleet.startWorker("noop")
            try fleet.waitForWorkers(1)
            let port = Int(fleet.endpoints.clients.split(separator: ":").last!)!
            let relay = try RecordingRelay(targetPort: port)
            defer { relay.stop() }
            let conn = try BrokerConnection(endpoint: "tcp://127.0.0.1:\(relay.port)", curve: useCurve ? keys.clientConfig(keys.client) : nil)
            let sub = BatchSubmitter(connection: conn, batch: "cap", route: ["noop"],
                                     jobs: [JobSpec(key: "cap-1", params: JSON.object(["prompt": .string(secret)]).bytes, data: Array(secret.utf8))])
            #expect(try sub.run(timeoutMs: 20_000))
            #expect(sub.results.first??.body == Array(secret.utf8), "the job ran and echoed the prompt")
            let captured = relay.bytes
            #expect(captured.count > 100, "the relay carried the traffic")
            #expect(captured.contains(Array(secret.utf8)) == !useCurve,
                    useCurve ? "the prompt must not appear in CURVE traffic" : "plaintext traffic should show the prompt (the capture works)")
        }
    }

    @Test("the broker refuses to start open: a public bind without keys, a key without a list, an empty list")
    func failsClosed() throws {
        let dir = tempDir("closed")
        let keys = try TestKeys(dir + "/keys")
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        let journal = ["--journal", dir + "/j.sqlite", "--bind-clients", "tcp://127.0.0.1:*", "--bind-control", "tcp://127.0.0.1:*"]
        let cases: [([String], String)] = [
            (["--bind-workers", "tcp://0.0.0.0:*"], "reachable from other machines"),
            (["--bind-workers", "tcp://127.0.0.1:*", "--curve-key", keys.dir + "/broker.key"], "needs --allow-keys"),
            (["--bind-workers", "tcp://127.0.0.1:*", "--allow-keys", keys.allowed], "needs --curve-key"),
            (["--bind-workers", "tcp://127.0.0.1:*", "--curve-key", keys.dir + "/broker.key", "--allow-keys", dir + "/empty"], "holds no public keys"),
            (["--bind-workers", "tcp://127.0.0.1:*", "--curve-key", keys.dir + "/broker.pub", "--allow-keys", keys.allowed], "no CURVE secret key"),
        ]
        for (args, needle) in cases {
            let (rc, _, err) = try hume(["broker"] + journal + args, timeout: 20)
            #expect(rc != 0 && err.contains(needle), "\(args): \(err)")
            #expect(err.split(separator: "\n").count == 1, "one sentence: \(err)")
        }
    }
}
