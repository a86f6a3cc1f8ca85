import Foundation
import Testing
@testable import HumeEmbed

@Suite("all-MiniLM-L6-v2 encoder")
struct EncoderTests {
    @Test("every fixture prompt has cosine ≥ 0.9999 with the sentence-transformers vector")
    func matchesReference() throws {
        let embedder = try requireEmbedder()
        let fixture = try loadFixture("embeddings", as: EmbeddingFixture.self)
        #expect(fixture.dimension == embedder.dimension)
        #expect(fixture.prompts.count >= 25)
        let vectors = try embedder.embed(fixture.prompts.map(\.text))
        var worst = 0.0
        for (prompt, vector) in zip(fixture.prompts, vectors) {
            #expect(embedder.tokenizer.encode(prompt.text).count == prompt.tokenCount, "token count of \"\(prompt.text.prefix(40))\"")
            let c = cosine(vector, prompt.vector)
            worst = max(worst, abs(1 - c))
            #expect(c >= 0.9999, "cosine \(c) for \"\(prompt.text.prefix(60))\"")
        }
        print("max |cos - 1| against the reference: \(worst)")
    }

    @Test("a batch gives the same vectors as one text at a time, whatever the pass size")
    func batchEqualsSingle() throws {
        let embedder = try requireEmbedder()
        let texts = try loadFixture("embeddings", as: EmbeddingFixture.self).prompts.map(\.text)
        let batched = try embedder.embed(texts)
        let small = try Embedder(modelDirectory: try requireModelDirectory(), maxBatch: 3, maxTokensPerPass: 300)
        let grouped = try small.embed(texts)
        for (i, text) in texts.enumerated() {
            let single = try embedder.embed(text)
            let difference = zip(single, batched[i]).map { abs($0 - $1) }.max() ?? .infinity
            #expect(difference < 1e-5, "batch and single differ by \(difference) on \"\(text.prefix(40))\"")
            let groupedDifference = zip(grouped[i], batched[i]).map { abs($0 - $1) }.max() ?? .infinity
            #expect(groupedDifference < 1e-5, "passes of 3 differ by \(groupedDifference) on \"\(text.prefix(40))\"")
        }
    }

    @Test("outputs are 384-d unit vectors, and distinct texts give distinct vectors")
    func unitNorm() throws {
        let embedder = try requireEmbedder()
        let vectors = try embedder.embed(["", "red apple", "a green apple", "stock market crash", String(repeating: "long ", count: 500)])
        for v in vectors {
            #expect(v.count == 384)
            #expect(abs(dot(v, v).squareRoot() - 1) < 1e-5)
        }
        #expect(cosine(vectors[1], vectors[2]) > cosine(vectors[1], vectors[3]), "apples are closer to each other than to stocks")
        #expect(try embedder.embed([String]()).isEmpty)
        #expect(try embedder.embedFlat(["a", "b"]).count == 768)
    }

    @Test("a missing model folder says to run Ops/fetch-model.sh")
    func missingModel() {
        let error = #expect(throws: EmbedError.self) {
            try Embedder(modelDirectory: URL(fileURLWithPath: "/nonexistent/hume/models/all-MiniLM-L6-v2"))
        }
        #expect(error?.code == .modelNotFound)
        #expect(error?.message.contains("Ops/fetch-model.sh") == true)
    }

    @Test("a config that is not plain BERT is rejected")
    func badConfig() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("config.json")
        try Data(#"{"vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"max_position_embeddings":4,"type_vocab_size":1,"layer_norm_eps":1e-12,"hidden_act":"relu"}"#.utf8).write(to: url)
        let error = #expect(throws: EmbedError.self) { try BertConfig.load(from: url) }
        #expect(error?.code == .invalidConfig)
        #expect(error?.message.contains("relu") == true)
    }
}
