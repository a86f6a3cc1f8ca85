import Foundation
import HumeClient
import HumeCore
import Testing

/// `hume submit` reads its job file a line at a time and keeps result lines on disk until the end: the pieces that
/// keep a million-line batch in bounded memory.
@Suite("Streaming job files and manifests")
struct ManifestStreamingTests {
    func scratch(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "hume-manifest-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("LineReader: LF and CRLF, blank lines kept, a last line without LF, lines longer than its buffer")
    func lineReader() throws {
        let dir = scratch("lines")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let long = String(repeating: "x", count: 200_000)
        let text = "one\r\ntwo\n\n\(long)\nlast"
        try text.write(toFile: dir + "/f", atomically: true, encoding: .utf8)
        let r = try #require(LineReader(path: dir + "/f"))
        var lines: [String] = []
        var numbers: [Int] = []
        while let l = r.next() {
            lines.append(String(decoding: l, as: UTF8.self))
            numbers.append(r.lineNumber)
        }
        #expect(lines == ["one", "two", "", long, "last"])
        #expect(numbers == [1, 2, 3, 4, 5])
        #expect(LineReader(path: dir + "/missing") == nil)
        #expect(LineReader(path: dir) == nil, "a directory is not a job file")
        try "".write(toFile: dir + "/empty", atomically: true, encoding: .utf8)
        #expect(try #require(LineReader(path: dir + "/empty")).next() == nil)
    }

    @Test("ManifestSpill: entries written in any order come out in line order, a rewrite replaces, big entries survive")
    func spill() throws {
        let dir = scratch("spill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spill = try ManifestSpill(path: dir + "/m.spill")
        // 3,000 lines finishing in a scrambled order, one of them rewritten, one entry bigger than the read window.
        let n = 3_000
        var order = Array(1...n)
        var g = SystemRandomNumberGenerator()
        order.shuffle(using: &g)
        let big = String(repeating: "b", count: 3 << 20)
        for line in order { spill.write(line: line, line == 1_500 ? "{\"line\":1500,\"big\":\"\(big)\"}" : "{\"line\":\(line)}") }
        spill.write(line: 7, "{\"line\":7,\"again\":true}")
        #expect(spill.has(line: 7) && !spill.has(line: n + 1))
        let count = try spill.writeManifest(to: dir + "/manifest.jsonl")
        #expect(count == n)
        let rows = try String(contentsOfFile: dir + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(rows.map { $0["line"]?.int ?? 0 } == Array(1...n))
        #expect(rows[6]["again"]?.bool == true)
        #expect(rows[1_499]["big"]?.string == big)
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.spill"), "the scratch file is removed")
    }
}
