import ArgumentParser
import Foundation
import HumeClient
import HumeCore

struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Read jobs (JSONL or text lines) on stdin, write results as JSONL on stdout as they finish.")

    @Option(help: "Comma-separated stages each job runs through.") var route = "noop"
    @Option(help: "Batch name for these jobs (default: stream-<time>).") var batch: String?
    @Option(help: "The broker's client endpoint.") var broker = Defaults.clients

    func run() throws {
        let batchName = batch ?? "stream-\(Int(Date().timeIntervalSince1970))"
        let stages = route.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
        let conn = try BrokerConnection(endpoint: broker, curve: try environmentCurve())
        let sub = BatchSubmitter(connection: conn, batch: batchName, route: stages, jobs: [])
        sub.keepsResults = false
        sub.inputClosed = false
        sub.chunkSize = 200
        // The line of each job without a result yet: memory follows what is unfinished, not the stream's length.
        var lineOf: [Int: Int] = [:]
        sub.onResult = { r in
            var o: [String: JSON] = ["line": JSON(lineOf.removeValue(forKey: r.index) ?? 0), "key": .string(r.key), "job": .number(Double(r.jobID)),
                                     "status": .string(r.status.name)]
            let (k, v) = JobLines.bodyField(r.body, status: r.status)
            o[k] = v
            emit(.object(o))
        }
        var pending: [UInt8] = []
        var lineNo = 0
        var eof = false
        var buf = [UInt8](repeating: 0, count: 65_536)
        let flags = fcntl(0, F_GETFL)
        _ = fcntl(0, F_SETFL, flags | O_NONBLOCK)
        func readInput() {
            while true {
                let n = read(0, &buf, buf.count)
                if n > 0 { pending.append(contentsOf: buf[0..<n]) ; continue }
                if n == 0 { eof = true }
                break
            }
            var specs: [JobSpec] = []
            var lines: [Int] = []
            while let nl = pending.firstIndex(of: 0x0A) ?? (eof && !pending.isEmpty ? pending.count : nil) {
                let line = String(decoding: pending[0..<nl], as: UTF8.self)
                pending.removeSubrange(0..<min(nl + 1, pending.count))
                lineNo += 1
                if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
                do {
                    specs.append(try JobLines.parse(line, batch: batchName, line: lineNo))
                    lines.append(lineNo)
                } catch let e as HumeError {
                    emit(.object(["line": JSON(lineNo), "status": .string("invalid"), "error": .string(e.message)]))
                } catch {}
            }
            for (index, line) in zip(sub.add(specs), lines) { lineOf[index] = line }
            if eof { sub.inputClosed = true }
        }
        // Read stdin only while the window has room: a fast producer is held back, never buffered without bound.
        while !(eof && sub.done) {
            let room = !eof && sub.unsent < 1000
            _ = try sub.run(timeoutMs: 200, extraFDs: room ? [0] : [], onFD: { _ in readInput() })
            if eof && sub.done { break }
        }
    }
}

/// Writes one JSON line to stdout and flushes, so pipelines see results as they finish.
func emit(_ j: JSON) {
    FileHandle.standardOutput.write(Data((j.serialized + "\n").utf8))
}
