@testable import HumeDiffusion
import Testing

/// A colour the prompt names (`PromptColour`): which words name the thing's colour, and a sample made to show it.
@Suite("prompt colours")
struct PromptColourTests {
    @Test("the colour of the thing is read from the words before any phrase about a part or a setting")
    func parsing() {
        let cases: [(String, String?)] = [
            ("a blue car", "blue"), ("a little green frog", "green"), ("A Gray cat", "grey"), ("a light blue heart", "light blue"),
            ("a big red question mark", "red"), ("a bunch of purple grapes", "purple"), ("a pair of red cherries", "red"), ("a violet flower", "purple"),
            ("a red apple and a banana", "red"),
            // No colour of the thing: none named, two, a part's or a garment's, or the colour last ("an orange" is a fruit).
            ("a cat", nil), ("an orange", nil), ("the sky is blue", nil), ("a black and white cat", nil),
            ("a zebra with black and white stripes", nil), ("a baseball with red stitches", nil), ("a dancer in a red dress", nil),
            ("a red-blue ball", nil), ("", nil), ("a glass of red wine", nil), ("a glass of orange juice", nil),
        ]
        for (prompt, colour) in cases {
            #expect(PromptColour.parse(prompt)?.name == colour, "\(prompt)")
        }
    }

    /// White with a disc of radius 10 in `rgb` (bytes) and a black eye.
    static func disc(_ rgb: (UInt8, UInt8, UInt8)) -> [UInt8] {
        var px = [UInt8](repeating: 255, count: 3 * 32 * 32)
        for y in 0..<32 { for x in 0..<32 where (x - 16) * (x - 16) + (y - 16) * (y - 16) <= 100 {
            let p = y * 32 + x, eye = (18...20).contains(x) && (12...14).contains(y)
            (px[3 * p], px[3 * p + 1], px[3 * p + 2]) = eye ? (0, 0, 0) : rgb
        } }
        return px
    }

    @Test("a body of another colour is recoloured; one of the asked colour or a neighbouring one keeps its bytes")
    func following() throws {
        let red = Self.disc((230, 40, 30)), orange = Self.disc((240, 120, 20)), grey = Self.disc((128, 128, 128))
        let blue = try #require(PromptColour.parse("a blue ball"))
        let made = PromptColour.follow(blue, rgb8: red, width: 32, height: 32)
        #expect(made.recoloured && PromptColour.pictureShows(blue, rgb8: made.pixels) && !PromptColour.pictureShows(blue, rgb8: red))
        let centre = 3 * (20 * 32 + 12)
        #expect(made.pixels[centre + 2] > made.pixels[centre], "the body is blue: \(made.pixels[centre..<(centre + 3)])")
        let eye = 3 * (13 * 32 + 19)
        #expect(made.pixels[eye..<(eye + 3)] == red[eye..<(eye + 3)], "the eye keeps its colour")
        // Red asked of an orange body (a fox drawn orange) and of a red one: drawn as they are.
        for (prompt, picture) in [("a red fox", orange), ("a red ball", red), ("a grey ball", grey)] {
            let same = PromptColour.follow(try #require(PromptColour.parse(prompt)), rgb8: picture, width: 32, height: 32)
            #expect(!same.recoloured && same.pixels == picture, "\(prompt)")
        }
        // A dark brown body (nearer the palette's black than its brown) is brown: a body with a hue is named by the hues.
        let darkBrown = Self.disc((115, 75, 50))
        #expect(!PromptColour.follow(try #require(PromptColour.parse("a brown horse")), rgb8: darkBrown, width: 32, height: 32).recoloured)
        #expect(PromptColour.follow(try #require(PromptColour.parse("a black horse")), rgb8: darkBrown, width: 32, height: 32).recoloured)
        // A grey body asked for in green or black, a pink one asked for in red: recoloured (only warm hues are neighbours).
        let green = PromptColour.follow(try #require(PromptColour.parse("a green ball")), rgb8: grey, width: 32, height: 32)
        #expect(green.recoloured && green.pixels[centre + 1] > green.pixels[centre])
        let black = PromptColour.follow(try #require(PromptColour.parse("a black cat")), rgb8: grey, width: 32, height: 32)
        #expect(black.recoloured && black.pixels[centre] < 100, "\(black.pixels[centre..<(centre + 3)])")
        let pink = Self.disc((255, 150, 190))
        let redHeart = PromptColour.follow(try #require(PromptColour.parse("a red heart")), rgb8: pink, width: 32, height: 32)
        #expect(redHeart.recoloured && PromptColour.pictureShows(Recolour.parse("red")!, rgb8: redHeart.pixels)
                && !PromptColour.pictureShows(Recolour.parse("red")!, rgb8: pink))
        // Nothing but white: nothing to recolour.
        let white = [UInt8](repeating: 255, count: 3 * 32 * 32)
        #expect(PromptColour.follow(blue, rgb8: white, width: 32, height: 32) == (white, false))
    }
}
