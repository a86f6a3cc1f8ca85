import Foundation
import HumeCore

/// The words a prompt shares with a database's captions: what a text search adds to the sentence embedding's
/// similarity (`LoadedDatabase.search`).
///
/// MiniLM's similarity alone puts a related picture first when its caption is the nearer sentence: "a pink pig" finds
/// the boar (0.647) before the pig face (0.645), "a little church" the place of worship, "a no smoking sign" the
/// cigarette, "a hospital building" the office building. Each of those prompts names the caption's own word. So a
/// neighbour's score is its cosine similarity less `weight` times the share of the prompt's words its caption lacks,
/// each word weighed by its rarity among the captions (inverse document frequency): a rare word such as "church"
/// counts for much, "face" for little, and a caption that holds every word of the prompt loses nothing.
///
/// Words are runs of letters and digits, lowercased, without a short list of English function words, and reduced by a
/// few suffix rules ("hearts" → "heart", "skiing" → "ski", "cherries" → "cherry"): enough to make a plural meet its
/// singular, not a linguistic stemmer. A prompt whose words no caption holds, or that has none, is ranked by the
/// embedding alone (every candidate loses the same).
public struct CaptionWords: Sendable {
    /// The most a neighbour loses for a caption that holds none of the prompt's words. 0.1 on the development prompts
    /// (`Ops/eval/fidelity-emoji-dev*.jsonl`, 173, the first neighbour an asked-for concept: 0.902 with the embedding
    /// alone, 0.908 / 0.919 / 0.925 / 0.896 / 0.890 at 0.05 / 0.08 / 0.1 / 0.15 / 0.2; offline, from `hume embed`).
    public static let weight = 0.1

    /// Each item's caption words as indices into `rarity`, deduplicated: item i's are
    /// `wordIDs[wordOffsets[i]..<wordOffsets[i + 1]]` (flat, so a database of a million items costs a few bytes per
    /// word rather than an array per item).
    let wordIDs: [Int32], wordOffsets: [Int]
    /// Each caption word's index.
    let vocabulary: [String: Int32]
    /// Each caption word's inverse document frequency over the distinct captions: ln((N + 1) / (df + 0.5)).
    let rarity: [Double]
    /// The rarity of a word no caption holds (df = 0).
    let unseenRarity: Double

    /// - Parameter captions: every item's caption, by id.
    public init(captions: [String]) {
        var vocabulary: [String: Int32] = [:], df: [Int] = []
        var ids: [Int32] = [], offsets = [0], byCaption: [String: [Int32]] = [:]
        offsets.reserveCapacity(captions.count + 1)
        for c in captions {
            if let w = byCaption[c] {
                ids += w
            } else {
                let w = Self.words(c).map { word -> Int32 in
                    if let i = vocabulary[word] { df[Int(i)] += 1; return i }
                    vocabulary[word] = Int32(df.count)
                    df.append(1)
                    return Int32(df.count - 1)
                }
                byCaption[c] = w
                ids += w
            }
            offsets.append(ids.count)
        }
        let n = Double(byCaption.count + 1)
        wordIDs = ids
        wordOffsets = offsets
        self.vocabulary = vocabulary
        rarity = df.map { log(n / (Double($0) + 0.5)) }
        unseenRarity = log(n / 0.5)
    }

    /// A prompt's words and their rarities, ready to be compared with many captions.
    public struct Prompt: Sendable {
        /// The prompt's words that some caption holds (indices into `rarity`), and their rarities.
        let known: [Int32], weights: [Double]
        /// The rarities of all its words, those no caption holds included.
        let total: Double
        /// Whether the prompt has any words at all (else every caption covers it alike).
        public var isEmpty: Bool { total == 0 }
        /// The prompt as `form` writes it, to be compared with a caption's.
        let form: String
    }

    /// A prompt's words, each weighed by its rarity, and the thing's words (`thingWords`) `thingWeight` times more; its
    /// emoji read as their names, as the embed stage embedded them (`EmojiNames`: "a 🐸" is "a frog").
    public func prompt(_ sent: String) -> Prompt {
        let text = EmojiNames.shared.spell(sent)
        var known: [Int32] = [], weights: [Double] = [], total = 0.0
        let thing = Set(Self.thingWords(text))
        for w in Self.words(text) {
            let factor = thing.contains(w) ? Self.thingWeight : 1
            if let i = vocabulary[w] {
                known.append(i)
                weights.append(factor * rarity[Int(i)])
                total += factor * rarity[Int(i)]
            } else {
                total += factor * unseenRarity
            }
        }
        return Prompt(known: known, weights: weights, total: total, form: Self.form(text))
    }

    /// How much more a word of the prompt's thing counts than a word of a phrase about its parts, garments or setting
    /// ("a fairy with wings": "fairy" twice "wings"), so a caption naming the thing beats one naming only what it has.
    /// On the development lists (173 prompts, first neighbour an asked-for concept, `Ops/eval/word_weight_sweep.py`):
    /// 1 (every word alike) 0.925; 1.5, 2 and 3 0.931 ("a detective with a magnifying glass" finds the detective, not
    /// the magnifying glass); 5 0.919. 2 changes no other first neighbour there.
    public static let thingWeight = 2.0

    /// The words (as `words` gives them) of `text`'s thing: those before its first phrase (`ThingPhrase.end`): "a fairy
    /// with wings" → fairy, "a glass of orange juice" → glass, "a bunch of grapes" → bunch, grape. "and" joins things
    /// here rather than starting a phrase ("salt and pepper" names both).
    public static func thingWords(_ text: String) -> [String] {
        let runs = text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
        return words(runs[..<ThingPhrase.end(of: runs, joinsAnd: { _ in true })].joined(separator: " "))
    }

    /// The share of `prompt`'s words, weighed by rarity, that item `id`'s caption holds: 0…1 (1 for a prompt without words).
    public func coverage(_ prompt: Prompt, item id: Int) -> Double {
        guard prompt.total > 0 else { return 1 }
        var held = 0.0
        for w in wordIDs[wordOffsets[id]..<wordOffsets[id + 1]] {
            if let j = prompt.known.firstIndex(of: w) { held += prompt.weights[j] }
        }
        return held / prompt.total
    }

    /// The score a search ranks by: the similarity less `weight` × the share of the prompt's words the caption lacks,
    /// plus `weight` when the caption is the prompt itself (`form`), kept within −1…1 (the range the denoise stage
    /// accepts). `caption` is asked for only when the caption holds every word of the prompt.
    public func score(similarity: Double, _ prompt: Prompt, item id: Int, caption: () -> String) -> Double {
        let held = coverage(prompt, item: id)
        var s = similarity - Self.weight * (1 - held)
        if held > 1 - 1e-9, Self.form(caption()) == prompt.form { s += Self.weight }
        return max(-1, min(1, s))
    }

    /// A text as its exact words: lowercased runs of letters and digits, one space apart, without a leading article.
    /// A prompt and a caption of the same form are the same words: "Bell with slash" and "bell with slash", "a knight's
    /// helmet" and "A knight’s helmet.", "👋🏽" (spelled by `EmojiNames`) and "waving hand: medium skin tone". The
    /// index embeds a caption with its keywords, and that text can lie farther from the prompt than another item's:
    /// "bell with slash" found the bell (0.733) before the bell with slash (0.692), "person in tuxedo" the man in
    /// tuxedo, "sparkles" the sparkle. A person who types a caption means that picture, so an item whose caption is
    /// the prompt gains `weight`.
    public static func form(_ text: String) -> String {
        var runs = text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) })
        while let first = runs.first, runs.count > 1, ["a", "an", "the"].contains(first) { runs.removeFirst() }
        return runs.joined(separator: " ")
    }

    /// English function words a prompt carries without naming anything ("a cat with a hat": cat, hat).
    static let functionWords: Set<String> = [
        "a", "an", "the", "with", "of", "in", "on", "and", "for", "to", "at", "by", "from", "its", "it", "his", "her",
        "their", "is", "are", "be", "this", "that", "some", "very", "my", "your", "one",
    ]

    /// Colour words describe a thing more often than they name it, and the captions that hold one are a few unrelated
    /// things of that colour: "a glass of orange juice" found the orange book, which holds one of its words, before the
    /// beverage box, which holds none. Left out like function words (the embedding still hears them). On the
    /// development lists this changed no first neighbour; the demo's orange juice and the main list's "a pink brain"
    /// gained theirs.
    static let colourWords: Set<String> = [
        "red", "orange", "yellow", "green", "blue", "purple", "brown", "black", "white", "pink", "gray", "grey", "gold",
        "golden", "silver",
    ]

    /// `text`'s words: lowercased runs of letters and digits, function words and colour words left out, each
    /// `stem`med, first occurrence kept.
    public static func words(_ text: String) -> [String] {
        var out: [String] = [], seen = Set<String>()
        for run in text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }) {
            let w = String(run)
            guard !functionWords.contains(w), !colourWords.contains(w) else { continue }
            let s = stem(w)
            if seen.insert(s).inserted { out.append(s) }
        }
        return out
    }

    /// A few English suffix rules, so that a plural meets its singular and "skiing" meets "skier": -ies → -y, -sses →
    /// -ss, -ches/-shes/-xes/-zes lose -es, another -s goes (not -ss, -us, -is), then -ing or -er goes when three
    /// letters are left. Words of three letters or fewer stay as they are.
    public static func stem(_ word: String) -> String {
        var w = word
        guard w.count > 3 else { return w }
        if w.hasSuffix("ies") && w.count > 4 { return String(w.dropLast(3)) + "y" }
        if w.hasSuffix("sses") { return String(w.dropLast(2)) }
        if ["ches", "shes", "xes", "zes"].contains(where: { w.hasSuffix($0) }) { return String(w.dropLast(2)) }
        if w.hasSuffix("s") && !["ss", "us", "is"].contains(where: { w.hasSuffix($0) }) { w.removeLast() }
        for suffix in ["ing", "er"] where w.hasSuffix(suffix) && w.count - suffix.count >= 3 {
            return String(w.dropLast(suffix.count))
        }
        return w
    }
}
