import Foundation
import HumeCore

/// The binary image the `denoise` and `edit` stages hand to the next stage (the upload stage PNG-encodes it,
/// writing `metadata` as text chunks).
///
/// Layout, all integers little-endian:
/// ```
/// "HIMG"  u16 width  u16 height  u32 metadataLength  metadata (UTF-8 JSON object)  RGB8 pixels (w·h·3, row-major)
/// then zero or more sections:  4-byte tag  u16 width  u16 height  u8 channels  pixels (w·h·channels)
/// ```
/// The only section defined so far is `"MASK"` (1 channel, 0 = kept from the source, 255 = edited), written by
/// the `edit` stage. Readers skip sections with tags they do not know.
public struct StageImage: Equatable, Sendable {
    /// One extra image section after the main image.
    public struct Section: Equatable, Sendable {
        /// Four ASCII characters naming the section.
        public var tag: String
        public var width: Int
        public var height: Int
        public var channels: Int
        public var pixels: [UInt8]

        /// Creates a section; `pixels.count` must be `width · height · channels`.
        public init(tag: String, width: Int, height: Int, channels: Int, pixels: [UInt8]) {
            self.tag = tag
            self.width = width
            self.height = height
            self.channels = channels
            self.pixels = pixels
        }
    }

    /// The format version written into the metadata as `"version"`.
    public static let version = 1

    public var width: Int
    public var height: Int
    /// A JSON object (UTF-8): prompt, database, k, seed, steps, size, neighbour ids, version.
    public var metadata: [UInt8]
    /// Interleaved RGB8, row-major.
    public var pixels: [UInt8]
    public var sections: [Section]

    /// Creates a stage image.
    public init(width: Int, height: Int, metadata: [UInt8], pixels: [UInt8], sections: [Section] = []) {
        self.width = width
        self.height = height
        self.metadata = metadata
        self.pixels = pixels
        self.sections = sections
    }

    /// The mask section's pixels (one byte per pixel), if present.
    public var mask: Section? { sections.first { $0.tag == "MASK" } }

    /// Serialises the image.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = Array("HIMG".utf8)
        out.reserveCapacity(16 + metadata.count + pixels.count)
        func u16(_ v: Int) { out.append(UInt8(v & 0xff)); out.append(UInt8((v >> 8) & 0xff)) }
        func u32(_ v: Int) { for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8((v >> s) & 0xff)) } }
        u16(width); u16(height); u32(metadata.count)
        out += metadata
        out += pixels
        for section in sections {
            out += Array(section.tag.utf8.prefix(4))
            u16(section.width); u16(section.height); out.append(UInt8(section.channels))
            out += section.pixels
        }
        return out
    }

    /// The main image's geometry and where its metadata and pixels lie in `bytes`, read from the header alone (no
    /// copy): what the broker's status page needs. Nil when `bytes` is not a stage image or is cut short of its pixels.
    public static func header(of bytes: [UInt8]) -> (width: Int, height: Int, metadata: Range<Int>, pixels: Range<Int>)? {
        try? parseHeader(bytes)
    }

    /// The header of `bytes`, with one sentence naming what is missing or wrong.
    static func parseHeader(_ bytes: [UInt8]) throws -> (width: Int, height: Int, metadata: Range<Int>, pixels: Range<Int>) {
        func need(_ n: Int, from at: Int, _ what: String) throws {
            guard bytes.count - at >= n else {
                throw StageImageError("the stage image is truncated in its \(what) (\(bytes.count) bytes in all)")
            }
        }
        try need(12, from: 0, "header")
        guard bytes[0..<4].elementsEqual("HIMG".utf8) else {
            throw StageImageError("the data is not a stage image: it does not start with \"HIMG\"")
        }
        let w = Int(bytes[4]) | Int(bytes[5]) << 8, h = Int(bytes[6]) | Int(bytes[7]) << 8
        let m = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        try need(m, from: 12, "metadata")
        try need(w * h * 3, from: 12 + m, "pixels")
        return (w, h, 12 ..< 12 + m, 12 + m ..< 12 + m + w * h * 3)
    }

    /// Parses a stage image.
    /// - Throws: `StageImageError` with one sentence naming what is wrong.
    public init(decoding bytes: [UInt8]) throws {
        let h = try Self.parseHeader(bytes)
        width = h.width
        height = h.height
        metadata = Array(bytes[h.metadata])
        pixels = Array(bytes[h.pixels])
        sections = []
        var at = h.pixels.upperBound
        while at < bytes.count {
            guard bytes.count - at >= 9 else {
                throw StageImageError("the stage image is truncated in its section header (\(bytes.count) bytes in all)")
            }
            let tag = String(decoding: bytes[at..<(at + 4)], as: UTF8.self)
            let w = Int(bytes[at + 4]) | Int(bytes[at + 5]) << 8, hh = Int(bytes[at + 6]) | Int(bytes[at + 7]) << 8
            let c = Int(bytes[at + 8])
            at += 9
            guard bytes.count - at >= w * hh * c else {
                throw StageImageError("the stage image is truncated in its \(tag) section (\(bytes.count) bytes in all)")
            }
            sections.append(Section(tag: tag, width: w, height: hh, channels: c, pixels: Array(bytes[at..<(at + w * hh * c)])))
            at += w * hh * c
        }
    }
}

/// A stage image could not be parsed.
public struct StageImageError: ReportableError, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    /// A malformed image is bad input: no retry reads it differently.
    public var isPermanent: Bool { true }
}
