import Foundation
import HumeCore

/// This machine's Hume data (`$HUME_HOME`, else `~/.cache/hume`): the one place the executable reads `HUME_HOME`; the
/// libraries take the paths as values.
let humePaths = HumePaths(environment: ProcessInfo.processInfo.environment,
                          userHome: FileManager.default.homeDirectoryForCurrentUser)
