import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// Where `sample` and `eval` find a generator: a run's newest checkpoint or
/// a checkpoint folder or file.
struct GeneratorSource: ParsableArguments {
  @Option(name: .customLong("run"), help: "Run name: uses its newest checkpoint.") var runName: String?
  @Option(help: "Folder that holds run folders.") var runs: String = "runs"
  @Option(help: "A checkpoint folder, or a G / G_ema safetensors file written by biggan-fast.") var checkpoint: String?
  @Flag(help: "Use the raw generator weights instead of their moving average.") var raw = false

  /// Whether a generator was named.
  var isGiven: Bool { runName != nil || checkpoint != nil }

  /// The run folder, when the generator comes from `--run`.
  var runFolder: String? { runName.map { (runs as NSString).appendingPathComponent($0) } }

  /// The run folder the generator was trained in: `--run`'s, or the one a
  /// `--checkpoint` inside `RUN/checkpoint/` belongs to.
  var trainingRunFolder: String? { runFolder ?? checkpoint.flatMap(RunClassNames.runFolder(ofCheckpoint:)) }

  /// The weights file, the checkpoint folder it sits in (if any), and its
  /// model.
  func file() throws -> (file: SafeTensorsFile, folder: String?, model: BigGANConfiguration) {
    let name = raw ? "G.safetensors" : "G_ema.safetensors"
    var path: String, folder: String?
    if let runFolder {
      guard let latest = Checkpoint.newestValid(in: (runFolder as NSString).appendingPathComponent("checkpoint")) else {
        throw ValidationError("no checkpoint in \(runFolder); train first or pass --checkpoint")
      }
      folder = latest
      path = "\(latest)/\(name)"
    } else {
      guard let checkpoint else { throw ValidationError("pass --run or --checkpoint") }
      path = checkpoint
      var isFolder: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
        throw ValidationError("--checkpoint \(path): no such file or folder")
      }
      if isFolder.boolValue {
        folder = path
        path = "\(path)/\(name)"
      }
    }
    let file = try SafeTensorsFile(contentsOf: path)
    return (file, folder, try Checkpoint.configuration(of: file))
  }

  /// The generator, loaded and set to `precision`; refused before it is
  /// built when it cannot sample `batch` images at once in this machine's
  /// memory.
  func generator(precision: Precision, batch: Int) throws -> (generator: Generator, folder: String?) {
    let (file, folder, model) = try file()
    return (try Self.generator(file, model: model, precision: precision, batch: batch), folder)
  }

  /// The generator `file` holds, `model`, loaded as `generator(precision:batch:)` says.
  static func generator(_ file: SafeTensorsFile, model: BigGANConfiguration, precision: Precision, batch: Int) throws -> Generator {
    try MemoryBudget.require(model.estimatedSamplingBytes(batch: batch), for: "--batch \(batch)", "sampling from \(file.path)")
    let g = try Generator(model, seed: 0, initialization: .zeros)
    try StateDict.load(g, from: file)
    g.precision = precision
    return g
  }
}

/// Comma-separated truncations, each in (0, 1], at least one.
func truncations(_ text: String, flag: String) throws -> [Double] {
  let values = try text.split(separator: ",").map { part -> Double in
    guard let v = Double(part.trimmingCharacters(in: .whitespaces)), v > 0, v <= 1 else {
      throw ValidationError("\(flag): '\(part)' is not a truncation in (0, 1]")
    }
    return v
  }
  guard !values.isEmpty else { throw ValidationError("\(flag) needs at least one value") }
  return values
}
