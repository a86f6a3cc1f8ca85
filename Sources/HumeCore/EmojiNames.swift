import Foundation

/// Emoji in a text read as their names: "a 🐸" is "a frog", "🍓🍌" "strawberry banana", "I ❤️ NY" "I red heart NY".
///
/// The text model reads an emoji as an unknown token, so a prompt that is an emoji, or holds one, used to find whatever
/// the unknown token lies nearest ("🍓" found the check mark). The names are the CLDR short names Unicode lists in
/// `emoji-test.txt` (Debian's `unicode-data`, which Ops/setup.sh installs and from which the emoji databases take their
/// captions), so an emoji's name is the caption of its picture. What reads a prompt's words spells it first: the embed
/// stage before embedding, the retriever's word rule (`CaptionWords.prompt`), the prompt's colour (`PromptColour.parse`),
/// the edit stage's parameters, `hume db`'s captions, `hume embed` and `hume search`; the image records the text as
/// sent, and `Embedder` itself embeds a text as sent, as sentence-transformers does.
public struct EmojiNames: Sendable {
    /// Where Debian's `unicode-data` puts the list.
    public static let defaultPath = "/usr/share/unicode/emoji/emoji-test.txt"

    /// The table read once from `HUME_EMOJI_TEST` or `defaultPath`; empty (texts pass unchanged) when neither can be
    /// read.
    public static let shared: EmojiNames = {
        let path = ProcessInfo.processInfo.environment["HUME_EMOJI_TEST"] ?? defaultPath
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else { return EmojiNames(names: [:]) }
        return EmojiNames(emojiTest: text)
    }()

    /// Names by the emoji's scalars with every variation selector-16 (U+FE0F) left out.
    let names: [String: String]

    /// How many emoji the table names.
    public var count: Int { names.count }

    init(names: [String: String]) { self.names = names }

    /// Reads `emoji-test.txt`'s lines, `1F438 ; fully-qualified # 🐸 E0.6 frog`: the code points, then after the
    /// emoji and its version, the name. Lines that are not of that form (comments, headers) are passed over.
    public init(emojiTest text: String) {
        var names: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let semicolon = line.firstIndex(of: ";"), let hash = line.firstIndex(of: "#") else { continue }
            let scalars = line[..<semicolon].split(separator: " ").compactMap { UInt32($0, radix: 16) }.compactMap(Unicode.Scalar.init)
            let comment = line[line.index(after: hash)...].split(separator: " ", maxSplits: 2)
            guard !scalars.isEmpty, comment.count == 3, comment[1].hasPrefix("E") else { continue }
            let key = Self.key(scalars)
            if names[key] == nil { names[key] = String(comment[2]) }
        }
        self.names = names
    }

    static func key<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var s = String.UnicodeScalarView()
        for scalar in scalars where scalar.value != 0xFE0F { s.append(scalar) }
        return String(s)
    }

    /// The name of one emoji (a grapheme cluster), or nil when it is not one the table knows. A sequence the table
    /// lacks (a newer emoji, a skin tone on one that takes none) is named by its first scalar.
    public func name(_ character: Character) -> String? {
        let scalars = character.unicodeScalars
        guard scalars.contains(where: { $0.value >= 0xA9 }) else { return nil }
        if let n = names[Self.key(scalars)] { return n }
        guard scalars.count > 1, let first = scalars.first else { return nil }
        return names[Self.key([first])]
    }

    /// The name of the emoji a file name spells in code points, as emoji sets name their files: "1F600" (OpenMoji,
    /// Twemoji), "1f468-200d-1f4bb", "emoji_u1f431" (Noto's PNGs), "2764-FE0F". Groups of 4 to 6 hexadecimal digits,
    /// split by "-", "_" or spaces, after an optional "emoji_u" or "u". Nil when the name is not of that form or no
    /// emoji has those code points, and for a lone four-digit decimal number ("2600", "2764"): a numbered file is
    /// far likelier than the sun or the red heart.
    public func name(codePointsIn stem: String) -> String? {
        var s = Substring(stem.lowercased())
        var prefixed = false
        for prefix in ["emoji_u", "u+", "u"] where s.hasPrefix(prefix) {
            s = s.dropFirst(prefix.count)
            prefixed = true
            break
        }
        let groups = s.split(whereSeparator: { $0 == "-" || $0 == "_" || $0 == " " })
        guard !groups.isEmpty, groups.allSatisfy({ (4...6).contains($0.count) && $0.allSatisfy(\.isHexDigit) }) else { return nil }
        if !prefixed, groups.count == 1, groups[0].count == 4, groups[0].allSatisfy(\.isNumber) { return nil }
        let scalars = groups.compactMap { UInt32($0, radix: 16).flatMap(Unicode.Scalar.init) }
        guard scalars.count == groups.count else { return nil }
        if let n = names[Self.key(scalars)] { return n }
        return scalars.count > 1 ? names[Self.key([scalars[0]])] : nil
    }

    /// The text with each emoji it holds replaced by its name, set off by spaces from the words around it. A text with
    /// no emoji comes back as it was.
    ///
    /// With `facesAsWhatTheyHave` (an edit's text), a face emoji named "… face with T" or "… cat with T" is read as T:
    /// "with 😎" asks for sunglasses ("smiling face with sunglasses"), "with 😷" for a medical mask, "with 😍" for
    /// heart-eyes; the face's whole name would ask the editor to paste another face.
    public func spell(_ text: String, facesAsWhatTheyHave: Bool = false) -> String {
        guard !names.isEmpty, text.unicodeScalars.contains(where: { $0.value >= 0xA9 }) else { return text }
        var out = ""
        var afterName = false
        for character in text {
            if var n = name(character) {
                if facesAsWhatTheyHave, let with = n.range(of: " with "),
                   n[..<with.lowerBound].hasSuffix("face") || n[..<with.lowerBound].hasSuffix("cat") {
                    n = String(n[with.upperBound...])
                }
                if let last = out.last, !last.isWhitespace { out.append(" ") }
                out += n
                afterName = true
            } else {
                if afterName, !character.isWhitespace, !character.isPunctuation { out.append(" ") }
                out.append(character)
                afterName = false
            }
        }
        return out
    }
}
