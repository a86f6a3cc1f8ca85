@testable import HumeDiffusion
import Testing

/// The editor's transplant region (`Editor.partMask`) on drawings made here: a disc "face" on white, and donors that
/// add a hat above it, change its colour, or sit beside it on their own white.
@Suite("editor part mask")
struct EditorPartTests {
    static let side = 32

    /// White, with filled rectangles (x0, y0, x1, y1, colour as one value per channel in [-1, 1]).
    static func drawing(_ boxes: [(Int, Int, Int, Int, (Float, Float, Float))]) -> RGBImage {
        var im = RGBImage(width: side, height: side, fill: 1)
        for (x0, y0, x1, y1, c) in boxes { for y in y0..<y1 { for x in x0..<x1 {
            im[0, x, y] = c.0; im[1, x, y] = c.1; im[2, x, y] = c.2
        } } }
        return im
    }

    static let yellow: (Float, Float, Float) = (1, 0.7, -0.8)
    static let black: (Float, Float, Float) = (-1, -1, -1)
    static let green: (Float, Float, Float) = (-0.5, 0.6, -0.6)
    static let face = (8, 12, 24, 28, yellow)

    static func mask(_ boxes: [(Int, Int, Int, Int)]) -> [Bool] {
        var m = [Bool](repeating: false, count: side * side)
        for (x0, y0, x1, y1) in boxes { for y in y0..<y1 { for x in x0..<x1 { m[y * side + x] = true } } }
        return m
    }

    static func count(_ m: [Bool], in box: (Int, Int, Int, Int)) -> Int {
        var n = 0
        for y in box.1..<box.3 { for x in box.0..<box.2 where m[y * side + x] { n += 1 } }
        return n
    }

    @Test("a hat that meets the mask only at its brim comes whole; a difference far from the mask stays the source's")
    func hatComesWhole() {
        let source = Self.drawing([Self.face, (12, 22, 20, 24, Self.black)])          // a mouth
        // The donor: the same face with a hat on top (brim at rows 10…12) and another mouth.
        let donor = Self.drawing([Self.face, (6, 10, 26, 12, Self.black), (10, 2, 22, 10, Self.black), (14, 20, 18, 22, Self.black)])
        let near = Self.mask([(10, 11, 20, 14)])                                    // the DiffEdit mask touches the brim
        let part = Editor.partMask(source: source, donor: donor, near: near, threshold: 0.3)
        #expect(Self.count(part, in: (10, 2, 22, 10)) == 12 * 8, "the crown above the mask is part of the hat")
        #expect(Self.count(part, in: (12, 20, 20, 24)) == 0, "the other mouth, away from the mask, is not transplanted")
        #expect(Self.count(part, in: (0, 28, 32, 32)) == 0)
    }

    @Test("the donor's white backdrop does not erase the source; white inside the donor's outline is its own")
    func backdropIsNotPart() {
        let source = Self.drawing([Self.face])
        // A small black-outlined white patch (a surgical mask) over the face's lower half, and a hat beside the face.
        let donor = Self.drawing([(10, 20, 22, 27, Self.black), (11, 21, 21, 26, (1, 1, 1)), (26, 2, 31, 8, Self.black)])
        let near = Self.mask([(8, 12, 24, 28), (24, 0, 32, 10)])
        let part = Editor.partMask(source: source, donor: donor, near: near, threshold: 0.3)
        #expect(Self.count(part, in: (11, 21, 21, 26)) == 50, "the white inside the outline is transplanted")
        #expect(Self.count(part, in: (26, 2, 31, 8)) == 30, "the hat beside the face is transplanted")
        #expect(Self.count(part, in: (9, 13, 23, 19)) == 0, "the donor's white backdrop over the face does not erase it")
        #expect(Editor.backdrop(donor)[0] && !Editor.backdrop(donor)[23 * Self.side + 15])
    }

    @Test("a region away from the mask comes when it is drawn in colours the source lacks, not when in the source's own")
    func newInkComes() {
        let blue: (Float, Float, Float) = (-0.6, 0.2, 1)
        let source = Self.drawing([Self.face, (12, 22, 20, 24, Self.black)])          // a face with a black mouth
        // The donor: a blue drop on the forehead, and another (black) mouth; the mask is on the eyes only.
        let donor = Self.drawing([Self.face, (18, 13, 21, 16, blue), (14, 20, 18, 22, Self.black)])
        let near = Self.mask([(10, 16, 16, 19)])
        let with = Editor.partMask(source: source, donor: donor, near: near, threshold: 0.3, newInkShare: 0.8)
        #expect(Self.count(with, in: (18, 13, 21, 16)) == 9, "the drop, in a colour the face lacks, comes")
        #expect(Self.count(with, in: (12, 20, 20, 24)) == 0, "the other mouth, black like the source's, stays the source's")
        let without = Editor.partMask(source: source, donor: donor, near: near, threshold: 0.3)
        #expect(Self.count(without, in: (18, 13, 21, 16)) == 0, "without the rule only regions that meet the mask come")
        // Too small a region of new ink (a speck) does not come.
        let speck = Self.drawing([Self.face, (18, 13, 20, 15, blue)])
        #expect(Editor.partMask(source: source, donor: speck, near: near, threshold: 0.3, newInkShare: 0.8).filter { $0 }.count == 0)
    }

    @Test("a donor of another kind gives only what it adds to its base: the glasses, lenses whole, not its face or mouth")
    func ownEditIsTheAddition() throws {
        let face = Self.face   // x 8..<24, y 12..<28
        let base = Self.drawing([face, (11, 16, 13, 18, Self.black), (19, 16, 21, 18, Self.black), (12, 23, 20, 24, Self.black)])
        // The donor: the same face with glasses over its eyes (lenses 10..<14 and 18..<22, a bridge) and a wider mouth.
        let donor = Self.drawing([face, (10, 15, 14, 19, Self.black), (18, 15, 22, 19, Self.black), (14, 16, 18, 17, Self.black),
                                  (11, 23, 21, 24, Self.black)])
        let whole = Self.mask([(8, 12, 24, 28)])
        let own = Editor.ownEdit(of: donor, base: base, part: whole, threshold: 0.3)
        let cut = try #require(own)
        #expect(Self.count(cut, in: (10, 15, 14, 19)) == 16 && Self.count(cut, in: (18, 15, 22, 19)) == 16,
                "each lens whole, though its middle is the base's eye")
        #expect(Self.count(cut, in: (14, 16, 18, 17)) == 4, "the bridge")
        #expect(Self.count(cut, in: (8, 25, 24, 28)) == 0 && Self.count(cut, in: (8, 12, 24, 14)) == 0, "the face is not the addition")
        #expect(Self.count(cut, in: (11, 23, 21, 24)) <= 2, "a mouth drawn a pixel wider is no addition: \(Self.count(cut, in: (11, 23, 21, 24)))")
        // A base that is the donor itself leaves nothing: no cut.
        #expect(Editor.ownEdit(of: donor, base: donor, part: whole, threshold: 0.3) == nil)
    }

    @Test("a recolour transplants the whole object, holes filled")
    func recolour() {
        let source = Self.drawing([Self.face])
        let donor = Self.drawing([(8, 12, 24, 28, Self.green)])
        let part = Editor.partMask(source: source, donor: donor, near: Self.mask([(14, 18, 18, 22)]), threshold: 0.3)
        #expect(Self.count(part, in: (8, 12, 24, 28)) == 16 * 16)
        #expect(part.filter { $0 }.count <= 18 * 18, "dilated by one pixel, no further")
    }

    @Test("a donor shift (StickerPose) moves content and fills with white; the editor's mismatch scores that same image")
    func shifted() {
        let im = Self.drawing([(0, 0, 1, 1, Self.black), Self.face])
        let s = StickerPose(dx: 2, dy: 1).apply(im)
        #expect(s[0, 2, 1] == -1 && s[0, 0, 0] == 1 && s[1, 2, 1] == -1)
        let source = Self.drawing([(8, 12, 24, 28, Self.green)])
        let outside = Self.mask([(10, 14, 20, 20)])
        var direct: Float = 0
        let n = Self.side * Self.side
        for p in 0..<n where !outside[p] { for c in 0..<3 { let t = s.pixels[c * n + p] - source.pixels[c * n + p]; direct += t * t } }
        #expect(Editor.mismatch(im, shiftedBy: (2, 1), from: source, outside: outside) == direct)
    }
}
