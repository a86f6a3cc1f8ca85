import Foundation
import HumeClient
import HumeCore
import HumeData
import HumeFleet
import HumeStages
import Testing

/// A PNG of any colour type and bit depth, written by hand (stored deflate blocks), so the tests do not depend on
/// the encoder under test. `rows` are the raw scanlines without filter bytes.
func handPNG(width: Int, height: Int, colorType: UInt8, bitDepth: UInt8, rows: [[UInt8]], palette: [UInt8]? = nil,
             transparency: [UInt8]? = nil) -> [UInt8] {
    func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
    func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let td = Array(type.utf8) + data
        return be32(data.count) + td + be32(Int(PNGCodec.crc32(td)))
    }
    var raw: [UInt8] = []
    for r in rows { raw.append(0); raw += r }
    var z: [UInt8] = [0x78, 0x01]
    var off = 0
    repeat {
        let n = min(65535, raw.count - off)
        let last: UInt8 = off + n == raw.count ? 1 : 0
        z += [last, UInt8(n & 255), UInt8(n >> 8), UInt8(~n & 255), UInt8((~n >> 8) & 255)]
        z += raw[off..<(off + n)]
        off += n
    } while off < raw.count
    var a: UInt32 = 1, b: UInt32 = 0
    for x in raw { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
    z += be32(Int(b << 16 | a))
    var png: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
    png += chunk("IHDR", be32(width) + be32(height) + [bitDepth, colorType, 0, 0, 0])
    if let palette { png += chunk("PLTE", palette) }
    if let transparency { png += chunk("tRNS", transparency) }
    png += chunk("IDAT", z) + chunk("IEND", [])
    return png
}

/// An 8-bit RGB picture: a filled disc of `colour` on white, `side` pixels square.
func discPNG(side: Int, colour: [UInt8], radius: Double) -> [UInt8] {
    let rows = (0..<side).map { y in
        (0..<side).flatMap { x -> [UInt8] in
            let dx = Double(x) - Double(side) / 2, dy = Double(y) - Double(side) / 2
            return dx * dx + dy * dy < radius * radius ? colour : [255, 255, 255]
        }
    }
    return handPNG(width: side, height: side, colorType: 2, bitDepth: 8, rows: rows)
}

/// A 128×128 8-bit RGB pattern (no two neighbouring pixels alike), as raw scanlines: a picture that a database stores
/// at 128² exactly as it is, so its pixels must come back unchanged.
func patternRows(_ seed: Int) -> [[UInt8]] {
    (0..<128).map { y in (0..<128).flatMap { x -> [UInt8] in [UInt8((x * 2 + seed) & 255), UInt8((y * 2 + 3 * seed) & 255), UInt8((x ^ y ^ seed) & 255)] } }
}

/// A folder of pictures in every colour type, plus the bad files `hume db` must refuse one sentence each.
struct PictureFolder {
    let dir: String
    /// Files that must be added, by relative path.
    var good: [String] = []
    /// Files that must be refused, by relative path (or the escaped form of a non-UTF-8 name).
    var bad: [String] = []

    init(_ dir: String) throws {
        self.dir = dir
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/fruit", withIntermediateDirectories: true)
        func put(_ name: String, _ bytes: [UInt8]) throws {
            guard fm.createFile(atPath: dir + "/" + name, contents: Data(bytes)) else { throw HumeError(.system, "cannot write \(name)") }
        }
        // RGB 8-bit, a red disc.
        try put("fruit/red-apple_1.png", discPNG(side: 40, colour: [220, 20, 30], radius: 16)); good.append("fruit/red-apple_1.png")
        // RGBA 16-bit: an orange disc with transparent surroundings (composited on white), 30×20 (padded square).
        let rgba16 = (0..<20).map { y in (0..<30).flatMap { x -> [UInt8] in
            let inside = (x - 15) * (x - 15) + (y - 10) * (y - 10) < 64
            return inside ? [0xF0, 0, 0x90, 0, 0x10, 0, 0xFF, 0xFF] : [0, 0, 0, 0, 0, 0, 0, 0]
        } }
        try put("fruit/orange.png", handPNG(width: 30, height: 20, colorType: 6, bitDepth: 16, rows: rgba16)); good.append("fruit/orange.png")
        // Gray 1-bit: a checkerboard.
        let gray1 = (0..<16).map { y in (0..<2).map { _ in UInt8(y % 2 == 0 ? 0xAA : 0x55) } }
        try put("checkerboard.png", handPNG(width: 16, height: 16, colorType: 0, bitDepth: 1, rows: gray1)); good.append("checkerboard.png")
        // Palette 4-bit with tRNS: green on transparent.
        let pal = (0..<24).map { y in (0..<12).map { x -> UInt8 in (y > 6 && y < 18 && x > 3 && x < 9) ? 0x11 : 0x00 } }
        try put("green-leaf.png", handPNG(width: 24, height: 24, colorType: 3, bitDepth: 4, rows: pal,
                                          palette: [0, 0, 0, 30, 160, 40], transparency: [0, 255])); good.append("green-leaf.png")
        // Gray + alpha 8-bit.
        let ga = (0..<10).map { y in (0..<10).flatMap { x -> [UInt8] in [UInt8(x * 20), UInt8(y < 5 ? 255 : 0)] } }
        try put("grey-moon.png", handPNG(width: 10, height: 10, colorType: 4, bitDepth: 8, rows: ga)); good.append("grey-moon.png")
        // RGB 8-bit at exactly 128×128: stored at 128² as it is.
        try put("pattern-tile.png", handPNG(width: 128, height: 128, colorType: 2, bitDepth: 8, rows: patternRows(1))); good.append("pattern-tile.png")
        // JPEGs (Tests/Fixtures/jpeg): a photo as it is, and one stored sideways with an EXIF orientation; a JPEG cut
        // short and a CMYK one are refused.
        let jpegs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/jpeg").standardizedFileURL
        func fixture(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: jpegs.appendingPathComponent(name))) }
        try put("red-blue-flag.jpg", try fixture("baseline.jpg")); good.append("red-blue-flag.jpg")
        try put("sideways-flag.JPEG", try fixture("orientation6.jpg")); good.append("sideways-flag.JPEG")
        try put("cut-flag.jpg", try fixture("truncated.jpg")); bad.append("cut-flag.jpg")
        try put("print-flag.jpg", try fixture("cmyk.jpg")); bad.append("print-flag.jpg")
        // Bad: corrupt, truncated, enormous, hostile, duplicate, no caption from the name, non-UTF-8 name; a text file.
        try put("corrupt.png", Array("this is not a png at all, just text".utf8)); bad.append("corrupt.png")
        let whole = discPNG(side: 40, colour: [10, 10, 200], radius: 12)
        try put("truncated.png", Array(whole.prefix(whole.count / 2))); bad.append("truncated.png")
        try put("enormous.png", handPNG(width: 30_000, height: 30_000, colorType: 0, bitDepth: 1, rows: [[0]])); bad.append("enormous.png")
        var hostile = whole
        hostile.replaceSubrange(33..<37, with: [0x7F, 0xFF, 0xFF, 0xF0])  // the first chunk after IHDR claims 2 GiB
        try put("hostile.png", hostile); bad.append("hostile.png")
        try put("fruit/red-apple_2.png", discPNG(side: 40, colour: [220, 20, 30], radius: 16)); bad.append("fruit/red-apple_2.png")
        try put("0042.png", discPNG(side: 40, colour: [90, 90, 90], radius: 10)); bad.append("0042.png")
        let badName: [UInt8] = Array("caf".utf8) + [0xE9] + Array(".png".utf8)
        let path = Array((dir + "/").utf8) + badName + [0]
        let fd = path.withUnsafeBufferPointer { p in p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o644) } }
        let bytes = discPNG(side: 20, colour: [1, 2, 3], radius: 5)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, bytes.count) }
        close(fd)
        bad.append("caf\\xE9.png")
        try put("notes.txt", Array("not a picture".utf8))
    }
}

/// A Hume home of its own for a test (its own databases), sharing the machine's model.
func isolatedHome(_ name: String) throws -> (home: String, env: [String: String]) {
    let home = tempDir(name)
    try FileManager.default.createDirectory(atPath: home + "/db", withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: home + "/models", withDestinationPath: testPaths.home.appendingPathComponent("models").path)
    return (home, ["HUME_HOME": home, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"])
}

/// Sizes of a database's files, to show that a refused import changed nothing.
func fileSizes(_ dir: String) -> [String: Int] {
    var out: [String: Int] = [:]
    for f in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
        out[f] = (try? FileManager.default.attributesOfItem(atPath: dir + "/" + f))?[.size] as? Int
    }
    return out
}

@Suite("hume db: databases of the user's own pictures", .serialized)
struct UserDatabaseTests {
    @Test("create from a folder of every PNG colour type and JPEGs (upright by their EXIF orientation): bad files get one sentence each and nothing else; info, list, remove",
          .timeLimit(.minutes(3)))
    func createAndInspect() throws {
        let (home, env) = try isolatedHome("db-create")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let pics = try PictureFolder(home + "/pictures")
        func db(_ args: [String]) throws -> (Int32, String, String) {
            try runProcess(humeExecutable(), ["db"] + args, environment: env, timeout: 120)
        }
        // What a create killed -9 leaves: its .tmp-NAME-PID folder. The next writer removes it; a live writer's stays.
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        for left in [".tmp-ghost-\(gone.processIdentifier)", ".tmp-alive-\(getpid())"] {
            try FileManager.default.createDirectory(atPath: home + "/db/" + left, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: home + "/db/" + left + "/images64.rgb", contents: Data(count: 1000))
        }
        let (rc, out, err) = try db(["create", "mine", "--images", pics.dir, "--source-name", "Test pictures", "--licence", "CC0-1.0"])
        #expect(rc == 0, "exit \(rc): \(err)")
        #expect(!FileManager.default.fileExists(atPath: home + "/db/.tmp-ghost-\(gone.processIdentifier)"), "an abandoned create is swept")
        #expect(FileManager.default.fileExists(atPath: home + "/db/.tmp-alive-\(getpid())"), "a live writer's folder is kept")
        #expect(out.contains("created mine: \(pics.good.count) pictures, \(pics.bad.count) refused"), "\(out)")
        let lines = err.split(separator: "\n").map(String.init)
        for name in pics.bad {
            let about = lines.filter { $0.contains(name) && !$0.contains("same picture as \(name)") }
            #expect(about.count == 1, "\(name) should be named in exactly one sentence: \(lines)")
            #expect(about.allSatisfy { $0.hasPrefix("hume db: ") && $0.hasSuffix(".") }, "\(about)")
        }
        #expect(lines.contains { $0.contains("enormous.png") && $0.contains("900000000 pixels") }, "\(lines)")
        #expect(lines.contains { $0.contains("red-apple_2.png is the same picture as fruit/red-apple_1.png") }, "\(lines)")
        #expect(lines.contains { $0.contains("not PNG") && $0.contains("notes.txt") }, "\(lines)")
        // What was stored: captions from file names, groups from folders, white background and square padding.
        let mine = try Database(named: "mine", root: URL(fileURLWithPath: home + "/db"))
        #expect(Set(mine.items.map(\.caption)) == ["checkerboard", "red apple", "orange", "green leaf", "grey moon", "pattern tile",
                                                   "red blue flag", "sideways flag"])
        // Both JPEGs stored upright: the green corner top left, red below it, blue on the right.
        for caption in ["red blue flag", "sideways flag"] {
            let flag = try mine.images(side: 64).copy(id: try #require(mine.items.first { $0.caption == caption }).id)
            func at(_ x: Int, _ y: Int) -> [Int] { flag[(y * 64 + x) * 3 ..< (y * 64 + x) * 3 + 3].map(Int.init) }
            #expect(at(8, 20)[1] > 150 && at(8, 20)[0] < 100, "\(caption): green top left, \(at(8, 20))")
            #expect(at(8, 42)[0] > 150 && at(8, 42)[2] < 100, "\(caption): red below it, \(at(8, 42))")
            #expect(at(53, 20)[2] > 150 && at(53, 20)[0] < 100, "\(caption): blue on the right, \(at(53, 20))")
        }
        #expect(lines.contains { $0.contains("print-flag.jpg") && $0.contains("CMYK") }, "\(lines)")
        #expect(mine.items.first { $0.caption == "orange" }?.group == "fruit" && mine.items.first { $0.caption == "green leaf" }?.group == "")
        let orange = try #require(mine.items.first { $0.caption == "orange" })
        let px = try mine.images(side: 64).copy(id: orange.id)
        #expect(Array(px[0..<3]) == [255, 255, 255], "transparent corners are white")
        let centre = (32 * 64 + 32) * 3
        #expect(abs(Int(px[centre]) - 240) <= 2 && abs(Int(px[centre + 1]) - 144) <= 2 && abs(Int(px[centre + 2]) - 16) <= 2, "16-bit samples are sRGB values, as viewers show them; the disc's colour: \(px[centre..<(centre + 3)])")
        #expect(try mine.images(side: 32).count == pics.good.count && mine.embeddings().count == pics.good.count)
        // At 128² every picture is there, and a 128×128 one comes back pixel for pixel.
        #expect(try mine.images(side: 128).count == pics.good.count)
        let tile = try #require(mine.items.first { $0.caption == "pattern tile" })
        #expect(try mine.images(side: 128).copy(id: tile.id) == patternRows(1).flatMap { $0 }, "the 128² store holds the picture as it was")
        #expect(mine.info?["sizes"]?.array?.compactMap(\.int) == [32, 64, 128])
        // info and list; the built-in databases of the machine are not in this home.
        let (_, info, _) = try db(["info", "mine"])
        #expect(info.contains("mine: \(pics.good.count) pictures, hume db") && info.contains("Test pictures (CC0-1.0): \(pics.good.count) images"), "\(info)")
        let (_, list, _) = try db(["list"])
        #expect(list.contains("mine") && list.contains("hume db"), "\(list)")
        // Bad commands: one sentence each, exit status 1, nothing changed.
        let before = fileSizes(home + "/db/mine")
        let (rc2, _, err2) = try db(["create", "mine", "--images", pics.dir])
        #expect(rc2 == 1 && err2.contains("A database named \"mine\" already exists"), "\(err2)")
        let (rc3, _, err3) = try db(["add", "nope", "--images", pics.dir])
        #expect(rc3 == 1 && err3.contains("Unknown database \"nope\""), "\(err3)")
        let (rc4, _, err4) = try db(["add", "mine", "--images", pics.dir, "--strict"])
        #expect(rc4 == 1 && err4.contains("Nothing was added") || err4.contains("nothing was added"), "\(err4)")
        let (rc5, _, err5) = try db(["create", "Bad Name", "--images", pics.dir])
        #expect(rc5 != 0 && err5.contains("is not a database name"), "\(err5)")
        // A captions file that does not name a picture: that picture is refused, by name.
        try FileManager.default.createDirectory(atPath: home + "/more", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: home + "/more/a.png", contents: Data(discPNG(side: 30, colour: [0, 200, 0], radius: 9)))
        _ = FileManager.default.createFile(atPath: home + "/more/b.png", contents: Data(discPNG(side: 30, colour: [0, 0, 250], radius: 9)))
        _ = FileManager.default.createFile(atPath: home + "/more/0-pattern.png",
                                           contents: Data(handPNG(width: 128, height: 128, colorType: 2, bitDepth: 8, rows: patternRows(7))))
        try "file,caption,keywords\na.png,\"a green ball, shiny\",ball;green\n0-pattern.png,another pattern,\n".write(toFile: home + "/captions.csv", atomically: true, encoding: .utf8)
        // What a kill -9 in the middle of an add leaves: bytes past the commit in the stores. Readers ignore them and
        // the next add cuts them off before appending.
        for (file, junk) in [("manifest.jsonl", "{\"id\": 99, \"capt"), ("images64.rgb", "xyz"), ("images128.rgb", "abcd"), ("embeddings.f32", "12345")] {
            let h = try #require(FileHandle(forWritingAtPath: home + "/db/mine/" + file))
            h.seekToEndOfFile()
            h.write(Data(junk.utf8))
            try h.close()
        }
        #expect(try Database(named: "mine", root: URL(fileURLWithPath: home + "/db")).count == pics.good.count)
        let (rc6, out6, err6) = try db(["add", "mine", "--images", home + "/more", "--captions", home + "/captions.csv"])
        #expect(rc6 == 0 && out6.contains("added to mine: 2 pictures, 1 refused"), "\(out6) \(err6)")
        #expect(err6.contains("b.png has no caption in \(home)/captions.csv"), "\(err6)")
        let grown = try Database(named: "mine", root: URL(fileURLWithPath: home + "/db"))
        #expect(grown.count == pics.good.count + 2 && grown.items.last?.caption == "a green ball, shiny" && grown.items.last?.keywords == ["ball", "green"])
        let added = try grown.images(side: 64).copy(id: grown.count - 1)
        #expect(added[(32 * 64 + 32) * 3 + 1] > 150 && added[0] == 255, "the new picture is stored at the new id, after the cut tail")
        #expect(try grown.embeddings().count == grown.count)
        let sizes = fileSizes(home + "/db/mine")
        #expect(sizes["images64.rgb"] == grown.count * 64 * 64 * 3 && sizes["images128.rgb"] == grown.count * 128 * 128 * 3
                && sizes["embeddings.f32"] == grown.count * 384 * 4, "\(sizes)")
        #expect(grown.items[pics.good.count].caption == "another pattern")
        #expect(try grown.images(side: 128).copy(id: pics.good.count) == patternRows(7).flatMap { $0 },
                "an added 128×128 picture comes back pixel for pixel, at its id, after the cut tail")
        #expect(!err6.contains("128×128"), "a database made with 128² stores gets no note about them: \(err6)")
        #expect(grown.generation?.number == 2 && before["index-1.faiss"] != nil && fileSizes(home + "/db/mine")["index-1.faiss"] == nil,
                "the old generation's index is gone once the new one is committed")
        // remove: mine goes; a built-in database is refused.
        let (rc7, _, _) = try db(["remove", "mine"])
        #expect(rc7 == 0 && !FileManager.default.fileExists(atPath: home + "/db/mine"))
        let (_, list2, _) = try db(["list"])
        #expect(!list2.contains("mine"))
    }

    @Test("the same thing at 16 and 256 pixels (an icon theme's sizes): the database records each size and a sample is drawn from the large one",
          .timeLimit(.minutes(3)))
    func largestOfAThing() throws {
        let (home, env) = try isolatedHome("db-sizes")
        defer { try? FileManager.default.removeItem(atPath: home) }
        for (folder, side) in [("16x16", 16), ("256x256", 256)] {
            try FileManager.default.createDirectory(atPath: home + "/icons/" + folder, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: home + "/icons/\(folder)/green-ball.png",
                                               contents: Data(discPNG(side: side, colour: [20, 160, 40], radius: Double(side) * 0.4)))
        }
        _ = FileManager.default.createFile(atPath: home + "/icons/16x16/red-box.png",
                                           contents: Data(handPNG(width: 16, height: 16, colorType: 2, bitDepth: 8,
                                                                  rows: (0..<16).map { _ in (0..<16).flatMap { _ in [200, 20, 20] } })))
        let (rc, _, err) = try runProcess(humeExecutable(), ["db", "create", "icons", "--images", home + "/icons"], environment: env, timeout: 120)
        #expect(rc == 0, "\(err)")
        let db = try Database(named: "icons", root: URL(fileURLWithPath: home + "/db"))
        let side = Dictionary(uniqueKeysWithValues: db.items.map { ($0.source, $0.side) })
        #expect(side == ["16x16/green-ball.png": 16, "256x256/green-ball.png": 256, "16x16/red-box.png": 16])
        let (irc, info, ierr) = try runProcess(humeExecutable(), ["db", "info", "icons", "--json"], environment: env, timeout: 60)
        #expect(irc == 0 && (try? JSON.parse(info))?["pictures_under_64"]?.int == 2, "\(info) \(ierr)")
        let large = try #require(db.items.first { $0.source == "256x256/green-ball.png" }?.id)
        let small = try #require(db.items.first { $0.source == "16x16/green-ball.png" }?.id)
        for seed in 1...3 {
            let out = home + "/ball-\(seed).png"
            let (g, _, gerr) = try runProcess(humeExecutable(), ["generate", "a green ball", "--database", "icons", "--seed", "\(seed)",
                                                                "--steps", "4", "--out", out], environment: env, timeout: 120)
            #expect(g == 0, "\(gerr)")
            let text = Dictionary(try PNGCodec.textChunks([UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))), uniquingKeysWith: { a, _ in a })
            let meta = try JSON.parse(Array(try #require(text["hume"]).utf8), what: "metadata")
            let neighbours = meta["neighbours"]?.array?.compactMap(\.int) ?? []
            #expect(neighbours.prefix(2).sorted() == [small, large].sorted(), "both balls are found: \(neighbours)")
            #expect(meta["used"]?.array?.compactMap(\.int) == [large], "seed \(seed): drawn from the 256-pixel ball alone: \(meta)")
        }
    }

    @Test("a running fleet generates from a database made with hume db, and sees a picture added to it without a restart",
          .timeLimit(.minutes(4)))
    func liveGrowth() throws {
        let (home, env) = try isolatedHome("db-live")
        defer { try? FileManager.default.removeItem(atPath: home) }
        let pics = try PictureFolder(home + "/pictures")
        let (rc, _, err) = try runProcess(humeExecutable(), ["db", "create", "live", "--images", pics.dir], environment: env, timeout: 120)
        #expect(rc == 0, "\(err)")
        let fleet = try LocalFleet(directory: home + "/fleet", environment: env)
        defer { fleet.stop() }
        for stage in ["embed", "retrieve", "denoise"] { try fleet.startWorker(stage) }
        try fleet.waitForWorkers(3, timeoutMs: 60_000)
        let pids = fleet.workers.map(\.pid)
        let conn = try BrokerConnection(endpoint: fleet.endpoints.clients)
        func generate(_ key: String, _ prompt: String) throws -> (ids: [Int], error: String?) {
            let params = JSON.object(["prompt": .string(prompt), "database": .string("live"), "seed": JSON(1), "steps": JSON(4)])
            let sub = BatchSubmitter(connection: conn, batch: key, route: ["embed", "retrieve", "denoise"],
                                     jobs: [JobSpec(key: key, params: params.bytes, data: [])])
            _ = try sub.run(timeoutMs: 60_000)
            let r = try #require(sub.results.first ?? nil, "no result for \(key)")
            guard r.status == .done else { return ([], String(decoding: r.body, as: UTF8.self)) }
            let image = try StageImage(decoding: r.body)
            return ((try metadata(image))["neighbours"]?.array?.compactMap(\.int) ?? [], nil)
        }
        let first = try generate("apple", "a red apple")
        #expect(first.error == nil, "\(first.error ?? "")")
        let db = try Database(named: "live", root: URL(fileURLWithPath: home + "/db"))
        #expect(first.ids.first.map { db.items[$0].caption } == "red apple", "\(first.ids)")
        // Add a picture with a caption nothing else matches; the next job must find it, from the same workers.
        try FileManager.default.createDirectory(atPath: home + "/new", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: home + "/new/purple-umbrella.png", contents: Data(discPNG(side: 48, colour: [120, 0, 160], radius: 20)))
        let (rc2, _, err2) = try runProcess(humeExecutable(), ["db", "add", "live", "--images", home + "/new"], environment: env, timeout: 120)
        #expect(rc2 == 0, "\(err2)")
        let newID = db.count
        let second = try generate("umbrella", "a purple umbrella")
        #expect(second.error == nil, "\(second.error ?? "")")
        #expect(second.ids.first == newID, "the added picture (id \(newID)) is the first neighbour: \(second.ids)")
        #expect(fleet.workers.map(\.pid) == pids && fleet.workers.allSatisfy(\.isRunning), "no worker restarted")
    }
}
