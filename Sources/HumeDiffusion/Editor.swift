import Foundation

/// Text-driven local editing without a user mask (DESIGN.md §8).
///
/// 1. Mask, DiffEdit style: the source is noised to t = `maskStrength` with `maskDraws` seeded draws; the ELS
///    denoiser's predictions under the edit text's neighbours and under the source's neighbours are compared,
///    the per-pixel difference averaged over channels and draws, normalised by its maximum, thresholded at
///    `threshold`, and dilated by one pixel.
/// 2. Transplant: of the edit text's first `transplantCandidates` neighbours, each aligned to the source by a small
///    shift, the one that best matches the source outside the mask (its mismatch scaled up by how much weaker its
///    similarity to the edit text is) gives its *part*: the regions where it differs from the source that meet the
///    mask, its white backdrop excluded (`partMask`). The part, not the DiffEdit mask, is what is edited: the mask
///    says where the edit is about, the donor says what shape it has (a hat above a head, glasses across the eyes).
///    Plain DiffEdit decoding snaps back to the source with a closed-form denoiser (the prototype's finding), so the
///    edit content has to come from a real image.
/// 3. Harmonise: the composite is re-noised to t = `strength` and denoised under source + edit neighbours;
///    every pixel outside the mask is then the source's, exactly.
public struct Editor: Sendable {
    /// The working side: 128, the generation size (`GenerateParameters.defaultSize`).
    public var side = 128
    public var k = 8
    public var maskStrength = 0.5
    public var maskDraws = 4
    public var threshold: Float = 0.35
    public var strength = 0.4
    /// DDIM steps of the harmonising pass up to 64²; above it `fineSteps`, unless a job names its steps (then both).
    public var steps = 10
    /// The harmonising pass's steps above 64²: the donor's own pixels fill the part at that size, and 5 steps gave
    /// the sheet and the score of 10 (`hume eval edit`, 0.55 both) in half the time.
    public var fineSteps = 5
    /// The steps the harmonising pass takes at this side.
    public var harmonisingSteps: Int { side > 64 ? fineSteps : steps }
    public var transplantCandidates = 3
    /// The side the mask is found at (the working side when that is smaller).
    public var maskSide = 32
    /// The side the transplant is chosen at (the working side when that is smaller); the part and the shift are scaled
    /// up, and the donor's own pixels at the working side are transplanted.
    public var partSide = 64
    /// Mean absolute difference over channels (samples in [-1, 1]) above which a donor pixel differs from the source.
    public var partThreshold: Float = 0.3
    /// A removal ("without the hat") or a replacement ("make it a thought balloon"): the donor's white backdrop is part of
    /// what it brings, since the white where the hat (or the speech balloon's tail) was is the edit. For additions it is
    /// left out (a hat pasted onto a dog must not erase the dog).
    public var keepsDonorBackdrop = false
    /// An addition's part also takes the donor's regions away from the mask whose pixels are, this share of them at
    /// least, of colours the source has nowhere (`partMask`): the sweat drop, the "zzz", the confetti the DiffEdit mask
    /// (normalised by its largest difference) missed. Nil: only regions that meet the mask.
    public var newInkShare: Double? = 0.8
    /// An addition whose part covers at least this share of the donor's drawing pastes the donor whole: another kind
    /// of thing (a face with sunglasses onto an apple). Its part is then cut down to what the donor has and its base, a
    /// picture of the donor's kind without the addition, lacks (`ownEdit`): the sunglasses, not the face. Nil: the part
    /// is never cut down.
    public var wholeDonorShare: Double? = 0.6

    public init() {}

    /// The local denoiser's settings for the mask (and the harmonising pass up to 64²).
    public var configuration: LocalDenoiserConfiguration { .prototype(imageSide: side) }
    /// The harmonising pass's settings: the prototype's up to 64², above it generation's (a window of ±1 px per 32 of
    /// side, not the prototype's ±1 per 16, which at 128² costs 289 shifts a step).
    public var harmonising: LocalDenoiserConfiguration { side > 64 ? .standard(imageSide: side) : configuration }

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
    ///   - donors: the transplant's candidates and their scores, when not the edit's neighbours (an addition's donors may
    ///     include a picture its neighbours leave out).
    ///   - bases: for a donor id, pictures of its kind without the addition, best first (the id itself may be among
    ///     them), for `wholeDonorShare`; nil or none never cuts a part down.
    /// - Returns: the result, its mask, the donor's id, and the id of the picture the part was cut down by, if it was.
    public func edit(source: RGBImage, sourceIDs: [Int], editIDs: [Int], image: (Int) throws -> RGBImage, seed: UInt64,
                     sourceScores: [Double]? = nil, editScores: [Double]? = nil,
                     donors: (ids: [Int], scores: [Double])? = nil, bases: ((Int) throws -> [Int])? = nil) throws
        -> (image: RGBImage, mask: [UInt8], transplantID: Int, cut: Int?) {
        guard source.width == side, source.height == side else {
            throw DiffusionError(.sizeMismatch, "The source image is \(source.width)x\(source.height) but the editor works at \(side)x\(side).")
        }
        guard !sourceIDs.isEmpty, !editIDs.isEmpty else {
            throw DiffusionError(.emptyConditioningSet, "The editor needs at least one neighbour for the source and one for the edit text; the neighbour list is empty.")
        }
        let srcImages = try sourceIDs.prefix(k).map(image)
        let editImages = try editIDs.prefix(k).map(image)
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
        // 2. Transplant, chosen at `partSide` (64) at most: the top `transplantCandidates` edit neighbours, each
        //    aligned to the source (shifts up to a sixteenth of the side, white fill) by its match outside the mask;
        //    the best one's part is where it differs from the source, in the regions that meet the mask (`partMask`).
        let ps = min(side, partSide), g = side / ps, pn = ps * ps
        let fine = ps / m
        var near = [Bool](repeating: false, count: pn)
        for y in 0..<ps { for x in 0..<ps { near[y * ps + x] = coarse[(y / fine) * m + x / fine] } }
        let src = source.downsampled(by: g)
        let reach = max(1, ps / 16)
        var best: (index: Int, d: Float, dx: Int, dy: Int, part: [Bool])?
        // A candidate's mismatch counts more the weaker its match to the edit text: × e^(margin / temperature), the
        // margin being its similarity's distance below the best one's (the conditioning's weights, inverted).
        let donorIDs = donors?.ids ?? editIDs, donorScores = donors?.scores ?? editScores
        // A donor that is also an edit neighbour is already loaded.
        let donorImages = donors == nil ? editImages : try donorIDs.prefix(min(k, transplantCandidates)).map { id in
            try editIDs.prefix(k).firstIndex(of: id).map { editImages[$0] } ?? image(id)
        }
        let candidates = donorIDs.prefix(min(k, transplantCandidates)).indices
        let penalty = candidates.map { i -> Float in
            guard let s = donorScores, s.count > i, let top = s.prefix(candidates.count).max() else { return 1 }
            return Float(exp((top - s[i]) / temperature))
        }
        // The source's colours, for the part's new ink: once per edit, not once per candidate part.
        let sourceColours = keepsDonorBackdrop || newInkShare == nil ? nil : InkColours(src)
        for i in candidates {
            let candidate = donorImages[i].downsampled(by: g)
            // The source itself (a database picture edited, found again) brings nothing but a shifted copy of itself.
            if candidate.pixels == src.pixels { continue }
            for dy in -reach...reach { for dx in -reach...reach {
                let d = Editor.mismatch(candidate, shiftedBy: (dx, dy), from: src, outside: near) * penalty[i]
                guard d < best?.d ?? .infinity else { continue }
                let part = Editor.partMask(source: src, donor: StickerPose(dx: dx, dy: dy).apply(candidate), near: near,
                                           threshold: partThreshold, keepsBackdrop: keepsDonorBackdrop,
                                           newInkShare: keepsDonorBackdrop ? nil : newInkShare, sourceColours: sourceColours)
                // A donor that differs from the source nowhere near the mask (the source itself, a twin) brings nothing.
                if part.contains(true) { best = (i, d, dx, dy, part) }
            } }
        }
        var donor = best ?? (0, 0, 0, 0, near)
        var cut: Int?
        if best != nil, !keepsDonorBackdrop, let share = wholeDonorShare, let bases {
            let moved = StickerPose(dx: donor.dx, dy: donor.dy), unmoved = donorImages[donor.index].downsampled(by: g)
            let placed = moved.apply(unmoved)
            let ink = Editor.backdrop(placed).map { !$0 }
            let drawn = ink.filter { $0 }.count
            let covered = zip(donor.part, ink).filter { $0 && $1 }.count
            if drawn > 0, Double(covered) >= share * Double(drawn) {
                let id = donorIDs[donor.index]
                for baseID in try bases(id).prefix(4) where baseID != id {
                    let base = try image(baseID).downsampled(by: g)
                    guard base.pixels != unmoved.pixels else { continue }
                    if let own = Editor.ownEdit(of: placed, base: moved.apply(base), part: donor.part, threshold: partThreshold) {
                        donor.part = own
                        cut = baseID
                    }
                    break
                }
            }
        }
        var mask = [Bool](repeating: false, count: n)
        for y in 0..<side { for x in 0..<side { mask[y * side + x] = donor.part[(y / g) * ps + x / g] } }
        let donorImage = StickerPose(dx: donor.dx * g, dy: donor.dy * g).apply(donorImages[donor.index])
        var composite = source
        for p in 0..<n where mask[p] { for c in 0..<3 { composite.pixels[c * n + p] = donorImage.pixels[c * n + p] } }
        // 3. Harmonise under source + edit neighbours, then pin outside the mask.
        let both = try LocalEquivariantDenoiser(try conditioning([(srcImages, sourceScores), (editImages, editScores)]), configuration: harmonising)
        let sampler = try DDIMSampler(steps: harmonisingSteps, startTime: strength)
        let start = sampler.noised(composite, rng: &rng)
        var result = try sampler.sample(denoiser: both, from: start, rng: &rng)
        for p in 0..<n where !mask[p] { for c in 0..<3 { result.pixels[c * n + p] = source.pixels[c * n + p] } }
        return (result, mask.map { $0 ? 255 : 0 }, donorIDs[donor.index], cut)
    }

    /// What a donor adds to its base (`base`: the donor's kind without the addition, aligned alike): the pixels of `part`
    /// where the donor differs from it (mean absolute difference over channels above `threshold`, the donor's backdrop
    /// left out), in regions of at least `newInkMinimum` pixels, holes filled (the lenses over the base's eyes), grown by
    /// a pixel where the donor differs from its base by half the threshold. Nil when nothing is left, and the part stays
    /// whole.
    static func ownEdit(of donor: RGBImage, base: RGBImage, part: [Bool], threshold: Float) -> [Bool]? {
        let n = donor.planeCount, w = donor.width, h = donor.height
        let backdrop = Editor.backdrop(donor)
        let added = (0..<n).map { part[$0] && !backdrop[$0] && difference(donor, base, at: $0) > threshold }
        var own = [Bool](repeating: false, count: n)
        for region in regions(added, width: w, height: h) where region.count >= Editor.newInkMinimum { for p in region { own[p] = true } }
        guard own.contains(true) else { return nil }
        // Filled, and grown by a pixel only where the donor does not draw as its base does (around the glasses the
        // base's body is the donor's kind's, which the source is not).
        let whole = filled(own, width: w, height: h)
        let grown = dilated(whole, width: w, height: h)
        return (0..<n).map { whole[$0] || (grown[$0] && difference(donor, base, at: $0) > threshold / 2) }
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
        return Editor.dilated(diff.map { $0 / peak >= threshold }, width: side, height: side)
    }

    /// Samples above this (in [-1, 1]) in every channel are a drawing's white background.
    static let background: Float = 0.9

    /// The pixels of `image`'s white background: white in every channel and 4-connected to the border through white.
    static func backdrop(_ image: RGBImage) -> [Bool] {
        let n = image.planeCount
        return reachable(width: image.width, height: image.height) { p in (0..<3).allSatisfy { image.pixels[$0 * n + p] >= background } }
    }

    /// The 8-connected regions of `flags`' true pixels, each as its pixel indices (first found first).
    static func regions(_ flags: [Bool], width w: Int, height h: Int) -> [[Int]] {
        var out: [[Int]] = [], seen = [Bool](repeating: false, count: w * h)
        for start in flags.indices where flags[start] && !seen[start] {
            var region = [start], i = 0
            seen[start] = true
            while i < region.count {
                let p = region[i]; i += 1
                let x = p % w, y = p / w
                for yy in max(0, y - 1)...min(h - 1, y + 1) { for xx in max(0, x - 1)...min(w - 1, x + 1) {
                    let q = yy * w + xx
                    if flags[q] && !seen[q] { seen[q] = true; region.append(q) }
                } }
            }
            out.append(region)
        }
        return out
    }

    /// The pixels 4-connected to the border through pixels for which `passes` holds.
    static func reachable(width w: Int, height h: Int, through passes: (Int) -> Bool) -> [Bool] {
        var out = [Bool](repeating: false, count: w * h), stack: [Int] = []
        for p in 0..<(w * h) where (p % w == 0 || p % w == w - 1 || p / w == 0 || p / w == h - 1) && passes(p) { out[p] = true; stack.append(p) }
        while let p = stack.popLast() {
            let x = p % w, y = p / w
            for (xx, yy) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] where xx >= 0 && xx < w && yy >= 0 && yy < h {
                let q = yy * w + xx
                if !out[q] && passes(q) { out[q] = true; stack.append(q) }
            }
        }
        return out
    }

    /// `mask` grown by one pixel in every direction (8-connected).
    static func dilated(_ mask: [Bool], width w: Int, height h: Int) -> [Bool] {
        var out = mask
        for y in 0..<h { for x in 0..<w where mask[y * w + x] {
            for yy in max(0, y - 1)...min(h - 1, y + 1) { for xx in max(0, x - 1)...min(w - 1, x + 1) { out[yy * w + xx] = true } }
        } }
        return out
    }

    /// The squared difference, summed over channels, between `source` and `donor` moved by `shift` (white where nothing
    /// moved in: `StickerPose(dx:dy:).apply`), over the pixels outside `outside`'s true ones; without building the
    /// moved image, since the editor scores every shift of every candidate.
    static func mismatch(_ donor: RGBImage, shiftedBy shift: (dx: Int, dy: Int), from source: RGBImage, outside: [Bool]) -> Float {
        let w = source.width, h = source.height, n = w * h
        var d: Float = 0
        for y in 0..<h { for x in 0..<w where !outside[y * w + x] {
            let sx = x - shift.dx, sy = y - shift.dy, inside = sx >= 0 && sx < w && sy >= 0 && sy < h
            for c in 0..<3 {
                let t = (inside ? donor.pixels[c * n + sy * w + sx] : 1) - source.pixels[c * n + y * w + x]
                d += t * t
            }
        } }
        return d
    }

    /// The part to transplant: the 8-connected regions where `donor` differs from `source` (mean absolute difference
    /// over channels above `threshold`) that meet `near` (the DiffEdit mask), with their holes filled and dilated by one
    /// pixel. A hat above a head is one region that meets the mask at its brim, so it comes whole; differences far from
    /// what the edit text changes (another drawing's mouth when the mask is on the eyes) stay the source's.
    ///
    /// With `newInkShare`, a region away from the mask comes too when at least that share of its pixels (and at least
    /// `newInkMinimum` of them) are *new ink*: of a colour no source pixel is near (each channel in 16 bins over [-1, 1],
    /// a colour near when every channel is within one bin). What an edit adds is mostly drawn in colours the source
    /// lacks (a blue sweat drop on a yellow face, a pink party hat), what another drawing merely draws differently (its
    /// mouth, its eyes) in the source's own.
    /// `sourceColours`: `InkColours(source)` when the caller has it already.
    static func partMask(source: RGBImage, donor: RGBImage, near: [Bool], threshold: Float, keepsBackdrop: Bool = false,
                         newInkShare: Double? = nil, sourceColours: InkColours? = nil) -> [Bool] {
        let w = source.width, h = source.height, n = w * h
        // The donor's backdrop is not part of what it brings: a hat is pasted onto a dog, not the dog erased. The
        // backdrop is the white that reaches the border (a white surgical mask inside its outline is the donor's).
        // A removal keeps it: there the white is what replaces the thing removed.
        let backdrop = keepsBackdrop ? [Bool](repeating: false, count: n) : Editor.backdrop(donor)
        let differs = (0..<n).map { !backdrop[$0] && difference(donor, source, at: $0) > threshold }
        let colours = newInkShare.map { _ in sourceColours ?? InkColours(source) }
        var part = [Bool](repeating: false, count: n)
        for region in regions(differs, width: w, height: h) {
            var meets = region.contains { near[$0] }
            if !meets, let share = newInkShare, let colours, region.count >= Editor.newInkMinimum,
               Double(region.filter { colours.lacks(donor, at: $0) }.count) >= share * Double(region.count) { meets = true }
            if meets { for p in region { part[p] = true } }
        }
        return dilated(filled(part, width: w, height: h), width: w, height: h)
    }

    /// The mean absolute difference over channels between two images' pixel `p`.
    @inline(__always) static func difference(_ a: RGBImage, _ b: RGBImage, at p: Int) -> Float {
        let n = a.planeCount
        var d: Float = 0
        for c in 0..<3 { d += abs(a.pixels[c * n + p] - b.pixels[c * n + p]) }
        return d / 3
    }

    /// `mask` with its holes filled: pixels outside it that the border cannot reach (4-connected).
    static func filled(_ mask: [Bool], width w: Int, height h: Int) -> [Bool] {
        reachable(width: w, height: h) { !mask[$0] }.map { !$0 }
    }

    /// The fewest pixels a region of new ink needs to come without meeting the mask (a speck of anti-aliasing does not).
    static let newInkMinimum = 6

    /// The colours a picture has, for new ink: each channel in 16 bins over [-1, 1], and every bin within one of a
    /// colour the picture has (in every channel) marked as near.
    struct InkColours {
        private var near = [Bool](repeating: false, count: 16 * 16 * 16)

        init(_ image: RGBImage) {
            for p in 0..<image.planeCount {
                let (r, g, b) = InkColours.bins(image, p)
                for rr in max(0, r - 1)...min(15, r + 1) { for gg in max(0, g - 1)...min(15, g + 1) { for bb in max(0, b - 1)...min(15, b + 1) {
                    near[rr << 8 | gg << 4 | bb] = true
                } } }
            }
        }

        /// Whether pixel `p` of `image` is new ink: of a colour the picture these are of has none near.
        func lacks(_ image: RGBImage, at p: Int) -> Bool {
            let (r, g, b) = InkColours.bins(image, p)
            return !near[r << 8 | g << 4 | b]
        }

        static func bins(_ image: RGBImage, _ p: Int) -> (Int, Int, Int) {
            let n = image.planeCount, q = { (v: Float) in min(15, max(0, Int((v + 1) * 8))) }
            return (q(image.pixels[p]), q(image.pixels[n + p]), q(image.pixels[2 * n + p]))
        }
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

    /// The squared L2 distance between two equally long runs of RGB8 bytes.
    public static func squaredDistance(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
        var d = 0
        for j in 0..<b.count { let t = Int(a[j]) - Int(b[j]); d += t * t }
        return d
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
        try q.withUnsafeBufferPointer { q in
            for i in 0..<count { scored.append((i, Editor.squaredDistance(try rgb8(i), q))) }
        }
        return scored.sorted { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(k).map(\.0)
    }
}
