import Foundation
import HumeEmbed
import HumeWorker

/// The `embed` stage: a job's text in; its 384-d unit embedding as little-endian float32, followed by the text itself
/// (UTF-8), out. Carrying the text lets the retrieve stage echo it, so the image records the prompt it was made for
/// (PROTOCOL.md, "Stage payloads").
///
/// It takes as many tasks as its credit allows (`batchSize`) and embeds the valid ones in one call, so a
/// full batch costs one pass of the encoder per 2,048 tokens rather than one per task.
public struct EmbedStage: Stage {
    /// Texts longer than this many UTF-8 bytes are refused (the model reads at most 256 tokens anyway).
    public static let maxTextBytes = 4096
    /// Bytes of the embedding at the start of the output (384 float32).
    public static let vectorBytes = 384 * 4

    public let name: String
    public let batchSize: Int
    public let concurrency: Int
    let embedder: Embedder

    /// Loads the model. One BLAS thread: the stage's parallelism is its replica count and batch size.
    /// - Parameters:
    ///   - modelDirectory: the MiniLM folder (default: `Embedder.defaultModelDirectory`).
    ///   - batchSize: tasks per `run` call (default 64).
    public init(name: String = "embed", modelDirectory: URL = Embedder.defaultModelDirectory, batchSize: Int = 64) throws {
        Embedder.setBLASThreads(1)
        self.name = name
        self.batchSize = max(1, batchSize)
        self.concurrency = 1
        self.embedder = try Embedder(modelDirectory: modelDirectory)
    }

    /// The text a job asks to embed, from its parameters alone (see `text(params:data:)`).
    public static func text(fromParams params: [UInt8]) -> Result<String, StageInputError> {
        text(params: params, data: [])
    }

    /// The text a job asks to embed: the `edit` parameter when present (edit jobs embed their edit text), else the
    /// job's data as UTF-8 text when it is not empty, else the `prompt` parameter.
    /// - Returns: the text, or the sentence explaining why the job is unusable.
    public static func text(params: [UInt8], data: [UInt8]) -> Result<String, StageInputError> {
        let object: [String: Any]
        if params.isEmpty {
            object = [:]
        } else {
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(params)) as? [String: Any] else {
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
            guard let t = value as? String else {
                return .failure(StageInputError("The job's \"\(key)\" parameter is not a string; send the text to embed as a JSON string."))
            }
            what = "The job's \"\(key)\" parameter"
            text = t
        }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            return .failure(StageInputError("\(what) is empty; the embed stage needs a non-empty text to embed."))
        }
        guard text.utf8.count <= maxTextBytes else {
            return .failure(StageInputError("\(what) is \(text.utf8.count) bytes long; at most \(maxTextBytes) bytes are allowed."))
        }
        return .success(text)
    }

    /// Embeds the batch's valid texts in one call; bad tasks fail permanently, the rest succeed.
    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        var outcomes = [StageOutcome?](repeating: nil, count: tasks.count)
        var texts: [String] = [], slots: [Int] = []
        for (i, task) in tasks.enumerated() {
            switch EmbedStage.text(params: task.params, data: task.input) {
            case .success(let text): texts.append(text); slots.append(i)
            case .failure(let error): outcomes[i] = .permanent(error.message)
            }
        }
        if !texts.isEmpty {
            let flat = try embedder.embedFlat(texts)
            let d = embedder.dimension
            for (j, slot) in slots.enumerated() {
                outcomes[slot] = .ok(EmbedStage.littleEndianBytes(flat[(j * d)..<((j + 1) * d)]) + Array(texts[j].utf8))
            }
        }
        return outcomes.map { $0! }
    }

    /// Splits an embed output into the vector and the text that follows it; nil when it is shorter than a vector
    /// or the text is not UTF-8.
    public static func decodeOutput(_ bytes: [UInt8]) -> (vector: [Float], text: String)? {
        guard bytes.count >= vectorBytes, let text = String(validating: bytes[vectorBytes...], as: UTF8.self) else { return nil }
        return (floats(fromLittleEndian: Array(bytes[..<vectorBytes])), text)
    }

    /// Float32 values as little-endian bytes.
    public static func littleEndianBytes(_ values: ArraySlice<Float>) -> [UInt8] {
        var out = [UInt8](); out.reserveCapacity(values.count * 4)
        for v in values {
            let bits = v.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { out += $0 }
        }
        return out
    }

    /// Reads little-endian float32 bytes back (the inverse of `littleEndianBytes`).
    public static func floats(fromLittleEndian bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count - 3, by: 4).map { i in
            Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
        }
    }
}

/// Bad input to a stage: one sentence for the user.
public struct StageInputError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
