import Foundation
import HumeClient
import HumeCore
import HumeFleet
import Testing

/// Runs a command, returning its exit status (output discarded unless it fails).
@discardableResult
private func run(_ args: [String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: args[0])
    p.arguments = Array(args.dropFirst())
    p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

/// Three network namespaces joined by veth pairs, like three hosts on two links, plus a link from this (root)
/// namespace to the broker's for the test's client:
///
///     root 10.N.0.1 ── 10.N.0.2 broker 10.N.1.1 ── 10.N.1.2 host1
///                                       10.N.2.1 ── 10.N.2.2 host2
final class NetnsLab {
    let tag: String
    let net: Int
    var namespaces: [String] { ["hb\(tag)", "h1\(tag)", "h2\(tag)"] }
    var broker: String { namespaces[0] }

    init() throws {
        tag = String(getpid() % 100_000)
        net = 100 + Int(getpid() % 100)
        let ip = "/usr/sbin/ip"
        for ns in namespaces {
            _ = try? run([ip, "netns", "del", ns])
            guard try run([ip, "netns", "add", ns]) == 0 else {
                throw HumeError(.system, "Cannot create network namespace \(ns): this test needs root and iproute2 (`ip netns`).")
            }
            try run([ip, "-n", ns, "link", "set", "lo", "up"])
        }
        // root <-> broker
        try link(a: nil, aName: "vr\(tag)", aAddr: "10.\(net).0.1", b: broker, bName: "vb0\(tag)", bAddr: "10.\(net).0.2")
        try link(a: broker, aName: "vb1\(tag)", aAddr: "10.\(net).1.1", b: namespaces[1], bName: "v1\(tag)", bAddr: "10.\(net).1.2")
        try link(a: broker, aName: "vb2\(tag)", aAddr: "10.\(net).2.1", b: namespaces[2], bName: "v2\(tag)", bAddr: "10.\(net).2.2")
    }

    func link(a: String?, aName: String, aAddr: String, b: String, bName: String, bAddr: String) throws {
        let ip = "/usr/sbin/ip"
        func inA(_ args: [String]) -> [String] { a.map { [ip, "-n", $0] + args } ?? [ip] + args }
        guard try run(inA(["link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b])) == 0 else {
            throw HumeError(.system, "Cannot create veth pair \(aName)/\(bName).")
        }
        try run(inA(["addr", "add", aAddr + "/24", "dev", aName]))
        try run(inA(["link", "set", aName, "up"]))
        try run([ip, "-n", b, "addr", "add", bAddr + "/24", "dev", bName])
        try run([ip, "-n", b, "link", "set", bName, "up"])
    }

    /// Takes host1's link down (as if its cable were pulled) or back up.
    func setHost1Link(up: Bool) throws {
        try run(["/usr/sbin/ip", "-n", namespaces[1], "link", "set", "v1\(tag)", up ? "up" : "down"])
        try run(["/usr/sbin/ip", "-n", broker, "link", "set", "vb1\(tag)", up ? "up" : "down"])
    }

    /// Starts `hume ARGS` inside a namespace.
    func start(_ ns: String, _ args: [String], log: String, environment: [String: String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", ns, humeExecutable()] + args  // ip execs the command: p's pid is hume's
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        p.standardError = FileHandle(forWritingAtPath: log)
        try p.run()
        return p
    }

    func tearDown() {
        for ns in namespaces { _ = try? run(["/usr/sbin/ip", "netns", "del", ns]) }
        _ = try? run(["/usr/sbin/ip", "link", "del", "vr\(tag)"])
    }
}

@Suite("Many machines: broker and workers in separate network namespaces", .serialized)
struct MultiHostTests {
    @Test("a worker host's link is cut mid-batch: its leases expire and its tasks finish on the other host, each once; restored, it rejoins and takes work",
          .timeLimit(.minutes(3)))
    func cutAndRestoreLink() throws {
        let lab: NetnsLab
        do { lab = try NetnsLab() } catch let e as HumeError {
            Issue.record("\(e.message)")
            return
        }
        defer { lab.tearDown() }
        let dir = tempDir("netns")
        let keys = try TestKeys(dir + "/keys")
        let port = 7000 + Int(getpid() % 1000)
        let brokerAddr = "10.\(lab.net).0.2"
        let broker = try lab.start(lab.broker, ["broker", "--journal", dir + "/journal.sqlite",
                                                "--bind-workers", "tcp://0.0.0.0:\(port)", "--bind-clients", "tcp://0.0.0.0:\(port + 1)",
                                                "--bind-control", "tcp://0.0.0.0:\(port + 2)", "--heartbeat-ms", "200",
                                                "--worker-timeout-ms", "1500"] + keys.brokerArguments,
                                   log: dir + "/broker.log", environment: [:])
        var workers: [Process] = []
        defer {
            for w in workers { kill(w.processIdentifier, SIGKILL); w.waitUntilExit() }
            kill(broker.processIdentifier, SIGKILL)
            broker.waitUntilExit()
        }
        for (i, ns) in lab.namespaces.dropFirst().enumerated() {
            workers.append(try lab.start(ns, ["worker", "noop", "--broker", "tcp://10.\(lab.net).\(i + 1).1:\(port)", "--name", "host\(i + 1)",
                                              "--work-ms", "40", "--concurrency", "2"],
                                         log: dir + "/host\(i + 1).log", environment: keys.workerEnvironment))
        }
        let control = try BrokerConnection(endpoint: "tcp://\(brokerAddr):\(port + 2)", curve: keys.clientConfig(keys.client))
        func workerStats() -> [String: Int] {
            let ws = (try? control.request(.status, timeoutMs: 2000).header["workers"]?.array) ?? nil ?? []
            return Dictionary(ws.compactMap { w in w["name"]?.string.map { ($0, w["done"]?.int ?? 0) } }, uniquingKeysWith: max)
        }
        func waitFor(_ what: String, seconds: Double = 30, _ cond: () -> Bool) {
            let deadline = Date().addingTimeInterval(seconds)
            var ok = cond()  // judged on the last observation, not on a second look
            while !ok && Date() < deadline {
                usleep(100_000)
                ok = cond()
            }
            #expect(ok, "timed out waiting for \(what)")
        }
        waitFor("both hosts to join") { Set(workerStats().keys) == ["host1", "host2"] }

        let conn = try BrokerConnection(endpoint: "tcp://\(brokerAddr):\(port + 1)", curve: keys.clientConfig(keys.client))
        let sub = BatchSubmitter(connection: conn, batch: "net", route: ["noop"], jobs: specs(150, prefix: "net"))
        _ = try sub.run(timeoutMs: 800)
        #expect((workerStats()["host1"] ?? 0) > 0, "host1 should have been taking work before the cut")
        try lab.setHost1Link(up: false)
        waitFor("host1's leases to expire (it leaves the worker list)") { workerStats()["host1"] == nil }
        #expect(try sub.run(timeoutMs: 60_000), "every job should finish on host2")
        #expect(sub.results.allSatisfy { $0?.status == .done })
        #expect(sub.duplicateResults == 0)
        let j = try journalCounts(dir, batch: "net")
        #expect(j.rows == 150 && j.done == 150, "\(j)")

        try lab.setHost1Link(up: true)
        waitFor("host1 to rejoin") { workerStats()["host1"] != nil }
        let before = workerStats()["host1"] ?? 0
        let sub2 = BatchSubmitter(connection: conn, batch: "net2", route: ["noop"], jobs: specs(60, prefix: "net2"))
        #expect(try sub2.run(timeoutMs: 60_000))
        #expect(sub2.results.allSatisfy { $0?.status == .done } && sub2.duplicateResults == 0)
        #expect((workerStats()["host1"] ?? 0) > before, "host1 should take work again after rejoining")
    }
}
