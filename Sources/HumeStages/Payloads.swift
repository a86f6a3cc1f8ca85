import HumeCore

/// What the `embed` stage hands to the `retrieve` stage (PROTOCOL.md §11.1): the text's 384-d unit embedding as
/// little-endian float32, followed by the text itself (UTF-8), so the retrieve stage can echo the prompt and the image
/// records what it was made for.
public struct EmbedOutput: Sendable, Equatable {
    /// Dimensions of the embedding (MiniLM-L6's).
    public static let dimension = 384
    /// Bytes of the embedding at the start of the payload.
    public static let vectorBytes = dimension * 4

    public var vector: [Float]
    /// The text embedded ("" when a client sends a bare vector).
    public var text: String

    public init(vector: [Float], text: String) {
        self.vector = vector
        self.text = text
    }

    /// The payload: the vector's float32s, little-endian, then the text's UTF-8.
    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: vector.count * 4 + text.utf8.count)
        for v in vector { w.u32(v.bitPattern) }
        return w.bytes + text.utf8
    }

    /// Parses a payload.
    /// - Throws: `StageInputError` with one sentence when it is shorter than a vector, the text is not UTF-8, or a
    ///   value is not finite.
    public init(decoding bytes: [UInt8]) throws {
        guard bytes.count >= Self.vectorBytes else {
            throw StageInputError("The retrieve input must be a query embedding of \(Self.dimension) little-endian float32 (\(Self.vectorBytes) bytes), got \(bytes.count) bytes (the UTF-8 text it embeds may follow those bytes).")
        }
        guard let text = String(validating: bytes[Self.vectorBytes...], as: UTF8.self) else {
            throw StageInputError("The text after the retrieve input's \(Self.vectorBytes)-byte embedding is not valid UTF-8.")
        }
        var finite = true
        let v = [Float](unsafeUninitializedCapacity: Self.dimension) { out, count in
            bytes.withUnsafeBytes { raw in
                for i in 0..<Self.dimension {
                    let x = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                    finite = finite && x.isFinite
                    out[i] = x
                }
            }
            count = Self.dimension
        }
        guard finite else {
            throw StageInputError("The retrieve input embedding contains NaN or infinite values.")
        }
        vector = v
        self.text = text
    }
}

/// What the `retrieve` stage hands to the `denoise` stage (PROTOCOL.md §11.2): the k nearest database items, best
/// first, as the JSON object `{"database", "ids", "scores", "captions", "prompt"}`. The one type that writes and
/// reads it: the retrieve stage, the denoise stage, the CLI and the evaluations.
public struct Neighbours: Sendable, Equatable {
    /// The database the ids belong to; nil when the payload names none (then the job's `database` parameter decides).
    public var database: String?
    /// Neighbour ids, best first (never empty).
    public var ids: [Int]
    /// Each id's similarity to the prompt (the retriever's cosine), or nil when the payload carries none: then the
    /// denoiser weighs the neighbours by rank alone.
    public var scores: [Double]?
    /// Each id's caption (informative; readers do not need them).
    public var captions: [String]
    /// The text the ids were retrieved for (the embed stage's text); nil when absent or empty.
    public var prompt: String?

    public init(database: String?, ids: [Int], scores: [Double]? = nil, captions: [String] = [], prompt: String? = nil) {
        self.database = database
        self.ids = ids
        self.scores = scores
        self.captions = captions
        self.prompt = prompt
    }

    /// The JSON payload (keys sorted, as `JSON.serialized` writes an object); scores are rounded to 6 decimals, an
    /// absent prompt is written as "".
    public func encoded() -> [UInt8] {
        Neighbours.encode(database: database, ids: ids, scores: scores ?? [], prompt: prompt) { out in
            for (i, c) in captions.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.writeString(c, into: &out)
            }
        }
    }

    /// The payload `encoded()` writes, with the items of its captions list written by `captions`: the retrieve stage
    /// writes captions it escaped once, when it opened the database.
    /// `captionBytes`, when known, is how many bytes `captions` writes: the payload is then allocated once.
    public static func encode(database: String?, ids: [Int], scores: [Double], prompt: String?, captionBytes: Int? = nil,
                              captions: (inout [UInt8]) -> Void) -> [UInt8] {
        var out: [UInt8] = []
        // Fixed text, each id (≤ 20 digits) and score (≤ 24 characters) with a comma, and the strings (an escape in
        // them, rare, grows the buffer).
        out.reserveCapacity(64 + ids.count * 48 + (captionBytes ?? ids.count * 64)
                            + (database?.utf8.count ?? 0) + (prompt?.utf8.count ?? 0))
        out += #"{"captions":["#.utf8
        captions(&out)
        out.append(UInt8(ascii: "]"))
        if let database {
            out += #","database":"#.utf8
            JSON.writeString(database, into: &out)
        }
        out += #","ids":["#.utf8
        for (i, id) in ids.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSON.writeInteger(Int64(id), into: &out)
        }
        out += #"],"prompt":"#.utf8
        JSON.writeString(prompt ?? "", into: &out)
        out += #","scores":["#.utf8
        for (i, score) in scores.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSON.writeNumber((score * 1e6).rounded() / 1e6, into: &out)
        }
        out += "]}".utf8
        return out
    }

    /// Parses the payload.
    /// - Throws: `StageInputError` with one sentence when it is not that JSON object, has no ids, or a value is out
    ///   of place.
    public init(decoding bytes: [UInt8]) throws {
        guard let o = try? JSON.parse(bytes, what: "neighbours"), o.object != nil else {
            throw StageInputError("The denoise stage's input is not the retrieve stage's JSON object ({\"database\", \"ids\", ...}).")
        }
        guard let raw = o["ids"]?.array else {
            throw StageInputError("The retrieve stage's output has no \"ids\" list; the denoise stage needs neighbour ids.")
        }
        ids = try raw.map {
            guard let i = $0.int else {
                throw StageInputError("The retrieve stage's \"ids\" list holds \($0.serialized), which is not a whole-number id.")
            }
            return i
        }
        guard !ids.isEmpty else {
            throw StageInputError("The retrieve stage found no neighbours (an empty \"ids\" list); the denoiser needs at least one.")
        }
        database = o["database"]?.string
        if let raw = o["scores"], raw != .null {
            guard let list = raw.array else {
                throw StageInputError("The retrieve stage's \"scores\" is not a list; it must hold one similarity per id.")
            }
            let values = try list.map { v -> Double in
                guard let d = v.double, d.isFinite, abs(d) <= 1.001 else {
                    throw StageInputError("The retrieve stage's \"scores\" list holds \(v.serialized), which is not a similarity from -1 to 1.")
                }
                return d
            }
            // An empty list says no more than an absent one (clients written before scores were read send `[]`).
            guard values.count == ids.count || values.isEmpty else {
                throw StageInputError("The retrieve stage's \"scores\" list has \(values.count) entries for \(ids.count) ids; it must have one per id.")
            }
            scores = values.isEmpty ? nil : values
        }
        captions = (o["captions"]?.array ?? []).compactMap(\.string)
        if let p = o["prompt"], p != .null {
            guard let text = p.string else {
                throw StageInputError("The retrieve stage's \"prompt\" is not a string; it must be the text the ids were retrieved for.")
            }
            prompt = text.isEmpty ? nil : text
        }
    }
}
