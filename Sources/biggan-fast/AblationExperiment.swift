import ArgumentParser
import BigGAN

/// `biggan-fast experiment ablation`: the shared class embedding and the
/// hierarchical latents of the paper's Table 1, rows 5-6, each taken away.
struct AblationExperiment: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ablation",
    abstract: "BigGAN with and without its shared embedding and hierarchical latents (the paper's Table 1, rows 5-6).",
    discussion: """
      Four arms on the same data and seeds: both (BigGAN), no shared
      embedding (a class embedding per batch norm), no hierarchical latents
      (z enters the stem only), and neither. Writes <out>/results.json,
      results.md (with training speed) and curves.png.
      """)

  @OptionGroup var options: ExperimentOptions
  @Option(help: "Output folder.") var out: String = "experiments/ablation"

  func run() throws {
    let runner = try ExperimentRunner(options: options, out: out)
    try runComparison(
      runner, title: "Shared embedding and hierarchical latents",
      arms: [
        ComparedArm(name: "shared-hier", label: "shared + hier", flags: []),
        ComparedArm(name: "hier", label: "hier only", flags: ["--no-shared"]),
        ComparedArm(name: "shared", label: "shared only", flags: ["--no-hier"]),
        ComparedArm(name: "neither", label: "neither", flags: ["--no-shared", "--no-hier"]),
      ],
      steps: options.stepCount(default: 3000), seeds: options.seedCount(default: 2), axis: .steps,
      extra: [("images/s", trainingSpeed)])
  }
}
