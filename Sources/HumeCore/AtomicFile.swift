import Foundation

/// Writes `bytes` to `path` so that a reader sees the old file or the whole new one, never a part: a synced
/// temporary file in the same folder, then a rename.
/// - Throws: `HumeError(.system)` naming the file when any step fails; the temporary file is removed.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".tmp-\(url.lastPathComponent)-\(getpid())").path
    unlink(tmp)
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw HumeError(.system, "Cannot create \(tmp): \(String(cString: strerror(errno))).") }
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
        guard n > 0 else { break }
        off += n
    }
    let synced = fsync(fd) == 0
    close(fd)
    guard off == bytes.count, synced, rename(tmp, path) == 0 else {
        let why = String(cString: strerror(errno))
        unlink(tmp)
        throw HumeError(.system, "Cannot write \(path): \(why).")
    }
}
