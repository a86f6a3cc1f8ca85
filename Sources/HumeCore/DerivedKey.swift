/// 128-bit FNV-1a, for content-derived idempotency keys (not a security boundary).
public struct FNV1a128: Sendable {
    public var hi: UInt64 = 0x6c62_272e_07bb_0142
    public var lo: UInt64 = 0x62b8_2175_6295_c58d

    @inlinable
    public init() {}

    @inlinable
    public mutating func update(_ bytes: [UInt8]) {
        // 128-bit multiply by the FNV prime 2^88 + 0x13B.
        for b in bytes {
            lo ^= UInt64(b)
            let (p1hi, p1lo) = lo.multipliedFullWidth(by: 0x13B)
            let newHi = hi &* 0x13B &+ p1hi &+ (lo << 24)
            lo = p1lo
            hi = newHi
        }
    }

    public var hex: String {
        let a = String(hi, radix: 16), b = String(lo, radix: 16)
        return String(repeating: "0", count: 16 - a.count) + a + String(repeating: "0", count: 16 - b.count) + b
    }
}

extension JobSpec {
    /// The key the broker gives a job submitted without one (PROTOCOL.md section 7): the same batch, route, params and
    /// data give the same key. A client that knows it can re-attach to the job after a broker restart.
    public func derivedKey(batch: String, routeNames: [String]) -> String {
        var h = FNV1a128()
        h.update(Array(batch.utf8)); h.update([0])
        h.update(Array(routeNames.joined(separator: ",").utf8)); h.update([0])
        h.update(params); h.update([0])
        h.update(data)
        return "\(batch)#\(h.hex)"
    }
}
