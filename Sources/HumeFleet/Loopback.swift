import Foundation

/// TCP on 127.0.0.1 with the sockaddr plumbing in one place: the fleet picks free ports with it, and the tests'
/// relays, scripted servers and probes bind and connect with it.
public enum Loopback {
    static func address(port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = UInt16(port).bigEndian
        return a
    }

    /// Binds socket `fd` to 127.0.0.1:`port` (0: any free port) and returns the port it got, or nil.
    public static func bind(_ fd: Int32, port: Int = 0) -> Int? {
        var addr = address(port: port)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.bind(fd, $0, len) } }
        guard bound == 0 else { return nil }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Connects socket `fd` to 127.0.0.1:`port`; whether it succeeded.
    public static func connect(_ fd: Int32, port: Int) -> Bool {
        var addr = address(port: port)
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// A free loopback TCP port (bound, then released).
public func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    return Loopback.bind(fd) ?? 0
}
