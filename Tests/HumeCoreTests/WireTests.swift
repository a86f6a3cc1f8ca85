import HumeCore
import Testing

/// Runs `body`, requires it to throw a `HumeError`, and returns that error.
func humeError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> HumeError? {
    do {
        try body()
    } catch let e as HumeError {
        return e
    } catch {
        Issue.record("threw \(error), not a HumeError", sourceLocation: sourceLocation)
        return nil
    }
    Issue.record("did not throw", sourceLocation: sourceLocation)
    return nil
}

/// True when `s` reads as one sentence: a capital or quote first, a full stop last, and no sentence break inside.
func isOneSentence(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first, let last = s.last, last == "." else { return false }
    guard first.properties.isUppercase || first == "\"" else { return false }
    let inner = Array(s.dropLast())
    for i in inner.indices.dropLast(2) where (inner[i] == "." || inner[i] == "!" || inner[i] == "?") && inner[i + 1] == " "
        && (inner[i + 2].isUppercase) {
        return false
    }
    return true
}

/// Little-endian bytes built by hand, to pin the layout PROTOCOL.md documents independently of ByteWriter.
func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

@Suite("Wire: message frames")
struct MessageFrameTests {
    @Test("every command survives frames() then decode with its header and records")
    func roundTripEveryCommand() throws {
        let header: JSON = .object(["req": JSON(7), "batch": .string("b1"), "route": .array([.string("embed"), .string("noop")])])
        let records: [[UInt8]] = [[], [0, 1, 2, 255], Array("hello".utf8)]
        for command in Command.allCases {
            let frames = Message(command, header: header, records: records).frames()
            #expect(frames[0] == Wire.signature)
            #expect(frames[1] == Array(command.rawValue.utf8))
            let m = try Message.decode(frames[...])
            #expect(m.command == command)
            #expect(m.header == header)
            #expect(m.records == records)
        }
    }

    @Test("a message with no records and an empty header decodes to an empty object header")
    func emptyHeader() throws {
        let m = try Message.decode([Wire.signature, Array("STATUS".utf8), []][...])
        #expect(m.command == .status)
        #expect(m.header == .object([:]))
        #expect(m.records.isEmpty)
        let m2 = try Message.decode(Message(.heartbeat).frames()[...])
        #expect(m2.header == .object([:]))
    }

    @Test("decoding works on a slice that does not start at index 0 (the ROUTER envelope removed)")
    func sliceAfterEnvelope() throws {
        let frames = [Array("peer-1".utf8)] + Message(.ready, header: .object(["stage": .string("noop")])).frames()
        let m = try Message.decode(frames[1...])
        #expect(m.command == .ready)
        #expect(m.header["stage"]?.string == "noop")
    }

    @Test("fewer than 3 frames is refused as bad_request naming the count")
    func tooFewFrames() {
        for n in 0..<3 {
            let frames = Array(Message(.status).frames().prefix(n))
            let e = humeError { _ = try Message.decode(frames[...]) }
            #expect(e?.code == .badRequest)
            #expect(e?.message.contains("at least 3 frames") == true)
            #expect(e?.message.contains("has \(n)") == true)
            #expect(e.map { isOneSentence($0.message) } == true)
        }
    }

    @Test("a wrong or short signature is refused as bad_request")
    func wrongSignature() {
        let bad: [[UInt8]] = [Array("HUMX".utf8) + [1], Array("HUME".utf8), Array("HUME".utf8) + [1, 0], [], Array("ZMTP\u{1}".utf8)]
        for sig in bad {
            let e = humeError { _ = try Message.decode([sig, Array("STATUS".utf8), Array("{}".utf8)][...]) }
            #expect(e?.code == .badRequest)
            #expect(e?.message.contains("signature") == true)
            #expect(e.map { isOneSentence($0.message) } == true)
        }
    }

    @Test("a signature with another version byte is refused as bad_version naming both versions")
    func wrongVersion() {
        for v: UInt8 in [0, 2, 255] {
            let e = humeError { _ = try Message.decode([Array("HUME".utf8) + [v], Array("STATUS".utf8), []][...]) }
            #expect(e?.code == .badVersion)
            #expect(e?.message.contains("version \(v)") == true)
            #expect(e?.message.contains("version \(Wire.version)") == true)
            #expect(e.map { isOneSentence($0.message) } == true)
        }
    }

    @Test("an unknown or non-UTF-8 command is refused as unknown, naming it")
    func unknownCommand() {
        for cmd: [UInt8] in [Array("FROB".utf8), Array("submit".utf8), [], [0xFF, 0xFE]] {
            let e = humeError { _ = try Message.decode([Wire.signature, cmd, []][...]) }
            #expect(e?.code == .unknown)
            #expect(e?.message.contains("Unknown command") == true)
            #expect(e.map { isOneSentence($0.message) } == true)
        }
        let e = humeError { _ = try Message.decode([Wire.signature, Array("FROB".utf8), []][...]) }
        #expect(e?.message.contains("\"FROB\"") == true)
    }

    @Test("a header that is not JSON is refused as bad_request naming the command and the byte")
    func headerNotJSON() {
        let e = humeError { _ = try Message.decode([Wire.signature, Array("SUBMIT".utf8), Array("{batch: 1}".utf8)][...]) }
        #expect(e?.code == .badRequest)
        #expect(e?.message.contains("SUBMIT header") == true)
        #expect(e?.message.contains("not valid JSON") == true)
        #expect(e?.message.contains("at byte 1") == true)
        #expect(e.map { isOneSentence($0.message) } == true)
    }

    @Test("a header that is JSON but not an object is refused as bad_request")
    func headerNotObject() {
        for text in ["[1,2]", "\"x\"", "42", "null", "true"] {
            let e = humeError { _ = try Message.decode([Wire.signature, Array("CANCEL".utf8), Array(text.utf8)][...]) }
            #expect(e?.code == .badRequest)
            #expect(e?.message == "The CANCEL header must be a JSON object.")
        }
    }

    @Test("a header over the size limit is refused as too_large before parsing")
    func headerTooLarge() {
        let big = Array("{\"x\":\"".utf8) + [UInt8](repeating: 0x61, count: Wire.maxHeaderBytes) + Array("\"}".utf8)
        let e = humeError { _ = try Message.decode([Wire.signature, Array("STATUS".utf8), big][...]) }
        #expect(e?.code == .tooLarge)
        #expect(e?.message.contains("\(Wire.maxHeaderBytes)") == true)
        #expect(e.map { isOneSentence($0.message) } == true)
        // Exactly at the limit is still accepted.
        let fits = Array("{\"x\":\"".utf8) + [UInt8](repeating: 0x61, count: Wire.maxHeaderBytes - 8) + Array("\"}".utf8)
        #expect(fits.count == Wire.maxHeaderBytes)
        #expect((try? Message.decode([Wire.signature, Array("STATUS".utf8), fits][...])) != nil)
    }

    @Test("more frames than the limit is refused as too_large")
    func tooManyFrames() {
        var frames = Message(.submit).frames()
        frames += [[UInt8]](repeating: [], count: Wire.maxFrames - frames.count + 1)
        let e = humeError { _ = try Message.decode(frames[...]) }
        #expect(e?.code == .tooLarge)
        #expect(e?.message.contains("at most \(Wire.maxFrames) frames") == true)
        frames.removeLast()
        #expect((try? Message.decode(frames[...]))?.records.count == Wire.maxFrames - 3)
    }
}

@Suite("Wire: record codecs")
struct RecordTests {
    static let binary: [UInt8] = (0...255).map { UInt8($0) }

    @Test("JobSpec round-trips, including extreme values, a non-ASCII key and every byte value")
    func jobSpecRoundTrip() throws {
        let specs = [
            JobSpec(key: ""),
            JobSpec(priority: 255, deadlineMs: .max, key: "ключ-🔑", params: Array("{\"steps\":4}".utf8), data: Self.binary),
            JobSpec(priority: 7, deadlineMs: 1_700_000_000_000, key: String(repeating: "k", count: Int(UInt16.max)),
                    params: [], data: [0]),
        ]
        for (i, s) in specs.enumerated() {
            #expect(try JobSpec.decode(s.encode(), index: i, maxBytes: 1 << 20) == s)
        }
    }

    @Test("JobSpec bytes follow the PROTOCOL.md layout (little-endian, u16 key, u32 blobs)")
    func jobSpecLayout() throws {
        let bytes: [UInt8] = [9] + le(0x0102_0304_0506_0708, 8) + le(2, 2) + Array("ab".utf8) + le(1, 4) + [0x7B]
            + le(3, 4) + [1, 2, 3]
        let s = try JobSpec.decode(bytes, index: 0, maxBytes: 100)
        #expect(s == JobSpec(priority: 9, deadlineMs: 0x0102_0304_0506_0708, key: "ab", params: [0x7B], data: [1, 2, 3]))
        #expect(s.encode() == bytes)
    }

    @Test("AckRecord round-trips and is 8 bytes of id then the duplicate flag")
    func ackRoundTrip() throws {
        for a in [AckRecord(jobID: 1, duplicate: false), AckRecord(jobID: .max, duplicate: true)] {
            #expect(try AckRecord.decode(a.encode()) == a)
        }
        #expect(AckRecord(jobID: 0x0102_0304_0506_0708, duplicate: true).encode() == [8, 7, 6, 5, 4, 3, 2, 1, 1])
    }

    @Test("ResultRecord round-trips for every status")
    func resultRoundTrip() throws {
        for st in JobStatus.allCases {
            let r = ResultRecord(jobID: 42, status: st, key: "batch#k", body: st == .done ? Self.binary : Array("It failed.".utf8))
            #expect(try ResultRecord.decode(r.encode()) == r)
        }
    }

    @Test("TaskRecord round-trips, including the maximum attempt and empty blobs")
    func taskRoundTrip() throws {
        let tasks = [
            TaskRecord(lease: 1, jobID: 2, attempt: 1, key: "k", params: [], input: []),
            TaskRecord(lease: .max, jobID: .max, attempt: .max, key: "é", params: Array("{}".utf8), input: Self.binary),
        ]
        for t in tasks { #expect(try TaskRecord.decode(t.encode()) == t) }
        let t = TaskRecord(lease: 5, jobID: 6, attempt: 0x0203, key: "", params: [], input: [])
        #expect(t.encode() == le(5, 8) + le(6, 8) + [3, 2] + le(0, 2) + le(0, 4) + le(0, 4))
    }

    @Test("DoneRecord round-trips for every outcome")
    func doneRoundTrip() throws {
        for o in [DoneRecord.Outcome.ok, .retryable, .permanent] {
            let d = DoneRecord(lease: 99, outcome: o, body: o == .ok ? Self.binary : Array("Bad input.".utf8))
            #expect(try DoneRecord.decode(d.encode(), index: 3, maxBytes: 1000) == d)
        }
    }

    @Test("records survive a whole message round trip")
    func recordsInsideMessage() throws {
        let specs = (0..<50).map { JobSpec(priority: UInt8($0), key: "k\($0)", data: [UInt8($0)]) }
        let frames = Message(.submit, header: .object(["batch": .string("b")]), records: specs.map { $0.encode() }).frames()
        let m = try Message.decode(frames[...])
        let back = try m.records.enumerated().map { try JobSpec.decode($1, index: $0, maxBytes: 10) }
        #expect(back == specs)
    }

    /// Cuts `full` at every length short of its end and checks the error names the field being read there.
    /// `layout` lists each field's name and encoded size in order.
    func checkTruncation(_ full: [UInt8], layout: [(String, Int)], what: String, decode: ([UInt8]) throws -> Void) {
        #expect(layout.reduce(0) { $0 + $1.1 } == full.count, "layout must cover the record")
        for cut in 0..<full.count {
            var end = 0
            var field = ""
            for (name, size) in layout {
                end += size
                if end > cut { field = name; break }
            }
            let e = humeError { try decode(Array(full.prefix(cut))) }
            #expect(e?.code == .badRequest, "cut at \(cut)")
            #expect(e?.message.hasPrefix("\(what) is truncated: field \(field) ") == true, "cut at \(cut): \(e?.message ?? "")")
            #expect(e?.message.contains("the frame has \(cut) bytes") == true)
            #expect(e.map { isOneSentence($0.message) } == true)
        }
    }

    @Test("a truncated JobSpec names the field it stopped in, for every cut")
    func jobSpecTruncated() {
        let s = JobSpec(priority: 1, deadlineMs: 2, key: "abc", params: [1, 2], data: [3, 4, 5])
        checkTruncation(s.encode(), layout: [("priority", 1), ("deadline", 8), ("key", 5), ("params", 6), ("data", 7)],
                        what: "SUBMIT record 4") { _ = try JobSpec.decode($0, index: 4, maxBytes: 100) }
    }

    @Test("a truncated AckRecord names the field it stopped in, for every cut")
    func ackTruncated() {
        checkTruncation(AckRecord(jobID: 3, duplicate: true).encode(), layout: [("job", 8), ("duplicate", 1)],
                        what: "ACK record") { _ = try AckRecord.decode($0) }
    }

    @Test("a truncated ResultRecord names the field it stopped in, for every cut")
    func resultTruncated() {
        let r = ResultRecord(jobID: 3, status: .done, key: "kk", body: [9, 9])
        checkTruncation(r.encode(), layout: [("job", 8), ("status", 1), ("key", 4), ("body", 6)],
                        what: "RESULT record") { _ = try ResultRecord.decode($0) }
    }

    @Test("a truncated TaskRecord names the field it stopped in, for every cut")
    func taskTruncated() {
        let t = TaskRecord(lease: 1, jobID: 2, attempt: 3, key: "k", params: [1], input: [2, 2])
        checkTruncation(t.encode(), layout: [("lease", 8), ("job", 8), ("attempt", 2), ("key", 3), ("params", 5), ("input", 6)],
                        what: "TASK record") { _ = try TaskRecord.decode($0) }
    }

    @Test("a truncated DoneRecord names the field it stopped in, for every cut")
    func doneTruncated() {
        let d = DoneRecord(lease: 1, outcome: .ok, body: [1, 2, 3])
        checkTruncation(d.encode(), layout: [("lease", 8), ("outcome", 1), ("body", 7)],
                        what: "DONE record 0") { _ = try DoneRecord.decode($0, index: 0, maxBytes: 100) }
    }

    @Test("trailing bytes after any record are refused as bad_request")
    func trailingBytes() {
        let cases: [(String, () throws -> Void)] = [
            ("SUBMIT record 2", { _ = try JobSpec.decode(JobSpec(key: "k").encode() + [0], index: 2, maxBytes: 10) }),
            ("ACK record", { _ = try AckRecord.decode(AckRecord(jobID: 1, duplicate: false).encode() + [0]) }),
            ("RESULT record", { _ = try ResultRecord.decode(ResultRecord(jobID: 1, status: .done, key: "", body: []).encode() + [0]) }),
            ("TASK record", { _ = try TaskRecord.decode(TaskRecord(lease: 1, jobID: 1, attempt: 1, key: "", params: [], input: []).encode() + [0]) }),
            ("DONE record 1", { _ = try DoneRecord.decode(DoneRecord(lease: 1, outcome: .ok, body: []).encode() + [0, 0, 0], index: 1, maxBytes: 10) }),
        ]
        for (what, decode) in cases {
            let e = humeError(decode)
            #expect(e?.code == .badRequest)
            #expect(e?.message.hasPrefix(what) == true)
            #expect(e?.message.contains("trailing") == true)
            #expect(e.map { isOneSentence($0.message) } == true)
        }
    }

    @Test("a blob over the limit is refused as too_large, even when its length claims more than the frame holds")
    func blobTooLarge() {
        let spec = JobSpec(key: "k", params: [1, 2], data: [UInt8](repeating: 0, count: 11))
        let e = humeError { _ = try JobSpec.decode(spec.encode(), index: 0, maxBytes: 10) }
        #expect(e?.code == .tooLarge)
        #expect(e?.message == "SUBMIT record 0: field data is 11 bytes, over the limit of 10 bytes.")
        #expect((try? JobSpec.decode(spec.encode(), index: 0, maxBytes: 11)) == spec)

        // A 4 GiB length in a 20-byte frame: the limit check comes first, so nothing tries to read or allocate it.
        let lying = [0] + le(0, 8) + le(0, 2) + le(0xFFFF_FFFF, 4) + le(0, 4)
        let e2 = humeError { _ = try JobSpec.decode(lying, index: 5, maxBytes: 32 << 20) }
        #expect(e2?.code == .tooLarge)
        #expect(e2?.message.contains("field params") == true)

        let done = DoneRecord(lease: 1, outcome: .ok, body: [UInt8](repeating: 1, count: 65))
        let e3 = humeError { _ = try DoneRecord.decode(done.encode(), index: 2, maxBytes: 64) }
        #expect(e3?.code == .tooLarge)
        #expect(e3?.message.hasPrefix("DONE record 2: field body") == true)
        #expect(e3.map { isOneSentence($0.message) } == true)
    }

    @Test("a key that is not valid UTF-8 is refused as bad_request naming the field")
    func invalidUTF8Key() {
        for badKey: [UInt8] in [[0xFF], [0xC3], [0x61, 0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80]] {
            let bytes = [0] + le(0, 8) + le(UInt64(badKey.count), 2) + badKey + le(0, 4) + le(0, 4)
            let e = humeError { _ = try JobSpec.decode(bytes, index: 1, maxBytes: 10) }
            #expect(e?.code == .badRequest)
            #expect(e?.message == "SUBMIT record 1: field key is not valid UTF-8.")
        }
        let task = le(1, 8) + le(1, 8) + le(1, 2) + le(1, 2) + [0x80] + le(0, 4) + le(0, 4)
        #expect(humeError { _ = try TaskRecord.decode(task) }?.message.contains("field key is not valid UTF-8") == true)
    }

    @Test("an unknown DONE outcome is refused as bad_request listing the allowed ones")
    func unknownOutcome() {
        for o: UInt8 in [3, 200, 255] {
            let bytes = le(1, 8) + [o] + le(0, 4)
            let e = humeError { _ = try DoneRecord.decode(bytes, index: 6, maxBytes: 10) }
            #expect(e?.code == .badRequest)
            #expect(e?.message.hasPrefix("DONE record 6 has outcome \(o);") == true)
            #expect(e?.message.contains("0 (ok), 1 (retryable), 2 (permanent)") == true)
            #expect(e.map { isOneSentence($0.message) } == true)
        }
    }

    @Test("an unknown RESULT status is refused as bad_request")
    func unknownStatus() {
        let bytes = le(1, 8) + [6] + le(0, 2) + le(0, 4)
        let e = humeError { _ = try ResultRecord.decode(bytes) }
        #expect(e?.code == .badRequest)
        #expect(e?.message == "RESULT record has unknown status 6.")
    }
}

@Suite("Stage names")
struct StageNameTests {
    @Test("lower-case letters, digits, '_' and '-' of 1 to 32 characters are stage names")
    func valid() {
        for s in ["embed", "noop1", "a", "stage_2-b", "0", String(repeating: "z", count: 32)] {
            #expect(validateStageName(s), "\(s)")
        }
    }

    @Test("empty, too long, upper-case, spaces, dots, slashes and non-ASCII are not stage names")
    func invalid() {
        for s in ["", String(repeating: "z", count: 33), "Embed", "em bed", "a.b", "a/b", "../x", "émbed", "noop\n", "a:b", "ｅ"] {
            #expect(!validateStageName(s), "\(s)")
        }
    }
}

@Suite("Wire: records packed in one buffer")
struct RecordBufferTests {
    @Test("records written in place read back as the same bytes as encode(); emptying keeps nothing of the old records")
    func packed() throws {
        var b = RecordBuffer()
        let tasks = (0..<300).map { i in
            TaskRecord(lease: UInt64(i) << 40 | 7, jobID: UInt64(i), attempt: UInt16(i % 5 + 1), key: "k-\(i)-é",
                       params: Array("{\"n\":\(i)}".utf8), input: [UInt8](repeating: UInt8(i & 0xFF), count: i % 40))
        }
        for t in tasks {
            b.append(size: TaskRecord.size(key: t.key, params: t.params, input: t.input)) {
                TaskRecord.write(to: &$0, lease: t.lease, jobID: t.jobID, attempt: t.attempt, key: t.key, params: t.params, input: t.input)
            }
        }
        #expect(b.count == tasks.count)
        #expect(b.arrays == tasks.map { $0.encode() })
        #expect(try b.arrays.map(TaskRecord.decode) == tasks)

        b.removeAll()
        #expect(b.isEmpty && b.arrays.isEmpty)
        let r = ResultRecord(jobID: 9, status: .done, key: "x", body: [1, 2, 3])
        b.append(size: ResultRecord.size(key: r.key, body: r.body)) {
            ResultRecord.write(to: &$0, jobID: r.jobID, status: r.status, key: r.key, body: r.body)
        }
        #expect(b.arrays == [r.encode()])
        #expect(RecordBuffer([[1], [], [2, 3]]).arrays == [[1], [], [2, 3]])
    }
}
