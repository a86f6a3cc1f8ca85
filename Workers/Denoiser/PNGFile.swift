import CPNG
import Foundation
import HumeEmbedStage

// A local PNG helper over libpng's simplified API (HumeData's PNGCodec, on the `retrieve` branch, will
// replace it and add metadata text chunks).

/// Writes and reads 8-bit RGB / gray PNGs.
public enum PNGFile {
    /// Encodes interleaved RGB8 (channels 3) or gray (channels 1) pixels as PNG bytes.
    public static func encode(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws -> [UInt8] {
        var image = png_image()
        image.version = hume_png_image_version()
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = channels == 1 ? hume_png_format_gray() : hume_png_format_rgb()
        var size: png_alloc_size_t = 0
        guard pixels.withUnsafeBytes({ png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil) }) != 0 else {
            throw StageInputError("PNG encoding failed: \(message(image)).")
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        let ok = out.withUnsafeMutableBytes { o in
            pixels.withUnsafeBytes { png_image_write_to_memory(&image, o.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        guard ok != 0 else { throw StageInputError("PNG encoding failed: \(message(image)).") }
        return Array(out.prefix(Int(size)))
    }

    /// Decodes a PNG to interleaved RGB8, compositing any alpha onto white.
    /// - Throws: `StageInputError` ("not a PNG") for anything libpng refuses.
    public static func decodeRGB(_ bytes: [UInt8]) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        guard bytes.count >= 8, bytes.prefix(8).elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            throw StageInputError("The source image is not a PNG (it lacks the PNG signature); send a PNG file.")
        }
        var image = png_image()
        image.version = hume_png_image_version()
        guard bytes.withUnsafeBytes({ png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }) != 0 else {
            throw StageInputError("The source PNG could not be read: \(message(image)).")
        }
        image.format = hume_png_format_rgba()
        var rgba = [UInt8](repeating: 0, count: hume_png_image_buffer_size(&image))
        guard rgba.withUnsafeMutableBytes({ png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }) != 0 else {
            throw StageInputError("The source PNG could not be decoded: \(message(image)).")
        }
        let n = Int(image.width) * Int(image.height)
        var rgb = [UInt8](repeating: 0, count: 3 * n)
        for p in 0..<n {
            let a = Int(rgba[4 * p + 3])
            for c in 0..<3 { rgb[3 * p + c] = UInt8((Int(rgba[4 * p + c]) * a + 255 * (255 - a) + 127) / 255) }
        }
        return (Int(image.width), Int(image.height), rgb)
    }

    static func message(_ image: png_image) -> String {
        var m = image.message
        return withUnsafeBytes(of: &m) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }
}
