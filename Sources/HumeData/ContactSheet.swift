import HumeCore

/// A grid of equal-sized RGB tiles on white, for looking at retrieval results.
public enum ContactSheet {
    /// Composes `tiles` (each `side × side × 3` RGB bytes) into rows of `columns`, with `gutter` white pixels
    /// between and around tiles.
    /// - Throws: `HumeError(.invalidInput)` for a tile of the wrong size or an empty list.
    public static func compose(_ tiles: [[UInt8]], side: Int, columns: Int = 8, gutter: Int = 4) throws -> PixelImage {
        guard !tiles.isEmpty, side > 0, columns > 0, gutter >= 0 else {
            throw HumeError(.invalidInput, "A contact sheet needs at least one tile, a positive side and column count.")
        }
        let cols = min(columns, tiles.count)
        let rows = (tiles.count + cols - 1) / cols
        let w = cols * side + (cols + 1) * gutter
        let h = rows * side + (rows + 1) * gutter
        var px = [UInt8](repeating: 255, count: w * h * 3)
        for (i, t) in tiles.enumerated() {
            guard t.count == side * side * 3 else {
                throw HumeError(.invalidInput, "Contact sheet tile \(i) has \(t.count) bytes; a \(side)×\(side) RGB tile has \(side * side * 3).")
            }
            let x0 = gutter + (i % cols) * (side + gutter)
            let y0 = gutter + (i / cols) * (side + gutter)
            for y in 0..<side {
                let dst = ((y0 + y) * w + x0) * 3
                px.replaceSubrange(dst ..< dst + side * 3, with: t[y * side * 3 ..< (y + 1) * side * 3])
            }
        }
        return PixelImage(width: w, height: h, channels: 3, pixels: px)
    }
}
