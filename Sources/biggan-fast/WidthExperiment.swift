import ArgumentParser
import BigGAN

/// `biggan-fast experiment width`: the paper's Table 1 row with 50% more
/// channels.
struct WidthExperiment: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "width",
    abstract: "The preset's channels against 1.5 times as many (the paper's Table 1: IS +21%).",
    discussion: """
      Both arms train --steps steps on the same data and seeds; G's and D's
      channel multipliers grow by half in the wider one. Writes
      <out>/results.json, results.md (with training speed) and curves.png.
      """)

  @OptionGroup var options: ExperimentOptions
  @Option(help: "Output folder.") var out: String = "experiments/width"

  func run() throws {
    let runner = try ExperimentRunner(options: options, out: out)
    let model = try preset(named: options.config).model
    let (g, d) = (model.generatorChannels * 3 / 2, model.discriminatorChannels * 3 / 2)
    try runComparison(
      runner, title: "Width",
      arms: [
        ComparedArm(name: "ch-1x", label: "ch \(model.generatorChannels)", flags: []),
        ComparedArm(name: "ch-1.5x", label: "ch \(g)", flags: ["--g-ch", String(g), "--d-ch", String(d)]),
      ],
      steps: options.stepCount(default: 3000), seeds: options.seedCount(default: 2), axis: .steps,
      extra: [("images/s", trainingSpeed)])
  }
}
