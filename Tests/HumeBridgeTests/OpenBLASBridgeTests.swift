import COpenBLAS
import Testing

@Suite("COpenBLAS bridge")
struct OpenBLASBridgeTests {
    @Test("cblas_sgemm multiplies two 2x2 matrices like the hand computation")
    func sgemm2x2() {
        // [1 2] [5 6]   [1*5+2*7 1*6+2*8]   [19 22]
        // [3 4] [7 8] = [3*5+4*7 3*6+4*8] = [43 50]
        let a: [Float] = [1, 2, 3, 4]
        let b: [Float] = [5, 6, 7, 8]
        var c: [Float] = [100, 100, 100, 100]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 2, 2, 1, a, 2, b, 2, 0, &c, 2)
        #expect(c == [19, 22, 43, 50])

        // Transposing A with beta = 1 adds Aᵀ·B = [1 3; 2 4]·B = [26 30; 38 44] onto C.
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 2, 2, 2, 1, a, 2, b, 2, 1, &c, 2)
        let expected: [Float] = [45, 52, 81, 94]
        #expect(c == expected)
    }

    @Test("the OpenBLAS thread count can be capped")
    func threadCap() {
        hume_openblas_set_threads(1)
        #expect(hume_openblas_get_threads() == 1)
    }
}
