import Foundation
import HumeCore
import HumeData
import HumeFleet
import Testing

/// SHA-256 of a file by `sha256sum` (an implementation the project did not write).
func sha256sum(_ path: String) throws -> String {
    try runProcess("/usr/bin/sha256sum", [path]).1.split(separator: " ").first.map(String.init) ?? ""
}

@Suite("hume demo end to end: real broker and embed, retrieve, denoise, edit, upload workers", .serialized)
struct DemoTests {
    @Test("a small batch: every job done, PNGs carry how they were made, the manifest and gallery reference every output",
          .timeLimit(.minutes(3)))
    func smallBatch() throws {
        guard Set(Database.available(root: testPaths.databases)).isSuperset(of: ["emoji", "tuxpaint", Database.defaultName]) else {
            Issue.record("the image databases are not built; Ops/test.sh runs Ops/prepare-data.sh first")
            return
        }
        let dir = tempDir("demo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let prompts = dir + "/prompts.txt"
        try """
            a red apple
            un gâteau d'anniversaire 🎂

            {"prompt": "a penguin", "database": "tuxpaint", "k": 4}
            {"prompt": "broken
            a rocket
            """.write(toFile: prompts, atomically: true, encoding: .utf8)
        let out = dir + "/out"
        let (rc, stdout, stderr) = try hume(["demo", "--prompts", prompts, "--out", out, "--edits", "2", "--steps", "3", "--quiet"],
                                            timeout: 150)
        #expect(rc == 0, "\(stdout)\(stderr)")
        #expect(stderr.contains("line 5 of \(prompts) is skipped"), "the bad line is reported by number: \(stderr)")
        #expect(stderr.contains("6 of 6 jobs done"), "\(stderr)")

        // The manifest: one line per job, all done, each naming a PNG that exists with the sha256 it reports.
        let lines = try String(contentsOfFile: out + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(lines.count == 6)
        #expect(lines.allSatisfy { $0["status"]?.string == "done" })
        #expect(lines.filter { $0["kind"]?.string == "generate" }.compactMap { $0["line"]?.int } == [1, 2, 4, 6])
        #expect(lines.filter { $0["kind"]?.string == "edit" }.count == 2)
        let html = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
        for l in lines {
            let image = try #require(l["image"]?.string)
            let path = out + "/" + image
            #expect(try sha256sum(path) == l["sha256"]?.string, "\(image)")
            #expect(html.contains("src=\"\(image)\""), "the gallery shows \(image)")
            // The PNG's own text chunks say how it was made.
            let png = [UInt8](try #require(FileManager.default.contents(atPath: path)))
            let meta = Dictionary(try PNGCodec.textChunks(png), uniquingKeysWith: { a, _ in a })
            #expect(meta["Software"]?.hasPrefix("Hume") == true)
            #expect(meta["version"] != nil && meta["seed"] != nil && meta["database"] != nil)
            let decoded = try PNGCodec.decode(png)
            #expect(decoded.width == l["width"]?.int && decoded.height == l["height"]?.int)
            if l["kind"]?.string == "generate" {
                #expect(meta["prompt"] == l["text"]?.string, "the prompt, emoji and all (iTXt): \(meta)")
                #expect(meta["steps"] == "3")
                let ids = try JSON.parse(meta["neighbours"] ?? "[]").array?.compactMap(\.int) ?? []
                #expect(ids.count == Int(meta["k"] ?? "") && !ids.isEmpty)
                // The retriever's similarities reached the denoiser through the fleet, one per neighbour used.
                let similarities = try JSON.parse(meta["similarities"] ?? "[]").array?.compactMap(\.double) ?? []
                #expect(similarities.count == ids.count && similarities == similarities.sorted(by: >), "\(meta)")
                for id in ids {
                    let n = "neighbours/\(meta["database"]!)-\(id).png"
                    #expect(html.contains("src=\"\(n)\""), "the gallery shows neighbour \(n)")
                    #expect(FileManager.default.fileExists(atPath: out + "/" + n))
                }
            } else {
                #expect(meta["edit"] != nil && meta["mask_fraction"] != nil)
                let mask = try #require(l["mask"]?.string)
                #expect(html.contains("src=\"\(mask)\"") && FileManager.default.fileExists(atPath: out + "/" + mask))
                #expect(html.contains("src=\"sources/"), "the gallery shows the edit's source")
            }
        }
        #expect(lines.first { $0["line"]?.int == 4 }?["database"]?.string == "tuxpaint")
        // A line naming no database uses the default; the gallery credits every image source with its licence.
        #expect(lines.first { $0["line"]?.int == 1 }?["database"]?.string == Database.defaultName)
        #expect(html.contains("Image sources") && html.contains("OpenMoji (CC-BY-SA-4.0") && html.contains("Tux Paint stamps (GPL-2.0-or-later"),
                "the gallery's credits")
        // The contact sheet holds one tile per result at the default size (128), ten to a row, with 4-pixel gutters.
        let sheet = try PNGCodec.decode([UInt8](try #require(FileManager.default.contents(atPath: out + "/contact-sheet.png"))))
        #expect(sheet.width == 6 * 128 + 7 * 4 && sheet.height == 128 + 2 * 4)
        // The fleet was stopped: no process still holds the journal's directory.
        let leftovers = try String(contentsOfFile: out + "/.fleet/broker.log", encoding: .utf8)
        #expect(leftovers.contains("broker stopped"))
    }

    @Test("a line naming a database that does not exist fails alone with one sentence; the rest of the batch is done",
          .timeLimit(.minutes(3)))
    func badDatabaseLine() throws {
        guard Database.available(root: testPaths.databases).contains("emoji") else {
            Issue.record("the image databases are not built; Ops/test.sh runs Ops/prepare-data.sh first")
            return
        }
        let dir = tempDir("demo-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let prompts = dir + "/prompts.txt"
        try """
            a red apple
            {"prompt": "a cat", "database": "no-such-db"}
            a rocket
            """.write(toFile: prompts, atomically: true, encoding: .utf8)
        let out = dir + "/out"
        let (rc, stdout, stderr) = try hume(["demo", "--prompts", prompts, "--out", out, "--edits", "0", "--steps", "2", "--quiet"],
                                            timeout: 150)
        #expect(rc == 1, "a failed job makes the exit code 1: \(stdout)\(stderr)")
        #expect(stderr.contains("2 of 3 jobs done") && stderr.contains("1 failed"), "\(stderr)")
        let lines = try String(contentsOfFile: out + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").map { try JSON.parse(String($0)) }
        let bad = try #require(lines.first { $0["line"]?.int == 2 })
        #expect(bad["status"]?.string == "failed")
        let error = bad["error"]?.string ?? ""
        #expect(error.contains("no-such-db") && !error.contains("\n"), "one sentence naming the database: \(error)")
        #expect(lines.filter { $0["status"]?.string == "done" }.count == 2)
        let html = try String(contentsOfFile: out + "/index.html", encoding: .utf8)
        #expect(html.contains("no-such-db"), "the gallery shows the failure")
    }
}
