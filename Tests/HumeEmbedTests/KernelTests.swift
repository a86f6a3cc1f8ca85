import Foundation
import Testing
@testable import HumeEmbed
import HumeLaneMath

@Suite("Numeric kernels")
struct KernelTests {
    @Test("the vectorised erf is within 5e-7 of the exact erf from -6 to 6")
    func erfAccuracy() {
        var worst = 0.0
        var x = -6.0
        while x <= 6.0 {
            let lanes = SIMD8<Float>((0..<8).map { Float(x + Double($0) * 1e-4) })
            let approximations = erfLanes(lanes)
            for lane in 0..<8 {
                worst = max(worst, abs(Double(approximations[lane]) - erf(Double(lanes[lane]))))
            }
            x += 8e-4 + 0.00123
        }
        #expect(worst < 5e-7, "max |erf error| \(worst)")
    }

    @Test("GELU is the erf form, not the tanh approximation, for tails and odd counts")
    func geluExact() {
        let inputs: [Float] = [-8, -3, -1, -0.5, 0, 0.5, 1, 2, 3, 8, 1.25]
        var values = inputs
        values.withUnsafeMutableBufferPointer { gelu($0.baseAddress!, count: $0.count) }
        for (x, y) in zip(inputs, values) {
            let exact = 0.5 * Double(x) * (1 + erf(Double(x) / 2.0.squareRoot()))
            #expect(abs(Double(y) - exact) < 1e-6, "gelu(\(x)) = \(y), exact \(exact)")
        }
        // tanh form gives gelu(1) = 0.8411920; erf form 0.8413447.
        #expect(abs(values[6] - 0.8413447) < 1e-6)
    }

    @Test("the vectorised exp is within 3e-7 relative of exp from -87 to 0, and at most e^-87 below")
    func expAccuracy() {
        var worst = 0.0
        var x = -87.0
        while x <= 0 {
            let lanes = SIMD8<Float>((0..<8).map { Float(min(0, x + Double($0) * 1e-3)) })
            let approximations = LaneMath.exp(lanes)
            for lane in 0..<8 {
                let exact = exp(Double(lanes[lane]))
                worst = max(worst, abs(Double(approximations[lane]) - exact) / exact)
            }
            x += 0.0137
        }
        #expect(worst < 3e-7, "max relative exp error \(worst)")
        #expect(LaneMath.exp(SIMD8<Float>(repeating: -200)).max() <= 1.7e-38)
        #expect(LaneMath.exp(SIMD8<Float>(repeating: -.infinity)).max() <= 1.7e-38)
    }

    @Test("softmax rows sum to 1 and match the scalar definition, for widths with and without a tail")
    func softmax() {
        for width in [1, 7, 8, 13, 64] {
            var values = (0..<(2 * width)).map { Float(sin(Double($0) * 1.7) * 6) }
            let inputs = values
            values.withUnsafeMutableBufferPointer { softmaxRows($0.baseAddress!, rows: 2, width: width) }
            for r in 0..<2 {
                let row = inputs[(r * width)..<((r + 1) * width)].map(Double.init)
                let m = row.max()!
                let z = row.reduce(0) { $0 + exp($1 - m) }
                for j in 0..<width {
                    #expect(abs(Double(values[r * width + j]) - exp(row[j] - m) / z) < 1e-6, "width \(width) row \(r) column \(j)")
                }
            }
        }
    }
}
