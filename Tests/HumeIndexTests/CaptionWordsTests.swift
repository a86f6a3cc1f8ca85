import Foundation
import HumeData
import HumeEmbed
import HumeSearch
import HumeStages
import Testing

@Suite("Caption words")
struct CaptionWordsTests {
    @Test("a plural meets its singular, -ing and -er meet, short words and -ss/-us/-is stay (\"skis\" too: the rules are crude)")
    func stems() {
        let cases = [("hearts", "heart"), ("cherries", "cherry"), ("skiing", "ski"), ("skier", "ski"), ("skis", "skis"),
                     ("glasses", "glass"), ("glass", "glass"), ("boxes", "box"), ("peaches", "peach"), ("octopus", "octopus"),
                     ("iris", "iris"), ("bus", "bus"), ("dress", "dress"), ("dresses", "dress"), ("ring", "ring"),
                     ("sing", "sing"), ("cat", "cat")]
        for (word, stem) in cases { #expect(CaptionWords.stem(word) == stem, "\(word)") }
    }

    @Test("a text's words: lowercased runs of letters and digits, function and colour words out, each once")
    func words() {
        #expect(CaptionWords.words("A big pig, with a BIG nose!") == ["big", "pig", "nose"])
        #expect(CaptionWords.words("two hearts: two pink hearts") == ["two", "heart"])
        #expect(CaptionWords.words("a glass of orange juice") == ["glass", "juice"])
        #expect(CaptionWords.words("the cat in the hat") == ["cat", "hat"])
        #expect(CaptionWords.words("café ☕ 100") == ["café", "100"])
        #expect(CaptionWords.words("a the of").isEmpty)
    }

    @Test("the thing's words are those before a phrase about its parts, garments, setting or content")
    func thingWords() {
        #expect(CaptionWords.thingWords("a fairy with wings") == ["fairy"])
        #expect(CaptionWords.thingWords("a glass of orange juice") == ["glass"])
        #expect(CaptionWords.thingWords("a bunch of purple grapes") == ["bunch", "grape"])
        #expect(CaptionWords.thingWords("a black and white cat in the snow") == ["cat"])
        #expect(CaptionWords.thingWords("salt and pepper") == ["salt", "pepp"])  // "and" joins things; -er goes
        #expect(CaptionWords.thingWords("happy birthday") == ["happy", "birthday"])
        #expect(CaptionWords.thingWords("with a hat").isEmpty)
    }

    @Test("a caption naming the prompt's thing covers more of it than one naming only what the thing has")
    func thingCountsMore() {
        // Alike in rarity: "fairy" and "wing" are each one caption's.
        let w = CaptionWords(captions: ["fairy", "wing", "smiling face"])
        let p = w.prompt("a fairy with wings")
        let fairy = w.coverage(p, item: 0), wing = w.coverage(p, item: 1)
        #expect(abs(fairy - CaptionWords.thingWeight / (CaptionWords.thingWeight + 1)) < 1e-12 && abs(fairy + wing - 1) < 1e-12)
        #expect(w.score(similarity: 0.5, p, item: 0) { "fairy" } > w.score(similarity: 0.5, p, item: 1) { "wing" })
        // Without a phrase every word is the thing's: the shares are as before.
        let plain = w.prompt("fairy wings")
        #expect(abs(w.coverage(plain, item: 0) - 0.5) < 1e-12 && abs(w.coverage(plain, item: 1) - 0.5) < 1e-12)
    }

    /// With every word alike, "fire engine" holds two of the three words and the firefighter one, and the fire engine
    /// came first, though the embedding alone finds the firefighter. (Not a prompt of the fidelity lists.)
    @Test("a search with words finds the prompt's thing, not the thing its phrase names")
    func searchFindsTheThing() throws {
        try requireEmojiIndex()
        let loaded = try sharedStage.databases.database("emoji")
        let embedder = try Embedder(modelDirectory: testPaths.model)
        let prompt = "a firefighter with a fire engine"
        let found = try loaded.search(try embedder.embedFlat([prompt]), k: 8, prompts: [prompt])
        #expect(found[0].captions.first == "firefighter" && found[0].captions.contains("fire engine"), "\(found[0].captions)")
    }

    @Test("coverage weighs each word by its rarity among the captions")
    func coverage() {
        // "face" is in four captions, "pig" and "church" in one each.
        let w = CaptionWords(captions: ["pig face", "boar", "church", "place of worship", "grinning face", "cat face", "dog face"])
        let pig = w.prompt("a fat pig face")
        // The pig face holds "pig" and "face" but not "fat" (which no caption holds, so it weighs most).
        let full = w.coverage(pig, item: 0)
        #expect(full > 0 && full < 1)
        #expect(w.coverage(pig, item: 1) == 0)
        // The grinning face holds only the common word: less than the pig face, more than nothing.
        let common = w.coverage(pig, item: 4)
        #expect(common > 0 && common < full - 0.1)
        #expect(w.coverage(w.prompt("church"), item: 2) == 1)
        #expect(w.coverage(w.prompt("Churches!"), item: 2) == 1)
        // A colour word is no word here: the orange book holds none of "orange juice".
        let books = CaptionWords(captions: ["orange book", "beverage box"])
        #expect(books.coverage(books.prompt("a glass of orange juice"), item: 0) == 0)
        // A prompt without words is covered by every caption alike: the embedding alone ranks.
        let none = w.prompt("a the")
        #expect(none.isEmpty && w.coverage(none, item: 1) == 1)
    }

    @Test("the score is the similarity less the weighed share of the prompt's words the caption lacks, plus the weight for a caption that is the prompt, within −1…1")
    func score() {
        let captions = ["church", "place of worship", "bell", "bell with slash", "A knight’s helmet."]
        let w = CaptionWords(captions: captions)
        func score(_ s: Double, _ p: CaptionWords.Prompt, _ id: Int) -> Double { w.score(similarity: s, p, item: id) { captions[id] } }
        let p = w.prompt("a little church")
        let c = w.coverage(p, item: 0)
        #expect(abs(score(0.5, p, 0) - (0.5 - CaptionWords.weight * (1 - c))) < 1e-12)
        #expect(score(0.5, p, 1) == 0.5 - CaptionWords.weight)
        #expect(score(-0.98, p, 1) == -1)
        #expect(score(0.95, w.prompt("church"), 0) == 1)
        // A caption that is the prompt, up to case, punctuation and a leading article, gains the weight; one that holds
        // every word of the prompt and more does not.
        #expect(score(0.5, w.prompt("The church!"), 0) == 0.5 + CaptionWords.weight)
        let slash = w.prompt("Bell with slash")
        #expect(score(0.69, slash, 3) == 0.69 + CaptionWords.weight)
        #expect(score(0.73, slash, 2) < 0.73)
        #expect(score(0.6, w.prompt("bell"), 3) == 0.6)
        #expect(score(0.6, w.prompt("a knight's helmet"), 4) == 0.6 + CaptionWords.weight)
        #expect(CaptionWords.form("  A  Knight’s helmet. ") == "knight s helmet")
        #expect(CaptionWords.form("the") == "the")
    }

    /// Prompts whose first neighbour by the embedding alone is a related picture, though the prompt names the caption's
    /// own word: the search with words puts the named thing first. (Not prompts of the fidelity lists.)
    @Test("a search with words puts the picture whose caption the prompt names first, where the embedding alone did not")
    func searchWithWords() throws {
        try requireEmojiIndex()
        let loaded = try sharedStage.databases.database("emoji")
        let embedder = try Embedder(modelDirectory: testPaths.model)
        // The last two type a caption exactly, which the embedding puts second (the index embeds captions with keywords).
        let cases = [("a pink pig", "pig face", "boar"), ("a little church", "church", "place of worship"),
                     ("bell with slash", "bell with slash", "bell"), ("person in tuxedo", "person in tuxedo", "man in tuxedo")]
        let prompts = cases.map(\.0)
        let vectors = try embedder.embedFlat(prompts)
        let plain = try loaded.search(vectors, k: 8, prompts: prompts, words: false)
        let withWords = try loaded.search(vectors, k: 8, prompts: prompts)
        for (n, (prompt, named, related)) in cases.enumerated() {
            // The embedding alone: the related picture first (else this test shows nothing).
            #expect(plain[n].captions.first == related, "\(prompt): \(plain[n].captions)")
            #expect(withWords[n].captions.first == named, "\(prompt): \(withWords[n].captions)")
            #expect(withWords[n].scores! == withWords[n].scores!.sorted(by: >))
            // The stage's payload is the same search.
            let payload = try Neighbours(decoding: try loaded.payloads(Array(vectors[(n * 384)..<((n + 1) * 384)]), k: 8, prompts: [prompt])[0])
            #expect(payload.ids == withWords[n].ids && payload.scores == withWords[n].scores)
        }
        // A text without words (or none) ranks as the embedding does, with the same scores.
        let bare = try loaded.search(Array(vectors.prefix(2 * 384)), k: 8, prompts: ["", "—"])
        #expect(bare.map(\.ids) == plain.prefix(2).map(\.ids) && bare.map(\.scores) == plain.prefix(2).map(\.scores))
    }
}
