import HumeCore
import HumeStages

extension StageImage {
    /// The `tEXt` key under which `png()` stores the metadata JSON.
    public static let pngMetadataKey = "hume"

    /// The main image as PNG bytes, with the metadata JSON in a `tEXt` chunk keyed `hume` (`pngMetadataKey`).
    /// `tEXt` is Latin-1, so every non-ASCII character of the JSON is written as a `\u` escape: the chunk's text is
    /// still the same JSON document.
    /// - Throws: `HumeError` when the pixels do not match the size or the metadata is not UTF-8.
    public func png() throws -> [UInt8] {
        guard let json = String(validating: metadata, as: UTF8.self) else {
            throw HumeError(.invalidInput, "The stage image's metadata is not UTF-8 text.")
        }
        let text = metadata.isEmpty ? [] : [(StageImage.pngMetadataKey, StageImage.asciiJSON(json))]
        return try PNGCodec.encode(PixelImage(width: width, height: height, channels: 3, pixels: pixels), metadata: text)
    }

    /// The metadata JSON a PNG written by `png()` carries, or nil when it has none.
    /// - Throws: `HumeError(.invalidInput)` when the bytes are not a well-formed PNG.
    public static func metadata(fromPNG bytes: [UInt8]) throws -> [UInt8]? {
        try PNGCodec.textChunks(bytes).first { $0.0 == pngMetadataKey }.map { Array($0.1.utf8) }
    }

    /// JSON text with every non-ASCII character escaped as `\uXXXX` (UTF-16, surrogate pairs above U+FFFF).
    /// Valid for JSON documents because non-ASCII characters can only occur inside their strings.
    static func asciiJSON(_ json: String) -> String {
        var out = ""
        out.reserveCapacity(json.utf8.count)
        for u in json.unicodeScalars {
            if u.value < 0x80 { out.unicodeScalars.append(u); continue }
            for unit in String(u).utf16 {
                let hex = String(unit, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        return out
    }
}

