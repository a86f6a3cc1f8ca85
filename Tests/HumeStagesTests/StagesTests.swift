import Foundation
import HumeCore
import HumeStages
import HumeData
import HumeDenoiseStage
import HumeDiffusion
import HumeEditStage
import HumeEmbed
import HumeEmbedStage
import HumeRetrieveStage
import HumeWorker
import Testing

/// Fails (never skips) when the model or the emoji database is missing.
func requireData() throws -> (model: Bool, db: Bool) {
    let model = FileManager.default.fileExists(atPath: testPaths.model.appendingPathComponent("model.safetensors").path)
    let db = FileManager.default.fileExists(atPath: testPaths.databases.appendingPathComponent("emoji/manifest.jsonl").path)
    return (model, db)
}

/// Whether both the model and the emoji database are there; records the issue (a failure, never a skip) when not.
func haveModelAndDatabase() throws -> Bool {
    let have = try requireData()
    if !(have.db && have.model) { Issue.record("The model or the emoji database is missing; run Ops/prepare-data.sh.") }
    return have.db && have.model
}

func task(_ params: String, input: [UInt8] = []) -> StageTask {
    StageTask(lease: 1, jobID: 1, attempt: 1, key: "k", params: Array(params.utf8), input: input)
}

/// The cosine of two outcomes' vectors (the embed output's first 1536 bytes), or nil unless both are `.ok`.
func cosine(_ a: StageOutcome, _ b: StageOutcome) -> Float? {
    guard case .ok(let x) = a, case .ok(let y) = b, let u = (try? EmbedOutput(decoding: x)), let v = (try? EmbedOutput(decoding: y)) else { return nil }
    return zip(u.vector, v.vector).reduce(0) { $0 + $1.0 * $1.1 }
}

func permanentMessage(_ outcome: StageOutcome) -> String? {
    if case .permanent(let m) = outcome { return m }
    return nil
}

@Suite("embed stage")
struct EmbedStageTests {
    // Batched GEMMs of other shapes round differently in the last bits, so equality is to float rounding.
    @Test("a batch gives the same vectors as one task at a time, and bad tasks fail alone")
    func batchEqualsSingle() throws {
        guard try requireData().model else {
            Issue.record("The MiniLM model is missing at \(testPaths.model.path); run Ops/prepare-data.sh (or Ops/fetch-model.sh).")
            return
        }
        let stage = try EmbedStage(modelDirectory: testPaths.model)
        let tasks = [task(#"{"prompt": "a smiling sun"}"#), task(#"{"prompt": ""}"#),
                     task(#"{"prompt": "x", "edit": "with sunglasses"}"#), task(#"{"seed": 1}"#),
                     task(#"{"prompt": "a red apple on a table"}"#)]
        let batch = try stage.run(tasks)
        #expect(batch.count == 5)
        for i in [0, 2, 4] {
            let single = try stage.run([tasks[i]])
            let c = cosine(single[0], batch[i])
            #expect(c != nil && c! > 0.99999, "task \(i): batch vs single cosine \(String(describing: c))")
            guard case .ok(let bytes) = batch[i], let out = (try? EmbedOutput(decoding: bytes)) else { Issue.record("task \(i) failed: \(batch[i])"); continue }
            #expect(out.vector.count == 384)
            #expect(bytes.count == 1536 + out.text.utf8.count)
            let v = out.vector
            #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        }
        #expect(permanentMessage(batch[1])?.contains("empty") == true)
        #expect(permanentMessage(batch[3])?.contains("no \"prompt\"") == true)
        // The edit text, not the prompt, is embedded for edit jobs.
        let edit = try stage.run([task(#"{"prompt": "with sunglasses"}"#)])
        let c = cosine(edit[0], batch[2])
        #expect(c != nil && c! > 0.99999, "edit text vs prompt cosine \(String(describing: c))")
        let other = cosine(batch[0], batch[2])
        #expect(other != nil && other! < 0.9, "different texts must give different vectors")
        // The text embedded follows the vector, so the retrieve stage can echo it.
        if case .ok(let bytes) = batch[2] { #expect((try? EmbedOutput(decoding: bytes))?.text == "with sunglasses") }
    }

    @Test("the job's data is the prompt; it wins over the prompt parameter, and non-UTF-8 data is refused")
    func dataIsThePrompt() throws {
        guard try requireData().model else {
            Issue.record("The MiniLM model is missing at \(testPaths.model.path); run Ops/prepare-data.sh (or Ops/fetch-model.sh).")
            return
        }
        let stage = try EmbedStage(modelDirectory: testPaths.model)
        let out = try stage.run([task("", input: Array("a smiling sun".utf8)), task(#"{"prompt": "a smiling sun"}"#),
                                 task(#"{"prompt": "a red apple"}"#, input: Array("a smiling sun".utf8)),
                                 task("", input: [0xff, 0xfe, 0x41]), task("", input: Array("   ".utf8))])
        let c = cosine(out[0], out[1])
        #expect(c != nil && c! > 0.99999, "data vs prompt parameter cosine \(String(describing: c))")
        guard case .ok(let bytes) = out[2] else { Issue.record("data with a prompt parameter failed: \(out[2])"); return }
        #expect((try? EmbedOutput(decoding: bytes))?.text == "a smiling sun")
        #expect(permanentMessage(out[3])?.contains("not UTF-8") == true, "\(out[3])")
        #expect(permanentMessage(out[4])?.contains("data is empty") == true, "\(out[4])")
    }

    @Test("an emoji in a prompt is read as its name: its vector is the name's, the retriever finds its picture, the text passed on is as sent")
    func emojiPrompts() throws {
        guard try haveModelAndDatabase() else { return }
        let stage = try EmbedStage(modelDirectory: testPaths.model)
        let prompts = ["🍓", "a 🐸", "a 🐱 wearing 👓", "🚀 flying to space"]
        let spelled = ["strawberry", "a frog", "a cat face wearing glasses", "rocket flying to space"]
        let out = try stage.run(prompts.map { task("", input: Array($0.utf8)) })
        let named = try stage.run(spelled.map { task("", input: Array($0.utf8)) })
        let retrieve = RetrieveStage(root: testPaths.databases)
        for i in prompts.indices {
            let c = cosine(out[i], named[i])
            #expect(c != nil && c! > 0.99999, "\(prompts[i]) against \(spelled[i]): cosine \(String(describing: c))")
            guard case .ok(let bytes) = out[i] else { Issue.record("\(prompts[i]): \(out[i])"); continue }
            // The text passed on is the one sent (the image records it); the retrieve stage spells it for its words.
            #expect((try? EmbedOutput(decoding: bytes))?.text == prompts[i])
            guard case .ok(let json) = try retrieve.run([task(#"{"database": "emoji", "k": 1}"#, input: bytes)])[0] else {
                Issue.record("retrieve failed for \(prompts[i])"); continue
            }
            let first = try Neighbours(decoding: json).captions.first
            #expect(first == ["strawberry", "frog", "cat face", "rocket"][i], "\(prompts[i]) found \(String(describing: first))")
        }
    }

    @Test("parameter validation names the problem")
    func badParams() {
        if case .failure(let e) = EmbedInput.text(fromParams: Array("not json".utf8)) { #expect(e.message.contains("JSON object")) } else { Issue.record("accepted non-JSON") }
        let long = String(repeating: "a", count: EmbedInput.maxTextBytes + 1)
        if case .failure(let e) = EmbedInput.text(fromParams: Array("{\"prompt\": \"\(long)\"}".utf8)) { #expect(e.message.contains("at most")) } else { Issue.record("accepted an over-long prompt") }
        if case .failure(let e) = EmbedInput.text(fromParams: Array(#"{"prompt": 3}"#.utf8)) { #expect(e.message.contains("not a string")) } else { Issue.record("accepted a number") }
    }
}

@Suite("stage image")
struct StageImageTests {
    @Test("round trip with a mask section; truncation and foreign data are refused")
    func roundTrip() throws {
        let image = StageImage(width: 2, height: 1, metadata: Array(#"{"a":1}"#.utf8), pixels: [1, 2, 3, 4, 5, 6],
                               sections: [.init(tag: "MASK", width: 2, height: 1, channels: 1, pixels: [0, 255])])
        let bytes = image.encoded()
        #expect(Array(bytes.prefix(4)) == Array("HIMG".utf8))
        #expect(try StageImage(decoding: bytes) == image)
        #expect(try StageImage(decoding: bytes).mask?.pixels == [0, 255])
        #expect(throws: StageImageError.self) { try StageImage(decoding: Array(bytes.dropLast(3))) }
        #expect(throws: StageImageError.self) { try StageImage(decoding: Array("\u{89}PNG....12345678".utf8)) }
    }
}

@Suite("denoise stage")
struct DenoiseStageTests {
    func retrieveJSON(_ ids: [Int]) -> [UInt8] {
        Array(#"{"database": "emoji", "ids": \#(ids), "scores": [], "captions": []}"#.utf8)
    }

    @Test("the same seed gives the same bytes; another seed gives another image", .timeLimit(.minutes(5)))
    func determinism() throws {
        guard try requireData().db else {
            Issue.record("The emoji database is missing under \(testPaths.databases.path); run Ops/prepare-data.sh (or Ops/build-db.sh emoji).")
            return
        }
        let stage = DenoiseStage(root: testPaths.databases)
        let ids = [0, 2, 5, 9, 12, 19]
        let a = try stage.run([task(#"{"prompt": "face", "k": 6, "seed": 7, "steps": 6}"#, input: retrieveJSON(ids))])
        let b = try stage.run([task(#"{"prompt": "face", "k": 6, "seed": 7, "steps": 6}"#, input: retrieveJSON(ids))])
        let c = try stage.run([task(#"{"prompt": "face", "k": 6, "seed": 8, "steps": 6}"#, input: retrieveJSON(ids))])
        guard case .ok(let x) = a[0], case .ok(let z) = c[0] else { Issue.record("generation failed: \(a) \(c)"); return }
        #expect(a == b)
        #expect(x != z)
        let image = try StageImage(decoding: x)
        let side = Generator.defaultSize
        #expect(image.width == side && image.height == side && image.pixels.count == side * side * 3)
        let meta = try JSONSerialization.jsonObject(with: Data(image.metadata)) as? [String: Any]
        #expect(meta?["neighbours"] as? [Int] == ids)
        #expect(meta?["seed"] as? Int == 7)
        // Guidance over a background sample changes the result and records the background ids.
        let g = try stage.run([task(#"{"prompt": "face", "k": 6, "seed": 7, "steps": 6, "guidance": 4}"#, input: retrieveJSON(ids))])
        guard case .ok(let gy) = g[0] else { Issue.record("guided generation failed: \(g)"); return }
        let gm = try JSONSerialization.jsonObject(with: Data(StageImage(decoding: gy).metadata)) as? [String: Any]
        #expect((gm?["background"] as? [Int])?.count == 6)
        // The rank prior is recorded, and a different focus is a different sample.
        #expect(meta?["focus"] as? Double == GenerateParameters.defaultFocus)
        let f = try stage.run([task(#"{"prompt": "face", "k": 6, "seed": 7, "steps": 6, "focus": 0.7}"#, input: retrieveJSON(ids))])
        guard case .ok(let fy) = f[0] else { Issue.record("focus 0 generation failed: \(f)"); return }
        #expect(fy != x)
        // The consensus bonus is recorded with the label it went to (ids 0…12 are face-smiling, 19 face-affection), and
        // another strength is another sample.
        #expect(meta?["consensus"] as? Double == GenerateParameters.defaultConsensus)
        let other = GenerateParameters.defaultConsensus == 4 ? 1 : 4
        let s = try stage.run([task(#"{"prompt": "face", "k": 6, "seed": 7, "steps": 6, "consensus": \#(other)}"#, input: retrieveJSON(ids))])
        guard case .ok(let sy) = s[0] else { Issue.record("consensus generation failed: \(s)"); return }
        let sm = try JSONSerialization.jsonObject(with: Data(StageImage(decoding: sy).metadata)) as? [String: Any]
        #expect(sm?["consensus"] as? Double == Double(other))
        #expect(sm?["consensus_label"] as? String == "face-smiling")
        #expect(sy != x)
    }

    @Test("128² is the 64² sample refined: deterministic under a seed, the same layout, sharper than its upsampling", .timeLimit(.minutes(5)))
    func coarseToFine() throws {
        guard try requireData().db else {
            Issue.record("The emoji database is missing under \(testPaths.databases.path); run Ops/prepare-data.sh (or Ops/build-db.sh emoji).")
            return
        }
        let stage = DenoiseStage(root: testPaths.databases)
        let ids = [0, 2, 5, 9]
        let input = Array(#"{"database": "emoji", "ids": [0, 2, 5, 9], "scores": [0.8, 0.79, 0.6, 0.5], "captions": []}"#.utf8)
        func run(_ params: String) throws -> StageImage {
            let out = try stage.run([task(params, input: input)])
            guard case .ok(let b) = out[0] else { throw HumeError(.system, "generation failed: \(out[0])") }
            return try StageImage(decoding: b)
        }
        let a = try run(#"{"k": 4, "seed": 3, "size": 128}"#)
        let b = try run(#"{"k": 4, "seed": 3, "size": 128}"#)
        let other = try run(#"{"k": 4, "seed": 4, "size": 128}"#)
        let small = try run(#"{"k": 4, "seed": 3, "size": 64}"#)
        #expect(a.width == 128 && a.height == 128 && a.pixels.count == 128 * 128 * 3)
        #expect(a == b, "the same job gives the same bytes")
        #expect(a.pixels != other.pixels)
        let meta = try JSONSerialization.jsonObject(with: Data(a.metadata)) as? [String: Any]
        #expect((meta?["refine"] as? [String: Any])?["from_size"] as? Int == 64)
        #expect(meta?["neighbours"] as? [Int] == ids)
        // The layout is the 64² sample's: box-downsampled, the 128² image is close to it.
        func box(_ px: [UInt8], _ side: Int) -> [Double] {
            let h = side / 2
            return (0..<(h * h * 3)).map { i in
                let c = i % 3, p = i / 3, x = p % h, y = p / h
                var s = 0
                for dy in 0..<2 { for dx in 0..<2 { s += Int(px[((2 * y + dy) * side + 2 * x + dx) * 3 + c]) } }
                return Double(s) / 4 / 255
            }
        }
        func rmse(_ u: [Double], _ v: [Double]) -> Double { (zip(u, v).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Double(u.count)).squareRoot() }
        let smallValues = small.pixels.map { Double($0) / 255 }
        #expect(rmse(box(a.pixels, 128), smallValues) < 0.08, "the refined image keeps the coarse layout")
        // And it has detail its bilinear upsampling lacks: more energy in pixel-to-pixel differences (squared, since
        // interpolation keeps a row's total variation but halves a step's squared energy by splitting it in two).
        let up = try RGBImage(width: 64, height: 64, rgb8: small.pixels).upsampled2x().rgb8()
        func edges(_ px: [UInt8]) -> Double {
            var s = 0.0
            for y in 0..<128 { for x in 0..<127 { for c in 0..<3 { let d = Double(px[(y * 128 + x + 1) * 3 + c]) - Double(px[(y * 128 + x) * 3 + c]); s += d * d } } }
            return s
        }
        #expect(edges(a.pixels) > 1.3 * edges(up), "refined \(edges(a.pixels)) vs upsampled \(edges(up))")
    }

    @Test("bad inputs fail permanently with a clear sentence")
    func badInputs() throws {
        guard try requireData().db else {
            Issue.record("The emoji database is missing under \(testPaths.databases.path); run Ops/prepare-data.sh (or Ops/build-db.sh emoji).")
            return
        }
        let stage = DenoiseStage(root: testPaths.databases)
        let cases: [(StageTask, String)] = [
            (task(#"{"prompt": "x"}"#, input: retrieveJSON([])), "no neighbours"),
            (task(#"{"prompt": "x"}"#, input: retrieveJSON([1, 999_999])), "999999 is not in the database"),
            (task(#"{"prompt": "x", "size": 48}"#, input: retrieveJSON([1])), "The \"size\" parameter is 48; it must be 32, 64 or 128."),
            (task(#"{"prompt": "x", "size": 256}"#, input: retrieveJSON([1])), "it must be 32, 64 or 128"),
            (task(#"{"prompt": "x", "size": 128, "refine_steps": 0}"#, input: retrieveJSON([1])), "\"refine_steps\" parameter is 0"),
            (task(#"{"prompt": "x", "size": 128, "refine_from": 0}"#, input: retrieveJSON([1])), "\"refine_from\" parameter is 0"),
            (task(#"{"prompt": "x"}"#, input: Array("\u{89}PNG".utf8)), "not the retrieve stage's JSON"),
            (task(#"{"prompt": "x", "database": "nope"}"#, input: Array(#"{"ids": [1]}"#.utf8)), "Unknown database \"nope\""),
            (task(#"{"prompt": "x", "guidance": -1}"#, input: retrieveJSON([1])), "greater than 0"),
            (task(#"{"prompt": "x", "focus": "high"}"#, input: retrieveJSON([1])), "\"focus\" parameter"),
            (task(#"{"prompt": "x", "focus": 11}"#, input: retrieveJSON([1])), "from 0 to 10"),
            (task(#"{"prompt": "x", "consensus": -1}"#, input: retrieveJSON([1])), "\"consensus\" parameter is -1; it must be a number from 0 to 10"),
            (task(#"{"prompt": "x", "consensus": "strong"}"#, input: retrieveJSON([1])), "\"consensus\" parameter"),
        ]
        for (t, expected) in cases {
            let out = try stage.run([t])
            let message = permanentMessage(out[0])
            #expect(message?.contains(expected) == true, "expected a permanent failure mentioning \(expected), got \(out[0])")
        }
    }

    @Test("a non-PNG source is refused in one sentence")
    func nonPNG() {
        #expect(throws: HumeError.self) { try PNGCodec.decode(Array("GIF89a....".utf8)) }
        do { _ = try PNGCodec.decode(Array("GIF89a....".utf8)) } catch let e as HumeError {
            #expect(e.message.contains("not a PNG"))
        } catch { Issue.record("wrong error \(error)") }
    }

    @Test("PNG encode/decode round trip; a stage image's PNG carries its metadata JSON, non-ASCII text included")
    func pngRoundTrip() throws {
        let pixels: [UInt8] = (0..<(4 * 3 * 3)).map { UInt8($0 * 7 % 256) }
        let png = try PNGCodec.encode(PixelImage(width: 4, height: 3, channels: 3, pixels: pixels))
        let back = try PNGCodec.decode(png)
        #expect(back.width == 4 && back.height == 3 && back.pixels == pixels)
        let meta = try JSONSerialization.data(withJSONObject: ["prompt": "café 😀 \"quoted\"", "k": 4], options: [.sortedKeys])
        let image = StageImage(width: 4, height: 3, metadata: [UInt8](meta), pixels: pixels)
        let withText = try image.png()
        #expect(try PNGCodec.decode(withText).pixels == pixels)
        let text = try #require(try StageImage.metadata(fromPNG: withText))
        #expect(text.allSatisfy { $0 < 0x80 }, "tEXt is Latin-1: the JSON is written in ASCII")
        let parsed = try JSONSerialization.jsonObject(with: Data(text)) as? [String: Any]
        #expect(parsed?["prompt"] as? String == "café 😀 \"quoted\"")
    }
}

/// Database image `id` at 32² as a diffusion image (what the edit stage hands the editor).
func db32(_ db: DatabaseImages, _ id: Int) throws -> RGBImage {
    try RGBImage(width: 32, height: 32, rgb8: db.rgb8(id, side: 32))
}

@Suite("editor")
struct EditorTests {
    @Test("pixels outside the mask are exactly the source's at every edit size; the mask is neither empty nor everything",
          arguments: [32, 64, 128])
    func pinsOutsideMask(side: Int) throws {
        guard try requireData().db else {
            Issue.record("The emoji database is missing under \(testPaths.databases.path); run Ops/prepare-data.sh (or Ops/build-db.sh emoji).")
            return
        }
        let db = try DatabaseImages(named: "emoji", root: testPaths.databases)
        var editor = Editor()
        editor.side = side
        let image = { (id: Int) in try RGBImage(width: side, height: side, rgb8: db.rgb8(id, side: side)) }
        let source = try image(0)   // grinning face
        let r = try editor.edit(source: source, sourceIDs: [0, 2, 5, 12, 19, 20], editIDs: [70, 71, 72, 73], image: image, seed: 3)
        let covered = r.mask.filter { $0 == 255 }.count
        #expect(covered > 0 && covered < side * side)
        let before = source.rgb8(), after = r.image.rgb8()
        var changedInside = 0
        for p in 0..<(side * side) {
            let same = (0..<3).allSatisfy { before[3 * p + $0] == after[3 * p + $0] }
            if r.mask[p] == 0 { #expect(same, "pixel \(p) outside the mask changed") } else if !same { changedInside += 1 }
        }
        #expect(changedInside > 0, "the edit changed nothing inside the mask")
    }

    @Test("wrong image size and empty neighbour lists are refused in one sentence")
    func badEditorInputs() throws {
        guard try requireData().db else {
            Issue.record("The emoji database is missing under \(testPaths.databases.path); run Ops/prepare-data.sh (or Ops/build-db.sh emoji).")
            return
        }
        let db = try DatabaseImages(named: "emoji", root: testPaths.databases)
        var editor = Editor()
        editor.side = 32   // the images below are 32²
        do { _ = try editor.edit(source: RGBImage(width: 16, height: 16), sourceIDs: [0], editIDs: [1], image: { try db32(db, $0) }, seed: 1); Issue.record("accepted 16x16") }
        catch let e as any ReportableError { #expect(e.isPermanent && e.message.contains("16x16")) }
        do { _ = try editor.edit(source: try db32(db, 0), sourceIDs: [], editIDs: [1], image: { try db32(db, $0) }, seed: 1); Issue.record("accepted no neighbours") }
        catch let e as any ReportableError { #expect(e.isPermanent && e.message.contains("empty")) }
        do { _ = try editor.edit(source: try db32(db, 0), sourceIDs: [0], editIDs: [123_456], image: { try db32(db, $0) }, seed: 1); Issue.record("accepted an unknown id") }
        catch let e as StageInputError { #expect(e.message.contains("123456")) }
    }
}

@Suite("edit stage")
struct EditStageTests {
    @Test("a source that is neither PNG nor JPEG and a missing edit text fail permanently; a PNG or JPEG source gives an image with a mask")
    func editStage() throws {
        guard try haveModelAndDatabase() else { return }
        let stage = try EditStage(modelDirectory: testPaths.model, root: testPaths.databases)
        let db = try DatabaseImages(named: "emoji", root: testPaths.databases)
        let side = Editor().side   // the default size
        let source = try db.rgb8(0, side: side)
        let png = try PNGCodec.encode(PixelImage(width: side, height: side, channels: 3, pixels: source))
        // A JPEG made for the tests, stored sideways with an EXIF orientation.
        let jpeg = [UInt8](try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/jpeg/orientation6.jpg").standardizedFileURL))
        let out = try stage.run([task(#"{"edit": "face with sunglasses", "caption": "grinning face"}"#, input: png),
                                 task(#"{"edit": "with sunglasses"}"#, input: Array("GIF89a".utf8)),
                                 task(#"{"prompt": "x"}"#, input: png),
                                 task(#"{"edit": "with sunglasses", "database": "nope"}"#, input: png),
                                 task(#"{"edit": "with sunglasses", "k": 0}"#, input: png),
                                 task(#"{"edit": "with sunglasses", "seed": 2}"#, input: png),
                                 task(#"{"edit": "with sunglasses", "size": 32}"#, input: jpeg)])
        guard case .ok(let bytes) = out[0] else { Issue.record("edit failed: \(out[0])"); return }
        let image = try StageImage(decoding: bytes)
        #expect(image.width == side && image.mask?.pixels.count == side * side)
        #expect(permanentMessage(out[1])?.contains("not a PNG") == true)
        #expect(permanentMessage(out[2])?.contains("\"edit\"") == true)
        #expect(permanentMessage(out[3])?.contains("Unknown database \"nope\"") == true, "\(out[3])")
        #expect(permanentMessage(out[4])?.contains("\"k\"") == true, "\(out[4])")
        // Provenance: the edit, the caption (or how the source's neighbours were found), the neighbours, the version.
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(image.metadata)) as? [String: Any])
        #expect(meta["edit"] as? String == "face with sunglasses")
        #expect(meta["caption"] as? String == "grinning face")
        #expect(meta["source_neighbours_by"] as? String == "caption")
        #expect((meta["neighbours"] as? [Int])?.count == 8 && (meta["source_neighbours"] as? [Int])?.count == 8)
        #expect(meta["version"] as? Int == StageImage.version)
        #expect(meta["size"] as? Int == 128 && meta["steps"] as? Int == Editor().fineSteps, "the harmonising steps used at 128²")
        // Outside the mask the result is the source, exactly.
        let mask = try #require(image.mask?.pixels)
        for p in 0..<(side * side) where mask[p] == 0 {
            #expect(image.pixels[(3 * p)..<(3 * p + 3)] == source[(3 * p)..<(3 * p + 3)], "pixel \(p) outside the mask changed")
        }
        // Without a caption, the source's neighbours are the nearest images by pixels: the source itself first.
        guard case .ok(let noCaption) = out[5] else { Issue.record("edit without caption failed: \(out[5])"); return }
        let meta2 = try JSONSerialization.jsonObject(with: Data(StageImage(decoding: noCaption).metadata)) as? [String: Any]
        #expect(meta2?["source_neighbours_by"] as? String == "pixels")
        #expect((meta2?["source_neighbours"] as? [Int])?.first == 0)
        #expect(meta2?["caption"] is NSNull)
        // A JPEG source is edited as a PNG is.
        guard case .ok(let fromJPEG) = out[6] else { Issue.record("edit of a JPEG failed: \(out[6])"); return }
        let photo = try StageImage(decoding: fromJPEG)
        #expect(photo.width == 32 && photo.mask?.pixels.count == 32 * 32)
    }
}

/// One edit job through the edit stage on the `database` (`emoji`) picture captioned `caption` at `side`: the source's bytes, the
/// result and its metadata; nil (with the issue recorded) when the data is missing or the edit fails.
func editEmoji(_ caption: String, _ params: String, side: Int, database: String = "emoji") throws
    -> (source: [UInt8], image: StageImage, meta: [String: Any])? {
    guard try haveModelAndDatabase() else { return nil }
    let stage = try EditStage(modelDirectory: testPaths.model, root: testPaths.databases)
    let db = try DatabaseImages(named: database, root: testPaths.databases)
    let id = try #require(db.database.items.firstIndex { $0.caption == caption })
    let source = try db.rgb8(id, side: side)
    let png = try PNGCodec.encode(PixelImage(width: side, height: side, channels: 3, pixels: source))
    let out = try stage.run([task(params, input: png)])
    guard case .ok(let bytes) = out[0] else { Issue.record("edit failed: \(out[0])"); return nil }
    let image = try StageImage(decoding: bytes)
    let meta = try #require(try JSONSerialization.jsonObject(with: Data(image.metadata)) as? [String: Any])
    return (source, image, meta)
}

@Suite("removal and replacement edits")
struct RemovalEditTests {
    @Test("a removal is recognised in the ways people write it, and the thing is taken out of the caption")
    func parsing() {
        #expect(EditStage.removedThing("without the hat") == "hat")
        #expect(EditStage.removedThing("Remove the sunglasses.") == "sunglasses")
        #expect(EditStage.removedThing("take off its mask") == "mask")
        #expect(EditStage.removedThing("no glasses") == "glasses")
        #expect(EditStage.removedThing("with no hat") == "hat")
        for addition in ["with a hat", "wearing sunglasses", "make it green", "nothing", "without", "notebook"] {
            #expect(EditStage.removedThing(addition) == nil, "\(addition)")
        }
        #expect(EditStage.caption("smiling face with sunglasses", without: "sunglasses") == "smiling face")
        #expect(EditStage.caption("face with medical mask", without: "mask") == "face")
        #expect(EditStage.caption("cowboy hat face", without: "hat") == "face")
        #expect(EditStage.caption("grinning face", without: "hat") == nil, "a caption that does not name the thing")
    }

    @Test("without the hat: where the hat's crown was is background after the edit")
    func hatRemoved() throws {
        let side = 64
        guard let (source, image, meta) = try editEmoji("cowboy hat face", #"{"edit": "without the hat", "caption": "cowboy hat face", "size": 64}"#, side: side) else { return }
        #expect(meta["removes"] as? String == "hat")
        // The hat is the brown in the picture (the face is yellow, the backdrop white): after the edit little is left.
        func brown(_ px: [UInt8]) -> Int {
            (0..<(side * side)).filter { p in
                let r = Int(px[3 * p]), g = Int(px[3 * p + 1]), b = Int(px[3 * p + 2])
                return (60...190).contains(r) && (40...150).contains(g) && b < 130 && r > b + 20 && r - g < 60
            }.count
        }
        #expect(brown(source) > 300, "the source has a hat: \(brown(source)) brown pixels")
        #expect(brown(image.pixels) * 5 < brown(source), "the hat is gone: \(brown(image.pixels)) of \(brown(source)) brown pixels left")
    }

    @Test("make it a thought balloon: the speech balloon's tail goes, where the thought balloon is backdrop")
    func replacedThingGoes() throws {
        let side = 64
        guard let (source, image, meta) = try editEmoji("A speech balloon.", #"{"edit": "make it a thought balloon", "caption": "A speech balloon.", "database": "tuxpaint", "size": 64}"#,
                                                        side: side, database: "tuxpaint") else { return }
        // The tail is the speech balloon's dark outline below its body on the left; the thought balloon has none there.
        func tail(_ px: [UInt8]) -> Int {
            var dark = 0
            for y in 44..<side { for x in 0..<(side / 2) where px[3 * (y * side + x) ..< 3 * (y * side + x) + 3].allSatisfy({ $0 < 140 }) { dark += 1 } }
            return dark
        }
        let items = try Database(named: "tuxpaint", root: testPaths.databases).items
        #expect(items[try #require(meta["transplant"] as? Int)].caption == "A thought balloon.")
        #expect(tail(source) >= 8, "the source has a tail: \(tail(source)) dark pixels")
        #expect(tail(image.pixels) * 4 <= tail(source), "the tail is gone: \(tail(image.pixels)) of \(tail(source)) dark pixels left")
    }
}

@Suite("addition edits")
struct AdditionEditTests {
    @Test("the caption and the edit make one text; an edit that names what the thing becomes is not an addition")
    func parsing() {
        #expect(EditStage.combined(caption: "grinning cat", edit: "with heart eyes") == "grinning cat with heart eyes")
        #expect(EditStage.combined(caption: "A dog.", edit: " wearing a party hat") == "A dog wearing a party hat")
        #expect(EditStage.combined(caption: "Happy!", edit: "with a hat") == "Happy with a hat")
        for replacement in ["make it a tennis ball", "Make it happy", "turn it into a rose", "change it to a star", "light it", "open them"] {
            #expect(EditStage.replaces(replacement), "\(replacement)")
        }
        for addition in ["with a hat", "wearing sunglasses", "blowing a kiss", "making a face", "covering its eyes", "it"] {
            #expect(!EditStage.replaces(addition), "\(addition)")
        }
    }

    /// The captions of an edit's donor and neighbours.
    func captions(_ meta: [String: Any]) throws -> (donor: String, neighbours: [String]) {
        let items = try Database(named: "emoji", root: testPaths.databases).items
        let donor = try #require(meta["transplant"] as? Int)
        return (items[donor].caption, try #require(meta["neighbours"] as? [Int]).map { items[$0].caption })
    }

    @Test("cat face, blowing a kiss: the donor is the kissing cat, not the person's face the edit text alone finds first")
    func catStaysACat() throws {
        guard let (_, _, meta) = try editEmoji("cat face", #"{"edit": "blowing a kiss", "caption": "cat face", "size": 64}"#, side: 64) else { return }
        let (donor, neighbours) = try captions(meta)
        #expect(donor == "kissing cat", "donor \(donor); neighbours \(neighbours)")
    }

    @Test("grinning cat, with heart eyes: no picture of the source's own kind without the edit is an edit neighbour")
    func noTwins() throws {
        guard let (_, image, meta) = try editEmoji("grinning cat", #"{"edit": "with heart eyes", "caption": "grinning cat", "size": 64}"#, side: 64) else { return }
        let (donor, neighbours) = try captions(meta)
        #expect(neighbours.first == "smiling cat with heart-eyes", "\(neighbours)")
        for twin in ["grinning cat", "grinning cat with smiling eyes"] { #expect(!neighbours.contains(twin), "\(twin) in \(neighbours)") }
        #expect(donor == "smiling cat with heart-eyes", "donor \(donor)")
        // The eyes change: the mask is more than a few pixels.
        let mask = try #require(image.mask?.pixels)
        #expect(mask.filter { $0 > 0 }.count > 64 * 64 / 50, "mask of \(mask.filter { $0 > 0 }.count) pixels")
    }

    @Test("monkey face, covering its eyes: the see-no-evil monkey is the donor though the neighbours' rules leave it out")
    func bestScoredDonor() throws {
        guard let (_, _, meta) = try editEmoji("monkey face", #"{"edit": "covering its eyes", "caption": "monkey face", "size": 64}"#, side: 64) else { return }
        let (donor, neighbours) = try captions(meta)
        // The rules' own finding stands for the conditioning: a monkey is no nearer the combined text than the caption.
        #expect(!neighbours.contains("see-no-evil monkey"), "\(neighbours)")
        #expect(donor == "see-no-evil monkey", "donor \(donor); neighbours \(neighbours)")
    }

    @Test("grinning face with big eyes, with sweat on the forehead: the blue drop comes, though the mask is on the eyes")
    func sweatDropComes() throws {
        let side = 64
        guard let (source, image, meta) = try editEmoji("grinning face with big eyes",
                                                        #"{"edit": "with sweat on the forehead", "caption": "grinning face with big eyes", "size": 64}"#,
                                                        side: side) else { return }
        let (donor, _) = try captions(meta)
        #expect(donor == "grinning face with sweat", "donor \(donor)")
        // The drop is the only blue in the picture (the face is yellow, its eyes and mouth dark and pink).
        func blue(_ px: [UInt8]) -> Int {
            (0..<(side * side)).filter { p in Int(px[3 * p + 2]) > Int(px[3 * p]) + 60 && px[3 * p + 2] > 150 }.count
        }
        #expect(blue(source) == 0, "the source has no blue: \(blue(source))")
        #expect(blue(image.pixels) >= 12, "the drop is drawn: \(blue(image.pixels)) blue pixels")
    }

    @Test("red apple, wearing sunglasses: the apple gets the glasses, not the face that wears them")
    func appleGetsGlassesOnly() throws {
        let side = 64
        guard let (source, image, meta) = try editEmoji("red apple", #"{"edit": "wearing sunglasses", "caption": "red apple", "size": 64}"#,
                                                        side: side) else { return }
        let (donor, _) = try captions(meta)
        #expect(donor == "smiling face with sunglasses", "donor \(donor)")
        #expect(meta["transplant_cut_by"] is Int, "the part is cut down to what the donor adds: \(meta["transplant_cut_by"] ?? "nil")")
        // The face's yellow does not come: the apple stays red around dark glasses.
        func yellow(_ px: [UInt8], _ p: Int) -> Bool { px[3 * p] > 200 && px[3 * p + 1] > 160 && px[3 * p + 2] < 120 }
        func dark(_ px: [UInt8], _ p: Int) -> Bool { Int(px[3 * p]) + Int(px[3 * p + 1]) + Int(px[3 * p + 2]) < 150 }
        let n = side * side
        let yellowBefore = (0..<n).filter { yellow(source, $0) }.count, yellowAfter = (0..<n).filter { yellow(image.pixels, $0) }.count
        #expect(yellowAfter <= yellowBefore + n / 50, "yellow pixels \(yellowBefore) → \(yellowAfter)")
        let darkAfter = (0..<n).filter { dark(image.pixels, $0) }.count, darkBefore = (0..<n).filter { dark(source, $0) }.count
        #expect(darkAfter >= darkBefore + n / 25, "the glasses are drawn: dark pixels \(darkBefore) → \(darkAfter)")
        let mask = try #require(image.mask?.pixels)
        #expect(mask.filter { $0 > 0 }.count < n / 3, "the mask is the glasses, not the face: \(mask.filter { $0 > 0 }.count) of \(n)")
    }

    @Test("the thing an addition names")
    func addedThing() {
        #expect(EditStage.addedThing("wearing sunglasses") == "sunglasses")
        #expect(EditStage.addedThing("With a party hat.") == "party hat")
        #expect(EditStage.addedThing("holding an Easter egg") == "easter egg")
        for other in ["make it green", "without the hat", "with no hat", "sunglasses", "with"] { #expect(EditStage.addedThing(other) == nil, "\(other)") }
    }

    @Test("without a caption, the picture nearest the source by pixels names its kind: the cat still gets a cat's heart eyes")
    func uncaptioned() throws {
        guard let (_, _, meta) = try editEmoji("grinning cat", #"{"edit": "with heart eyes", "size": 64}"#, side: 64) else { return }
        let (donor, neighbours) = try captions(meta)
        #expect(meta["caption"] is NSNull && meta["source_neighbours_by"] as? String == "pixels")
        #expect(donor == "smiling cat with heart-eyes", "donor \(donor); neighbours \(neighbours)")
        #expect(meta["kind_caption"] as? String == "grinning cat", "the source itself is in the database: its own caption")
    }

    @Test("without a caption, a sticker from another set is read as the kind the edit makes sense on, not the plain shape nearest in pixels")
    func uncaptionedForeign() throws {
        guard try haveModelAndDatabase() else { return }
        // EmojiOne's neutral face, edited with the Noto-only database: its nearest Noto picture by pixels is the full moon face.
        let styles = try DatabaseImages(named: "emoji-styles", root: testPaths.databases)
        let id = try #require(styles.database.items.firstIndex { $0.caption == "neutral face" && $0.style == "emojione" })
        let png = try PNGCodec.encode(PixelImage(width: 64, height: 64, channels: 3, pixels: try styles.rgb8(id, side: 64)))
        let stage = try EditStage(modelDirectory: testPaths.model, root: testPaths.databases)
        let out = try stage.run([task(#"{"edit": "wearing a cowboy hat", "database": "emoji", "size": 64}"#, input: png)])
        guard case .ok(let bytes) = out[0] else { Issue.record("edit failed: \(out[0])"); return }
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(try StageImage(decoding: bytes).metadata)) as? [String: Any])
        let (donor, neighbours) = try captions(meta)
        let emoji = try DatabaseImages(named: "emoji", root: testPaths.databases)
        let first = try #require((meta["source_neighbours"] as? [Int])?.first.map { emoji.database.items[$0].caption })
        let kind = meta["kind_caption"] as? String ?? ""
        #expect(first == "full moon face" && kind != first && kind.contains("face"), "kind \(kind), nearest by pixels \(first)")
        #expect(donor == "cowboy hat face", "donor \(donor); neighbours \(neighbours)")
    }
}

@Suite("recolour edits through the stage")
struct RecolourEditTests {
    @Test("make it blue: the red heart's own outline, in blue; nothing pasted; outside the mask the source's bytes")
    func heartTurnsBlue() throws {
        let side = 128
        guard let (source, image, meta) = try editEmoji("red heart", #"{"edit": "make it blue", "caption": "red heart"}"#, side: side) else { return }
        #expect(meta["recolour"] as? String == "blue")
        #expect(meta["transplant"] is NSNull && (meta["neighbours"] as? [Int])?.isEmpty == true, "no other picture used")
        let mask = try #require(image.mask?.pixels)
        func red(_ px: [UInt8], _ p: Int) -> Bool { Int(px[3 * p]) > Int(px[3 * p + 2]) + 80 }
        func blue(_ px: [UInt8], _ p: Int) -> Bool { Int(px[3 * p + 2]) > Int(px[3 * p]) + 80 }
        let n = side * side
        let redBefore = (0..<n).filter { red(source, $0) }
        #expect(redBefore.count > n / 3, "the source is a red heart: \(redBefore.count) red pixels")
        // Every red pixel of the heart is blue after, and nothing became blue that was not red: the same shape.
        #expect(redBefore.filter { blue(image.pixels, $0) }.count >= redBefore.count * 99 / 100)
        #expect((0..<n).filter { blue(image.pixels, $0) && !red(source, $0) }.count < n / 200)
        for p in 0..<n where mask[p] == 0 {
            #expect(image.pixels[(3 * p)..<(3 * p + 3)] == source[(3 * p)..<(3 * p + 3)], "pixel \(p) outside the mask changed")
        }
    }
}

@Suite("default size on an older database")
struct DefaultSizeTests {
    @Test("a job naming no size gets 64² from a database without 128² pictures; naming 128 gets the sentence naming the fix")
    func olderDatabase() throws {
        let have = try requireData()
        guard have.db, have.model else { Issue.record("The model or the databases are missing; run Ops/prepare-data.sh."); return }
        // The built tuxpaint database without its 128² store, as one built before there were any.
        let built = testPaths.databases.appendingPathComponent("tuxpaint")
        let root = URL(fileURLWithPath: NSTemporaryDirectory() + "hume-old-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        let copy = root.appendingPathComponent("tuxpaint")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: built.path) where f != "images128.rgb" {
            try FileManager.default.createSymbolicLink(at: copy.appendingPathComponent(f), withDestinationURL: built.appendingPathComponent(f))
        }
        #expect(GenerateParameters.defaultSize == 128 && Editor().side == 128)
        let input = Array(#"{"database": "tuxpaint", "ids": [0, 1, 2], "scores": [0.9, 0.8, 0.7], "captions": []}"#.utf8)
        let out = try DenoiseStage(root: root).run([task(#"{"steps": 2}"#, input: input), task(#"{"steps": 2, "size": 128}"#, input: input)])
        guard case .ok(let bytes) = out[0] else { Issue.record("no size: \(out[0])"); return }
        let image = try StageImage(decoding: bytes)
        #expect(image.width == 64 && image.height == 64)
        let refusal = permanentMessage(out[1])
        #expect(refusal?.contains("has no 128×128 images") == true && refusal?.contains("Ops/prepare-data.sh") == true, "\(String(describing: refusal))")
        // The same for an edit.
        let png = try PNGCodec.encode(PixelImage(width: 64, height: 64, channels: 3, pixels: try DatabaseImages(named: "tuxpaint", root: root).rgb8(0, side: 64)))
        let edit = try EditStage(modelDirectory: testPaths.model, root: root)
        let edits = try edit.run([task(#"{"edit": "make it red", "database": "tuxpaint"}"#, input: png),
                                  task(#"{"edit": "make it red", "database": "tuxpaint", "size": 128}"#, input: png)])
        guard case .ok(let edited) = edits[0] else { Issue.record("edit, no size: \(edits[0])"); return }
        #expect(try StageImage(decoding: edited).width == 64)
        #expect(permanentMessage(edits[1])?.contains("has no 128×128 images") == true, "\(edits[1])")
    }
}

@Suite("stage payloads chained in-process")
struct ChainTests {
    @Test("embed → retrieve → denoise: the prompt sent as data reaches the image's metadata with the retrieved ids",
          .timeLimit(.minutes(5)))
    func chain() throws {
        guard try haveModelAndDatabase() else { return }
        let params = #"{"database": "tuxpaint", "k": 5, "seed": 3, "steps": 3}"#
        let prompt = "a cat"
        let embedded = try EmbedStage(modelDirectory: testPaths.model).run([task(params, input: Array(prompt.utf8))])
        guard case .ok(let vector) = embedded[0] else { Issue.record("embed failed: \(embedded[0])"); return }
        let retrieved = try RetrieveStage(root: testPaths.databases).run([task(params, input: vector)])
        guard case .ok(let json) = retrieved[0] else { Issue.record("retrieve failed: \(retrieved[0])"); return }
        let answer = try Neighbours(decoding: json)
        #expect(answer.prompt == prompt)
        #expect(answer.database == "tuxpaint" && answer.ids.count == 5)
        let denoised = try DenoiseStage(root: testPaths.databases).run([task(params, input: json)])
        guard case .ok(let body) = denoised[0] else { Issue.record("denoise failed: \(denoised[0])"); return }
        let image = try StageImage(decoding: body)
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(image.metadata)) as? [String: Any])
        #expect(meta["prompt"] as? String == prompt)
        #expect(meta["database"] as? String == "tuxpaint")
        #expect(meta["neighbours"] as? [Int] == answer.ids)
        #expect(meta["k"] as? Int == 5 && meta["seed"] as? Int == 3 && meta["steps"] as? Int == 3 && meta["size"] as? Int == Generator.defaultSize)
        #expect(meta["version"] as? Int == StageImage.version)
        #expect(image.width == Generator.defaultSize && image.height == Generator.defaultSize)
        // The retriever's similarities travel with the ids and are what weighed them.
        #expect(meta["similarities"] as? [Double] == answer.scores.map { Array($0.prefix(5)) })
        #expect(meta["temperature"] as? Double == GenerateParameters.defaultTemperature)
    }
}

@Suite("similarities in the denoise stage")
struct SimilarityTests {
    /// The denoise stage's image for the input `json` with `params`.
    func generate(_ json: String, _ params: String) throws -> StageImage {
        let out = try DenoiseStage(root: testPaths.databases).run([task(params, input: Array(json.utf8))])
        guard case .ok(let body) = out[0] else { throw StageInputError("denoise failed: \(out[0])") }
        return try StageImage(decoding: body)
    }

    func rmse(_ a: [UInt8], _ b: [UInt8]) -> Double {
        (zip(a, b).reduce(0.0) { let d = Double($1.0) - Double($1.1); return $0 + d * d } / Double(a.count)).squareRoot() / 255
    }

    @Test("one strong match outweighs weak ones: the sample follows it, and without scores it does not", .timeLimit(.minutes(5)))
    func strongMatchWins() throws {
        guard try requireData().db else { Issue.record("The databases are missing; run Ops/prepare-data.sh."); return }
        let ids = [10, 200, 300, 400, 500, 600]
        let params = #"{"database": "tuxpaint", "seed": 4, "steps": 8, "size": 32, "consensus": 0, "focus": 0}"#
        let strong = try generate(#"{"ids": [10, 200, 300, 400, 500, 600], "scores": [0.9, 0.6, 0.6, 0.6, 0.6, 0.6]}"#, params)
        let flat = try generate(#"{"ids": [10, 200, 300, 400, 500, 600]}"#, params)
        let images = try DatabaseImages(named: "tuxpaint", root: testPaths.databases)
        let first = try images.rgb8(10, side: 32)
        let others = try ids.dropFirst().map { try images.rgb8($0, side: 32) }
        // Followed: the strong match is the nearest of the six, and nearer than without scores.
        let toFirst = rmse(strong.pixels, first)
        #expect(others.allSatisfy { rmse(strong.pixels, $0) > toFirst })
        #expect(toFirst < 0.8 * rmse(flat.pixels, first), "strong \(toFirst), flat \(rmse(flat.pixels, first))")
        // Equal scores weigh alike: swapping the order of two equally similar ids changes nothing but the metadata.
        let a = try generate(#"{"ids": [10, 200], "scores": [0.7, 0.7]}"#, params)
        let b = try generate(#"{"ids": [200, 10], "scores": [0.7, 0.7]}"#, params)
        #expect(a.pixels == b.pixels)
    }

    @Test("malformed scores are refused in one sentence")
    func badScores() throws {
        guard try requireData().db else { Issue.record("The databases are missing; run Ops/prepare-data.sh."); return }
        let cases = [(#"{"ids": [1, 2], "scores": [0.5]}"#, "has 1 entries for 2 ids"),
                     (#"{"ids": [1, 2], "scores": "high"}"#, "is not a list"),
                     (#"{"ids": [1, 2], "scores": [0.5, 7]}"#, "not a similarity from -1 to 1"),
                     (#"{"ids": [1, 2], "scores": [0.5, "x"]}"#, "not a similarity from -1 to 1")]
        for (json, sentence) in cases {
            let out = try DenoiseStage(root: testPaths.databases).run([task(#"{"database": "tuxpaint", "steps": 1, "size": 32}"#, input: Array(json.utf8))])
            #expect(permanentMessage(out[0])?.contains(sentence) == true, "\(json): \(out[0])")
        }
        let bad = try DenoiseStage(root: testPaths.databases).run([task(#"{"database": "tuxpaint", "temperature": 0}"#, input: Array(#"{"ids": [1]}"#.utf8))])
        #expect(permanentMessage(bad[0])?.contains("\"temperature\" parameter is 0; it must be a number from 0.001 to 10") == true, "\(bad[0])")
        for (params, sentence) in [(#"{"coherence": 2}"#, "\"coherence\" parameter is 2; it must be a number from 0 to 1."),
                                   (#"{"margin": -0.1}"#, "\"margin\" parameter is -0.1; it must be a number from 0 to 2."),
                                   (#"{"register": "yes"}"#, "\"register\" parameter must be true or false.")] {
            let out = try DenoiseStage(root: testPaths.databases).run([task(params, input: Array(#"{"database": "tuxpaint", "ids": [1]}"#.utf8))])
            #expect(permanentMessage(out[0])?.contains(sentence) == true, "\(params): \(out[0])")
        }
    }

    /// A 64² picture: white with a bar from (x0, y0) to (x1, y1) (in 64ths of the side) in `colour`.
    static func bar(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, side: Int, colour: (UInt8, UInt8, UInt8)) -> [UInt8] {
        var out = [UInt8](repeating: 255, count: side * side * 3)
        let f = side / 64
        for y in (y0 * f)..<(y1 * f) { for x in (x0 * f)..<(x1 * f) { out[3 * (y * side + x)] = colour.0; out[3 * (y * side + x) + 1] = colour.1; out[3 * (y * side + x) + 2] = colour.2 } }
        return out
    }

    /// A database "bars" of one bar picture per shape (captions "bar 0", "bar 1", …) with 64² and 32² stores, in a new
    /// temporary folder (returned: the databases' root; the caller removes it).
    static func barDatabase(_ shapes: [((Int, Int, Int, Int), (UInt8, UInt8, UInt8))]) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hume-shapes-\(UUID().uuidString)")
        let dir = root.appendingPathComponent("bars")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var manifest = ""
        for id in shapes.indices { manifest += #"{"id": \#(id), "caption": "bar \#(id)"}"# + "\n" }
        try manifest.write(to: dir.appendingPathComponent("manifest.jsonl"), atomically: true, encoding: .utf8)
        let big = shapes.map { bar($0.0.0, $0.0.1, $0.0.2, $0.0.3, side: 64, colour: $0.1) }
        // The 32² store: each 64² image box-averaged by 2.
        let small = big.map { image in
            (0..<(32 * 32 * 3)).map { i -> UInt8 in
                let c = i % 3, x = (i / 3) % 32, y = i / 96
                let sum = [(0, 0), (1, 0), (0, 1), (1, 1)].reduce(0) { $0 + Int(image[3 * ((2 * y + $1.1) * 64 + 2 * x + $1.0) + c]) }
                return UInt8(sum / 4)
            }
        }
        try Data(big.flatMap { $0 }).write(to: dir.appendingPathComponent("images64.rgb"))
        try Data(small.flatMap { $0 }).write(to: dir.appendingPathComponent("images32.rgb"))
        return root
    }

    @Test("a colour the prompt names is the sample's: a red bar asked for in green comes back green, in red as drawn", .timeLimit(.minutes(5)))
    func promptColour() throws {
        let root = try Self.barDatabase([((6, 26, 58, 38), (200, 40, 40))])
        defer { try? FileManager.default.removeItem(at: root) }
        let stage = DenoiseStage(root: root)
        let input = Array(#"{"ids": [0], "scores": [0.8]}"#.utf8)
        func run(_ params: String) throws -> (pixels: [UInt8], meta: [String: Any]) {
            let out = try stage.run([task(params, input: input)])
            guard case .ok(let body) = out[0] else { throw HumeError(.system, "\(out[0])") }
            let image = try StageImage(decoding: body)
            return (image.pixels, try #require(try JSONSerialization.jsonObject(with: Data(image.metadata)) as? [String: Any]))
        }
        let base = #""database": "bars", "steps": 6, "size": 64, "seed": 1"#
        let green = try run("{\(base), \"prompt\": \"a long green bar\"}")
        #expect(green.meta["prompt_colour"] as? String == "green" && green.meta["recoloured"] as? Bool == true, "\(green.meta)")
        let body = try #require(Recolour.body(of: green.pixels, width: 64, height: 64))
        #expect(!body.grey && abs(body.hue - 89) < 20, "body hue \(body.hue), the palette green's is 89°")
        #expect(PromptColour.pictureShows(Recolour.parse("green")!, rgb8: green.pixels))
        // Asked in its own colour, or with the option off, the sample is the one made without a colour word.
        let plain = try run("{\(base), \"prompt\": \"a long bar\"}")
        #expect(plain.meta["prompt_colour"] == nil && plain.meta["recoloured"] == nil)
        let red = try run("{\(base), \"prompt\": \"a long red bar\"}")
        #expect(red.meta["recoloured"] as? Bool == false && red.pixels == plain.pixels)
        let off = try run("{\(base), \"prompt\": \"a long green bar\", \"prompt_colour\": false}")
        #expect(off.meta["prompt_colour"] == nil && off.pixels == plain.pixels)
        let bad = try stage.run([task("{\(base), \"prompt_colour\": \"yes\"}", input: input)])
        #expect(permanentMessage(bad[0])?.contains("The \"prompt_colour\" parameter must be true or false.") == true, "\(bad[0])")
    }

    @Test("a sample takes its shape from one neighbour and regions only from neighbours of that shape", .timeLimit(.minutes(5)))
    func coherentShapes() throws {
        // Four equally good matches: two lying bars and two standing bars, each pair alike up to a shift (in four colours:
        // shapes alone are tested with colour agreement off, then colour agreement on its own).
        let shapes: [((Int, Int, Int, Int), (UInt8, UInt8, UInt8))] = [((6, 26, 58, 38), (200, 40, 40)), ((9, 30, 61, 42), (40, 40, 200)),
                                                                       ((26, 6, 38, 58), (40, 160, 40)), ((28, 4, 40, 56), (200, 160, 0))]
        let root = try Self.barDatabase(shapes)
        defer { try? FileManager.default.removeItem(at: root) }
        let stage = DenoiseStage(root: root)
        let input = Array(#"{"ids": [0, 1, 2, 3], "scores": [0.8, 0.8, 0.8, 0.8]}"#.utf8)
        var shapesSeen = Set<Int>()
        for seed in 1...6 {
            let out = try stage.run([task(#"{"database": "bars", "steps": 10, "size": 64, "seed": \#(seed), "colour_agreement": null}"#, input: input)])
            guard case .ok(let body) = out[0] else { Issue.record("seed \(seed): \(out[0])"); continue }
            let image = try StageImage(decoding: body)
            let meta = try #require(try JSONSerialization.jsonObject(with: Data(image.metadata)) as? [String: Any])
            let used = try #require(meta["used"] as? [Int]), shape = try #require(meta["shape_from"] as? Int)
            shapesSeen.insert(shape)
            // Lying bars lend only to lying bars, standing to standing.
            let family = shape < 2 ? [0, 1] : [2, 3]
            #expect(used.sorted() == family, "seed \(seed): shape from \(shape), used \(used)")
            // The sample's inked area lies where its family's bars lie, not across the other family's.
            let sample = try RGBImage(width: 64, height: 64, rgb8: image.pixels)
            let lying = Silhouette(try RGBImage(width: 64, height: 64, rgb8: Self.bar(6, 26, 58, 38, side: 64, colour: (0, 0, 0))))
            let standing = Silhouette(try RGBImage(width: 64, height: 64, rgb8: Self.bar(26, 6, 38, 58, side: 64, colour: (0, 0, 0))))
            let own = shape < 2 ? lying : standing, other = shape < 2 ? standing : lying
            #expect(Silhouette(sample).overlap(own) > Silhouette(sample).overlap(other), "seed \(seed)")
        }
        #expect(shapesSeen.count >= 2, "six seeds all took their shape from \(shapesSeen)")
        // Without coherence, the four are mixed into one sample.
        let mixed = try stage.run([task(#"{"database": "bars", "steps": 10, "size": 64, "seed": 1, "coherence": 0, "colour_agreement": null}"#, input: input)])
        guard case .ok(let body) = mixed[0] else { Issue.record("\(mixed[0])"); return }
        let meta = try #require(try JSONSerialization.jsonObject(with: Data(try StageImage(decoding: body).metadata)) as? [String: Any])
        #expect((meta["used"] as? [Int])?.count == 4)
        // With colour agreement, a bar of another colour (red against blue: 0.88 apart) lends nothing; a loose limit keeps
        // the family.
        for (limit, expected) in [(0.3, 1), (1.0, 2)] {
            let out = try stage.run([task(#"{"database": "bars", "steps": 4, "size": 64, "seed": 1, "colour_agreement": \#(limit)}"#, input: input)])
            guard case .ok(let body) = out[0] else { Issue.record("\(out[0])"); return }
            let m = try #require(try JSONSerialization.jsonObject(with: Data(try StageImage(decoding: body).metadata)) as? [String: Any])
            #expect((m["used"] as? [Int])?.count == expected, "colour_agreement \(limit): used \(String(describing: m["used"]))")
        }
    }

    @Test("a database without labels generates, with or without the label option", .timeLimit(.minutes(5)))
    func unlabelledDatabase() throws {
        guard try requireData().db else { Issue.record("The databases are missing; run Ops/prepare-data.sh."); return }
        let source = try Database(named: "tuxpaint", root: testPaths.databases)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("hume-unlabelled-\(UUID().uuidString)")
        let dir = root.appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        // Eight pictures with captions only: no group, subgroup, concept or split.
        var manifest = ""
        for id in 0..<8 { manifest += #"{"id": \#(id), "caption": "picture \#(id)"}"# + "\n" }
        try manifest.write(to: dir.appendingPathComponent("manifest.jsonl"), atomically: true, encoding: .utf8)
        for side in [32, 64] {
            let store = try source.images(side: side)
            let bytes = try (0..<8).flatMap { try store.copy(id: $0) }
            try Data(bytes).write(to: dir.appendingPathComponent("images\(side).rgb"))
        }
        let db = try Database(named: "mine", root: root)
        #expect(db.items.allSatisfy { $0.group.isEmpty && $0.subgroup.isEmpty && $0.split == "train" && $0.concept == $0.caption })
        let stage = DenoiseStage(root: root)
        for params in [#"{"database": "mine", "steps": 4, "size": 32}"#, #"{"database": "mine", "steps": 4, "size": 32, "consensus": 3}"#] {
            let out = try stage.run([task(params, input: Array(#"{"ids": [3, 1, 5], "scores": [0.8, 0.7, 0.4]}"#.utf8))])
            guard case .ok(let body) = out[0] else { Issue.record("\(params): \(out[0])"); continue }
            let image = try StageImage(decoding: body)
            #expect(image.width == 32 && image.pixels.count == 32 * 32 * 3)
            let meta = try #require(try JSONSerialization.jsonObject(with: Data(image.metadata)) as? [String: Any])
            #expect(meta["consensus_label"] == nil)
        }
    }
}

@Suite("emoji names")
struct EmojiNameListTests {
    @Test("the list Debian's unicode-data installs names every picture of the emoji database by its caption")
    func everyCaption() throws {
        let path = ProcessInfo.processInfo.environment["HUME_EMOJI_TEST"] ?? EmojiNames.defaultPath
        guard FileManager.default.fileExists(atPath: path) else {
            Issue.record("\(path) is missing; Ops/setup.sh installs it (Debian's unicode-data).")
            return
        }
        guard try requireData().db else { Issue.record("The emoji database is missing; run Ops/prepare-data.sh."); return }
        let names = EmojiNames.shared
        #expect(names.spell("a 🐱 wearing 👓") == "a cat face wearing glasses")
        #expect(names.spell("☺") == "smiling face")
        let manifest = try String(contentsOf: testPaths.databases.appendingPathComponent("emoji/manifest.jsonl"), encoding: .utf8)
        var checked = 0, wrong: [String] = []
        for line in manifest.split(separator: "\n") {
            let item = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let caption = try #require(item["caption"] as? String), source = try #require(item["source"] as? String)
            var emoji = String.UnicodeScalarView()
            for hex in source.split(separator: "-") { emoji.append(try #require(UInt32(hex, radix: 16).flatMap(Unicode.Scalar.init))) }
            checked += 1
            if names.spell(String(emoji)) != caption { wrong.append("\(source) \(caption): \(names.spell(String(emoji)))") }
        }
        #expect(checked > 3000)
        #expect(wrong.isEmpty, "\(wrong.count) of \(checked): \(wrong.prefix(5))")
    }
}
