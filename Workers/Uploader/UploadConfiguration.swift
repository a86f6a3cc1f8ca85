import Foundation

/// One HTTP header line sent with every http(s) upload.
public struct HTTPHeader: Hashable, Sendable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// Parses `Name: value`.
    /// - Throws: `UploadError(.permanent)` when the line has no colon, a bad name, or a line break.
    public init(line: String) throws {
        guard let colon = line.firstIndex(of: ":") else {
            throw UploadError.permanent("The header \"\(line)\" has no colon; write it as \"Name: value\".")
        }
        try self.init(checkedName: String(line[..<colon]).trimmingCharacters(in: .whitespaces),
                      value: String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
    }

    /// A header whose name is an HTTP token and whose value has no line breaks.
    init(checkedName name: String, value: String) throws {
        let tokenPunctuation = Set("!#$%&'*+-.^_`|~".unicodeScalars)
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0) || tokenPunctuation.contains($0) }) else {
            throw UploadError.permanent("The header name \"\(name)\" is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~).")
        }
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7f }) else {
            throw UploadError.permanent("The value of header \"\(name)\" contains a control character.")
        }
        self.name = name
        self.value = value
    }
}

/// How an upload worker is configured. Each field names the flag and environment variable it is read from;
/// flags win over the environment, and the environment over the defaults listed here.
public struct UploadConfiguration: Sendable {
    /// `--allow URL` (repeatable) or `HUME_UPLOAD_ALLOW` (comma- or space-separated): the destination prefixes jobs
    /// may upload under. Default: `file://<working directory>/out` only (see `AllowList`).
    public var allowed: AllowList
    /// `--dest URL` or `HUME_UPLOAD_DEST`: the destination of jobs that carry no `dest` parameter. Default: none
    /// (such jobs fail with a sentence saying so).
    public var defaultDestination: String?
    /// `--s3-endpoint URL`, `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`: an S3-compatible endpoint
    /// (`http(s)://host[:port]`), addressed path-style (`endpoint/bucket/key`). Default: none, i.e. AWS itself,
    /// addressed virtual-hosted (`https://bucket.s3.region.amazonaws.com/key`).
    public var s3Endpoint: String?
    /// `--s3-region`, `AWS_REGION` or `AWS_DEFAULT_REGION`. Default `us-east-1`.
    public var s3Region: String = "us-east-1"
    /// `--s3-access-key-id` or `AWS_ACCESS_KEY_ID`.
    public var accessKeyID: String?
    /// `--s3-secret-access-key-file PATH` (the file's first line) or `AWS_SECRET_ACCESS_KEY`.
    public var secretAccessKey: String?
    /// `AWS_SESSION_TOKEN`, for temporary credentials; sent as `X-Amz-Security-Token`.
    public var sessionToken: String?
    /// `--http-header "Name: value"` (repeatable): sent with every http(s) upload, e.g. an `Authorization`.
    public var httpHeaders: [HTTPHeader] = []
    /// `--upload-connect-timeout-ms`: longest wait for a TCP (and TLS) connection. Default 5,000 ms.
    public var connectTimeoutMs: Int = 5_000
    /// `--upload-timeout-ms`: longest one PUT may take, connection included. Default 30,000 ms.
    public var timeoutMs: Int = 30_000
    /// `--upload-attempts`: tries per object inside one task before the task fails retryably to the broker (which backs
    /// off and retries the task up to its `--max-attempts`). Default 3.
    public var attempts: Int = 3
    /// `--upload-backoff-ms`: the pause after the first failed try; it doubles after each further one, up to 4 s.
    /// Default 200 ms.
    public var backoffMs: Int = 200

    /// The built-in defaults: uploads only below `file://<workingDirectory>/out`.
    public init(workingDirectory: String = FileManager.default.currentDirectoryPath) {
        allowed = (try? AllowList(["file://" + workingDirectory + "/out"])) ?? AllowList.empty
    }

    /// The defaults overridden by the environment variables named on each field.
    /// - Throws: `UploadError(.permanent)` for an invalid `HUME_UPLOAD_ALLOW` entry.
    public init(environment: [String: String], workingDirectory: String = FileManager.default.currentDirectoryPath) throws {
        self.init(workingDirectory: workingDirectory)
        func value(_ names: String...) -> String? {
            for n in names { if let v = environment[n]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty { return v } }
            return nil
        }
        if let list = value("HUME_UPLOAD_ALLOW") {
            allowed = try AllowList(list.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
        }
        defaultDestination = value("HUME_UPLOAD_DEST")
        s3Endpoint = value("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        if let r = value("AWS_REGION", "AWS_DEFAULT_REGION") { s3Region = r }
        accessKeyID = value("AWS_ACCESS_KEY_ID")
        secretAccessKey = value("AWS_SECRET_ACCESS_KEY")
        sessionToken = value("AWS_SESSION_TOKEN")
    }

    /// Checks the fields that a job cannot fix, so a misconfigured worker refuses to start rather than failing
    /// every job.
    /// - Throws: `UploadError(.permanent)` with one sentence.
    public func validate() throws {
        if let e = s3Endpoint { _ = try S3Addressing.endpoint(e) }
        guard !s3Region.isEmpty, s3Region.unicodeScalars.allSatisfy({ Destination.isSafeScalar($0) }) else {
            throw UploadError.permanent("The S3 region \"\(s3Region)\" is invalid; it looks like us-east-1.")
        }
        guard connectTimeoutMs > 0, timeoutMs > 0, attempts >= 1, backoffMs >= 0 else {
            throw UploadError.permanent("Upload timeouts must be positive and attempts at least 1.")
        }
        if let d = defaultDestination { _ = try Destination(parsing: d) }
    }
}

extension AllowList {
    /// No prefixes: every upload is refused.
    public static let empty = AllowList(prefixes: [])

    init(prefixes: [Destination]) { self.prefixes = prefixes }
}
