@testable import HumeDiffusion

/// A random image with samples uniform in [-1, 1].
func randomImage(width: Int, height: Int, seed: UInt64) -> RGBImage {
    var rng = SeededRandom(seed: seed)
    var image = RGBImage(width: width, height: height)
    for i in image.pixels.indices { image.pixels[i] = Float(rng.nextUniform() * 2 - 1) }
    return image
}

/// x_t = √ᾱ·clean + √(1−ᾱ)·ε with ε drawn from `seed`.
func noised(_ clean: RGBImage, alphaBar: Double, seed: UInt64) -> RGBImage {
    var rng = SeededRandom(seed: seed)
    var x = clean
    let s = Float(alphaBar.squareRoot()), n = Float((1 - alphaBar).squareRoot())
    for i in x.pixels.indices { x.pixels[i] = s * clean.pixels[i] + n * Float(rng.nextNormal()) }
    return x
}

func maxAbsDifference(_ a: RGBImage, _ b: RGBImage) -> Float {
    zip(a.pixels, b.pixels).map { abs($0 - $1) }.max() ?? 0
}

/// The ELS definition evaluated directly in Double: every target pixel, neighbour and source centre,
/// with the documented border rules (patch clipped to the image around the target; neighbour
/// replicate-padded; source centres outside the image dropped).
func bruteForceLocalDenoise(_ x: RGBImage, set: ConditioningSet, alphaBar: Double, patch: Int, window: Int) -> RGBImage {
    let w = x.width, h = x.height, half = patch / 2
    let s = alphaBar.squareRoot(), variance = 1 - alphaBar
    var out = RGBImage(width: w, height: h)
    for py in 0..<h {
        for px in 0..<w {
            var logits: [Double] = []
            var centres: [(Int, Int, Int)] = []
            for (i, y) in set.images.enumerated() {
                for dy in -window...window {
                    for dx in -window...window {
                        let qy = py + dy, qx = px + dx
                        guard qy >= 0, qy < h, qx >= 0, qx < w else { continue }
                        var d2 = 0.0
                        for ry in max(py - half, 0)...min(py + half, h - 1) {
                            for rx in max(px - half, 0)...min(px + half, w - 1) {
                                let sy = min(max(ry + dy, 0), h - 1), sx = min(max(rx + dx, 0), w - 1)
                                for c in 0..<3 {
                                    let d = Double(x[c, rx, ry]) - s * Double(y[c, sx, sy])
                                    d2 += d * d
                                }
                            }
                        }
                        logits.append(Double(set.logWeights[i]) - d2 / (2 * variance))
                        centres.append((i, qx, qy))
                    }
                }
            }
            let m = logits.max()!
            let weights = logits.map { Foundation_exp($0 - m) }
            let z = weights.reduce(0, +)
            for c in 0..<3 {
                var v = 0.0
                for (j, (i, qx, qy)) in centres.enumerated() { v += weights[j] * Double(set.images[i][c, qx, qy]) }
                out[c, px, py] = Float(v / z)
            }
        }
    }
    return out
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
/// The C library's exp, so the reference does not share code with the implementation under test.
func Foundation_exp(_ x: Double) -> Double { exp(x) }
func libmLog(_ x: Double) -> Double { log(x) }
func libmCos(_ x: Double) -> Double { cos(x) }

/// A denoiser that records the levels it is called at and returns a fixed image.
final class ConstantDenoiser: Denoiser {
    let value: RGBImage
    var levels: [NoiseLevel] = []
    var inputs: [RGBImage] = []
    var width: Int { value.width }
    var height: Int { value.height }
    init(_ value: RGBImage) { self.value = value }
    func denoise(_ x: RGBImage, level: NoiseLevel, into output: inout RGBImage) throws {
        levels.append(level)
        inputs.append(x)
        output = value
    }
}

/// A sticker-like test image: flat discs of random colour on a white background (`RGBImage.discs`).
func stickerImage(side: Int, seed: UInt64) -> RGBImage { RGBImage.discs(side: side, seed: seed) }

/// The local denoiser's prediction for `x` at ᾱ with a fixed patch size and window.
func localPrediction(_ set: ConditioningSet, _ x: RGBImage, alphaBar: Double, patch: Int = 3, window: Int = 1) throws -> RGBImage {
    var out = RGBImage(width: x.width, height: x.height)
    try LocalEquivariantDenoiser(set, configuration: LocalDenoiserConfiguration(patchSchedule: .fixed(patch), window: window))
        .denoise(x, level: NoiseLevel(alphaBar: alphaBar), into: &out)
    return out
}
