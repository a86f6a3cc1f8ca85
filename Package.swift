// swift-tools-version: 6.0
// Hume: retrieval-augmented diffusion as a fleet of Swift processes behind a ZeroMQ broker.
import PackageDescription
import Foundation

let numericsSettings: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

/// The numerics (embedder, denoiser) are compiled for the machine that builds them when it has AVX2 and FMA (every
/// x86 server since 2013; here the code runs where it is built, `swift build` being part of the README's commands):
/// their SIMD8 softmax, GELU, LayerNorm and denoising loops then use 256-bit registers instead of SSE's 128 (a
/// 256-token sentence spent a tenth of its time in softmax; denoising is 1.35x faster). Swift does not fuse
/// multiply-adds, so results are bit-identical either way. `HUME_PORTABLE=1` builds for any x86-64.
let hostVectorSettings: [SwiftSetting] = {
    #if arch(x86_64) && os(Linux)
    guard ["", "0"].contains(ProcessInfo.processInfo.environment["HUME_PORTABLE"] ?? ""),
          let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
    let flags = Set(line.split(separator: " ").map(String.init))
    // LLVM's `haswell`: AVX2, FMA, BMI1/2, F16C, LZCNT (cpuinfo's `abm`), MOVBE.
    let haswell = ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "abm", "movbe"]
    return haswell.allSatisfy(flags.contains) ? [.unsafeFlags(["-target-cpu", "haswell"])] : []
    #else
    return []
    #endif
}()

let package = Package(
    name: "Hume",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "hume", targets: ["hume"]),
        // The HTTP gateway (issue 20): its own executable, so that `hume`, the broker and the workers never link the HTTP
        // server and `swift build --product hume` does not compile it.
        .executable(name: "hume-gateway", targets: ["hume-gateway"]),
        .library(name: "HumeCore", targets: ["HumeCore"]),
        .library(name: "HumeTransport", targets: ["HumeTransport"]),
        .library(name: "HumeClient", targets: ["HumeClient"]),
        // For the libFuzzer build in Fuzz/ (issue 16); nothing else links it.
        .library(name: "HumeFuzzTargets", targets: ["HumeFuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // One C bridge per C library.
        // libzmq's pkg-config file adds -isystem flags SwiftPM refuses; its header is on the default path.
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ", providers: [.apt(["libzmq3-dev"])]),

        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // FAISS is C++; this target is an extern "C" shim so no Swift module needs C++ interop.
        .target(name: "CFaiss", path: "Sources/CFaiss", exclude: ["omp"], cxxSettings: [.headerSearchPath("omp")],
                linkerSettings: [.linkedLibrary("faiss"), .linkedLibrary("openblas"), .linkedLibrary("lapack"),
                                 .linkedLibrary("gomp"), .linkedLibrary("m"), .linkedLibrary("stdc++")]),

        // Shared libraries.
        // Errors, JSON, bytes and the wire codec: no sockets, no libzmq (modules that never send a message use this).
        // Optimised in debug builds too, like the numerics: the wire codec runs in every debug test, and SHA-256 digests
        // the 90 MB model each time `hume index build` checks its stamp (21 s unoptimised, under 1 s optimised).
        .target(name: "HumeCore", path: "Sources/HumeCore", swiftSettings: numericsSettings),
        // ZeroMQ sockets and CURVE/ZAP: only the modules that send messages.
        .target(name: "HumeTransport", dependencies: ["HumeCore", "CZeroMQ"], path: "Sources/HumeTransport"),
        // The stage contracts (PROTOCOL.md §11): the Stage protocol, task outcomes and the one error→outcome mapping,
        // the payloads stages hand each other, and each job kind's parameters. No sockets, no models.
        .target(name: "HumeStages", dependencies: ["HumeCore"], path: "Sources/HumeStages"),
        .target(name: "HumeBroker",
                dependencies: ["HumeCore", "HumeTransport", "HumeStages", "CZeroMQ", .product(name: "GRDB", package: "GRDB.swift"),
                               .product(name: "GRDBSQLite", package: "GRDB.swift"),
                               .product(name: "Logging", package: "swift-log")],
                path: "Broker",
                // The state machine is single-threaded by design; dynamic exclusivity checks were 2% of its time.
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        .target(name: "HumeWorker",
                dependencies: ["HumeCore", "HumeTransport", "HumeStages", "CZeroMQ", .product(name: "Logging", package: "swift-log")],
                path: "Sources/HumeWorker"),
        .target(name: "HumeClient",
                dependencies: ["HumeCore", "HumeTransport", "CZeroMQ"],
                path: "Sources/HumeClient"),

        .target(name: "HumeFleet",
                dependencies: ["HumeCore", "HumeTransport", "HumeClient", .product(name: "Logging", package: "swift-log")],
                path: "Sources/HumeFleet"),

        // Numerics: the MiniLM text embedder over OpenBLAS, and the closed-form diffusion core.
        // Both are optimised in debug builds too: tests and the debug CLI embed whole databases and sample
        // images, which take 10-20x longer unoptimised.
        .target(name: "HumeLaneMath", path: "Sources/HumeLaneMath", swiftSettings: numericsSettings),
        .target(name: "HumeEmbed", dependencies: ["COpenBLAS", "HumeLaneMath"], path: "Sources/HumeEmbed",
                swiftSettings: numericsSettings + hostVectorSettings),
        .target(name: "HumeDiffusion", dependencies: ["HumeCore", "HumeLaneMath"], path: "Sources/HumeDiffusion", swiftSettings: numericsSettings + hostVectorSettings),
        // Image databases (manifest, memory-mapped image stores, PNG) and the FAISS index wrapper.
        // Optimised in debug too: `hume db` resizes every picture it imports (20x slower unoptimised).
        .target(name: "HumeData", dependencies: ["HumeCore", "HumeStages", "CPNG", "CJPEG"], path: "Sources/HumeData",
                swiftSettings: numericsSettings),
        .target(name: "HumeIndex", dependencies: ["CFaiss", "HumeCore"], path: "Sources/HumeIndex"),
        // Texts to neighbours: the indexed databases (what the retrieve stage serves) and, given an embedding
        // function, the in-process search the edit stage uses. Links FAISS, not the text model.
        .target(name: "HumeSearch", dependencies: ["HumeCore", "HumeData", "HumeIndex", "HumeStages"], path: "Sources/HumeSearch"),
        // Quality metrics (fidelity: recognised, near copy, seed diversity), free of stages and models.
        .target(name: "HumeEval", dependencies: ["COpenBLAS"], path: "Sources/HumeEval", swiftSettings: numericsSettings),
        .executableTarget(name: "hume-diffusion-bench", dependencies: ["HumeDiffusion"], path: "Benchmarks/HumeDiffusionBench"),

        // Stages (one folder per stage under Workers/).
        // Each depends on the contracts and the libraries it computes with, never on another stage or on the runtime
        // (the executable hands a stage to `WorkerRuntime`).
        .target(name: "HumeNoop", dependencies: ["HumeStages"], path: "Workers/Noop"),
        .target(name: "HumeEmbedStage", dependencies: ["HumeStages", "HumeEmbed", "HumeCore"], path: "Workers/Embedder"),
        .target(name: "HumeDenoiseStage",
                dependencies: ["HumeStages", "HumeDiffusion", "HumeData", "HumeCore"], path: "Workers/Denoiser"),
        .target(name: "HumeEditStage",
                dependencies: ["HumeStages", "HumeDiffusion", "HumeData", "HumeEmbed", "HumeSearch", "HumeCore"],
                path: "Workers/Editor"),
        .target(name: "HumeRetrieveStage", dependencies: ["HumeStages", "HumeSearch", "HumeData", "HumeCore"],
                path: "Workers/Retriever"),
        // Every decoder of outside bytes behind one function per fuzz target: libFuzzer drives them from Fuzz/, and
        // HumeFuzzTests replays the seed corpus through them.
        .target(name: "HumeFuzzTargets",
                dependencies: ["HumeCore", "HumeStages", "HumeBroker", "HumeClient", "HumeData", "HumeEmbed", "HumeEmbedStage", "HumeDenoiseStage",
                               "HumeEditStage", "HumeRetrieveStage", "HumeUploadStage"],
                path: "Sources/HumeFuzzTargets"),
        .target(name: "HumeUploadStage", dependencies: ["HumeStages", "HumeData", "HumeCore", "CCurl"], path: "Workers/Uploader"),

        // Evaluations (and, in time, benchmarks) as library code the CLI only parses options for and prints: they run the
        // stages' own code in-process.
        .target(name: "HumeEvaluation",
                dependencies: ["HumeCore", "HumeStages", "HumeData", "HumeEval", "HumeEmbed", "HumeSearch", "HumeDiffusion", "HumeIndex",
                               "HumeEmbedStage", "HumeRetrieveStage", "HumeDenoiseStage", "HumeEditStage"],
                path: "Sources/HumeEvaluation"),

        // The README's main job: a local fleet, a prompt file and edits through every stage, a gallery.
        .target(name: "HumeDemo", dependencies: ["HumeFleet", "HumeClient", "HumeData", "HumeCore"], path: "Sources/HumeDemo"),

        // The CLI: thin, everything lives in the libraries above.
        .executableTarget(name: "hume",
                          dependencies: ["HumeCore", "HumeTransport", "HumeStages", "HumeSearch", "HumeBroker", "HumeWorker", "HumeClient", "HumeFleet", "HumeNoop",
                                         "HumeEmbed", "HumeEmbedStage", "HumeDenoiseStage", "HumeEditStage", "HumeDiffusion", "HumeData", "HumeIndex", "HumeRetrieveStage", "HumeUploadStage", "HumeDemo", "HumeEval", "HumeEvaluation",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          path: "Sources/hume"),

        // HTTP/JSON in front of the client protocol (README "Reaching Hume"): Hummingbird, one broker connection.
        .executableTarget(name: "hume-gateway",
                          dependencies: ["HumeCore", "HumeTransport", "HumeClient", "HumeStages", "HumeData", "HumeFleet",
                                         .product(name: "Hummingbird", package: "hummingbird"),
                                         .product(name: "NIOCore", package: "swift-nio"),
                                         .product(name: "NIOPosix", package: "swift-nio"),
                                         .product(name: "HTTPTypes", package: "swift-http-types"),
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          path: "Gateway"),

        .testTarget(name: "HumeBridgeTests", dependencies: ["CZeroMQ", "COpenBLAS", "CPNG", "CCurl", "CFaiss"],
                    path: "Tests/HumeBridgeTests"),
        .testTarget(name: "HumeEmbedTests", dependencies: ["HumeCore", "HumeEmbed", "HumeLaneMath"], path: "Tests/HumeEmbedTests",
                    resources: [.copy("Fixtures")]),
        // The stage contracts alone: no sockets, no models, no data.
        .testTarget(name: "HumeContractsTests", dependencies: ["HumeStages", "HumeCore"], path: "Tests/HumeContractsTests"),
        // The worker's connection rules, with a hand-moved clock and no sockets.
        .testTarget(name: "HumeWorkerTests", dependencies: ["HumeWorker", "HumeStages", "HumeCore"], path: "Tests/HumeWorkerTests"),
        .testTarget(name: "HumeDiffusionTests", dependencies: ["HumeDiffusion", "HumeCore"], path: "Tests/HumeDiffusionTests"),
        .testTarget(name: "HumeEvalTests", dependencies: ["HumeCore", "HumeEval", "HumeData", "HumeEvaluation"], path: "Tests/HumeEvalTests"),
        .testTarget(name: "HumeStagesTests",
                    dependencies: ["HumeStages", "HumeEmbedStage", "HumeDenoiseStage", "HumeEditStage", "HumeRetrieveStage", "HumeData", "HumeDiffusion",
                                   "HumeWorker", "HumeCore"],
                    path: "Tests/HumeStagesTests"),
        .testTarget(name: "HumeDataTests", dependencies: ["HumeStages", "HumeData", "HumeCore"], path: "Tests/HumeDataTests"),
        .testTarget(name: "HumeIndexTests", dependencies: ["HumeStages", "HumeIndex", "HumeSearch", "HumeEvaluation", "HumeData", "HumeRetrieveStage", "HumeWorker", "HumeEmbed", "HumeCore"],
                    path: "Tests/HumeIndexTests"),
        .testTarget(name: "HumeFuzzTests", dependencies: ["HumeStages", "HumeFuzzTargets", "HumeCore", "HumeData", "HumeClient"],
                    path: "Tests/HumeFuzzTests"),
        .testTarget(name: "HumeCoreTests", dependencies: ["HumeStages", "HumeCore", "HumeTransport", "HumeClient"], path: "Tests/HumeCoreTests"),
        .testTarget(name: "HumeBrokerTests", dependencies: ["HumeStages", "HumeBroker", "HumeCore", .product(name: "GRDB", package: "GRDB.swift")],
                    path: "Tests/HumeBrokerTests"),
        .testTarget(name: "HumeFleetTests", dependencies: ["HumeStages", "HumeFleet", "HumeCore"], path: "Tests/HumeFleetTests"),
        .testTarget(name: "HumeUploadTests", dependencies: ["HumeStages", "HumeUploadStage", "HumeData", "HumeWorker", "HumeCore", "HumeClient", "HumeFleet"],
                    path: "Tests/HumeUploadTests"),
        // hume-gateway as a process, spoken to with curl, in front of a live broker and workers.
        .testTarget(name: "HumeGatewayTests", dependencies: ["HumeCore", "HumeFleet", "HumeTransport"], path: "Tests/HumeGatewayTests"),
        .testTarget(name: "HumeIntegrationTests",
                    dependencies: ["HumeStages", "HumeCore", "HumeTransport", "HumeClient", "HumeBroker", "HumeFleet", "HumeData", "CZeroMQ",
                                   .product(name: "GRDB", package: "GRDB.swift")],
                    path: "Tests/HumeIntegrationTests"),
    ],
    cxxLanguageStandard: .cxx17
)
