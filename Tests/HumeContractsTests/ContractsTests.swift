import HumeCore
import HumeStages
import Testing

// The stage contracts alone: this target links neither ZeroMQ nor a model, so these run without a broker or data.

/// The sentence of the `StageInputError` that `body` throws, or nil when it throws nothing or something else.
func sentence(_ body: () throws -> Void) -> String? {
    do { try body() } catch let e as StageInputError { return e.message } catch { return "unexpected \(type(of: error)): \(error)" }
    return nil
}

/// One sentence: a capital first letter, one full stop at the end, no line breaks.
func isOneSentence(_ s: String?) -> Bool {
    guard let s, let first = s.first else { return false }
    return first.isUppercase && s.hasSuffix(".") && !s.contains("\n")
}

@Suite("embed payloads")
struct EmbedPayloadTests {
    @Test("an embed output round-trips, text included, and is 1536 bytes plus the text")
    func roundTrip() throws {
        let v = (0..<384).map { Float($0) / 384 - 0.5 }
        let out = EmbedOutput(vector: v, text: "a red apple 🍎")
        let bytes = out.encoded()
        #expect(bytes.count == 1536 + "a red apple 🍎".utf8.count)
        #expect(try EmbedOutput(decoding: bytes) == out)
        #expect(try EmbedOutput(decoding: EmbedOutput(vector: v, text: "").encoded()).text == "")
    }

    @Test("short, non-finite and non-UTF-8 payloads are refused in one sentence each")
    func bad() {
        let good = EmbedOutput(vector: [Float](repeating: 0.05, count: 384), text: "").encoded()
        let cases: [([UInt8], String)] = [
            (Array(good.prefix(100)), "got 100 bytes"),
            (EmbedOutput(vector: [Float](repeating: .nan, count: 384), text: "").encoded(), "NaN"),
            (good + [0xff, 0xfe], "not valid UTF-8"),
        ]
        for (bytes, fragment) in cases {
            let s = sentence { _ = try EmbedOutput(decoding: bytes) }
            #expect(isOneSentence(s) && s!.contains(fragment), "\(String(describing: s))")
        }
    }

    @Test("the text to embed: edit over data over prompt; empty, long, non-string and non-JSON refused")
    func input() throws {
        func text(_ params: String, _ data: String = "") -> Result<String, StageInputError> {
            EmbedInput.text(params: Array(params.utf8), data: Array(data.utf8))
        }
        #expect(try text("", "a cat").get() == "a cat")
        #expect(try text(#"{"prompt": "a dog"}"#).get() == "a dog")
        #expect(try text(#"{"prompt": "a dog"}"#, "a cat").get() == "a cat")
        #expect(try text(#"{"prompt": "a dog", "edit": "with a hat"}"#, "a cat").get() == "with a hat")
        let long = String(repeating: "a", count: EmbedInput.maxTextBytes + 1)
        for (params, data, fragment) in [("", "   ", "empty"), (#"{"prompt": 3}"#, "", "not a string"), ("[1]", "", "JSON object"),
                                         (#"{"seed": 1}"#, "", "no \"prompt\""), ("{\"prompt\": \"\(long)\"}", "", "at most 4096 bytes")] {
            guard case .failure(let e) = text(params, data) else { Issue.record("accepted \(params) \(data)"); continue }
            #expect(isOneSentence(e.message) && e.message.contains(fragment), "\(e.message)")
        }
    }
}

@Suite("neighbours payload")
struct NeighboursTests {
    @Test("neighbours round-trip with scores rounded to 6 decimals; absent, null and empty scores mean none")
    func roundTrip() throws {
        let n = Neighbours(database: "emoji", ids: [3, 1, 2], scores: [0.91234567, 0.5, -0.25], captions: ["a", "b", "c"], prompt: "p")
        let back = try Neighbours(decoding: n.encoded())
        #expect(back.ids == [3, 1, 2] && back.database == "emoji" && back.captions == ["a", "b", "c"] && back.prompt == "p")
        #expect(back.scores == [0.912346, 0.5, -0.25])
        for json in [#"{"ids": [1]}"#, #"{"ids": [1], "scores": null}"#, #"{"ids": [1], "scores": []}"#] {
            let m = try Neighbours(decoding: Array(json.utf8))
            #expect(m.scores == nil && m.database == nil && m.prompt == nil, "\(json)")
        }
        #expect(try Neighbours(decoding: Array(#"{"ids": [1], "prompt": ""}"#.utf8)).prompt == nil)
    }

    @Test("malformed neighbours are refused in one sentence naming the problem")
    func bad() {
        let cases: [(String, String)] = [
            ("not json", "not the retrieve stage's JSON object"),
            ("[1, 2]", "not the retrieve stage's JSON object"),
            (#"{"ids": "1"}"#, "no \"ids\" list"),
            (#"{"ids": []}"#, "found no neighbours"),
            (#"{"ids": [1.5]}"#, "holds 1.5"),
            (#"{"ids": [1, true]}"#, "holds true"),
            (#"{"ids": [1, 2], "scores": [0.5]}"#, "1 entries for 2 ids"),
            (#"{"ids": [1], "scores": [2]}"#, "from -1 to 1"),
            (#"{"ids": [1], "scores": 0.5}"#, "not a list"),
            (#"{"ids": [1], "prompt": 7}"#, "not a string"),
        ]
        for (json, fragment) in cases {
            let s = sentence { _ = try Neighbours(decoding: Array(json.utf8)) }
            #expect(isOneSentence(s) && s!.contains(fragment), "\(json): \(String(describing: s))")
        }
    }
}

@Suite("job parameters")
struct ParametersTests {
    @Test("generate parameters: empty is every default, and `object` reads back as the same settings")
    func roundTrip() throws {
        let d = try GenerateParameters(json: [])
        #expect(d.database == GenerateParameters.defaultDatabase && d.k == 16 && d.size == 128 && d.steps == 20 && d.seed == 1)
        #expect(d.margin == GenerateParameters.defaultMargin && d.coherence == GenerateParameters.defaultCoherence && d.register
                && d.outlineAgreement == GenerateParameters.defaultOutlineAgreement && d.promptColour)
        var p = GenerateParameters()
        p.database = "tuxpaint"; p.k = 5; p.seed = 9; p.size = 32; p.steps = 7; p.temperature = 0.05; p.focus = 0.3
        p.consensus = 2; p.patchScale = 1.5; p.margin = nil; p.coherence = nil; p.register = false; p.guidance = 2
        p.colourAgreement = 0.25; p.outlineAgreement = nil; p.promptColour = false
        p.prompt = "a cat"
        for q in [d, p] {
            let back = try GenerateParameters(json: q.object.bytes)
            #expect(back.object == q.object)
            #expect(back.margin == q.margin && back.coherence == q.coherence && back.guidance == q.guidance && back.prompt == q.prompt
                    && back.colourAgreement == q.colourAgreement && back.outlineAgreement == q.outlineAgreement
                    && back.promptColour == q.promptColour)
        }
    }

    @Test("every out-of-range or mistyped generate key is refused in one sentence naming it")
    func bad() {
        let cases: [(String, String)] = [
            ("{", "not valid JSON"), ("[1]", "must be a JSON object"),
            (#"{"k": 0}"#, "The \"k\" parameter is 0; it must be a whole number from 1 to 256."),
            (#"{"k": 257}"#, "from 1 to 256"), (#"{"k": true}"#, "The \"k\" parameter is true"), (#"{"k": "ten"}"#, "\"ten\""),
            (#"{"k": 2.5}"#, "2.5"), (#"{"seed": -1}"#, "\"seed\""), (#"{"steps": 0}"#, "\"steps\""),
            (#"{"size": 48}"#, "32, 64 or 128"), (#"{"size": 256}"#, "\"size\""), (#"{"temperature": 0}"#, "from 0.001 to 10"),
            (#"{"focus": 11}"#, "\"focus\" parameter is 11"), (#"{"consensus": -1}"#, "\"consensus\""),
            (#"{"patch_scale": 4}"#, "\"patch_scale\""), (#"{"margin": 3}"#, "\"margin\""), (#"{"coherence": 1.5}"#, "\"coherence\""), (#"{"colour_agreement": -1}"#, "\"colour_agreement\""),
            (#"{"outline_agreement": 1.5}"#, "The \"outline_agreement\" parameter is 1.5; it must be a number from 0 to 1."),
            (#"{"register": 1}"#, "true or false"), (#"{"prompt_colour": "no"}"#, "The \"prompt_colour\" parameter must be true or false."), (#"{"guidance": 0}"#, "greater than 0"), (#"{"database": ""}"#, "non-empty string"),
            (#"{"database": 5}"#, "\"database\""),
        ]
        for (json, fragment) in cases {
            let s = sentence { _ = try GenerateParameters(json: Array(json.utf8)) }
            #expect(isOneSentence(s) && s!.contains(fragment), "\(json): \(String(describing: s))")
        }
    }

    @Test("edit parameters: an edit text is required, the database defaults to emoji, shared keys are checked alike")
    func edit() throws {
        let e = try EditParameters(json: Array(#"{"edit": "with sunglasses", "k": 4}"#.utf8))
        #expect(e.edit == "with sunglasses" && e.database == "emoji" && e.k == 4 && e.caption == nil && e.size == nil)
        #expect(try EditParameters(json: Array(#"{"edit": "x", "caption": null}"#.utf8)).caption == nil)
        let long = String(repeating: "b", count: EmbedInput.maxTextBytes + 1)
        let cases: [(String, String)] = [
            ("[]", "not a JSON object"), (#"{"caption": "a cat"}"#, "no non-empty \"edit\""), (#"{"edit": "  "}"#, "no non-empty \"edit\""),
            (#"{"edit": "x", "caption": ""}"#, "\"caption\""), ("{\"edit\": \"\(long)\"}", "at most 4096 bytes"),
            (#"{"edit": "x", "k": 0}"#, "The \"k\" parameter is 0; it must be a whole number from 1 to 256."),
            (#"{"edit": "x", "size": 48}"#, "The \"size\" parameter is 48"),
        ]
        for (json, fragment) in cases {
            let s = sentence { _ = try EditParameters(json: Array(json.utf8)) }
            #expect(isOneSentence(s) && s!.contains(fragment), "\(json): \(String(describing: s))")
        }
    }
}

@Suite("stage image and outcomes")
struct StageImageContractTests {
    @Test("a stage image with a mask round-trips; its header alone locates metadata and pixels")
    func roundTrip() throws {
        let pixels = (0..<(4 * 3 * 3)).map { UInt8($0) }
        let image = StageImage(width: 4, height: 3, metadata: Array(#"{"prompt":"p"}"#.utf8), pixels: pixels,
                               sections: [.init(tag: "MASK", width: 4, height: 3, channels: 1, pixels: [UInt8](repeating: 255, count: 12))])
        let bytes = image.encoded()
        #expect(try StageImage(decoding: bytes) == image)
        let h = try #require(StageImage.header(of: bytes))
        #expect(h.width == 4 && h.height == 3 && Array(bytes[h.metadata]) == image.metadata && Array(bytes[h.pixels]) == pixels)
        #expect(StageImage.header(of: Array(bytes.prefix(20))) == nil)
        #expect(StageImage.header(of: Array("PNG!........".utf8)) == nil)
    }

    @Test("truncated or foreign bytes are refused in one sentence")
    func bad() {
        let good = StageImage(width: 2, height: 2, metadata: [], pixels: [UInt8](repeating: 9, count: 12)).encoded()
        for (bytes, fragment) in [(Array(good.prefix(15)), "truncated in its pixels"), (Array("nope, not an image".utf8), "does not start with \"HIMG\"")] {
            do { _ = try StageImage(decoding: bytes); Issue.record("accepted \(bytes)") } catch let e as StageImageError {
                #expect(e.isPermanent && e.message.contains(fragment), "\(e.message)")
            } catch { Issue.record("threw \(error)") }
        }
    }

    struct Unlabelled: Error {}

    @Test("errors map to outcomes in one place: bad input is permanent, host trouble retryable")
    func outcomes() {
        #expect(StageOutcome(error: StageInputError("The prompt is empty.")) == .permanent("The prompt is empty."))
        #expect(StageOutcome(error: HumeError(.unknown, "Unknown database \"x\".")) == .permanent("Unknown database \"x\"."))
        #expect(StageOutcome(error: HumeError(.system, "The disk is full.")) == .retryable("The disk is full."))
        #expect(StageOutcome(error: StageImageError("Bad.")) == .permanent("Bad."))
        guard case .retryable = StageOutcome(error: Unlabelled()) else { Issue.record("an unknown error must be retryable"); return }
        #expect(StageOutcome.of { [1, 2] } == .ok([1, 2]))
        #expect(StageOutcome.of { throw StageInputError("No.") } == .permanent("No."))
    }
}
