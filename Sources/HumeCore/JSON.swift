/// A JSON value: what the wire protocol's header frames and the CLI's JSONL files carry.
public enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var double: Double? { if case .number(let d) = self { return d }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSON]? { if case .array(let a) = self { return a }; return nil }
    public var object: [String: JSON]? { if case .object(let o) = self { return o }; return nil }
    /// The value as an integer when it is a number with no fractional part.
    public var int: Int? {
        guard case .number(let d) = self, d.rounded() == d, abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    public init(_ i: Int) { self = .number(Double(i)) }
    public init(_ s: String) { self = .string(s) }

    // MARK: Serialisation

    /// Compact JSON text with object keys sorted, so output is deterministic.
    public var serialized: String { String(decoding: bytes, as: UTF8.self) }

    /// `serialized` as UTF-8, written byte by byte (every job's parameters and payloads pass through here).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        write(into: &out)
        return out
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out += "null".utf8
        case .bool(let b): out += (b ? "true" : "false").utf8
        case .number(let d): JSON.writeNumber(d, into: &out)
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.writeString(k, into: &out)
                out.append(UInt8(ascii: ":"))
                o[k]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A number as `serialized` writes it: a whole number in integer digits, anything else finite as Swift's shortest
    /// round-trip form (`"\(d)"`), NaN and infinities as null. Numbers of at most six decimals between 10⁻⁴ and 10⁶
    /// (the retriever's scores) are written from integer digits, the same text without formatting a Double.
    public static func writeNumber(_ d: Double, into out: inout [UInt8]) {
        if d.rounded() == d && abs(d) < 9.0e15 {
            writeInteger(Int64(d), into: &out)
            return
        }
        let a = abs(d), micro = (a * 1e6).rounded()
        if a >= 1e-4, a < 1e6, Double(Int64(micro)) / 1e6 == a {
            // The decimal m·10⁻⁶ rounds to d, and no shorter decimal lies within half an ulp of it, so this is also
            // the shortest round-trip text, which is what Swift's description prints in this range.
            let m = Int64(micro)
            if d < 0 { out.append(UInt8(ascii: "-")) }
            writeInteger(m / 1_000_000, into: &out)
            out.append(UInt8(ascii: "."))
            var fraction = m % 1_000_000, digits = 6
            while fraction % 10 == 0 { fraction /= 10; digits -= 1 }
            var buffer: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &buffer) { b in
                for i in stride(from: digits - 1, through: 0, by: -1) {
                    b[i] = UInt8(ascii: "0") + UInt8(fraction % 10)
                    fraction /= 10
                }
                out.append(contentsOf: UnsafeBufferPointer(start: b.baseAddress!.assumingMemoryBound(to: UInt8.self), count: digits))
            }
        } else if d.isFinite {
            out += "\(d)".utf8
        } else {
            out += "null".utf8
        }
    }

    /// An integer's decimal digits.
    public static func writeInteger(_ i: Int64, into out: inout [UInt8]) {
        if i < 0 {
            guard i != .min else { out += String(i).utf8; return }
            out.append(UInt8(ascii: "-"))
        }
        var v = i.magnitude
        var buffer: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes: room for 20 digits
        withUnsafeMutableBytes(of: &buffer) { b in
            var n = 24
            repeat {
                n -= 1
                b[n] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            } while v > 0
            // As a typed buffer: a slice of raw bytes is appended through a generic iterator, byte by byte.
            out.append(contentsOf: UnsafeBufferPointer(start: b.baseAddress!.assumingMemoryBound(to: UInt8.self) + n, count: 24 - n))
        }
    }

    /// A JSON string: `"`, `\`, and control characters escaped (`\n`, `\r`, `\t`, else `\u00xx`); everything else,
    /// UTF-8 included, as it is.
    public static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        let utf8 = s.utf8
        if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += utf8
        } else {
            let hex = Array("0123456789abcdef".utf8)
            for b in utf8 {
                switch b {
                case UInt8(ascii: "\""): out += #"\""#.utf8
                case UInt8(ascii: "\\"): out += #"\\"#.utf8
                case UInt8(ascii: "\n"): out += #"\n"#.utf8
                case UInt8(ascii: "\r"): out += #"\r"#.utf8
                case UInt8(ascii: "\t"): out += #"\t"#.utf8
                case ..<0x20: out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 15)]]
                default: out.append(b)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Parsing

    /// Parses JSON text. Throws a `HumeError(.badRequest)` naming the offset of the first problem.
    public static func parse(_ bytes: some Collection<UInt8>, what: String = "JSON") throws -> JSON {
        var p = Parser(bytes: Array(bytes), what: what)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i != p.bytes.count { throw p.fail("unexpected text after the value") }
        return v
    }

    public static func parse(_ text: String, what: String = "JSON") throws -> JSON {
        try parse(Array(text.utf8), what: what)
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0
        let what: String

        init(bytes: [UInt8], what: String) {
            self.bytes = bytes
            self.what = what
        }

        func fail(_ why: String) -> HumeError {
            HumeError(.badRequest, "\(what) is not valid JSON: \(why) at byte \(i).")
        }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func value(depth: Int) throws -> JSON {
            guard depth < 64 else { throw fail("nesting deeper than 64 levels") }
            guard i < bytes.count else { throw fail("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var o: [String: JSON] = [:]
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                    let k = try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    skipSpace()
                    o[k] = try value(depth: depth + 1)
                    skipSpace()
                    guard i < bytes.count else { throw fail("unexpected end in object") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1
                var a: [JSON] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                while true {
                    skipSpace()
                    a.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw fail("unexpected end in array") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "t"):
                try literal("true"); return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false"); return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null"); return .null
            default:
                return .number(try number())
            }
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, bytes[i..<i + w.count].elementsEqual(w) else { throw fail("unknown literal") }
            i += w.count
        }

        mutating func number() throws -> Double {
            let start = i
            while i < bytes.count, (bytes[i] >= 0x30 && bytes[i] <= 0x39) || bytes[i] == UInt8(ascii: "-")
                || bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: ".") || bytes[i] == UInt8(ascii: "e")
                || bytes[i] == UInt8(ascii: "E") { i += 1 }
            guard i > start, let d = Double(String(decoding: bytes[start..<i], as: UTF8.self)) else {
                i = start
                throw fail("unexpected character")
            }
            return d
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= bytes.count else { throw fail("short \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                i += 1
                v <<= 4
                switch c {
                case 0x30...0x39: v |= UInt32(c - 0x30)
                case 0x41...0x46: v |= UInt32(c - 0x41 + 10)
                case 0x61...0x66: v |= UInt32(c - 0x61 + 10)
                default: throw fail("bad \\u escape")
                }
            }
            return v
        }

        mutating func string() throws -> String {
            i += 1  // opening quote
            var out: [UInt8] = []
            while true {
                guard i < bytes.count else { throw fail("unterminated string") }
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { break }
                if c < 0x20 { throw fail("control character in string") }
                if c != UInt8(ascii: "\\") { out.append(c); continue }
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        guard i + 2 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw fail("unpaired surrogate")
                        }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw fail("bad surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("invalid code point") }
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw fail("unknown escape")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
            return s
        }
    }
}
