import HumeCore
import Testing
@testable import HumeData

@Suite("PNG codec")
struct PNGCodecTests {
    func gradient(_ w: Int, _ h: Int, channels: Int) -> PixelImage {
        var px = [UInt8]()
        for y in 0..<h { for x in 0..<w { for c in 0..<channels { px.append(UInt8((x * 7 + y * 13 + c * 50) & 0xff)) } } }
        return PixelImage(width: w, height: h, channels: channels, pixels: px)
    }

    @Test("RGB and RGBA round trip exactly, with tEXt metadata readable back")
    func roundTrip() throws {
        for ch in [3, 4] {
            let img = gradient(37, 21, channels: ch)
            let meta = [("Title", "a red apple"), ("hume.ids", "1,2,3"), ("hume.note", "café")]
            let png = try PNGCodec.encode(img, metadata: meta)
            let back = try PNGCodec.decode(png, alpha: ch == 4)
            #expect(back == img)
            let text = try PNGCodec.textChunks(png)
            #expect(text.map(\.0) == meta.map(\.0))
            #expect(text.map(\.1) == meta.map(\.1))
        }
    }

    @Test("CRC-32 matches the standard check value")
    func crc() {
        #expect(PNGCodec.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test("non-PNG, truncated and corrupt data give clear errors, never a crash")
    func hostile() throws {
        let png = try PNGCodec.encode(gradient(16, 16, channels: 3), metadata: [("k", "v")])
        #expect(throws: HumeError.self) { try PNGCodec.decode(Array("hello, not a png".utf8)) }
        #expect(throws: HumeError.self) { try PNGCodec.decode([]) }
        for cut in [8, 20, 40, png.count / 2, png.count - 13] {
            #expect(throws: HumeError.self, "cut at \(cut)") { try PNGCodec.decode(Array(png[0..<cut])) }
            #expect(throws: HumeError.self, "cut at \(cut)") { try PNGCodec.textChunks(Array(png[0..<cut])) }
        }
        // Flip a byte inside the image data: libpng's CRC check refuses it.
        var bad = png
        bad[png.count - 20] ^= 0xff
        #expect(throws: HumeError.self) { try PNGCodec.decode(bad) }
        #expect(throws: HumeError.self) { try PNGCodec.textChunks(bad) }
        do {
            _ = try PNGCodec.decode(Array("GIF89a....".utf8))
        } catch let e as HumeError {
            #expect(e.message.contains("not a PNG"))
        }
    }

    @Test("decoding refuses images beyond the dimension and byte limits")
    func limits() throws {
        let png = try PNGCodec.encode(gradient(64, 8, channels: 3))
        #expect(throws: HumeError.self) { try PNGCodec.decode(png, limits: .init(maxDimension: 32)) }
        #expect(throws: HumeError.self) { try PNGCodec.decode(png, limits: .init(maxBytes: 10)) }
        #expect(try PNGCodec.decode(png, limits: .init(maxDimension: 64)).width == 64)
    }

    @Test("a contact sheet places tiles on a white grid")
    func sheet() throws {
        let red = [UInt8](repeating: 0, count: 4 * 4 * 3).enumerated().map { $0.offset % 3 == 0 ? 255 : 0 } as [UInt8]
        let s = try ContactSheet.compose([red, red, red], side: 4, columns: 2, gutter: 1)
        #expect(s.width == 2 * 4 + 3 && s.height == 2 * 4 + 3)
        func px(_ x: Int, _ y: Int) -> [UInt8] { Array(s.pixels[(y * s.width + x) * 3 ..< (y * s.width + x) * 3 + 3]) }
        #expect(px(0, 0) == [255, 255, 255])
        #expect(px(1, 1) == [255, 0, 0])
        #expect(px(6, 1) == [255, 0, 0]) // second tile
        #expect(px(1, 6) == [255, 0, 0]) // third tile, second row
        #expect(px(6, 6) == [255, 255, 255]) // the empty fourth slot stays white
        #expect(throws: HumeError.self) { try ContactSheet.compose([[1, 2, 3]], side: 4) }
    }
}
