import Testing
@testable import HumeDiffusion

/// Root-mean-square difference of two images.
private func rms(_ a: RGBImage, _ b: RGBImage) -> Float {
    let s = zip(a.pixels, b.pixels).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
    return (s / Float(a.pixels.count)).squareRoot()
}

/// Fraction of output pixels whose colour is within `tolerance` (max over channels) of some neighbour's
/// pixel inside the window around the same position: "made of local pieces of the neighbours".
private func locallyExplained(_ out: RGBImage, by neighbours: [RGBImage], window: Int, tolerance: Float) -> Double {
    var explained = 0
    for py in 0..<out.height {
        for px in 0..<out.width {
            var found = false
            search: for y in neighbours {
                for qy in max(py - window, 0)...min(py + window, out.height - 1) {
                    for qx in max(px - window, 0)...min(px + window, out.width - 1) {
                        let d = (0..<3).map { abs(out[$0, px, py] - y[$0, qx, qy]) }.max()!
                        if d < tolerance { found = true; break search }
                    }
                }
            }
            if found { explained += 1 }
        }
    }
    return Double(explained) / Double(out.width * out.height)
}

@Suite("Quality smoke test on synthetic stickers")
struct QualitySmokeTests {
    let side = 16
    var neighbours: [RGBImage] { (0..<6).map { stickerImage(side: side, seed: 1000 + UInt64($0)) } }

    @Test("the whole-image posterior mean copies a neighbour; the local denoiser composes a new image from local pieces")
    func composesRatherThanCopies() throws {
        let set = try ConditioningSet(neighbours)
        let sampler = try DDIMSampler(steps: 10)
        let config = LocalDenoiserConfiguration(window: 1)
        for seed in UInt64(1)...3 {
            let copy = try sampler.sample(denoiser: PosteriorMeanDenoiser(set), seed: seed)
            #expect(neighbours.map { rms(copy, $0) }.min()! < 0.01)

            let local = try sampler.sample(denoiser: LocalEquivariantDenoiser(set, configuration: config), seed: seed)
            let nearest = neighbours.map { rms(local, $0) }.min()!
            #expect(nearest > 0.1, "seed \(seed): local sample is within RMS \(nearest) of a neighbour")
            let explained = locallyExplained(local, by: neighbours, window: 1, tolerance: 0.05)
            #expect(explained > 0.9, "seed \(seed): only \(explained) of pixels come from nearby neighbour pixels")
            #expect(local.pixels.allSatisfy { $0 >= -1.0001 && $0 <= 1.0001 })
        }
    }
}
