import Foundation
import HumeCore
import HumeEmbed
import HumeStages

/// The `embed` stage: a job's text in (`EmbedInput`); an `EmbedOutput` out, its 384-d unit embedding followed by the
/// text itself, so the retrieve stage can echo it and the image records the prompt it was made for (PROTOCOL.md,
/// "Stage payloads").
///
/// It takes as many tasks as its credit allows (`batchSize`) and embeds the valid ones in one call, so a
/// full batch costs one pass of the encoder per 2,048 tokens rather than one per task.
public struct EmbedStage: Stage {

    public let name: String
    public let batchSize: Int
    public let concurrency: Int
    let embedder: Embedder

    /// Loads the model. One BLAS thread: the stage's parallelism is its replica count and batch size.
    /// - Parameters:
    ///   - modelDirectory: the MiniLM folder (`HumePaths.model`).
    ///   - batchSize: tasks per `run` call (default 64).
    public init(name: String = "embed", modelDirectory: URL, batchSize: Int = 64) throws {
        Embedder.setBLASThreads(1)
        self.name = name
        self.batchSize = max(1, batchSize)
        self.concurrency = 1
        self.embedder = try Embedder(modelDirectory: modelDirectory)
    }

    /// The text a job asks to embed (`EmbedInput.text(params:data:)`).
    public static func text(params: [UInt8], data: [UInt8]) -> Result<String, StageInputError> {
        EmbedInput.text(params: params, data: data)
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
            // Emoji read as their names ("a 🐸" is embedded as "a frog"); the text passed on is the one sent, which
            // the retrieve stage spells again for its words and the image records.
            let flat = try embedder.embedFlat(texts.map { EmojiNames.shared.spell($0) })
            let d = embedder.dimension
            for (j, slot) in slots.enumerated() {
                outcomes[slot] = .ok(EmbedOutput(vector: Array(flat[(j * d)..<((j + 1) * d)]), text: texts[j]).encoded())
            }
        }
        return outcomes.map { $0! }
    }
}
