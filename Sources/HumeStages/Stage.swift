import HumeCore

/// One task as a stage sees it: the broker's TASK record (PROTOCOL.md §5.5) as it arrived: `lease`, `jobID`, `attempt`,
/// `key`, `params` (the job's JSON object, possibly empty) and `input` (the previous stage's output, or the job's data
/// for the first stage).
public typealias StageTask = TaskRecord

/// What a stage made of one task.
public enum StageOutcome: Sendable, Equatable {
    case ok([UInt8])
    /// A retry may succeed; the broker backs off and retries, then dead-letters.
    case retryable(String)
    /// Bad input: the job fails at once with this sentence.
    case permanent(String)
}

/// A kind of work a worker process does. The runtime handles the broker, credit, heartbeats, reconnects and
/// draining; a stage only turns tasks into outcomes.
public protocol Stage: Sendable {
    /// The stage name the worker announces (it must be one the broker serves).
    var name: String { get }
    /// Tasks handed to one `run` call (the embedder batches; most stages take 1).
    var batchSize: Int { get }
    /// Threads running `run` concurrently. The worker's credit is `batchSize × concurrency + prefetch`.
    var concurrency: Int { get }
    /// Tasks the worker may hold beyond those it runs, so the next batch is already there when one finishes and the
    /// broker and the worker overlap instead of taking turns. Default: one batch per thread for stages that batch
    /// (`batchSize > 1`: fast bulk work), none for one-task-at-a-time stages, whose tasks are better left in the
    /// broker's queue for whichever replica frees first (an idle replica is never starved by a busy one hoarding).
    var prefetch: Int { get }
    /// Runs a batch of tasks, one outcome per task in order (`StageOutcome.of` maps a task's error). Runs on a runtime
    /// thread of its own: blocking here (BLAS, curl, sleeping) is fine. Throwing fails a one-task batch with
    /// `StageOutcome(error:)` and a larger batch as retryable.
    func run(_ tasks: [StageTask]) throws -> [StageOutcome]
}

extension Stage {
    public var prefetch: Int { batchSize > 1 ? batchSize * max(1, concurrency) : 0 }
}

extension StageOutcome {
    /// The outcome for a task whose work threw, decided in this one place: an error that reports itself
    /// (`ReportableError`: bad input, a malformed payload, an unknown database) fails the job permanently with its
    /// sentence, or is retried when it says a retry may help; any other error (a missing file on this host, a system
    /// failure) is retryable, so another attempt or worker may succeed.
    public init(error: any Error) {
        if let e = error as? any ReportableError {
            self = e.isPermanent ? .permanent(e.message) : .retryable(e.message)
        } else {
            self = .retryable("\(error)")
        }
    }

    /// Runs `work` for one task and maps what it throws with `init(error:)`.
    public static func of(_ work: () throws -> [UInt8]) -> StageOutcome {
        do { return .ok(try work()) } catch { return StageOutcome(error: error) }
    }
}

/// Bad input to a stage: one sentence for whoever sent the job. Always permanent.
public struct StageInputError: ReportableError, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var isPermanent: Bool { true }
}
