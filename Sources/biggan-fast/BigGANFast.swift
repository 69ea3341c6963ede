import ArgumentParser
import BGKernels
import BigGAN

/// `biggan-fast`: BigGAN on the CPU.
@main
struct BigGANFast: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "biggan-fast",
    abstract: "BigGAN on the CPU: training, sampling, evaluation, the paper's experiments, model information and whole-network benchmarks.",
    subcommands: [Train.self, Sample.self, Eval.self, Stats.self, Experiment.self, Info.self, Bench.self]
  )
}

/// The preset `--config NAME` names, or a message listing them all.
func preset(named name: String) throws -> TrainingPreset {
  guard let preset = TrainingPreset.all[name] else {
    throw ValidationError("unknown config '\(name)'; expected one of \(TrainingPreset.names.joined(separator: ", "))")
  }
  return preset
}

/// Options that pick an architecture: a preset, then overrides.
struct ModelOptions: ParsableArguments {
  @Option(help: "Preset: \(TrainingPreset.names.joined(separator: ", ")).")
  var config: String = "cifar32"

  @Option(parsing: .unconditional, help: "Channel multiplier of both networks (overrides the preset).")
  var ch: Int?

  @Option(name: .customLong("dim-z"), parsing: .unconditional, help: "Latent size (overrides the preset).")
  var dimZ: Int?

  @Option(name: .customLong("shared-dim"), parsing: .unconditional, help: "Shared class-embedding size (overrides the preset).")
  var sharedDim: Int?

  @Option(parsing: .unconditional, help: "Number of classes (overrides the preset).")
  var classes: Int?

  @Option(name: .customLong("g-attention"), help: "Generator attention resolutions, comma-separated, or 'none'.")
  var generatorAttention: String?

  @Option(name: .customLong("d-attention"), help: "Discriminator attention resolutions, comma-separated, or 'none'.")
  var discriminatorAttention: String?

  func validate() throws {
    for (flag, v) in [("--ch", ch), ("--dim-z", dimZ), ("--shared-dim", sharedDim), ("--classes", classes)] {
      if let v, v < 1 { throw ValidationError("\(flag) must be at least 1, got \(v)") }
    }
  }

  /// The preset and the overrides given, as flags, for messages.
  var flags: String {
    let overrides: [(String, String?)] = [
      ("--ch", ch.map(String.init)), ("--dim-z", dimZ.map(String.init)), ("--shared-dim", sharedDim.map(String.init)),
      ("--classes", classes.map(String.init)), ("--g-attention", generatorAttention), ("--d-attention", discriminatorAttention),
    ]
    return (["--config \(config)"] + overrides.compactMap { flag, value in value.map { "\(flag) \($0)" } }).joined(separator: " ")
  }

  /// The chosen configuration, validated.
  func resolve() throws -> BigGANConfiguration {
    var c = try preset(named: config).model
    if let ch { c.generatorChannels = ch; c.discriminatorChannels = ch }
    if let dimZ { c.dimZ = dimZ }
    if let sharedDim { c.sharedDim = sharedDim }
    if let classes { c.classes = classes }
    if let generatorAttention { c.generatorAttention = try Self.resolutions(generatorAttention, "--g-attention") }
    if let discriminatorAttention { c.discriminatorAttention = try Self.resolutions(discriminatorAttention, "--d-attention") }
    do { try c.validate() } catch { throw ValidationError(error.description) }
    return c
  }

  static func resolutions(_ text: String, _ flag: String) throws -> [Int] {
    if text == "none" || text.isEmpty { return [] }
    return try text.split(separator: ",").map { part in
      guard let r = Int(part.trimmingCharacters(in: .whitespaces)), r > 0 else {
        throw ValidationError("\(flag): '\(part)' is not a resolution; expected e.g. 64 or 32,64 or none")
      }
      return r
    }
  }
}
