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
        lanczos(rgb, side: side, to: [target])[0]
    }

    /// Square RGB8 of `side`² resized to each of `targets` as `lanczos(_:side:to:)` resizes it (each from the square
    /// itself, never one size from another), reading the square once for all of them.
    ///
    /// Every output sample is the sum, in Float, of its taps in source order; the loops only choose which sums advance
    /// together. Both passes run tap by tap over contiguous runs of independent sums (the row pass on blocks of rows
    /// turned on their side), so they vectorise and give the same bits as summing one sample at a time.
    public static func lanczos(_ rgb: [UInt8], side: Int, to targets: [Int]) -> [[UInt8]] {
        precondition(rgb.count == side * side * 3 && targets.allSatisfy { $0 > 0 })
        /// One target's taps, flattened (first source index, count, offset into `w`), and its rows pass.
        final class Plan {
            let target: Int, starts: [Int], counts: [Int], offsets: [Int], w: [Float]
            let mid: UnsafeMutablePointer<Float>   // rows pass: side × target × 3
            init(from side: Int, to target: Int) {
                self.target = target
                let taps = ImageResize.weights(from: side, to: target)
                starts = taps.map(\.start)
                counts = taps.map(\.w.count)
                var offsets = [Int](), w = [Float]()
                for k in taps { offsets.append(w.count); w += k.w }
                self.offsets = offsets
                self.w = w
                mid = .allocate(capacity: side * target * 3)
            }
            deinit { mid.deallocate() }
        }
        let plans = targets.filter { $0 != side }.map { Plan(from: side, to: $0) }
        let widest = plans.map(\.target).max() ?? 0
        // Rows, `block` source rows at a time: `cols` holds them as Float, channel-planar and transposed (column x's
        // channel c, top to bottom, at (x·3 + c)·block); `acc` a target's row sums in the same layout, then scattered
        // into its `mid`.
        let block = 64
        let cols = UnsafeMutablePointer<Float>.allocate(capacity: plans.isEmpty ? 0 : side * 3 * block)
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: widest * 3 * block)
        defer { cols.deallocate(); acc.deallocate() }
        if !plans.isEmpty {
            rgb.withUnsafeBufferPointer { src in
                for y0 in stride(from: 0, to: side, by: block) {
                    let h = min(block, side - y0)
                    // Down the block's rows for each i = x·3 + c: contiguous writes, and the h source rows' current cache
                    // lines serve the next i too.
                    let top = src.baseAddress! + y0 * side * 3
                    for i in 0..<(side * 3) {
                        let d = cols + i * block
                        for j in 0..<h { d[j] = Float(top[j * side * 3 + i]) }
                    }
                    for p in plans {
                        p.w.withUnsafeBufferPointer { w in
                            for x in 0..<p.target {
                                for c in 0..<3 {
                                    let a = acc + (x * 3 + c) * block
                                    for j in 0..<h { a[j] = 0 }
                                    for t in 0..<p.counts[x] {
                                        let wt = w[p.offsets[x] + t]
                                        let s = cols + ((p.starts[x] + t) * 3 + c) * block
                                        for j in 0..<h { a[j] += wt * s[j] }
                                    }
                                }
                            }
                        }
                        let rowFloats = p.target * 3
                        let o = p.mid + y0 * rowFloats
                        for i in 0..<rowFloats {
                            let a = acc + i * block
                            for j in 0..<h { o[j * rowFloats + i] = a[j] }
                        }
                    }
                }
            }
        }
        // Columns: output row y sums its source rows of `mid`, tap by tap, over whole rows.
        var resized: [Int: [UInt8]] = [:]
        for p in plans {
            let rowFloats = p.target * 3
            var out = [UInt8](repeating: 0, count: p.target * rowFloats)
            p.w.withUnsafeBufferPointer { w in
                out.withUnsafeMutableBufferPointer { dst in
                    for y in 0..<p.target {
                        for i in 0..<rowFloats { acc[i] = 0 }
                        for t in 0..<p.counts[y] {
                            let wt = w[p.offsets[y] + t]
                            let s = p.mid + (p.starts[y] + t) * rowFloats
                            for i in 0..<rowFloats { acc[i] += wt * s[i] }
                        }
                        let o = dst.baseAddress! + y * rowFloats
                        for i in 0..<rowFloats { o[i] = UInt8(min(255, max(0, acc[i].rounded()))) }
                    }
                }
            }
            resized[p.target] = out
        }
        return targets.map { $0 == side ? rgb : resized[$0]! }
    }
}
