import Foundation
import HumeCore

/// SVG pictures drawn to PNG by `rsvg-convert` (Debian's librsvg2-bin, which Ops/setup.sh installs), as
/// Ops/build_db.py draws the built-in databases' SVGs: into a 256-pixel box, aspect kept, transparency kept (the PNG
/// decoder composites it on white). Each file is drawn by a process of its own, stopped after `timeout` seconds, so
/// a picture that is slow or crashes the renderer is one refusal and nothing else.
public struct SVGRaster: Sendable {
    /// The box an SVG is drawn into, in pixels (Ops/build_db.py's `RASTER_SIDE`).
    public static let side = 256
    /// The renderer, or nil when none is installed (then SVG pictures are refused, one sentence each, saying how to
    /// install it).
    public var executable: String?
    /// Seconds a drawing may take.
    public var timeout: TimeInterval = 20

    /// `rsvg-convert` found on `PATH` (or in /usr/bin).
    public static func installed() -> SVGRaster {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin"]
        return SVGRaster(executable: dirs.map { $0 + "/rsvg-convert" }.first { FileManager.default.isExecutableFile(atPath: $0) })
    }

    public init(executable: String?) { self.executable = executable }

    /// Whether a file is taken as an SVG picture: by name, `.svg` or `.svgz` (any case).
    public static func isSVG(_ path: String) -> Bool {
        let lower = path.lowercased()
        return lower.hasSuffix(".svg") || lower.hasSuffix(".svgz")
    }

    /// The SVG file at `path` drawn as PNG bytes.
    /// - Parameter relative: the name to say in a refusal.
    /// - Throws: `HumeError(.invalidInput)`, one sentence naming `relative`: no renderer installed, the renderer refused
    ///   the file (its first line of complaint is quoted), or it took longer than `timeout`.
    public func draw(_ path: String, relative: String) throws -> [UInt8] {
        guard let executable else {
            throw HumeError(.invalidInput, "\(relative) is an SVG picture, and SVG pictures are drawn by rsvg-convert, which is not installed; install librsvg2-bin (Ops/setup.sh does) to add it.")
        }
        let r: ProgramRun
        do {
            r = try runProgram(executable, ["--keep-aspect-ratio", "-w", "\(Self.side)", "-h", "\(Self.side)", "-f", "png", path],
                               timeout: timeout, stopSignal: SIGKILL)
        } catch {
            throw HumeError(.system, "Cannot run \(executable) to draw \(relative): \(error).")
        }
        if r.timedOut {
            throw HumeError(.invalidInput, "\(relative) took longer than \(Int(timeout)) s to draw; it is not added.")
        }
        guard r.exited, r.status == 0 else {
            let said = String(decoding: r.stderr, as: UTF8.self).split(separator: "\n").first.map { String($0.prefix(200)) } ?? ""
            let why = said.isEmpty ? "rsvg-convert stopped with status \(r.status)" : "rsvg-convert says \"\(said)\""
            throw HumeError(.invalidInput, "\(relative) is not an SVG picture Hume can draw: \(why).")
        }
        return [UInt8](r.stdout)
    }
}
