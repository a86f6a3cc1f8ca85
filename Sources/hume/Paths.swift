import Foundation
import HumeCore
import HumeTransport

/// This machine's Hume data (`$HUME_HOME`, else `~/.cache/hume`): the one place the executable reads `HUME_HOME`; the
/// libraries take the paths as values.
let humePaths = HumePaths(environment: ProcessInfo.processInfo.environment,
                          userHome: FileManager.default.homeDirectoryForCurrentUser)

/// The CURVE keys of this process's connections to a broker (`HUME_CURVE_KEY` and `HUME_SERVER_KEY`), nil when
/// neither is set: the one place the executable reads them; the libraries take them as values.
func environmentCurve() throws -> CurveClientConfig? {
    try CurveClientConfig.fromEnvironment(ProcessInfo.processInfo.environment)
}
