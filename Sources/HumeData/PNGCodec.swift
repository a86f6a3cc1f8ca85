import CPNG
import Foundation
import HumeCore

/// 8-bit pixels decoded from or encoded to PNG.
public struct PixelImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// 3 (RGB) or 4 (RGBA).
    public var channels: Int
    /// Row-major, `width × height × channels` bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }
}

/// Limits applied when decoding untrusted picture bytes, PNG or JPEG (`PNGCodec`, `JPEGCodec`, `PictureCodec`): checked
/// on the header, before any pixel buffer is allocated.
public struct PictureLimits: Sendable {
    /// Largest accepted width or height (default 8192).
    public var maxDimension: Int = 8192
    /// Largest accepted input (default 64 MiB).
    public var maxBytes: Int = 64 << 20
    /// Largest accepted width × height (default: only the side limit applies).
    public var maxPixels: Int = .max
    public init(maxDimension: Int = 8192, maxBytes: Int = 64 << 20, maxPixels: Int = .max) {
        self.maxDimension = maxDimension
        self.maxBytes = maxBytes
        self.maxPixels = maxPixels
    }
}

/// PNG encoding and decoding through libpng's simplified API, with `tEXt` metadata chunks.
///
/// The simplified API writes no text chunks, so `encode` inserts `tEXt` chunks (with their CRC-32) into the
/// byte stream right after `IHDR`; `textChunks` reads them back. libpng's classic API (longjmp) is never used.
public enum PNGCodec {
    static let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]

    /// Whether `bytes` begin with the PNG signature.
    public static func isPNG(_ bytes: [UInt8]) -> Bool { bytes.starts(with: signature) }

    /// The width and height a PNG's `IHDR` gives (signature, then the whole `IHDR` chunk), or nil when it has none.
    public static func storedSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard bytes.count >= 33, isPNG(bytes), bytes[12..<16].elementsEqual("IHDR".utf8) else { return nil }
        func be32(_ at: Int) -> Int { (at..<at + 4).reduce(0) { $0 << 8 | Int(bytes[$1]) } }
        return (be32(16), be32(20))
    }

    /// Encodes 8-bit RGB or RGBA pixels as PNG, with `metadata` as `tEXt` chunks (keys: 1–79 Latin-1 characters).
    /// - Throws: `HumeError(.invalidInput)` for a bad shape or key; `.system` when libpng fails.
    public static func encode(_ image: PixelImage, metadata: [(String, String)] = []) throws -> [UInt8] {
        guard image.channels == 3 || image.channels == 4 else {
            throw HumeError(.invalidInput, "PNG encoding takes 3 (RGB) or 4 (RGBA) channels, got \(image.channels).")
        }
        guard image.width > 0, image.height > 0, image.pixels.count == image.width * image.height * image.channels else {
            throw HumeError(.invalidInput, "PNG encoding needs width × height × channels = \(image.width) × \(image.height) × \(image.channels) bytes, got \(image.pixels.count).")
        }
        var png = png_image()
        png.version = hume_png_image_version()
        png.width = png_uint_32(image.width)
        png.height = png_uint_32(image.height)
        png.format = image.channels == 3 ? hume_png_format_rgb() : hume_png_format_rgba()
        var size: png_alloc_size_t = 0
        let stride = png_int_32(image.width * image.channels)
        let ok1 = image.pixels.withUnsafeBytes { px in
            png_image_write_to_memory(&png, nil, &size, 0, px.baseAddress, stride, nil)
        }
        guard ok1 != 0, size > 0 else { throw pngError(&png, "size the PNG") }
        var out = [UInt8](repeating: 0, count: Int(size))
        let ok2 = out.withUnsafeMutableBytes { o in
            image.pixels.withUnsafeBytes { px in
                png_image_write_to_memory(&png, o.baseAddress, &size, 0, px.baseAddress, stride, nil)
            }
        }
        guard ok2 != 0 else { throw pngError(&png, "encode the PNG") }
        out.removeSubrange(Int(size)...)
        if metadata.isEmpty { return out }
        // Insert after IHDR: signature (8) + length (4) + type (4) + 13 data + CRC (4) = 33.
        var chunks: [UInt8] = []
        for (k, v) in metadata {
            guard (1...79).contains(k.utf8.count), k.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value <= 126 }) else {
                throw HumeError(.invalidInput, "PNG text key \"\(k)\" must be 1–79 printable ASCII characters.")
            }
            chunks += chunk(type: "tEXt", data: Array(k.utf8) + [0] + latin1(v))
        }
        out.insert(contentsOf: chunks, at: 33)
        return out
    }

    /// tEXt is Latin-1; characters outside it are written as `?`.
    static func latin1(_ s: String) -> [UInt8] {
        s.unicodeScalars.map { $0.value < 256 && $0.value != 0 ? UInt8($0.value) : UInt8(ascii: "?") }
    }

    static func chunk(type: String, data: [UInt8]) -> [UInt8] {
        let t = Array(type.utf8)
        var out: [UInt8] = []
        let n = UInt32(data.count)
        out += [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
        out += t + data
        let c = crc32(t + data)
        out += [UInt8(c >> 24), UInt8(c >> 16 & 0xff), UInt8(c >> 8 & 0xff), UInt8(c & 0xff)]
        return out
    }

    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// The PNG / zlib CRC-32 of `bytes`.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    /// The `tEXt` and uncompressed `iTXt` key/value pairs of a PNG, in file order.
    /// - Throws: `HumeError(.invalidInput)` when the bytes are not a well-formed PNG chunk stream (bad signature,
    ///   truncated chunk, bad CRC).
    public static func textChunks(_ bytes: [UInt8]) throws -> [(String, String)] {
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else {
            throw HumeError(.invalidInput, "The data is not a PNG (its first 8 bytes are not the PNG signature).")
        }
        var out: [(String, String)] = []
        var p = 8
        while p + 12 <= bytes.count {
            let n = Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
            guard n <= bytes.count - p - 12 else {
                throw HumeError(.invalidInput, "The PNG is truncated: a chunk at byte \(p) claims \(n) bytes.")
            }
            let type = String(decoding: bytes[p + 4 ..< p + 8], as: UTF8.self)
            let body = Array(bytes[p + 4 ..< p + 8 + n])
            let crcAt = p + 8 + n
            let stored = UInt32(bytes[crcAt]) << 24 | UInt32(bytes[crcAt + 1]) << 16 | UInt32(bytes[crcAt + 2]) << 8 | UInt32(bytes[crcAt + 3])
            guard crc32(body) == stored else {
                throw HumeError(.invalidInput, "The PNG is corrupt: the CRC of its \(type) chunk at byte \(p) does not match.")
            }
            if type == "tEXt" {
                let data = body[4...]
                if let z = data.firstIndex(of: 0) {
                    let k = String(decoding: data[data.startIndex..<z], as: UTF8.self)
                    let v = String(data[(z + 1)...].map { Character(Unicode.Scalar($0)) })
                    out.append((k, v))
                }
            }
            if type == "iTXt" {
                // keyword \0 compression-flag method language \0 translated-keyword \0 text (UTF-8); compressed ones are skipped.
                let data = Array(body[4...])
                if let z = data.firstIndex(of: 0), z + 2 < data.count, data[z + 1] == 0,
                   let l = data[(z + 3)...].firstIndex(of: 0), let t = data[(l + 1)...].firstIndex(of: 0) {
                    out.append((String(decoding: data[..<z], as: UTF8.self), String(decoding: data[(t + 1)...], as: UTF8.self)))
                }
            }
            if type == "IEND" { return out }
            p = crcAt + 4
        }
        throw HumeError(.invalidInput, "The PNG is truncated: it ends before its IEND chunk.")
    }

    /// Decodes PNG bytes (any colour type libpng handles: gray, palette, RGB, with or without alpha, 8 or 16 bit)
    /// to 8-bit RGB, or RGBA when `alpha` is true.
    /// - Throws: `HumeError(.invalidInput)` for non-PNG, corrupt or truncated data, and `.tooLarge` beyond `limits`.
    public static func decode(_ bytes: [UInt8], alpha: Bool = false, limits: PictureLimits = PictureLimits()) throws -> PixelImage {
        guard bytes.count <= limits.maxBytes else {
            throw HumeError(.tooLarge, "The PNG is \(bytes.count) bytes; the limit is \(limits.maxBytes).")
        }
        guard bytes.count >= 8, Array(bytes[0..<8]) == signature else {
            throw HumeError(.invalidInput, "The data is not a PNG (its first 8 bytes are not the PNG signature).")
        }
        // 16-bit samples: libpng's simplified API takes them as linear light and would gamma-encode them on the way
        // to 8 bits (an orange 0xF000/0x9000/0x1000 came out 248/196/72); viewers show them as sRGB values. So the
        // colour-space chunks are left out (libpng then applies no conversion), the 16-bit values are read as they
        // are, and scaled to 8 bits here.
        let sixteen = bytes.count > 24 && String(decoding: bytes[12..<16], as: UTF8.self) == "IHDR" && bytes[24] == 16
        let decodable = try decodableChunks(bytes, types: sixteen ? decodableTypes.subtracting(["gAMA", "sRGB", "cHRM"]) : decodableTypes)
        var png = png_image()
        png.version = hume_png_image_version()
        // libpng keeps a pointer to the input until finish_read: hold a copy whose address cannot move.
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: decodable.count, alignment: 8)
        defer { input.deallocate() }
        decodable.withUnsafeBytes { input.copyMemory(from: $0) }
        let began = png_image_begin_read_from_memory(&png, input.baseAddress, input.count)
        guard began != 0 else { throw pngError(&png, "read the PNG header", code: .invalidInput) }
        defer { png_image_free(&png) }
        let w = Int(png.width), h = Int(png.height)
        guard w > 0, h > 0, w <= limits.maxDimension, h <= limits.maxDimension else {
            throw HumeError(.tooLarge, "The PNG is \(w)×\(h) pixels; each side must be 1…\(limits.maxDimension).")
        }
        guard w * h <= limits.maxPixels else {
            throw HumeError(.tooLarge, "The PNG is \(w)×\(h) = \(w * h) pixels; the limit is \(limits.maxPixels).")
        }
        let channels = alpha ? 4 : 3
        if sixteen { return try finish16(&png, width: w, height: h, alpha: alpha) }
        png.format = alpha ? hume_png_format_rgba() : hume_png_format_rgb()
        var pixels = [UInt8](repeating: 0, count: w * h * channels)
        // Without alpha, transparent pixels are composited onto white.
        var white = png_color(red: 255, green: 255, blue: 255)
        let ok = pixels.withUnsafeMutableBytes { px in
            withUnsafePointer(to: &white) { bg in
                png_image_finish_read(&png, alpha ? nil : bg, px.baseAddress, png_int_32(w * channels), nil)
            }
        }
        guard ok != 0 else { throw pngError(&png, "decode the PNG", code: .invalidInput) }
        return PixelImage(width: w, height: h, channels: channels, pixels: pixels)
    }

    /// Chunks the pixels depend on; everything else (text, ICC profiles, anything compressed) is left out before
    /// libpng sees the data.
    static let decodableTypes: Set<String> = ["IHDR", "PLTE", "IDAT", "IEND", "tRNS", "gAMA", "sRGB", "cHRM", "sBIT", "bKGD"]

    /// The PNG rebuilt from the chunks decoding needs, after checking that every chunk lies inside the data. libpng
    /// allocates whatever a chunk's length claims before reading it (a 121-byte file claiming a 1.9 GB `tEXt` chunk
    /// made it allocate 1.9 GB; found by fuzzing), and inflates compressed text and profiles to any size, so neither
    /// reaches it. Bounds every allocation by the input's size and the image's dimensions.
    static func decodableChunks(_ bytes: [UInt8], types: Set<String> = decodableTypes) throws -> [UInt8] {
        var out = Array(bytes[0..<8])
        out.reserveCapacity(bytes.count)
        var p = 8
        while p < bytes.count {
            guard p + 12 <= bytes.count else {
                throw HumeError(.invalidInput, "The PNG is truncated: \(bytes.count - p) stray bytes at byte \(p), too few for a chunk.")
            }
            let n = Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3])
            guard n <= bytes.count - p - 12 else {
                throw HumeError(.invalidInput, "The PNG is truncated or corrupt: a chunk at byte \(p) claims \(n) bytes; \(bytes.count - p - 12) remain.")
            }
            let type = String(decoding: bytes[p + 4 ..< p + 8], as: UTF8.self)
            if types.contains(type) { out += bytes[p ..< p + 12 + n] }
            p += 12 + n
            if type == "IEND" { break }
        }
        return out
    }

    /// Reads a 16-bit PNG as 16-bit RGBA (libpng premultiplies linear output by alpha) and makes 8-bit RGB on white,
    /// or straight RGBA.
    static func finish16(_ png: inout png_image, width w: Int, height h: Int, alpha: Bool) throws -> PixelImage {
        png.format = 0x07  // PNG_FORMAT_LINEAR_RGB_ALPHA: 16-bit, colour, alpha
        var wide = [UInt16](repeating: 0, count: w * h * 4)
        let ok = wide.withUnsafeMutableBytes { png_image_finish_read(&png, nil, $0.baseAddress, png_int_32(w * 4), nil) }
        guard ok != 0 else { throw pngError(&png, "decode the PNG", code: .invalidInput) }
        let channels = alpha ? 4 : 3
        var pixels = [UInt8](repeating: 0, count: w * h * channels)
        for i in 0..<(w * h) {
            let a = UInt32(wide[i * 4 + 3])
            for c in 0..<3 {
                let v = UInt32(wide[i * 4 + c])  // premultiplied
                let out: UInt32
                if alpha {
                    out = a == 0 ? 0 : min(255, (v * 255 + a / 2) / a)
                } else {
                    out = ((v + (65535 - a)) * 255 + 32767) / 65535  // over white
                }
                pixels[i * channels + c] = UInt8(out)
            }
            if alpha { pixels[i * 4 + 3] = UInt8((a * 255 + 32767) / 65535) }
        }
        return PixelImage(width: w, height: h, channels: channels, pixels: pixels)
    }

    static func pngError(_ png: inout png_image, _ what: String, code: HumeError.Code = .system) -> HumeError {
        let msg = withUnsafeBytes(of: &png.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        png_image_free(&png)
        return HumeError(code, "libpng could not \(what): \(msg.isEmpty ? "unknown error" : msg).")
    }
}
