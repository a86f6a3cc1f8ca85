// swift-tools-version: 6.0
// libFuzzer drivers for Hume's decoders (issue 16). A package of its own so the main build never compiles with
// -sanitize=fuzzer; build and run with Ops/fuzz.sh.
import PackageDescription

let package = Package(
    name: "HumeFuzz",
    dependencies: [.package(name: "Hume", path: "..")],
    targets: [
        .executableTarget(name: "hume-fuzz", dependencies: [.product(name: "HumeFuzzTargets", package: "Hume")],
                          path: "Sources/hume-fuzz"),
    ]
)
