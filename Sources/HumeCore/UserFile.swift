import Foundation

/// Files a user names (a prompt list, a captions table, a source image): their bytes, or one sentence saying which
/// file could not be read and why, so every command that reads one fails the same clear way.
public enum UserFile {
    /// Why `path` cannot be read as a file: "there is no such file", "it is a directory" or "it is not readable
    /// (permissions?)".
    public static func whyUnreadable(_ path: String) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "there is no such file" }
        return isDirectory.boolValue ? "it is a directory" : "it is not readable (permissions?)"
    }

    /// The bytes of the file at `path`.
    /// - Throws: `HumeError(.invalidInput)`: "Cannot read `what` `path`: `whyUnreadable`."
    public static func read(_ path: String, what: String) throws -> Data {
        if let data = FileManager.default.contents(atPath: path) { return data }
        throw HumeError(.invalidInput, "Cannot read \(what) \(path): \(whyUnreadable(path)).")
    }

    /// The file at `path` as UTF-8 text.
    /// - Throws: `HumeError(.invalidInput)` when it cannot be read (as `read`) or is not UTF-8.
    public static func text(_ path: String, what: String) throws -> String {
        guard let text = String(data: try read(path, what: what), encoding: .utf8) else {
            throw HumeError(.invalidInput, "Cannot read \(what) \(path): it is not UTF-8 text.")
        }
        return text
    }
}
