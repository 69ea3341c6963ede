import Foundation
import Testing

@testable import BigGAN

/// A run's own class names (`classes.json`): where they are found for a
/// checkpoint and how a name picks a class.
struct RunClassNamesTests {
  /// A fresh temporary folder, removed by the caller.
  static func scratch(_ name: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("run-names-\(name)-\(getpid())").path
    try? FileManager.default.removeItem(atPath: path)
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  /// `names` written as `train` writes them, read back.
  static func written(_ names: [String], in folder: String) throws -> RunClassNames {
    let path = RunClassNames.path(inRun: folder)
    try JSONSerialization.data(withJSONObject: names, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: path))
    return try RunClassNames(contentsOf: path)
  }

  @Test("a name picks its class as written, else the one name equal to it when case is ignored")
  func lookup() throws {
    let dir = try Self.scratch("lookup")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let run = try Self.written(["disc", "Two-Discs", "cat", "Cat", "n01440764"], in: dir)
    #expect(run.path == "\(dir)/classes.json" && run.names.count == 5)
    #expect(run.index(of: "disc") == 0)
    #expect(run.index(of: " DISC ") == 0)
    #expect(run.index(of: "two-discs") == 1)
    #expect(run.index(of: "cat") == 2 && run.index(of: "Cat") == 3)
    #expect(run.index(of: "CAT") == nil, "two names differ only in case")
    #expect(run.index(of: "two discs") == nil && run.index(of: "discs") == nil && run.index(of: "") == nil)
    #expect(!run.areImageNetClasses)
  }

  @Test("ImageNet's WordNet IDs in ImageNet's order are ImageNet's classes, any other list is not")
  func imageNet() throws {
    let dir = try Self.scratch("imagenet")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var ids = (0..<ImageNetClasses.count).map(ImageNetClasses.wordNetID(of:))
    #expect(try Self.written(ids, in: dir).areImageNetClasses)
    ids.swapAt(3, 4)
    #expect(try !Self.written(ids, in: dir).areImageNetClasses)
    #expect(try !Self.written(Array(ids.prefix(999)), in: dir).areImageNetClasses)
  }

  @Test("a checkpoint folder or file under RUN/checkpoint/ belongs to RUN; one elsewhere to no run")
  func runFolder() throws {
    let dir = try Self.scratch("folder")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let step = "\(dir)/runs/r/checkpoint/step-00000004"
    try FileManager.default.createDirectory(atPath: step, withIntermediateDirectories: true)
    try Data().write(to: URL(fileURLWithPath: "\(step)/G_ema.safetensors"))
    try Data().write(to: URL(fileURLWithPath: "\(dir)/G.safetensors"))
    #expect(RunClassNames.runFolder(ofCheckpoint: step) == "\(dir)/runs/r")
    #expect(RunClassNames.runFolder(ofCheckpoint: "\(step)/") == "\(dir)/runs/r")
    #expect(RunClassNames.runFolder(ofCheckpoint: "\(step)/G_ema.safetensors") == "\(dir)/runs/r")
    #expect(RunClassNames.runFolder(ofCheckpoint: "\(step)/../step-00000004/G_ema.safetensors") == "\(dir)/runs/r")
    #expect(RunClassNames.runFolder(ofCheckpoint: "\(dir)/G.safetensors") == nil)
    #expect(RunClassNames.runFolder(ofCheckpoint: "\(dir)/runs/r") == nil)
    #expect(RunClassNames.runFolder(ofCheckpoint: "\(step)/missing.safetensors") == nil)
  }

  @Test("a names file that is not a JSON array of strings is one line naming it")
  func damaged() throws {
    let dir = try Self.scratch("damaged")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = RunClassNames.path(inRun: dir)
    for text in ["{", "[1, 2]", "{\"disc\": 0}"] {
      try Data(text.utf8).write(to: URL(fileURLWithPath: path))
      #expect {
        try RunClassNames(contentsOf: path)
      } throws: { error in
        let line = "\(error)"
        return line.hasPrefix("\(path): cannot read the run's class names (") && !line.contains("\n")
      }
    }
  }
}
