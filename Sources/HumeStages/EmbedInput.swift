import HumeCore

/// What the `embed` stage reads from a job (PROTOCOL.md §11.1): the text to embed, from the job's data or its
/// parameters.
public enum EmbedInput {
    /// Texts longer than this many UTF-8 bytes are refused (the model reads at most 256 tokens anyway). The edit
    /// stage holds its edit text and caption to the same limit.
    public static let maxTextBytes = 4096

    /// The text a job asks to embed, from its parameters alone (see `text(params:data:)`).
    public static func text(fromParams params: [UInt8]) -> Result<String, StageInputError> {
        text(params: params, data: [])
    }

    /// The text a job asks to embed: the `edit` parameter when present (edit jobs embed their edit text), else the
    /// job's data as UTF-8 text when it is not empty, else the `prompt` parameter, as sent (the embed stage embeds it
    /// with its emoji read as their names, `EmojiNames`).
    /// - Returns: the text, or the sentence explaining why the job is unusable.
    public static func text(params: [UInt8], data: [UInt8]) -> Result<String, StageInputError> {
        let object: [String: JSON]
        if params.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            object = [:]
        } else {
            guard let parsed = (try? JSON.parse(params, what: "job parameters"))?.object else {
                return .failure(StageInputError("The job's parameters are not a JSON object; send {\"prompt\": \"...\"} or empty parameters with the prompt as the job's data."))
            }
            object = parsed
        }
        let what: String
        let text: String
        if object["edit"] == nil, !data.isEmpty {
            guard let t = String(validating: data, as: UTF8.self) else {
                return .failure(StageInputError("The job's data is not UTF-8 text; the embed stage reads the prompt from the job's data."))
            }
            what = "The job's data"
            text = t
        } else {
            let key = object["edit"] != nil ? "edit" : "prompt"
            guard let value = object[key] else {
                return .failure(StageInputError("The job has no \"prompt\" parameter and no data; send the text to embed as the job's data or as {\"prompt\": \"...\"}."))
            }
            guard let t = value.string else {
                return .failure(StageInputError("The job's \"\(key)\" parameter is not a string; send the text to embed as a JSON string."))
            }
            what = "The job's \"\(key)\" parameter"
            text = t
        }
        guard !text.allSatisfy(\.isWhitespace) else {
            return .failure(StageInputError("\(what) is empty; the embed stage needs a non-empty text to embed."))
        }
        guard text.utf8.count <= maxTextBytes else {
            return .failure(StageInputError("\(what) is \(text.utf8.count) bytes long; at most \(maxTextBytes) bytes are allowed."))
        }
        return .success(text)
    }
}
