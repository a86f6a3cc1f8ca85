import Foundation
import HumeCore
import HumeData
import HumeStages

/// An upload job's parameters (keys, types and defaults listed here, where they are read). The job's other
/// parameters (prompt, seed, …) belong to the earlier stages and are ignored.
public struct UploadParameters: Sendable, Equatable {
    /// `dest` (string): the destination prefix, e.g. `s3://bucket/prefix`, `https://host/dir`, `file:///srv/out`
    /// (see `Destination`). Default: the worker's `--dest` / `HUME_UPLOAD_DEST`; with neither, the job fails.
    public var destination: String
    /// `name` (string, optional): the object's name below `dest`, without `.png` (letters, digits, `. _ - ~`,
    /// at most 200 characters). Default: derived from the job's key (see `UploadStage.objectName`).
    public var name: String?
    /// `headers` (object of strings, optional): extra headers for http(s) destinations only. `Host`,
    /// `Content-Length`, `Content-Type`, `Transfer-Encoding`, `Authorization`, `Expect` and `Connection` are
    /// refused: credentials belong in the worker's configuration.
    public var headers: [HTTPHeader] = []

    static let refusedHeaders: Set<String> = ["host", "content-length", "content-type", "transfer-encoding", "authorization",
                                              "expect", "connection", "proxy-authorization"]

    /// Parses a job's parameter object.
    /// - Throws: `UploadError(.permanent)` naming the bad key and what is allowed.
    public init(json params: [UInt8], defaultDestination: String?) throws {
        var o: [String: JSON] = [:]
        if !params.isEmpty {
            guard let parsed = (try? JSON.parse(params))?.object else {
                throw UploadError.permanent("The job's parameters are not a JSON object; an upload job needs {\"dest\": \"s3://bucket/prefix\"} or similar.")
            }
            o = parsed
        }
        switch o["dest"] {
        case .string(let s)?: destination = s
        case nil, .null?:
            guard let d = defaultDestination else {
                throw UploadError.permanent("The job has no \"dest\" parameter and this upload worker has no default (--dest); send {\"dest\": \"s3://bucket/prefix\"} or similar.")
            }
            destination = d
        default:
            throw UploadError.permanent("The \"dest\" parameter must be a string such as \"s3://bucket/prefix\".")
        }
        switch o["name"] {
        case .string(let s)?:
            let base = s.hasSuffix(".png") ? String(s.dropLast(4)) : s
            guard (1...200).contains(base.count), Destination.isSafeSegment(base), !base.hasPrefix(".") else {
                throw UploadError.permanent("The \"name\" parameter \"\(s)\" is invalid; use 1–200 letters, digits and . _ - ~, not starting with '.'.")
            }
            name = base
        case nil, .null?: name = nil
        default: throw UploadError.permanent("The \"name\" parameter must be a string.")
        }
        switch o["headers"] {
        case .object(let h)?:
            for (k, v) in h.sorted(by: { $0.key < $1.key }) {
                guard let value = v.string else {
                    throw UploadError.permanent("The \"headers\" parameter's value for \"\(k)\" must be a string.")
                }
                guard !Self.refusedHeaders.contains(k.lowercased()) else {
                    throw UploadError.permanent("The \"headers\" parameter may not set \"\(k)\"; the upload stage sets it, or the worker's configuration does.")
                }
                headers.append(try HTTPHeader(checkedName: k, value: value))
            }
        case nil, .null?: break
        default: throw UploadError.permanent("The \"headers\" parameter must be an object of strings, e.g. {\"x-meta\": \"v\"}.")
        }
    }
}

/// The `upload` stage: a stage image (`HIMG`, from `denoise` or `edit`) or a PNG in; the image stored as PNG at
/// the job's destination; `{"url", "bytes", "sha256"}` out (plus `mask_url`, `mask_bytes`, `mask_sha256` for an
/// edit's mask, stored first as a second object).
///
/// Object names are deterministic from the job's key, so a retried or repeated upload overwrites its own object
/// and never makes a second one. Destinations must lie within the worker's allowed prefixes. Retryable failures
/// (timeouts, refused connections, 5xx) are retried in the task with back-off, then handed to the broker as
/// retryable; everything else fails the job at once with the reason in one sentence.
///
/// Each executor thread uses one libcurl handle at a time from a shared pool, so connections are reused across
/// tasks. All transfers block the runtime's executor threads, never the cooperative pool.
public final class UploadStage: Stage {
    public let name: String
    public let batchSize = 1
    public let concurrency: Int
    public let configuration: UploadConfiguration
    let store: ObjectStore
    let statisticsBox = StatisticsBox()

    /// Limits on a PNG input (the broker already caps a blob at 32 MiB).
    static let pngLimits = PictureLimits(maxDimension: 8192, maxBytes: 32 << 20)

    /// - Throws: `UploadError(.permanent)` when the configuration is invalid.
    public init(name: String = "upload", configuration: UploadConfiguration, concurrency: Int = 1) throws {
        try configuration.validate()
        self.name = name
        self.concurrency = max(1, concurrency)
        self.configuration = configuration
        store = ObjectStore(configuration: configuration, pool: CurlPool(), statistics: statisticsBox)
    }

    /// Counters since start.
    public var statistics: UploadStatistics { statisticsBox.snapshot }

    public func run(_ tasks: [StageTask]) throws -> [StageOutcome] {
        tasks.map(upload)
    }

    /// Uploads one task's image.
    public func upload(_ task: StageTask) -> StageOutcome {
        do {
            let parameters = try UploadParameters(json: task.params, defaultDestination: configuration.defaultDestination)
            let destination = try Destination(parsing: parameters.destination)
            guard configuration.allowed.permits(destination) else {
                let allowed = configuration.allowed.prefixes.isEmpty ? "none are configured" : "allowed: \(configuration.allowed)"
                throw UploadError.permanent("The destination \(destination) is outside this worker's allowed prefixes (\(allowed)); the operator sets them with --allow or HUME_UPLOAD_ALLOW.")
            }
            if !parameters.headers.isEmpty && destination.kind != .http && destination.kind != .https {
                throw UploadError.permanent("The \"headers\" parameter applies only to http(s) destinations, not to \(destination.kind.rawValue)://.")
            }
            let encoded = try UploadStage.encode(task.input)
            let base = parameters.name ?? UploadStage.objectName(key: task.key, jobID: task.jobID)
            var result: [String: JSON] = [:]
            // The mask first: once the image exists, its mask does too.
            if let mask = encoded.mask {
                let object = destination.appending(base + ".mask.png")
                let digest = SHA256.hex(mask)
                try store.store(mask, sha256: digest, at: object, headers: parameters.headers)
                result["mask_url"] = .string(object.description)
                result["mask_bytes"] = JSON(mask.count)
                result["mask_sha256"] = .string(digest)
            }
            let object = destination.appending(base + ".png")
            let digest = SHA256.hex(encoded.png)
            try store.store(encoded.png, sha256: digest, at: object, headers: parameters.headers)
            result["url"] = .string(object.description)
            result["bytes"] = JSON(encoded.png.count)
            result["sha256"] = .string(digest)
            result["width"] = JSON(encoded.width)
            result["height"] = JSON(encoded.height)
            return .ok(JSON.object(result).bytes)
        } catch let e as UploadError {
            return e.code == .permanent ? .permanent(e.message) : .retryable(e.message)
        } catch {
            return .retryable("The upload failed unexpectedly: \(error).")
        }
    }

    // MARK: Object names

    /// The object's base name (without `.png`) for a job: its key itself when the key is already a safe name
    /// (1–128 letters, digits and `. _ - ~`, not starting with '.'); otherwise the key with every other character
    /// replaced by `_`, cut to 80 characters, plus `-` and the first 16 hex digits of the key's SHA-256, so two
    /// different keys never share a name. Keys are unique per broker journal, so names are too.
    public static func objectName(key: String, jobID: UInt64) -> String {
        if key.isEmpty { return "job-\(jobID)" }
        if (1...128).contains(key.utf8.count), Destination.isSafeSegment(key), !key.hasPrefix(".") { return key }
        var safe = String(mapScalars(key) { Destination.isSafeScalar($0) ? $0 : "_" }.prefix(80))
        if safe.hasPrefix(".") { safe = "_" + safe.dropFirst() }
        return safe + "-" + String(SHA256.hex(Array(key.utf8)).prefix(16))
    }

    // MARK: Encoding

    /// The bytes to store for one input.
    public struct Encoded: Sendable {
        public var png: [UInt8]
        public var mask: [UInt8]?
        public var width: Int
        public var height: Int
    }

    /// PNG-encodes a stage image (its metadata fields as text chunks, its mask as a second PNG), or checks that a
    /// PNG input decodes and passes it through unchanged.
    /// - Throws: `UploadError(.permanent)` with one sentence when the input is neither, or is corrupt.
    public static func encode(_ input: [UInt8]) throws -> Encoded {
        if PNGCodec.isPNG(input) {
            do {
                _ = try PNGCodec.textChunks(input)  // chunk structure and CRCs
                let image = try PNGCodec.decode(input, limits: pngLimits)  // pixels
                return Encoded(png: input, mask: nil, width: image.width, height: image.height)
            } catch let e as HumeError {
                throw UploadError.permanent("The upload input is a corrupt PNG: \(e.message.dropLastPeriod.lowercasedFirst).")
            }
        }
        guard input.starts(with: Array("HIMG".utf8)) else {
            let head = input.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")
            let what = input.isEmpty ? "is empty" : "starts with the bytes \(head)"
            throw UploadError.permanent("The upload input is neither a Hume stage image (HIMG) nor a PNG: it \(what); the upload stage takes the denoise or edit stage's output, or a PNG.")
        }
        let image: StageImage
        do { image = try StageImage(decoding: input) } catch let e as StageImageError {
            throw UploadError.permanent("The upload input is a corrupt stage image: \(e.message.dropLastPeriod).")
        }
        guard image.width > 0, image.height > 0 else {
            throw UploadError.permanent("The upload input is a stage image of \(image.width)×\(image.height) pixels; both sides must be at least 1.")
        }
        let metadata: [String: JSON]
        if image.metadata.isEmpty { metadata = [:] } else {
            guard let o = (try? JSON.parse(image.metadata))?.object else {
                throw UploadError.permanent("The upload input's stage-image metadata is not a JSON object.")
            }
            metadata = o
        }
        let (latin1, utf8) = textChunks(metadata)
        var png: [UInt8]
        do {
            png = try PNGCodec.encode(PixelImage(width: image.width, height: image.height, channels: 3, pixels: image.pixels),
                                      metadata: latin1)
        } catch let e as HumeError {
            throw UploadError.permanent("The upload stage could not PNG-encode the stage image: \(e.message.dropLastPeriod.lowercasedFirst).")
        }
        insertInternationalText(utf8, into: &png)
        var maskPNG: [UInt8]?
        if let mask = image.mask {
            guard mask.channels == 1, mask.width == image.width, mask.height == image.height else {
                throw UploadError.permanent("The upload input's MASK section is \(mask.width)×\(mask.height)×\(mask.channels); it must be one channel of the image's \(image.width)×\(image.height).")
            }
            var rgb = [UInt8](repeating: 0, count: mask.pixels.count * 3)
            for (i, v) in mask.pixels.enumerated() { rgb[3 * i] = v; rgb[3 * i + 1] = v; rgb[3 * i + 2] = v }
            maskPNG = try PNGCodec.encode(PixelImage(width: mask.width, height: mask.height, channels: 3, pixels: rgb),
                                          metadata: [("Software", software),
                                                     ("Comment", "Edit mask: white = edited, black = kept from the source.")])
        }
        return Encoded(png: png, mask: maskPNG, width: image.width, height: image.height)
    }

    static let software = "Hume (retrieval-augmented diffusion)"

    /// The text chunks for a stage image's metadata: `Software`, then every metadata field in key order, strings as
    /// they are and other values as compact JSON (`neighbours` → `[3,1,4]`). Values that Latin-1 cannot hold (a
    /// prompt with emoji, say) go in `iTXt` chunks (UTF-8) instead of `tEXt`, so nothing is lost.
    static func textChunks(_ metadata: [String: JSON]) -> (latin1: [(String, String)], utf8: [(String, String)]) {
        var latin1: [(String, String)] = [("Software", software)]
        var utf8: [(String, String)] = []
        for key in metadata.keys.sorted() {
            var k = String(mapScalars(key) { $0.value >= 32 && $0.value <= 126 ? $0 : "_" }.prefix(79))
            if k.isEmpty { k = "_" }
            let v = metadata[key]!
            let text = v.string ?? v.serialized
            if text.unicodeScalars.allSatisfy({ $0.value < 256 && $0.value != 0 }) { latin1.append((k, text)) } else { utf8.append((k, text)) }
        }
        return (latin1, utf8)
    }

    /// Inserts `iTXt` chunks (uncompressed UTF-8, no language tag) right after `IHDR`.
    static func insertInternationalText(_ entries: [(String, String)], into png: inout [UInt8]) {
        guard !entries.isEmpty else { return }
        var chunks: [UInt8] = []
        for (k, v) in entries {
            let data = Array(k.utf8) + [0, 0, 0, 0, 0] + Array(v.utf8)  // keyword\0, flag 0, method 0, lang\0, key\0
            let type = Array("iTXt".utf8)
            let n = UInt32(data.count)
            chunks += [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + type + data
            let c = PNGCodec.crc32(type + data)
            chunks += [UInt8(c >> 24), UInt8(c >> 16 & 0xff), UInt8(c >> 8 & 0xff), UInt8(c & 0xff)]
        }
        png.insert(contentsOf: chunks, at: 33)  // signature 8 + IHDR 25
    }
}

/// `s` with each Unicode scalar replaced by `transform`'s.
func mapScalars(_ s: String, _ transform: (Unicode.Scalar) -> Unicode.Scalar) -> String {
    var out = String.UnicodeScalarView()
    for u in s.unicodeScalars { out.append(transform(u)) }
    return String(out)
}

extension String {
    var lowercasedFirst: String {
        guard let f = first, f.isUppercase, dropFirst().first?.isUppercase != true else { return self }
        return f.lowercased() + dropFirst()
    }
}
