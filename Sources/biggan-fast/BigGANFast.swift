import ArgumentParser
import BGKernels
import BigGAN

/// `biggan-fast`: BigGAN on the CPU.
@main
struct BigGANFast: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "biggan-fast",
    abstract: "BigGAN on the CPU: training, sampling, evaluation, the paper's experiments, model information and whole-network benchmarks.",
    subcommands: [Train.self, Sample.self, Eval.self, Stats.self, Classifier.self, Experiment.self, Serve.self, Info.self, Bench.self]
  )
}

/// The preset `--config NAME` names, or a message listing them all.
func preset(named name: String) throws -> TrainingPreset {
  guard let preset = TrainingPreset.all[name] else {
    throw ValidationError("unknown config '\(name)'; expected one of \(TrainingPreset.names.joined(separator: ", "))")
  }
  return preset
}

/// The paper's Table 1 steps from SA-GAN to BigGAN that change the
/// architecture: the shared class embedding, hierarchical latents and the
/// width of each network. `train` and the model commands (`info`, `bench`)
/// share them.
struct AblationOptions: ParsableArguments {
  @Flag(name: .customLong("no-shared"), help: "No shared class embedding: every generator batch-norm embeds the classes itself (Table 1's rows before 'Shared').")
  var noShared = false

  @Flag(name: .customLong("no-hier"), help: "No hierarchical latents: the whole z goes to the generator's stem alone (Table 1's rows before 'Skip-z').")
  var noHier = false

  @Option(name: .customLong("g-ch"), parsing: .unconditional, help: "Channel multiplier of the generator (overrides the preset; e.g. 1.5 times it for Table 1's width step).")
  var generatorChannels: Int?

  @Option(name: .customLong("d-ch"), parsing: .unconditional, help: "Channel multiplier of the discriminator (overrides the preset).")
  var discriminatorChannels: Int?

  func validate() throws {
    for (flag, v) in [("--g-ch", generatorChannels), ("--d-ch", discriminatorChannels)] {
      if let v, v < 1 { throw ValidationError("\(flag) must be at least 1, got \(v)") }
    }
  }

  /// The flags given, with their values, for messages.
  var flags: [String] {
    (noShared ? ["--no-shared"] : []) + (noHier ? ["--no-hier"] : [])
      + [("--g-ch", generatorChannels), ("--d-ch", discriminatorChannels)].compactMap { f, v in v.map { "\(f) \($0)" } }
  }

  /// `c` with the flags given.
  func apply(to c: inout BigGANConfiguration) {
    if noShared { c.sharedEmbedding = false }
    if noHier { c.hierarchical = false }
    if let generatorChannels { c.generatorChannels = generatorChannels }
    if let discriminatorChannels { c.discriminatorChannels = discriminatorChannels }
  }

  /// Refuses, naming the flag, any flag that would change `c`, a run's model
  /// that a resume keeps.
  func requireUnchanged(_ c: BigGANConfiguration) throws {
    let keep = "resume without it or start another --run"
    if noShared && c.sharedEmbedding {
      throw ValidationError("--no-shared: this run's generator has a shared class embedding; \(keep)")
    }
    if noHier && c.hierarchical {
      throw ValidationError("--no-hier: this run's generator has hierarchical latents; \(keep)")
    }
    if let generatorChannels, generatorChannels != c.generatorChannels {
      throw ValidationError("--g-ch \(generatorChannels): this run's generator has ch \(c.generatorChannels); \(keep)")
    }
    if let discriminatorChannels, discriminatorChannels != c.discriminatorChannels {
      throw ValidationError("--d-ch \(discriminatorChannels): this run's discriminator has ch \(c.discriminatorChannels); \(keep)")
    }
  }
}

/// A model's class embedding, in words.
func describeEmbedding(_ c: BigGANConfiguration) -> String {
  c.sharedEmbedding ? "shared embedding \(c.sharedDim)" : "no shared embedding (one per batch-norm)"
}

/// One line of a model's Table 1 settings: the widths, the class
/// embedding and the latents.
func describeArchitecture(_ c: BigGANConfiguration) -> String {
  let latents = c.hierarchical ? "hierarchical z \(c.dimZ)" : "z \(c.dimZ) to the stem only"
  return "G ch \(c.generatorChannels), D ch \(c.discriminatorChannels), \(describeEmbedding(c)), \(latents)"
}

/// Options that pick an architecture: a preset, then overrides.
struct ModelOptions: ParsableArguments {
  @Option(help: "Preset: \(TrainingPreset.names.joined(separator: ", ")).")
  var config: String = "cifar32"

  @Option(parsing: .unconditional, help: "Channel multiplier of both networks (overrides the preset; --g-ch and --d-ch override it).")
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

  @OptionGroup var ablations: AblationOptions

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
    let given = overrides.compactMap { flag, value in value.map { "\(flag) \($0)" } }
    return (["--config \(config)"] + given + ablations.flags).joined(separator: " ")
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
    ablations.apply(to: &c)
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
