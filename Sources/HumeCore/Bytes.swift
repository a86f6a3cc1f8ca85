/// Little-endian binary writer used by the wire protocol's record frames.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    /// A string prefixed by its UTF-8 length as u16.
    public mutating func shortString(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            u16(UInt16(min(utf8.count, Int(UInt16.max))))
            bytes.append(contentsOf: utf8.prefix(Int(UInt16.max)))
        }
    }
    /// A byte blob prefixed by its length as u32.
    public mutating func blob<C: Collection>(_ b: C) where C.Element == UInt8 {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
}

/// Little-endian binary reader that never reads out of bounds: every read throws a clear error when the frame is short.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    let what: String

    public init(_ bytes: [UInt8], what: String) {
        self.bytes = bytes
        self.offset = 0
        self.what = what
    }

    public var remaining: Int { bytes.count - offset }

    @inline(__always) mutating func need(_ n: Int, _ field: String) throws {
        if n > bytes.count - offset {
            throw HumeError(.badRequest, "\(what) is truncated: field \(field) needs \(n) bytes at offset \(offset) but the frame has \(bytes.count) bytes.")
        }
    }
    public mutating func u8(_ field: String) throws -> UInt8 {
        try need(1, field); defer { offset += 1 }
        return bytes[offset]
    }
    public mutating func u16(_ field: String) throws -> UInt16 {
        try need(2, field); defer { offset += 2 }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }
    public mutating func u32(_ field: String) throws -> UInt32 {
        try need(4, field); defer { offset += 4 }
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
        return v
    }
    public mutating func u64(_ field: String) throws -> UInt64 {
        try need(8, field); defer { offset += 8 }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        return v
    }
    public mutating func shortString(_ field: String) throws -> String {
        let n = Int(try u16(field))
        try need(n, field); defer { offset += n }
        guard let s = String(validating: bytes[offset..<offset + n], as: UTF8.self) else {
            throw HumeError(.badRequest, "\(what): field \(field) is not valid UTF-8.")
        }
        return s
    }
    public mutating func blob(_ field: String, limit: Int) throws -> [UInt8] {
        let n = Int(try u32(field))
        if n > limit {
            throw HumeError(.tooLarge, "\(what): field \(field) is \(n) bytes, over the limit of \(limit) bytes.")
        }
        try need(n, field); defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }
    public func expectEnd() throws {
        if offset != bytes.count {
            throw HumeError(.badRequest, "\(what) has \(bytes.count - offset) unexpected trailing bytes.")
        }
    }
}
