import HumeCore
import Testing

@Suite("JSON")
struct JSONTests {
    @Test("a nested value survives serialize then parse")
    func roundTrip() throws {
        let v: JSON = .object([
            "req": JSON(12), "name": .string("batch \"one\"\n"), "ok": .bool(true), "none": .null,
            "list": .array([JSON(1), .number(-2.5), .string(""), .array([]), .object([:])]),
            "nested": .object(["a": .object(["b": .array([.bool(false), .string("😀 ü \u{7}")])])]),
        ])
        #expect(try JSON.parse(v.serialized) == v)
        #expect(try JSON.parse(v.bytes) == v)
    }

    @Test("serialization is compact with sorted keys, so equal values give equal bytes")
    func deterministic() throws {
        let v = try JSON.parse(#" { "b" : 1 , "a" : [ true , false , null ] , "c" : { "z" : "x" , "y" : 2 } } "#)
        #expect(v.serialized == #"{"a":[true,false,null],"b":1,"c":{"y":2,"z":"x"}}"#)
        let w = try JSON.parse(#"{"c":{"y":2,"z":"x"},"a":[true,false,null],"b":1}"#)
        #expect(w.bytes == v.bytes)
    }

    @Test("every escape parses to its character")
    func escapes() throws {
        let v = try JSON.parse(#""q\" b\\ s\/ \b\f\n\r\t \u0041\u00e9\u20AC""#)
        #expect(v == .string("q\" b\\ s/ \u{8}\u{C}\n\r\t Aé€"))
    }

    @Test("control characters, quotes and backslashes are escaped on output and come back intact")
    func escapeOnOutput() throws {
        let raw = String(String.UnicodeScalarView((0..<0x20).map { Unicode.Scalar(UInt8($0)) })) + "\"\\/ end"
        let s = JSON.string(raw).serialized
        #expect(!s.utf8.contains { $0 < 0x20 }, "no raw control byte may reach the wire")
        #expect(s.contains(#"\u0001"#))
        #expect(s.contains(#"\u001f"#))
        #expect(s.contains(#"\n"#) && s.contains(#"\""#) && s.contains(#"\\"#))
        #expect(try JSON.parse(s) == .string(raw))
    }

    @Test("a surrogate pair decodes to one non-BMP scalar; broken pairs are refused")
    func surrogates() throws {
        #expect(try JSON.parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try JSON.parse(#""x\uD834\uDD1Ey""#) == .string("x𝄞y"))
        #expect(try JSON.parse(JSON.string("𝄞😀").serialized) == .string("𝄞😀"))

        let cases = [
            (#""\ud83d""#, "unpaired surrogate"),
            (#""\ud83dx""#, "unpaired surrogate"),
            (#""\ud83d\u0041""#, "bad surrogate pair"),
            (#""\ude00""#, "invalid code point"),
            (#""\u12""#, #"short \u escape"#),
            (#""\u12zz""#, #"bad \u escape"#),
        ]
        for (text, why) in cases {
            let e = humeError { _ = try JSON.parse(text) }
            #expect(e?.code == .badRequest, "\(text)")
            #expect(e?.message.contains(why) == true, "\(text): \(e?.message ?? "")")
        }
    }

    @Test("nesting up to 64 levels parses; deeper is refused with a clear error instead of overflowing the stack")
    func depth() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSON.parse(ok) }
        for depth in [65, 100_000] {
            let deep = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
            let e = humeError { _ = try JSON.parse(deep, what: "The header") }
            #expect(e?.code == .badRequest)
            #expect(e?.message == "The header is not valid JSON: nesting deeper than 64 levels at byte 64.")
        }
        let objects = String(repeating: #"{"a":"#, count: 70) + "1" + String(repeating: "}", count: 70)
        #expect(humeError { _ = try JSON.parse(objects) }?.message.contains("nesting deeper than 64 levels") == true)
    }

    @Test("numbers: integers, fractions, exponents and negatives parse; integral values print without a fraction")
    func numbers() throws {
        #expect(try JSON.parse("0") == .number(0))
        #expect(try JSON.parse("-17") == .number(-17))
        #expect(try JSON.parse("3.25") == .number(3.25))
        #expect(try JSON.parse("1e3") == .number(1000))
        #expect(try JSON.parse("-2.5E-2") == .number(-0.025))
        #expect(try JSON.parse("[1,2.5]") == .array([.number(1), .number(2.5)]))

        #expect(JSON(1000).serialized == "1000")
        #expect(JSON.number(-3).serialized == "-3")
        #expect(JSON.number(1_700_000_000_123).serialized == "1700000000123")
        #expect(JSON.number(.nan).serialized == "null")
        #expect(JSON.number(.infinity).serialized == "null")
        for d in [0.1, -2.5, 1e-7, 123_456_789.123, 1e20, -9.5e15, Double.greatestFiniteMagnitude] {
            #expect(try JSON.parse(JSON.number(d).serialized) == .number(d), "\(d)")
        }

        #expect(JSON.number(42).int == 42)
        #expect(JSON.number(-1).int == -1)
        #expect(JSON.number(3.5).int == nil)
        #expect(JSON.number(1e300).int == nil)
        #expect(JSON.string("3").int == nil)
    }

    @Test("malformed text is refused as bad_request naming the problem and its byte offset")
    func malformed() {
        let cases: [(String, String)] = [
            ("", "unexpected end at byte 0"),
            ("   ", "unexpected end at byte 3"),
            ("1 2", "unexpected text after the value at byte 2"),
            ("tru", "unknown literal at byte 0"),
            ("nul", "unknown literal at byte 0"),
            ("-", "unexpected character at byte 0"),
            ("[1,]", "unexpected character at byte 3"),
            ("[1 2]", "expected ',' or ']' at byte 3"),
            (#"{"a" 1}"#, "expected ':' at byte 5"),
            (#"{"a":1,}"#, "expected a string key at byte 7"),
            (#"{"a":1 "b":2}"#, "expected ',' or '}' at byte 7"),
            (#"{a:1}"#, "expected a string key at byte 1"),
            (#""abc"#, "unterminated string at byte 4"),
            ("\"a\nb\"", "control character in string at byte 3"),
            (#""\x""#, "unknown escape at byte 3"),
            ("[", "unexpected end at byte 1"),
            (#"{"a":1"#, "unexpected end in object at byte 6"),
        ]
        for (text, why) in cases {
            let e = humeError { _ = try JSON.parse(text, what: "Line 3") }
            #expect(e?.code == .badRequest, "\(text)")
            #expect(e?.message == "Line 3 is not valid JSON: \(why).", "\(text)")
        }
    }

    @Test("raw bytes that are not UTF-8 inside a string are refused")
    func invalidUTF8() {
        let e = humeError { _ = try JSON.parse([0x22, 0x61, 0xFF, 0x22] as [UInt8]) }
        #expect(e?.code == .badRequest)
        #expect(e?.message.contains("invalid UTF-8 in string") == true)
    }

    @Test("accessors return the value only for the matching case")
    func accessors() throws {
        let v = try JSON.parse(#"{"s":"x","n":2,"b":true,"a":[1],"o":{}}"#)
        #expect(v["s"]?.string == "x")
        #expect(v["n"]?.double == 2)
        #expect(v["b"]?.bool == true)
        #expect(v["a"]?.array == [.number(1)])
        #expect(v["o"]?.object == [:])
        #expect(v["missing"] == nil)
        #expect(v["s"]?.int == nil)
        #expect(v["n"]?.string == nil)
        #expect(JSON.array([.string("x")])["s"] == nil)
    }

    @Test("numbers are written as Swift's shortest round-trip text: six-decimal scores, integers, anything else")
    func numberText() throws {
        func written(_ d: Double) -> String {
            var out: [UInt8] = []
            JSON.writeNumber(d, into: &out)
            return String(decoding: out, as: UTF8.self)
        }
        var rng = SplitMix64(seed: 11)
        for _ in 0..<20_000 {
            // Scores as the retriever rounds them, over the whole fixed-point range and past its ends.
            let magnitude = [1e-5, 1e-4, 0.01, 1, 100, 1e5, 1e6, 1e7][Int(rng.next() % 8)]
            let raw = (rng.uniform() * 2 - 1) * magnitude
            let d = (raw * 1e6).rounded() / 1e6
            let expected = d.rounded() == d && abs(d) < 9.0e15 ? String(Int64(d)) : "\(d)"
            #expect(written(d) == expected, "\(raw)")
            #expect(written(raw) == (raw.rounded() == raw ? String(Int64(raw)) : "\(raw)"))
        }
        #expect(written(0.5) == "0.5" && written(-0.0001) == "-0.0001" && written(0.00001) == "\(0.00001)")
        #expect(written(1e-4 + 1e-6) == "0.000101" && written(999_999.999999) == "999999.999999")
        #expect(written(42) == "42" && written(-7) == "-7" && written(-0.0) == "0" && written(.nan) == "null")
        var ints: [UInt8] = []
        JSON.writeInteger(.min, into: &ints)
        JSON.writeInteger(.max, into: &ints)
        JSON.writeInteger(0, into: &ints)
        #expect(String(decoding: ints, as: UTF8.self) == "\(Int64.min)\(Int64.max)0")
    }
}
