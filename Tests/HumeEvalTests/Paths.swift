import Foundation
import HumeCore

/// This machine's Hume data as the executable finds it (`HUME_HOME`, else ~/.cache/hume): the suites read the
/// environment; the libraries they test take the paths as values.
let testPaths = HumePaths(environment: ProcessInfo.processInfo.environment,
                          userHome: FileManager.default.homeDirectoryForCurrentUser)
