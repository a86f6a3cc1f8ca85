import Testing
import HumeCore
@testable import HumeDiffusion

/// A white 64² image with one dark filled rectangle [x0, x1) × [y0, y1), and a small dark square near its left end
/// (so that the shape is not mirror-symmetric).
func rectangleSticker(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, side: Int = 64) -> RGBImage {
    var image = RGBImage(width: side, height: side, fill: 1)
    for y in y0..<y1 { for x in x0..<x1 { for c in 0..<3 { image[c, x, y] = c == 0 ? 0.2 : -0.6 } } }
    for y in max(0, y0 - 6)..<y0 { for x in x0..<(x0 + 6) { for c in 0..<3 { image[c, x, y] = -1 } } }
    return image
}

@Suite("shape-coherent patch sources")
struct SilhouetteTests {
    @Test("overlap is intersection over union of the inked pixels")
    func overlap() {
        let a = Silhouette(rectangleSticker(10, 20, 40, 40))
        let b = Silhouette(rectangleSticker(10, 20, 40, 40))
        #expect(a.overlap(b) == 1)
        let wide = Silhouette(width: 4, height: 1, ink: [true, true, false, false])
        let shifted = Silhouette(width: 4, height: 1, ink: [false, true, true, false])
        #expect(wide.overlap(shifted) == 1.0 / 3)
        #expect(Silhouette(width: 2, height: 1, ink: [false, false]).overlap(Silhouette(width: 2, height: 1, ink: [false, false])) == 1)
    }

    @Test("a mirrored, shifted copy is registered back onto the original")
    func registersMirrorAndShift() {
        let original = rectangleSticker(8, 24, 44, 40)
        let moved = StickerPose(mirrored: true, scale: 1, dx: 6, dy: -4).apply(original)
        let before = Silhouette(moved).overlap(Silhouette(original))
        let factor = 2
        let (pose, after) = StickerPose.register(Silhouette(moved).downsampled(by: factor),
                                                 to: Silhouette(original).downsampled(by: factor), maxShift: 4)
        #expect(before < 0.6, "the moved copy should overlap poorly before registration: \(before)")
        #expect(after > 0.9, "registered overlap \(after), pose \(pose)")
        #expect(pose.mirrored)
        let full = StickerPose(mirrored: pose.mirrored, scale: pose.scale, dx: pose.dx * factor, dy: pose.dy * factor)
        #expect(Silhouette(full.apply(moved)).overlap(Silhouette(original)) > 0.85)
    }

    @Test("registration by row bit sets finds the same pose and overlap as pose-by-pose registration, ties included",
          arguments: [(32, 32, 1), (32, 32, 2), (20, 12, 1), (64, 64, 3)])
    func registrationMatchesDefinition(width: Int, height: Int, step: Int) {
        var rng = SplitMix64(seed: UInt64(width * 100 + height + step))
        // Blobs: a random rectangle and a random disc each, so scale, mirror and shift all matter; plus an empty mask.
        func blob() -> Silhouette {
            let x0 = Int(rng.next() % UInt64(width / 2)), y0 = Int(rng.next() % UInt64(height / 2))
            let x1 = x0 + 2 + Int(rng.next() % UInt64(width / 2)), y1 = y0 + 2 + Int(rng.next() % UInt64(height / 2))
            let cx = Int(rng.next() % UInt64(width)), cy = Int(rng.next() % UInt64(height)), r = 2 + Int(rng.next() % 5)
            return Silhouette(width: width, height: height, ink: (0..<(width * height)).map { p in
                let x = p % width, y = p / width
                return (x >= x0 && x < x1 && y >= y0 && y < y1) || (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r
            })
        }
        let empty = Silhouette(width: width, height: height, ink: [Bool](repeating: false, count: width * height))
        let masks = (0..<6).map { _ in blob() } + [empty]
        for (i, a) in masks.enumerated() {
            for b in [masks[(i + 1) % masks.count], a, empty] {
                let fast = StickerPose.register(a, to: b, maxShift: 4, shiftStep: step)
                let direct = StickerPose.registerDirect(a, to: b, maxShift: 4, shiftStep: step)
                #expect(fast.0 == direct.0 && fast.1 == direct.1, "mask \(i): \(fast) against \(direct)")
            }
        }
    }

    @Test("only drawings whose shape agrees with the chosen one remain; the choice follows the weights")
    func keepsAgreeingShapes() {
        let horizontal = rectangleSticker(6, 26, 58, 38)
        let alsoHorizontal = rectangleSticker(8, 25, 56, 39)
        let vertical = rectangleSticker(26, 6, 38, 58)
        let masks = [horizontal, alsoHorizontal, vertical].map { Silhouette($0) }
        for register in [false, true] {
            let a = CoherentSources.choose(silhouettes: masks, weights: [1, 1, 1], minimumOverlap: 0.7, register: register, u: 0.1)
            #expect(a.base == 0 && a.kept.map(\.index) == [0, 1], "register \(register): \(a.kept)")
            let b = CoherentSources.choose(silhouettes: masks, weights: [1, 1, 1], minimumOverlap: 0.7, register: register, u: 0.9)
            #expect(b.base == 2 && b.kept.map(\.index) == [2], "register \(register): \(b.kept)")
            // A drawing with no weight is never chosen, wherever the point falls.
            let c = CoherentSources.choose(silhouettes: masks, weights: [1, 0, 0], minimumOverlap: 0.7, register: register, u: 0.99)
            #expect(c.base == 0)
        }
    }

    @Test("when the shape-setter's thing is drawn more than once, another thing of the same shape does not lend; unique captions change nothing")
    func sameThingLends() {
        // Three bars of one shape: two drawings of "pig face" and a "pig nose" whose silhouette agrees with theirs.
        let masks = (0..<3).map { _ in Silhouette(rectangleSticker(6, 26, 58, 38)) }
        for u in [0.1, 0.5] {
            let all = CoherentSources.choose(silhouettes: masks, weights: [1, 1, 1], minimumOverlap: 0.8, u: u)
            #expect(all.kept.count == 3, "no captions: every agreeing shape lends")
            let things = CoherentSources.choose(silhouettes: masks, weights: [1, 1, 1], minimumOverlap: 0.8,
                                                captions: ["pig face", "pig face", "pig nose"], u: u)
            #expect(things.kept.map(\.index) == [0, 1], "u \(u): \(things.kept)")
            let unique = CoherentSources.choose(silhouettes: masks, weights: [1, 1, 1], minimumOverlap: 0.8,
                                                captions: ["my dog", "my dog on the beach", "my dog asleep"], u: u)
            #expect(unique.kept.count == 3, "one caption each: as without captions")
        }
        // The nose setting the shape is drawn once: the faces may lend to it, as before.
        let nose = CoherentSources.choose(silhouettes: masks, weights: [1, 1, 1], minimumOverlap: 0.8,
                                          captions: ["pig face", "pig face", "pig nose"], u: 0.9)
        #expect(nose.base == 2 && nose.kept.count == 3, "\(nose.kept)")
    }

    @Test("of one thing at several sizes, the pictures enlarged more than twice give way to a larger one; alone or of unknown size, each is kept")
    func sharpestOfAThing() {
        let captions = ["printer", "printer", "printer", "printer network", "printer"]
        // 16 and 48 pixels are enlarged more than twice to reach 128² and a 512-pixel printer is there: they go.
        // The network printer is the only one of its caption, so its 16 pixels are all there is of it.
        #expect(CoherentSources.sharpest(captions: captions, sides: [16, 48, 512, 16, 64], outputSide: 128) == [2, 3, 4])
        // At 64² the 48-pixel printer is enlarged less than twice: it stays.
        #expect(CoherentSources.sharpest(captions: captions, sides: [16, 48, 512, 16, 64], outputSide: 64) == [1, 2, 3, 4])
        // Without a picture of 64 pixels or more, the largest of the thing is kept, the smaller left out.
        #expect(CoherentSources.sharpest(captions: ["dog", "dog", "cat"], sides: [40, 50, 20], outputSide: 128) == [1, 2])
        // A size that is not known (a built-in database) is never left out, nor does it remove another.
        #expect(CoherentSources.sharpest(captions: ["dog", "dog", "dog"], sides: [nil, 16, 500], outputSide: 128) == [0, 2])
        #expect(CoherentSources.sharpest(captions: ["dog", "dog"], sides: [nil, nil], outputSide: 128) == [0, 1])
        #expect(CoherentSources.sharpest(captions: ["dog", "dog"], sides: [nil, 16], outputSide: 128) == [0, 1])
    }

    @Test("a black-outlined drawing has a dark rim, an unoutlined one has none, and the two do not lend to each other")
    func outlines() {
        // The same bar, once filled in one colour (Noto's way) and once with a 2-pixel black outline (OpenMoji's).
        let plain = rectangleSticker(8, 24, 56, 44)
        var outlined = plain
        for y in 24..<44 { for x in 8..<56 where x < 10 || x >= 54 || y < 26 || y >= 42 { for c in 0..<3 { outlined[c, x, y] = -1 } } }
        let masks = [plain, outlined].map { Silhouette($0) }
        let shares = zip(masks, [plain, outlined]).map { $0.outlineShare(of: $1) }
        // The small dark square above the plain bar's left end is its only dark rim.
        #expect(shares[0] < 0.2, "\(shares)")
        #expect(shares[1] > 0.8, "\(shares)")
        #expect(Silhouette(RGBImage(width: 8, height: 8, fill: 1)).outlineShare(of: RGBImage(width: 8, height: 8, fill: 1)) == 0)
        for u in [0.1, 0.9] {
            let off = CoherentSources.choose(silhouettes: masks, weights: [1, 1], minimumOverlap: 0.8, u: u)
            #expect(off.kept.count == 2, "no outline check: both lend")
            let styles = shares.map { InkStyle(colour: nil, outline: $0) }
            let on = CoherentSources.choose(silhouettes: masks, weights: [1, 1], minimumOverlap: 0.8, styles: styles,
                                            agreement: StyleAgreement(outline: 0.3), u: u)
            #expect(on.kept.map(\.index) == [on.base], "u \(u): \(on.kept)")
            let loose = CoherentSources.choose(silhouettes: masks, weights: [1, 1], minimumOverlap: 0.8, styles: styles,
                                               agreement: StyleAgreement(outline: 1), u: u)
            #expect(loose.kept.count == 2)
        }
    }

    @Test("three seeds of one prompt fall apart in [0, 1), so alike drawings take turns setting the shape")
    func seedsSpread() {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<200 {
            let key = (0..<6).map { _ in Int(rng.next() % 9000) }
            let points = (1...3).map { CoherentSources.point(seed: UInt64($0), key: key) }
            #expect(points.allSatisfy { $0 >= 0 && $0 < 1 })
            for i in 0..<3 {
                for j in (i + 1)..<3 {
                    let d = abs(points[i] - points[j])
                    #expect(min(d, 1 - d) > 0.2, "\(key): \(points)")
                }
            }
            // Seed 1 with three equal drawings: each drawing sets the shape for exactly one of the seeds.
            let bases = points.map { u in
                CoherentSources.choose(silhouettes: [Silhouette](repeating: Silhouette(width: 1, height: 1, ink: [true]), count: 3),
                                       weights: [1, 1, 1], minimumOverlap: 0.5, u: u).base
            }
            #expect(Set(bases).count >= 2, "\(points) → \(bases)")
        }
        #expect(CoherentSources.point(seed: 1, key: [1, 2]) != CoherentSources.point(seed: 1, key: [2, 1]))
    }
}
