import ArgumentParser
import Foundation
import HumeCore
import HumeTransport

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "CURVE keys for the broker, workers and clients.", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write NAME.key (the pair, mode 0600) and NAME.pub (the public key) and print the public key.",
            discussion: """
                The broker takes its own .key with --curve-key and the workers' and clients' .pub files with --allow-keys \
                (a directory of .pub files, or one file listing keys). Workers and clients take their .key and the \
                broker's .pub with --curve-key/--server-key, or HUME_CURVE_KEY/HUME_SERVER_KEY in the environment.
                """)

        @Argument(help: "Key name, e.g. broker, worker-a, client-ci.") var name: String
        @Option(help: "Directory for the key files.") var dir = "keys"

        func run() throws {
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }),
                  !name.hasPrefix(".") else {
                throw CLIFailure("Key name \"\(name)\" is invalid: use letters, digits, '-', '_' and '.'.")
            }
            let pair = try CurveKeyPair.generate()
            let files = try pair.write(directory: dir, name: name)
            print(pair.publicKey)
            stderrLine("hume keys: wrote \(files.keyFile) (secret; keep it private) and \(files.publicFile).")
        }
    }
}
