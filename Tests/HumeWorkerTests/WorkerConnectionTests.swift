import HumeCore
import HumeStages
import HumeWorker
import Testing

// The worker's connection rules, driven with a hand-moved clock and no sockets.

typealias Action = WorkerConnection.Action

func sent(_ actions: [Action]) -> [Message] {
    actions.compactMap { if case .send(let m) = $0 { return m } else { return nil } }
}

func commands(_ actions: [Action]) -> [Command] { sent(actions).map(\.command) }

func reconnectWait(_ actions: [Action]) -> UInt64? {
    for a in actions { if case .reconnect(let w) = a { return w } }
    return nil
}

func left(_ actions: [Action]) -> Bool? {
    for a in actions { if case .leave(let drained) = a { return drained } }
    return nil
}

func machine() -> WorkerConnection {
    WorkerConnection(stage: "denoise", workerName: "denoise@test:1", capacity: 4, batch: 1)
}

func noHeader() -> JSON { .object([:]) }

@Suite("worker connection state machine")
struct WorkerConnectionTests {
    @Test("a connection announces the stage with its credit: the room left, none while draining (and says drain again)")
    func announce() throws {
        var w = machine()
        let ready = sent(w.connected(now: 0, held: 1))
        #expect(ready.map(\.command) == [.ready])
        #expect(ready[0].header["stage"]?.string == "denoise" && ready[0].header["credit"]?.int == 3)
        #expect(ready[0].header["capacity"]?.int == 4 && ready[0].header["name"]?.string == "denoise@test:1")
        _ = w.stop(now: 10)
        let again = sent(w.connected(now: 20, held: 2))
        #expect(again.map(\.command) == [.ready, .drain])
        #expect(again[0].header["credit"]?.int == 0)
    }

    @Test("WELCOME sets the heartbeat interval; beats go out on time whether busy or not, with the runtime's figures")
    func heartbeats() {
        var w = machine()
        _ = w.connected(now: 0, held: 0)
        _ = w.received(Message(.welcome, header: .object(["heartbeat_ms": JSON(250)])), now: 5, held: 0)
        #expect(w.welcomed && w.heartbeatMs == 250)
        #expect(w.pollTimeoutMs(now: 100) == 150)
        #expect(commands(w.tick(now: 200, held: 4, heartbeat: noHeader)).isEmpty)
        var asked = 0
        let beat = sent(w.tick(now: 250, held: 4) { asked += 1; return .object(["busy": JSON(4)]) })
        #expect(beat.map(\.command) == [.heartbeat] && beat[0].header["busy"]?.int == 4 && asked == 1)
        #expect(commands(w.tick(now: 260, held: 4, heartbeat: noHeader)).isEmpty)
        #expect(w.pollTimeoutMs(now: 260) == 240)
    }

    @Test("TASK records become tasks for the executors; unreadable records are skipped")
    func tasks() {
        var w = machine()
        _ = w.connected(now: 0, held: 0)
        let r = TaskRecord(lease: 7, jobID: 3, attempt: 2, key: "k", params: Array("{}".utf8), input: [1, 2]).encode()
        let actions = w.received(Message(.task, records: [r, [0xff]]), now: 1, held: 0)
        guard case .run(let t) = actions.first else { Issue.record("no run action: \(actions)"); return }
        #expect(t.count == 1 && t[0].lease == 7 && t[0].jobID == 3 && t[0].attempt == 2 && t[0].key == "k" && t[0].input == [1, 2])
        #expect(w.received(Message(.task, records: [[0xff]]), now: 2, held: 0).isEmpty)
    }

    @Test("a broker that forgot the worker (restart) is answered with READY, at most once a second until welcomed")
    func reannounce() {
        var w = machine()
        _ = w.connected(now: 0, held: 0)
        let unknown = Message(.error, header: .object(["code": .string(HumeError.Code.unknownWorker.rawValue), "message": .string("who?")]))
        #expect(commands(w.received(unknown, now: 500, held: 0)).isEmpty, "within a second of the first READY")
        #expect(commands(w.received(unknown, now: 1500, held: 1)) == [.ready])
        _ = w.received(Message(.welcome), now: 1600, held: 1)
        #expect(commands(w.received(unknown, now: 1700, held: 1)) == [.ready], "a welcomed worker re-announces at once")
        let other = w.received(Message(.error, header: .object(["code": .string("bad_request"), "message": .string("no")])), now: 1800, held: 0)
        guard case .refused(let why) = other.first else { Issue.record("\(other)"); return }
        #expect(why == "no")
    }

    @Test("a silent broker: reconnect after three beats and a second, backing off 100 ms doubling to 5 s, reset by any message")
    func backoff() {
        var w = machine()
        _ = w.connected(now: 0, held: 0)
        #expect(reconnectWait(w.tick(now: 4000, held: 0, heartbeat: noHeader)) == nil)
        var waits: [UInt64] = []
        var t: UInt64 = 0
        for _ in 0..<8 {
            _ = w.connected(now: t, held: 0)
            t += 4001
            if let wait = reconnectWait(w.tick(now: t, held: 0, heartbeat: noHeader)) { waits.append(wait) }
        }
        #expect(waits == [100, 200, 400, 800, 1600, 3200, 5000, 5000])
        w.heard(now: t)
        #expect(w.backoffMs == 100)
    }

    @Test("drain: no credit, leave once nothing is held and the broker has answered DRAIN (or after 5 s without it)")
    func drain() {
        var w = machine()
        _ = w.connected(now: 0, held: 2)
        #expect(commands(w.stop(now: 100)) == [.drain])
        #expect(w.stop(now: 150).isEmpty, "a second stop changes nothing")
        #expect(left(w.tick(now: 200, held: 2, heartbeat: noHeader)) == nil, "tasks still held")
        #expect(left(w.tick(now: 300, held: 0, heartbeat: noHeader)) == nil, "the broker may still owe a task")
        _ = w.received(Message(.drain), now: 400, held: 0)
        let bye = w.tick(now: 410, held: 0, heartbeat: noHeader)
        #expect(commands(bye) == [.disconnect] && left(bye) == true)

        var old = machine()
        _ = old.connected(now: 0, held: 0)
        _ = old.stop(now: 0)
        for t in stride(from: UInt64(500), through: 4500, by: 1000) { _ = old.received(Message(.welcome), now: t, held: 0) }
        #expect(left(old.tick(now: 4900, held: 0, heartbeat: noHeader)) == nil)
        #expect(left(old.tick(now: 5001, held: 0, heartbeat: noHeader)) == true, "no DRAIN reply from an old broker")
    }

    @Test("a drain that runs past its timeout leaves with tasks unfinished")
    func drainTimeout() {
        var w = machine()
        w.drainTimeoutMs = 2000
        _ = w.connected(now: 0, held: 3)
        _ = w.stop(now: 0)
        _ = w.received(Message(.drain), now: 10, held: 3)
        _ = w.received(Message(.welcome), now: 1500, held: 3)
        #expect(left(w.tick(now: 1900, held: 3, heartbeat: noHeader)) == nil)
        #expect(left(w.tick(now: 2001, held: 3, heartbeat: noHeader)) == false)
    }
}
