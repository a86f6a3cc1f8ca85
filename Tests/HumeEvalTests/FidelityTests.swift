import Foundation
import HumeCore
import HumeData
import HumeEvaluation
import HumeEval
import Testing

/// A 64² RGB8 sticker on white: a filled disc, square or triangle of one colour at a position and size.
func sticker(_ shape: String, color: (UInt8, UInt8, UInt8), cx: Double = 32, cy: Double = 32, r: Double = 20) -> [UInt8] {
    var out = [UInt8](repeating: 255, count: 64 * 64 * 3)
    for y in 0..<64 { for x in 0..<64 {
        let dx = Double(x) + 0.5 - cx, dy = Double(y) + 0.5 - cy
        let inside: Bool
        switch shape {
        case "disc": inside = dx * dx + dy * dy <= r * r
        case "square": inside = abs(dx) <= r * 0.8 && abs(dy) <= r * 0.8
        default: inside = dy <= r * 0.8 && dy >= -r && abs(dx) <= (dy + r) * 0.5   // triangle, apex up
        }
        if inside { out[(y * 64 + x) * 3] = color.0; out[(y * 64 + x) * 3 + 1] = color.1; out[(y * 64 + x) * 3 + 2] = color.2 }
    } }
    return out
}

/// The 64² image shifted by (dx, dy) pixels, white where nothing comes in.
func shifted(_ rgb: [UInt8], dx: Int, dy: Int) -> [UInt8] {
    var out = [UInt8](repeating: 255, count: rgb.count)
    for y in 0..<64 { for x in 0..<64 {
        let sx = x - dx, sy = y - dy
        guard sx >= 0, sx < 64, sy >= 0, sy < 64 else { continue }
        for c in 0..<3 { out[(y * 64 + x) * 3 + c] = rgb[(sy * 64 + sx) * 3 + c] }
    } }
    return out
}

func mirrored(_ rgb: [UInt8]) -> [UInt8] {
    var out = rgb
    for y in 0..<64 { for x in 0..<64 { for c in 0..<3 { out[(y * 64 + x) * 3 + c] = rgb[(y * 64 + 63 - x) * 3 + c] } } }
    return out
}

/// A small database: an off-centre red disc ("apple"), a blue square ("box"), a green triangle ("tree"), a yellow disc
/// ("sun"), with one concept each.
struct Fixture {
    let images: [[UInt8]] = [sticker("disc", color: (220, 30, 30), cx: 26, cy: 30), sticker("square", color: (30, 60, 220)),
                             sticker("triangle", color: (30, 170, 60)), sticker("disc", color: (240, 200, 20), r: 14)]
    let concepts = ["apple", "box", "tree", "sun"]
    var metric: FidelityMetric {
        FidelityMetric(index: TileIndex(tiles: images.map { Tiles.downsample($0, side: 64, to: 32) }, side: 32), concepts: concepts)
    }
}

@Suite("fidelity metric")
struct FidelityMetricTests {
    @Test("a database image itself is recognised and is a near copy (RMSE 0)")
    func exactCopy() {
        let f = Fixture()
        let s = f.metric.score(samples: [f.images[0]], size: 64, asked: ["apple"])
        #expect(s.recognised == [true])
        #expect(s.nearCopy == [true])
        #expect(s.copyDistances[0] < 1e-6)
    }

    @Test("a copy shifted by 3 px, mirrored, or both, is still a near copy")
    func alignedCopies() {
        let f = Fixture()
        // 6 px at 64² is 3 px at 32²: the edge of the near-copy search; the asymmetric disc makes the mirror matter.
        let cases = [shifted(f.images[0], dx: 6, dy: -6), mirrored(f.images[0]), shifted(mirrored(f.images[0]), dx: -4, dy: 2)]
        for (i, sample) in cases.enumerated() {
            let s = f.metric.score(samples: [sample], size: 64, asked: ["apple"])
            #expect(s.nearCopy == [true], "case \(i): aligned distance \(s.copyDistances[0])")
            #expect(s.recognised == [true], "case \(i)")
        }
        // Without the alignment search the mirrored, shifted disc would be far from the original.
        let plain = Tiles.rmse(Tiles.downsample(cases[2], side: 64, to: 32), Tiles.downsample(f.images[0], side: 64, to: 32))
        #expect(plain > 0.08)
    }

    @Test("a copy scaled by 1.15 about the centre is still a near copy")
    func scaledCopy() {
        let f = Fixture()
        let bigger = sticker("square", color: (30, 60, 220), r: 23)
        let s = f.metric.score(samples: [bigger], size: 64, asked: ["box"])
        #expect(s.nearCopy == [true], "aligned distance \(s.copyDistances[0])")
        let plain = Tiles.rmse(Tiles.downsample(bigger, side: 64, to: 32), Tiles.downsample(f.images[1], side: 64, to: 32))
        #expect(plain > 0.08)
    }

    @Test("an image of another concept is not recognised")
    func otherConcept() {
        let f = Fixture()
        let s = f.metric.score(samples: [f.images[2], sticker("triangle", color: (40, 160, 70), cx: 34)], size: 64, asked: ["apple", "sun"])
        #expect(s.recognised == [false, false])
        #expect(s.nearestIDs == [2, 2])
    }

    @Test("a new picture of a concept (half one drawing, half another) is recognised but is not a near copy")
    func newButFaithful() {
        let f = Fixture()
        // A box whose left half is the blue square and whose right half is a purple disc: nearest is still the box.
        let square = f.images[1], disc = sticker("disc", color: (150, 40, 200), r: 18)
        var mixed = square
        for y in 0..<64 { for x in 32..<64 { for c in 0..<3 { mixed[(y * 64 + x) * 3 + c] = disc[(y * 64 + x) * 3 + c] } } }
        let s = f.metric.score(samples: [mixed], size: 64, asked: ["box"])
        #expect(s.recognised == [true])
        #expect(s.nearCopy == [false], "aligned distance \(s.copyDistances[0])")
    }

    @Test("seed diversity is 0 for identical samples and grows with the difference")
    func diversity() {
        let f = Fixture()
        #expect(FidelityMetric.diversity([f.images[0], f.images[0], f.images[0]], size: 64) == 0)
        let near = FidelityMetric.diversity([f.images[0], shifted(f.images[0], dx: 2, dy: 0)], size: 64)!
        let far = FidelityMetric.diversity([f.images[0], f.images[1]], size: 64)!
        #expect(near > 0 && near < far)
        #expect(FidelityMetric.diversity([f.images[0]], size: 64) == nil)
    }

    @Test("the alignments are the definition's: 49 shifts × 2 flips × 3 scales for copies, 25 shifts for recognition")
    func alignmentCounts() {
        let tile = [Float](repeating: 1, count: 32 * 32 * 3)
        #expect(Alignments.copy.variants(of: tile, side: 32).count == 294)
        #expect(Alignments.recognition.variants(of: tile, side: 32).count == 25)
        // A shift fills with white and moves content by exactly the shift.
        var dot = [Float](repeating: 1, count: 32 * 32 * 3)
        dot[(10 * 32 + 10) * 3] = 0
        let moved = Tiles.aligned(dot, side: 32, dx: 2, dy: -1)
        #expect(moved[(9 * 32 + 12) * 3] == 0)
        #expect(moved.filter { $0 == 0 }.count == 1)
        let flipped = Tiles.aligned(dot, side: 32, flip: true)
        #expect(flipped[(10 * 32 + 21) * 3] == 0)
    }
}

@Suite("fidelity prompt lists")
struct FidelityPromptTests {
    static let evalFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Ops/eval").standardizedFileURL

    @Test("a bad line is refused in one sentence naming the file and line")
    func badLines() {
        let cases: [(String, String)] = [
            ("{\"prompt\": \"a cat\", \"concepts\": [\"cat\"]}\nnot json", "x.jsonl line 2 is not a JSON object"),
            ("{\"prompt\": \"\", \"concepts\": [\"cat\"]}", "line 1 has no non-empty \"prompt\""),
            ("{\"prompt\": \"a cat\"}", "line 1 has no \"concepts\" list"),
            ("{\"prompt\": \"a cat\", \"concepts\": [\"cat\"]}\n{\"prompt\": \"a cat\", \"concepts\": [\"cat\"]}", "line 2 repeats the prompt"),
            ("\n\n", "holds no prompts"),
        ]
        for (text, expected) in cases {
            do {
                _ = try FidelityPrompt.parseList(text, file: "x.jsonl")
                Issue.record("accepted: \(text)")
            } catch let e as EvalError {
                #expect(e.message.contains(expected), "\(e.message)")
            } catch { Issue.record("\(error)") }
        }
        let ok = try? FidelityPrompt.parseList("{\"prompt\": \"a black cat\", \"concepts\": [\"animals/cat\"], \"database\": \"tuxpaint\"}\n", file: "x")
        #expect(ok == [FidelityPrompt(prompt: "a black cat", concepts: ["animals/cat"], database: "tuxpaint")])
    }

    @Test("the committed lists parse, are long enough, and every concept they name exists in their database",
          arguments: [("fidelity-emoji.jsonl", "emoji", 150), ("fidelity-emoji-dev.jsonl", "emoji", 40), ("fidelity-emoji-dev2.jsonl", "emoji", 100), ("fidelity-tuxpaint.jsonl", "tuxpaint", 50)])
    func committedLists(file: String, database: String, minimum: Int) throws {
        let url = Self.evalFolder.appendingPathComponent(file)
        let list = try FidelityPrompt.parseList(try String(contentsOf: url, encoding: .utf8), file: file)
        #expect(list.count >= minimum)
        let db: Database
        do { db = try Database(named: database, root: testPaths.databases) } catch {
            Issue.record("The \(database) database is not built; run Ops/prepare-data.sh. \(error)")
            return
        }
        let concepts = Set(db.items.map(\.concept))
        for p in list {
            for c in p.concepts { #expect(concepts.contains(c), "\(file): \"\(p.prompt)\" names \"\(c)\", which \(database) does not hold") }
        }
    }
}

@Suite("edit list")
struct EditListTests {
    @Test("the committed edit lists parse, hold pairs over both databases, and every source and named target exists",
          arguments: [("edits.jsonl", 40), ("edits-dev.jsonl", 30)])
    func committed(file: String, least: Int) throws {
        let url = FidelityPromptTests.evalFolder.appendingPathComponent(file)
        let pairs = try EditPair.parseList(try String(contentsOf: url, encoding: .utf8), file: file)
        #expect(pairs.count >= least)
        #expect(Set(pairs.map(\.database)) == ["emoji", "tuxpaint"])
        if file == "edits.jsonl" { #expect(pairs.contains { $0.edit == "with a bow tie" }) }
        for name in ["emoji", "tuxpaint"] {
            let db: Database
            do { db = try Database(named: name, root: testPaths.databases) } catch {
                Issue.record("The \(name) database is not built; run Ops/prepare-data.sh. \(error)")
                continue
            }
            let captions = Set(db.items.map(\.caption))
            for p in pairs where p.database == name {
                #expect(captions.contains(p.source), "\(name) has no picture captioned \"\(p.source)\"")
                // Every pair names its targets (possibly none), and none of them is the source itself.
                #expect(p.targets != nil, "\(p.source) + \(p.edit) names no targets")
                for t in p.targets ?? [] {
                    #expect(captions.contains(t) && t != p.source, "\(name): target \"\(t)\" of \(p.source) + \(p.edit)")
                }
            }
        }
    }

    @Test("the foreign-source lists take each source from another set's drawing, which exists, and name targets in the edit database",
          arguments: ["edits-foreign.jsonl", "edits-foreign-dev.jsonl"])
    func foreign(file: String) throws {
        let url = FidelityPromptTests.evalFolder.appendingPathComponent(file)
        let pairs = try EditPair.parseList(try String(contentsOf: url, encoding: .utf8), file: file)
        #expect(pairs.count >= 40 && pairs.allSatisfy { $0.database == "emoji" && $0.sourceDatabase == "emoji-styles" && $0.targets != nil })
        #expect(Set(pairs.compactMap(\.sourceStyle)) == ["emojione", "openmoji"] && pairs.allSatisfy { $0.sourceStyle != nil })
        let styles: Database, emoji: Database
        do {
            styles = try Database(named: "emoji-styles", root: testPaths.databases)
            emoji = try Database(named: "emoji", root: testPaths.databases)
        } catch {
            Issue.record("The emoji databases are not built; run Ops/prepare-data.sh. \(error)")
            return
        }
        let drawings = Set(styles.items.map { $0.caption + "/" + $0.style }), captions = Set(emoji.items.map(\.caption))
        for p in pairs {
            #expect(drawings.contains(p.source + "/" + (p.sourceStyle ?? "")), "no \(p.sourceStyle ?? "") drawing of \(p.source)")
            #expect((p.targets ?? []).allSatisfy(captions.contains), "\(p.source) + \(p.edit): \(p.targets ?? [])")
        }
    }

    @Test("a bad line is one sentence naming the file and line")
    func bad() {
        for text in ["{\"database\": \"emoji\", \"source\": \"x\"}", "not json", "{\"database\": \"emoji\", \"source\": \"x\", \"edit\": \"  \"}", "",
                     "{\"database\": \"emoji\", \"source\": \"x\", \"edit\": \"y\", \"targets\": \"z\"}",
                     "{\"database\": \"emoji\", \"source\": \"x\", \"edit\": \"y\", \"source_style\": 3}"] {
            do {
                _ = try EditPair.parseList(text, file: "e.jsonl")
                Issue.record("\(text) was accepted")
            } catch let e as HumeError {
                #expect(e.message.hasPrefix("e.jsonl"), "\(e.message)")
            } catch { Issue.record("\(error)") }
        }
    }
}
