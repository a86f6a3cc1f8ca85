import HumeCore

/// The inked area of a sticker on a white ground, and how well two stickers' shapes agree. The generator uses it to
/// keep a sample's patch sources to drawings whose shapes agree with one chosen drawing, so that regions of two
/// drawings in different poses (a crocodile from the side and from above) are not stitched into one chimera.
public struct Silhouette: Sendable, Equatable {
    /// Width and height of the mask.
    public let width: Int, height: Int
    /// Row-major, true where the image is not (near) white.
    public let ink: [Bool]

    /// A pixel is ink when some channel is darker than `whiteLevel` (in [-1, 1]; the default is about 0.9 in [0, 1]).
    public init(_ image: RGBImage, whiteLevel: Float = 0.8) {
        width = image.width
        height = image.height
        let n = image.planeCount
        ink = (0..<n).map { p in
            image.pixels[p] < whiteLevel || image.pixels[n + p] < whiteLevel || image.pixels[2 * n + p] < whiteLevel
        }
    }

    /// A mask from its pixels (row-major).
    public init(width: Int, height: Int, ink: [Bool]) {
        precondition(ink.count == width * height, "one flag per pixel")
        self.width = width
        self.height = height
        self.ink = ink
    }

    /// The mean colour (RGB in [0, 1]) of `image`'s pixels under this mask's ink, or nil when it has none.
    public func meanColour(of image: RGBImage) -> [Double]? {
        let count = ink.filter { $0 }.count, n = image.planeCount
        guard count > 0, n == ink.count else { return nil }
        return (0..<3).map { c in
            var s = 0.0
            for p in 0..<n where ink[p] { s += Double(image.pixels[c * n + p]) }
            return (s / Double(count) + 1) / 2
        }
    }

    /// The share of the drawing's rim that is drawn in dark ink: of the ink pixels within `band` pixels (Chebyshev) of a
    /// non-ink pixel or the border, those whose every channel is below `darkLevel` (RGB in [0, 1]). A drawing with a
    /// black outline (OpenMoji) scores 0.4–0.7, one without (Noto, EmojiOne) 0–0.3; 0 when there is no ink.
    public func outlineShare(of image: RGBImage, band: Int = 2, darkLevel: Float = 0.3) -> Double {
        let n = image.planeCount
        guard n == ink.count, n > 0 else { return 0 }
        // A pixel is inside when every pixel of the (2·band + 1)² square around it is ink: an erosion, done as a
        // horizontal then a vertical pass (outside the image counts as not ink).
        func allInk(_ flags: [Bool], horizontal: Bool) -> [Bool] {
            var out = [Bool](repeating: false, count: n)
            for y in 0..<height {
                for x in 0..<width where flags[y * width + x] {
                    var ok = true
                    for d in -band...band {
                        let (xx, yy) = horizontal ? (x + d, y) : (x, y + d)
                        if xx < 0 || xx >= width || yy < 0 || yy >= height || !flags[yy * width + xx] { ok = false; break }
                    }
                    out[y * width + x] = ok
                }
            }
            return out
        }
        let inside = allInk(allInk(ink, horizontal: true), horizontal: false)
        let dark = 2 * darkLevel - 1
        var rim = 0, darkRim = 0
        for p in 0..<n where ink[p] && !inside[p] {
            rim += 1
            if image.pixels[p] < dark && image.pixels[n + p] < dark && image.pixels[2 * n + p] < dark { darkRim += 1 }
        }
        return rim == 0 ? 0 : Double(darkRim) / Double(rim)
    }

    /// The mask box-downsampled by an integer factor: a cell is ink when at least half its pixels are.
    public func downsampled(by f: Int) -> Silhouette {
        guard f > 1 else { return self }
        let w = width / f, h = height / f
        var out = [Bool](repeating: false, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                var count = 0
                for yy in 0..<f { for xx in 0..<f where ink[(y * f + yy) * width + x * f + xx] { count += 1 } }
                out[y * w + x] = 2 * count >= f * f
            }
        }
        return Silhouette(width: w, height: h, ink: out)
    }

    /// How many pixels are ink.
    public var area: Int { ink.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// Intersection over union of the two masks (1 when both are empty).
    public func overlap(_ other: Silhouette) -> Double {
        precondition(width == other.width && height == other.height, "silhouettes of one size")
        var both = 0, either = 0
        for i in ink.indices {
            if ink[i] && other.ink[i] { both += 1 }
            if ink[i] || other.ink[i] { either += 1 }
        }
        return either == 0 ? 1 : Double(both) / Double(either)
    }
}

/// How a drawing is inked, as far as lending regions to another goes: a grey cat does not lend half its face to an
/// orange one, nor a black-outlined drawing (OpenMoji) its rim to an unoutlined one (Noto, EmojiOne).
public struct InkStyle: Sendable, Equatable {
    /// The mean colour (RGB in [0, 1]) of the inked pixels (`Silhouette.meanColour`), nil when there is no ink.
    public var colour: [Double]?
    /// The share of the rim drawn in dark ink (`Silhouette.outlineShare`).
    public var outline: Double

    public init(colour: [Double]?, outline: Double) {
        self.colour = colour
        self.outline = outline
    }

    /// The style of `image`, inked where `mask` says.
    public init(_ mask: Silhouette, of image: RGBImage) {
        self.init(colour: mask.meanColour(of: image), outline: mask.outlineShare(of: image))
    }
}

/// How far a partner's `InkStyle` may be from the shape-setter's; nil: that aspect is not checked.
public struct StyleAgreement: Sendable, Equatable {
    /// The largest Euclidean distance between mean ink colours (RGB in [0, 1]); a drawing with no ink always agrees.
    public var colour: Double?
    /// The largest difference between dark-rim shares.
    public var outline: Double?

    public init(colour: Double? = nil, outline: Double? = nil) {
        self.colour = colour
        self.outline = outline
    }

    /// Whether any aspect is checked (else styles need not be measured).
    public var checks: Bool { colour != nil || outline != nil }

    public func agrees(_ a: InkStyle, _ b: InkStyle) -> Bool {
        if let limit = colour, let ca = a.colour, let cb = b.colour {
            var d2 = 0.0
            for c in 0..<3 { let t = ca[c] - cb[c]; d2 += t * t }
            if d2.squareRoot() > limit { return false }
        }
        if let limit = outline, abs(a.outline - b.outline) > limit { return false }
        return true
    }
}

/// Chooses, for one sample, the drawing that sets its shape and the drawings that may lend it regions.
public enum CoherentSources {
    /// The point `choose` draws the shape-setting drawing with for `seed`: consecutive seeds step by the golden ratio
    /// from a start that depends on `key` (the neighbour ids), so seeds 1, 2, 3 of one prompt fall in different thirds
    /// of [0, 1) and pick different drawings when there are three alike, instead of repeating one by chance.
    public static func point(seed: UInt64, key: [Int]) -> Double {
        var h: UInt64 = 0x5EED_C0DE_0000_0001
        for id in key {
            var mix = SplitMix64(seed: h ^ UInt64(bitPattern: Int64(id)))
            h = mix.next()
        }
        let start = Double(h >> 11) / Double(1 << 53)
        let step = 0.618_033_988_749_894_8 * Double(seed % (1 << 40))
        return (start + step).truncatingRemainder(dividingBy: 1)
    }

    /// The indexes of the pictures worth drawing from at `outputSide` (in order): of pictures that share a caption (the
    /// same thing, often the very same picture at several sizes, as an icon theme ships it at 16 to 512 pixels), those
    /// whose source (`sides`: the longer side in pixels, nil when unknown) is smaller than both half the output side and
    /// the largest of their caption are left out. A 16-pixel printer enlarged eightfold lends the sample its blur, and
    /// the 512-pixel one draws it sharp. A picture that is the only one of its caption, or whose size is not known,
    /// is always kept.
    public static func sharpest(captions: [String], sides: [Int?], outputSide: Int) -> [Int] {
        precondition(captions.count == sides.count, "one side per caption")
        var largest: [String: Int] = [:]
        for (c, side) in zip(captions, sides) { largest[c] = max(largest[c] ?? 0, side ?? 0) }
        return captions.indices.filter { i in
            guard let side = sides[i] else { return true }
            return side >= min(outputSide / 2, largest[captions[i]]!)
        }
    }

    /// The index of the shape-setting drawing, the one whose share of the total weight (`weights`, all ≥ 0, some > 0, in
    /// order) covers the point `u` in [0, 1),
    /// and every index whose silhouette overlaps that drawing's by at least `minimumOverlap` (the chosen one included),
    /// in their original order, each with the pose that registers it to the chosen one (identity unless `register`).
    /// With `styles` (one per silhouette), an index is kept only if its style agrees with the chosen one's (`agreement`).
    /// With `captions` (one per silhouette), when another index shares the chosen one's caption (the thing drawn in
    /// several styles), only such indexes are kept: a pig's nose, round like the pig's face, does not lend the face a
    /// second snout. Captions that are all different (a user's pictures, one caption each) change nothing.
    public static func choose(silhouettes: [Silhouette], weights: [Double], minimumOverlap: Double, register: Bool = false,
                              styles: [InkStyle] = [], agreement: StyleAgreement = StyleAgreement(),
                              captions: [String] = [],
                              u: Double) -> (base: Int, kept: [(index: Int, pose: StickerPose)]) {
        precondition(!silhouettes.isEmpty && silhouettes.count == weights.count, "one weight per silhouette")
        let total = weights.reduce(0, +)
        var base = 0
        if total > 0 {
            var u = min(max(u, 0), 1) * total
            for (i, w) in weights.enumerated() {
                base = i
                u -= w
                if u < 0 { break }
            }
            while weights[base] <= 0, base > 0 { base -= 1 }
        }
        let factor = max(1, silhouettes[base].width / 32)
        let target = silhouettes[base].downsampled(by: factor)
        let sameThing = captions.count == silhouettes.count && captions.indices.contains { $0 != base && captions[$0] == captions[base] }
        var kept: [(index: Int, pose: StickerPose)] = []
        for i in silhouettes.indices {
            if i == base { kept.append((i, StickerPose())); continue }
            if sameThing, captions[i] != captions[base] { continue }
            if styles.count == silhouettes.count, !agreement.agrees(styles[i], styles[base]) { continue }
            if register {
                let (pose, o) = StickerPose.register(silhouettes[i].downsampled(by: factor), to: target, maxShift: 4)
                if o >= minimumOverlap { kept.append((i, StickerPose(mirrored: pose.mirrored, scale: pose.scale, dx: pose.dx * factor, dy: pose.dy * factor))) }
            } else if silhouettes[base].overlap(silhouettes[i]) >= minimumOverlap {
                kept.append((i, StickerPose()))
            }
        }
        return (base, kept)
    }
}

/// A similarity transform of a sticker about the image centre: mirror, then scale, then shift (in pixels).
public struct StickerPose: Sendable, Equatable {
    public var mirrored = false
    public var scale = 1.0
    public var dx = 0, dy = 0

    public init(mirrored: Bool = false, scale: Double = 1, dx: Int = 0, dy: Int = 0) {
        self.mirrored = mirrored
        self.scale = scale
        self.dx = dx
        self.dy = dy
    }

    /// The source position (in the untransformed image) that lands on output pixel (x, y).
    @inline(__always) func source(_ x: Int, _ y: Int, width: Int, height: Int) -> (Double, Double) {
        let cx = Double(width - 1) / 2, cy = Double(height - 1) / 2
        var u = (Double(x - dx) - cx) / scale + cx
        let v = (Double(y - dy) - cy) / scale + cy
        if mirrored { u = Double(width - 1) - u }
        return (u, v)
    }

    /// The image under this pose, bilinear, white (1) outside the original.
    public func apply(_ image: RGBImage) -> RGBImage {
        if self == StickerPose() { return image }
        var out = RGBImage(width: image.width, height: image.height, fill: 1)
        let w = image.width, h = image.height, n = image.planeCount
        for y in 0..<h {
            for x in 0..<w {
                let (u, v) = source(x, y, width: w, height: h)
                let x0 = Int(u.rounded(.down)), y0 = Int(v.rounded(.down))
                let fx = Float(u - Double(x0)), fy = Float(v - Double(y0))
                for c in 0..<3 {
                    func at(_ xx: Int, _ yy: Int) -> Float {
                        xx >= 0 && xx < w && yy >= 0 && yy < h ? image.pixels[c * n + yy * w + xx] : 1
                    }
                    let top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx
                    let bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx
                    out.pixels[c * n + y * w + x] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }

    /// The mask under this pose (nearest neighbour, no ink outside the original).
    public func apply(_ mask: Silhouette) -> Silhouette {
        let w = mask.width, h = mask.height
        var ink = [Bool](repeating: false, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                let (u, v) = source(x, y, width: w, height: h)
                let xi = Int(u.rounded()), yi = Int(v.rounded())
                if xi >= 0, xi < w, yi >= 0, yi < h { ink[y * w + x] = mask.ink[yi * w + xi] }
            }
        }
        return Silhouette(width: w, height: h, ink: ink)
    }

    /// The pose of `mask` (mirror or not, scales 0.8…1.25, shifts up to ±`maxShift` in steps of `shiftStep`) whose
    /// silhouette overlaps `target` most, and that overlap. The same as applying each pose to `mask` and measuring
    /// `overlap`, computed without building the posed masks: the pose's source column depends on x alone and its row on
    /// y alone, so each is a table, and the union is |target| + |posed| − |both|.
    ///
    /// Masks up to 64 pixels wide (the generator registers at 32²) go row by row as bit sets: for one mirror, scale and
    /// dx the mask's rows are gathered through the column table once, and every dy then costs a popcount per row. The
    /// poses are compared in the same order as `registerDirect` (mirror, scale, dy, dx), so ties resolve alike.
    public static func register(_ mask: Silhouette, to target: Silhouette, maxShift: Int, shiftStep: Int = 1) -> (StickerPose, Double) {
        precondition(mask.width == target.width && mask.height == target.height, "silhouettes of one size")
        let w = mask.width, h = mask.height
        guard w <= 64, maxShift >= 0, shiftStep > 0 else { return registerDirect(mask, to: target, maxShift: maxShift, shiftStep: shiftStep) }
        func bits(_ m: Silhouette, row: Int, columns: [Int]? = nil) -> UInt64 {
            var b: UInt64 = 0
            for x in 0..<w {
                let col = columns.map { $0[x] } ?? x
                if col >= 0 && m.ink[row * w + col] { b |= 1 << UInt64(x) }
            }
            return b
        }
        let goal = (0..<h).map { bits(target, row: $0) }
        let targetArea = target.area
        var best = (StickerPose(), mask.overlap(target))
        let shifts = Array(stride(from: -maxShift, through: maxShift, by: shiftStep)), count = shifts.count
        var columns = [Int](repeating: -1, count: w)
        var gathered = [UInt64](repeating: 0, count: h), gatheredArea = [Int](repeating: 0, count: h)
        var overlaps = [Double](repeating: 0, count: count * count)   // [dy index * count + dx index]
        for mirrored in [false, true] {
            for scale in [0.8, 0.9, 1.0, 1.1, 1.25] {
                let rowTables = shifts.map { dy in
                    (0..<h).map { y -> Int in
                        let yi = Int(StickerPose(mirrored: mirrored, scale: scale, dx: 0, dy: dy).source(0, y, width: w, height: h).1.rounded())
                        return yi >= 0 && yi < h ? yi : -1
                    }
                }
                for (xi, dx) in shifts.enumerated() {
                    let pose = StickerPose(mirrored: mirrored, scale: scale, dx: dx, dy: 0)
                    for x in 0..<w {
                        let u = Int(pose.source(x, 0, width: w, height: h).0.rounded())
                        columns[x] = u >= 0 && u < w ? u : -1
                    }
                    for r in 0..<h {
                        gathered[r] = bits(mask, row: r, columns: columns)
                        gatheredArea[r] = gathered[r].nonzeroBitCount
                    }
                    for yi in 0..<count {
                        let rows = rowTables[yi]
                        var both = 0, posedArea = 0
                        for y in 0..<h where rows[y] >= 0 {
                            posedArea += gatheredArea[rows[y]]
                            both += (gathered[rows[y]] & goal[y]).nonzeroBitCount
                        }
                        let either = targetArea + posedArea - both
                        overlaps[yi * count + xi] = either == 0 ? 1 : Double(both) / Double(either)
                    }
                }
                for yi in 0..<count {
                    for xi in 0..<count where overlaps[yi * count + xi] > best.1 + 1e-9 {
                        best = (StickerPose(mirrored: mirrored, scale: scale, dx: shifts[xi], dy: shifts[yi]), overlaps[yi * count + xi])
                    }
                }
            }
        }
        return best
    }

    /// `register` pose by pose (the definition; any width).
    static func registerDirect(_ mask: Silhouette, to target: Silhouette, maxShift: Int, shiftStep: Int = 1) -> (StickerPose, Double) {
        precondition(mask.width == target.width && mask.height == target.height, "silhouettes of one size")
        let w = mask.width, h = mask.height
        let targetArea = target.area
        var best = (StickerPose(), mask.overlap(target))
        var columns = [Int](repeating: -1, count: w), rows = [Int](repeating: -1, count: h)
        mask.ink.withUnsafeBufferPointer { ink in
            target.ink.withUnsafeBufferPointer { goal in
                for mirrored in [false, true] {
                    for scale in [0.8, 0.9, 1.0, 1.1, 1.25] {
                        for dy in stride(from: -maxShift, through: maxShift, by: shiftStep) {
                            for dx in stride(from: -maxShift, through: maxShift, by: shiftStep) {
                                let pose = StickerPose(mirrored: mirrored, scale: scale, dx: dx, dy: dy)
                                for x in 0..<w {
                                    let xi = Int(pose.source(x, 0, width: w, height: h).0.rounded())
                                    columns[x] = xi >= 0 && xi < w ? xi : -1
                                }
                                for y in 0..<h {
                                    let yi = Int(pose.source(0, y, width: w, height: h).1.rounded())
                                    rows[y] = yi >= 0 && yi < h ? yi : -1
                                }
                                var both = 0, posedArea = 0
                                for y in 0..<h where rows[y] >= 0 {
                                    let src = rows[y] * w, dst = y * w
                                    for x in 0..<w where columns[x] >= 0 && ink[src + columns[x]] {
                                        posedArea += 1
                                        if goal[dst + x] { both += 1 }
                                    }
                                }
                                let either = targetArea + posedArea - both
                                let o = either == 0 ? 1 : Double(both) / Double(either)
                                if o > best.1 + 1e-9 { best = (pose, o) }
                            }
                        }
                    }
                }
            }
        }
        return best
    }
}
