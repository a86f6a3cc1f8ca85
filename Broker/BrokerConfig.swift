import HumeCore

/// How a broker behaves. Every field has a documented default; `hume broker` exposes each as a flag.
public struct BrokerConfig: Sendable {
    /// Stage names the broker accepts in routes (default: the five real stages plus `noop` and `noop1`…`noop5`).
    public var stages: [String] = BrokerConfig.defaultStages
    /// Most jobs waiting in or leased from one stage (default 20,000).
    public var queueCapacity: Int = 20_000
    /// Most bytes (inputs + params) held for one stage (default 256 MiB).
    public var queueBytes: Int = 256 << 20
    /// Most unfinished jobs one client connection may have (default 10,000).
    public var clientWindow: Int = 10_000
    /// Most jobs per second one client connection may submit, on average (default 0: unlimited). A token bucket
    /// with one second of burst; a SUBMIT is accepted while the bucket is not empty and may take it into debt, so
    /// any chunk size works and the long-run rate still holds.
    public var clientRate: Double = 0
    /// Failed attempts at one stage before a job is dead-lettered (default 5).
    public var maxAttempts: Int = 5
    /// First retry delay; doubles each attempt up to `retryMaxMs` (defaults 100 ms and 5 s).
    public var retryBaseMs: UInt64 = 100
    public var retryMaxMs: UInt64 = 5_000
    /// How often workers heartbeat (default 1 s) and how long silence expires a worker's leases (default 5 s).
    public var heartbeatMs: UInt64 = 1_000
    public var workerTimeoutMs: UInt64 = 5_000
    /// Largest params, data or output blob accepted (default 32 MiB).
    public var maxBlobBytes: Int = 32 << 20
    /// Most jobs in one SUBMIT message (default 10,000).
    public var maxJobsPerSubmit: Int = 10_000
    /// How long an ended job (done, failed, cancelled or expired) is kept after it ended, in ms; nil keeps every job
    /// forever. Default 7 days. A forgotten job's result, status and key are gone: its id is unknown, and its key
    /// submitted again makes a new job.
    public var keepEndedMs: UInt64? = 7 * 24 * 3_600_000
    /// Most ended jobs forgotten in one loop round (a round with more to forget is followed by another at once).
    public var forgetPerRound: Int = 2_000

    public static let defaultStages = ["embed", "retrieve", "denoise", "edit", "upload", "noop", "noop1", "noop2", "noop3",
                                       "noop4", "noop5"]

    public init() {}
}
