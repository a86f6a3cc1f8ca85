import Foundation
import HumeCore
import Testing
@testable import HumeData

/// Small JPEGs made for these tests (Tests/Fixtures/jpeg): 24×16, the left half red, the right half blue, an 8×8 green
/// square in the top-left corner that shows which way up the picture is.
enum JPEGFixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/jpeg").standardizedFileURL

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: folder.appendingPathComponent(name)))
    }
}

@Suite("JPEG codec")
struct JPEGCodecTests {
    func pixel(_ image: PixelImage, _ x: Int, _ y: Int) -> [Int] {
        let p = (y * image.width + x) * image.channels
        return image.pixels[p ..< p + 3].map(Int.init)
    }

    func near(_ a: [Int], _ b: [Int], within: Int = 40) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) <= within } }

    @Test("baseline, progressive and EXIF-rotated JPEGs decode to the same upright RGB picture; gray to equal channels")
    func decodes() throws {
        for name in ["baseline.jpg", "progressive.jpg", "orientation6.jpg"] {
            let image = try JPEGCodec.decode(try JPEGFixtures.bytes(name))
            #expect(image.width == 24 && image.height == 16 && image.channels == 3, "\(name): \(image.width)×\(image.height)")
            #expect(near(pixel(image, 2, 2), [20, 200, 20]), "\(name): the green corner is top left, \(pixel(image, 2, 2))")
            #expect(near(pixel(image, 6, 13), [220, 20, 20]), "\(name): red on the left, \(pixel(image, 6, 13))")
            #expect(near(pixel(image, 20, 3), [20, 20, 220]), "\(name): blue on the right, \(pixel(image, 20, 3))")
        }
        let gray = try JPEGCodec.decode(try JPEGFixtures.bytes("gray.jpg"))
        #expect(gray.width == 24 && gray.channels == 3)
        let g = pixel(gray, 20, 3)
        #expect(g[0] == g[1] && g[1] == g[2], "\(g)")
    }

    @Test("not a JPEG, truncated, CMYK or over the limits: one sentence each, before any pixel buffer for the limits")
    func refuses() throws {
        func message(_ bytes: [UInt8], limits: PictureLimits = PictureLimits()) -> (HumeError.Code, String)? {
            do {
                _ = try JPEGCodec.decode(bytes, limits: limits)
                return nil
            } catch let e as HumeError {
                return (e.code, e.message)
            } catch {
                return nil
            }
        }
        let notJPEG = message(Array("GIF89a and more".utf8))
        #expect(notJPEG?.0 == .invalidInput && notJPEG?.1.contains("not a JPEG") == true, "\(String(describing: notJPEG))")
        let truncated = message(try JPEGFixtures.bytes("truncated.jpg"))
        #expect(truncated?.0 == .invalidInput && truncated?.1.hasPrefix("libjpeg-turbo could not decode the JPEG:") == true,
                "a file cut short is refused, not filled with grey: \(String(describing: truncated))")
        let cmyk = message(try JPEGFixtures.bytes("cmyk.jpg"))
        #expect(cmyk?.0 == .invalidInput && cmyk?.1.contains("CMYK") == true, "\(String(describing: cmyk))")
        let baseline = try JPEGFixtures.bytes("baseline.jpg")
        let wide = message(baseline, limits: PictureLimits(maxDimension: 20))
        #expect(wide?.0 == .tooLarge && wide?.1 == "The JPEG is 24×16 pixels; each side must be 1…20.", "\(String(describing: wide))")
        let many = message(baseline, limits: PictureLimits(maxPixels: 300))
        #expect(many?.0 == .tooLarge && many?.1.contains("24×16 = 384 pixels") == true, "\(String(describing: many))")
        // A header claiming 60000×60000 (SOF0's height and width) is refused from the header alone.
        var huge = baseline
        let sof = try #require((0 ..< huge.count - 9).first { huge[$0] == 0xFF && huge[$0 + 1] == 0xC0 })
        huge.replaceSubrange(sof + 5 ..< sof + 9, with: [0xEA, 0x60, 0xEA, 0x60])
        let claimed = message(huge, limits: PictureLimits(maxDimension: 1 << 16, maxPixels: 40_000_000))
        #expect(claimed?.0 == .tooLarge && claimed?.1.contains("60000×60000") == true, "\(String(describing: claimed))")
    }

    @Test("EXIF orientation: read from either byte order, missing or damaged is 1; all eight turn a picture upright")
    func orientation() throws {
        func app1(_ tiff: [UInt8]) -> [UInt8] {
            let body = Array("Exif\0\0".utf8) + tiff
            return [0xFF, 0xD8, 0xFF, 0xE1, UInt8((body.count + 2) >> 8), UInt8((body.count + 2) & 255)] + body + [0xFF, 0xD9]
        }
        // One IFD entry: tag 0x0112, type SHORT, count 1, value.
        let little: [UInt8] = [0x49, 0x49, 0x2A, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]
        let big: [UInt8] = [0x4D, 0x4D, 0, 0x2A, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0]
        #expect(JPEGCodec.orientation(app1(little)) == 8)
        #expect(JPEGCodec.orientation(app1(big)) == 3)
        #expect(JPEGCodec.orientation(try JPEGFixtures.bytes("orientation6.jpg")) == 6)
        #expect(JPEGCodec.orientation(try JPEGFixtures.bytes("baseline.jpg")) == 1)
        var pointsAway = little
        pointsAway[4] = 0xF0  // the IFD offset points past the data
        #expect(JPEGCodec.orientation(app1(pointsAway)) == 1)
        #expect(JPEGCodec.orientation(app1(Array(little.prefix(12)))) == 1)
        // A 3×2 picture whose pixels are their own numbers; each orientation's stored form, shown upright, is the original.
        let original = PixelImage(width: 3, height: 2, channels: 1, pixels: [1, 2, 3, 4, 5, 6])
        let stored: [Int: PixelImage] = [
            1: original,
            2: PixelImage(width: 3, height: 2, channels: 1, pixels: [3, 2, 1, 6, 5, 4]),
            3: PixelImage(width: 3, height: 2, channels: 1, pixels: [6, 5, 4, 3, 2, 1]),
            4: PixelImage(width: 3, height: 2, channels: 1, pixels: [4, 5, 6, 1, 2, 3]),
            5: PixelImage(width: 2, height: 3, channels: 1, pixels: [1, 4, 2, 5, 3, 6]),
            6: PixelImage(width: 2, height: 3, channels: 1, pixels: [3, 6, 2, 5, 1, 4]),  // turned a quarter anticlockwise
            7: PixelImage(width: 2, height: 3, channels: 1, pixels: [6, 3, 5, 2, 4, 1]),
            8: PixelImage(width: 2, height: 3, channels: 1, pixels: [4, 1, 5, 2, 6, 3]),  // turned a quarter clockwise
        ]
        for (o, image) in stored.sorted(by: { $0.key < $1.key }) {
            #expect(JPEGCodec.upright(image, orientation: o) == original, "orientation \(o)")
        }
    }
}
