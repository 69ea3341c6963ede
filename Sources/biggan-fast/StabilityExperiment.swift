import ArgumentParser
import BigGAN
import Foundation

/// `biggan-fast experiment stability`: the paper's Section 4.2 remedies for
/// D, the R1 penalty and spectral clamping, against none.
struct StabilityExperiment: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "stability",
    abstract: "D's remedies of the paper's Section 4.2: R1 (gamma 1 and 10) and spectral clamping, against none.",
    discussion: """
      The paper finds that a strong enough R1 penalty on D (gamma 10) keeps
      training stable but costs about 45% of IS (gamma 1: 20%), and that D
      memorises its training set (train accuracy far above held-out). Each
      arm trains --steps steps with a held-out share of the data; the table
      adds D's final train and held-out accuracy and the warnings the
      collapse watch raised. Writes <out>/results.json, results.md and
      curves.png.
      """)

  @OptionGroup var options: ExperimentOptions
  @Option(help: "Output folder.") var out: String = "experiments/stability"
  @Option(name: .customLong("clamp"), parsing: .unconditional, help: "The spectral clamp's sigma.") var clamp: Float = 1

  func run() throws {
    let runner = try ExperimentRunner(options: options, out: out)
    let heldOut = ["--held-out", "0.05"]
    try runComparison(
      runner, title: "Stabilising D",
      arms: [
        ComparedArm(name: "none", label: "no penalty", flags: heldOut),
        ComparedArm(name: "r1-1", label: "R1 gamma 1", flags: heldOut + ["--r1", "1"]),
        ComparedArm(name: "r1-10", label: "R1 gamma 10", flags: heldOut + ["--r1", "10"]),
        ComparedArm(name: "clamp", label: "D clamp \(clamp)", flags: heldOut + ["--sv-clamp", String(clamp)]),
      ],
      steps: options.stepCount(default: 3000), seeds: options.seedCount(default: 2), axis: .steps,
      extra: [("D train / held-out accuracy", discriminatorAccuracy), ("warnings", warnings)])
  }

  /// D's last logged accuracy on training and held-out reals, per seed.
  func discriminatorAccuracy(_ runner: ExperimentRunner, _ runs: [ExperimentArm]) throws -> String {
    try runs.map { run -> String in
      guard let last = try runner.metrics(of: run).last(where: { $0["d_train_accuracy"] != nil }),
        let train = last["d_train_accuracy"] as? Double, let held = last["d_heldout_accuracy"] as? Double
      else { return "-" }
      return String(format: "%.2f / %.2f", train, held)
    }.joined(separator: ", ")
  }

  /// The collapse watch's warnings, per seed.
  func warnings(_ runner: ExperimentRunner, _ runs: [ExperimentArm]) throws -> String {
    try runs.map { String(try runner.metrics(of: $0).filter { $0["warning"] != nil }.count) }.joined(separator: ", ")
  }
}
