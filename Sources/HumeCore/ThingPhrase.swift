/// Where a prompt's words about its thing end: "a fairy with wings" asks for a fairy, "a baseball with red stitches"
/// for a baseball, "a glass of red wine" for a glass. The words after are a phrase about a part, a garment, a setting
/// or a content. Shared by the colour a prompt names (`PromptColour`, the thing's colour is read before the phrase) and
/// the retriever's word rule (`CaptionWords`, the thing's words count more than the phrase's).
public enum ThingPhrase {
    /// Words that start a phrase about a part, a garment or a setting rather than the thing itself.
    public static let phraseStarts: Set<String> = [
        "with", "in", "on", "wearing", "holding", "under", "over", "at", "near", "beside", "behind", "from", "having",
        "that", "which", "who", "and", "inside", "against", "by", "for", "into", "onto", "through", "without",
    ]

    /// Words for a number of things, after which "of" does not end the thing's words ("a bunch of grapes").
    public static let collectives: Set<String> = [
        "bunch", "pair", "couple", "pile", "group", "set", "handful", "bouquet", "lot", "lots", "dozen", "few", "herd",
        "flock", "heap", "stack", "row", "swarm", "school", "pack", "litter", "cluster", "bundle", "kind", "sort", "type",
    ]

    /// The index in `words` (lowercased, in order) of the first word after the thing's: the first phrase start, or "of"
    /// after a word that is not a collective ("a glass of red wine", not "a bunch of purple grapes"); `words.count` when
    /// there is none. An "and" after a word for which `joinsAnd` holds does not end them ("a black and white cat").
    public static func end(of words: [String], joinsAnd: (String) -> Bool = { _ in false }) -> Int {
        words.indices.first { i in
            if words[i] == "of" { return i > 0 && !collectives.contains(words[i - 1]) }
            return phraseStarts.contains(words[i]) && !(words[i] == "and" && i > 0 && joinsAnd(words[i - 1]))
        } ?? words.count
    }
}
