import Foundation

/// Text-driven local editing without a user mask (DESIGN.md §8).
///
/// 1. Mask, DiffEdit style: the source is noised to t = `maskStrength` with `maskDraws` seeded draws; the ELS
///    denoiser's predictions under the edit text's neighbours and under the source's neighbours are compared,
///    the per-pixel difference averaged over channels and draws, normalised by its maximum, thresholded at
///    `threshold`, and dilated by one pixel.
/// 2. Transplant: the edit neighbour that best matches the source *outside* the mask (same positions) gives
///    its masked region; plain DiffEdit decoding snaps back to the source with a closed-form denoiser (the
///    prototype's finding), so the edit content has to come from a real image.
/// 3. Harmonise: the composite is re-noised to t = `strength` and denoised under source + edit neighbours;
///    every pixel outside the mask is then the source's, exactly.
public struct Editor: Sendable {
    public var side = 32
    public var k = 8
    public var maskStrength = 0.5
    public var maskDraws = 4
    public var threshold: Float = 0.35
    public var strength = 0.4
    public var steps = 10
    public var transplantCandidates = 3
    /// The side the mask is found at (the working side when that is smaller).
    public var maskSide = 32

    public init() {}

    /// The local denoiser's settings for the mask and the harmonising pass.
    public var configuration: LocalDenoiserConfiguration { .prototype(imageSide: side) }

    /// Similarity temperature for the neighbours' weights (`GenerateParameters.temperature`'s meaning). `hume eval
    /// edit` (10 pairs, so one pair is 0.1): 0.6 at 0.2, as with equal weights before; 0.5 at 0.05 and at 1. Edits get
    /// their own evaluation and tuning in issue 19.
    public var temperature = 0.2

    /// A conditioning set over neighbour images, weighed by their similarities when given (each list relative to its
    /// own best match, so the source's and the edit text's best neighbours weigh alike when both sets are joined).
    func conditioning(_ sets: [(images: [RGBImage], scores: [Double]?)]) throws -> ConditioningSet {
        let images = sets.flatMap(\.images)
        guard sets.contains(where: { $0.scores != nil }) else { return try ConditioningSet(images) }
        let relative = sets.flatMap { set -> [Double] in
            guard let scores = set.scores, scores.count >= set.images.count else { return [Double](repeating: 0, count: set.images.count) }
            let used = scores.prefix(set.images.count)
            let best = used.max() ?? 0
            return used.map { $0 - best }
        }
        return try ConditioningSet(prompt: images, similarities: relative, temperature: temperature)
    }

    /// The result and the mask (one byte per pixel, 255 = edited).
    /// - Parameters:
    ///   - sourceScores, editScores: the similarities of the source's and the edit text's neighbours to their texts
    ///     (the retriever's), or nil to weigh a set's neighbours alike.
    ///   - image: the database image of an id at `side` (the caller has checked the ids).
    public func edit(source: RGBImage, sourceIDs: [Int], editIDs: [Int], image: (Int) throws -> RGBImage, seed: UInt64,
                     sourceScores: [Double]? = nil, editScores: [Double]? = nil) throws
        -> (image: RGBImage, mask: [UInt8], transplantID: Int) {
        guard source.width == side, source.height == side else {
            throw DiffusionError(.sizeMismatch, "The source image is \(source.width)x\(source.height) but the editor works at \(side)x\(side).")
        }
        guard !sourceIDs.isEmpty, !editIDs.isEmpty else {
            throw DiffusionError(.emptyConditioningSet, "The editor needs at least one neighbour for the source and one for the edit text; the neighbour list is empty.")
        }
        let srcImages = try sourceIDs.prefix(k).map(image)
        let editImages = try editIDs.prefix(k).map(image)
        let config = configuration
        let n = side * side
        var rng = SeededRandom(seed: seed)
        // 1. Mask, found at `maskSide` (32) whatever the working side: at 64² the two predictions differ most along
        //    every outline (a pixel of misalignment between drawings), and the mask became outline speckle.
        var small = self
        small.side = min(side, maskSide)
        let m = small.side, f = side / m
        let down = { (i: RGBImage) in i.downsampled(by: f) }
        let coarse = try small.mask(source: down(source), sourceImages: srcImages.map(down), sourceScores: sourceScores,
                                    editImages: editImages.map(down), editScores: editScores, rng: &rng)
        var mask = [Bool](repeating: false, count: n)
        for y in 0..<side { for x in 0..<side { mask[y * side + x] = coarse[(y / f) * m + x / f] } }
        // 2. Transplant from the edit neighbour that best matches the source outside the mask.
        // Candidates: the top `transplantCandidates` edit neighbours (retrieval order) that are not source neighbours,
        // so the transplant brings the edit's content rather than a twin of the source.
        let sourceSet = Set(sourceIDs.prefix(k))
        var candidates = editIDs.prefix(k).indices.filter { !sourceSet.contains(editIDs[$0]) }.prefix(transplantCandidates)
        if candidates.isEmpty { candidates = [0] }
        var best = (index: candidates.first!, d: Float.infinity)
        for i in candidates {
            let e = editImages[i]
            var d: Float = 0
            for p in 0..<n where !mask[p] { for c in 0..<3 { let t = e.pixels[c * n + p] - source.pixels[c * n + p]; d += t * t } }
            if d < best.d { best = (i, d) }
        }
        var composite = source
        for p in 0..<n where mask[p] { for c in 0..<3 { composite.pixels[c * n + p] = editImages[best.index].pixels[c * n + p] } }
        // 3. Harmonise under source + edit neighbours, then pin outside the mask.
        let both = try LocalEquivariantDenoiser(try conditioning([(srcImages, sourceScores), (editImages, editScores)]), configuration: config)
        let sampler = try DDIMSampler(steps: steps, startTime: strength)
        let start = sampler.noised(composite, rng: &rng)
        var result = try sampler.sample(denoiser: both, from: start, rng: &rng)
        for p in 0..<n where !mask[p] { for c in 0..<3 { result.pixels[c * n + p] = source.pixels[c * n + p] } }
        return (result, mask.map { $0 ? 255 : 0 }, editIDs[best.index])
    }

    /// The DiffEdit mask at this editor's side: the source noised to t = `maskStrength` `maskDraws` times, the
    /// predictions under the source's and the edit's neighbours compared, normalised by the largest difference,
    /// thresholded and dilated by one pixel.
    func mask(source: RGBImage, sourceImages: [RGBImage], sourceScores: [Double]?, editImages: [RGBImage], editScores: [Double]?,
              rng: inout SeededRandom) throws -> [Bool] {
        let n = side * side
        let underSource = try LocalEquivariantDenoiser(try conditioning([(sourceImages, sourceScores)]), configuration: configuration)
        let underEdit = try LocalEquivariantDenoiser(try conditioning([(editImages, editScores)]), configuration: configuration)
        var diff = [Float](repeating: 0, count: n)
        let maskSampler = try DDIMSampler(steps: 1, startTime: maskStrength)
        let level = NoiseLevel(alphaBar: CosineSchedule().alphaBar(at: maskStrength))
        var a = RGBImage(width: side, height: side), b = RGBImage(width: side, height: side)
        for _ in 0..<maskDraws {
            let x = maskSampler.noised(source, rng: &rng)
            try underSource.denoise(x, level: level, into: &a)
            try underEdit.denoise(x, level: level, into: &b)
            for p in 0..<n { for c in 0..<3 { diff[p] += abs(a.pixels[c * n + p] - b.pixels[c * n + p]) } }
        }
        let peak = max(diff.max() ?? 0, 1e-6)
        var mask = [Bool](repeating: false, count: n)
        for p in 0..<n where diff[p] / peak >= threshold { mask[p] = true }
        var dilated = mask
        for y in 0..<side { for x in 0..<side where mask[y * side + x] {
            for dy in -1...1 { for dx in -1...1 {
                let yy = y + dy, xx = x + dx
                if yy >= 0, yy < side, xx >= 0, xx < side { dilated[yy * side + xx] = true }
            } }
        } }
        return dilated
    }

    /// Resizes interleaved RGB8 to `side`² by area averaging (box filter over the covered source pixels).
    public static func resize(_ rgb: [UInt8], width: Int, height: Int, to side: Int) -> [UInt8] {
        if width == side, height == side { return rgb }
        var out = [UInt8](repeating: 255, count: side * side * 3)
        for y in 0..<side { for x in 0..<side {
            let x0 = x * width / side, x1 = max(x0 + 1, (x + 1) * width / side)
            let y0 = y * height / side, y1 = max(y0 + 1, (y + 1) * height / side)
            for c in 0..<3 {
                var s = 0
                for yy in y0..<y1 { for xx in x0..<x1 { s += Int(rgb[(yy * width + xx) * 3 + c]) } }
                out[(y * side + x) * 3 + c] = UInt8(s / ((x1 - x0) * (y1 - y0)))
            }
        } }
        return out
    }

    /// The `k` database ids nearest to `image` in pixels (L2 at the working side).
    /// - Parameters:
    ///   - count: the database's size (ids 0..<count).
    ///   - rgb8: the interleaved RGB8 pixels of an id at `side` (a memory-mapped store's buffer).
    public func nearestByPixels(_ image: RGBImage, count: Int, rgb8: (Int) throws -> UnsafeBufferPointer<UInt8>) throws -> [Int] {
        let q = image.rgb8()
        guard image.width == side, image.height == side else {
            throw DiffusionError(.sizeMismatch, "The source image is \(image.width)x\(image.height) but the editor works at \(side)x\(side).")
        }
        var scored: [(Int, Int)] = []
        scored.reserveCapacity(count)
        for i in 0..<count {
            let r = try rgb8(i)
            var d = 0
            for j in 0..<q.count { let t = Int(r[j]) - Int(q[j]); d += t * t }
            scored.append((i, d))
        }
        return scored.sorted { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(k).map(\.0)
    }
}
