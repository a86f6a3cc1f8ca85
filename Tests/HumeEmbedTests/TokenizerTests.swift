import Foundation
import Testing
@testable import HumeEmbed

@Suite("WordPiece tokenizer")
struct TokenizerTests {
    private func tokenizer() throws -> WordPieceTokenizer {
        try WordPieceTokenizer(vocabularyURL: try requireModelDirectory().appendingPathComponent("vocab.txt"))
    }

    @Test("token ids equal the reference tokenizer's for every fixture case")
    func matchesReference() throws {
        let tokenizer = try tokenizer()
        let fixture = try loadFixture("tokens", as: TokenFixture.self)
        #expect(fixture.cases.count >= 25)
        for testCase in fixture.cases {
            let ids = tokenizer.encode(testCase.text)
            let tokens = ids.map { tokenizer.token(for: $0) ?? "?" }
            #expect(ids == testCase.ids,
                    "case \(testCase.name): got \(tokens.joined(separator: " ")), expected \(testCase.tokens.joined(separator: " "))")
        }
    }

    @Test("an over-long input is cut to 256 tokens ending in [SEP]")
    func truncation() throws {
        let tokenizer = try tokenizer()
        let text = Array(repeating: "hello world", count: 400).joined(separator: " ")
        #expect(tokenizer.wordPieceIDs(text).count == 800)
        let ids = tokenizer.encode(text)
        #expect(ids.count == 256)
        #expect(ids.first == tokenizer.classID)
        #expect(ids.last == tokenizer.separatorID)
    }

    @Test("format characters join their neighbours; a word over 100 characters is one [UNK]")
    func joiningAndLongWords() throws {
        let tokenizer = try tokenizer()
        #expect(tokenizer.wordPieceIDs("to\u{200B}day") == tokenizer.wordPieceIDs("today"))
        #expect(tokenizer.wordPieceIDs("to\u{00AD}day") == tokenizer.wordPieceIDs("today"))
        #expect(tokenizer.wordPieceIDs(String(repeating: "a", count: 101)) == [tokenizer.unknownID])
        #expect(tokenizer.wordPieceIDs(String(repeating: "a", count: 100)) != [tokenizer.unknownID])
        #expect(tokenizer.wordPieceIDs("Crème BRÛLÉE") == tokenizer.wordPieceIDs("creme brulee"))
    }

    @Test("a batch is padded to its longest sequence with [PAD] and a zero mask")
    func batchPadding() throws {
        let tokenizer = try tokenizer()
        let batch = tokenizer.encodeBatch(["a cat", "", "the quick brown fox jumps"])
        #expect(batch.count == 3)
        #expect(batch.lengths == [4, 2, 7])
        #expect(batch.sequenceLength == 7)
        #expect(Array(batch.ids[0..<7]) == tokenizer.encode("a cat") + Array(repeating: tokenizer.padID, count: 3))
        #expect(Array(batch.attentionMask[7..<14]) == [1, 1, 0, 0, 0, 0, 0])
        #expect(Array(batch.attentionMask[14..<21]) == Array(repeating: 1, count: 7))
    }

    @Test("a vocabulary without the special tokens is rejected")
    func missingSpecialTokens() {
        let error = #expect(throws: EmbedError.self) {
            try WordPieceTokenizer(tokens: ["[PAD]", "hello"], source: "test vocab")
        }
        #expect(error?.code == .invalidVocabulary)
        #expect(error?.message.contains("[UNK]") == true)
    }
}
