import Foundation

/// The environment variable through which a `Child` tells the process it starts who its parent is.
public let parentPIDVariable = "HUME_PARENT_PID"

/// For a process that a Hume parent started (`Child` sets `HUME_PARENT_PID`): once that parent is gone (killed with
/// `-9`, the process is re-parented and `getppid()` changes), send ourselves SIGTERM, so that a broker shuts down and a
/// worker drains and leaves instead of running on as an orphan; SIGKILL ourselves if still alive `grace` seconds later
/// (a draining worker whose broker died with the parent keeps reconnecting; what it held is in the broker's journal and
/// is leased again when a broker runs on it, as after any `kill -9`).
/// Polls once a second on a thread of its own. Does nothing when the variable is absent or not a pid.
///
/// Not `PR_SET_PDEATHSIG`: it fires when the parent *thread* that started the child exits, and `Process.run()` may be
/// called from a dispatch thread that retires when idle, which would stop healthy children.
public func exitWhenParentDies(grace: TimeInterval = 5, environment: [String: String] = ProcessInfo.processInfo.environment) {
    guard let text = environment[parentPIDVariable], let parent = Int32(text), parent > 1 else { return }
    let thread = Thread {
        while getppid() == parent { sleep(1) }
        kill(getpid(), SIGTERM)
        Thread.sleep(forTimeInterval: grace)
        kill(getpid(), SIGKILL)
    }
    thread.name = "parent-watch"
    thread.start()
}
