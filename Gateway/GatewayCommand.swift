import ArgumentParser
import Foundation
import HumeCore
import HumeFleet
import HumeTransport
import Hummingbird
import Logging
import NIOCore
import NIOPosix

/// `hume-gateway`: HTTP/JSON in front of a broker's client endpoint (README "Reaching Hume", docs/openapi.json).
@main
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hume-gateway",
        abstract: "Serve Hume over HTTP/JSON: jobs in, results, images and Server-Sent Events out.",
        subcommands: [Serve.self, PrintOpenAPI.self, Bench.self], defaultSubcommand: Serve.self)
}

struct PrintOpenAPI: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "openapi", abstract: "Print the OpenAPI 3.1 document.")
    func run() { print(OpenAPIDocument.json) }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve HTTP on --bind, speaking the client protocol to the broker at --broker.")

    @Option(help: "The broker's client endpoint.") var broker = "tcp://127.0.0.1:5556"
    @Option(help: "HOST:PORT to serve HTTP on (port 0: any free port; see --ready-file).") var bind = "127.0.0.1:8080"
    @Option(help: "A file of bearer tokens, one per line (at least 16 characters each; # starts a comment). Required when --bind is not loopback; also $HUME_GATEWAY_TOKENS, comma-separated.")
    var tokenFile: String?
    @Option(help: "CURVE: this gateway's key file (default: $HUME_CURVE_KEY).") var curveKey: String?
    @Option(help: "CURVE: the broker's public key, Z85 or a .pub file (default: $HUME_SERVER_KEY).") var serverKey: String?
    @Option(help: "Write the bound HOST:PORT to this file once the server listens.") var readyFile: String?
    @Option(help: "Results kept for GET /v1/events readers to resume from.") var events = 100_000
    @Option(help: "The largest request body taken, in bytes.") var maxBodyBytes = 48 << 20
    @Option(help: "The most jobs one POST /v1/jobs may carry.") var maxJobs = 1_000
    @Option(help: "Seconds to wait for the broker to answer a request before answering 504.") var brokerTimeout = 10.0
    @Option(help: "Event-loop threads serving HTTP (default: one per core).") var eventLoops: Int?

    func run() async throws {
        exitWhenParentDies()  // under `hume up`, leave with the supervisor even if it is killed with -9
        let env = ProcessInfo.processInfo.environment
        let (host, port) = try Self.parseBind(bind)
        let tokens = try Self.loadTokens(file: tokenFile, env: env["HUME_GATEWAY_TOKENS"])
        if tokens.isEmpty && !Self.isLoopback(host) {
            throw ValidationError("hume-gateway would serve \(bind), beyond loopback, without authentication: give --token-file (or HUME_GATEWAY_TOKENS).")
        }
        var limits = GatewayLimits()
        limits.maxBodyBytes = max(1 << 16, maxBodyBytes)
        limits.maxJobsPerRequest = max(1, min(10_000, maxJobs))
        limits.brokerTimeoutMs = UInt64(max(0.1, brokerTimeout) * 1000)
        GatewayLimits.current = limits
        let curve = try CurveClientConfig.from(keyFile: curveKey ?? env["HUME_CURVE_KEY"], serverKey: serverKey ?? env["HUME_SERVER_KEY"])

        let log = EventLog(capacity: max(1, events))
        let link = try BrokerLink(endpoint: broker, curve: curve) { results in
            log.append(results.map { ResultSummary($0.0, batch: $0.1) })
        }
        defer { link.stop() }
        let router = Router()
        router.middlewares.add(ProblemMiddleware())
        router.middlewares.add(BearerMiddleware(tokens: tokens.map { Array($0.utf8) }))
        Gateway(link: link, events: log, limits: limits).register(router)

        // SIGTERM or SIGINT: Hummingbird stops listening and waits for the requests in flight; event streams would never
        // end by themselves, so they are ended here (ServiceLifecycle ignores the signals' default action the same way).
        var stopSignals: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { log.closeAll() }
            source.resume()
            stopSignals.append(source)
        }
        defer { stopSignals.forEach { $0.cancel() } }
        // SSE readers with nothing to read get a keep-alive comment every 15 s (proxies drop silent connections).
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(15))
                log.ringAll()
            }
        }
        defer { ticker.cancel() }
        var logger = Logger(label: "hume-gateway") { GatewayLogHandler(label: $0) }
        logger.logLevel = .warning
        let ready = readyFile
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "hume-gateway"),
            onServerRunning: { channel in
                let bound = "\(host):\(channel.localAddress?.port ?? port)"
                FileHandle.standardError.write(Data("hume-gateway: serving http://\(bound) for the broker at \(broker)\n".utf8))
                if let f = ready { try? Data((bound + "\n").utf8).write(to: URL(fileURLWithPath: f), options: .atomic) }
            },
            eventLoopGroupProvider: eventLoops.map { .shared(MultiThreadedEventLoopGroup(numberOfThreads: max(1, $0))) } ?? .singleton,
            logger: logger)
        try await app.runService()
    }

    static func parseBind(_ s: String) throws -> (String, Int) {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--bind is \"\(s)\"; it must be HOST:PORT, e.g. 127.0.0.1:8080.")
        }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    static func loadTokens(file: String?, env: String?) throws -> [String] {
        var tokens: [String] = []
        if let f = file {
            guard let text = try? String(contentsOfFile: f, encoding: .utf8) else {
                throw ValidationError("--token-file \(f) cannot be read as UTF-8 text.")
            }
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let t = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map {
                    $0.trimmingCharacters(in: .whitespaces)
                } ?? ""
                guard !t.isEmpty else { continue }
                guard t.count >= 16 else { throw ValidationError("The token on line \(i + 1) of \(f) is shorter than 16 characters.") }
                tokens.append(t)
            }
            guard !tokens.isEmpty else { throw ValidationError("--token-file \(f) holds no token.") }
        }
        for t in (env ?? "").split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !t.isEmpty {
            guard t.count >= 16 else { throw ValidationError("A token in HUME_GATEWAY_TOKENS is shorter than 16 characters.") }
            tokens.append(t)
        }
        return tokens
    }
}
