import CZeroMQ
import HumeCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A CURVE key pair (Z85 text, 40 characters each), as written by `hume keys generate`.
///
/// Key files: `NAME.key` holds the pair (`public Z85` and `secret Z85` lines; mode 0600), `NAME.pub` only the public
/// key. An allow list is a file of public keys (one per line; `#` comments, `.pub` or `.key` contents accepted) or a
/// directory of `*.pub` files.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    /// A fresh random key pair.
    public static func generate() throws -> CurveKeyPair {
        guard ZMQContext.hasCurve else { throw HumeError(.system, "This libzmq was built without CURVE security.") }
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&pub, &sec) == 0 else { throw HumeError(.system, "zmq_curve_keypair failed.") }
        return CurveKeyPair(publicKey: cString(pub), secretKey: cString(sec))
    }

    /// The pair for a secret key (the public key is derived from it).
    public init(secretKey: String) throws {
        guard Self.isZ85Key(secretKey) else { throw HumeError(.invalidInput, "A CURVE secret key must be 40 Z85 characters.") }
        var pub = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&pub, secretKey) == 0 else { throw HumeError(.invalidInput, "The CURVE secret key is not valid Z85.") }
        self.init(publicKey: cString(pub), secretKey: secretKey)
    }

    init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// Whether `s` looks like a Z85-encoded 32-byte key.
    public static func isZ85Key(_ s: String) -> Bool {
        let alphabet = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")
        return s.count == 40 && s.allSatisfy { alphabet.contains($0) }
    }

    /// Z85 text of 32 raw key bytes (as a ZAP request carries a CURVE client's key).
    public static func z85(_ raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        return raw.withUnsafeBufferPointer { zmq_z85_encode(&out, $0.baseAddress, 32) } == nil ? nil : cString(out)
    }

    /// Writes `NAME.key` (0600) and `NAME.pub` under `directory`; refuses to overwrite an existing key.
    public func write(directory: String, name: String) throws -> (keyFile: String, publicFile: String) {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let keyFile = directory + "/" + name + ".key", pubFile = directory + "/" + name + ".pub"
        guard !FileManager.default.fileExists(atPath: keyFile) else {
            throw HumeError(.invalidInput, "\(keyFile) exists; remove it first to replace that key.")
        }
        let body = "# Hume CURVE key pair; keep this file secret.\npublic \(publicKey)\nsecret \(secretKey)\n"
        let fd = open(keyFile, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw HumeError(.system, "Cannot create \(keyFile): \(String(cString: strerror(errno))).") }
        let ok = body.utf8CString.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress, $0.count - 1) == $0.count - 1 }
        close(fd)
        guard ok else { throw HumeError(.system, "Cannot write \(keyFile).") }
        try (publicKey + "\n").write(toFile: pubFile, atomically: true, encoding: .utf8)
        return (keyFile, pubFile)
    }

    /// Reads a `.key` file (its `secret` line; a bare key could be a public one, so it is not accepted).
    public static func load(_ path: String) throws -> CurveKeyPair {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw HumeError(.invalidInput, "Cannot read the CURVE key file \(path).")
        }
        var secret: String?
        for line in text.split(whereSeparator: \.isNewline) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("secret ") { secret = String(t.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
        }
        guard let s = secret else {
            throw HumeError(.invalidInput, "\(path) holds no CURVE secret key (make one with `hume keys generate`).")
        }
        do { return try CurveKeyPair(secretKey: s) } catch let e as HumeError {
            throw HumeError(.invalidInput, "\(path): \(e.message)")
        }
    }

    /// A public key given as Z85 text or as a file holding it (`.pub`, or the `public` line of a `.key`).
    public static func loadPublic(_ textOrPath: String) throws -> String {
        if isZ85Key(textOrPath) { return textOrPath }
        guard let text = try? String(contentsOfFile: textOrPath, encoding: .utf8) else {
            throw HumeError(.invalidInput, "\"\(textOrPath)\" is neither a 40-character Z85 public key nor a readable key file.")
        }
        let keys = publicKeys(in: text)
        guard keys.count == 1 else {
            throw HumeError(.invalidInput, "\(textOrPath) should hold exactly one public key; it holds \(keys.count).")
        }
        return keys[0]
    }

    /// Public keys in a text: bare Z85 lines and `public` lines (never secret ones).
    static func publicKeys(in text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).compactMap { line -> String? in
            var t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("#") || t.hasPrefix("secret") { return nil }
            if t.hasPrefix("public ") { t = String(t.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            return isZ85Key(t) ? t : nil
        }
    }

    /// The allowed public keys in a file or in a directory's `*.pub` files. Fails closed: an unreadable or empty
    /// list is an error, never "allow everyone".
    public static func loadAllowList(_ path: String) throws -> Set<String> {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw HumeError(.invalidInput, "The allowed-keys list \(path) does not exist.")
        }
        var keys: Set<String> = []
        if isDir.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            for n in names where n.hasSuffix(".pub") {
                if let t = try? String(contentsOfFile: path + "/" + n, encoding: .utf8) { keys.formUnion(publicKeys(in: t)) }
            }
        } else if let t = try? String(contentsOfFile: path, encoding: .utf8) {
            keys.formUnion(publicKeys(in: t))
        }
        guard !keys.isEmpty else {
            throw HumeError(.invalidInput, "The allowed-keys list \(path) holds no public keys; refusing to start open.")
        }
        return keys
    }
}

func cString(_ chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// What a CURVE server (the broker) needs: its key pair and the public keys it lets in.
public struct CurveServerConfig: Sendable {
    public var keys: CurveKeyPair
    public var allowed: Set<String>
    public init(keys: CurveKeyPair, allowed: Set<String>) {
        self.keys = keys
        self.allowed = allowed
    }
}

/// What a CURVE client (a worker or a client) needs: its key pair and the broker's public key.
public struct CurveClientConfig: Sendable {
    public var keys: CurveKeyPair
    public var serverKey: String
    public init(keys: CurveKeyPair, serverKey: String) {
        self.keys = keys
        self.serverKey = serverKey
    }

    /// From an environment (the executable passes its own): `HUME_CURVE_KEY` (a key file) and `HUME_SERVER_KEY`
    /// (Z85 or a `.pub` file); nil when neither is set.
    public static func fromEnvironment(_ env: [String: String]) throws -> CurveClientConfig? {
        try from(keyFile: env["HUME_CURVE_KEY"], serverKey: env["HUME_SERVER_KEY"])
    }

    /// From a key file and the server's public key; nil when both are nil, an error when only one is given.
    public static func from(keyFile: String?, serverKey: String?) throws -> CurveClientConfig? {
        let k = keyFile.flatMap { $0.isEmpty ? nil : $0 }, s = serverKey.flatMap { $0.isEmpty ? nil : $0 }
        switch (k, s) {
        case (nil, nil): return nil
        case let (k?, s?): return CurveClientConfig(keys: try CurveKeyPair.load(k), serverKey: try CurveKeyPair.loadPublic(s))
        case (nil, _): throw HumeError(.invalidInput, "A broker key (--server-key / HUME_SERVER_KEY) needs this side's own key too (--curve-key / HUME_CURVE_KEY).")
        case (_, nil): throw HumeError(.invalidInput, "A CURVE key (--curve-key / HUME_CURVE_KEY) needs the broker's public key too (--server-key / HUME_SERVER_KEY).")
        }
    }
}

extension ZMQSocket {
    /// Makes this (not yet bound) socket a CURVE server whose peers are checked by the context's ZAP handler.
    public func makeCurveServer(_ config: CurveServerConfig) throws {
        try setOption(ZMQ_CURVE_SERVER, 1)
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(config.keys.secretKey.utf8))
        // The ZAP handler must already be bound (ZAPHandler's init waits for it): without one, libzmq 4.3 lets
        // every CURVE client in.
        try setOption(ZMQ_ZAP_DOMAIN, bytes: Array("hume".utf8))
    }

    /// Makes this (not yet connected) socket a CURVE client of the server with `config.serverKey`.
    public func makeCurveClient(_ config: CurveClientConfig) throws {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: Array(config.serverKey.utf8))
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: Array(config.keys.publicKey.utf8))
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(config.keys.secretKey.utf8))
    }
}

/// Whether an endpoint only listens on this machine (loopback TCP, IPC, in-process).
public func isLocalEndpoint(_ endpoint: String) -> Bool {
    if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
    guard endpoint.hasPrefix("tcp://") else { return false }
    let hostPort = endpoint.dropFirst(6)
    let host: Substring
    if hostPort.hasPrefix("[") { host = hostPort.dropFirst().prefix { $0 != "]" } } else { host = hostPort.prefix { $0 != ":" } }
    return host == "localhost" || host == "::1" || host.hasPrefix("127.")
}

/// The ZAP handler (RFC 27) for a context: answers every CURVE handshake on sockets with the `hume` domain,
/// letting in only the listed public keys. Runs on a thread of its own until `stop()`; start it before binding.
public final class ZAPHandler: @unchecked Sendable {  // `refusals` is guarded by `lock`; the rest is immutable.
    let context: ZMQContext
    let allowed: Set<String>
    let onRefusal: @Sendable (String, String) -> Void
    let stopFD: WakeFD
    let ready = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    let lock = NSLock()
    var startError: (any Error)?
    var _refusals = 0
    var _accepted = 0

    /// - Parameter onRefusal: called with the peer's address and public key (Z85) for each refused handshake.
    public init(context: ZMQContext, allowed: Set<String>, onRefusal: @escaping @Sendable (String, String) -> Void = { _, _ in }) throws {
        self.context = context
        self.allowed = allowed
        self.onRefusal = onRefusal
        stopFD = try WakeFD()
        let t = Thread { [self] in self.serve() }
        t.name = "zap"
        t.start()
        ready.wait()
        if let e = startError { throw e }
    }

    public var refusals: Int { lock.lock(); defer { lock.unlock() }; return _refusals }
    public var accepted: Int { lock.lock(); defer { lock.unlock() }; return _accepted }

    public func stop() {
        stopFD.wake()
        done.wait()
    }

    func serve() {
        defer { done.signal() }
        do {
            let socket = try ZMQSocket(context, .rep)
            try socket.bind("inproc://zeromq.zap.01")
            ready.signal()
            answer(socket)
        } catch {
            startError = error
            ready.signal()
        }
    }

    func answer(_ socket: borrowing ZMQSocket) {
        var poller = ZMQPoller()
        _ = poller.add(socket)
        let stopIndex = poller.add(fd: stopFD.fd)
        while true {
            guard (try? poller.poll(timeoutMs: -1)) != nil else { continue }
            if poller.isReadable(stopIndex) { return }
            while let f = try? socket.receive(dontWait: true) {
                // version, request id, domain, address, identity, mechanism, credentials...
                guard f.count >= 6 else { continue }
                let requestID = f[1]
                let mechanism = String(decoding: f[5], as: UTF8.self)
                let address = String(decoding: f[3], as: UTF8.self)
                var key = ""
                var ok = false
                if mechanism == "CURVE", f.count >= 7, let z = CurveKeyPair.z85(f[6]) {
                    key = z
                    ok = allowed.contains(z)
                }
                lock.lock()
                if ok { _accepted += 1 } else { _refusals += 1 }
                lock.unlock()
                if !ok { onRefusal(address, key.isEmpty ? "(\(mechanism))" : key) }
                let reply: [[UInt8]] = [Array("1.0".utf8), requestID, Array((ok ? "200" : "400").utf8),
                                        Array((ok ? "OK" : "key not allowed").utf8), Array((ok ? key : "").utf8), []]
                _ = try? socket.send(reply)
            }
        }
    }
}
