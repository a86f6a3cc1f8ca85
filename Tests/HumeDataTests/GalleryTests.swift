import HumeData
import Testing

@Suite("Gallery page")
struct GalleryTests {
    @Test("every image of every entry is referenced, text is escaped, failures show their error")
    func page() {
        let entries = [
            Gallery.Entry(kind: .generate, text: "a <b>bold</b> \"sun\" & moon", database: "emoji", result: "images/demo 1.png",
                          neighbours: [("neighbours/emoji-12.png", "sun with face"), ("neighbours/emoji-#3.png", "x'y")],
                          details: [("seed", "1")]),
            Gallery.Entry(kind: .edit, text: "with sunglasses", database: "emoji", result: "images/e.png", source: "sources/s.png",
                          mask: "images/e.mask.png"),
            Gallery.Entry(kind: .generate, text: "broken", database: "nope", result: nil, error: "The database nope does not exist."),
        ]
        let h = Gallery.html(title: "Hume demo", summary: "3 jobs", entries: entries)
        for src in ["images/demo%201.png", "neighbours/emoji-12.png", "neighbours/emoji-%233.png", "images/e.png", "sources/s.png",
                    "images/e.mask.png"] {
            #expect(h.contains("src=\"\(src)\""), "\(src) missing")
        }
        #expect(h.contains("a &lt;b&gt;bold&lt;/b&gt; &quot;sun&quot; &amp; moon"))
        #expect(!h.contains("<b>bold</b>"))
        #expect(h.contains("x&#39;y"))
        #expect(h.contains("The database nope does not exist.") && h.contains("row failed"))
        #expect(h.components(separatedBy: "<div class=\"row").count - 1 == 3)
    }
}
