import CZeroMQ
import Testing

@Suite("CZeroMQ bridge")
struct ZeroMQBridgeTests {
    @Test("libzmq reports a 4.x version")
    func version() {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        #expect(major == 4)
        #expect(minor >= 3)
    }

    @Test("a REQ/REP pair round-trips a request and a reply over inproc://")
    func requestReplyRoundTrip() throws {
        let context = try #require(zmq_ctx_new())
        defer { zmq_ctx_term(context) }
        let reply = try #require(zmq_socket(context, ZMQ_REP))
        defer { zmq_close(reply) }
        let request = try #require(zmq_socket(context, ZMQ_REQ))
        defer { zmq_close(request) }
        for socket in [reply, request] {
            #expect(hume_zmq_setsockopt_int(socket, ZMQ_LINGER, 0) == 0)
            #expect(hume_zmq_setsockopt_int(socket, ZMQ_RCVTIMEO, 5_000) == 0)
        }
        var linger: Int32 = -1
        #expect(hume_zmq_getsockopt_int(request, ZMQ_LINGER, &linger) == 0)
        #expect(linger == 0)

        let endpoint = "inproc://hume-bridge-req-rep"
        #expect(zmq_bind(reply, endpoint) == 0, "bind failed: errno \(hume_zmq_errno())")
        #expect(zmq_connect(request, endpoint) == 0, "connect failed: errno \(hume_zmq_errno())")

        #expect(Self.send(request, "ping 42") == 7)
        #expect(Self.receive(reply) == "ping 42")
        #expect(Self.send(reply, "pong 42") == 7)
        #expect(Self.receive(request) == "pong 42")

        // REQ enforces strict alternation: a second receive without a send is refused.
        var byte: UInt8 = 0
        #expect(zmq_recv(request, &byte, 1, ZMQ_DONTWAIT) == -1)
        #expect(hume_zmq_errno() == EFSM)
    }

    private static func send(_ socket: UnsafeMutableRawPointer, _ text: String) -> Int32 {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, 0) }
    }

    private static func receive(_ socket: UnsafeMutableRawPointer) -> String? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { zmq_recv(socket, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { return nil }
        return String(decoding: buffer.prefix(Int(count)), as: UTF8.self)
    }
}
