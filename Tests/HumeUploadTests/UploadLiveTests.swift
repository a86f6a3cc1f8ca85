import Foundation
import HumeClient
import HumeCore
import HumeFleet
import HumeUploadStage
import Testing

@Suite("Live: a real broker and a `hume worker upload` process", .serialized)
struct UploadLiveTests {
    @Test("jobs routed to upload carry stage images; results carry url/bytes/sha256; the files exist; bad jobs fail with one sentence",
          .timeLimit(.minutes(2)))
    func liveUpload() throws {
        let dir = tempDir("live")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fleet = try LocalFleet(directory: dir, brokerArguments: ["--stages", "upload"])
        defer { fleet.stop() }
        try fleet.startWorker("upload", arguments: ["--allow", "file://\(dir)/out", "--concurrency", "2"])
        try fleet.waitForWorkers(1)
        let dest = JSON.object(["dest": .string("file://\(dir)/out/live"), "prompt": .string("a cat")]).bytes
        var jobs = (0..<8).map { JobSpec(key: "live:\($0)", params: dest, data: stageImage(mask: $0 == 3, seed: $0)) }
        jobs.append(JobSpec(key: "live:corrupt", params: dest, data: Array("definitely not an image".utf8)))
        jobs.append(JobSpec(key: "live:outside", params: JSON.object(["dest": .string("file://\(dir)/elsewhere")]).bytes, data: stageImage()))
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)
        let sub = BatchSubmitter(connection: conn, batch: "live", route: ["upload"], jobs: jobs)
        #expect(try sub.run(timeoutMs: 60_000), "every job should finish")
        for i in 0..<8 {
            let result = try #require(sub.results[i])
            #expect(result.status == .done, "\(String(decoding: result.body, as: UTF8.self))")
            let r = try JSON.parse(result.body)
            let name = UploadStage.objectName(key: "live:\(i)", jobID: 0)
            #expect(r["url"]?.string == "file://\(dir)/out/live/\(name).png")
            let stored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/live/\(name).png")))
            #expect(r["bytes"]?.int == stored.count && r["sha256"]?.string == SHA256.hex(stored))
            #expect(try UploadStage.encode(stageImage(mask: i == 3, seed: i)).png == stored, "the worker stored the expected PNG")
            #expect((r["mask_url"] != nil) == (i == 3))
        }
        let corrupt = try #require(sub.results[8])
        #expect(corrupt.status == .failed)
        #expect(String(decoding: corrupt.body, as: UTF8.self)
                == "Stage upload refused the job: The upload input is neither a Hume stage image (HIMG) nor a PNG: it starts with the bytes 64 65 66 69; the upload stage takes the denoise or edit stage's output, or a PNG.")
        let outside = try #require(sub.results[9])
        #expect(outside.status == .failed)
        #expect(String(decoding: outside.body, as: UTF8.self).contains("outside this worker's allowed prefixes"))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/elsewhere"))
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out/live")
        #expect(files.count == 9, "8 images and 1 mask, no temporary files: \(files.sorted())")
    }
}
