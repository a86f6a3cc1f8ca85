import HumeCore

/// An error from the diffusion library: a stable code to branch on and one sentence for a person.
public struct DiffusionError: ReportableError, CustomStringConvertible, Sendable {
    /// The diffusion library refuses bad settings or inputs only: no retry can help.
    public var isPermanent: Bool { true }
    /// What kind of failure this is. Extensible: new codes are added as static members.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The denoiser was given no conditioning (neighbour) images.
        public static let emptyConditioningSet = Code("emptyConditioningSet")
        /// Two images that must have the same width and height do not.
        public static let sizeMismatch = Code("sizeMismatch")
        /// A numeric parameter is outside its allowed range.
        public static let invalidArgument = Code("invalidArgument")
    }

    /// The kind of failure.
    public let code: Code
    /// What was wrong, where, and what is allowed.
    public let message: String

    /// Creates an error with a code and a one-sentence message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
