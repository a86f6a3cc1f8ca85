import HumeCore

/// The colour a prompt asks its thing to be ("a blue car", "a little green frog", "a black cat"), and a sample made to
/// show it.
///
/// The retriever finds the thing; a colour word rarely changes which thing ("a blue car" finds the red racing car and
/// the red automobile before the blue SUV, and the database may hold the thing in no other colour at all: a purple
/// elephant). So after a sample is made, its body colour (`Recolour.body`: the largest family of hues, or of greys) is
/// compared with the asked one, and a body of another colour is recoloured (`Recolour.apply`, the edit stage's
/// "make it blue"). A body of a neighbouring warm colour is left as drawn: a fox drawn orange is a red fox to a person,
/// and a recolour there would only change the drawing's own palette.
public enum PromptColour {
    /// The colours a person would still call by each name when asked for it (each name is its own neighbour): the warm
    /// hues run into each other (an orange fox is a red fox, a red-brown horse a brown one), but pink is not red (the
    /// emoji sets draw a pink heart and a red heart), purple is not pink, and a grey cat is not a black one.
    static let neighbours: [String: Set<String>] = [
        "red": ["red", "orange", "brown"], "orange": ["orange", "red", "yellow", "brown"], "yellow": ["yellow", "orange"],
        "brown": ["brown", "red", "orange"], "green": ["green"], "blue": ["blue"], "purple": ["purple"], "pink": ["pink"],
        "black": ["black"], "grey": ["grey"], "white": ["white"],
    ]

    /// The colour `prompt` asks its thing to be: one colour word of `Recolour.palette` (or a synonym: gray, violet,
    /// golden, gold) before any phrase about a part or a setting (`ThingPhrase`: with, in, on, …, and "of" after a
    /// container), with at most one modifier before it (light, pale, dark, deep), that is followed by another word, as
    /// an adjective is by its noun. Nil when the prompt names no colour of the thing, two ("a black and white cat", "a
    /// red-blue ball"), or ends with the colour ("an orange" is the fruit, "the sky is blue" names no colour of a thing).
    /// Emoji are read as their names first (`EmojiNames`: "a 🍏" asks for a green apple).
    public static func parse(_ prompt: String) -> Recolour? {
        var words = EmojiNames.shared.spell(prompt).lowercased().split(whereSeparator: { !$0.isLetter }).map(String.init)
        // "a black and white cat" names two colours: "and" ends the thing's words only after a word that is not one.
        // "of" ends them after a container ("a glass of red wine" is not a red glass), not after a number of things
        // ("a bunch of purple grapes").
        words = Array(words[..<ThingPhrase.end(of: words, joinsAnd: { Recolour.colourName($0) != nil })])
        var found: (index: Int, name: String)?
        for (i, word) in words.enumerated() {
            guard let w = Recolour.colourName(word) else { continue }
            if let f = found, f.name != w { return nil }
            found = (i, w)
        }
        guard let (i, name) = found, i + 1 < words.count else { return nil }
        let modifier = i > 0 && Recolour.modifiers.contains(words[i - 1]) ? words[i - 1] + " " : ""
        return Recolour.parse(modifier + name)
    }

    /// Whether a picture (interleaved RGB8) shows `colour` by its pixels: at least `share` of its drawn pixels (those
    /// not near white: some channel below 235) lie nearer, in RGB, to the asked colour or one of its neighbours than
    /// to any other palette colour. The fidelity evaluation's measure (`colour_shown`), counted pixel by pixel rather
    /// than from the body `follow` recolours, so it does not just repeat the rule it checks.
    public static func pictureShows(_ colour: Recolour, rgb8: [UInt8], share: Double = 0.25) -> Bool {
        let asked = accepted(colour)
        var drawn = 0, inColour = 0
        for p in 0..<(rgb8.count / 3) {
            let r = rgb8[3 * p], g = rgb8[3 * p + 1], b = rgb8[3 * p + 2]
            guard min(r, g, b) < 235 else { continue }
            drawn += 1
            if asked.contains(name(of: SIMD3(Double(r), Double(g), Double(b)) / 255)) { inColour += 1 }
        }
        return drawn > 0 && Double(inColour) >= share * Double(drawn)
    }

    /// The palette's colours without a clear hue.
    static let achromatic: Set<String> = ["black", "grey", "white"]
    /// The palette in name order, each colour marked with or without a hue: `name(of:)` runs once per pixel.
    static let entries = Recolour.palette.sorted { $0.key < $1.key }
        .map { (name: $0.key, rgb: $0.value, hue: !achromatic.contains($0.key)) }

    /// The palette name nearest a colour (RGB in [0, 1], Euclidean; ties to the first by name), among the colours with
    /// a hue (`hue` true), those without (false) or all of them (nil).
    public static func name(of rgb: SIMD3<Double>, hue: Bool? = nil) -> String {
        var best = "", bestDistance = Double.infinity
        for e in entries where hue == nil || e.hue == hue {
            let d = e.rgb - rgb, distance = (d * d).sum()
            if distance < bestDistance { (best, bestDistance) = (e.name, distance) }
        }
        return best
    }

    /// The colours accepted for `colour`: its own and its neighbours (`neighbours`).
    static func accepted(_ colour: Recolour) -> Set<String> { neighbours[colour.baseName] ?? [colour.baseName] }

    /// Whether a body (`Recolour.Body`) shows `colour`: the palette colour nearest the body's is the asked one or one of
    /// its neighbours (`neighbours`). A body with a hue is named among the colours with one (a dark brown horse is
    /// brown, not black), a grey body among black, grey and white.
    public static func shows(_ body: Recolour.Body, _ colour: Recolour) -> Bool {
        let rgb = Recolour.rgb(h: body.hue, s: body.grey ? 0 : body.saturation, v: body.value)
        return accepted(colour).contains(name(of: rgb, hue: !body.grey))
    }

    /// A sample (interleaved RGB8) in the asked colour: recoloured when its body does not show it, else unchanged
    /// (`recoloured` false; also when the sample has no body to take).
    public static func follow(_ colour: Recolour, rgb8: [UInt8], width: Int, height: Int) -> (pixels: [UInt8], recoloured: Bool) {
        // The body is found once, for the check and for the recolour.
        guard let analysed = Recolour.analyse(rgb8: rgb8, width: width, height: height), !shows(analysed.body, colour) else {
            return (rgb8, false)
        }
        return (colour.apply(rgb8: rgb8, analysed: analysed).pixels, true)
    }
}
