import Foundation
import HumeCore
import HumeData
@testable import HumeSearch
import Testing

@Suite("hume db's inputs: captions, file names, resampling, generations")
struct DatabaseImportTests {
    @Test("a file name gives a caption without its extension, copy number or separators; digits alone give none")
    func captionsFromNames() {
        #expect(PictureText.caption(fromFileName: "red-fox_2.png") == "red fox")
        #expect(PictureText.caption(fromFileName: "animals/Snow_Leopard.PNG") == "Snow Leopard")
        #expect(PictureText.caption(fromFileName: "cat (3).png") == "cat")
        #expect(PictureText.caption(fromFileName: "rocket-02.png") == "rocket")
        #expect(PictureText.caption(fromFileName: "4x4-truck.png") == "4x4 truck")
        #expect(PictureText.caption(fromFileName: "0042.png") == nil)
        #expect(PictureText.caption(fromFileName: "___.png") == nil)
    }

    @Test("CSV captions: header by name, quoted commas and quotes, keywords split on ';', labels optional")
    func csv() throws {
        let t = try CaptionTable.csv("group,file,caption,keywords\r\nfruit,a.png,\"an apple, red\",apple; fruit\n,b.png,\"a \"\"quoted\"\" pear\",\n", source: "c.csv")
        #expect(t.text(for: "a.png") == PictureText(caption: "an apple, red", keywords: ["apple", "fruit"], group: "fruit"))
        #expect(t.text(for: "dir/b.png")?.caption == "a \"quoted\" pear", "found by file name when the path is not listed")
        #expect(t.text(for: "c.png") == nil)
        #expect(throws: HumeError.self) { try CaptionTable.csv("name,text\nx.png,y\n", source: "c.csv") }
        do { _ = try CaptionTable.csv("file,caption\nx.png,\n", source: "c.csv"); Issue.record("an empty caption must be refused") } catch let e as HumeError {
            #expect(e.message == "c.csv row 2 gives x.png no caption.")
        }
    }

    @Test("JSON Lines captions: keywords as a list or a string; a line without a caption is one sentence naming it")
    func jsonLines() throws {
        let t = try CaptionTable.jsonLines("{\"file\": \"a.png\", \"caption\": \"a dog\", \"keywords\": [\"dog\"], \"subgroup\": \"pets\"}\n\n{\"file\": \"b.png\", \"caption\": \"a cat\", \"keywords\": \"cat;pet\"}\n", source: "c.jsonl")
        #expect(t.text(for: "a.png") == PictureText(caption: "a dog", keywords: ["dog"], subgroup: "pets"))
        #expect(t.text(for: "b.png")?.keywords == ["cat", "pet"])
        do { _ = try CaptionTable.jsonLines("{\"file\": \"a.png\"}\n", source: "c.jsonl"); Issue.record("must throw") } catch let e as HumeError {
            #expect(e.message == "c.jsonl line 1 gives a.png no caption (a non-empty \"caption\" string).")
        }
    }

    @Test("padding is white and centred; Lanczos keeps a flat colour flat and a half-split picture split")
    func resampling() {
        let red: [UInt8] = Array(repeating: [200, 10, 10], count: 4 * 2).flatMap { $0 }
        let (sq, side) = ImageResize.padSquare(red, width: 4, height: 2)
        #expect(side == 4 && Array(sq[0..<3]) == [255, 255, 255] && Array(sq[(1 * 4 + 0) * 3 ..< (1 * 4 + 0) * 3 + 3]) == [200, 10, 10])
        let flat = [UInt8](repeating: 77, count: 100 * 100 * 3)
        #expect(ImageResize.lanczos(flat, side: 100, to: 64).allSatisfy { $0 == 77 })
        // Left half black, right half white, 128 → 64: the halves stay black and white away from the edge.
        let split = (0..<128).flatMap { _ in (0..<128).flatMap { x in [UInt8](repeating: x < 64 ? 0 : 255, count: 3) } }
        let small = ImageResize.lanczos(split, side: 128, to: 32)
        #expect(small[(16 * 32 + 4) * 3] == 0 && small[(16 * 32 + 28) * 3] == 255)
    }

    @Test("a generation file commits a count; stores may hold an uncommitted tail that readers do not see")
    func generationTail() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory() + "hume-gen-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let lines = (0..<3).map { "{\"id\": \($0), \"caption\": \"item \($0)\"}" }.joined(separator: "\n") + "\n{\"id\": 3, \"capt"
        try lines.write(to: dir.appendingPathComponent("manifest.jsonl"), atomically: true, encoding: .utf8)
        try Data(count: 3 * 3072 + 1000).write(to: dir.appendingPathComponent("images32.rgb"))
        let g = DatabaseGeneration(number: 4, count: 2, indexFile: "index-4.faiss", indexType: "flat", model: "m")
        try Data(g.json.bytes).write(to: dir.appendingPathComponent(DatabaseGeneration.fileName))
        let db = try Database(directory: dir)
        #expect(db.count == 2 && db.generation == g && db.indexPath.lastPathComponent == "index-4.faiss")
        #expect(try db.images(side: 32).count == 2, "the half-written tail is ignored")
        // Without a generation, the manifest must be whole.
        try FileManager.default.removeItem(at: dir.appendingPathComponent(DatabaseGeneration.fileName))
        #expect(throws: HumeError.self) { try Database(directory: dir) }
    }
}
