import ArgumentParser

/// `biggan-fast experiment`: the paper's findings, each reproduced by one
/// command from training to table and figure.
struct Experiment: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Reproduce a finding of the BigGAN paper: train if needed, evaluate, write a table and figures.",
    subcommands: [
      TruncationExperiment.self, OrthoExperiment.self, BatchExperiment.self, WidthExperiment.self, AblationExperiment.self,
      SpectraExperiment.self, StabilityExperiment.self,
    ])
}
