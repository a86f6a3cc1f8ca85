import ArgumentParser
import Foundation
import HumeUploadStage

/// `hume worker upload` flags. Each overrides the environment variable named in its help (see
/// `UploadConfiguration` for every key, type and default).
struct UploadOptions: ParsableArguments {
    @Option(help: ArgumentHelp("upload: a destination prefix jobs may upload under (repeatable), e.g. s3://bucket/out or file:///srv/out. Default: HUME_UPLOAD_ALLOW, else file://<working dir>/out only.", valueName: "url"))
    var allow: [String] = []
    @Option(help: ArgumentHelp("upload: the destination of jobs without a \"dest\" parameter (default: HUME_UPLOAD_DEST).", valueName: "url"))
    var dest: String?
    @Option(help: ArgumentHelp("upload: an S3-compatible endpoint, addressed path-style (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS).", valueName: "url"))
    var s3Endpoint: String?
    @Option(help: "upload: the S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1).")
    var s3Region: String?
    @Option(help: "upload: the S3 access key id (default: AWS_ACCESS_KEY_ID).")
    var s3AccessKeyId: String?
    @Option(help: ArgumentHelp("upload: a file whose first line is the S3 secret access key (default: AWS_SECRET_ACCESS_KEY).", valueName: "path"))
    var s3SecretAccessKeyFile: String?
    @Option(help: ArgumentHelp("upload: a header sent with every http(s) upload, e.g. \"Authorization: Bearer …\" (repeatable).", valueName: "line"))
    var httpHeader: [String] = []
    @Option(help: "upload: longest wait for a connection, ms (default 5000).")
    var uploadConnectTimeoutMs: Int?
    @Option(help: "upload: longest one PUT may take, ms (default 30000).")
    var uploadTimeoutMs: Int?
    @Option(help: "upload: tries per object inside a task before it goes back to the broker (default 3).")
    var uploadAttempts: Int?
    @Option(help: "upload: pause after the first failed try, ms, doubling up to 4 s (default 200).")
    var uploadBackoffMs: Int?

    /// The configuration: defaults, then the environment, then these flags.
    func configuration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> UploadConfiguration {
        var c = try UploadConfiguration(environment: environment)
        if !allow.isEmpty { c.allowed = try AllowList(allow) }
        if let dest { c.defaultDestination = dest }
        if let s3Endpoint { c.s3Endpoint = s3Endpoint }
        if let s3Region { c.s3Region = s3Region }
        if let s3AccessKeyId { c.accessKeyID = s3AccessKeyId }
        if let path = s3SecretAccessKeyFile {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                  let line = text.split(whereSeparator: \.isNewline).first.map({ $0.trimmingCharacters(in: .whitespaces) }), !line.isEmpty
            else { throw UploadError(.permanent, "The S3 secret key file \(path) cannot be read or is empty.") }
            c.secretAccessKey = line
        }
        c.httpHeaders += try httpHeader.map(HTTPHeader.init(line:))
        if let uploadConnectTimeoutMs { c.connectTimeoutMs = uploadConnectTimeoutMs }
        if let uploadTimeoutMs { c.timeoutMs = uploadTimeoutMs }
        if let uploadAttempts { c.attempts = uploadAttempts }
        if let uploadBackoffMs { c.backoffMs = uploadBackoffMs }
        try c.validate()
        return c
    }
}
