import Foundation
import HumeCore
import HumeData
import HumeStages

/// Runs one job through `stages` in this process, each stage's output being the next one's input: the payloads the
/// broker carries between workers (PROTOCOL.md, "Stage payloads"), so a one-shot command or an evaluation makes what
/// the fleet makes.
/// - Returns: the last stage's output.
/// - Throws: `HumeError` with the refusing stage's sentence.
public func runStages(_ stages: [any Stage], params: [UInt8], data: [UInt8]) throws -> [UInt8] {
    var input = data
    for stage in stages {
        let task = StageTask(lease: 1, jobID: 1, attempt: 1, key: "one-shot", params: params, input: input)
        switch try stage.run([task]).first {
        case .ok(let bytes): input = bytes
        case .permanent(let m), .retryable(let m): throw HumeError(.permanent, "Stage \(stage.name) refused the job: \(m)")
        case nil: throw HumeError(.system, "Stage \(stage.name) returned no outcome.")
        }
    }
    return input
}

/// A contact sheet: rows of equally sized RGB8 tiles (short rows padded with white) with a 2-pixel white gutter.
public func contactSheet(rows: [[[UInt8]]], side: Int) throws -> PixelImage {
    let columns = max(1, rows.map(\.count).max() ?? 1)
    let white = [UInt8](repeating: 255, count: side * side * 3)
    let tiles = rows.flatMap { $0 + Array(repeating: white, count: columns - $0.count) }
    return try ContactSheet.compose(tiles, side: side, columns: columns, gutter: 2)
}

/// Writes `contactSheet(rows:side:)` as a PNG.
/// - Throws: `HumeError` when the tiles are inconsistent or the file cannot be written.
public func writeSheet(_ path: String, rows: [[[UInt8]]], side: Int) throws {
    let s = try contactSheet(rows: rows, side: side)
    let png = try PNGCodec.encode(PixelImage(width: s.width, height: s.height, channels: 3, pixels: s.pixels))
    do { try Data(png).write(to: URL(fileURLWithPath: path)) } catch {
        throw HumeError(.system, "could not write \(path): \(error.localizedDescription)")
    }
}

/// The median (the upper one of an even count); NaN for none.
public func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.isEmpty ? .nan : s[s.count / 2] }
