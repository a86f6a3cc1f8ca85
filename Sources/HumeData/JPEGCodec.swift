import CJPEG
import HumeCore

/// JPEG decoding for pictures users bring (`hume db create` / `add`), through libjpeg-turbo's TurboJPEG API.
///
/// Baseline and progressive, gray and colour; CMYK is refused with a sentence. The size limits are checked on the
/// header before any pixel buffer is made, a progressive file may have at most 500 scans (TurboJPEG's
/// `TJFLAG_LIMITSCANS`, against files made to take minutes), and any warning (a truncated or damaged file, which
/// libjpeg would fill with grey) is a refusal. Photos from cameras and phones are stored sideways with an EXIF
/// orientation; the picture is turned upright by it, as viewers show it.
public enum JPEGCodec {
    /// Whether `bytes` begin with a JPEG's start-of-image marker and the next marker's first byte.
    public static func isJPEG(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
    }

    /// The width and height a JPEG's header gives (as stored, before any EXIF turn), or nil when it cannot be read.
    public static func storedSize(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        guard isJPEG(bytes), let handle = tjInitDecompress() else { return nil }
        defer { tjDestroy(handle) }
        return header(handle, bytes).map { ($0.width, $0.height) }
    }

    /// The header's width, height and colour space (a `TJCS` value), or nil when libjpeg-turbo cannot read it (the reason
    /// is then `handle`'s error).
    static func header(_ handle: tjhandle, _ bytes: [UInt8]) -> (width: Int, height: Int, colourspace: Int32)? {
        var w: Int32 = 0, h: Int32 = 0, subsampling: Int32 = 0, colourspace: Int32 = 0
        let ok = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &w, &h, &subsampling, &colourspace)
        }
        return ok == 0 ? (Int(w), Int(h), colourspace) : nil
    }

    /// Decodes JPEG bytes to upright 8-bit RGB.
    /// - Throws: `HumeError(.invalidInput)` for data that is not a JPEG, or is corrupt, truncated or CMYK;
    ///   `.tooLarge` beyond `limits`.
    public static func decode(_ bytes: [UInt8], limits: PictureLimits = PictureLimits()) throws -> PixelImage {
        guard bytes.count <= limits.maxBytes else {
            throw HumeError(.tooLarge, "The JPEG is \(bytes.count) bytes; the limit is \(limits.maxBytes).")
        }
        guard isJPEG(bytes) else {
            throw HumeError(.invalidInput, "The data is not a JPEG (it does not begin with the JPEG start-of-image marker).")
        }
        guard let handle = tjInitDecompress() else { throw HumeError(.system, "libjpeg-turbo could not make a decompressor.") }
        defer { tjDestroy(handle) }
        guard let (width, height, colourspace) = header(handle, bytes) else { throw failure(handle, "read the JPEG header") }
        guard width > 0, height > 0, width <= limits.maxDimension, height <= limits.maxDimension else {
            throw HumeError(.tooLarge, "The JPEG is \(width)×\(height) pixels; each side must be 1…\(limits.maxDimension).")
        }
        guard width * height <= limits.maxPixels else {
            throw HumeError(.tooLarge, "The JPEG is \(width)×\(height) = \(width * height) pixels; the limit is \(limits.maxPixels).")
        }
        guard colourspace != Int32(TJCS_CMYK.rawValue), colourspace != Int32(TJCS_YCCK.rawValue) else {
            throw HumeError(.invalidInput, "The JPEG is in CMYK (print) colours; save it as RGB to use it.")
        }
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        let decoded = bytes.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.baseAddress, UInt(src.count), dst.baseAddress, Int32(width), 0, Int32(height), Int32(TJPF_RGB.rawValue),
                              TJFLAG_LIMITSCANS)
            }
        }
        guard decoded == 0 else { throw failure(handle, "decode the JPEG") }
        return upright(PixelImage(width: width, height: height, channels: 3, pixels: pixels), orientation: orientation(bytes))
    }

    static func failure(_ handle: tjhandle, _ what: String) -> HumeError {
        let message = tjGetErrorStr2(handle).map { String(cString: $0) } ?? ""
        return HumeError(.invalidInput, "libjpeg-turbo could not \(what): \(message.isEmpty ? "unknown error" : message).")
    }

    /// The EXIF orientation (1…8; 1 when there is none or it cannot be read) from an `APP1` "Exif" segment before the
    /// first scan. Every offset is checked against the data.
    public static func orientation(_ b: [UInt8]) -> Int {
        var p = 2
        while p + 4 <= b.count, b[p] == 0xFF {
            let marker = b[p + 1]
            if marker == 0xDA || marker == 0xD9 { break }  // start of scan, end of image: no more metadata
            if marker == 0xFF { p += 1; continue }  // fill byte
            let length = Int(b[p + 2]) << 8 | Int(b[p + 3])
            guard length >= 2, p + 2 + length <= b.count else { break }
            let start = p + 4, end = p + 2 + length
            if marker == 0xE1, end - start >= 14, Array(b[start ..< start + 6]) == Array("Exif\0\0".utf8) {
                return exifOrientation(Array(b[start + 6 ..< end])) ?? 1
            }
            p = end
        }
        return 1
    }

    /// Tag 0x0112 of a TIFF structure's first IFD.
    static func exifOrientation(_ t: [UInt8]) -> Int? {
        guard t.count >= 8 else { return nil }
        let little: Bool
        switch (t[0], t[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ i: Int) -> Int? {
            guard i >= 0, i + 2 <= t.count else { return nil }
            return little ? Int(t[i]) | Int(t[i + 1]) << 8 : Int(t[i]) << 8 | Int(t[i + 1])
        }
        func u32(_ i: Int) -> Int? {
            guard let a = u16(i), let b = u16(i + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard let ifd = u32(4), let count = u16(ifd) else { return nil }
        for k in 0 ..< min(count, 512) {
            let entry = ifd + 2 + 12 * k
            guard let tag = u16(entry) else { return nil }
            if tag == 0x0112 {
                guard let v = u16(entry + 8), (1...8).contains(v) else { return nil }
                return v
            }
        }
        return nil
    }

    /// `image` as it is shown for EXIF `orientation` (2: mirrored; 3: turned half round; 4: flipped; 5: transposed;
    /// 6: stored turned a quarter anticlockwise; 7: transverse; 8: stored turned a quarter clockwise).
    static func upright(_ image: PixelImage, orientation: Int) -> PixelImage {
        guard (2...8).contains(orientation) else { return image }
        let w = image.width, h = image.height, c = image.channels
        let swaps = orientation >= 5
        let ow = swaps ? h : w, oh = swaps ? w : h
        var out = [UInt8](repeating: 0, count: image.pixels.count)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0 ..< oh {
                    for x in 0 ..< ow {
                        // The stored pixel (sx, sy) shown at (x, y).
                        let (sx, sy): (Int, Int)
                        switch orientation {
                        case 2: (sx, sy) = (w - 1 - x, y)
                        case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case 4: (sx, sy) = (x, h - 1 - y)
                        case 5: (sx, sy) = (y, x)
                        case 6: (sx, sy) = (y, h - 1 - x)
                        case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                        default: (sx, sy) = (w - 1 - y, x)  // 8
                        }
                        let s = (sy * w + sx) * c, d = (y * ow + x) * c
                        for k in 0 ..< c { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        return PixelImage(width: ow, height: oh, channels: c, pixels: out)
    }
}

/// Pictures people bring, PNG or JPEG, told apart by their first bytes (not by a file name or a Content-Type).
public enum PictureCodec {
    /// Decodes a PNG (transparency composited on white) or a JPEG (turned upright by its EXIF orientation) to 8-bit RGB.
    /// - Throws: what `PNGCodec.decode` or `JPEGCodec.decode` throws; bytes that are neither get PNG's "not a PNG".
    public static func decode(_ bytes: [UInt8], limits: PictureLimits) throws -> PixelImage {
        JPEGCodec.isJPEG(bytes) ? try JPEGCodec.decode(bytes, limits: limits) : try PNGCodec.decode(bytes, alpha: false, limits: limits)
    }
}
