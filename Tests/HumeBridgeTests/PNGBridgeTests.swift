import CPNG
import Testing

@Suite("CPNG bridge")
struct PNGBridgeTests {
    /// A 4x4 RGB image in which every byte differs from its neighbours.
    static let pixels: [UInt8] = (0..<48).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i &* 37 &+ 11) }

    static func rgbImage(width: UInt32, height: UInt32) -> png_image {
        var image = png_image()
        image.version = hume_png_image_version()
        image.width = width
        image.height = height
        image.format = hume_png_format_rgb()
        return image
    }

    static func encode(_ pixels: [UInt8], width: UInt32, height: UInt32) -> [UInt8]? {
        var image = rgbImage(width: width, height: height)
        let stride = Int32(hume_png_image_row_stride(&image))
        var size = 0
        guard png_image_write_to_memory(&image, nil, &size, 0, pixels, stride, nil) != 0, size > 0 else { return nil }
        var png = [UInt8](repeating: 0, count: size)
        let ok = png.withUnsafeMutableBytes { out in
            png_image_write_to_memory(&image, out.baseAddress, &size, 0, pixels, stride, nil)
        }
        guard ok != 0 else { return nil }
        return Array(png.prefix(size))
    }

    /// Decodes to 8-bit RGB; on failure returns libpng's message.
    static func decode(_ png: [UInt8]) -> Result<(width: UInt32, height: UInt32, pixels: [UInt8]), DecodeError> {
        var image = png_image()
        image.version = hume_png_image_version()
        let began = png.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard began != 0 else { return .failure(DecodeError(message: message(of: &image))) }
        defer { png_image_free(&image) }
        image.format = hume_png_format_rgb()
        var pixels = [UInt8](repeating: 0, count: hume_png_image_buffer_size(&image))
        let stride = Int32(hume_png_image_row_stride(&image))
        let finished = pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, stride, nil) }
        guard finished != 0 else { return .failure(DecodeError(message: message(of: &image))) }
        return .success((image.width, image.height, pixels))
    }

    struct DecodeError: Error { let message: String }

    static func message(of image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    @Test("a 4x4 RGB image encodes to PNG in memory and decodes back to the same bytes")
    func roundTrip() throws {
        let png = try #require(Self.encode(Self.pixels, width: 4, height: 4))
        #expect(png.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let decoded = try Self.decode(png).get()
        #expect(decoded.width == 4)
        #expect(decoded.height == 4)
        #expect(decoded.pixels == Self.pixels)
    }

    @Test("bytes that are not a PNG are refused with libpng's reason, not a crash")
    func rejectsGarbage() {
        let garbage: [UInt8] = Array("definitely not a PNG file".utf8)
        switch Self.decode(garbage) {
        case .success: Issue.record("garbage decoded as a PNG")
        case .failure(let error): #expect(!error.message.isEmpty)
        }
    }

    @Test("a PNG cut short is refused, not a crash")
    func rejectsTruncated() throws {
        let png = try #require(Self.encode(Self.pixels, width: 4, height: 4))
        switch Self.decode(Array(png.prefix(png.count - 20))) {
        case .success: Issue.record("a truncated PNG decoded")
        case .failure(let error): #expect(!error.message.isEmpty)
        }
    }
}
