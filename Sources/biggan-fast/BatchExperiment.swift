import ArgumentParser
import BigGAN

/// `biggan-fast experiment batch`: the paper's Table 1 rows 1-4, a larger
/// batch at equal compute.
struct BatchExperiment: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "batch",
    abstract: "Batch B against 4B and 8B (through --accumulate) at equal compute (the paper's Table 1, rows 1-4).",
    discussion: """
      The paper raises the batch from 256 to 2048 and FID falls from 18.65 to
      12.39, with the best model reached in fewer steps before training
      collapses. Here the preset's batch B trains --steps steps, and 4B and
      8B accumulate 4 and 8 batches per step over a quarter and an eighth of
      the steps, so every arm sees the same real images. Writes
      <out>/results.json, results.md and curves.png (the measurements over
      real images seen) and keeps every run in <out>/runs.
      """)

  @OptionGroup var options: ExperimentOptions
  @Option(help: "Output folder.") var out: String = "experiments/batch"

  func run() throws {
    let runner = try ExperimentRunner(options: options, out: out)
    let batch = options.batch
    try runComparison(
      runner, title: "Batch size at equal compute",
      arms: [
        ComparedArm(name: "batch-1x", label: "batch \(batch)", flags: []),
        ComparedArm(name: "batch-4x", label: "batch \(4 * batch)", flags: ["--accumulate", "4"], stepShare: 1.0 / 4),
        ComparedArm(name: "batch-8x", label: "batch \(8 * batch)", flags: ["--accumulate", "8"], stepShare: 1.0 / 8),
      ],
      steps: options.stepCount(default: 3000), seeds: options.seedCount(default: 2), axis: .images)
  }
}
