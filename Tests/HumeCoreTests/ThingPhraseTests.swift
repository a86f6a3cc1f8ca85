import HumeCore
import Testing

@Suite("The thing's words")
struct ThingPhraseTests {
    @Test("a prompt's thing ends at a phrase about a part, garment, setting or content, or at 'of' after a container")
    func end() {
        func thing(_ s: String, colours: Set<String> = []) -> String {
            let w = s.split(separator: " ").map(String.init)
            return w[..<ThingPhrase.end(of: w, joinsAnd: { colours.contains($0) })].joined(separator: " ")
        }
        #expect(thing("a fairy with wings") == "a fairy")
        #expect(thing("a dancer in a red dress") == "a dancer")
        #expect(thing("a glass of red wine") == "a glass")
        #expect(thing("a bunch of purple grapes") == "a bunch of purple grapes")
        #expect(thing("of mice and men") == "of mice")  // a leading "of" follows no container
        #expect(thing("a black and white cat") == "a black")
        #expect(thing("a black and white cat", colours: ["black"]) == "a black and white cat")
        #expect(thing("a happy dog") == "a happy dog")
        #expect(thing("") == "")
    }
}
