import HumeCore

/// Where a broker listens: workers, clients and control (ZeroMQ endpoints), and the optional HTTP metrics address.
public struct BrokerEndpoints: Sendable, Equatable {
    public var workers: String
    public var clients: String
    public var control: String
    /// HTTP address ("127.0.0.1:9464") for `/metrics` (Prometheus), `/` (status page) and `/status.json`; nil: none.
    public var metrics: String?

    public init(workers: String = "tcp://127.0.0.1:5555", clients: String = "tcp://127.0.0.1:5556",
                control: String = "tcp://127.0.0.1:5557", metrics: String? = nil) {
        self.workers = workers
        self.clients = clients
        self.control = control
        self.metrics = metrics
    }

    /// Ephemeral loopback ports for all three (the broker picks them and writes them to its ready file).
    public static let ephemeralLoopback = BrokerEndpoints(workers: "tcp://127.0.0.1:*", clients: "tcp://127.0.0.1:*",
                                                          control: "tcp://127.0.0.1:*")

    /// The `hume broker` arguments that bind these endpoints (the metrics address is not among them).
    public var bindArguments: [String] {
        ["--bind-workers", workers, "--bind-clients", clients, "--bind-control", control]
    }

    /// The endpoints a broker wrote to its `--ready-file` once listening (`{"workers", "clients", "control"}`), or nil
    /// when the JSON lacks one of them.
    public init?(readyFile j: JSON) {
        guard let w = j["workers"]?.string, let c = j["clients"]?.string, let k = j["control"]?.string else { return nil }
        self.init(workers: w, clients: c, control: k)
    }
}
