import CZeroMQ
import HumeCore
#if canImport(Glibc)
import Glibc
#endif

/// A ZeroMQ context. libzmq contexts are thread-safe, so sharing one between threads is sound.
public final class ZMQContext: @unchecked Sendable {  // zmq_ctx_* calls are documented thread-safe.
    let handle: UnsafeMutableRawPointer

    public init(ioThreads: Int32 = 1) {
        handle = zmq_ctx_new()!
        _ = zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads)
        _ = zmq_ctx_set(handle, ZMQ_BLOCKY, 0)
    }

    deinit { _ = zmq_ctx_term(handle) }

    /// The libzmq version as "major.minor.patch".
    public static var version: String {
        var a: Int32 = 0, b: Int32 = 0, c: Int32 = 0
        zmq_version(&a, &b, &c)
        return "\(a).\(b).\(c)"
    }

    /// Whether libzmq was built with CURVE security.
    public static var hasCurve: Bool { zmq_has("curve") != 0 }
}

/// The kinds of ZeroMQ sockets Hume uses.
public enum ZMQSocketType: Sendable {
    case router, dealer, pair, pub, sub, req, rep

    var raw: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pair: ZMQ_PAIR
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        }
    }
}

@inline(__always) func zmqFailure(_ function: String) -> SystemCallError {
    let e = zmq_errno()
    return SystemCallError(function, errno: e, detail: String(cString: zmq_strerror(e)))
}

/// One ZeroMQ socket. Sockets are not thread-safe: this type is non-copyable and not `Sendable`, so it stays on the
/// thread that made it. Linger is bounded so closing never hangs.
public struct ZMQSocket: ~Copyable {
    public let handle: UnsafeMutableRawPointer
    /// Keeps the context alive until this socket is closed: zmq_ctx_term blocks while any socket is open.
    let context: ZMQContext

    public init(_ context: ZMQContext, _ type: ZMQSocketType) throws {
        guard let h = zmq_socket(context.handle, type.raw) else { throw zmqFailure("zmq_socket") }
        handle = h
        self.context = context
        _ = hume_zmq_setsockopt_int(h, ZMQ_LINGER, 200)
    }

    deinit { _ = zmq_close(handle) }

    public func setOption(_ option: Int32, _ value: Int32) throws {
        if hume_zmq_setsockopt_int(handle, option, value) != 0 { throw zmqFailure("zmq_setsockopt(\(option))") }
    }

    public func setOption(_ option: Int32, bytes: [UInt8]) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        if rc != 0 { throw zmqFailure("zmq_setsockopt(\(option))") }
    }

    public func getOption(_ option: Int32) throws -> Int32 {
        var v: Int32 = 0
        if hume_zmq_getsockopt_int(handle, option, &v) != 0 { throw zmqFailure("zmq_getsockopt(\(option))") }
        return v
    }

    /// The endpoint actually bound (resolves `tcp://127.0.0.1:*` to the chosen port).
    public func lastEndpoint() throws -> String {
        var buf = [CChar](repeating: 0, count: 512)
        var size = buf.count
        if zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buf, &size) != 0 { throw zmqFailure("zmq_getsockopt(LAST_ENDPOINT)") }
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public func bind(_ endpoint: String) throws {
        if zmq_bind(handle, endpoint) != 0 {
            let e = zmqFailure("zmq_bind")
            throw HumeError(.system, "Cannot bind \(endpoint): \(e.detail).", cause: e)
        }
    }

    public func connect(_ endpoint: String) throws {
        if zmq_connect(handle, endpoint) != 0 {
            let e = zmqFailure("zmq_connect")
            throw HumeError(.system, "Cannot connect to \(endpoint): \(e.detail).", cause: e)
        }
    }

    /// Sends a multipart message. Returns false when the send would block (`dontWait`) or the peer is unroutable.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        for (i, frame) in frames.enumerated() {
            let sent = try frame.withUnsafeBytes { try sendFrame($0, first: i == 0, more: i < frames.count - 1, dontWait: dontWait) }
            if !sent { return false }
        }
        return true
    }

    /// Sends `head` and then each record of `records` as a frame of its own, with no per-record array.
    @discardableResult
    public func send(_ head: [[UInt8]], records: RecordBuffer, dontWait: Bool = false) throws -> Bool {
        for (i, frame) in head.enumerated() {
            let more = i < head.count - 1 || !records.isEmpty
            let sent = try frame.withUnsafeBytes { try sendFrame($0, first: i == 0, more: more, dontWait: dontWait) }
            if !sent { return false }
        }
        guard !records.isEmpty else { return true }
        return try records.withUnsafeBytes { all in
            for i in 0..<records.count {
                let r = records.range(i)
                let frame = UnsafeRawBufferPointer(rebasing: all[r])
                if try !sendFrame(frame, first: head.isEmpty && i == 0, more: i < records.count - 1, dontWait: dontWait) { return false }
            }
            return true
        }
    }

    /// One frame; false only when the first frame of a message cannot be queued (later frames always follow it:
    /// libzmq delivers a multipart message whole once its first frame is queued).
    private func sendFrame(_ frame: UnsafeRawBufferPointer, first: Bool, more: Bool, dontWait: Bool) throws -> Bool {
        var flags: Int32 = more ? ZMQ_SNDMORE : 0
        if dontWait { flags |= ZMQ_DONTWAIT }
        while true {
            if zmq_send(handle, frame.baseAddress, frame.count, flags) >= 0 { return true }
            let e = zmq_errno()
            if e == EINTR { continue }
            if e == EAGAIN || e == EHOSTUNREACH {
                if first { return false }
                continue
            }
            throw zmqFailure("zmq_send")
        }
    }

    /// Receives one whole multipart message, or nil when none is waiting (`dontWait`) or on a timeout.
    public func receive(dontWait: Bool = false) throws -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        var msg = zmq_msg_t()
        zmq_msg_init(&msg)
        defer { zmq_msg_close(&msg) }
        var first = true
        while true {
            let rc = zmq_msg_recv(&msg, handle, first && dontWait ? ZMQ_DONTWAIT : 0)
            if rc < 0 {
                let e = zmq_errno()
                if e == EINTR && !first { continue }
                if e == EAGAIN || e == EINTR { return nil }
                throw zmqFailure("zmq_msg_recv")
            }
            first = false
            let size = zmq_msg_size(&msg)
            if size == 0 {
                frames.append([])
            } else {
                let p = zmq_msg_data(&msg)!.assumingMemoryBound(to: UInt8.self)
                frames.append(Array(UnsafeBufferPointer(start: p, count: size)))
            }
            if zmq_msg_more(&msg) == 0 { return frames }
        }
    }
}

/// zmq_poll over sockets and raw file descriptors. Blocks: call it only on a thread of its own.
public struct ZMQPoller {
    var items: [zmq_pollitem_t] = []

    public init() {}

    /// Registers a socket for reading; returns its index.
    @discardableResult
    public mutating func add(_ socket: borrowing ZMQSocket) -> Int {
        items.append(zmq_pollitem_t(socket: socket.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    /// Registers a file descriptor for reading; returns its index.
    @discardableResult
    public mutating func add(fd: Int32) -> Int {
        items.append(zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN), revents: 0))
        return items.count - 1
    }

    /// Waits up to `timeoutMs` (-1: forever). Returns the number of ready items (0 on timeout or EINTR).
    public mutating func poll(timeoutMs: Int) throws -> Int {
        let rc = items.withUnsafeMutableBufferPointer { zmq_poll($0.baseAddress, Int32($0.count), timeoutMs) }
        if rc < 0 {
            if zmq_errno() == EINTR { return 0 }
            throw zmqFailure("zmq_poll")
        }
        return Int(rc)
    }

    public func isReadable(_ index: Int) -> Bool { items[index].revents & Int16(ZMQ_POLLIN) != 0 }
}

/// An eventfd used to wake a thread blocked in `ZMQPoller.poll` (results ready, shutdown requested).
public final class WakeFD: @unchecked Sendable {  // eventfd read/write are atomic system calls, safe from any thread.
    public let fd: Int32

    public init() throws {
        fd = hume_eventfd()
        if fd < 0 { throw SystemCallError("eventfd", errno: errno, detail: String(cString: strerror(errno))) }
    }

    deinit { close(fd) }

    /// Wakes the poller.
    public func wake() {
        var one: UInt64 = 1
        while write(fd, &one, 8) < 0 && errno == EINTR {}
    }

    /// Clears pending wake-ups.
    public func drain() {
        var v: UInt64 = 0
        while read(fd, &v, 8) < 0 && errno == EINTR {}
    }
}
