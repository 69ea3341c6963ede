import BigGAN
import Foundation

/// The run folder's files and the terminal: `config.json`,
/// `metrics.jsonl`, and a progress line (rewritten in place on a terminal,
/// one line per logged step otherwise); a `TrainingRun`'s events go to
/// `report`.
final class RunLog {
  let recipe: TrainingRecipe
  let schedule: RunSchedule
  private let metricsFile: MetricsFile
  private let interactive = isatty(STDERR_FILENO) != 0
  private var lastProgressLength = 0

  /// Opens the run's files; `resumedStep` drops metrics lines logged after
  /// the checkpoint a resumed run continues from.
  init(folder: String, model: BigGANConfiguration, recipe: TrainingRecipe, schedule: RunSchedule, data: String, resumedStep: Int?) throws {
    self.recipe = recipe
    self.schedule = schedule
    try FileError.createFolder(folder)
    struct Config: Encodable { let model: BigGANConfiguration; let recipe: RunSettings; let data: String }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try FileError.write(
      try encoder.encode(Config(model: model, recipe: RunSettings(recipe: recipe, schedule: schedule), data: data)),
      to: (folder as NSString).appendingPathComponent("config.json"))
    metricsFile = try MetricsFile(path: (folder as NSString).appendingPathComponent("metrics.jsonl"), through: resumedStep)
  }

  /// A line that stays on screen.
  func line(_ text: String) {
    clearProgress()
    StandardError.write(text + "\n")
  }

  /// Prints and records what a training run reports.
  func report(_ event: TrainingEvent) {
    switch event {
    case .stepped(let report, let rate, let window):
      progress(report: report, stepsPerSecond: rate, window: window)
    case .metrics(let window, let verdicts):
      metrics(window: window, verdicts: verdicts)
    case .warning(let step, let message):
      line("warning: step \(step): \(message)")
      record(["step": step, "warning": message])
    case .singularValues(let step, let values):
      record(["step": step, "singular_values": values.mapValues { $0.map(Double.init) }])
    case .checkpointSaved(let path):
      line("checkpoint \(path)")
    case .samplesSaved(let path):
      line("samples \(path)")
    case .evaluated(let e):
      record(["step": e.step, "eval": e.values])
      line(String(
        format: "eval step %d: FID %.3f, IS %.3f +- %.3f (%d images)", e.step, e.frechetDistance,
        e.report["inception_score_mean"]!, e.report["inception_score_std"]!, e.images))
    case .bestCheckpointSaved(let path):
      line("best FID so far: \(path)")
    }
  }

  private func progress(report: StepReport, stepsPerSecond: Double, window: [StepReport]) {
    guard interactive else { return }
    let total = schedule.steps
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

  /// Appends the mean of `window` and D's verdicts to metrics.jsonl (and
  /// prints it when the output is not a terminal).
  private func metrics(window: [StepReport], verdicts: HeldOutVerdicts?) {
    guard let last = window.last else { return }
    let n = Float(window.count)
    func mean(_ f: (StepReport) -> Float) -> Double { Double(window.map(f).reduce(0, +) / n) }
    let seconds = window.map(\.seconds).reduce(0, +)
    var entry: [String: Any] = [
      "step": last.step,
      "loss_d_real": mean(\.lossDiscriminatorReal), "loss_d_fake": mean(\.lossDiscriminatorFake),
      "loss_g": mean(\.lossGenerator), "d_real": mean(\.meanReal), "d_fake": mean(\.meanFake),
      "lr_g": Double(recipe.generatorLearningRate), "lr_d": Double(recipe.discriminatorLearningRate),
      "images_per_s": Double(window.map(\.images).reduce(0, +)) / max(seconds, 1e-9),
      "time": Date().timeIntervalSince1970,
    ]
    if let verdicts {
      entry["d_train_mean"] = Double(verdicts.trainingMean)
      entry["d_heldout_mean"] = Double(verdicts.heldOutMean)
      entry["d_train_accuracy"] = Double(verdicts.trainingAccuracy)
      entry["d_heldout_accuracy"] = Double(verdicts.heldOutAccuracy)
    }
    let penalties = window.compactMap(\.penaltyR1)
    if !penalties.isEmpty { entry["r1"] = Double(penalties.reduce(0, +) / Float(penalties.count)) }
    if window.contains(where: { $0.communicationSeconds > 0 }) {
      entry["communication_s"] = window.map(\.communicationSeconds).reduce(0, +) / Double(n)
    }
    record(entry)
    if !interactive {
      line(String(
        format: "step %d  D %.4f/%.4f  G %.4f  D(x) %.3f  D(G(z)) %.3f  %.1f img/s", last.step,
        mean(\.lossDiscriminatorReal), mean(\.lossDiscriminatorFake), mean(\.lossGenerator),
        mean(\.meanReal), mean(\.meanFake), Double(window.map(\.images).reduce(0, +)) / max(seconds, 1e-9)))
    }
  }

  /// Appends one JSON object to metrics.jsonl.
  private func record(_ entry: [String: Any]) { metricsFile.record(entry) }

  /// Clears the progress line.
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
