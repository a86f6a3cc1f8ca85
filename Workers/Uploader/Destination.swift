/// Where an upload goes: a directory-like prefix that object names are appended to.
///
/// Accepted forms (the `dest` job parameter, `--dest`, `--allow`):
/// - `file:///absolute/dir`
/// - `http://host[:port]/path`, `https://host[:port]/path`
/// - `s3://bucket[/prefix]`
///
/// Path segments may hold only letters, digits and `. _ - ~` (so no encoding is ever needed, and the path S3 signs
/// is the path it receives); `.` and `..` segments are refused, and empty segments (`//`, a trailing `/`) dropped.
/// User names, passwords, queries and fragments are refused: credentials belong in the worker's configuration.
public struct Destination: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case file, http, https, s3
    }

    public var kind: Kind
    /// `host` or `host:port` for http(s) (lower case, default port dropped); the bucket for s3; empty for file.
    public var authority: String
    /// Path segments below the authority (for file: below `/`).
    public var segments: [String]

    /// Parses and normalises a destination URL.
    /// - Throws: `UploadError(.permanent)` with one sentence naming what is wrong and what is allowed.
    public init(parsing text: String) throws {
        let forms = "use file:///dir, http(s)://host/path or s3://bucket/prefix"
        guard let sep = text.range(of: "://") else {
            throw UploadError.permanent("The destination \"\(text)\" is not a URL; \(forms).")
        }
        let scheme = text[..<sep.lowerBound].lowercased()
        guard let kind = Kind(rawValue: scheme) else {
            throw UploadError.permanent("The destination \"\(text)\" has the scheme \"\(scheme)\", which is not supported; \(forms).")
        }
        let rest = text[sep.upperBound...]
        if rest.contains("?") || rest.contains("#") {
            throw UploadError.permanent("The destination \"\(text)\" has a query or fragment; a destination is a plain prefix (\(forms)).")
        }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        let path = rest[slash...]
        self.kind = kind
        switch kind {
        case .file:
            guard authority.isEmpty || authority.lowercased() == "localhost" else {
                throw UploadError.permanent("The destination \"\(text)\" names the host \"\(authority)\"; a file destination is local: file:///absolute/dir.")
            }
            self.authority = ""
        case .http, .https:
            self.authority = try Destination.hostAndPort(authority, scheme: kind, in: text)
        case .s3:
            let bucket = authority
            let ok = (3...63).contains(bucket.count)
                && bucket.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-" }
                && bucket.first != "." && bucket.first != "-" && bucket.last != "." && bucket.last != "-"
            guard ok else {
                throw UploadError.permanent("The destination \"\(text)\" has the bucket name \"\(bucket)\"; a bucket name is 3–63 characters of a–z, 0–9, '.' and '-', starting and ending with a letter or digit.")
            }
            self.authority = bucket
        }
        self.segments = try Destination.segments(of: path, in: text)
        if kind == .file && segments.isEmpty {
            throw UploadError.permanent("The destination \"\(text)\" is the root directory; name a directory such as file:///srv/out.")
        }
    }

    init(kind: Kind, authority: String, segments: [String]) {
        self.kind = kind
        self.authority = authority
        self.segments = segments
    }

    static func hostAndPort(_ authority: String, scheme: Kind, in text: String) throws -> String {
        if authority.contains("@") {
            throw UploadError.permanent("The destination \"\(text)\" carries credentials in the URL; put them in the worker's configuration (--http-header), not in job parameters.")
        }
        var host = Substring(authority)
        var port: Substring?
        if host.hasPrefix("[") {  // [IPv6]:port
            guard let close = host.firstIndex(of: "]") else {
                throw UploadError.permanent("The destination \"\(text)\" has an unterminated IPv6 address.")
            }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") { port = after.dropFirst() } else if !after.isEmpty {
                throw UploadError.permanent("The destination \"\(text)\" has text after its IPv6 address.")
            }
            host = host[...close]
            guard host.dropFirst().dropLast().allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }), host.count > 2 else {
                throw UploadError.permanent("The destination \"\(text)\" has a malformed IPv6 address.")
            }
        } else {
            if let colon = host.firstIndex(of: ":") {
                port = host[host.index(after: colon)...]
                host = host[..<colon]
            }
            let ok = !host.isEmpty && host.count <= 253
                && host.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-" }
            guard ok else {
                throw UploadError.permanent("The destination \"\(text)\" has the host \"\(host)\"; a host is a name or address of letters, digits, '.' and '-'.")
            }
        }
        var out = host.lowercased()
        if let port {
            guard let p = Int(port), (1...65535).contains(p) else {
                throw UploadError.permanent("The destination \"\(text)\" has the port \"\(port)\"; a port is a number from 1 to 65535.")
            }
            let standard = scheme == .http ? 80 : 443
            if p != standard { out += ":\(p)" }
        }
        return out
    }

    static func segments(of path: Substring, in text: String) throws -> [String] {
        var out: [String] = []
        for s in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard s != "." && s != ".." else {
                throw UploadError.permanent("The destination \"\(text)\" has a \"\(s)\" path segment; name the directory directly.")
            }
            guard Destination.isSafeSegment(s) else {
                throw UploadError.permanent("The destination \"\(text)\" has the path segment \"\(s)\"; segments may hold only letters, digits and . _ - ~.")
            }
            out.append(String(s))
        }
        return out
    }

    /// Letters, digits and `. _ - ~`: RFC 3986's unreserved characters, which no layer encodes or decodes.
    static func isSafeSegment(_ s: some StringProtocol) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy(isSafeScalar)
    }

    static func isSafeScalar(_ u: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(u) || ("A"..."Z").contains(u) || ("0"..."9").contains(u) || u == "." || u == "_" || u == "-" || u == "~"
    }

    /// The canonical URL: `file:///a/b`, `https://host:8443/a`, `s3://bucket/a`.
    public var description: String {
        let path = segments.joined(separator: "/")
        switch kind {
        case .file: return "file:///" + path
        default: return "\(kind.rawValue)://\(authority)" + (path.isEmpty ? "" : "/" + path)
        }
    }

    /// The destination of one object below this prefix.
    public func appending(_ name: String) -> Destination {
        Destination(kind: kind, authority: authority, segments: segments + [name])
    }

    /// The file-system path (file destinations).
    public var path: String { "/" + segments.joined(separator: "/") }

    /// The key inside the bucket (s3 destinations).
    public var s3Key: String { segments.joined(separator: "/") }

    /// Whether this destination is `prefix` itself or lies below it (whole segments: `s3://b/out` does not cover
    /// `s3://b/outside`).
    public func isWithin(_ prefix: Destination) -> Bool {
        kind == prefix.kind && authority == prefix.authority && segments.count >= prefix.segments.count
            && Array(segments.prefix(prefix.segments.count)) == prefix.segments
    }
}

/// The destination prefixes a worker may upload under.
///
/// Configured by `--allow URL` (repeatable) or `HUME_UPLOAD_ALLOW` (URLs separated by commas or white space).
/// With neither, the safe default is local only: `file://<working directory>/out`, so a job's parameters can never
/// make a worker send data over the network (or write anywhere else) unless its operator said so.
public struct AllowList: Sendable, CustomStringConvertible {
    public var prefixes: [Destination]

    /// - Throws: `UploadError(.permanent)` naming an entry that is not a valid destination.
    public init(_ entries: [String]) throws {
        prefixes = try entries.map { entry in
            do { return try Destination(parsing: entry) } catch let e as UploadError {
                throw UploadError.permanent("The allowed prefix \"\(entry)\" is invalid: \(e.message.lowercasedFirst)")
            }
        }
    }

    /// Whether `destination` lies within one of the prefixes.
    public func permits(_ destination: Destination) -> Bool {
        prefixes.contains { destination.isWithin($0) }
    }

    public var description: String { prefixes.map(\.description).joined(separator: ", ") }
}
