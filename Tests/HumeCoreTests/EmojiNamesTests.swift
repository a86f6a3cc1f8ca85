import Foundation
import HumeCore
import Testing

@Suite("Emoji read as their names")
struct EmojiNamesTests {
    /// Lines as `emoji-test.txt` has them, a header, a comment and a component among them.
    static let sample = """
        # group: Animals & Nature
        1F438                                                  ; fully-qualified     # 🐸 E0.6 frog
        1F353                                                  ; fully-qualified     # 🍓 E0.6 strawberry
        2764 FE0F                                              ; fully-qualified     # ❤️ E0.6 red heart
        2764                                                   ; unqualified         # ❤ E0.6 red heart
        1F44B 1F3FD                                            ; fully-qualified     # 👋🏽 E1.0 waving hand: medium skin tone
        1F44B                                                  ; fully-qualified     # 👋 E0.6 waving hand
        1F9D1 200D 1F680                                       ; fully-qualified     # 🧑‍🚀 E12.1 astronaut
        1F1EB 1F1F7                                            ; fully-qualified     # 🇫🇷 E0.6 flag: France
        0031 FE0F 20E3                                         ; fully-qualified     # 1️⃣ E0.6 keycap: 1
        1F3FB                                                  ; component           # 🏻 E1.0 light skin tone
        # subtotal:		4 fully-qualified
        not a line at all
        """

    @Test("a prompt's emoji become their names, set off by spaces; other text is left as it was")
    func spelling() {
        let names = EmojiNames(emojiTest: Self.sample)
        #expect(names.count == 9)
        #expect(names.spell("🍓") == "strawberry")
        #expect(names.spell("a 🐸") == "a frog")
        #expect(names.spell("🍓🍌") == "strawberry 🍌")       // one the table lacks stays as it was
        #expect(names.spell("🍓🐸") == "strawberry frog")
        #expect(names.spell("I ❤️ NY") == "I red heart NY")
        #expect(names.spell("I ❤ NY") == "I red heart NY")    // without the variation selector
        #expect(names.spell("a🐸!") == "a frog!")
        #expect(names.spell("👋🏽 hello") == "waving hand: medium skin tone hello")
        #expect(names.spell("👋🏿") == "waving hand")           // a skin tone the table lacks: the emoji's own name
        #expect(names.spell("🧑‍🚀 in space") == "astronaut in space")
        #expect(names.spell("🇫🇷") == "flag: France")
        #expect(names.spell("1️⃣ apple") == "keycap: 1 apple")
        for plain in ["a red apple", "1 apple", "piña colada", "Tux—the Linux mascot!", "o’clock", ""] {
            #expect(names.spell(plain) == plain)
        }
        #expect(EmojiNames(emojiTest: "").spell("a 🐸") == "a 🐸")
        // In an edit, a face emoji is what the face has.
        let faces = EmojiNames(emojiTest: Self.sample + """

            1F60E                                                  ; fully-qualified     # 😎 E1.0 smiling face with sunglasses
            1F639                                                  ; fully-qualified     # 😹 E0.6 cat with tears of joy
            1F498                                                  ; fully-qualified     # 💘 E0.6 heart with arrow
            """)
        #expect(faces.spell("with 😎") == "with smiling face with sunglasses")
        #expect(faces.spell("with 😎", facesAsWhatTheyHave: true) == "with sunglasses")
        #expect(faces.spell("with 😹", facesAsWhatTheyHave: true) == "with tears of joy")
        #expect(faces.spell("with 💘", facesAsWhatTheyHave: true) == "with heart with arrow")
        #expect(faces.spell("with 🐸", facesAsWhatTheyHave: true) == "with frog")
    }
}
