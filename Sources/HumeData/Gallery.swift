import Foundation
import HumeCore

/// A static HTML gallery of a batch's results (`index.html` beside the images): for a generated image its prompt,
/// the neighbours it was conditioned on and the result; for an edit the source, the mask and the result; for a
/// failed job its error. Paths are relative to the gallery file so the folder can be moved or served as is.
public enum Gallery {
    /// One job's row.
    public struct Entry: Sendable, Equatable {
        public enum Kind: String, Sendable { case generate, edit }
        public var kind: Kind
        /// The prompt, or the edit text.
        public var text: String
        public var database: String
        /// The result image, or nil when the job failed.
        public var result: String?
        /// Neighbour thumbnails with their captions (generate).
        public var neighbours: [(path: String, caption: String)]
        /// Edit: the source and the mask.
        public var source: String?
        public var mask: String?
        /// Why the job failed, when it did.
        public var error: String?
        /// Extra facts shown under the row (seed, k, steps, sha256…).
        public var details: [(String, String)]

        public init(kind: Kind, text: String, database: String, result: String?, neighbours: [(path: String, caption: String)] = [],
                    source: String? = nil, mask: String? = nil, error: String? = nil, details: [(String, String)] = []) {
            self.kind = kind
            self.text = text
            self.database = database
            self.result = result
            self.neighbours = neighbours
            self.source = source
            self.mask = mask
            self.error = error
            self.details = details
        }

        public static func == (a: Entry, b: Entry) -> Bool {
            a.kind == b.kind && a.text == b.text && a.database == b.database && a.result == b.result
                && a.neighbours.map(\.path) == b.neighbours.map(\.path) && a.neighbours.map(\.caption) == b.neighbours.map(\.caption)
                && a.source == b.source && a.mask == b.mask && a.error == b.error
                && a.details.map(\.0) == b.details.map(\.0) && a.details.map(\.1) == b.details.map(\.1)
        }
    }

    /// Escapes text for HTML element content and attribute values.
    public static func escape(_ s: String) -> String { htmlEscape(s) }

    /// A path as an `src`/`href` value: each segment percent-encoded, so spaces and `#` survive.
    static func url(_ path: String) -> String {
        let allowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "#?"))
        return escape(path.split(separator: "/", omittingEmptySubsequences: false)
            .map { String($0).addingPercentEncoding(withAllowedCharacters: allowed) ?? String($0) }.joined(separator: "/"))
    }

    /// The whole page.
    /// - Parameter credits: where the pictures come from (one line per image source, with its licence), shown under
    ///   the results.
    public static func html(title: String, summary: String, entries: [Entry], credits: [String] = []) -> String {
        var h = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:24px;background:#fafafa;color:#222}
            h1{font-size:20px;margin:0 0 4px} p.summary{color:#555;margin:0 0 16px}
            .row{display:flex;gap:16px;align-items:flex-start;background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;margin:0 0 12px}
            .row.failed{border-color:#d66}
            .text{width:220px;flex:none} .text b{display:block;font-size:15px} .kind{color:#888;font-size:12px}
            figure{margin:0;text-align:center;font-size:11px;color:#666}
            img{image-rendering:pixelated;background:#fff;border:1px solid #eee}
            img.result{width:192px;height:192px} img.small{width:64px;height:64px}
            .neighbours{display:flex;flex-wrap:wrap;gap:4px;max-width:560px}
            .neighbours figure{width:64px;overflow:hidden} .neighbours figcaption{height:2.6em;overflow:hidden;overflow-wrap:anywhere}
            .credits{font-size:12px;color:#555;margin-top:20px} .error{color:#b00} dl{margin:6px 0 0;font-size:12px;color:#666} dt{display:inline;font-weight:600} dd{display:inline;margin:0 8px 0 2px}
            </style></head><body>
            <h1>\(escape(title))</h1>
            <p class="summary">\(escape(summary))</p>

            """
        for e in entries {
            h += "<div class=\"row\(e.result == nil ? " failed" : "")\">\n<div class=\"text\"><span class=\"kind\">\(e.kind.rawValue) · \(escape(e.database))</span><b>\(escape(e.text))</b>"
            if let err = e.error { h += "<div class=\"error\">\(escape(err))</div>" }
            if !e.details.isEmpty {
                h += "<dl>" + e.details.map { "<dt>\(escape($0.0))</dt><dd>\(escape($0.1))</dd>" }.joined(separator: " ") + "</dl>"  // spaces: where a line may wrap
            }
            h += "</div>\n"
            if let s = e.source { h += figure(s, "source", cls: "result") }
            if let m = e.mask { h += figure(m, "mask", cls: "result") }
            if let r = e.result { h += figure(r, "result", cls: "result") }
            if !e.neighbours.isEmpty {
                h += "<div class=\"neighbours\">" + e.neighbours.map { figure($0.path, $0.caption, cls: "small") }.joined() + "</div>\n"
            }
            h += "</div>\n"
        }
        if !credits.isEmpty {
            h += "<div class=\"credits\"><b>Image sources</b><ul>" + credits.map { "<li>\(escape($0))</li>" }.joined() + "</ul></div>\n"
        }
        h += "</body></html>\n"
        return h
    }

    static func figure(_ path: String, _ caption: String, cls: String) -> String {
        "<figure><img class=\"\(cls)\" src=\"\(url(path))\" alt=\"\(escape(caption))\" title=\"\(escape(caption))\"><figcaption>\(escape(caption))</figcaption></figure>"
    }
}
