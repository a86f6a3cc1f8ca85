import HumeCore

/// What an edit job asks for, from its parameters (keys, types and defaults listed here, where they are read).
public struct EditParameters: Sendable, Equatable {
    /// `edit` (string, required, non-empty): what to change, e.g. "with sunglasses"; its emoji read as their names, a
    /// face emoji as what the face has (`EmojiNames`: "with 😎" is "with sunglasses").
    public var edit: String
    /// `caption` (string, optional): what the source shows; its neighbours condition the editor. Absent: the
    /// source's neighbours are the database images nearest to it in pixels. Its emoji read as their names.
    public var caption: String?
    /// `edit` and `caption` as the job sent them, which the image records.
    public var sentEdit: String, sentCaption: String?
    /// `database` (string, default "emoji").
    public var database = "emoji"
    /// `k` (int 1…256, default 8, `Editor().k`): neighbours per side (source and edit text).
    public var k: Int?
    /// `seed` (int ≥ 0, default 1).
    public var seed: UInt64 = 1
    /// `size` (32, 64 or 128, default `Editor().side`): the working side; the source is resized to it by area averaging.
    public var size: Int?
    /// `steps` (int 1…200, default 10 up to 64², 5 at 128², `Editor().steps`/`fineSteps`): DDIM steps of the harmonising pass.
    public var steps: Int?

    /// Parses a job's parameter object.
    /// - Throws: `StageInputError` naming the bad key and what is allowed.
    public init(json params: [UInt8]) throws {
        guard let o = try? JSON.parse(params, what: "job parameters"), o.object != nil else {
            throw StageInputError("The job's parameters are not a JSON object; an edit job sends {\"edit\": \"...\"}.")
        }
        guard let text = o["edit"]?.string, !text.allSatisfy(\.isWhitespace) else {
            throw StageInputError("The job has no non-empty \"edit\" text; an edit job needs one, e.g. \"with sunglasses\".")
        }
        // Emoji read as their names, as the embed stage reads them, and a face emoji as what it has ("with 😎" adds
        // sunglasses, not the smiling face with sunglasses).
        edit = EmojiNames.shared.spell(text, facesAsWhatTheyHave: true)
        sentEdit = text
        for (key, value) in [("edit", text), ("caption", o["caption"]?.string ?? "")] where value.utf8.count > EmbedInput.maxTextBytes {
            throw StageInputError("The \"\(key)\" text is \(value.utf8.count) bytes long; at most \(EmbedInput.maxTextBytes) bytes are allowed.")
        }
        if let c = o["caption"], c != .null {
            guard let s = c.string, !s.allSatisfy(\.isWhitespace) else {
                throw StageInputError("The \"caption\" parameter must be a non-empty string describing the source image, or absent.")
            }
            caption = EmojiNames.shared.spell(s)
            sentCaption = s
        }
        // The shared keys are validated the same way as for generation.
        let p = try GenerateParameters(object: o)
        // Edits default to the one-style `emoji` database (a transplanted part should match a Noto source), not to
        // generation's default.
        database = o["database"] == nil ? "emoji" : p.database
        seed = p.seed
        if o["k"] != nil { k = p.k }
        if o["size"] != nil { size = p.size }
        if o["steps"] != nil { steps = p.steps }
    }
}
