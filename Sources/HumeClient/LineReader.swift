import Foundation
import HumeCore

/// Reads a file one line at a time through a fixed buffer (LF or CRLF; a last line without LF counts), so a job file
/// of any length is read in constant memory.
public final class LineReader {
    let fd: Int32
    var buffer: [UInt8] = []
    var start = 0
    var eof = false
    /// 1-based number of the line last returned.
    public private(set) var lineNumber = 0

    /// Opens `path`; nil when it cannot be read.
    public init?(path: String) {
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR else {
            close(fd)
            return nil
        }
    }

    deinit { close(fd) }

    /// The next line's bytes without its line ending, or nil at the end of the file.
    public func next() -> ArraySlice<UInt8>? {
        while true {
            if let nl = buffer[start...].firstIndex(of: 0x0A) {
                var line = buffer[start..<nl]
                start = nl + 1
                if line.last == 0x0D { line = line.dropLast() }
                lineNumber += 1
                return line
            }
            if eof {
                guard start < buffer.count else { return nil }
                var line = buffer[start...]
                start = buffer.count
                if line.last == 0x0D { line = line.dropLast() }
                lineNumber += 1
                return line
            }
            // Keep the partial line, read more behind it.
            if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            let old = buffer.count
            let chunk = 1 << 16
            buffer.append(contentsOf: repeatElement(0, count: chunk))
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + old, chunk) }
            buffer.removeLast(chunk - max(0, n))
            if n <= 0 { eof = true }
        }
    }
}

/// Result lines written to a scratch file as they arrive, in any order, and read back in line order at the end: a
/// manifest for a million jobs costs two integers per line in memory, not the lines themselves.
public final class ManifestSpill {
    let path: String
    let handle: FileHandle
    var pending: [UInt8] = []
    var written = 0
    /// Byte offset and length of each input line's entry in the scratch file (index: line − 1; −1: none yet).
    var offsets: [Int] = []
    var lengths: [Int32] = []

    /// Creates (truncating) the scratch file at `path`.
    public init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forUpdatingAtPath: path) else {
            throw HumeError(.system, "Cannot write \(path).")
        }
        self.path = path
        handle = h
    }

    deinit {
        try? handle.close()
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Whether `line` (1-based) has an entry.
    public func has(line: Int) -> Bool { line - 1 < offsets.count && offsets[line - 1] >= 0 }

    /// Records `entry` (one JSON document, no newline) as the manifest line for input line `line`; a later entry for
    /// the same line replaces it.
    public func write(line: Int, _ entry: String) {
        let bytes = Array(entry.utf8)
        if offsets.count < line {
            offsets.append(contentsOf: repeatElement(-1, count: line - offsets.count))
            lengths.append(contentsOf: repeatElement(0, count: line - lengths.count))
        }
        offsets[line - 1] = written + pending.count
        lengths[line - 1] = Int32(clamping: bytes.count)
        pending.append(contentsOf: bytes)
        if pending.count >= 1 << 20 { flush() }
    }

    func flush() {
        guard !pending.isEmpty else { return }
        handle.seekToEndOfFile()
        handle.write(Data(pending))
        written += pending.count
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes every entry, in line order, one per line, to `path` atomically (a temporary file renamed over it), and
    /// removes the scratch file. Returns the number of lines written.
    @discardableResult
    public func writeManifest(to path: String) throws -> Int {
        flush()
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: nil), let out = FileHandle(forWritingAtPath: tmp) else {
            throw HumeError(.system, "Cannot write \(tmp).")
        }
        // Entries arrive roughly in line order, so reads go through a window of the scratch file.
        var window: [UInt8] = []
        var windowStart = 0
        var outBuffer: [UInt8] = []
        var count = 0
        for (i, offset) in offsets.enumerated() where offset >= 0 {
            let length = Int(lengths[i])
            if offset < windowStart || offset + length > windowStart + window.count {
                handle.seek(toFileOffset: UInt64(offset))
                window = [UInt8](handle.readData(ofLength: max(1 << 20, length)))
                windowStart = offset
            }
            let from = offset - windowStart
            outBuffer.append(contentsOf: window[from..<from + length])
            outBuffer.append(0x0A)
            count += 1
            if outBuffer.count >= 1 << 20 {
                out.write(Data(outBuffer))
                outBuffer.removeAll(keepingCapacity: true)
            }
        }
        out.write(Data(outBuffer))
        try out.close()
        guard rename(tmp, path) == 0 else { throw HumeError(.system, "Cannot write \(path).") }
        try? FileManager.default.removeItem(atPath: self.path)
        return count
    }
}
