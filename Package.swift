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
        .library(name: "HumeCore", targets: ["HumeCore"]),
        .library(name: "HumeClient", targets: ["HumeClient"]),
        // For the libFuzzer build in Fuzz/ (issue 16); nothing else links it.
        .library(name: "HumeFuzzTargets", targets: ["HumeFuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // One C bridge per C library.
        // libzmq's pkg-config file adds -isystem flags SwiftPM refuses; its header is on the default path.
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ", providers: [.apt(["libzmq3-dev"])]),

        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // FAISS is C++; this target is an extern "C" shim so no Swift module needs C++ interop.
        .target(name: "CFaiss", path: "Sources/CFaiss",
                linkerSettings: [.linkedLibrary("faiss"), .linkedLibrary("openblas"), .linkedLibrary("lapack"),
                                 .linkedLibrary("gomp"), .linkedLibrary("m"), .linkedLibrary("stdc++")]),

        // Shared libraries.
        .target(name: "HumeCore",
                dependencies: ["CZeroMQ", .product(name: "Logging", package: "swift-log")],
                path: "Sources/HumeCore"),
        .target(name: "HumeBroker",
                dependencies: ["HumeCore", "CZeroMQ", .product(name: "GRDB", package: "GRDB.swift"),
                               .product(name: "GRDBSQLite", package: "GRDB.swift"),
                               .product(name: "Logging", package: "swift-log")],
                path: "Broker",
                // The state machine is single-threaded by design; dynamic exclusivity checks were 2% of its time.
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        .target(name: "HumeWorker",
                dependencies: ["HumeCore", "CZeroMQ", .product(name: "Logging", package: "swift-log")],
                path: "Sources/HumeWorker"),
        .target(name: "HumeClient",
                dependencies: ["HumeCore", "CZeroMQ"],
                path: "Sources/HumeClient"),

        .target(name: "HumeFleet",
                dependencies: ["HumeCore", "HumeClient", .product(name: "Logging", package: "swift-log")],
                path: "Sources/HumeFleet"),

        // Numerics: the MiniLM text embedder over OpenBLAS, and the closed-form diffusion core.
        // Both are optimised in debug builds too: tests and the debug CLI embed whole databases and sample
        // images, which take 10-20x longer unoptimised.
        .target(name: "HumeLaneMath", path: "Sources/HumeLaneMath", swiftSettings: numericsSettings),
        .target(name: "HumeEmbed", dependencies: ["COpenBLAS", "HumeLaneMath"], path: "Sources/HumeEmbed",
                swiftSettings: numericsSettings + hostVectorSettings),
        .target(name: "HumeDiffusion", dependencies: ["HumeLaneMath"], path: "Sources/HumeDiffusion", swiftSettings: numericsSettings + hostVectorSettings),
        // Image databases (manifest, memory-mapped image stores, PNG) and the FAISS index wrapper.
        .target(name: "HumeData", dependencies: ["HumeCore", "CPNG"], path: "Sources/HumeData"),
        .target(name: "HumeIndex", dependencies: ["CFaiss", "HumeCore"], path: "Sources/HumeIndex"),
        // Quality metrics (fidelity: recognised, near copy, seed diversity), free of stages and models.
        .target(name: "HumeEval", dependencies: ["COpenBLAS"], path: "Sources/HumeEval", swiftSettings: numericsSettings),
        .executableTarget(name: "hume-diffusion-bench", dependencies: ["HumeDiffusion"], path: "Benchmarks/HumeDiffusionBench"),

        // Stages (one folder per stage under Workers/).
        .target(name: "HumeNoop", dependencies: ["HumeWorker"], path: "Workers/Noop"),
        .target(name: "HumeEmbedStage", dependencies: ["HumeWorker", "HumeEmbed"], path: "Workers/Embedder"),
        .target(name: "HumeDenoiseStage",
                dependencies: ["HumeWorker", "HumeDiffusion", "HumeData", "HumeEmbedStage", "HumeCore"], path: "Workers/Denoiser"),
        .target(name: "HumeEditStage",
                dependencies: ["HumeWorker", "HumeDenoiseStage", "HumeDiffusion", "HumeData", "HumeEmbed", "HumeEmbedStage",
                               "HumeRetrieveStage", "HumeCore"],
                path: "Workers/Editor"),
        .target(name: "HumeRetrieveStage", dependencies: ["HumeWorker", "HumeIndex", "HumeData", "HumeCore"],
                path: "Workers/Retriever"),
        // Every decoder of outside bytes behind one function per fuzz target: libFuzzer drives them from Fuzz/, and
        // HumeFuzzTests replays the seed corpus through them.
        .target(name: "HumeFuzzTargets",
                dependencies: ["HumeCore", "HumeBroker", "HumeClient", "HumeData", "HumeEmbed", "HumeEmbedStage", "HumeDenoiseStage",
                               "HumeEditStage", "HumeRetrieveStage", "HumeUploadStage"],
                path: "Sources/HumeFuzzTargets"),
        .target(name: "HumeUploadStage", dependencies: ["HumeWorker", "HumeData", "HumeCore", "CCurl"], path: "Workers/Uploader"),

        // The README's main job: a local fleet, a prompt file and edits through every stage, a gallery.
        .target(name: "HumeDemo", dependencies: ["HumeFleet", "HumeClient", "HumeData", "HumeCore"], path: "Sources/HumeDemo"),

        // The CLI: thin, everything lives in the libraries above.
        .executableTarget(name: "hume",
                          dependencies: ["HumeCore", "HumeBroker", "HumeWorker", "HumeClient", "HumeFleet", "HumeNoop",
                                         "HumeEmbed", "HumeEmbedStage", "HumeDenoiseStage", "HumeEditStage", "HumeDiffusion", "HumeData", "HumeIndex", "HumeRetrieveStage", "HumeUploadStage", "HumeDemo", "HumeEval",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          path: "Sources/hume"),

        .testTarget(name: "HumeBridgeTests", dependencies: ["CZeroMQ", "COpenBLAS", "CPNG", "CCurl", "CFaiss"],
                    path: "Tests/HumeBridgeTests"),
        .testTarget(name: "HumeEmbedTests", dependencies: ["HumeEmbed", "HumeLaneMath"], path: "Tests/HumeEmbedTests",
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "HumeDiffusionTests", dependencies: ["HumeDiffusion"], path: "Tests/HumeDiffusionTests"),
        .testTarget(name: "HumeEvalTests", dependencies: ["HumeEval", "HumeData"], path: "Tests/HumeEvalTests"),
        .testTarget(name: "HumeStagesTests",
                    dependencies: ["HumeEmbedStage", "HumeDenoiseStage", "HumeEditStage", "HumeRetrieveStage", "HumeData", "HumeDiffusion",
                                   "HumeWorker", "HumeCore"],
                    path: "Tests/HumeStagesTests"),
        .testTarget(name: "HumeDataTests", dependencies: ["HumeData", "HumeCore"], path: "Tests/HumeDataTests"),
        .testTarget(name: "HumeIndexTests", dependencies: ["HumeIndex", "HumeData", "HumeRetrieveStage", "HumeWorker", "HumeEmbed", "HumeCore"],
                    path: "Tests/HumeIndexTests"),
        .testTarget(name: "HumeFuzzTests", dependencies: ["HumeFuzzTargets", "HumeCore", "HumeData", "HumeClient"],
                    path: "Tests/HumeFuzzTests"),
        .testTarget(name: "HumeCoreTests", dependencies: ["HumeCore", "HumeClient"], path: "Tests/HumeCoreTests"),
        .testTarget(name: "HumeBrokerTests", dependencies: ["HumeBroker", "HumeCore", .product(name: "GRDB", package: "GRDB.swift")],
                    path: "Tests/HumeBrokerTests"),
        .testTarget(name: "HumeFleetTests", dependencies: ["HumeFleet", "HumeCore"], path: "Tests/HumeFleetTests"),
        .testTarget(name: "HumeUploadTests", dependencies: ["HumeUploadStage", "HumeData", "HumeWorker", "HumeCore", "HumeClient", "HumeFleet"],
                    path: "Tests/HumeUploadTests"),
        .testTarget(name: "HumeIntegrationTests",
                    dependencies: ["HumeCore", "HumeClient", "HumeBroker", "HumeFleet", "HumeData", "CZeroMQ",
                                   .product(name: "GRDB", package: "GRDB.swift")],
                    path: "Tests/HumeIntegrationTests"),
    ],
    cxxLanguageStandard: .cxx17
)
