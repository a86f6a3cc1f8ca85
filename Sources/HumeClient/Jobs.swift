import Foundation
import HumeCore

/// Turns the lines of a job file into job specs: a plain text line is a prompt; a line starting with `{` is a JSON
/// job `{"key"?, "prompt"?|"text"?, "priority"?, "deadline_ms"?, "data"?, ...params}`.
public enum JobLines {
    /// The key a line gets when it names none: stable across re-runs of the same batch and file.
    public static func derivedKey(batch: String, line: Int) -> String { "\(batch):\(line)" }

    /// The largest file a `data_file` line may name (an edit source image, say).
    public static let maxDataFileBytes = 16 << 20

    /// Parses one non-blank line (1-based `line` for keys and errors). A JSON line's payload is `data` (text),
    /// `data_b64` (binary, base64) or `data_file` (a file's bytes; a relative path is taken from `baseDirectory`),
    /// else its `prompt`.
    public static func parse(_ text: String, batch: String, line: Int, baseDirectory: String? = nil) throws -> JobSpec {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("{") else {
            guard text.utf8.count <= 65_536 else {
                throw HumeError(.tooLarge, "Line \(line) is \(text.utf8.count) bytes; a prompt may be at most 65536 bytes.")
            }
            return JobSpec(key: derivedKey(batch: batch, line: line), params: JSON.object(["prompt": .string(text)]).bytes,
                           data: Array(text.utf8))
        }
        let j = try JSON.parse(trimmed, what: "Line \(line)")
        guard var o = j.object else { throw HumeError(.badRequest, "Line \(line) must be a JSON object.") }
        var spec = JobSpec(key: derivedKey(batch: batch, line: line))
        if let k = o.removeValue(forKey: "key") {
            guard let s = k.string, !s.isEmpty, s.utf8.count <= 1000 else {
                throw HumeError(.badRequest, "Line \(line): \"key\" must be a non-empty string of at most 1000 bytes.")
            }
            spec.key = s
        }
        if let p = o.removeValue(forKey: "priority") {
            guard let n = p.int, (0...255).contains(n) else { throw HumeError(.badRequest, "Line \(line): \"priority\" must be an integer 0–255.") }
            spec.priority = UInt8(n)
        }
        if let d = o.removeValue(forKey: "deadline_ms") {
            guard let n = d.int, n >= 0 else { throw HumeError(.badRequest, "Line \(line): \"deadline_ms\" must be a Unix time in ms.") }
            spec.deadlineMs = UInt64(n)
        }
        if o["prompt"] == nil, let t = o.removeValue(forKey: "text") { o["prompt"] = t }
        if let d = o.removeValue(forKey: "data") {
            guard let s = d.string else { throw HumeError(.badRequest, "Line \(line): \"data\" must be a string.") }
            spec.data = Array(s.utf8)
        } else if let d = o.removeValue(forKey: "data_b64") {
            guard let s = d.string, let bytes = Data(base64Encoded: s) else {
                throw HumeError(.badRequest, "Line \(line): \"data_b64\" must be a base64 string.")
            }
            spec.data = [UInt8](bytes)
        } else if let f = o.removeValue(forKey: "data_file") {
            guard let path = f.string, !path.isEmpty else {
                throw HumeError(.badRequest, "Line \(line): \"data_file\" must be a file path.")
            }
            let full = path.hasPrefix("/") || baseDirectory == nil ? path : baseDirectory! + "/" + path
            guard let bytes = FileManager.default.contents(atPath: full) else {
                throw HumeError(.badRequest, "Line \(line): cannot read \"data_file\" \(full): \(UserFile.whyUnreadable(full)).")
            }
            guard bytes.count <= maxDataFileBytes else {
                throw HumeError(.tooLarge, "Line \(line): \"data_file\" \(full) is \(bytes.count) bytes; at most \(maxDataFileBytes) are allowed.")
            }
            spec.data = [UInt8](bytes)
        } else if let p = o["prompt"]?.string {
            spec.data = Array(p.utf8)
        }
        spec.params = JSON.object(o).bytes
        return spec
    }

    /// Every non-blank line of a job file (LF or CRLF) as a job, with its 1-based line number; lines that are not
    /// valid jobs come back separately with the reason, so one bad line never stops a batch.
    public static func parseFile(_ text: String, batch: String, baseDirectory: String? = nil)
        -> (jobs: [(line: Int, spec: JobSpec)], invalid: [(line: Int, message: String)]) {
        var jobs: [(line: Int, spec: JobSpec)] = []
        var invalid: [(line: Int, message: String)] = []
        var lineNo = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : String(raw)
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            do {
                jobs.append((lineNo, try parse(line, batch: batch, line: lineNo, baseDirectory: baseDirectory)))
            } catch let e as HumeError {
                invalid.append((lineNo, e.message))
            } catch {
                invalid.append((lineNo, "Line \(lineNo) is not a valid job: \(error)."))
            }
        }
        return (jobs, invalid)
    }

    /// A result body as JSON for a manifest: a JSON document stays one, UTF-8 text becomes a string, anything else
    /// base64 under `output_b64`.
    public static func bodyField(_ body: [UInt8], status: JobStatus) -> (String, JSON) {
        if status != .done { return ("error", .string(String(decoding: body, as: UTF8.self))) }
        if let first = body.first, first == UInt8(ascii: "{") || first == UInt8(ascii: "["), let j = try? JSON.parse(body) {
            return ("output", j)
        }
        if let s = String(validating: body, as: UTF8.self) { return ("output", .string(s)) }
        return ("output_b64", .string(Data(body).base64EncodedString()))
    }
}
