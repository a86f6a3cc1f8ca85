import Foundation
import HumeCore

/// Runs a program to completion, at most `timeout` seconds (then it is terminated), and returns its exit status,
/// stdout and stderr as text (`runProgram`, which gives them as bytes).
@discardableResult
public func runProcess(_ executable: String, _ arguments: [String], stdin: String? = nil, cwd: String? = nil,
                       environment: [String: String] = [:], timeout: TimeInterval = 60) throws -> (Int32, String, String) {
    let r = try runProgram(executable, arguments, stdin: stdin.map { Data($0.utf8) }, cwd: cwd, environment: environment, timeout: timeout)
    return (r.status, String(decoding: r.stdout, as: UTF8.self), String(decoding: r.stderr, as: UTF8.self))
}
