import Foundation
import HumeCore
@testable import HumeData
@testable import HumeSearch
import HumeStages
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
        #expect(PictureText.caption(fromFileName: "🐱.png") == "cat face")          // emoji read as their names
        #expect(PictureText.caption(fromFileName: "my_🐶_2.jpg") == "my dog face")
        // An emoji set's code-point names (OpenMoji, Twemoji, Noto's PNGs) are their emoji's names.
        #expect(PictureText.caption(fromFileName: "openmoji/svg/1F431.svg") == "cat face")
        #expect(PictureText.caption(fromFileName: "1f468-200d-1f4bb.svg") == "man technologist")
        #expect(PictureText.caption(fromFileName: "emoji_u1f44b_1f3fd.png") == "waving hand: medium skin tone")
        #expect(PictureText.caption(fromFileName: "2764-FE0F.svg") == "red heart")
        #expect(PictureText.caption(fromFileName: "2B50.svg") == "star")
        #expect(PictureText.caption(fromFileName: "2764.svg") == nil)       // a four-digit number is a number
        #expect(PictureText.caption(fromFileName: "E000.svg") == nil)       // no emoji has it
        #expect(PictureText.caption(fromFileName: "ufo.png") == "ufo")
        #expect(PictureText.caption(fromFileName: "0042.png") == nil)
        #expect(PictureText.caption(fromFileName: "___.png") == nil)
        // Names that say nothing of what the picture shows: code points of no emoji, a camera's, a phone's, a screenshot's.
        for name in ["E000.png", "F8FF-E001.svg", "IMG_1234.jpg", "IMG1234.JPG", "DSC01234.JPG", "DSCN0042.jpg",
                     "PXL_20231005_123456789.jpg", "P1000123.JPG", "Screenshot 2023-10-05 at 12.34.56.png", "x.png", "a-b-c.png", "untitled-3.png"] {
            #expect(PictureText.caption(fromFileName: name) == nil, "\(name)")
        }
        // Words that look like codes or cameras' names but say something, or stand beside a word that does.
        #expect(PictureText.caption(fromFileName: "bee.png") == "bee")
        #expect(PictureText.caption(fromFileName: "face_2.png") == "face")
        #expect(PictureText.caption(fromFileName: "1F600_grinning_face.svg") == "1F600 grinning face")
        #expect(PictureText.caption(fromFileName: "b2-bomber.png") == "b2 bomber")
        #expect(PictureText.caption(fromFileName: "IMG_1234 red fox.jpg") == "IMG 1234 red fox")
        #expect(PictureText.caption(fromFileName: "photo-camera.png") == "photo camera")
        #expect(PictureText.caption(fromFileName: "the-end.png") == "the end")
        // A file name that says nothing: the nearest folder that does.
        #expect(PictureText.caption(fromPath: "dogs/IMG_1234.jpg") == "dogs")
        #expect(PictureText.caption(fromPath: "trips/beach 2019/DSC01234.JPG") == "beach")
        #expect(PictureText.caption(fromPath: "red-fox/fox_2.png") == "fox", "the file name first")
        #expect(PictureText.caption(fromPath: "garden/DCIM/100APPLE/IMG_0001.JPG") == "garden", "storage folders are passed over")
        #expect(PictureText.caption(fromPath: "DCIM/Camera/PXL_20231005_123456789.jpg") == nil)
        #expect(PictureText.caption(fromPath: "E000.svg") == nil)
        #expect(PictureText.caption(fromPath: "1F600.svg") == "grinning face")
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

    @Test("the resize gives the same bits as a sample-by-sample Lanczos sum, shrinking and enlarging")
    func resizeMatchesReference() {
        /// The straightforward form: each output sample sums its taps in source order (rows, then columns).
        func reference(_ rgb: [UInt8], side: Int, to target: Int) -> [UInt8] {
            let wx = ImageResize.weights(from: side, to: target)
            var mid = [Float](repeating: 0, count: side * target * 3)
            for y in 0..<side {
                for (x, k) in wx.enumerated() {
                    var r: Float = 0, g: Float = 0, b: Float = 0
                    for (t, w) in k.w.enumerated() {
                        let p = (y * side + k.start + t) * 3
                        r += w * Float(rgb[p]); g += w * Float(rgb[p + 1]); b += w * Float(rgb[p + 2])
                    }
                    mid[(y * target + x) * 3] = r; mid[(y * target + x) * 3 + 1] = g; mid[(y * target + x) * 3 + 2] = b
                }
            }
            var out = [UInt8](repeating: 0, count: target * target * 3)
            for (y, k) in wx.enumerated() {
                for x in 0..<target {
                    for c in 0..<3 {
                        var v: Float = 0
                        for (t, w) in k.w.enumerated() { v += w * mid[((k.start + t) * target + x) * 3 + c] }
                        out[(y * target + x) * 3 + c] = UInt8(min(255, max(0, v.rounded())))
                    }
                }
            }
            return out
        }
        var rng = SystemRandomNumberGenerator()
        for side in [7, 40, 64, 100, 136, 300] {
            // Noise with hard edges: the kernel's negative lobes overshoot, so clamping is exercised too.
            let rgb = (0..<(side * side * 3)).map { i in (i / 3) % 11 < 5 ? UInt8.random(in: 0...255, using: &rng) : (i % 2 == 0 ? 0 : 255) }
            for target in [32, 64, 128] where target != side {
                #expect(ImageResize.lanczos(rgb, side: side, to: target) == reference(rgb, side: side, to: target), "\(side) → \(target)")
            }
            // All sides at once (one read of the square) give each side's own resize; a side equal to the square's is it.
            #expect(ImageResize.lanczos(rgb, side: side, to: [32, 64, 128, side]) == [32, 64, 128].map { reference(rgb, side: side, to: $0) } + [rgb])
        }
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

    @Test("hume db stores 32², 64² and 128², chunk by chunk; a failed add cuts every store back; one made before 128² stays without")
    func storesAtEverySide() throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory() + "hume-sides-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        func picture(_ folder: String, _ name: String, _ w: Int, _ h: Int, _ px: (Int, Int) -> [UInt8]) throws -> [UInt8] {
            let pixels = (0..<h).flatMap { y in (0..<w).flatMap { x in px(x, y) } }
            try fm.createDirectory(atPath: root.path + "/" + folder, withIntermediateDirectories: true)
            let png = try PNGCodec.encode(PixelImage(width: w, height: h, channels: 3, pixels: pixels))
            #expect(fm.createFile(atPath: root.path + "/" + folder + "/" + name, contents: Data(png)))
            return pixels
        }
        let pattern = try picture("in", "a-pattern.png", 128, 128) { x, y in [UInt8(x * 2 & 255), UInt8(y * 2 & 255), UInt8(x ^ y)] }
        _ = try picture("in", "b-pattern-again.png", 128, 128) { x, y in [UInt8(x * 2 & 255), UInt8(y * 2 & 255), UInt8(x ^ y)] }
        let wide = try picture("in", "c-wide.png", 40, 20) { x, _ in x < 20 ? [200, 10, 10] : [10, 10, 200] }
        let small = try picture("in", "d-small.png", 64, 64) { x, y in [UInt8(x * 4), UInt8(y * 4), 77] }
        var builder = DatabaseBuilder(root: root.appendingPathComponent("db"), model: "test") { texts in
            texts.flatMap { t in
                var v = [Float](repeating: 0, count: Database.dimension)
                v[t.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xffff } % Database.dimension] = 1
                return v
            }
        }
        builder.chunk = 1   // every picture its own chunk: the duplicate is found across chunks
        final class Calls: @unchecked Sendable {
            let lock = NSLock()
            var seen: [[Int]] = []
            func add(_ read: Int, _ total: Int) { lock.lock(); seen.append([read, total]); lock.unlock() }
        }
        let calls = Calls()
        builder.progress = { calls.add($0, $1) }
        let r = try builder.create(name: "mine", images: root.path + "/in", captions: nil, source: nil)
        #expect(r.added == 3 && r.refused.count == 1 && r.refused[0].contains("same picture as a-pattern.png") && r.sides == [32, 64, 128])
        #expect(calls.seen == [[1, 4], [2, 4], [3, 4], [4, 4]], "progress after every chunk, refused pictures counted as read")
        builder.progress = nil
        let dbRoot = root.appendingPathComponent("db")
        var db = try Database(named: "mine", root: dbRoot)
        #expect(db.items.map(\.caption) == ["a pattern", "c wide", "d small"])
        #expect(try db.images(side: 128).copy(id: 0) == pattern, "a 128×128 picture is stored at 128² as it is")
        #expect(try db.images(side: 64).copy(id: 2) == small, "a 64×64 one at 64²")
        let square = ImageResize.padSquare(wide, width: 40, height: 20)
        for side in Database.sides {
            #expect(try db.images(side: side).copy(id: 1) == ImageResize.lanczos(square.pixels, side: square.side, to: side),
                    "every side is resized from the padded square (\(side))")
        }
        #expect(db.info?["sizes"]?.array?.compactMap(\.int) == [32, 64, 128])
        func sizes() -> [Int] {
            (Database.sides.map { "images\($0).rgb" } + ["manifest.jsonl", "embeddings.f32"]).map {
                ((try? fm.attributesOfItem(atPath: db.directory.path + "/" + $0))?[.size] as? Int) ?? -1
            }
        }
        #expect(Array(sizes().prefix(3)) == Database.sides.map { 3 * $0 * $0 * 3 })

        // A strict add that refuses something writes the new pictures' tiles and then cuts them off again.
        let before = sizes()
        let apple = try picture("more", "apple.png", 30, 30) { x, y in (x - 15) * (x - 15) + (y - 15) * (y - 15) < 100 ? [220, 20, 30] : [255, 255, 255] }
        _ = try picture("more", "0042.png", 8, 8) { _, _ in [1, 2, 3] }
        var strict = builder
        strict.strict = true
        #expect(throws: HumeError.self) { try strict.add(name: "mine", images: root.path + "/more", captions: nil, source: nil) }
        #expect(sizes() == before, "nothing of the refused add is left in any store")

        // An add writes the new pictures at every side, past an interrupted add's tail, which it cuts first.
        let h = try #require(FileHandle(forWritingAtPath: db.directory.path + "/images128.rgb"))
        h.seekToEndOfFile()
        h.write(Data(count: 1000))
        try h.close()
        try fm.removeItem(atPath: root.path + "/more/0042.png")
        let r2 = try builder.add(name: "mine", images: root.path + "/more", captions: nil, source: nil)
        db = try Database(named: "mine", root: dbRoot)
        #expect(r2.added == 1 && r2.sides == [32, 64, 128] && db.count == 4)
        #expect(Array(sizes().prefix(3)) == Database.sides.map { 4 * $0 * $0 * 3 })
        let appleSquare = ImageResize.padSquare(apple, width: 30, height: 30)
        #expect(try db.images(side: 128).copy(id: 3) == ImageResize.lanczos(appleSquare.pixels, side: 30, to: 128))

        // A database made before 128² stores: it still opens for 32 and 64, 128 is one sentence, and an add keeps it so.
        try fm.removeItem(atPath: db.directory.path + "/images128.rgb")
        db = try Database(named: "mine", root: dbRoot)
        do {
            _ = try db.images(side: 128)
            Issue.record("a missing 128² store must be refused")
        } catch let e as HumeError {
            #expect(e.message == "The database \"mine\" has no 128×128 images (images128.rgb; it was built before there were any); remove it and create it again from its pictures (`hume db remove mine`, then `hume db create mine --images DIR`).")
        }
        let images = try DatabaseImages(db)
        #expect(try images.store(side: 64).count == 4)
        #expect(throws: StageInputError.self) { try images.store(side: 128) }
        _ = try picture("more2", "pear.png", 20, 30) { _, y in y < 15 ? [40, 200, 40] : [255, 255, 255] }
        let r3 = try builder.add(name: "mine", images: root.path + "/more2", captions: nil, source: nil)
        db = try Database(named: "mine", root: dbRoot)
        #expect(r3.added == 1 && r3.sides == [32, 64] && db.count == 5 && !db.hasImages(side: 128))
        #expect(try db.images(side: 32).count == 5 && db.images(side: 64).count == 5)
        #expect(db.info?["sizes"]?.array?.compactMap(\.int) == [32, 64])
    }

    @Test("SVG pictures are drawn by rsvg-convert into a 256-pixel box; a broken one, or any without the renderer, is one sentence",
          .timeLimit(.minutes(2)))
    func svgPictures() throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory() + "hume-svg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        let dir = root.path + "/in"
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func put(_ name: String, _ bytes: [UInt8]) { #expect(fm.createFile(atPath: dir + "/" + name, contents: Data(bytes))) }
        // Twice as wide as tall: a red disc on the left half, a blue bar on the right.
        let wide = """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 50" width="100" height="50">
              <circle cx="25" cy="25" r="20" fill="#dd1111"/><rect x="60" y="5" width="30" height="40" fill="#1111dd"/>
            </svg>
            """
        put("red-disc-blue-bar.svg", Array(wide.utf8))
        put("cut-short.svg", Array(wide.utf8.prefix(60)))
        put("not-really.svg", try PNGCodec.encode(PixelImage(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: 90, count: 192))))
        // The same drawing gzipped (.svgz), made by gzip(1) since Foundation has no zlib API on Linux.
        let gz = Process()
        gz.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gz.arguments = ["-c", dir + "/red-disc-blue-bar.svg"]
        let pipe = Pipe()
        gz.standardOutput = pipe
        try gz.run()
        let zipped = pipe.fileHandleForReading.readDataToEndOfFile()
        gz.waitUntilExit()
        put("green-square.svgz", [UInt8](zipped))
        var builder = DatabaseBuilder(root: root.appendingPathComponent("db"), model: "test") { texts in
            texts.flatMap { t in
                var v = [Float](repeating: 0, count: Database.dimension)
                v[t.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xffff } % Database.dimension] = 1
                return v
            }
        }
        #expect(builder.svg.executable != nil, "rsvg-convert (librsvg2-bin, installed by Ops/setup.sh) is needed")
        let r = try builder.create(name: "svgs", images: dir, captions: nil, source: nil)
        #expect(r.added == 2, "the SVG and the PNG named .svg: \(r.refused)")
        #expect(r.refused.count == 2 && r.refused.allSatisfy { $0.hasSuffix(".") }, "\(r.refused)")
        #expect(r.refused.contains { $0.hasPrefix("cut-short.svg is not an SVG picture Hume can draw: rsvg-convert says") }, "\(r.refused)")
        #expect(r.refused.contains { $0.hasPrefix("red-disc-blue-bar.svg is the same picture as green-square.svgz") }, "\(r.refused)")
        let db = try Database(named: "svgs", root: root.appendingPathComponent("db"))
        #expect(db.items.map(\.caption) == ["green square", "not really"])
        #expect(db.items.map(\.side) == [256, 8], "an SVG is drawn 256 pixels on its longer side")
        let tile = try db.images(side: 64).copy(id: 0)
        func at(_ x: Int, _ y: Int) -> [UInt8] { Array(tile[(y * 64 + x) * 3 ..< (y * 64 + x) * 3 + 3]) }
        // Drawn 256 × 128, padded to a square: white above and below, the disc at the left, the bar at the right.
        #expect(at(16, 32)[0] > 200 && at(16, 32)[1] < 60, "the disc is red: \(at(16, 32))")
        #expect(at(48, 32)[2] > 200 && at(48, 32)[0] < 60, "the bar is blue: \(at(48, 32))")
        #expect(at(32, 4) == [255, 255, 255] && at(32, 60) == [255, 255, 255], "transparency and padding are white")

        builder.svg = SVGRaster(executable: nil)
        let none = try builder.create(name: "svgs-without", images: dir, captions: nil, source: nil)
        #expect(none.added == 1 && none.refused.filter { $0.contains("install librsvg2-bin") }.count == 3, "\(none.refused)")
    }

    @Test("an emoji set's folder needs no captions file: code-point file names are their emoji's names")
    func codePointNames() throws {
        let root = URL(fileURLWithPath: NSTemporaryDirectory() + "hume-cp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        let dir = root.path + "/openmoji/svg"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func svg(_ fill: String) -> Data {
            Data("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><rect x=\"1\" y=\"1\" width=\"8\" height=\"8\" fill=\"\(fill)\"/></svg>".utf8)
        }
        for (name, fill) in [("1F7E5.svg", "#d00"), ("1F468-200D-1F4BB.svg", "#0d0"), ("E000.svg", "#00d")] {
            #expect(FileManager.default.createFile(atPath: dir + "/" + name, contents: svg(fill)))
        }
        #expect(FileManager.default.createFile(atPath: dir + "/emoji_u2b50.png",
                                               contents: Data(try PNGCodec.encode(PixelImage(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: 200, count: 192))))))
        let builder = DatabaseBuilder(root: root.appendingPathComponent("db"), model: "test") { texts in
            texts.flatMap { t in
                var v = [Float](repeating: 0, count: Database.dimension)
                v[t.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xffff } % Database.dimension] = 1
                return v
            }
        }
        let r = try builder.create(name: "emoji-set", images: root.path + "/openmoji", captions: nil, source: nil)
        #expect(r.added == 3, "\(r.refused)")
        // A code point no emoji has (OpenMoji's own pictures live in the private-use area) still says nothing.
        #expect(r.refused.count == 1 && r.refused[0].hasPrefix("svg/E000.svg has no caption"), "\(r.refused)")
        let db = try Database(named: "emoji-set", root: root.appendingPathComponent("db"))
        #expect(Set(db.items.map(\.caption)) == ["red square", "man technologist", "star"])
    }
}
