/// The one error type HumeEmbed throws: a code to branch on, a sentence for people, and the
/// underlying failure when there is one.
public struct EmbedError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. Extensible: new codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case fileUnreadable
            case invalidSafeTensors
            case unsupportedDType
            case missingTensor
            case shapeMismatch
            case invalidConfig
            case invalidVocabulary
            case modelNotFound
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// A file could not be opened, stat'ed or mapped.
        public static let fileUnreadable = Code(.fileUnreadable)
        /// A file is not a well-formed safetensors file (truncated, oversize or garbage header, bad ranges).
        public static let invalidSafeTensors = Code(.invalidSafeTensors)
        /// A tensor has a dtype this reader cannot turn into `Float`.
        public static let unsupportedDType = Code(.unsupportedDType)
        /// A weight the model needs is absent from the checkpoint.
        public static let missingTensor = Code(.missingTensor)
        /// A weight has a shape other than the one the config implies.
        public static let shapeMismatch = Code(.shapeMismatch)
        /// `config.json` is missing, unreadable or describes an unsupported model.
        public static let invalidConfig = Code(.invalidConfig)
        /// `vocab.txt` is missing, unreadable or lacks a required special token.
        public static let invalidVocabulary = Code(.invalidVocabulary)
        /// The model directory does not exist or lacks one of its files.
        public static let modelNotFound = Code(.modelNotFound)

        public var description: String { String(describing: wrapped) }
    }

    /// What kind of failure this is.
    public var code: Code
    /// One sentence saying what was wrong, where, and what is allowed.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error & Sendable)?

    public init(code: Code, message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message) (cause: \(cause))" }
        return message
    }
}

/// A failed system call at the C edge: which function failed and the `errno` it left.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    /// The C function that failed, e.g. `"open"`.
    public var function: String
    /// The `errno` value it set.
    public var errno: Int32

    public init(function: String, errno: Int32) {
        self.function = function
        self.errno = errno
    }

    public var description: String {
        #if canImport(Glibc) || canImport(Musl) || canImport(Darwin)
        return "\(function) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        #else
        return "\(function) failed with errno \(errno)"
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
