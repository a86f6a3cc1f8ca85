import Foundation
import Testing
@testable import HumeEmbed

/// Builds a safetensors file: 8-byte little-endian header length, JSON header, data.
private func safetensors(header: String, data: [UInt8]) -> Data {
    var bytes = Data()
    let json = Array(header.utf8)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: json)
    bytes.append(contentsOf: data)
    return bytes
}

private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

/// A valid file: F32 [2,3], F16 [3], BF16 [2], I64 [2] and metadata.
private func goodFile() -> Data {
    let f32: [Float] = [1, -2, 3.5, 0, 1e-3, -7.25]
    let f16: [UInt16] = [0x3C00, 0xC000, 0x0001]   // 1, -2, smallest subnormal 2^-24
    let bf16: [UInt16] = [0x3F80, 0xC0A0]          // 1, -5
    let i64: [Int64] = [7, -1]
    let data = littleEndianBytes(f32.map(\.bitPattern)) + littleEndianBytes(f16) + littleEndianBytes(bf16)
        + littleEndianBytes(i64)
    let header = """
    {"__metadata__":{"format":"pt"},
     "a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},
     "h":{"dtype":"F16","shape":[3],"data_offsets":[24,30]},
     "b":{"dtype":"BF16","shape":[2],"data_offsets":[30,34]},
     "i":{"dtype":"I64","shape":[2],"data_offsets":[34,50]}}
    """
    return safetensors(header: header, data: data)
}

@Suite("SafeTensors reader")
struct SafeTensorsTests {
    private func write(_ data: Data, name: String) throws -> (URL, URL) {
        let dir = try makeTemporaryDirectory()
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return (dir, url)
    }

    private func openError(_ data: Data, name: String) throws -> EmbedError {
        let (dir, url) = try write(data, name: name)
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try SafeTensorsFile(path: url.path)
        } catch let error as EmbedError {
            #expect(error.message.contains(url.path), "the error names the file: \(error.message)")
            return error
        }
        Issue.record("opening \(name) should have failed")
        return EmbedError(code: .fileUnreadable, message: "not thrown")
    }

    @Test("reads dtype, shape and values of F32, F16 and BF16 tensors and the metadata")
    func readsGoodFile() throws {
        let (dir, url) = try write(goodFile(), name: "good.safetensors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = try SafeTensorsFile(path: url.path)
        #expect(file.metadata == ["format": "pt"])
        #expect(Set(file.tensors.keys) == ["a", "h", "b", "i"])
        let a = try file.info("a")
        #expect(a.dtype == .f32)
        #expect(a.shape == [2, 3])
        #expect(a.elementCount == 6)
        #expect(try file.floats("a") == [1, -2, 3.5, 0, 1e-3, -7.25])
        #expect(try file.floats("h") == [1, -2, Float(sign: .plus, exponent: -24, significand: 1)])
        #expect(try file.floats("b") == [1, -5])
        let i = try file.withBytes(of: "i") { bytes in
            (0..<2).map { Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
        }
        #expect(i == [7, -1])
    }

    @Test("asking for an integer tensor as Float or for an absent tensor is a clear error")
    func wrongDTypeAndMissingName() throws {
        let (dir, url) = try write(goodFile(), name: "good.safetensors")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = try SafeTensorsFile(path: url.path)
        let dtypeError = #expect(throws: EmbedError.self) { try file.floats("i") }
        #expect(dtypeError?.code == .unsupportedDType)
        #expect(dtypeError?.message.contains("I64") == true)
        let missing = #expect(throws: EmbedError.self) { try file.floats("nope") }
        #expect(missing?.code == .missingTensor)
        #expect(missing?.message.contains("\"nope\"") == true)
    }

    @Test("a truncated copy is rejected as truncated, naming the file")
    func truncated() throws {
        let good = goodFile()
        // Cut inside the data: the last tensor's range now runs past the end.
        let cutData = try openError(good.prefix(good.count - 5), name: "cut-data.safetensors")
        #expect(cutData.code == .invalidSafeTensors)
        #expect(cutData.message.contains("truncated"))
        // Cut inside the header.
        let cutHeader = try openError(good.prefix(40), name: "cut-header.safetensors")
        #expect(cutHeader.code == .invalidSafeTensors)
        #expect(cutHeader.message.contains("truncated"))
        // Shorter than the length prefix itself.
        let tiny = try openError(good.prefix(3), name: "tiny.safetensors")
        #expect(tiny.code == .invalidSafeTensors)
        #expect(tiny.message.contains("3 bytes"))
    }

    @Test("garbage and foreign files are rejected with what is wrong")
    func garbage() throws {
        // Text: its first 8 bytes read as an enormous header length.
        let text = try openError(Data("This is a README, not a model file at all.\n".utf8), name: "readme.safetensors")
        #expect(text.code == .invalidSafeTensors)
        #expect(text.message.contains("limit"))
        // Plausible length, but the header is not JSON.
        var bytes = Data()
        withUnsafeBytes(of: UInt64(16).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) })
        let binary = try openError(bytes, name: "random.bin")
        #expect(binary.code == .invalidSafeTensors)
        let notJSON = try openError(safetensors(header: "{not json at all}", data: []), name: "badjson.safetensors")
        #expect(notJSON.message.contains("not valid JSON"))
    }

    @Test("inconsistent headers are rejected: size/shape mismatch, reversed ranges, unknown dtype")
    func inconsistentHeaders() throws {
        let mismatch = try openError(safetensors(header: #"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                                                 data: Array(repeating: 0, count: 8)), name: "mismatch.safetensors")
        #expect(mismatch.message.contains("\"x\""))
        #expect(mismatch.message.contains("needs 12"))
        let reversed = try openError(safetensors(header: #"{"x":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#,
                                                 data: Array(repeating: 0, count: 8)), name: "reversed.safetensors")
        #expect(reversed.message.contains("reversed"))
        let dtype = try openError(safetensors(header: #"{"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}"#,
                                              data: [0]), name: "dtype.safetensors")
        #expect(dtype.message.contains("unknown dtype \"Q4\""))
    }

    @Test("a missing file reports the failing system call and errno")
    func missingFile() throws {
        let path = "/nonexistent/hume/model.safetensors"
        let error = #expect(throws: EmbedError.self) { try SafeTensorsFile(path: path) }
        #expect(error?.code == .fileUnreadable)
        #expect(error?.message.contains(path) == true)
        let cause = error?.cause as? SystemCallError
        #expect(cause?.function == "open")
        #expect(cause?.errno == ENOENT)
    }

    @Test("the real checkpoint opens with the tensors the encoder maps")
    func realCheckpoint() throws {
        let directory = try requireModelDirectory()
        let file = try SafeTensorsFile(path: directory.appendingPathComponent("model.safetensors").path)
        #expect(try file.info("embeddings.word_embeddings.weight").shape == [30522, 384])
        #expect(try file.info("encoder.layer.5.output.dense.weight").shape == [384, 1536])
        #expect(file.tensors.keys.allSatisfy { !$0.hasPrefix("bert.") })
    }
}
