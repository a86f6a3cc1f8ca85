import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The element type of a tensor in a safetensors file.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8", i8 = "I8"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case i64 = "I64", u64 = "U64", f64 = "F64"

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .bool, .u8, .i8, .f8e4m3, .f8e5m2: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .i64, .u64, .f64: return 8
        }
    }
}

/// Where one tensor lives in a safetensors file and what it holds.
public struct SafeTensorInfo: Sendable, Equatable {
    /// The tensor's key in the header.
    public var name: String
    /// Its element type.
    public var dtype: SafeTensorsDType
    /// Its shape, outermost dimension first (row-major).
    public var shape: [Int]
    /// Its bytes, as absolute offsets into the file.
    public var byteRange: Range<Int>

    /// The number of elements (the product of `shape`; 1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A read-only, memory-mapped safetensors file.
///
/// The format is an 8-byte little-endian header length, a JSON header mapping tensor names to
/// `{dtype, shape, data_offsets}` (offsets relative to the end of the header), then the raw bytes.
/// Every range is checked against the file size when the file is opened, so reading a tensor
/// afterwards cannot go out of bounds.
public final class SafeTensorsFile: @unchecked Sendable {
    // @unchecked Sendable: the mapping is read-only (PROT_READ, MAP_PRIVATE), never written after
    // init, and unmapped only in deinit, so concurrent readers see immutable memory.

    /// Largest header accepted, as in the reference implementation (100 MB).
    public static let maximumHeaderSize = 100_000_000

    /// The file this was read from.
    public let path: String
    /// The tensors in the file, by name.
    public let tensors: [String: SafeTensorInfo]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    /// The file size in bytes.
    public let fileSize: Int

    private let base: UnsafeRawPointer?

    /// Maps and validates a safetensors file.
    /// - Parameter path: The file to open.
    /// - Throws: `EmbedError` with `.fileUnreadable` when the file cannot be opened or mapped, and
    ///   `.invalidSafeTensors` (naming the file and the problem) when it is truncated, its header is
    ///   oversize or not the expected JSON, or a tensor's shape or byte range is inconsistent.
    public init(path: String) throws {
        self.path = path
        let fd = try Self.openReadOnly(path)
        defer { close(fd) }

        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw EmbedError(code: .fileUnreadable, message: "Cannot stat safetensors file \(path).",
                             cause: SystemCallError(function: "fstat", errno: errno))
        }
        let size = Int(st.st_size)
        fileSize = size
        guard size >= 8 else {
            throw EmbedError(code: .invalidSafeTensors,
                             message: "\(path) is not a safetensors file: it is \(size) bytes long, too short for the 8-byte header length.")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw EmbedError(code: .fileUnreadable, message: "Cannot memory-map safetensors file \(path).",
                             cause: SystemCallError(function: "mmap", errno: errno))
        }
        let raw = UnsafeRawPointer(mapped)
        do {
            (tensors, metadata) = try Self.parseHeader(raw, size: size, path: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
        base = raw
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), fileSize) }
    }

    /// The raw bytes of a tensor; valid while this file object is alive.
    /// - Throws: `.missingTensor` when there is no tensor of that name.
    public func withBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let info = try info(name)
        let start = base!.advanced(by: info.byteRange.lowerBound)
        return try body(UnsafeRawBufferPointer(start: start, count: info.byteRange.count))
    }

    /// The tensor's header entry.
    /// - Throws: `.missingTensor` naming the file and the key.
    public func info(_ name: String) throws -> SafeTensorInfo {
        guard let info = tensors[name] else {
            throw EmbedError(code: .missingTensor, message: "\(path) has no tensor named \"\(name)\".")
        }
        return info
    }

    /// A tensor's values as `Float`, converted from F32, F16, BF16 or F64.
    /// - Throws: `.missingTensor`, or `.unsupportedDType` for integer and 8-bit float tensors.
    public func floats(_ name: String) throws -> [Float] {
        let info = try info(name)
        let count = info.elementCount
        return try withBytes(of: name) { bytes in
            switch info.dtype {
            case .f32:
                return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                    // memcpy handles any alignment; the format is little-endian like every host we run on.
                    if count > 0 { memcpy(out.baseAddress!, bytes.baseAddress!, count * 4) }
                    #if _endian(big)
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: out[i].bitPattern)) }
                    #endif
                    initialized = count
                }
            case .f16:
                return (0..<count).map { i in
                    halfToFloat(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                }
            case .bf16:
                return (0..<count).map { i in
                    Float(bitPattern: UInt32(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
                }
            case .f64:
                return (0..<count).map { i in
                    Float(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                }
            default:
                throw EmbedError(code: .unsupportedDType,
                                 message: "Tensor \"\(name)\" in \(path) has dtype \(info.dtype.rawValue); only F32, F16, BF16 and F64 convert to Float.")
            }
        }
    }

    // MARK: - Parsing

    private static func openReadOnly(_ path: String) throws -> Int32 {
        while true {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd >= 0 { return fd }
            let err = errno
            if err == EINTR { continue }
            throw EmbedError(code: .fileUnreadable, message: "Cannot open safetensors file \(path).",
                             cause: SystemCallError(function: "open", errno: err))
        }
    }

    private static func parseHeader(_ raw: UnsafeRawPointer, size: Int, path: String) throws
        -> ([String: SafeTensorInfo], [String: String]) {
        func invalid(_ what: String) -> EmbedError {
            EmbedError(code: .invalidSafeTensors, message: "\(path) is not a valid safetensors file: \(what).")
        }
        let headerLength64 = UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))
        guard headerLength64 <= UInt64(maximumHeaderSize) else {
            throw invalid("its header claims \(headerLength64) bytes, more than the \(maximumHeaderSize)-byte limit (a foreign or corrupt file)")
        }
        let headerLength = Int(headerLength64)
        guard headerLength >= 2 else { throw invalid("its header length is \(headerLength) bytes, too short for a JSON object") }
        guard 8 + headerLength <= size else {
            throw invalid("the file is truncated: the header needs \(8 + headerLength) bytes but the file has \(size)")
        }
        let headerBytes = UnsafeRawBufferPointer(start: raw + 8, count: headerLength)
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw invalid("the header does not start with '{' (not a safetensors file)")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            throw invalid("its header is not valid JSON")
        }
        guard let object = json as? [String: Any] else { throw invalid("its header is not a JSON object") }

        let dataStart = 8 + headerLength
        let dataSize = size - dataStart
        var tensors: [String: SafeTensorInfo] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else { throw invalid("__metadata__ is not an object") }
                for (k, v) in map {
                    guard let s = v as? String else { throw invalid("__metadata__ value for \"\(k)\" is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw invalid("entry \"\(name)\" is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw invalid("tensor \"\(name)\" has no dtype") }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw invalid("tensor \"\(name)\" has unknown dtype \"\(dtypeName)\"")
            }
            guard let shapeValues = entry["shape"] as? [Any] else { throw invalid("tensor \"\(name)\" has no shape") }
            var shape: [Int] = []
            var count = 1
            for dim in shapeValues {
                guard let d = integer(dim), d >= 0 else { throw invalid("tensor \"\(name)\" has a shape \(shapeValues) with a non-integer or negative dimension") }
                shape.append(d)
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw invalid("tensor \"\(name)\" has a shape \(shape) too large to address") }
                count = product
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = integer(offsets[0]), let end = integer(offsets[1]) else {
                throw invalid("tensor \"\(name)\" has no [begin, end] data_offsets")
            }
            guard 0 <= begin, begin <= end else {
                throw invalid("tensor \"\(name)\" has data_offsets [\(begin), \(end)] that are negative or reversed")
            }
            guard end <= dataSize else {
                throw invalid("tensor \"\(name)\" ends at data byte \(end) but the file holds only \(dataSize) data bytes (truncated)")
            }
            let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.byteCount)
            guard !overflow, expected == end - begin else {
                throw invalid("tensor \"\(name)\" spans \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(overflow ? "more" : String(expected))")
            }
            tensors[name] = SafeTensorInfo(name: name, dtype: dtype, shape: shape,
                                           byteRange: (dataStart + begin)..<(dataStart + end))
        }
        return (tensors, metadata)
    }

    /// An integer from a JSON number, rejecting fractions.
    private static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber else { return nil }
        let d = number.doubleValue
        guard d.rounded() == d, abs(d) < 9.0e15 else { return nil }
        return number.intValue
    }
}

/// IEEE half (binary16) bits to Float, including subnormals, infinities and NaN.
@inlinable
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        // zero or subnormal: mantissa * 2^-24
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -magnitude : magnitude
    }
    if exponent == 31 {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
}
