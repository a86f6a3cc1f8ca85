import Foundation

/// A batch of token sequences padded to a common length, as the encoder consumes them.
public struct TokenBatch: Sendable, Equatable {
    /// Number of sequences.
    public var count: Int
    /// Padded length: the longest sequence in the batch.
    public var sequenceLength: Int
    /// Token ids, row-major `[count, sequenceLength]`, padded with the `[PAD]` id.
    public var ids: [Int32]
    /// 1 for a real token, 0 for padding, same layout as `ids`.
    public var attentionMask: [Int32]
    /// Unpadded length of each sequence (including `[CLS]` and `[SEP]`).
    public var lengths: [Int]
}

/// BERT's uncased WordPiece tokenizer, matching Hugging Face `BertTokenizer(do_lower_case=True)`
/// as loaded by sentence-transformers for all-MiniLM-L6-v2.
///
/// Steps: drop NUL, U+FFFD, control, format and private-use characters (so U+200B and U+00AD join their
/// neighbours) and turn whitespace into spaces; put spaces around CJK ideographs; split on
/// whitespace; lower-case each scalar then strip accents (NFD, drop non-spacing marks); make each
/// punctuation character (Unicode P* and every non-alphanumeric ASCII symbol) its own token; then
/// greedy longest-match WordPiece with `##` continuations, a word over 100 scalars or with an
/// unmatchable piece becoming one `[UNK]`. `encode` adds `[CLS]`/`[SEP]` and truncates to
/// `maxLength` tokens in total.
public struct WordPieceTokenizer: Sendable {
    /// Token id of `[PAD]`.
    public let padID: Int32
    /// Token id of `[UNK]`.
    public let unknownID: Int32
    /// Token id of `[CLS]`.
    public let classID: Int32
    /// Token id of `[SEP]`.
    public let separatorID: Int32
    /// Most tokens in one encoded sequence, `[CLS]` and `[SEP]` included (256 for all-MiniLM-L6-v2).
    public let maxLength: Int
    /// Words longer than this many Unicode scalars become `[UNK]` (100 in BERT).
    public let maxCharactersPerWord: Int
    /// Number of entries in the vocabulary.
    public let vocabularySize: Int

    /// Word-initial pieces, keyed by their scalars (not `String`, whose equality is canonical
    /// equivalence and would match a decomposed Hangul word to a precomposed vocabulary entry).
    private let initialPieces: [[UInt32]: Int32]
    /// Continuation pieces (`##x` in the file), keyed by the scalars after `##`.
    private let continuationPieces: [[UInt32]: Int32]
    private let tokensByID: [String]

    /// Loads a BERT `vocab.txt` (one token per line, the line number is the id).
    /// - Parameters:
    ///   - vocabularyURL: The `vocab.txt` file.
    ///   - maxLength: Most tokens per sequence including `[CLS]`/`[SEP]`; at least 2.
    ///   - maxCharactersPerWord: Words longer than this become `[UNK]`.
    /// - Throws: `EmbedError` `.invalidVocabulary` when the file is unreadable, not UTF-8, or lacks
    ///   `[PAD]`, `[UNK]`, `[CLS]` or `[SEP]`.
    public init(vocabularyURL: URL, maxLength: Int = 256, maxCharactersPerWord: Int = 100) throws {
        let data: Data
        do {
            data = try Data(contentsOf: vocabularyURL)
        } catch {
            throw EmbedError(code: .invalidVocabulary,
                             message: "Cannot read the vocabulary \(vocabularyURL.path).", cause: error)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw EmbedError(code: .invalidVocabulary, message: "The vocabulary \(vocabularyURL.path) is not UTF-8 text.")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
        }
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines, maxLength: maxLength, maxCharactersPerWord: maxCharactersPerWord,
                      source: vocabularyURL.path)
    }

    /// Builds a tokenizer from the vocabulary's tokens in id order.
    /// - Throws: `EmbedError` `.invalidVocabulary` when a special token is missing or `maxLength < 2`.
    public init(tokens: [String], maxLength: Int = 256, maxCharactersPerWord: Int = 100,
                source: String = "the vocabulary") throws {
        guard maxLength >= 2 else {
            throw EmbedError(code: .invalidVocabulary, message: "maxLength is \(maxLength); it must be at least 2 to hold [CLS] and [SEP].")
        }
        var initial: [[UInt32]: Int32] = [:]
        var continuation: [[UInt32]: Int32] = [:]
        initial.reserveCapacity(tokens.count)
        for (index, token) in tokens.enumerated() {
            let scalars = token.unicodeScalars.map(\.value)
            initial[scalars] = Int32(index)
            if scalars.count > 2, scalars[0] == 0x23, scalars[1] == 0x23 {
                continuation[Array(scalars[2...])] = Int32(index)
            }
        }
        func special(_ name: String) throws -> Int32 {
            guard let id = initial[name.unicodeScalars.map(\.value)] else {
                throw EmbedError(code: .invalidVocabulary, message: "\(source) has no \(name) token; a BERT vocabulary needs [PAD], [UNK], [CLS] and [SEP].")
            }
            return id
        }
        padID = try special("[PAD]")
        unknownID = try special("[UNK]")
        classID = try special("[CLS]")
        separatorID = try special("[SEP]")
        self.maxLength = maxLength
        self.maxCharactersPerWord = maxCharactersPerWord
        vocabularySize = tokens.count
        initialPieces = initial
        continuationPieces = continuation
        tokensByID = tokens
    }

    /// The token string for an id (for debugging and tests).
    public func token(for id: Int32) -> String? {
        tokensByID.indices.contains(Int(id)) ? tokensByID[Int(id)] : nil
    }

    /// The WordPiece ids of `text`, without `[CLS]`/`[SEP]` and without truncation.
    public func wordPieceIDs(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        for word in basicTokens(text) { appendWordPieces(of: word, to: &ids) }
        return ids
    }

    /// `[CLS]` + WordPiece ids + `[SEP]`, truncated to `maxLength` tokens in total.
    public func encode(_ text: String) -> [Int32] {
        let budget = maxLength - 2
        var ids: [Int32] = [classID]
        ids.reserveCapacity(64)
        for word in basicTokens(text) {
            appendWordPieces(of: word, to: &ids)
            if ids.count - 1 >= budget { break }
        }
        if ids.count - 1 > budget { ids.removeLast(ids.count - 1 - budget) }
        ids.append(separatorID)
        return ids
    }

    /// Encodes every text and pads them together to the longest one.
    public func encodeBatch(_ texts: [String]) -> TokenBatch {
        let sequences = texts.map(encode)
        let length = sequences.map(\.count).max() ?? 0
        var ids = [Int32](repeating: padID, count: sequences.count * length)
        var mask = [Int32](repeating: 0, count: sequences.count * length)
        for (row, sequence) in sequences.enumerated() {
            for (column, id) in sequence.enumerated() {
                ids[row * length + column] = id
                mask[row * length + column] = 1
            }
        }
        return TokenBatch(count: sequences.count, sequenceLength: length, ids: ids,
                          attentionMask: mask, lengths: sequences.map(\.count))
    }

    // MARK: - Basic tokenization

    /// Cleans, splits, lower-cases, strips accents and splits punctuation; returns words as scalars.
    func basicTokens(_ text: String) -> [[UInt32]] {
        // 1. Clean: drop NUL, U+FFFD and control/format/private-use; whitespace -> space; pad CJK.
        var cleaned: [UInt32] = []
        cleaned.reserveCapacity(text.unicodeScalars.count + 8)
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v == 0 || v == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                cleaned.append(0x20)
            } else if Self.isCJKIdeograph(v) {
                cleaned.append(0x20); cleaned.append(v); cleaned.append(0x20)
            } else {
                cleaned.append(v)
            }
        }
        // 2. Whitespace split, then per word: lower-case, strip accents, split punctuation.
        var words: [[UInt32]] = []
        var start = 0
        let n = cleaned.count
        while start < n {
            while start < n, cleaned[start] == 0x20 { start += 1 }
            var end = start
            while end < n, cleaned[end] != 0x20 { end += 1 }
            if end > start {
                let normalized = Self.lowercaseAndStripAccents(cleaned[start..<end])
                Self.splitPunctuation(normalized, into: &words)
            }
            start = end
        }
        return words
    }

    /// Control characters as the reference tokenizer sees them: Cc, Cf, Cs and Co except tab, newline
    /// and return. Unassigned code points (Cn) are kept, as the reference does (they become `[UNK]`).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: return false
        default: break
        }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse: return true
        default: return false
        }
    }

    /// Whitespace: space, tab, newline, return, Zs, and the line/paragraph separators (which
    /// Python's `str.split()` and Rust's `char::is_whitespace` both split on).
    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20, 0x09, 0x0A, 0x0D, 0x2028, 0x2029: return true
        default: return scalar.properties.generalCategory == .spaceSeparator
        }
    }

    /// The CJK Unified Ideographs blocks BERT splits character by character (not Hiragana,
    /// Katakana or Hangul).
    static func isCJKIdeograph(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v)
            || (0x20000...0x2A6DF).contains(v) || (0x2A700...0x2B73F).contains(v)
            || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// Punctuation: every non-alphanumeric printable ASCII symbol, and Unicode P* categories.
    static func isPunctuation(_ v: UInt32) -> Bool {
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) {
            return true
        }
        guard v >= 0x80, let scalar = Unicode.Scalar(v) else { return false }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// Lower-cases each scalar (full, context-free mapping), then NFD-decomposes and drops
    /// non-spacing marks (Mn).
    static func lowercaseAndStripAccents(_ word: ArraySlice<UInt32>) -> [UInt32] {
        if word.allSatisfy({ $0 < 0x80 }) {
            return word.map { (0x41...0x5A).contains($0) ? $0 + 0x20 : $0 }
        }
        var lowered = String.UnicodeScalarView()
        for v in word {
            guard let scalar = Unicode.Scalar(v) else { continue }
            lowered.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        }
        let decomposed = String(lowered).decomposedStringWithCanonicalMapping
        var out: [UInt32] = []
        out.reserveCapacity(word.count)
        for scalar in decomposed.unicodeScalars where scalar.properties.generalCategory != .nonspacingMark {
            out.append(scalar.value)
        }
        return out
    }

    /// Appends the runs between punctuation, and each punctuation scalar alone, to `words`.
    static func splitPunctuation(_ word: [UInt32], into words: inout [[UInt32]]) {
        var current: [UInt32] = []
        for v in word {
            if isPunctuation(v) {
                if !current.isEmpty { words.append(current); current.removeAll(keepingCapacity: true) }
                words.append([v])
            } else {
                current.append(v)
            }
        }
        if !current.isEmpty { words.append(current) }
    }

    // MARK: - WordPiece

    /// Greedy longest-match-first WordPiece; the whole word becomes `[UNK]` if it is too long or
    /// any remainder cannot be matched.
    func appendWordPieces(of word: [UInt32], to ids: inout [Int32]) {
        if word.count > maxCharactersPerWord {
            ids.append(unknownID)
            return
        }
        let mark = ids.count
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            let table = start == 0 ? initialPieces : continuationPieces
            while start < end {
                if let id = table[Array(word[start..<end])] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else {
                ids.removeLast(ids.count - mark)
                ids.append(unknownID)
                return
            }
            ids.append(id)
            start = end
        }
    }
}
