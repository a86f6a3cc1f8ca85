import Foundation

/// Resampling of 8-bit RGB pictures into a database's square stores.
public enum ImageResize {
    /// The picture padded with white to a centred square (side = the longer side; aspect kept; offsets
    /// `(side − w) / 2`, `(side − h) / 2`), as Ops/build_db.py pads the built-in databases.
    public static func padSquare(_ rgb: [UInt8], width: Int, height: Int) -> (pixels: [UInt8], side: Int) {
        let side = max(width, height)
        if width == height { return (rgb, side) }
        var out = [UInt8](repeating: 255, count: side * side * 3)
        let ox = (side - width) / 2, oy = (side - height) / 2
        for y in 0..<height {
            let src = y * width * 3, dst = ((y + oy) * side + ox) * 3
            out.withUnsafeMutableBufferPointer { o in
                rgb.withUnsafeBufferPointer { i in
                    (o.baseAddress! + dst).update(from: i.baseAddress! + src, count: width * 3)
                }
            }
        }
        return (out, side)
    }

    /// Lanczos-3 weights from `n` source samples to `m`: for each output sample, its first source index and weights
    /// (normalised to sum 1). When shrinking, the kernel is stretched by the scale, so every source sample counts
    /// (Pillow's rule, which the built-in databases use).
    static func weights(from n: Int, to m: Int) -> [(start: Int, w: [Float])] {
        let scale = Double(n) / Double(m)
        let support = 3 * max(1, scale)
        func lanczos(_ x: Double) -> Double {
            if x == 0 { return 1 }
            if abs(x) >= 3 { return 0 }
            let px = Double.pi * x
            return 3 * sin(px) * sin(px / 3) / (px * px)
        }
        return (0..<m).map { i in
            let centre = (Double(i) + 0.5) * scale
            let lo = max(0, Int((centre - support).rounded(.down)))
            let hi = min(n, Int((centre + support).rounded(.up)))
            var w = (lo..<hi).map { j in lanczos((Double(j) + 0.5 - centre) / max(1, scale)) }
            let s = w.reduce(0, +)
            if s != 0 { w = w.map { $0 / s } }
            return (lo, w.map(Float.init))
        }
    }

    /// Square RGB8 of `side`² resized to `target`² with Lanczos-3 (rows, then columns; rounded and clamped to 0…255).
    public static func lanczos(_ rgb: [UInt8], side: Int, to target: Int) -> [UInt8] {
        if side == target { return rgb }
        let wx = weights(from: side, to: target)
        // Rows: side × target × 3 floats.
        var mid = [Float](repeating: 0, count: side * target * 3)
        rgb.withUnsafeBufferPointer { src in
            for y in 0..<side {
                let row = y * side * 3
                for (x, k) in wx.enumerated() {
                    var r: Float = 0, g: Float = 0, b: Float = 0
                    for (t, w) in k.w.enumerated() {
                        let p = row + (k.start + t) * 3
                        r += w * Float(src[p]); g += w * Float(src[p + 1]); b += w * Float(src[p + 2])
                    }
                    let o = (y * target + x) * 3
                    mid[o] = r; mid[o + 1] = g; mid[o + 2] = b
                }
            }
        }
        var out = [UInt8](repeating: 0, count: target * target * 3)
        for (y, k) in wx.enumerated() {
            for x in 0..<target {
                var r: Float = 0, g: Float = 0, b: Float = 0
                for (t, w) in k.w.enumerated() {
                    let p = ((k.start + t) * target + x) * 3
                    r += w * mid[p]; g += w * mid[p + 1]; b += w * mid[p + 2]
                }
                let o = (y * target + x) * 3
                out[o] = UInt8(min(255, max(0, r.rounded())))
                out[o + 1] = UInt8(min(255, max(0, g.rounded())))
                out[o + 2] = UInt8(min(255, max(0, b.rounded())))
            }
        }
        return out
    }
}
