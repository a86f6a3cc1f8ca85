/// A small RGB image with `Float` samples in [-1, 1], stored planar (all red, then green, then blue;
/// each plane row-major). Planar storage keeps each channel contiguous for the denoisers' inner loops.
public struct RGBImage: Equatable, Sendable {
    /// Number of colour channels (always 3).
    public static let channels = 3
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `3 * width * height` samples: `pixels[c * width * height + y * width + x]`.
    public var pixels: [Float]

    /// Number of pixels per channel plane.
    public var planeCount: Int { width * height }

    /// Creates an image filled with one value (0 is mid-grey).
    public init(width: Int, height: Int, fill: Float = 0) {
        precondition(width > 0 && height > 0, "image size must be positive")
        self.width = width
        self.height = height
        self.pixels = [Float](repeating: fill, count: 3 * width * height)
    }

    /// Creates an image from planar samples.
    /// - Throws: `DiffusionError.sizeMismatch` if `pixels.count != 3 * width * height`.
    public init(width: Int, height: Int, planar pixels: [Float]) throws {
        guard width > 0, height > 0 else {
            throw DiffusionError(.invalidArgument, "image size \(width)x\(height) is not allowed; both sides must be positive")
        }
        guard pixels.count == 3 * width * height else {
            throw DiffusionError(.sizeMismatch, "planar data has \(pixels.count) samples but a \(width)x\(height) RGB image needs \(3 * width * height)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Creates an image from interleaved RGB8 bytes (`r g b r g b …`, row-major), mapping 0…255 to -1…1.
    /// - Throws: `DiffusionError.sizeMismatch` if `rgb8.count != 3 * width * height`.
    public init(width: Int, height: Int, rgb8: [UInt8]) throws {
        guard width > 0, height > 0 else {
            throw DiffusionError(.invalidArgument, "image size \(width)x\(height) is not allowed; both sides must be positive")
        }
        guard rgb8.count == 3 * width * height else {
            throw DiffusionError(.sizeMismatch, "RGB8 data has \(rgb8.count) bytes but a \(width)x\(height) image needs \(3 * width * height)")
        }
        self.width = width
        self.height = height
        let n = width * height
        var out = [Float](repeating: 0, count: 3 * n)
        for p in 0..<n {
            for c in 0..<3 { out[c * n + p] = Float(rgb8[3 * p + c]) / 127.5 - 1 }
        }
        self.pixels = out
    }

    /// Interleaved RGB8 bytes, clamping to [-1, 1] and rounding to the nearest level.
    public func rgb8() -> [UInt8] {
        let n = planeCount
        var out = [UInt8](repeating: 0, count: 3 * n)
        for p in 0..<n {
            for c in 0..<3 {
                let v = min(max(pixels[c * n + p], -1), 1)
                out[3 * p + c] = UInt8(((v + 1) * 127.5).rounded(.toNearestOrAwayFromZero))
            }
        }
        return out
    }

    /// The sample at channel `c`, column `x`, row `y`.
    public subscript(c: Int, x: Int, y: Int) -> Float {
        get { pixels[c * planeCount + y * width + x] }
        set { pixels[c * planeCount + y * width + x] = newValue }
    }

    /// Whether `other` has the same width and height.
    public func hasSameSize(as other: RGBImage) -> Bool { width == other.width && height == other.height }
}

extension RGBImage {
    /// The image at 1/`f` of its width and height, each pixel the mean of an f × f block (itself for f = 1).
    public func downsampled(by f: Int) -> RGBImage {
        guard f > 1 else { return self }
        let w = width / f, h = height / f, n = planeCount
        var out = RGBImage(width: w, height: h)
        for c in 0..<3 { for y in 0..<h { for x in 0..<w {
            var s: Float = 0
            for dy in 0..<f { for dx in 0..<f { s += pixels[c * n + (y * f + dy) * width + x * f + dx] } }
            out.pixels[c * w * h + y * w + x] = s / Float(f * f)
        } } }
        return out
    }

    /// The image at twice the width and height, bilinear with pixel centres aligned (each output pixel samples
    /// the input at ((x + 0.5)/2 − 0.5, (y + 0.5)/2 − 0.5), edges clamped): the coarse level a finer one starts from.
    public func upsampled2x() -> RGBImage {
        let w = width, h = height, W = 2 * w, H = 2 * h, n = w * h, N = W * H
        var out = RGBImage(width: W, height: H)
        // Per output coordinate: the two input indices and the weight of the second.
        func taps(_ size: Int, _ outSize: Int) -> [(Int, Int, Float)] {
            (0..<outSize).map { o in
                let u = (Double(o) + 0.5) / 2 - 0.5
                let i0 = Int(u.rounded(.down))
                let f = Float(u - Double(i0))
                return (min(max(i0, 0), size - 1), min(max(i0 + 1, 0), size - 1), f)
            }
        }
        let tx = taps(w, W), ty = taps(h, H)
        for c in 0..<3 {
            for Y in 0..<H {
                let (y0, y1, fy) = ty[Y]
                for X in 0..<W {
                    let (x0, x1, fx) = tx[X]
                    let top = pixels[c * n + y0 * w + x0] * (1 - fx) + pixels[c * n + y0 * w + x1] * fx
                    let bottom = pixels[c * n + y1 * w + x0] * (1 - fx) + pixels[c * n + y1 * w + x1] * fx
                    out.pixels[c * N + Y * W + X] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }
}
