import COpenBLAS
import Foundation

/// Turns text into 384-d unit vectors with all-MiniLM-L6-v2, matching sentence-transformers.
///
/// Load once and reuse: the weights (about 90 MB) are read when the embedder is made, and the
/// embedder is immutable afterwards, so it is `Sendable`. Each `embed` call is a blocking,
/// CPU-bound computation: run it on a thread of its own, not on the cooperative pool.
public final class Embedder: Sendable {
    /// The tokenizer built from the model's `vocab.txt`.
    public let tokenizer: WordPieceTokenizer
    /// The encoder built from `config.json` and `model.safetensors`.
    public let encoder: BertEncoder
    /// Most texts encoded in one forward pass.
    public let maxBatch: Int
    /// Most tokens (summed over the texts) in one forward pass; bounds the scratch memory.
    public let maxTokensPerPass: Int

    /// Length of each output vector (384 for all-MiniLM-L6-v2).
    public var dimension: Int { encoder.config.hiddenSize }

    /// Checks that a model folder holds `config.json`, `vocab.txt` and `model.safetensors` (not that they are well formed).
    /// - Throws: `EmbedError(.modelNotFound)` naming the first missing file and `Ops/fetch-model.sh`.
    public static func checkFiles(_ modelDirectory: URL) throws {
        for name in ["config.json", "vocab.txt", "model.safetensors"]
        where !FileManager.default.fileExists(atPath: modelDirectory.appendingPathComponent(name).path) {
            throw EmbedError(code: .modelNotFound,
                             message: "The model folder \(modelDirectory.path) has no \(name); run Ops/fetch-model.sh to install all-MiniLM-L6-v2.")
        }
    }

    /// Loads a model folder holding `config.json`, `vocab.txt` and `model.safetensors`, as
    /// installed by `Ops/fetch-model.sh`.
    /// - Parameters:
    ///   - modelDirectory: The folder, e.g. `~/.cache/hume/models/all-MiniLM-L6-v2`.
    ///   - maxSequenceLength: Tokens per text including `[CLS]`/`[SEP]` (256, sentence-transformers'
    ///     `max_seq_length` for this model).
    ///   - maxBatch: Most texts per forward pass (default 256).
    ///   - maxTokensPerPass: Most tokens per forward pass (default 2048, about 32 MB of scratch; larger
    ///     passes measured no faster).
    /// - Throws: `EmbedError`: `.modelNotFound` when a file is missing (run `Ops/fetch-model.sh`),
    ///   otherwise the error of the file that is malformed.
    public init(modelDirectory: URL, maxSequenceLength: Int = 256, maxBatch: Int = 256,
                maxTokensPerPass: Int = 2048) throws {
        try Embedder.checkFiles(modelDirectory)
        let config = try BertConfig.load(from: modelDirectory.appendingPathComponent("config.json"))
        guard maxSequenceLength >= 2, maxSequenceLength <= config.maxPositionEmbeddings else {
            throw EmbedError(code: .invalidConfig,
                             message: "maxSequenceLength is \(maxSequenceLength); it must be between 2 and the model's \(config.maxPositionEmbeddings) positions.")
        }
        tokenizer = try WordPieceTokenizer(vocabularyURL: modelDirectory.appendingPathComponent("vocab.txt"),
                                           maxLength: maxSequenceLength)
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw EmbedError(code: .invalidVocabulary,
                             message: "vocab.txt has \(tokenizer.vocabularySize) tokens but config.json allows \(config.vocabSize).")
        }
        let weights = try SafeTensorsFile(path: modelDirectory.appendingPathComponent("model.safetensors").path)
        encoder = try BertEncoder(config: config, weights: weights)
        self.maxBatch = max(1, maxBatch)
        self.maxTokensPerPass = max(maxSequenceLength, maxTokensPerPass)
    }

    /// Caps OpenBLAS's own thread pool for this process (the `OPENBLAS_NUM_THREADS` setting).
    public static func setBLASThreads(_ count: Int) {
        hume_openblas_set_threads(Int32(max(1, count)))
    }

    /// Embeds one text.
    public func embed(_ text: String) throws -> [Float] {
        try embedFlat([text])
    }

    /// Embeds texts, one unit vector of `dimension` floats per text, in input order.
    public func embed(_ texts: [String]) throws -> [[Float]] {
        let flat = try embedFlat(texts)
        let d = dimension
        return (0..<texts.count).map { Array(flat[($0 * d)..<(($0 + 1) * d)]) }
    }

    /// Embeds texts into one row-major `[texts.count, dimension]` buffer.
    ///
    /// Texts are tokenized, then run in passes of at most `maxBatch` texts and `maxTokensPerPass`
    /// tokens, packed back to back without padding (so sorting by length would save nothing). The
    /// result does not depend on how texts are grouped.
    public func embedFlat(_ texts: [String]) throws -> [Float] {
        let d = dimension
        guard !texts.isEmpty else { return [] }
        let sequences = texts.map(tokenizer.encode)

        // Group consecutive texts into passes.
        var passes: [Range<Int>] = []
        var passStart = 0, passTokens = 0, largestPass = 0, longest = 0
        for (i, sequence) in sequences.enumerated() {
            longest = max(longest, sequence.count)
            if i > passStart, i - passStart >= maxBatch || passTokens + sequence.count > maxTokensPerPass {
                passes.append(passStart..<i)
                largestPass = max(largestPass, passTokens)
                passStart = i
                passTokens = 0
            }
            passTokens += sequence.count
        }
        passes.append(passStart..<sequences.count)
        largestPass = max(largestPass, passTokens)

        let workspace = encoder.makeWorkspace(tokens: largestPass, maxSequence: longest)
        var output = [Float](repeating: 0, count: texts.count * d)
        var packed: [Int32] = []
        packed.reserveCapacity(largestPass)
        output.withUnsafeMutableBufferPointer { out in
            for pass in passes {
                packed.removeAll(keepingCapacity: true)
                for i in pass { packed.append(contentsOf: sequences[i]) }
                let lengths = pass.map { sequences[$0].count }
                packed.withUnsafeBufferPointer { ids in
                    encoder.encode(ids: ids, lengths: lengths, into: out.baseAddress! + pass.lowerBound * d,
                                   workspace: workspace)
                }
            }
        }
        return output
    }
}
