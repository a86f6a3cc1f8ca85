import ArgumentParser
import Foundation
import HumeCore
import HumeFleet

@main
struct Hume: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hume",
        abstract: "Retrieval-augmented diffusion as a fleet of workers behind a ZeroMQ broker.",
        subcommands: [DemoCommand.self, BrokerCommand.self, WorkerCommand.self, UpCommand.self, SubmitCommand.self, StreamCommand.self,
                      StatusCommand.self, CancelCommand.self, ScaleCommand.self, BenchCommand.self,
                      EmbedCommand.self, GenerateCommand.self, EditCommand.self,
                      DbCommand.self, IndexCommand.self, SearchCommand.self, EvalCommand.self, KeysCommand.self])

    /// Every command a Hume parent started (a fleet's broker and workers, a benchmark's clients) leaves when that
    /// parent dies, whatever killed it (`exitWhenParentDies`); then the command runs as usual.
    static func main() {
        exitWhenParentDies()
        main(nil)
    }
}

/// Where clients, workers and control connect unless told otherwise (`HUME_BROKER`, `HUME_WORKERS`, `HUME_CONTROL`).
enum Defaults {
    static var clients: String { ProcessInfo.processInfo.environment["HUME_BROKER"] ?? "tcp://127.0.0.1:5556" }
    static var workers: String { ProcessInfo.processInfo.environment["HUME_WORKERS"] ?? "tcp://127.0.0.1:5555" }
    static var control: String { ProcessInfo.processInfo.environment["HUME_CONTROL"] ?? "tcp://127.0.0.1:5557" }
}

/// A command's failure: one sentence for the user. Thrown out of `run()`, it is printed as `Error: <sentence>` and the
/// process exits with status 1 (swift-argument-parser's handling), after every `defer` on the way out has run.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

func stderrLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

