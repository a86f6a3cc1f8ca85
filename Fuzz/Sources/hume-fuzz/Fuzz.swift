import Foundation
import HumeFuzzTargets

/// The target this process fuzzes: HUME_FUZZ_TARGET, one of `FuzzTargets.names`.
let target: String = {
    let name = ProcessInfo.processInfo.environment["HUME_FUZZ_TARGET"] ?? ""
    guard FuzzTargets.names.contains(name) else {
        FileHandle.standardError.write(Data("hume-fuzz: set HUME_FUZZ_TARGET to one of \(FuzzTargets.names.joined(separator: ", ")).\n".utf8))
        exit(2)
    }
    return name
}()

/// One input, as libFuzzer calls it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    FuzzTargets.run(target, bytes)
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point as `<product>_main` (built with -parse-as-library there is no other),
/// so libFuzzer's own `main` is never pulled in: this one hands the command line to libFuzzer's driver.
@_cdecl("hume_fuzz_main")
public func humeFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments) { fuzzOne($0, $1) }
}
