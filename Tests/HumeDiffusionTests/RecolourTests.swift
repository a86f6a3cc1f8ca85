@testable import HumeDiffusion
import Testing

/// Whole-picture recolours (`Recolour`) on drawings made here: a shaded red disc with a black eye on white, and a grey
/// square with a white highlight.
@Suite("recolour edits")
struct RecolourTests {
    static let side = 32

    @Test("a recolour is recognised in the ways people write it; edits that name things or two colours are not")
    func parsing() {
        #expect(Recolour.parse("make it green")?.name == "green")
        #expect(Recolour.parse("Paint it black.")?.name == "black")
        #expect(Recolour.parse("turn it gray")?.name == "grey")
        #expect(Recolour.parse("in light blue")?.name == "light blue")
        #expect(Recolour.parse("colour it dark red")?.name == "dark red")
        #expect(Recolour.parse("purple")?.rgb == Recolour.palette["purple"])
        let light = Recolour.parse("make it light blue")!.rgb, blue = Recolour.palette["blue"]!
        #expect(light.x > blue.x && light.y > blue.y && light.z > blue.z, "light is nearer white")
        for other in ["make it a red rose", "with a blue hat", "make it black and white", "make it sad", "make it",
                      "wearing a green hat", "blue eyes", ""] {
            #expect(Recolour.parse(other) == nil, "\(other)")
        }
    }

    /// White; a red disc of radius 10 at the centre, darker (value 0.6) on its left half; a black eye inside it.
    static func disc() -> [UInt8] {
        var px = [UInt8](repeating: 255, count: 3 * side * side)
        for y in 0..<side { for x in 0..<side {
            let dx = x - 16, dy = y - 16, p = y * side + x
            guard dx * dx + dy * dy <= 100 else { continue }
            let eye = (18...20).contains(x) && (12...14).contains(y)
            let shade = x < 16 ? 0.6 : 1.0
            let c: (Double, Double, Double) = eye ? (0, 0, 0) : (0.9 * shade, 0.15 * shade, 0.1 * shade)
            px[3 * p] = UInt8(c.0 * 255); px[3 * p + 1] = UInt8(c.1 * 255); px[3 * p + 2] = UInt8(c.2 * 255)
        } }
        return px
    }

    static func hsv(_ px: [UInt8], _ p: Int) -> (h: Double, s: Double, v: Double) {
        Recolour.hsv(Double(px[3 * p]) / 255, Double(px[3 * p + 1]) / 255, Double(px[3 * p + 2]) / 255)
    }

    @Test("the body takes the colour with its shading; the eye and the backdrop keep their bytes; the mask is the body")
    func discTurnsGreen() throws {
        let source = Self.disc()
        let green = try #require(Recolour.parse("make it green"))
        let r = try #require(green.apply(rgb8: source, width: Self.side, height: Self.side))
        let target = Recolour.hsv(green.rgb.x, green.rgb.y, green.rgb.z)
        let eye = 13 * Self.side + 19, lit = 16 * Self.side + 22, dark = 16 * Self.side + 10, corner = 0
        for p in [eye, corner] {
            #expect(r.mask[p] == 0 && r.pixels[(3 * p)..<(3 * p + 3)] == source[(3 * p)..<(3 * p + 3)], "pixel \(p) kept")
        }
        for p in 0..<(Self.side * Self.side) where r.mask[p] == 0 {
            #expect(r.pixels[(3 * p)..<(3 * p + 3)] == source[(3 * p)..<(3 * p + 3)], "pixel \(p) outside the mask changed")
        }
        for p in [lit, dark] {
            #expect(r.mask[p] == 255)
            let c = Self.hsv(r.pixels, p)
            #expect(abs(c.h - target.h) < 3, "hue \(c.h) against the target's \(target.h)")
        }
        // The lit half is at the target's value, the shaded half keeps its 0.6 of it.
        let vLit = Self.hsv(r.pixels, lit).v, vDark = Self.hsv(r.pixels, dark).v
        #expect(abs(vLit - target.v) < 0.02 && abs(vDark / vLit - 0.6) < 0.03, "values \(vLit), \(vDark)")
        let disc = (0..<(Self.side * Self.side)).filter { source[3 * $0] < 250 }.count
        let masked = r.mask.filter { $0 == 255 }.count
        #expect(masked == disc - 9, "the whole disc but its 3×3 eye: \(masked) of \(disc)")
    }

    @Test("a grey thing takes the colour too; a picture of nothing but backdrop has nothing to recolour")
    func greyAndEmpty() throws {
        var px = [UInt8](repeating: 255, count: 3 * Self.side * Self.side)
        for y in 8..<24 { for x in 8..<24 {
            let p = y * Self.side + x, v: UInt8 = (x == 10 && y == 10) ? 230 : 128
            px[3 * p] = v; px[3 * p + 1] = v; px[3 * p + 2] = v
        } }
        let red = try #require(Recolour.parse("make it red"))
        let r = try #require(red.apply(rgb8: px, width: Self.side, height: Self.side))
        let centre = 16 * Self.side + 16
        let c = Self.hsv(r.pixels, centre)
        #expect(r.mask[centre] == 255 && (c.h < 10 || c.h > 350) && c.s > 0.7, "grey became red: \(c)")
        #expect(r.mask[10 * Self.side + 10] == 0, "a highlight far from the body's grey is kept")
        #expect(red.apply(rgb8: [UInt8](repeating: 255, count: 3 * Self.side * Self.side), width: Self.side, height: Self.side)?.pixels == nil)
    }

    @Test("an outlined drawing with a pale fill: the fill is the body, the black rim keeps its bytes")
    func paleFillInsideOutline() throws {
        // A lavender square (saturation 0.17) inside a 2-pixel black rim, as OpenMoji draws: a grey body taken from the
        // rim would paint the outline and leave the fill.
        var px = [UInt8](repeating: 255, count: 3 * Self.side * Self.side)
        for y in 4..<28 { for x in 4..<28 {
            let p = y * Self.side + x, rim = x < 6 || x > 25 || y < 6 || y > 25
            (px[3 * p], px[3 * p + 1], px[3 * p + 2]) = rim ? (0, 0, 0) : (215, 195, 235)
        } }
        let body = try #require(Recolour.body(of: px, width: Self.side, height: Self.side))
        #expect(!body.grey && abs(body.hue - 270) < 10, "lavender body: \(body)")
        let r = try #require(Recolour.parse("make it red")!.apply(rgb8: px, width: Self.side, height: Self.side))
        let fill = 16 * Self.side + 16, rim = 5 * Self.side + 16
        #expect(r.mask[fill] == 255 && r.mask[rim] == 0 && r.pixels[(3 * rim)..<(3 * rim + 3)] == [0, 0, 0])
    }

    @Test("the larger family is the body: a grey thing with a smaller coloured patch is grey, and the patch keeps its bytes")
    func greyWithAccent() throws {
        // A grey square (a quarter of it a pink "ear", more than 15% of the thing): the grey is the body.
        var px = [UInt8](repeating: 255, count: 3 * Self.side * Self.side)
        for y in 4..<28 { for x in 4..<28 {
            let p = y * Self.side + x
            (px[3 * p], px[3 * p + 1], px[3 * p + 2]) = x < 12 && y < 16 ? (250, 180, 200) : (160, 165, 170)
        } }
        let body = try #require(Recolour.body(of: px, width: Self.side, height: Self.side))
        #expect(body.grey)
        let r = try #require(Recolour.parse("make it purple")!.apply(rgb8: px, width: Self.side, height: Self.side))
        let ear = 8 * Self.side + 6, grey = 20 * Self.side + 20
        #expect(r.mask[grey] == 255 && r.mask[ear] == 0 && r.pixels[(3 * ear)..<(3 * ear + 3)] == px[(3 * ear)..<(3 * ear + 3)])
    }
}
