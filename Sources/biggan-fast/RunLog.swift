import BigGAN
import Foundation

/// The run folder's files and the terminal: `config.json`,
/// `metrics.jsonl`, and a progress line (rewritten in place on a terminal,
/// one line per logged step otherwise).
final class RunLog {
  let folder: String
  private let metricsFile: MetricsFile
  private let interactive = isatty(STDERR_FILENO) != 0
  private var lastProgressLength = 0

  /// Opens the run's files; `resumedStep` drops metrics lines logged after
  /// the checkpoint a resumed run continues from.
  init(folder: String, model: BigGANConfiguration, recipe: TrainingRecipe, data: String, resumedStep: Int?) throws {
    self.folder = folder
    for sub in ["", "samples", "checkpoint"] {
      try FileError.createFolder((folder as NSString).appendingPathComponent(sub))
    }
    struct Config: Encodable { let model: BigGANConfiguration; let recipe: TrainingRecipe; let data: String }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try FileError.write(
      try encoder.encode(Config(model: model, recipe: recipe, data: data)),
      to: (folder as NSString).appendingPathComponent("config.json"))
    metricsFile = try MetricsFile(path: (folder as NSString).appendingPathComponent("metrics.jsonl"), through: resumedStep)
  }

  /// A line that stays on screen.
  func line(_ text: String) {
    clearProgress()
    StandardError.write(text + "\n")
  }

  /// A line only worth showing on a terminal's scroll-back.
  func note(_ text: String) { line(text) }

  func progress(report: StepReport, total: Int, stepsPerSecond: Double, window: [StepReport]) {
    guard interactive else { return }
    let imagesPerSecond = Double(window.map(\.images).reduce(0, +)) / max(window.map(\.seconds).reduce(0, +), 1e-9)
    let eta = Double(total - report.step) / max(stepsPerSecond, 1e-9)
    let text = String(
      format: "step %d/%d  %.1f img/s  ETA %@  D %.3f/%.3f  G %.3f",
      report.step, total, imagesPerSecond, duration(eta), report.lossDiscriminatorReal,
      report.lossDiscriminatorFake, report.lossGenerator)
    let padding = String(repeating: " ", count: max(0, lastProgressLength - text.count))
    StandardError.write("\r" + text + padding)
    lastProgressLength = text.count
  }

  /// Appends the mean of `window` to metrics.jsonl (and prints it when the
  /// output is not a terminal).
  func metrics(window: [StepReport], recipe: TrainingRecipe, extra: [String: Any] = [:]) {
    guard let last = window.last else { return }
    let n = Float(window.count)
    func mean(_ f: (StepReport) -> Float) -> Double { Double(window.map(f).reduce(0, +) / n) }
    let seconds = window.map(\.seconds).reduce(0, +)
    let entry: [String: Any] = [
      "step": last.step,
      "loss_d_real": mean(\.lossDiscriminatorReal), "loss_d_fake": mean(\.lossDiscriminatorFake),
      "loss_g": mean(\.lossGenerator), "d_real": mean(\.meanReal), "d_fake": mean(\.meanFake),
      "lr_g": Double(recipe.generatorLearningRate), "lr_d": Double(recipe.discriminatorLearningRate),
      "images_per_s": Double(window.map(\.images).reduce(0, +)) / max(seconds, 1e-9),
      "time": Date().timeIntervalSince1970,
    ].merging(extra) { a, _ in a }
    record(entry)
    if !interactive {
      line(String(
        format: "step %d  D %.4f/%.4f  G %.4f  D(x) %.3f  D(G(z)) %.3f  %.1f img/s", last.step,
        mean(\.lossDiscriminatorReal), mean(\.lossDiscriminatorFake), mean(\.lossGenerator),
        mean(\.meanReal), mean(\.meanFake), Double(window.map(\.images).reduce(0, +)) / max(seconds, 1e-9)))
    }
  }

  /// Appends one JSON object to metrics.jsonl.
  func record(_ entry: [String: Any]) { metricsFile.record(entry) }

  func finish() {
    clearProgress()
  }

  private func clearProgress() {
    guard interactive, lastProgressLength > 0 else { return }
    StandardError.write("\r" + String(repeating: " ", count: lastProgressLength) + "\r")
    lastProgressLength = 0
  }

  private func duration(_ s: Double) -> String {
    guard s.isFinite else { return "--" }
    let t = Int(s)
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
  }
}
