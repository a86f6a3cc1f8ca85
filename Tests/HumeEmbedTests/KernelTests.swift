import Foundation
import Testing
@testable import HumeEmbed

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
}
