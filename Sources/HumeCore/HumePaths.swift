import Foundation

/// Where Hume keeps its data on a machine: `$HUME_HOME`, or `~/.cache/hume` when it is unset. Libraries take these
/// paths as values; only the executable (and the test suites) read the environment to make them.
public struct HumePaths: Sendable, Equatable {
    /// The data root.
    public var home: URL

    public init(home: URL) { self.home = home }

    /// The paths for an environment: `HUME_HOME` when set and not empty, else `<userHome>/.cache/hume`.
    public init(environment: [String: String], userHome: URL) {
        if let h = environment["HUME_HOME"], !h.isEmpty {
            home = URL(fileURLWithPath: h)
        } else {
            home = userHome.appendingPathComponent(".cache/hume")
        }
    }

    /// The image databases, one folder each (Ops/DATABASES.md).
    public var databases: URL { home.appendingPathComponent("db") }
    /// The text model (all-MiniLM-L6-v2).
    public var model: URL { home.appendingPathComponent("models/all-MiniLM-L6-v2") }
}
