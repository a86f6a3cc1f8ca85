import Foundation
import HumeEmbed
import HumeWorker

/// The `embed` stage: the job's prompt (or, for edit jobs, its `edit` text) as 384 little-endian float32.
///
/// It takes as many tasks as its credit allows (`batchSize`) and embeds the valid ones in one call, so a
/// full batch costs one pass of the encoder per 2,048 tokens rather than one per task.
public struct EmbedStage: Stage {
    /// Texts longer than this many UTF-8 bytes are refused (the model reads at most 256 tokens anyway).
    public static let maxTextBytes = 4096

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

    /// The text a job asks to embed: `edit` when present (edit jobs), else `prompt`.
    /// - Returns: the text, or the sentence explaining why the parameters are unusable.
    public static func text(fromParams params: [UInt8]) -> Result<String, StageInputError> {
        let object: [String: Any]
        if params.isEmpty {
            object = [:]
        } else {
            guard let parsed = try? JSONSerialization.jsonObject(with: Data(params)) as? [String: Any] else {
                return .failure(StageInputError("The job's parameters are not a JSON object; send {\"prompt\": \"...\"}."))
            }
            object = parsed
        }
        let key = object["edit"] != nil ? "edit" : "prompt"
        guard let value = object[key] else {
            return .failure(StageInputError("The job has no \"prompt\" parameter; the embed stage needs a non-empty text to embed."))
        }
        guard let text = value as? String else {
            return .failure(StageInputError("The job's \"\(key)\" parameter is not a string; send the text to embed as a JSON string."))
        }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            return .failure(StageInputError("The job's \"\(key)\" parameter is empty; the embed stage needs a non-empty text to embed."))
        }
        guard text.utf8.count <= maxTextBytes else {
            return .failure(StageInputError("The job's \"\(key)\" parameter is \(text.utf8.count) bytes long; at most \(maxTextBytes) bytes are allowed."))
        }
        return .success(text)
    }

    /// Embeds the batch's valid texts in one call; bad tasks fail permanently, the rest succeed.
    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        var outcomes = [StageOutcome?](repeating: nil, count: tasks.count)
        var texts: [String] = [], slots: [Int] = []
        for (i, task) in tasks.enumerated() {
            switch EmbedStage.text(fromParams: task.params) {
            case .success(let text): texts.append(text); slots.append(i)
            case .failure(let error): outcomes[i] = .permanent(error.message)
            }
        }
        if !texts.isEmpty {
            let flat = try embedder.embedFlat(texts)
            let d = embedder.dimension
            for (j, slot) in slots.enumerated() {
                outcomes[slot] = .ok(EmbedStage.littleEndianBytes(flat[(j * d)..<((j + 1) * d)]))
            }
        }
        return outcomes.map { $0! }
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
