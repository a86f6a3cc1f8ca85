import Foundation
import HumeClient
import HumeCore
import Testing

@Suite("Job file lines")
struct JobLinesTests {
    @Test("a text line is a prompt with a key derived from the batch and line")
    func textLine() throws {
        let spec = try JobLines.parse("a red apple", batch: "b", line: 7)
        #expect(spec.key == "b:7")
        #expect(spec.data == Array("a red apple".utf8))
        #expect(try JSON.parse(spec.params)["prompt"]?.string == "a red apple")
    }

    @Test("a JSON line's payload comes from data, data_b64 or data_file; other fields are params")
    func payloads() throws {
        let bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0, 255, 13, 10]
        let b64 = try JobLines.parse(#"{"key": "k1", "data_b64": "\#(Data(bytes).base64EncodedString())", "text": "with a hat"}"#,
                                     batch: "b", line: 1)
        #expect(b64.key == "k1" && b64.data == bytes)
        let params = try JSON.parse(b64.params)
        #expect(params["prompt"]?.string == "with a hat" && params["data_b64"] == nil)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("joblines-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/src.png", contents: Data(bytes))
        let file = try JobLines.parse(#"{"data_file": "src.png", "prompt": "x"}"#, batch: "b", line: 2, baseDirectory: dir)
        #expect(file.data == bytes && file.key == "b:2")
    }

    @Test("bad payload fields are refused with one sentence naming the line")
    func badPayloads() {
        for (line, needle) in [(#"{"data_b64": "***"}"#, "base64"), (#"{"data_file": "/nonexistent/x.png"}"#, "cannot read \"data_file\" /nonexistent/x.png: there is no such file"),
                               (#"{"data_file": 3}"#, "file path"), (#"{"data": 3}"#, "must be a string")] {
            do {
                _ = try JobLines.parse(line, batch: "b", line: 4)
                Issue.record("\(line) was accepted")
            } catch let e as HumeError {
                #expect(e.message.hasPrefix("Line 4") && e.message.contains(needle), "\(e.message)")
            } catch { Issue.record("\(error)") }
        }
    }
}
