/// Which patch size the local denoiser uses at each noise level.
public struct PatchSchedule: Sendable, Equatable {
    /// Odd patch sizes from low to high noise.
    public let patchSizes: [Int]
    /// The ᾱ each entry belongs to (decreasing: low noise has ᾱ near 1).
    public let alphaBars: [Double]

    /// Creates a schedule from matching lists; a level uses the entry nearest in log SNR.
    public init(patchSizes: [Int], alphaBars: [Double]) {
        precondition(!patchSizes.isEmpty && patchSizes.count == alphaBars.count, "one ᾱ per patch size")
        precondition(patchSizes.allSatisfy { $0 > 0 && $0 % 2 == 1 }, "patch sizes must be odd and positive")
        self.patchSizes = patchSizes
        self.alphaBars = alphaBars
    }

    /// One patch size at every noise level.
    public static func fixed(_ size: Int) -> PatchSchedule {
        PatchSchedule(patchSizes: [size], alphaBars: [0.5])
    }

    /// The prototype's schedule (DESIGN.md §8): about twice Kamb & Ganguli's CIFAR-10 sizes, anchored at
    /// the 20 DDIM steps of the cosine schedule, t = 0.05, 0.10, …, 1.0 (low to high noise).
    public static let prototype: PatchSchedule = {
        let sizes = [3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7, 9, 9, 11, 13, 13, 15, 17, 25]
        let schedule = CosineSchedule()
        let alphaBars = (1...sizes.count).map { schedule.alphaBar(at: Double($0) / Double(sizes.count)) }
        return PatchSchedule(patchSizes: sizes, alphaBars: alphaBars)
    }()

    /// The same schedule for an image `factor` times larger: half-widths scale, sizes stay odd
    /// (×2 maps P to 2P − 1).
    public func scaled(by factor: Double) -> PatchSchedule {
        let sizes = patchSizes.map { size -> Int in
            let half = (Double(size - 1) / 2 * factor).rounded()
            return 2 * max(Int(half), 0) + 1
        }
        return PatchSchedule(patchSizes: sizes, alphaBars: alphaBars)
    }

    /// The patch size for a noise level: the entry whose ᾱ is nearest in log SNR.
    public func patchSize(for level: NoiseLevel) -> Int {
        guard patchSizes.count > 1 else { return patchSizes[0] }
        let target = min(max(level.logSNR, -40), 40)
        var best = 0
        var bestDistance = Double.infinity
        for (i, a) in alphaBars.enumerated() {
            let d = abs(NoiseLevel(alphaBar: a).logSNR - target)
            if d < bestDistance { bestDistance = d; best = i }
        }
        return patchSizes[best]
    }
}

/// Settings of the local (ELS) denoiser.
public struct LocalDenoiserConfiguration: Sendable, Equatable {
    /// Patch size per noise level.
    public var patchSchedule: PatchSchedule
    /// Source-patch centres lie within ±`window` pixels (Chebyshev) of the target pixel.
    public var window: Int

    /// Creates a configuration.
    public init(patchSchedule: PatchSchedule = .prototype, window: Int = 2) {
        self.patchSchedule = patchSchedule
        self.window = window
    }

    /// The prototype's settings for a square image side: window ±2 at 32², ±4 at 64² (side / 16), and the
    /// prototype's 32² patch schedule scaled with the side (at 64², 2P − 1: 5…49). Unscaled patches at 64²
    /// gave visibly mosaic samples on the emoji database; scaled ones give coherent stickers.
    public static func prototype(imageSide: Int) -> LocalDenoiserConfiguration {
        LocalDenoiserConfiguration(patchSchedule: PatchSchedule.prototype.scaled(by: Double(imageSide) / 32),
                                   window: max(1, imageSide / 16))
    }

    /// Hume's generation settings, chosen by `hume eval generate` on held-out emoji concepts (README, "Quality"):
    /// a window of ±1 pixel per 32 of side and patches 1.5× the prototype's (3…37 at 32²). The prototype's ±2 px
    /// window with its patches lets every region follow a different neighbour at a different offset, which gave
    /// mosaics (label agreement 0.13 at k = 16); ±1 px with larger patches keeps regions aligned and coherent.
    public static func standard(imageSide: Int) -> LocalDenoiserConfiguration {
        LocalDenoiserConfiguration(patchSchedule: PatchSchedule.prototype.scaled(by: 1.5 * Double(imageSide) / 32),
                                   window: max(1, imageSide / 32))
    }
}

/// The equivariant local score (ELS) machine of Kamb & Ganguli (2024), restricted to a window: for every
/// target pixel p the output is the posterior mean of the centre pixel `yᵢ[q]` over neighbours i and
/// source centres q with |q − p|∞ ≤ W, weighted by
/// `softmax(logWeightᵢ − ‖patch_P(x_t, p) − √ᾱ·patch_P(yᵢ, q)‖² / (2(1−ᾱ)))`.
///
/// Borders: a patch is clipped to the image around the *target* pixel — patch pixels of x_t outside the
/// image are excluded — so all candidates for one target compare the same set of pixels. The neighbour
/// is read at the same offsets and replicate-padded where those fall outside it. Source centres q must
/// lie inside the image (candidates with q outside are dropped; q = p always remains).
///
/// Cost does not grow with P: for each shift d and neighbour, the per-pixel squared difference
/// `Σ_c (x_t[r] − √ᾱ·yᵢ[r+d])²` is box-filtered by prefix sums (horizontal within a row, then vertical;
/// accumulated in `Double`, since a `Float` prefix over a row loses the small distances of good matches),
/// and an online max-subtracted softmax per target pixel accumulates over shifts (nearest shifts first).
/// Neighbours are SIMD lanes, padded to a multiple of 8 with lanes of log-weight −∞ (weight e^-87, i.e.
/// nothing); with at most `pixelLaneLimit` neighbours the lanes run over target pixels instead (`runPixelLanes`: the
/// same sums in another order, no padding); all scratch is allocated at init. Two deliberate approximations, both far below `Float`
/// resolution: a (shift, target) batch whose best weight is under e^-25 of the running maximum is
/// skipped, and exp is a degree-6 polynomial (relative error ≈ 2e-7). Against the direct definition in
/// `Double` the output agrees to about 1e-5 (tests require 1e-4).
///
/// Cost per call: (2W+1)² shifts × k neighbours × pixels × ≈ 42 flops, independent of P.
/// Not thread-safe (owns scratch memory): use one instance per thread.
public final class LocalEquivariantDenoiser: Denoiser {
    /// The conditioning images.
    public let conditioning: ConditioningSet
    /// Patch schedule and window.
    public let configuration: LocalDenoiserConfiguration
    public var width: Int { conditioning.width }
    public var height: Int { conditioning.height }

    private let groups: Int                 // lanes / 8
    private let paddedWidth: Int, paddedHeight: Int
    private let neighbours: UnsafeMutablePointer<SIMD8<Float>>   // [(q*3 + c)*groups + g], unscaled (source of the scaled copy)
    private let offsets: UnsafeMutablePointer<SIMD8<Float>>      // [g] log weights, -inf on padding lanes
    private let scaledPadded: UnsafeMutablePointer<SIMD8<Float>> // [((row*paddedWidth + col)*3 + c)*groups + g]
    private let rowPrefix: UnsafeMutablePointer<SIMD8<Double>>    // [(j+1)*groups + g]
    private let columnPrefix: UnsafeMutablePointer<SIMD8<Double>> // ring of P+1 rows: [(slot*width + col)*groups + g]
    private let logits: UnsafeMutablePointer<SIMD8<Float>>       // one row: [active*groups + g], then weights
    private let activeColumns: UnsafeMutablePointer<Int>          // one row: target columns not skipped
    private let runningMax: UnsafeMutablePointer<Float>          // [p]
    private let runningSum: UnsafeMutablePointer<Float>          // [p]
    private let runningMean: UnsafeMutablePointer<Float>         // [c*n + p]
    private let scratchCounts: [Int]
    /// Window shifts, nearest first: the zero shift usually sets a high running maximum early, so
    /// later batches that are all negligible can be skipped.
    private let shifts: [(Int, Int)]

    /// With at most this many conditioning images, SIMD lanes run over target pixels instead of neighbours
    /// (`runPixelLanes`): a sample made from one to four drawings (most samples since the shape test) would otherwise
    /// leave half or more of every 8-lane vector as padding.
    public static let pixelLaneLimit = 4
    /// Whether this instance uses the pixel-lane path.
    public let usesPixelLanes: Bool
    // Pixel lanes only (one element otherwise).
    private let planar: UnsafeMutablePointer<Float>        // [(i*3 + c)*paddedPlane + row*paddedWidth + col], unscaled, padded
    private let planarScaled: UnsafeMutablePointer<Float>  // √ᾱ times the above, per call
    private let differenceRing: UnsafeMutablePointer<Float> // ring of squared-difference rows: [slot*width + col]
    private let columnSums: UnsafeMutablePointer<Double>   // [col]: the patch rows' sum of the ring, per column
    private let boxRow: UnsafeMutablePointer<Float>        // [col]: one target row's box sums
    private let prefixRow: UnsafeMutablePointer<Double>    // [col + 1]: prefix sums of the column sums
    private let pixelCounts: [Int]

    /// Creates the denoiser; all scratch memory is allocated here.
    /// - Throws: `.invalidArgument` if the window is negative.
    /// Floating-point operations of one `denoise` call over `images` conditioning images of `pixels` pixels with a
    /// window of ±`window`: the count above, which the benchmarks divide by time.
    public static func flopsPerCall(window: Int, images: Int, pixels: Int) -> Double {
        Double((2 * window + 1) * (2 * window + 1)) * Double(images) * Double(pixels) * 42
    }

    public convenience init(_ conditioning: ConditioningSet, configuration: LocalDenoiserConfiguration = LocalDenoiserConfiguration()) throws {
        try self.init(conditioning, configuration: configuration, allowPixelLanes: true)
    }

    /// `allowPixelLanes: false` keeps neighbours in lanes whatever their count (the tests compare the two paths).
    init(_ conditioning: ConditioningSet, configuration: LocalDenoiserConfiguration, allowPixelLanes: Bool) throws {
        guard configuration.window >= 0 else {
            throw DiffusionError(.invalidArgument, "window \(configuration.window) is not allowed; it must be 0 or more pixels")
        }
        self.conditioning = conditioning
        self.configuration = configuration
        let w = conditioning.width, h = conditioning.height, n = w * h
        let k = conditioning.count
        groups = (k + 7) / 8
        paddedWidth = w + 2 * configuration.window
        paddedHeight = h + 2 * configuration.window
        let ringRows = min(configuration.patchSchedule.patchSizes.max()!, h) + 1
        let pixelLanes = allowPixelLanes && k <= Self.pixelLaneLimit && conditioning.logWeights.allSatisfy { $0.isFinite }
        usesPixelLanes = pixelLanes
        let counts = pixelLanes ? [1, 1, 1, 1, 1, 1]
            : [n * 3 * groups, groups, paddedWidth * paddedHeight * 3 * groups, (w + 1) * groups, ringRows * w * groups, w * groups]
        scratchCounts = counts
        let plane = paddedWidth * paddedHeight
        pixelCounts = pixelLanes ? [k * 3 * plane, ringRows * w, w] : [1, 1, 1]
        planar = .allocate(capacity: pixelCounts[0])
        planarScaled = .allocate(capacity: pixelCounts[0])
        differenceRing = .allocate(capacity: pixelCounts[1])
        columnSums = .allocate(capacity: pixelCounts[2])
        boxRow = .allocate(capacity: pixelCounts[2])
        prefixRow = .allocate(capacity: pixelCounts[2] + 1)
        prefixRow.initialize(repeating: 0, count: pixelCounts[2] + 1)
        planar.initialize(repeating: 0, count: pixelCounts[0])
        planarScaled.initialize(repeating: 0, count: pixelCounts[0])
        differenceRing.initialize(repeating: 0, count: pixelCounts[1])
        columnSums.initialize(repeating: 0, count: pixelCounts[2])
        boxRow.initialize(repeating: 0, count: pixelCounts[2])
        let r = configuration.window
        var all: [(Int, Int)] = []
        for dy in -r...r { for dx in -r...r { all.append((dx, dy)) } }
        shifts = all.sorted { (a: (Int, Int), b: (Int, Int)) -> Bool in
            let ra = a.0 * a.0 + a.1 * a.1, rb = b.0 * b.0 + b.1 * b.1
            return (ra, a.1, a.0) < (rb, b.1, b.0)
        }
        neighbours = .allocate(capacity: counts[0])
        offsets = .allocate(capacity: counts[1])
        scaledPadded = .allocate(capacity: counts[2])
        rowPrefix = .allocate(capacity: counts[3])
        columnPrefix = .allocate(capacity: counts[4])
        logits = .allocate(capacity: counts[5])
        activeColumns = .allocate(capacity: w)
        activeColumns.initialize(repeating: 0, count: w)
        runningMax = .allocate(capacity: n)
        runningSum = .allocate(capacity: n)
        runningMean = .allocate(capacity: 3 * n)
        neighbours.initialize(repeating: .zero, count: counts[0])
        offsets.initialize(repeating: SIMD8(repeating: -.infinity), count: counts[1])
        scaledPadded.initialize(repeating: .zero, count: counts[2])
        rowPrefix.initialize(repeating: .zero, count: counts[3])
        columnPrefix.initialize(repeating: .zero, count: counts[4])
        logits.initialize(repeating: .zero, count: counts[5])
        runningMax.initialize(repeating: 0, count: n)
        runningSum.initialize(repeating: 0, count: n)
        runningMean.initialize(repeating: 0, count: 3 * n)
        if pixelLanes {
            // Each neighbour's channels as planes replicate-padded by the window, so every shifted read is in bounds.
            let pw = paddedWidth, r = configuration.window
            for (i, image) in conditioning.images.enumerated() {
                for c in 0..<3 {
                    let base = (i * 3 + c) * plane
                    for row in 0..<paddedHeight {
                        let sy = min(max(row - r, 0), h - 1)
                        for col in 0..<pw {
                            planar[base + row * pw + col] = image.pixels[c * n + sy * w + min(max(col - r, 0), w - 1)]
                        }
                    }
                }
            }
            return
        }
        for (i, image) in conditioning.images.enumerated() {
            let g = i / 8, lane = i % 8
            offsets[g][lane] = conditioning.logWeights[i]
            for c in 0..<3 {
                for q in 0..<n {
                    neighbours[(q * 3 + c) * groups + g][lane] = image.pixels[c * n + q]
                }
            }
        }
    }

    deinit {
        neighbours.deinitialize(count: scratchCounts[0]); neighbours.deallocate()
        offsets.deinitialize(count: scratchCounts[1]); offsets.deallocate()
        scaledPadded.deinitialize(count: scratchCounts[2]); scaledPadded.deallocate()
        rowPrefix.deinitialize(count: scratchCounts[3]); rowPrefix.deallocate()
        columnPrefix.deinitialize(count: scratchCounts[4]); columnPrefix.deallocate()
        logits.deinitialize(count: scratchCounts[5]); logits.deallocate()
        activeColumns.deallocate()
        runningMax.deallocate()
        runningSum.deallocate()
        runningMean.deallocate()
        planar.deinitialize(count: pixelCounts[0]); planar.deallocate()
        planarScaled.deinitialize(count: pixelCounts[0]); planarScaled.deallocate()
        differenceRing.deinitialize(count: pixelCounts[1]); differenceRing.deallocate()
        columnSums.deinitialize(count: pixelCounts[2]); columnSums.deallocate()
        boxRow.deinitialize(count: pixelCounts[2]); boxRow.deallocate()
        prefixRow.deinitialize(count: pixelCounts[2] + 1); prefixRow.deallocate()
    }

    public func denoise(_ x: RGBImage, level: NoiseLevel, into output: inout RGBImage) throws {
        try conditioning.checkSize(x, "noisy")
        try conditioning.checkSize(output, "output")
        let patch = configuration.patchSchedule.patchSize(for: level)
        x.pixels.withUnsafeBufferPointer { xp in
            output.pixels.withUnsafeMutableBufferPointer { op in
                if usesPixelLanes {
                    runPixelLanes(x: xp.baseAddress!, output: op.baseAddress!, alphaBar: level.alphaBar, patch: patch)
                } else {
                    run(x: xp.baseAddress!, output: op.baseAddress!, alphaBar: level.alphaBar, patch: patch)
                }
            }
        }
    }

    private func run(x: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, alphaBar: Double, patch: Int) {
        let w = width, h = height, G = groups, R = configuration.window
        let half = patch / 2
        let s = Float(alphaBar.squareRoot())
        let inverseTwoVariance = Float(1 / (2 * max(1 - alphaBar, 1e-12)))

        // √ᾱ·y, replicate-padded by the window so every shifted read is in bounds.
        let pw = paddedWidth
        for row in 0..<paddedHeight {
            let sy = min(max(row - R, 0), h - 1)
            for col in 0..<pw {
                let sx = min(max(col - R, 0), w - 1)
                let src = (sy * w + sx) * 3 * G, dst = (row * pw + col) * 3 * G
                for j in 0..<(3 * G) { scaledPadded[dst + j] = s * neighbours[src + j] }
            }
        }
        resetRunningSums()

        for (dx, dy) in shifts {
            let py0 = max(0, -dy), py1 = min(h, h - dy)
            let px0 = max(0, -dx), px1 = min(w, w - dx)
            if py0 >= py1 || px0 >= px1 { continue }
            // Constant group counts let the compiler unroll the lane loops (k ≤ 8, k ≤ 16).
            switch G {
            case 1: processShift(x: x, dx: dx, dy: dy, targetRows: py0..<py1, targetColumns: px0..<px1,
                                 half: half, inverseTwoVariance: inverseTwoVariance, groups: 1)
            case 2: processShift(x: x, dx: dx, dy: dy, targetRows: py0..<py1, targetColumns: px0..<px1,
                                 half: half, inverseTwoVariance: inverseTwoVariance, groups: 2)
            default: processShift(x: x, dx: dx, dy: dy, targetRows: py0..<py1, targetColumns: px0..<px1,
                                  half: half, inverseTwoVariance: inverseTwoVariance, groups: G)
            }
        }
        writeMeans(output, scale: s)
    }

    /// The online softmax's running maximum, sum and weighted sums, emptied before a call.
    private func resetRunningSums() {
        let n = width * height
        for p in 0..<n { runningMax[p] = -.infinity; runningSum[p] = 0 }
        for p in 0..<(3 * n) { runningMean[p] = 0 }
    }

    /// The posterior means into `output`. The accumulated means are of √ᾱ·y (read from the scaled copy); divide the
    /// scale back out.
    private func writeMeans(_ output: UnsafeMutablePointer<Float>, scale s: Float) {
        let n = width * height
        let inverseScale = 1 / s
        for p in 0..<n {
            let z = inverseScale / runningSum[p]
            output[p] = runningMean[p] * z
            output[n + p] = runningMean[n + p] * z
            output[2 * n + p] = runningMean[2 * n + p] * z
        }
    }

    /// One shift d for all target pixels: streams rows of the squared-difference map through a ring of
    /// column prefix sums (P+1 rows suffice, since a target row needs prefix rows `lo` and `hi`, at most
    /// P apart) and updates each target row as soon as its patch rows are in.
    @inline(__always)
    private func processShift(x: UnsafePointer<Float>, dx: Int, dy: Int, targetRows: Range<Int>,
                              targetColumns: Range<Int>, half: Int, inverseTwoVariance: Float, groups G: Int) {
        let w = width, h = height
        let ring = min(2 * half + 1, h) + 1
        let firstRow = max(targetRows.lowerBound - half, 0)
        let c0 = max(targetColumns.lowerBound - half, 0), c1 = min(targetColumns.upperBound + half, w)
        let slot0 = (firstRow % ring) * w
        for j in targetColumns { for g in 0..<G { columnPrefix[(slot0 + j) * G + g] = .zero } }
        var nextRow = firstRow
        for py in targetRows {
            let hi = min(py + half + 1, h), lo = max(py - half, 0)
            while nextRow < hi {
                addBoxRow(x: x, row: nextRow, dx: dx, dy: dy, columns: c0..<c1, targetColumns: targetColumns,
                          half: half, ring: ring, groups: G)
                nextRow += 1
            }
            accumulateRow(py: py, dx: dx, dy: dy, columns: targetColumns, hiSlot: (hi % ring) * w,
                          loSlot: (lo % ring) * w, inverseTwoVariance: inverseTwoVariance, groups: G)
        }
    }

    /// Adds squared-difference row `row`, horizontally box-filtered (clipped to the image), to the ring:
    /// prefix[row + 1] = prefix[row] + box_h(D[row]).
    @inline(__always)
    private func addBoxRow(x: UnsafePointer<Float>, row r: Int, dx: Int, dy: Int, columns: Range<Int>,
                           targetColumns: Range<Int>, half: Int, ring: Int, groups G: Int) {
        let w = width, n = w * height, R = configuration.window, pw = paddedWidth
        let c0 = columns.lowerBound, c1 = columns.upperBound
        // Horizontal prefix sums of Σ_c (x − √ᾱ y_shifted)², lanes = neighbours; rowPrefix[0] stays 0.
        let xRow = r * w
        let yRow = (r + dy + R) * pw + dx + R
        for j in c0..<c1 {
            let x0 = SIMD8<Float>(repeating: x[xRow + j])
            let x1 = SIMD8<Float>(repeating: x[n + xRow + j])
            let x2 = SIMD8<Float>(repeating: x[2 * n + xRow + j])
            let yb = (yRow + j) * 3 * G
            let pj = (j - c0) * G, pj1 = pj + G
            for g in 0..<G {
                let d0 = x0 - scaledPadded[yb + g]
                let d1 = x1 - scaledPadded[yb + G + g]
                let d2 = x2 - scaledPadded[yb + 2 * G + g]
                rowPrefix[pj1 + g] = rowPrefix[pj + g] + VectorMath.widen(d0 * d0 + d1 * d1 + d2 * d2)
            }
        }
        let above = (r % ring) * w, below = ((r + 1) % ring) * w
        for j in targetColumns {
            let hi = (min(j + half + 1, w) - c0) * G, lo = (max(j - half, 0) - c0) * G
            for g in 0..<G {
                columnPrefix[(below + j) * G + g] = columnPrefix[(above + j) * G + g]
                    + (rowPrefix[hi + g] - rowPrefix[lo + g])
            }
        }
    }

    /// Batches whose best logit is this far below the running maximum are skipped (weights < 1.4e-11).
    private let negligibleLogit: Float = 25

    /// Online softmax update of one target row for one shift, in three passes so that the costly
    /// exponentials of neighbouring pixels are independent and overlap in the pipeline:
    /// (1) logits, running-maximum update and skipping; (2) weights, four vectors at a time;
    /// (3) weighted sums of the source-centre colours.
    @inline(__always)
    private func accumulateRow(py: Int, dx: Int, dy: Int, columns: Range<Int>, hiSlot: Int, loSlot: Int,
                               inverseTwoVariance: Float, groups G: Int) {
        let w = width, n = w * height, R = configuration.window, pw = paddedWidth
        let scale = SIMD8<Float>(repeating: inverseTwoVariance)
        let sourceRow = (py + dy + R) * pw + dx + R
        var active = 0
        for px in columns {
            let slot = active * G
            var best = SIMD8<Float>(repeating: -.infinity)
            for g in 0..<G {
                let box = VectorMath.narrow(columnPrefix[(hiSlot + px) * G + g] - columnPrefix[(loSlot + px) * G + g])
                let l = offsets[g] - box * scale
                logits[slot + g] = l
                best = VectorMath.maximum(best, l)
            }
            let p = py * w + px
            let batchMax = VectorMath.horizontalMax(best)
            var m = runningMax[p]
            // Every weight in this batch is below e^-25 of the running maximum (whose own weight
            // is 1, so the running sum is at least 1): adding them cannot change a Float sum.
            if batchMax < m - negligibleLogit { continue }
            if batchMax > m {
                let a = VectorMath.exp(m - batchMax)
                runningSum[p] *= a
                runningMean[p] *= a
                runningMean[n + p] *= a
                runningMean[2 * n + p] *= a
                runningMax[p] = batchMax
                m = batchMax
            }
            let mv = SIMD8<Float>(repeating: m)
            for g in 0..<G { logits[slot + g] -= mv }
            activeColumns[active] = px
            active += 1
        }
        let items = active * G
        var i = 0
        while i + 4 <= items {
            let e0 = VectorMath.exp(logits[i]), e1 = VectorMath.exp(logits[i + 1])
            let e2 = VectorMath.exp(logits[i + 2]), e3 = VectorMath.exp(logits[i + 3])
            logits[i] = e0; logits[i + 1] = e1; logits[i + 2] = e2; logits[i + 3] = e3
            i += 4
        }
        while i < items { logits[i] = VectorMath.exp(logits[i]); i += 1 }
        for a in 0..<active {
            let px = activeColumns[a], p = py * w + px
            let qb = (sourceRow + px) * 3 * G
            var zs = SIMD8<Float>.zero, a0 = SIMD8<Float>.zero, a1 = SIMD8<Float>.zero, a2 = SIMD8<Float>.zero
            for g in 0..<G {
                let wt = logits[a * G + g]
                zs += wt
                a0 += wt * scaledPadded[qb + g]
                a1 += wt * scaledPadded[qb + G + g]
                a2 += wt * scaledPadded[qb + 2 * G + g]
            }
            runningSum[p] += VectorMath.horizontalSum(zs)
            runningMean[p] += VectorMath.horizontalSum(a0)
            runningMean[n + p] += VectorMath.horizontalSum(a1)
            runningMean[2 * n + p] += VectorMath.horizontalSum(a2)
        }
    }

    // MARK: pixel lanes

    /// The same posterior mean with SIMD lanes over target pixels: for each shift and each neighbour, the squared
    /// differences of one row at a time go into a ring, a running sum over the patch's rows per column (in `Double`)
    /// and a horizontal box of it give each target pixel's patch distance, and an online softmax takes the candidate
    /// in with one exponential: e = e^-|l − m|; a larger logit l rescales the running sums by e and becomes the
    /// maximum m, a smaller one adds with weight e. No candidate is skipped (the lane path's skip changes a Float sum
    /// by less than its rounding).
    private func runPixelLanes(x: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, alphaBar: Double, patch: Int) {
        let w = width, h = height
        let half = patch / 2
        let s = Float(alphaBar.squareRoot())
        let inverseTwoVariance = Float(1 / (2 * max(1 - alphaBar, 1e-12)))
        let plane = paddedWidth * paddedHeight
        for j in 0..<(conditioning.count * 3 * plane) { planarScaled[j] = s * planar[j] }
        resetRunningSums()
        for (dx, dy) in shifts {
            let py0 = max(0, -dy), py1 = min(h, h - dy)
            let px0 = max(0, -dx), px1 = min(w, w - dx)
            if py0 >= py1 || px0 >= px1 { continue }
            for i in 0..<conditioning.count {
                pixelLaneShift(x: x, neighbour: i, dx: dx, dy: dy, rows: py0..<py1, columns: px0..<px1, half: half,
                               inverseTwoVariance: inverseTwoVariance, logWeight: conditioning.logWeights[i])
            }
        }
        writeMeans(output, scale: s)
    }

    /// One shift and one neighbour for every target pixel (the pixel-lane path).
    @inline(__always)
    private func pixelLaneShift(x: UnsafePointer<Float>, neighbour i: Int, dx: Int, dy: Int, rows: Range<Int>,
                                columns: Range<Int>, half: Int, inverseTwoVariance: Float, logWeight: Float) {
        let w = width, h = height, n = w * h, R = configuration.window, pw = paddedWidth
        let plane = paddedWidth * paddedHeight
        let ring = min(2 * half + 1, h) + 1
        let c0 = max(columns.lowerBound - half, 0), c1 = min(columns.upperBound + half, w)
        let y0 = planarScaled + (i * 3) * plane, y1 = y0 + plane, y2 = y1 + plane
        for j in c0..<c1 { columnSums[j] = 0 }
        let firstRow = max(rows.lowerBound - half, 0)
        var added = firstRow, removed = firstRow
        let scale = SIMD8<Float>(repeating: inverseTwoVariance), offset = SIMD8<Float>(repeating: logWeight)
        for py in rows {
            let hi = min(py + half + 1, h), lo = max(py - half, 0)
            while added < hi {
                // Row `added` of Σ_c (x − √ᾱ·y shifted)², into the ring and the column sums.
                let xr = added * w, yr = (added + dy + R) * pw + dx + R, slot = (added % ring) * w
                var j = c0
                while j + 8 <= c1 {
                    let d0 = load(x + xr + j) - load(y0 + yr + j)
                    let d1 = load(x + n + xr + j) - load(y1 + yr + j)
                    let d2 = load(x + 2 * n + xr + j) - load(y2 + yr + j)
                    let d = d0 * d0 + d1 * d1 + d2 * d2
                    store(d, differenceRing + slot + j)
                    store(load(columnSums + j) + VectorMath.widen(d), columnSums + j)
                    j += 8
                }
                while j < c1 {
                    let d0 = x[xr + j] - y0[yr + j], d1 = x[n + xr + j] - y1[yr + j], d2 = x[2 * n + xr + j] - y2[yr + j]
                    let d = d0 * d0 + d1 * d1 + d2 * d2
                    differenceRing[slot + j] = d
                    columnSums[j] += Double(d)
                    j += 1
                }
                added += 1
            }
            while removed < lo {
                let slot = (removed % ring) * w
                var j = c0
                while j + 8 <= c1 {
                    store(load(columnSums + j) - VectorMath.widen(load(differenceRing + slot + j)), columnSums + j)
                    j += 8
                }
                while j < c1 { columnSums[j] -= Double(differenceRing[slot + j]); j += 1 }
                removed += 1
            }
            // Each target's box: the column sums from px − half to px + half, clipped to the image, as a difference of
            // prefix sums. The prefix runs as two independent chains (the halves of the row), joined after.
            let count = c1 - c0, mid = count / 2
            prefixRow[0] = 0
            prefixRow[mid] = 0
            var a = 0.0, b = 0.0
            for k in 0..<mid {
                a += columnSums[c0 &+ k]; prefixRow[k &+ 1] = a
                b += columnSums[c0 &+ mid &+ k]; prefixRow[mid &+ k &+ 1] = b
            }
            if count & 1 == 1 { b += columnSums[c1 &- 1]; prefixRow[count] = b }
            for k in (mid + 1)..<(count + 1) { prefixRow[k] += a }
            prefixRow[mid] = a
            // A box clipped to the image, one target at a time (the row's two ends).
            func clippedBox(_ px: Int) {
                boxRow[px] = Float(prefixRow[min(px + half + 1, w) - c0] - prefixRow[max(px - half, 0) - c0])
            }
            var px = columns.lowerBound
            while px < columns.upperBound && px - half < 0 { clippedBox(px); px += 1 }
            // Targets whose box is not clipped (px − half ≥ 0 and px + half < w), eight at a time.
            let interiorEnd = min(columns.upperBound, w - half)
            while px + 8 <= interiorEnd {
                let hiBox = load(prefixRow + (px + half + 1 - c0)), loBox = load(prefixRow + (px - half - c0))
                store(VectorMath.narrow(hiBox - loBox), boxRow + px)
                px += 8
            }
            while px < columns.upperBound { clippedBox(px); px += 1 }
            // The online softmax, eight target pixels at a time.
            let sr = (py + dy + R) * pw + dx + R, pr = py * w
            px = columns.lowerBound
            while px + 8 <= columns.upperBound {
                let p = pr + px
                let l = offset - load(boxRow + px) * scale
                let m = load(runningMax + p)
                let larger = l .> m
                let diff = l - m
                let e = VectorMath.exp(VectorMath.minimum(diff, -diff))   // e^-|l − m|
                let one = SIMD8<Float>(repeating: 1)
                let keep = one.replacing(with: e, where: larger)      // weight of what was there
                let add = e.replacing(with: one, where: larger)       // weight of the new candidate
                store(load(runningSum + p) * keep + add, runningSum + p)
                store(load(runningMean + p) * keep + add * load(y0 + sr + px), runningMean + p)
                store(load(runningMean + n + p) * keep + add * load(y1 + sr + px), runningMean + n + p)
                store(load(runningMean + 2 * n + p) * keep + add * load(y2 + sr + px), runningMean + 2 * n + p)
                store(VectorMath.maximum(m, l), runningMax + p)
                px += 8
            }
            while px < columns.upperBound {
                let p = pr + px
                let l = logWeight - boxRow[px] * inverseTwoVariance
                let m = runningMax[p]
                let e = VectorMath.exp(-abs(l - m))
                let (keep, add): (Float, Float) = l > m ? (e, 1) : (1, e)
                runningSum[p] = runningSum[p] * keep + add
                runningMean[p] = runningMean[p] * keep + add * y0[sr + px]
                runningMean[n + p] = runningMean[n + p] * keep + add * y1[sr + px]
                runningMean[2 * n + p] = runningMean[2 * n + p] * keep + add * y2[sr + px]
                runningMax[p] = max(m, l)
                px += 1
            }
        }
    }

    @inline(__always) private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) private func load(_ p: UnsafeMutablePointer<Double>) -> SIMD8<Double> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Double>.self)
    }
    @inline(__always) private func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }
    @inline(__always) private func store(_ v: SIMD8<Double>, _ p: UnsafeMutablePointer<Double>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Double>.self)
    }
}
