import Foundation
import HumeCore

/// The text of one picture a user brings: its caption, and optional keywords and labels.
public struct PictureText: Sendable, Equatable {
    public var caption: String
    public var keywords: [String]
    public var group: String
    public var subgroup: String

    public init(caption: String, keywords: [String] = [], group: String = "", subgroup: String = "") {
        self.caption = caption
        self.keywords = keywords
        self.group = group
        self.subgroup = subgroup
    }

    /// The caption a file name gives: the name without its extension and a trailing copy number, with `-` and `_`
    /// as spaces ("red-fox_2.png" → "red fox"), and emoji as their names ("🐱.png" → "cat face"). An emoji set's
    /// code-point name is its emoji's name ("1F431.svg", "emoji_u1f431.png", "1F468-200D-1F4BB.svg": `EmojiNames`).
    /// Nil when no word in it says what the picture shows: nothing but numbers ("0001.png"), single letters,
    /// hexadecimal codes that name no emoji ("E000.svg"), or a camera's or a screenshot's name ("IMG_1234.jpg",
    /// "DSC01234.JPG", "PXL_20231005_123456.jpg", "Screenshot 2023-10-05 at 12.34.56.png"). Such a caption would give
    /// hundreds of pictures one meaningless caption ("1F", "IMG") that no prompt can find them by.
    public static func caption(fromFileName name: String) -> String? {
        var stem = (name as NSString).lastPathComponent
        if let dot = stem.lastIndex(of: "."), dot != stem.startIndex { stem = String(stem[..<dot]) }
        return caption(fromStem: stem)
    }

    /// The caption a name without an extension gives (a file's stem, a folder's name): `caption(fromFileName:)`.
    static func caption(fromStem name: String) -> String? {
        // An emoji set's file: "1F431.svg", "emoji_u1f431.png" → "cat face".
        if let emoji = EmojiNames.shared.name(codePointsIn: name) { return emoji }
        var stem = EmojiNames.shared.spell(name)   // "🐱.png" → "cat face"
        func words(_ s: String) -> [Substring] { s.split(whereSeparator: { $0 == "-" || $0 == "_" || $0 == " " || $0 == "." }) }
        guard words(stem).contains(where: describes) else { return nil }
        // A trailing copy number: "fox_2", "fox-02", "fox 3", "fox (3)".
        if let r = stem.range(of: #"[\s_\-]*(\(\d+\)|\d+)$"#, options: .regularExpression), r.lowerBound != stem.startIndex {
            stem = String(stem[..<r.lowerBound])
        }
        let kept = words(stem)
        return kept.contains(where: describes) ? kept.joined(separator: " ") : nil
    }

    /// The caption a picture's path gives: its file name's (`caption(fromFileName:)`), else the nearest enclosing
    /// folder's whose name says what it holds ("dogs/IMG_1234.jpg" → "dogs", "trips/beach 2019/DSC01234.JPG" →
    /// "beach"): people sort photos by what they show, and a phone names the files. Folders that phones, cameras and
    /// desktops make ("DCIM", "Camera", "100APPLE", "Screenshots", "Pictures", "Downloads") say nothing and are passed
    /// over. Nil when no part of the path says anything.
    public static func caption(fromPath path: String) -> String? {
        if let c = caption(fromFileName: path) { return c }
        for folder in path.split(separator: "/").dropLast().reversed() {
            let lower = folder.lowercased()
            if storageFolders.contains(lower) || lower.range(of: #"^\d{3}[a-z0-9_]{5}$"#, options: .regularExpression) != nil { continue }
            if let c = caption(fromStem: String(folder)) { return c }
        }
        return nil
    }

    /// Folders that phones, cameras, screenshot tools and desktops name, whatever they hold, and folders named for a
    /// file format (an emoji set's `svg/`, `png/`).
    static let storageFolders: Set<String> = ["dcim", "camera", "screenshots", "pictures", "photos", "images", "downloads", "download",
                                              "desktop", "documents", "whatsapp images", "media", "tmp", "temp",
                                              "svg", "svgz", "png", "jpg", "jpeg"]

    /// Names cameras, phones and screenshot tools give files, which say nothing of what the picture shows.
    static let devicePrefixes: Set<String> = ["img", "image", "imag", "dsc", "dscn", "dscf", "dcim", "pxl", "mvimg", "gopr", "dji",
                                              "screenshot", "scan", "untitled", "unnamed"]
    /// Words that describe nothing alone ("Screenshot 2023-10-05 at 12.34.56").
    static let functionWords: Set<String> = ["at", "of", "on", "in", "the", "and", "to", "by"]

    /// Whether a word of a file name can say what its picture shows: two letters or more, not a hexadecimal code with
    /// digits in it ("1F600", "200D"), not a camera's or screenshot's name.
    static func describes(_ word: Substring) -> Bool {
        guard word.filter(\.isLetter).count >= 2 else { return false }
        if word.contains(where: \.isNumber), word.allSatisfy(\.isHexDigit) { return false }
        let lower = word.lowercased()
        if devicePrefixes.contains(lower) || functionWords.contains(lower) { return false }
        // "IMG1234", "DSC01234", "P1000123": a prefix glued to its number.
        if let firstDigit = lower.firstIndex(where: \.isNumber), lower[firstDigit...].allSatisfy(\.isNumber),
           devicePrefixes.contains(String(lower[..<firstDigit])) || lower[..<firstDigit].count == 1 {
            return false
        }
        return true
    }
}

/// Captions for pictures, by file, from a JSON Lines or CSV file (`hume db create --captions`, Ops/DATABASES.md).
///
/// - JSON Lines: one object per line with `file` and `caption`, and optionally `keywords` (a list of strings, or
///   one string separated by `;`), `group` and `subgroup`.
/// - CSV (RFC 4180, UTF-8): a header row naming the columns `file` and `caption`, optionally `keywords` (separated
///   by `;`), `group` and `subgroup`; other columns are ignored.
///
/// `file` is the picture's path relative to the images folder, or its bare file name.
public struct CaptionTable: Sendable {
    public private(set) var byFile: [String: PictureText] = [:]
    /// Where the table came from, for sentences.
    public let source: String

    public init(source: String, entries: [String: PictureText] = [:]) {
        self.source = source
        byFile = entries
    }

    /// The text for a picture at `relativePath`: by its path, else by its file name.
    public func text(for relativePath: String) -> PictureText? {
        byFile[relativePath] ?? byFile[(relativePath as NSString).lastPathComponent]
    }

    /// Reads a table; CSV when the file name ends in `.csv`, else JSON Lines.
    /// - Throws: `HumeError(.invalidInput)` with one sentence naming the file and line.
    public static func load(path: String) throws -> CaptionTable {
        let data = try UserFile.read(path, what: "the captions file")
        guard let text = String(data: data, encoding: .utf8) else {
            throw HumeError(.invalidInput, "The captions file \(path) is not UTF-8.")
        }
        return path.lowercased().hasSuffix(".csv") ? try csv(text, source: path) : try jsonLines(text, source: path)
    }

    static func keywords(_ v: JSON?, _ at: String) throws -> [String] {
        switch v {
        case nil, .null?: return []
        case .string(let s)?: return s.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .array(let a)?:
            return try a.map {
                guard let s = $0.string else { throw HumeError(.invalidInput, "\(at): \"keywords\" must hold strings.") }
                return s
            }
        default: throw HumeError(.invalidInput, "\(at): \"keywords\" must be a list of strings or one string separated by ';'.")
        }
    }

    static func jsonLines(_ text: String, source: String) throws -> CaptionTable {
        var table = CaptionTable(source: source)
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let at = "\(source) line \(i + 1)"
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            let j = try JSON.parse(String(line), what: at)
            guard let file = j["file"]?.string, !file.isEmpty else { throw HumeError(.invalidInput, "\(at) has no \"file\".") }
            guard let caption = j["caption"]?.string?.trimmingCharacters(in: .whitespaces), !caption.isEmpty else {
                throw HumeError(.invalidInput, "\(at) gives \(file) no caption (a non-empty \"caption\" string).")
            }
            table.byFile[file] = PictureText(caption: EmojiNames.shared.spell(caption), keywords: try keywords(j["keywords"], at),
                                             group: j["group"]?.string ?? "", subgroup: j["subgroup"]?.string ?? "")
        }
        return table
    }

    /// RFC 4180 rows: quoted fields may hold commas, doubled quotes and line breaks.
    static func csvRows(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = "", quoted = false
        var it = Array(text.unicodeScalars).makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? { if let p = pending { pending = nil; return p }; return it.next() }
        while let c = next() {
            if quoted {
                if c == "\"" {
                    if let n = next() { if n == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; pending = n } } else { quoted = false }
                } else { field.unicodeScalars.append(c) }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                row.append(field); field = ""
            } else if c == "\n" || c == "\r" {
                if c == "\r", let n = next(), n != "\n" { pending = n }
                row.append(field); field = ""
                rows.append(row); row = []
            } else { field.unicodeScalars.append(c) }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows.filter { !($0.count == 1 && $0[0].trimmingCharacters(in: .whitespaces).isEmpty) }
    }

    static func csv(_ text: String, source: String) throws -> CaptionTable {
        let rows = csvRows(text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text)
        guard let header = rows.first?.map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }),
              let fileCol = header.firstIndex(of: "file"), let captionCol = header.firstIndex(of: "caption") else {
            throw HumeError(.invalidInput, "The captions file \(source) needs a header row naming the columns file and caption.")
        }
        func col(_ name: String) -> Int? { header.firstIndex(of: name) }
        var table = CaptionTable(source: source)
        for (i, row) in rows.dropFirst().enumerated() {
            let at = "\(source) row \(i + 2)"
            func value(_ c: Int?) -> String { c.flatMap { $0 < row.count ? row[$0].trimmingCharacters(in: .whitespaces) : nil } ?? "" }
            let file = value(fileCol)
            guard !file.isEmpty else { throw HumeError(.invalidInput, "\(at) has no file name.") }
            let caption = value(captionCol)
            guard !caption.isEmpty else { throw HumeError(.invalidInput, "\(at) gives \(file) no caption.") }
            table.byFile[file] = PictureText(caption: EmojiNames.shared.spell(caption), keywords: try keywords(.string(value(col("keywords"))), at),
                                             group: value(col("group")), subgroup: value(col("subgroup")))
        }
        return table
    }
}
