import Foundation

/// What a program run to completion by `runProgram` did.
public struct ProgramRun: Sendable {
    /// Its exit status, or the signal that ended it (`exited` false).
    public var status: Int32
    /// Whether it exited by itself (rather than by a signal).
    public var exited: Bool
    /// Whether it outlived the time it was given and was sent the stop signal.
    public var timedOut: Bool
    public var stdout: Data
    public var stderr: Data
}

/// Runs a program to completion, at most `timeout` seconds (then it is sent `stopSignal` and waited for), and returns
/// what it did with its whole stdout and stderr, as bytes. Output goes through temporary files, so a chatty child never
/// blocks on a full pipe; `stdin` is written and closed (none: the child reads end of file at once).
/// - Throws: when the temporary files cannot be made or the program cannot be started.
public func runProgram(_ executable: String, _ arguments: [String], stdin: Data? = nil, cwd: String? = nil,
                       environment: [String: String] = [:], timeout: TimeInterval = 60, stopSignal: Int32 = SIGTERM) throws -> ProgramRun {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let base = NSTemporaryDirectory() + "hume-run-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    let outPath = base + ".out", errPath = base + ".err"
    defer {
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
    }
    guard FileManager.default.createFile(atPath: outPath, contents: nil), FileManager.default.createFile(atPath: errPath, contents: nil),
          let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
        throw HumeError(.system, "Cannot write a temporary file in \(NSTemporaryDirectory()) to run \(executable).")
    }
    defer {
        try? out.close()
        try? err.close()
    }
    let input = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = input
    try p.run()
    if let stdin { input.fileHandleForWriting.write(stdin) }
    try input.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(2_000) }
    let timedOut = p.isRunning
    if timedOut { kill(p.processIdentifier, stopSignal) }
    p.waitUntilExit()
    return ProgramRun(status: p.terminationStatus, exited: p.terminationReason == .exit, timedOut: timedOut,
                      stdout: FileManager.default.contents(atPath: outPath) ?? Data(),
                      stderr: FileManager.default.contents(atPath: errPath) ?? Data())
}
