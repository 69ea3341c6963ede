import Foundation

/// A file and folder of this process's own for readers that take a path:
/// one fixed place rewritten for every input, so a run leaves nothing
/// behind but one small folder.
enum ScratchFile {
  /// `/tmp/biggan-fuzz-PID/`, made on first use.
  static let folder: String = {
    let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("biggan-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }()

  /// Writes `input` as `name` in the scratch folder and returns its path.
  static func write(_ input: Data, as name: String) -> String {
    let path = (folder as NSString).appendingPathComponent(name)
    guard FileManager.default.createFile(atPath: path, contents: input) else {
      fatalError("\(path): cannot write the fuzz input")
    }
    return path
  }
}
