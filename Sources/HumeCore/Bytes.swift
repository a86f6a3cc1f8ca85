/// What the wire protocol's records are written with: `ByteWriter` (a growing array of its own) or `RecordWriter`
/// (a span reserved in a `RecordBuffer`). Each record's layout is written once, generically, for both.
public protocol BinaryWriter {
    mutating func u8(_ v: UInt8)
    mutating func u16(_ v: UInt16)
    mutating func u32(_ v: UInt32)
    mutating func u64(_ v: UInt64)
    /// Raw bytes, no length prefix.
    mutating func raw(_ bytes: UnsafeRawBufferPointer)
}

extension BinaryWriter {
    /// A string prefixed by its UTF-8 length as u16 (longer strings are cut at 65,535 bytes).
    @inlinable
    public mutating func shortString(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            let n = min(utf8.count, Int(UInt16.max))
            u16(UInt16(n))
            raw(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[..<n]))
        }
    }

    /// A byte blob prefixed by its length as u32.
    @inlinable
    public mutating func blob(_ b: [UInt8]) {
        u32(UInt32(b.count))
        b.withUnsafeBytes { raw($0) }
    }

    /// Bytes a `shortString` of `s` takes.
    @inlinable
    public static func size(shortString s: String) -> Int { 2 + min(s.utf8.count, Int(UInt16.max)) }
}

/// Little-endian binary writer used by the wire protocol's record frames.
public struct ByteWriter: BinaryWriter, Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func raw(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }
    /// A byte blob (any collection of bytes) prefixed by its length as u32.
    public mutating func blob<C: Collection>(_ b: C) where C.Element == UInt8 {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
}

/// Records for one message, written back to back into one buffer (`ends[i]` is where record i stops), so that a
/// batch of records costs two growing arrays instead of one array per record. Each record is written in place
/// through a `RecordWriter` over exactly the bytes it said it needs.
public struct RecordBuffer: Sendable {
    /// The records' bytes are `storage[0..<used]`; the rest is room already allocated.
    @usableFromInline var storage: [UInt8] = []
    @usableFromInline var used = 0
    /// Where each record stops.
    public var ends: [Int] { _ends }
    @usableFromInline var _ends: [Int] = []

    public init() {}

    /// Packs separately encoded records.
    public init(_ records: [[UInt8]]) {
        for r in records { append(size: r.count) { w in r.withUnsafeBytes { w.raw($0) } } }
    }

    public var count: Int { ends.count }
    public var isEmpty: Bool { ends.isEmpty }

    /// Appends one record of exactly `size` bytes, written by `body`.
    @inlinable
    public mutating func append(size: Int, _ body: (inout RecordWriter) -> Void) {
        if storage.count - used < size {
            // Doubling, so the zero-fill costs O(1) per byte over the buffer's life.
            storage.append(contentsOf: [UInt8](repeating: 0, count: max(size, storage.count, 256)))
        }
        let start = used
        storage.withUnsafeMutableBytes { all in
            var w = RecordWriter(base: all.baseAddress! + start, size: size)
            body(&w)
            precondition(w.offset == size, "a record wrote \(w.offset) of the \(size) bytes it reserved")
        }
        used += size
        _ends.append(used)
    }

    /// The byte range of record `i`.
    public func range(_ i: Int) -> Range<Int> { (i == 0 ? 0 : ends[i - 1])..<ends[i] }

    /// Empties the buffer but keeps its storage up to 1 MiB: once a copy handed to the socket is gone, the next
    /// records are written into the same memory (no allocation, no fresh pages to fault in, no zero-fill). Larger
    /// storage (a round of image-sized records) is let go rather than held for as long as its peer stays.
    public mutating func removeAll() {
        used = 0
        if storage.count > 1 << 20 { storage = [] }
        _ends.removeAll(keepingCapacity: true)
    }

    /// Calls `body` with the records' bytes (record `i` is `range(i)` of them).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[..<used])) }
    }

    /// Each record as an array of its own (for tests and callers that want `Message`).
    public var arrays: [[UInt8]] { (0..<count).map { Array(storage[range($0)]) } }
}

/// Writes one record into the span a `RecordBuffer` reserved for it; writing past the span stops the process
/// (a record's size and its writer disagreeing is a bug, never input).
public struct RecordWriter: BinaryWriter {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let size: Int
    /// Bytes written so far.
    public var offset: Int { _offset }
    @usableFromInline var _offset = 0

    @inlinable
    init(base: UnsafeMutableRawPointer, size: Int) {
        self.base = base
        self.size = size
    }

    @inlinable mutating func put<T: FixedWidthInteger>(_ v: T) {
        precondition(offset + MemoryLayout<T>.size <= size, "a record overran its reserved size")
        base.storeBytes(of: v.littleEndian, toByteOffset: _offset, as: T.self)
        _offset += MemoryLayout<T>.size
    }

    @inlinable public mutating func u8(_ v: UInt8) { put(v) }
    @inlinable public mutating func u16(_ v: UInt16) { put(v) }
    @inlinable public mutating func u32(_ v: UInt32) { put(v) }
    @inlinable public mutating func u64(_ v: UInt64) { put(v) }
    @inlinable public mutating func raw(_ b: UnsafeRawBufferPointer) {
        precondition(_offset + b.count <= size, "a record overran its reserved size")
        if let src = b.baseAddress, b.count > 0 { (base + _offset).copyMemory(from: src, byteCount: b.count) }
        _offset += b.count
    }
}

/// Little-endian binary reader that never reads out of bounds: every read throws a clear error when the frame is short.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    let kind: String
    let index: Int?

    /// `what` names the frame in error messages ("TASK record"); `index`, when given, is appended to it ("SUBMIT
    /// record 3") only if an error is thrown, so a reader costs no string building.
    public init(_ bytes: [UInt8], what: String, index: Int? = nil) {
        self.bytes = bytes
        self.offset = 0
        self.kind = what
        self.index = index
    }

    var what: String { index.map { "\(kind) \($0)" } ?? kind }

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
        return UInt32(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self) })
    }
    public mutating func u64(_ field: String) throws -> UInt64 {
        try need(8, field); defer { offset += 8 }
        return UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) })
    }
    /// The next `n` bytes (already checked to be there) as a buffer pointer, for the fast contiguous paths.
    @inline(__always) func span<R>(_ n: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        bytes.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[offset..<offset + n])) }
    }
    public mutating func shortString(_ field: String) throws -> String {
        let n = Int(try u16(field))
        try need(n, field); defer { offset += n }
        // ASCII (every key the broker makes, and most that clients send) needs no decoder; anything else is validated.
        guard let s = span(n, { b in b.allSatisfy { $0 < 0x80 } ? String(decoding: b, as: UTF8.self) : String(validating: b, as: UTF8.self) }) else {
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
        return n == 0 ? [] : span(n) { Array($0) }
    }
    public func expectEnd() throws {
        if offset != bytes.count {
            throw HumeError(.badRequest, "\(what) has \(bytes.count - offset) unexpected trailing bytes.")
        }
    }
}
