import Foundation
import HumeCore

/// A read-only memory-mapped file. The mapping lives as long as the object.
final class MappedFile: @unchecked Sendable {
    // Safe to share: the mapping is read-only and never changes or moves until deinit.
    let base: UnsafeRawPointer?
    let count: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw HumeError(.system, "Cannot open \(path): \(String(cString: strerror(errno))).")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw HumeError(.system, "Cannot stat \(path): \(String(cString: strerror(errno))).")
        }
        count = Int(st.st_size)
        if count == 0 { base = nil; return }
        guard let p = mmap(nil, count, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw HumeError(.system, "Cannot memory-map \(path): \(String(cString: strerror(errno))).")
        }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), count) }
    }
}

/// The square RGB8 images of one database at one size (`images32.rgb`, `images64.rgb` or `images128.rgb`), memory-mapped.
///
/// Image `i` is `side × side × 3` bytes, row-major (y, x, channel), at byte offset `i · side² · 3`.
public final class ImageStore: Sendable {
    /// Side of every image in pixels.
    public let side: Int
    /// Number of images.
    public let count: Int
    /// Bytes per image (`side² · 3`).
    public var bytesPerImage: Int { side * side * 3 }
    let file: MappedFile
    let path: String

    /// Maps the store at `path` holding images of `side`² pixels.
    /// - Parameters:
    ///   - expectedCount: when given, the file must hold exactly this many images;
    ///   - allowTail: or, when true, at least that many (a grown database's uncommitted tail), of which the store
    ///     shows only the first `expectedCount`.
    /// - Throws: `HumeError` when the file cannot be mapped or its size is not a whole number of images.
    public init(path: String, side: Int, expectedCount: Int? = nil, allowTail: Bool = false) throws {
        precondition(side > 0)
        self.side = side
        self.path = path
        file = try MappedFile(path: path)
        let per = side * side * 3
        if let expectedCount, allowTail, file.count / per >= expectedCount {
            count = expectedCount
            return
        }
        guard file.count % per == 0 else {
            throw HumeError(.invalidInput, "The image store \(path) is \(file.count) bytes, not a whole number of \(side)×\(side) RGB images (\(per) bytes each).")
        }
        let held = file.count / per
        count = held
        if let expectedCount, expectedCount != count {
            throw HumeError(.invalidInput, "The image store \(path) holds \(count) images but the manifest lists \(expectedCount); rebuild the database with Ops/prepare-data.sh.")
        }
    }

    /// The pixels of image `id`, valid while this store lives (no copy).
    /// - Throws: `HumeError(.unknown)` when `id` is not in `0..<count`.
    public func image(id: Int) throws -> UnsafeBufferPointer<UInt8> {
        guard id >= 0, id < count, let base = file.base else {
            throw HumeError(.unknown, "Image id \(id) is out of range: the store \(path) holds ids 0…\(count - 1).")
        }
        let p = base.advanced(by: id * bytesPerImage).assumingMemoryBound(to: UInt8.self)
        return UnsafeBufferPointer(start: p, count: bytesPerImage)
    }

    /// A copy of the pixels of image `id`.
    /// - Throws: `HumeError(.unknown)` when `id` is not in `0..<count`.
    public func copy(id: Int) throws -> [UInt8] {
        Array(try image(id: id))
    }
}
