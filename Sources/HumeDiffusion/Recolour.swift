/// A whole-picture recolour: "make it green", "paint it black", "in light blue".
///
/// A retrieval editor answers "make it green" by pasting another picture that is green, which is right only when the
/// database holds this very thing in that colour (a red heart's blue twin) and wrong otherwise: a red square came back
/// as a green circle, a white flag as a black bird. A person asking for a colour wants *this* picture in that colour,
/// so the edit stage recolours the source itself: the picture's dominant colour (the largest family of hues, or of
/// greys when the thing has no hue) is moved to the asked-for colour in HSV, scaling saturation and value by the
/// target's over the body's, so shading, highlights, texture and the anti-aliased edge against white all keep their
/// proportions. Outlines, eyes, mouths and everything of another colour stay as they were, and so does the white
/// backdrop (white 4-connected to the border).
public struct Recolour: Sendable, Equatable {
    /// The colour's name as written, with its modifier ("light blue").
    public let name: String
    /// The target colour, RGB in [0, 1].
    public let rgb: SIMD3<Double>

    /// The colours understood: Noto Color Emoji's own palette, each the median non-white pixel of its coloured heart
    /// (🔴🟠🟡🟢🔵🟣🟤 circles give the same values), so a recoloured emoji matches the font's drawing of that colour.
    /// White is the font's highlight white rather than its grey outline.
    public static let palette: [String: SIMD3<Double>] = [
        "red": [0.957, 0.263, 0.212], "orange": [1, 0.596, 0], "yellow": [1, 0.8, 0.196],
        "green": [0.486, 0.702, 0.259], "blue": [0.098, 0.463, 0.824], "purple": [0.671, 0.278, 0.737],
        "brown": [0.718, 0.427, 0.329], "black": [0.259, 0.259, 0.259], "white": [0.96, 0.96, 0.96],
        "pink": [1, 0.58, 0.741], "grey": [0.576, 0.576, 0.576],
    ]
    static let synonyms = ["gray": "grey", "violet": "purple", "golden": "yellow", "gold": "yellow"]
    /// The words that may come before a colour: light and pale lighten it, dark and deep darken it.
    static let modifiers: Set<String> = ["light", "pale", "dark", "deep"]

    /// The palette colour a word names ("gray" → "grey"), or nil.
    static func colourName(_ word: String) -> String? {
        let w = synonyms[word] ?? word
        return palette[w] != nil ? w : nil
    }

    /// The colour's name without its modifier ("light blue" → "blue").
    public var baseName: String { String(name.split(separator: " ").last ?? "") }
    /// Words an edit text may hold besides one colour and its modifier and still be a plain recolour.
    static let filler: Set<String> = [
        "make", "turn", "paint", "colour", "color", "recolour", "recolor", "dye", "change", "it", "this", "that", "them",
        "its", "the", "to", "into", "in", "a", "an", "all", "please", "instead", "coloured", "colored", "one", "now",
        "entirely", "completely",
    ]

    public init(name: String, rgb: SIMD3<Double>) {
        self.name = name
        self.rgb = rgb
    }

    /// The recolour an edit text asks for, or nil when it asks for anything else. Every word must be one colour, at most
    /// one modifier (light, pale, dark, deep) or a word of asking ("make it", "paint it", "in"): "make it a red rose"
    /// and "with a blue hat" name things, and "black and white" two colours, so they are not recolours.
    public static func parse(_ edit: String) -> Recolour? {
        let words = edit.lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
        var colour: String?
        var modifier: String?
        for w in words {
            if let c = colourName(w) {
                guard colour == nil else { return nil }
                colour = c
            } else if modifiers.contains(w) {
                guard modifier == nil, colour == nil else { return nil }
                modifier = w
            } else if !filler.contains(w) {
                return nil
            }
        }
        guard let c = colour, var rgb = palette[c] else { return nil }
        switch modifier {
        case "light", "pale": rgb = rgb * 0.55 + SIMD3(repeating: 0.45)
        case "dark", "deep": rgb *= 0.6
        default: break
        }
        return Recolour(name: (modifier.map { $0 + " " } ?? "") + c, rgb: rgb)
    }

    /// Hue in degrees [0, 360), saturation and value in [0, 1].
    static func hsv(_ r: Double, _ g: Double, _ b: Double) -> (h: Double, s: Double, v: Double) {
        let mx = max(r, g, b), mn = min(r, g, b), c = mx - mn
        var h = 0.0
        if c > 1e-9 {
            if mx == r { h = ((g - b) / c).truncatingRemainder(dividingBy: 6) }
            else if mx == g { h = (b - r) / c + 2 }
            else { h = (r - g) / c + 4 }
            h *= 60
            if h < 0 { h += 360 }
        }
        return (h, mx > 1e-9 ? c / mx : 0, mx)
    }

    static func rgb(h: Double, s: Double, v: Double) -> SIMD3<Double> {
        let c = v * s, hp = (h / 60).truncatingRemainder(dividingBy: 6)
        let x = c * (1 - abs(hp.truncatingRemainder(dividingBy: 2) - 1)), m = v - c
        let (r, g, b): (Double, Double, Double)
        switch hp {
        case ..<1: (r, g, b) = (c, x, 0)
        case ..<2: (r, g, b) = (x, c, 0)
        case ..<3: (r, g, b) = (0, c, x)
        case ..<4: (r, g, b) = (0, x, c)
        case ..<5: (r, g, b) = (x, 0, c)
        default: (r, g, b) = (c, 0, x)
        }
        return SIMD3(r + m, g + m, b + m)
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }

    /// The backdrop: near-white pixels (every channel ≥ 251) 4-connected to the border (`Editor.reachable`).
    static func backdrop(_ rgb8: [UInt8], width: Int, height: Int) -> [Bool] {
        Editor.reachable(width: width, height: height) { p in rgb8[3 * p] >= 251 && rgb8[3 * p + 1] >= 251 && rgb8[3 * p + 2] >= 251 }
    }

    /// The thing's body, as `apply` recolours it: its pixels, whether it is grey (no clear hue), and its colour (the
    /// median hue, saturation and value of its clearly coloured pixels; for a grey body hue 0).
    public struct Body: Sendable, Equatable {
        public var pixels: [Int]
        public var grey: Bool
        public var hue: Double, saturation: Double, value: Double
    }

    /// A picture's body and every pixel's saturation and value: what `apply` recolours with, found once.
    struct Analysis {
        var body: Body
        var sat: [Double], val: [Double]
    }

    /// The body of `rgb8` (see `apply`), or nil when the picture has none (nothing but backdrop, or no grey to take).
    static func analyse(rgb8: [UInt8], width: Int, height: Int) -> Analysis? {
        let n = width * height
        precondition(rgb8.count == 3 * n, "one RGB triple per pixel")
        let back = Recolour.backdrop(rgb8, width: width, height: height)
        var hue = [Double](repeating: 0, count: n), sat = hue, val = hue
        var thing: [Int] = []
        for p in 0..<n {
            let c = Recolour.hsv(Double(rgb8[3 * p]) / 255, Double(rgb8[3 * p + 1]) / 255, Double(rgb8[3 * p + 2]) / 255)
            (hue[p], sat[p], val[p]) = c
            if !back[p] { thing.append(p) }
        }
        guard !thing.isEmpty else { return nil }
        // The hue family: the 70° window of hues holding most clearly coloured pixels, and the pixels within 35° of its
        // centre; nil when fewer than 15% of the thing have a clear hue.
        var centre = 0.0
        var coloured: [Int]?
        let chromatic = thing.filter { sat[$0] > 0.15 && val[$0] > 0.2 }
        if Double(chromatic.count) > 0.15 * Double(thing.count) {
            var bins = [Int](repeating: 0, count: 36)
            for p in chromatic { bins[min(Int(hue[p] / 10), 35)] += 1 }
            var best = 0, bestCount = -1
            for b in 0..<36 {
                let count = (-3...3).reduce(0) { $0 + bins[(b + $1 + 36) % 36] }
                if count > bestCount { (best, bestCount) = (b, count) }
            }
            centre = Double(best) * 10 + 5
            coloured = thing.filter { p in
                let d = abs((hue[p] - centre + 540).truncatingRemainder(dividingBy: 360) - 180)
                return d <= 35 && sat[p] > 0.08
            }
        }
        // The grey family: the greys within 0.15 in value of the commonest grey.
        var greyFamily: [Int] = []
        let greys = thing.filter { sat[$0] < 0.15 }
        if !greys.isEmpty {
            var bins = [Int](repeating: 0, count: 20)
            for p in greys { bins[min(Int(val[p] * 20), 19)] += 1 }
            var best = 0, bestCount = -1
            for b in 0..<20 {
                let count = (max(b - 2, 0)...min(b + 2, 19)).reduce(0) { $0 + bins[$1] }
                if count > bestCount { (best, bestCount) = (b, count) }
            }
            let middle = (Double(best) + 0.5) / 20
            greyFamily = greys.filter { abs(val[$0] - middle) <= 0.15 }
        }
        // The larger family is the body: a grey elephant with a pink ear is grey, a red heart with a white highlight red.
        let hued = coloured.flatMap { $0.count >= greyFamily.count ? $0 : nil }
        let grey = hued == nil
        let body = hued ?? greyFamily
        guard !body.isEmpty else { return nil }
        let strong = grey ? body : body.filter { sat[$0] > 0.25 }
        let used = strong.isEmpty ? body : strong
        // The body's hue: the median of its clearly coloured pixels' hues, measured from the window's centre.
        let hueOf = grey ? 0 : (centre + Recolour.median(used.map { (hue[$0] - centre + 540).truncatingRemainder(dividingBy: 360) - 180 }) + 360)
            .truncatingRemainder(dividingBy: 360)
        return Analysis(body: Body(pixels: body, grey: grey, hue: hueOf, saturation: Recolour.median(used.map { sat[$0] }),
                                   value: Recolour.median(used.map { val[$0] })), sat: sat, val: val)
    }

    /// The body of a picture (interleaved RGB8), or nil when it has none.
    public static func body(of rgb8: [UInt8], width: Int, height: Int) -> Body? {
        analyse(rgb8: rgb8, width: width, height: height)?.body
    }

    /// The source recoloured, and the mask of the pixels changed (255) or kept (0); every kept pixel's bytes are the
    /// source's. Nil when the picture has nothing to recolour (nothing but backdrop).
    ///
    /// The body is the larger of two families. The hue family, when pixels with a clear hue (saturation > 0.15, value >
    /// 0.2: a pale fill counts) make up more than 15% of the thing: the 70°-wide window of hues holding most of them,
    /// and every pixel of the thing within 35° of the window's centre with saturation above 0.08 (so highlights and the
    /// soft edge against white come along). The grey family: the thing's greys (saturation < 0.15) within 0.15 in value
    /// of the commonest grey. So a grey elephant with a pink ear is grey, and an outlined drawing's pale fill, not its
    /// black rim, is its body. Each body pixel's saturation and value are multiplied by the target's over the body's
    /// median (a grey body takes the target's saturation), and its hue becomes the target's.
    public func apply(rgb8: [UInt8], width: Int, height: Int) -> (pixels: [UInt8], mask: [UInt8])? {
        Recolour.analyse(rgb8: rgb8, width: width, height: height).map { apply(rgb8: rgb8, analysed: $0) }
    }

    /// `apply` with the body already found (`analyse`).
    func apply(rgb8: [UInt8], analysed: Analysis) -> (pixels: [UInt8], mask: [UInt8]) {
        let (body, sat, val) = (analysed.body, analysed.sat, analysed.val)
        let target = Recolour.hsv(rgb.x, rgb.y, rgb.z)
        let bodyS = body.saturation, bodyV = max(body.value, 1e-3)
        var pixels = rgb8
        var mask = [UInt8](repeating: 0, count: sat.count)
        for p in body.pixels {
            let s = body.grey || bodyS < 1e-3 ? target.s : min(sat[p] * target.s / bodyS, 1)
            let v = min(val[p] * target.v / bodyV, 1)
            let c = Recolour.rgb(h: target.h, s: s, v: v)
            for (i, x) in [c.x, c.y, c.z].enumerated() {
                pixels[3 * p + i] = UInt8((min(max(x, 0), 1) * 255).rounded())
            }
            mask[p] = 255
        }
        return (pixels, mask)
    }
}
