import Foundation
import Testing
@testable import HumeEmbed

/// The installed model folder, or a failed requirement telling how to install it.
func requireModelDirectory() throws -> URL {
    let directory = testPaths.model
    let weights = directory.appendingPathComponent("model.safetensors").path
    try #require(FileManager.default.fileExists(atPath: weights),
                 "all-MiniLM-L6-v2 is not installed in \(directory.path): run Ops/fetch-model.sh (HUME_HOME moves it).")
    return directory
}

/// One embedder for the whole test run: loading reads 90 MB.
let sharedEmbedder: Result<Embedder, any Error> = Result {
    try Embedder(modelDirectory: testPaths.model)
}

func requireEmbedder() throws -> Embedder {
    _ = try requireModelDirectory()
    return try sharedEmbedder.get()
}

/// Decodes a JSON fixture shipped with the tests.
func loadFixture<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
                           "fixture \(name).json is missing; regenerate with Ops/make-embed-fixtures.py")
    return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
}

struct TokenFixture: Decodable {
    struct Case: Decodable {
        var name: String
        var text: String
        var ids: [Int32]
        var tokens: [String]
    }
    var cases: [Case]
}

struct EmbeddingFixture: Decodable {
    struct Prompt: Decodable {
        var text: String
        var tokenCount: Int
        var vector: [Float]
    }
    var dimension: Int
    var prompts: [Prompt]
}

func dot(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
}

func cosine(_ a: [Float], _ b: [Float]) -> Double {
    dot(a, b) / (dot(a, a).squareRoot() * dot(b, b).squareRoot())
}

/// A fresh temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("hume-embed-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
