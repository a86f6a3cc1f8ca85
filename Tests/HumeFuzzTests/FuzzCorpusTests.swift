import Foundation
import HumeCore
import HumeFuzzTargets
import Testing

/// The fuzz targets' seed corpus (Fuzz/corpus/<target>/), and every input libFuzzer has found to crash a target
/// (kept there once fixed), run through the same functions the fuzzer drives: each must return or throw one of
/// Hume's errors. A regression traps and fails the test run.
@Suite("Fuzz corpus replay")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus").path

    @Test("every target has seeds, and every seed runs through its target", arguments: FuzzTargets.names)
    func replay(_ target: String) throws {
        let dir = Self.corpus + "/" + target
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(files.count >= 3, "\(dir) should hold a few seeds")
        for f in files {
            let data = try #require(FileManager.default.contents(atPath: dir + "/" + f), "\(f)")
            FuzzTargets.run(target, [UInt8](data))
        }
    }

    @Test("frames and framed are inverses, so seeds built from real messages decode as those messages")
    func framing() throws {
        let m = Message(.submit, header: .object(["req": JSON(1), "batch": .string("b"), "route": .array([.string("noop")])]),
                        records: [JobSpec(key: "k", params: Array("{}".utf8), data: Array("hi".utf8)).encode()])
        let back = try Message.decode(FuzzTargets.frames(FuzzTargets.framed(m.frames()))[...])
        #expect(back.command == .submit && back.records == m.records && back.header["batch"]?.string == "b")
    }
}
