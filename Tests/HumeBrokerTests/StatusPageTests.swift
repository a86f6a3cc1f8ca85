import Foundation
@testable import HumeBroker
import HumeCore
import Testing

/// A stage image (PROTOCOL.md §11.5) of one colour, with a prompt in its metadata.
func stageImage(side: Int, rgb: (UInt8, UInt8, UInt8), prompt: String) -> [UInt8] {
    let meta = Array(JSON.object(["prompt": .string(prompt)]).serialized.utf8)
    var b: [UInt8] = Array("HIMG".utf8) + [UInt8(side & 0xff), UInt8(side >> 8), UInt8(side & 0xff), UInt8(side >> 8)]
    b += [UInt8(meta.count & 0xff), UInt8(meta.count >> 8 & 0xff), 0, 0] + meta
    for _ in 0..<(side * side) { b += [rgb.0, rgb.1, rgb.2] }
    return b
}

@Suite("Status page: the latest stage images as thumbnails")
struct StatusPageTests {
    @Test("a stage image is read (size, text, pixels); other bodies, truncated ones and huge ones are not")
    func parse() throws {
        let body = stageImage(side: 4, rgb: (1, 2, 3), prompt: "a <b>")
        let img = try #require(RecentImage(job: 7, key: "k", stage: "denoise", body: body))
        #expect(img.width == 4 && img.height == 4 && img.text == "a <b>" && img.rgb.count == 48 && img.rgb.prefix(3) == [1, 2, 3])
        #expect(RecentImage(job: 1, key: "k", stage: "s", body: Array("{\"url\":\"x\"}".utf8)) == nil)
        #expect(RecentImage(job: 1, key: "k", stage: "s", body: Array(body.dropLast())) == nil)
        #expect(RecentImage(job: 1, key: "k", stage: "s", body: stageImage(side: 300, rgb: (0, 0, 0), prompt: "")) == nil)
    }

    @Test("the BMP has the right header and bottom-up BGR rows padded to 4 bytes")
    func bmp() throws {
        // 2×2: top row red, green; bottom row blue, white.
        var body = stageImage(side: 2, rgb: (0, 0, 0), prompt: "")
        body.replaceSubrange(body.count - 12 ..< body.count, with: [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
        let b = try #require(RecentImage(job: 1, key: "k", stage: "s", body: body)).bmp
        #expect(b.count == 54 + 8 * 2)
        #expect(b[0] == 0x42 && b[1] == 0x4D && Int(b[10]) == 54 && Int(b[18]) == 2 && Int(b[22]) == 2 && Int(b[28]) == 24)
        #expect(Array(b[54..<62]) == [255, 0, 0, 255, 255, 255, 0, 0], "first stored row is the bottom one: blue, white, padding")
        #expect(Array(b[62..<70]) == [0, 0, 255, 0, 255, 0, 0, 0], "then the top one: red, green, padding")
    }

    @Test("the broker keeps the newest 12 stage images that pass through it and the page shows them, newest first")
    func keepsLatest() throws {
        let r = try Rig()
        try r.ready("w1", credit: 20)
        let specs = (0..<14).map { JobSpec(key: "j\($0)", data: []) }
        let tasks = try r.submit(specs).tasks("w1")
        #expect(tasks.count == 14)
        let done = tasks.enumerated().map { i, t in
            DoneRecord(lease: t.lease, outcome: .ok, body: i == 13 ? Array("not an image".utf8)
                                                                  : stageImage(side: 8, rgb: (UInt8(i), 0, 0), prompt: "p\(i)"))
        }
        _ = try r.done("w1", done)
        let kept = r.core.recentImages
        #expect(kept.count == BrokerCore.recentImageCount)
        #expect(kept.map(\.text) == (1...12).map { "p\($0)" })
        let html = statusPageHTML(try r.core.status(req: nil), images: kept)
        #expect(html.components(separatedBy: "src=\"data:image/bmp;base64,").count - 1 == 12)
        let first = try #require(html.range(of: "· p12"))
        let last = try #require(html.range(of: "· p1<"))
        #expect(first.lowerBound < last.lowerBound, "newest first")
        #expect(statusPageHTML(try r.core.status(req: nil)).contains("no stage has produced an image yet"))
    }
}
