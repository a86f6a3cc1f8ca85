import COpenBLAS
import Foundation

/// One line of a fidelity prompt list (`Ops/eval/fidelity-*.jsonl`): what a person typed and the database concepts
/// that would count as showing it.
public struct FidelityPrompt: Sendable, Equatable {
    /// The prompt as a person writes it ("a juicy strawberry").
    public var prompt: String
    /// The `concept` values (Ops/DATABASES.md) a person would accept as the thing asked for.
    public var concepts: [String]
    /// The database the line is written for, when it names one.
    public var database: String?

    public init(prompt: String, concepts: [String], database: String? = nil) {
        self.prompt = prompt
        self.concepts = concepts
        self.database = database
    }

    /// Parses a JSONL list: one `{"prompt": "...", "concepts": ["..."], "database": "..."}` per line; blank lines are
    /// skipped.
    /// - Throws: `EvalError` naming the file and line of the first bad one.
    public static func parseList(_ text: String, file: String) throws -> [FidelityPrompt] {
        var out: [FidelityPrompt] = []
        var seen = Set<String>()
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let at = "\(file) line \(n + 1)"
            guard let o = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                throw EvalError("\(at) is not a JSON object like {\"prompt\": \"a red apple\", \"concepts\": [\"red apple\"]}.")
            }
            guard let prompt = o["prompt"] as? String, !prompt.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw EvalError("\(at) has no non-empty \"prompt\" string.")
            }
            guard let concepts = o["concepts"] as? [String], !concepts.isEmpty, concepts.allSatisfy({ !$0.isEmpty }) else {
                throw EvalError("\(at) has no \"concepts\" list of non-empty strings; name the database concepts the prompt asks for.")
            }
            guard seen.insert(prompt).inserted else { throw EvalError("\(at) repeats the prompt \"\(prompt)\".") }
            out.append(FidelityPrompt(prompt: prompt, concepts: concepts, database: o["database"] as? String))
        }
        guard !out.isEmpty else { throw EvalError("\(file) holds no prompts.") }
        return out
    }
}

/// An evaluation's one-sentence error.
public struct EvalError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The image operations the fidelity metrics are defined with: tiles are float RGB in [0, 1], interleaved, row-major
/// (y, x, channel), square.
public enum Tiles {
    /// Box-downsamples an RGB8 image of `side`² to `target`² (`side` a multiple of `target`): each output pixel is the
    /// mean of the `side/target`² input pixels it covers, divided by 255.
    public static func downsample(_ rgb8: [UInt8], side: Int, to target: Int) -> [Float] {
        downsample(rgb8.map { Float($0) / 255 }, side: side, to: target)
    }

    /// Box-downsamples a float tile of `side`² to `target`².
    public static func downsample(_ tile: [Float], side: Int, to target: Int) -> [Float] {
        precondition(side % target == 0 && tile.count == side * side * 3, "side must be a multiple of the target")
        let f = side / target
        if f == 1 { return tile }
        let norm = 1 / Float(f * f)
        var out = [Float](repeating: 0, count: target * target * 3)
        for y in 0..<target { for x in 0..<target { for c in 0..<3 {
            var s: Float = 0
            for yy in (y * f)..<(y * f + f) { for xx in (x * f)..<(x * f + f) { s += tile[(yy * side + xx) * 3 + c] } }
            out[(y * target + x) * 3 + c] = s * norm
        } } }
        return out
    }

    /// One alignment of a tile: first mirrored left-right when `flip`, then scaled by `scale` about the tile's centre
    /// (bilinear; output pixel centre u maps to source position c + (u − c)/scale, with c = side/2 in pixel-edge
    /// coordinates), then shifted by (`dx`, `dy`) pixels (output (x, y) = input (x − dx, y − dy)). Every sample that falls
    /// outside the tile reads white (1).
    public static func aligned(_ tile: [Float], side: Int, dx: Int = 0, dy: Int = 0, flip: Bool = false, scale: Float = 1) -> [Float] {
        var out = [Float](repeating: 1, count: tile.count)
        let c = Float(side) / 2
        func at(_ x: Int, _ y: Int, _ ch: Int) -> Float {
            guard x >= 0, x < side, y >= 0, y < side else { return 1 }
            return tile[(y * side + (flip ? side - 1 - x : x)) * 3 + ch]
        }
        for y in 0..<side { for x in 0..<side {
            let sx = x - dx, sy = y - dy
            guard sx >= 0, sx < side, sy >= 0, sy < side else { continue }
            let o = (y * side + x) * 3
            if scale == 1 {
                for ch in 0..<3 { out[o + ch] = at(sx, sy, ch) }
                continue
            }
            // Source position in pixel-index coordinates (pixel i has its centre at i + 0.5).
            let u = c + (Float(sx) + 0.5 - c) / scale - 0.5, v = c + (Float(sy) + 0.5 - c) / scale - 0.5
            let x0 = Int(u.rounded(.down)), y0 = Int(v.rounded(.down))
            let fx = u - Float(x0), fy = v - Float(y0)
            for ch in 0..<3 {
                let top = at(x0, y0, ch) * (1 - fx) + at(x0 + 1, y0, ch) * fx
                let bottom = at(x0, y0 + 1, ch) * (1 - fx) + at(x0 + 1, y0 + 1, ch) * fx
                out[o + ch] = top * (1 - fy) + bottom * fy
            }
        } }
        return out
    }

    /// How far `a` is from a locally warped `b`: the root mean, over `a`'s pixels, of the smallest squared RGB
    /// difference (per channel) to any pixel of `b` within ±`radius` pixels (white outside), taken both ways and the
    /// larger kept. A copy whose regions moved by a pixel or two scores near 0 (plain RMSE calls it new); a picture
    /// with parts that are not in `b` scores high.
    public static func localDistance(_ a: [Float], _ b: [Float], side: Int, radius: Int = 1) -> Double {
        func oneWay(_ a: [Float], _ b: [Float]) -> Double {
            var total = 0.0
            for y in 0..<side { for x in 0..<side {
                var best = Float.infinity
                let o = (y * side + x) * 3
                for dy in -radius...radius { for dx in -radius...radius {
                    let yy = y + dy, xx = x + dx
                    var d: Float = 0
                    if yy >= 0, yy < side, xx >= 0, xx < side {
                        let q = (yy * side + xx) * 3
                        for c in 0..<3 { let t = a[o + c] - b[q + c]; d += t * t }
                    } else {
                        for c in 0..<3 { let t = a[o + c] - 1; d += t * t }
                    }
                    best = min(best, d)
                } }
                total += Double(best)
            } }
            return (total / Double(side * side * 3)).squareRoot()
        }
        return max(oneWay(a, b), oneWay(b, a))
    }

    /// Root mean square difference of two tiles.
    public static func rmse(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count)
        var s = 0.0
        for i in a.indices { let d = Double(a[i]) - Double(b[i]); s += d * d }
        return (s / Double(a.count)).squareRoot()
    }
}

/// The alignments `recognised` and `near_copy` search over.
public struct Alignments: Sendable {
    public var shift: Int
    public var flips: [Bool]
    public var scales: [Float]

    /// `recognised`: shifts of ±2 px only.
    public static let recognition = Alignments(shift: 2, flips: [false], scales: [1])
    /// `near_copy`: shifts of ±3 px, a horizontal flip, scales 0.85 / 1 / 1.15.
    public static let copy = Alignments(shift: 3, flips: [false, true], scales: [0.85, 1, 1.15])

    public init(shift: Int, flips: [Bool], scales: [Float]) {
        self.shift = shift
        self.flips = flips
        self.scales = scales
    }

    /// Every aligned version of `tile`.
    public func variants(of tile: [Float], side: Int) -> [[Float]] {
        var out: [[Float]] = []
        for flip in flips { for scale in scales {
            let base = Tiles.aligned(tile, side: side, flip: flip, scale: scale)
            for dy in -shift...shift { for dx in -shift...shift {
                out.append(Tiles.aligned(base, side: side, dx: dx, dy: dy))
            } }
        } }
        return out
    }

    /// The same alignments made at `side` (a multiple of `target`) with shifts scaled by side/target, then each
    /// box-downsampled to `target`: at 64² the shifts move by half a 32² pixel, which integer shifts at 32² cannot.
    public func fineVariants(of tile: [Float], side: Int, target: Int) -> [[Float]] {
        let f = side / target
        let fine = Alignments(shift: shift * f, flips: flips, scales: scales)
        return fine.variants(of: tile, side: side).map { Tiles.downsample($0, side: side, to: target) }
    }
}

/// Nearest database tile to any alignment of a query, over every tile of a database: squared distances through one
/// matrix product (‖a‖² + ‖b‖² − 2a·b, OpenBLAS), the winner's RMSE recomputed exactly.
public final class TileIndex: @unchecked Sendable {
    // Immutable after init; OpenBLAS only reads the buffers.
    /// Side of every tile.
    public let side: Int
    /// Number of tiles.
    public let count: Int
    let dims: Int
    let values: [Float]
    let norms: [Float]

    /// - Parameter tiles: one tile per database image, in id order, each `side`² × 3 floats.
    public init(tiles: [[Float]], side: Int) {
        self.side = side
        dims = side * side * 3
        count = tiles.count
        var v = [Float](); v.reserveCapacity(count * dims)
        for t in tiles { precondition(t.count == dims); v += t }
        values = v
        norms = tiles.map { t in t.reduce(0) { $0 + $1 * $1 } }
    }

    /// The tile of id `id`.
    public func tile(_ id: Int) -> [Float] { Array(values[(id * dims)..<((id + 1) * dims)]) }

    /// The database id nearest to any of `variants`, and that RMSE.
    public func nearest(_ variants: [[Float]]) -> (id: Int, rmse: Double, variant: Int) {
        let v = variants.count
        var a = [Float](); a.reserveCapacity(v * dims)
        for x in variants { precondition(x.count == dims); a += x }
        var g = [Float](repeating: 0, count: v * count)
        a.withUnsafeBufferPointer { ap in values.withUnsafeBufferPointer { bp in g.withUnsafeMutableBufferPointer { gp in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(v), Int32(count), Int32(dims), 1,
                        ap.baseAddress, Int32(dims), bp.baseAddress, Int32(dims), 0, gp.baseAddress, Int32(count))
        } } }
        var best = (id: -1, d: Float.infinity, variant: 0)
        for i in 0..<v {
            let an = variants[i].reduce(0) { $0 + $1 * $1 }
            for j in 0..<count {
                let d = an + norms[j] - 2 * g[i * count + j]
                if d < best.d { best = (j, d, i) }
            }
        }
        return (best.id, Tiles.rmse(variants[best.variant], tile(best.id)), best.variant)
    }
}

/// The fidelity metrics of one prompt's samples (README, "Fidelity"; `hume eval fidelity`).
public struct FidelityScores: Sendable {
    /// Per sample: the nearest database id under ±2 px shifts at 32², and whether its concept is asked for.
    public var nearestIDs: [Int] = []
    public var recognised: [Bool] = []
    /// Per sample: the smallest aligned RMSE to any database image, and whether it is under the copy threshold.
    public var copyDistances: [Double] = []
    public var nearCopy: [Bool] = []
    /// Per sample: the same with the alignments made at the generation size (half-pixel steps at 32²), against the
    /// images the sample was conditioned on (empty when none were given).
    public var fineCopyDistances: [Double] = []
    public var fineNearCopy: [Bool] = []
    /// Per sample: the smallest `Tiles.localDistance` at 32² to an image it was conditioned on, and whether it is under
    /// `FidelityMetric.localCopyThreshold` (a copy with regions moved by a pixel or two).
    public var localCopyDistances: [Double] = []
    public var localCopy: [Bool] = []
    /// Mean RMSE at 16² between the samples of different seeds (nil with one sample).
    public var diversity: Double?

    public init() {}
}

/// Computes `recognised`, `near_copy` and the seed diversity for a database.
public struct FidelityMetric: Sendable {
    /// The database's tiles at 32² (box-downsampled from the generation size).
    public let index: TileIndex
    /// Each database id's concept.
    public let concepts: [String]
    /// `near_copy` threshold (RMSE at 32², [0, 1] units).
    public var copyThreshold = 0.08

    public static let side = 32
    public static let diversitySide = 16
    /// `Tiles.localDistance` under which a sample is a warped copy of a neighbour (README, "Fidelity").
    public var localCopyThreshold = 0.06

    public init(index: TileIndex, concepts: [String]) {
        precondition(index.count == concepts.count)
        self.index = index
        self.concepts = concepts
    }

    /// Scores the samples (RGB8, `size`²) of one prompt.
    /// - Parameter neighbours: the images (RGB8, `size`²) the samples were conditioned on, for the fine copy check.
    public func score(samples: [[UInt8]], size: Int, asked: Set<String>, neighbours: [[UInt8]] = []) -> FidelityScores {
        var s = FidelityScores()
        let neighbourTiles = neighbours.map { Tiles.downsample($0, side: size, to: FidelityMetric.side) }
        let conditioning = neighbours.isEmpty ? nil : TileIndex(tiles: neighbourTiles, side: FidelityMetric.side)
        for sample in samples {
            let tile = Tiles.downsample(sample, side: size, to: FidelityMetric.side)
            let near = index.nearest(Alignments.recognition.variants(of: tile, side: FidelityMetric.side))
            s.nearestIDs.append(near.id)
            s.recognised.append(asked.contains(concepts[near.id]))
            let copy = index.nearest(Alignments.copy.variants(of: tile, side: FidelityMetric.side))
            s.copyDistances.append(copy.rmse)
            s.nearCopy.append(copy.rmse < copyThreshold)
            if let conditioning {
                let full = sample.map { Float($0) / 255 }
                let fine = conditioning.nearest(Alignments.copy.fineVariants(of: full, side: size, target: FidelityMetric.side))
                s.fineCopyDistances.append(min(fine.rmse, copy.rmse))
                s.fineNearCopy.append(min(fine.rmse, copy.rmse) < copyThreshold)
                // Mirrored neighbours too: a mirrored copy is still a copy.
                let local = neighbourTiles.flatMap { [$0, Tiles.aligned($0, side: FidelityMetric.side, flip: true)] }
                    .map { Tiles.localDistance(tile, $0, side: FidelityMetric.side) }.min() ?? .infinity
                s.localCopyDistances.append(local)
                s.localCopy.append(local < localCopyThreshold)
            }
        }
        s.diversity = FidelityMetric.diversity(samples, size: size)
        return s
    }

    /// Mean RMSE at 16² (box-downsampled) over the pairs of samples; nil for fewer than two.
    public static func diversity(_ samples: [[UInt8]], size: Int) -> Double? {
        guard samples.count > 1 else { return nil }
        let small = samples.map { Tiles.downsample($0, side: size, to: diversitySide) }
        var total = 0.0, pairs = 0
        for i in 0..<small.count { for j in (i + 1)..<small.count { total += Tiles.rmse(small[i], small[j]); pairs += 1 } }
        return total / Double(pairs)
    }
}

/// The median of a list (the mean of the middle two for an even count); 0 for none.
public func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return 0 }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
