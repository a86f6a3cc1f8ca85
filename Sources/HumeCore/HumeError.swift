/// An error Hume reports to a user or a peer: a machine-readable code, one clear sentence, and an optional cause.
public struct HumeError: Error, CustomStringConvertible, Sendable {
    /// An extensible error code; codes travel on the wire as their `rawValue`.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The request was malformed: bad frames, bad header, bad record.
        public static let badRequest = Code(rawValue: "bad_request")
        /// The peer speaks another protocol version.
        public static let badVersion = Code(rawValue: "bad_version")
        /// Something is larger than the configured limit.
        public static let tooLarge = Code(rawValue: "too_large")
        /// The stage, command, database or destination is not known.
        public static let unknown = Code(rawValue: "unknown")
        /// The broker cannot take more work from this sender right now; retry later.
        public static let busy = Code(rawValue: "busy")
        /// A worker was told to re-announce itself (the broker does not know it).
        public static let unknownWorker = Code(rawValue: "unknown_worker")
        /// A system call or C library call failed.
        public static let system = Code(rawValue: "system")
        /// The journal (SQLite) failed.
        public static let journal = Code(rawValue: "journal")
        /// A task failed in a way that retrying cannot fix (bad input).
        public static let permanent = Code(rawValue: "permanent")
        /// A task failed in a way that a retry may fix.
        public static let retryable = Code(rawValue: "retryable")
        /// The operation timed out.
        public static let timeout = Code(rawValue: "timeout")
        /// Invalid user input on the command line or in a file.
        public static let invalidInput = Code(rawValue: "invalid_input")
    }

    public var code: Code
    public var message: String
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message) (\(cause))" }
        return message
    }
}

/// A failed C call: the function's name and the errno it left.
public struct SystemCallError: Error, CustomStringConvertible, Sendable {
    public let function: String
    public let errno: Int32
    public let detail: String
    public init(_ function: String, errno: Int32, detail: String) {
        self.function = function
        self.errno = errno
        self.detail = detail
    }
    public var description: String { "\(function) failed: \(detail) (errno \(errno))" }
}

/// An error that says, in one sentence for whoever sent the request, what was wrong, and whether a retry could help.
/// The stages' errors conform; `StageOutcome(error:)` (HumeStages) turns any of them into a task outcome, in one place.
public protocol ReportableError: Error {
    /// One sentence for the sender.
    var message: String { get }
    /// True when no retry can succeed (bad input: the job fails at once); false when another attempt may.
    var isPermanent: Bool { get }
}

extension HumeError: ReportableError {
    /// The codes that describe the request rather than this host: bad input, an unknown name, a size over a limit.
    public static let permanentCodes: Set<Code> = [.permanent, .invalidInput, .unknown, .tooLarge, .badRequest]
    public var isPermanent: Bool { HumeError.permanentCodes.contains(code) }
}
