/// Why an upload did not happen: whether a retry may help, one sentence for the job's sender, and the cause.
public struct UploadError: Error, CustomStringConvertible, Sendable {
    /// An extensible classification of the failure.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Bad input, a refused destination, a refused credential, a missing bucket: retrying cannot fix it.
        public static let permanent = Code(rawValue: "permanent")
        /// A timeout, a refused or dropped connection, a 5xx, 408 or 429: a later attempt may succeed.
        public static let retryable = Code(rawValue: "retryable")
    }

    public var code: Code
    /// One sentence: what was wrong, where, and what is allowed.
    public var message: String
    public var cause: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    static func permanent(_ message: String) -> UploadError { UploadError(.permanent, message) }
    static func retryable(_ message: String) -> UploadError { UploadError(.retryable, message) }

    public var description: String { message }
}

/// A failed C call at the file-system edge: the function, the errno it left, and the path.
public struct FileSystemCallError: Error, CustomStringConvertible, Sendable {
    public let function: String
    public let errno: Int32
    public let path: String
    public var description: String { "\(function)(\(path)) failed with errno \(errno)" }
}
