import Foundation
import HumeBroker
import HumeClient
import HumeCore
import HumeStages
import HumeData
import HumeDenoiseStage
import HumeEditStage
import HumeEmbed
import HumeEmbedStage
import HumeRetrieveStage
import HumeUploadStage

/// The fuzz targets (issue 16): every decoder that reads bytes from outside the process. Each takes any bytes and
/// must return a value or throw one of Hume's errors; anything else (a trap, another error type) is a bug. The
/// same functions run under libFuzzer (`Fuzz/`, `Ops/fuzz.sh`) and replay the seed corpus in the unit tests.
public enum FuzzTargets {
    public static let names = ["wire", "params", "payloads", "png", "safetensors", "joblines"]

    /// Runs target `name` on `data`.
    public static func run(_ name: String, _ data: [UInt8]) {
        switch name {
        case "wire": wire(data)
        case "params": params(data)
        case "payloads": payloads(data)
        case "png": png(data)
        case "safetensors": safetensors(data)
        case "joblines": joblines(data)
        default: fatalError("Unknown fuzz target \(name); the targets are \(names.joined(separator: ", ")).")
        }
    }

    /// Calls `body`; a thrown error must be one of Hume's.
    static func expectHumeErrors<T>(_ what: String, _ body: () throws -> T) {
        do { _ = try body() } catch {
            switch error {
            case is any ReportableError, is EmbedError, is UploadError: break
            default: fatalError("\(what) threw \(type(of: error)), not one of Hume's errors: \(error)")
            }
        }
    }

    /// Splits fuzz bytes into frames: each a little-endian u16 length and that many bytes (the last takes what is left).
    public static func frames(_ data: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 0
        while i < data.count && out.count < 64 {
            guard i + 2 <= data.count else { out.append(Array(data[i...])); break }
            let n = Int(data[i]) | Int(data[i + 1]) << 8
            let end = min(data.count, i + 2 + n)
            out.append(Array(data[(i + 2)..<end]))
            i = end
        }
        return out
    }

    /// The inverse of `frames`, for building seeds from real messages.
    public static func framed(_ frames: [[UInt8]]) -> [UInt8] {
        frames.flatMap { f in [UInt8(f.count & 0xFF), UInt8(f.count >> 8 & 0xFF)] + f }
    }

    /// The wire: a message from framed bytes (envelope, command, header JSON), each of its records through every
    /// record decoder, and the raw bytes through every record decoder too.
    public static func wire(_ data: [UInt8]) {
        let fs = frames(data)
        var records: [[UInt8]] = [data]
        expectHumeErrors("Message.decode") {
            let m = try Message.decode(fs[...])
            records += m.records
            _ = m.header.serialized
        }
        for r in records.prefix(64) {
            expectHumeErrors("JobSpec.decode") { try JobSpec.decode(r, index: 0, maxBytes: 1 << 20) }
            expectHumeErrors("AckRecord.decode") { try AckRecord.decode(r) }
            expectHumeErrors("ResultRecord.decode") { try ResultRecord.decode(r) }
            expectHumeErrors("TaskRecord.decode") { try TaskRecord.decode(r) }
            expectHumeErrors("DoneRecord.decode") { try DoneRecord.decode(r, index: 0, maxBytes: 1 << 20) }
        }
    }

    /// Every stage's job parameters.
    public static func params(_ data: [UInt8]) {
        expectHumeErrors("GenerateParameters") { try GenerateParameters(json: data) }
        expectHumeErrors("EditParameters") { try EditParameters(json: data) }
        expectHumeErrors("UploadParameters") { try UploadParameters(json: data, defaultDestination: "file:///tmp/hume-fuzz-out") }
        expectHumeErrors("JSON.parse") { try JSON.parse(data) }
    }

    /// What stages hand each other: the embed input and output, the neighbours (the retrieve answer), the
    /// stage image (as the next stage and the broker's status page read it).
    public static func payloads(_ data: [UInt8]) {
        expectHumeErrors("EmbedOutput") { try EmbedOutput(decoding: data) }
        expectHumeErrors("Neighbours") { try Neighbours(decoding: data) }
        expectHumeErrors("EmbedInput") { try EmbedInput.text(params: data, data: []).get() }
        expectHumeErrors("StageImage") { try StageImage(decoding: data) }
        _ = RecentImage(job: 1, key: "k", stage: "denoise", body: data)
    }

    /// The picture decoders: PNG (libpng behind limits) and its text-chunk reader, and JPEG (libjpeg-turbo behind
    /// limits, and the EXIF orientation reader).
    public static func png(_ data: [UInt8]) {
        expectHumeErrors("JPEGCodec.decode") { try JPEGCodec.decode(data, limits: PictureLimits(maxDimension: 1024, maxBytes: 16 << 20)) }
        _ = JPEGCodec.orientation(data)
        expectHumeErrors("PNGCodec.decode") { try PNGCodec.decode(data, limits: PictureLimits(maxDimension: 1024, maxBytes: 16 << 20)) }
        expectHumeErrors("PNGCodec.decode alpha") { try PNGCodec.decode(data, alpha: true, limits: PictureLimits(maxDimension: 1024, maxBytes: 16 << 20)) }
        expectHumeErrors("PNGCodec.textChunks") { try PNGCodec.textChunks(data) }
        expectHumeErrors("StageImage.metadata") { try StageImage.metadata(fromPNG: data) }
    }

    /// The safetensors reader: the bytes as a file (it maps files), every tensor read back.
    public static func safetensors(_ data: [UInt8]) {
        let path = scratchFile
        guard FileManager.default.createFile(atPath: path, contents: Data(data)) else { fatalError("cannot write \(path)") }
        expectHumeErrors("SafeTensorsFile") {
            let file = try SafeTensorsFile(path: path)
            for name in file.tensors.keys.sorted().prefix(16) {
                expectHumeErrors("SafeTensorsFile.floats") { try file.floats(name) }
            }
        }
    }
    static let scratchFile = (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory())
        + "/hume-fuzz-\(getpid()).safetensors"

    /// One line of a job file. `data_file` would read whatever path the line names, so lines are parsed relative to
    /// an empty directory.
    public static func joblines(_ data: [UInt8]) {
        let line = String(decoding: data, as: UTF8.self)
        expectHumeErrors("JobLines.parse") { try JobLines.parse(line, batch: "fuzz", line: 1, baseDirectory: emptyDirectory) }
    }
    static let emptyDirectory: String = {
        let d = NSTemporaryDirectory() + "hume-fuzz-empty-\(getpid())"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()
}
