import Foundation
import HumeCore
import HumeTransport
import HumeFleet
import Testing

/// The repository root, found from this file's path (Tests/HumeIntegrationTests/PythonClientTests.swift).
private func repoRoot(_ file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}

/// Runs `python3` with arguments (and optional stdin); returns exit status, stdout and stderr.
private func python(_ args: [String], stdin: String? = nil, timeout: TimeInterval = 90,
                    environment: [String: String] = [:]) throws -> (Int32, String, String) {
    try runProcess("/usr/bin/env", ["python3"] + args, stdin: stdin, cwd: repoRoot(), environment: environment, timeout: timeout)
}

/// Fails the test (never skips) when the python3 on PATH cannot import zmq.
private func requirePyZMQ() throws {
    let (rc, _, err) = try python(["-c", "import zmq"], timeout: 30)
    if rc != 0 {
        Issue.record("python3 cannot import zmq (pyzmq): run Ops/setup.sh to install it. \(err)")
        throw HumeError(.system, "pyzmq missing; run Ops/setup.sh")
    }
}

private func jsonLines(_ s: String) -> [[String: Any]] {
    s.split(separator: "\n").compactMap { line in
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}

private func freshDir(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "hume-pytest-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

@Suite("Python client (Ops/examples/hume_client.py) against a live broker", .serialized)
struct PythonClientTests {
    @Test("50 jobs through noop: 49 echo their input, #invalid fails permanently, a re-run gets the same job ids",
          .timeLimit(.minutes(2)))
    func submitAndResume() throws {
        try requirePyZMQ()
        let dir = freshDir("submit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--stages", "noop"])
        defer { fleet.stop() }
        _ = try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)
        let clients = fleet.endpoints.clients

        var lines = (0..<50).map { "line \($0) payload" }
        lines[17] = "line 17 #invalid please refuse"
        let input = lines.joined(separator: "\n") + "\n"
        let script = "Ops/examples/hume_client.py"
        let args = [script, "--broker", clients, "--route", "noop", "--batch", "pybatch", "--timeout", "60"]

        let (rc, out, err) = try python(args, stdin: input)
        #expect(rc == 0, "exit \(rc); stderr: \(err)")
        let results = jsonLines(out)
        #expect(results.count == 50, "stdout: \(out)")
        var ids: [String: Int] = [:]
        var done = 0, failed = 0
        for r in results {
            let key = r["key"] as? String ?? ""
            let line = r["line"] as? Int ?? -1
            ids[key] = r["job"] as? Int
            #expect(key == "pybatch-\(line)")
            switch r["status"] as? String {
            case "done":
                done += 1
                #expect(line >= 0 && line < 50 && r["output"] as? String == lines[line])
            case "failed":
                failed += 1
                #expect(line == 17)
                #expect(r["error"] as? String == "Stage noop refused the job: The input asks to be refused (#invalid).")
            default:
                Issue.record("unexpected result \(r)")
            }
        }
        #expect(done == 49)
        #expect(failed == 1)
        #expect(Set(ids.values).count == 50)

        // The same batch again: every key is a duplicate, answered at once from the journal with the same ids.
        let (rc2, out2, err2) = try python(args, stdin: input)
        #expect(rc2 == 0, "exit \(rc2); stderr: \(err2)")
        let again = jsonLines(out2)
        #expect(again.count == 50)
        for r in again {
            let key = r["key"] as? String ?? ""
            #expect(r["job"] as? Int == ids[key], "\(key) changed id")
            #expect(r["duplicate"] as? Bool == true)
        }
        #expect(again.filter { $0["status"] as? String == "done" }.count == 49)

        // STATUS through the CLI: the batch counts match.
        let control = fleet.endpoints.control
        let (rc3, out3, err3) = try python([script, "--control", control, "--status"])
        #expect(rc3 == 0, "stderr: \(err3)")
        let status = jsonLines(out3).first ?? [:]
        let batch = (status["batches"] as? [[String: Any]] ?? []).first { $0["batch"] as? String == "pybatch" }
        #expect(batch?["total"] as? Int == 50)
        #expect(batch?["done"] as? Int == 49)
        #expect(batch?["failed"] as? Int == 1)
    }

    @Test("A SUBMIT the broker took and died with is sent again: the Python client finishes after the restart instead of hanging",
          .timeLimit(.minutes(3)))
    func lostSubmitIsResent() throws {
        try requirePyZMQ()
        let dir = freshDir("lostsubmit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--stages", "noop"])
        defer { fleet.stop() }
        _ = try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)
        let clients = fleet.endpoints.clients
        // Stand-in for a broker that reads a SUBMIT and dies before acknowledging it: a ROUTER on the broker's port
        // that takes the message and goes away.
        fleet.killBroker()
        let input = (0..<20).map { "lost \($0)" }.joined(separator: "\n") + "\n"
        let args = ["Ops/examples/hume_client.py", "--broker", clients, "--route", "noop", "--batch", "lost", "--timeout", "120"]
        // The client and the stand-in run on threads of their own, started here: a task on the cooperative pool
        // (2 threads, shared with every other test) may not start for tens of seconds when the suite is busy, or
        // slowed by a sanitizer, and the stand-in would give up before the client sent anything.
        let client = StartedThread { try python(args, stdin: input, timeout: 150) }
        let context = ZMQContext()
        var sink: ZMQSocket? = try ZMQSocket(context, .router)
        try sink!.bind(clients)
        var swallowed = false
        let deadline = Date().addingTimeInterval(60)
        while !swallowed && Date() < deadline {
            if let frames = try sink!.receive(dontWait: true),
               frames.contains(where: { String(decoding: $0, as: UTF8.self) == "SUBMIT" }) {
                swallowed = true
            } else { usleep(20_000) }
        }
        sink = nil
        #expect(swallowed, "the client's SUBMIT should reach the stand-in")
        try fleet.startBroker()
        let (rc, out, err) = try client.wait()
        #expect(rc == 0, "exit \(rc); stderr: \(err)")
        let results = jsonLines(out)
        #expect(results.count == 20 && results.allSatisfy { $0["status"] as? String == "done" }, "stdout: \(out)")
    }

    @Test("The Python client speaks CURVE from HUME_CURVE_KEY/HUME_SERVER_KEY; without them it gets no answer",
          .timeLimit(.minutes(2)))
    func curve() throws {
        try requirePyZMQ()
        let dir = freshDir("curve")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = try TestKeys(dir + "/keys")
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--stages", "noop"] + keys.brokerArguments,
                                   environment: keys.workerEnvironment, curve: keys.clientConfig(keys.client))
        defer { fleet.stop() }
        _ = try fleet.startWorker("noop")
        try fleet.waitForWorkers(1)
        let args = ["Ops/examples/hume_client.py", "--broker", fleet.endpoints.clients, "--route", "noop", "--batch", "pycurve",
                    "--timeout", "20"]
        let env = ["HUME_CURVE_KEY": keys.dir + "/client.key", "HUME_SERVER_KEY": keys.dir + "/broker.pub"]
        let (rc, out, err) = try python(args, stdin: "one\ntwo\n", environment: env)
        #expect(rc == 0, "stderr: \(err)")
        #expect(Set(jsonLines(out).compactMap { $0["output"] as? String }) == ["one", "two"])
        let (rc2, out2, _) = try python(args + ["--timeout", "3"], stdin: "three\n")
        #expect(rc2 != 0 && jsonLines(out2).allSatisfy { $0["status"] as? String != "done" }, "plaintext must get nothing done")
    }

    @Test("Malformed messages from Python get ERROR replies with the right codes; the broker still answers STATUS",
          .timeLimit(.minutes(2)))
    func malformedMessages() throws {
        try requirePyZMQ()
        let dir = freshDir("malformed")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--stages", "noop"])
        defer { fleet.stop() }
        let clients = fleet.endpoints.clients
        let control = fleet.endpoints.control
        let code = """
        import json, sys, zmq
        sys.path.insert(0, "Ops/examples")
        import hume_client as hc
        ctx = zmq.Context.instance()
        def ask(endpoint, frames):
            s = ctx.socket(zmq.DEALER); s.setsockopt(zmq.LINGER, 0); s.connect(endpoint)
            s.send_multipart(frames)
            if not s.poll(10000): raise SystemExit("no reply")
            f = s.recv_multipart(); s.close(0)
            return hc.decode_message(f)
        out = []
        out.append(ask(sys.argv[1], [b"HUMX\\x01", b"SUBMIT", b"{}"]))
        out.append(ask(sys.argv[1], [b"HUME\\x02", b"STATUS", b"{}"]))
        out.append(ask(sys.argv[1], [hc.SIGNATURE, b"FROBNICATE", b'{"req":7}']))
        out.append(ask(sys.argv[1], [hc.SIGNATURE, b"READY", b'{"req":8}']))
        out.append(ask(sys.argv[1], [hc.SIGNATURE, b"SUBMIT", b'{"req":9,"batch":"b","route":["noop"]}', b"\\x00\\x01"]))
        out.append(hc.request(sys.argv[2], "STATUS", {"req": 10}))
        for cmd, h, recs in out:
            print(json.dumps({"cmd": cmd, "header": h, "records": len(recs)}))
        """
        let (rc, out, err) = try python(["-c", code, clients, control])
        #expect(rc == 0, "stderr: \(err)")
        let replies = jsonLines(out)
        try #require(replies.count == 6, "stdout: \(out) stderr: \(err)")
        func header(_ i: Int) -> [String: Any] { replies[i]["header"] as? [String: Any] ?? [:] }
        // Wrong signature.
        #expect(replies[0]["cmd"] as? String == "ERROR")
        #expect(header(0)["code"] as? String == "bad_request")
        // Wrong version byte.
        #expect(replies[1]["cmd"] as? String == "ERROR")
        #expect(header(1)["code"] as? String == "bad_version")
        // Unknown command: no req echoed (the header is not read).
        #expect(replies[2]["cmd"] as? String == "ERROR")
        #expect(header(2)["code"] as? String == "unknown")
        #expect((header(2)["message"] as? String ?? "").contains("FROBNICATE"))
        // A known command on the wrong endpoint: refused, req echoed.
        #expect(replies[3]["cmd"] as? String == "ERROR")
        #expect(header(3)["code"] as? String == "unknown")
        #expect(header(3)["req"] as? Int == 8)
        // A truncated SUBMIT record: bad_request, req echoed, nothing accepted.
        #expect(replies[4]["cmd"] as? String == "ERROR")
        #expect(header(4)["code"] as? String == "bad_request")
        #expect(header(4)["req"] as? Int == 9)
        // The broker is still alive and counts the bad messages.
        #expect(replies[5]["cmd"] as? String == "STATUS")
        #expect(header(5)["req"] as? Int == 10)
        #expect((header(5)["bad_messages"] as? Int ?? 0) >= 5)
        #expect((header(5)["submitted"] as? Int) == 0)
    }
}

/// A body run on a thread started at once (not a task waiting for the cooperative pool); `wait` blocks for its result.
final class StartedThread<T: Sendable>: @unchecked Sendable {  // `result` is written once, before `done` is signalled.
    private var result: Result<T, Error>?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            result = Result { try body() }
            done.signal()
        }
        thread.name = "hume-test-started"
        thread.start()
    }

    func wait() throws -> T {
        done.wait()
        return try result!.get()
    }
}
