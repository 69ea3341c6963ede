import Foundation

/// The target named by `FUZZ_TARGET`, chosen once: libFuzzer owns the
/// command line, so the choice travels in the environment.
let selected: FuzzTarget = {
  let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
  guard let target = FuzzTarget.all.first(where: { $0.name == name }) else {
    let names = FuzzTarget.all.map(\.name).joined(separator: ", ")
    FileHandle.standardError.write(Data("FUZZ_TARGET='\(name)': expected one of \(names)\n".utf8))
    exit(2)
  }
  return target
}()

/// libFuzzer's start-up hook: an unknown target stops the run before any input.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(
  _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
  _ = selected
  return 0
}

/// libFuzzer's entry point: one input for the selected target. A thrown
/// error is the reader doing its job; only traps and sanitizer reports fail.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  selected.run(Data(bytes: bytes, count: size))
  return 0
}
