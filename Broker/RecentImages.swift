import Foundation
import HumeCore
import HumeStages

/// An image a stage produced, kept for the status page's "latest outputs": the last few stage images (`HIMG`,
/// PROTOCOL.md §11.5) that passed through the broker, whatever stage made them.
public struct RecentImage: Sendable, Equatable {
    public var job: UInt64
    public var key: String
    public var stage: String
    /// The prompt or edit text from the image's metadata, when it has one.
    public var text: String
    public var width: Int
    public var height: Int
    /// RGB8, row-major.
    public var rgb: [UInt8]

    /// Largest side kept (a 256² image is 192 KiB); larger images are skipped, not scaled.
    public static let maxSide = 256

    /// Reads a stage image's header, metadata text and pixels; nil for anything else or a malformed one.
    public init?(job: UInt64, key: String, stage: String, body: [UInt8]) {
        guard let h = StageImage.header(of: body), h.width > 0, h.height > 0,
              h.width <= RecentImage.maxSide, h.height <= RecentImage.maxSide else { return nil }
        self.job = job
        self.key = key
        self.stage = stage
        width = h.width
        height = h.height
        let meta = (try? JSON.parse(body[h.metadata])) ?? .null
        text = meta["prompt"]?.string ?? meta["edit"]?.string ?? ""
        rgb = Array(body[h.pixels])
    }

    /// The image as a 24-bit BMP (bottom-up BGR rows padded to 4 bytes): every browser shows it in an `<img>`, and
    /// it needs no compressor in the broker.
    public var bmp: [UInt8] {
        let row = (width * 3 + 3) & ~3
        let size = 54 + row * height
        var b = [UInt8]()
        b.reserveCapacity(size)
        func u16(_ v: Int) { b += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
        func u32(_ v: Int) { b += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24 & 0xff)] }
        b += [0x42, 0x4D]; u32(size); u32(0); u32(54)               // BITMAPFILEHEADER
        u32(40); u32(width); u32(height); u16(1); u16(24); u32(0)    // BITMAPINFOHEADER, BI_RGB
        u32(row * height); u32(2835); u32(2835); u32(0); u32(0)
        for y in stride(from: height - 1, through: 0, by: -1) {
            for x in 0..<width {
                let p = (y * width + x) * 3
                b += [rgb[p + 2], rgb[p + 1], rgb[p]]
            }
            b += [UInt8](repeating: 0, count: row - width * 3)
        }
        return b
    }
}
