import Foundation
import Logging

/// The gateway's log handler: a line on standard error per message at or above the logger's level.
///
/// swift-log's `StreamLogHandler` formats its whole metadata into a string every time a key is set, and Hummingbird
/// sets a request id on its logger for every request: at 20,000 requests a second that formatting, for lines the
/// gateway's default level (warning) never prints, showed in the profile (2% of the handler threads' samples). Here
/// metadata is kept as given and formatted only for a line that is written.
struct GatewayLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        let fields = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let text = "\(label): \(event.level): \(event.message)\(fields)\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}
