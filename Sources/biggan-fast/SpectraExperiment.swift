import ArgumentParser
import BigGAN
import Foundation

/// `biggan-fast experiment spectra`: the paper's Section 4.1 and Figure
/// 3(a, b), the top singular values of every G and D layer through a run
/// pushed to collapse.
struct SpectraExperiment: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "spectra",
    abstract: "The top singular value of every G and D layer through a run pushed to collapse (the paper's Figure 3).",
    discussion: """
      The paper sees G's top singular values grow through training and spike
      when it collapses, while D's are noisy and jump at the collapse. This
      trains one run of the preset with larger learning rates (--g-lr, --d-lr;
      default 4x the preset's) and one D step per G step, which is what
      pushes small models here to collapse, logs every weight's singular
      values --sv-points times, and measures G_ema at --points checkpoints. A
      collapse is the first measured checkpoint whose distance is more than
      twice the best before it, or the collapse watch's first warning.
      Writes <out>/results.json, results.md and spectra.png (G's and D's
      top singular values, the eight layers that grew most, and the
      distance over steps).
      """)

  @OptionGroup var options: ExperimentOptions
  @Option(help: "Output folder.") var out: String = "experiments/spectra"
  @Option(name: .customLong("g-lr"), parsing: .unconditional, help: "G's learning rate (default 4x the preset's).") var gLR: Float?
  @Option(name: .customLong("d-lr"), parsing: .unconditional, help: "D's learning rate (default 4x the preset's).") var dLR: Float?
  @Option(name: .customLong("d-steps"), parsing: .unconditional, help: "D steps per G step.") var dSteps: Int = 1
  @Option(name: .customLong("sv-points"), parsing: .unconditional, help: "Singular-value logs over the run.") var svPoints: Int = 200

  func validate() throws {
    for (flag, value) in [("--g-lr", gLR), ("--d-lr", dLR)] {
      if let value, !(value > 0 && value.isFinite) { throw ValidationError("\(flag) must be above 0, got \(value)") }
    }
    guard dSteps >= 1 else { throw ValidationError("--d-steps must be at least 1, got \(dSteps)") }
    guard svPoints >= 2 else { throw ValidationError("--sv-points must be at least 2, got \(svPoints)") }
  }

  func run() throws {
    let runner = try ExperimentRunner(options: options, out: out)
    let recipe = try preset(named: options.config).recipe
    let steps = options.stepCount(default: 6000)
    let g = gLR ?? 4 * recipe.generatorLearningRate, d = dLR ?? 4 * recipe.discriminatorLearningRate
    let arm = ExperimentArm(
      name: "run", label: "run",
      flags: ["--g-lr", String(g), "--d-lr", String(d), "--d-steps", String(dSteps), "--sv-every", String(max(1, steps / svPoints))],
      steps: steps, seed: 0)
    try runner.train(arm)
    let curve = try runner.scores(of: arm)
    let metrics = try runner.metrics(of: arm)
    var spectra: [String: [(x: Double, y: Double)]] = [:]
    for entry in metrics {
      guard let step = entry["step"] as? Int, let values = entry["singular_values"] as? [String: [Double]] else { continue }
      for (name, sv) in values { if let top = sv.first { spectra[name, default: []].append((Double(step), top)) } }
    }
    guard !spectra.isEmpty else { throw ValidationError("\(runner.folder(of: arm)): metrics.jsonl has no singular values") }
    var collapse: Int?
    var best = Double.infinity
    for point in curve {
      if point.distance > 2 * best { collapse = point.step; break }
      best = min(best, point.distance)
    }
    let warning = metrics.first { $0["warning"] != nil }.flatMap { $0["step"] as? Int }
    try write(spectra: spectra, curve: curve, collapse: collapse, warning: warning, runner: runner, settings: arm.flags, steps: steps)
  }

  /// The layers of `network` ("G" or "D") whose top singular value grew
  /// most over the run (largest over first), at most `count`.
  static func grown(_ spectra: [String: [(x: Double, y: Double)]], network: String, count: Int) -> [String] {
    let names = spectra.keys.filter { $0.hasPrefix(network + "/") }
    func growth(_ name: String) -> Double {
      let s = spectra[name]!
      return (s.map(\.y).max() ?? 0) / max(s.first?.y ?? 1, 1e-12)
    }
    return names.sorted { (growth($0), $1) > (growth($1), $0) }.prefix(count).sorted()
  }

  func write(
    spectra: [String: [(x: Double, y: Double)]], curve: [CheckpointScore], collapse: Int?, warning: Int?,
    runner: ExperimentRunner, settings: [String], steps: Int
  ) throws {
    let s = runner.scorer
    var lines = [
      "# Singular values through a run pushed to collapse", "",
      "\(options.config) preset, \(steps) steps, \(settings.joined(separator: " ")).", "",
      "Collapse (distance above twice its best): " + (collapse.map { "step \($0)" } ?? "none measured")
        + "; first collapse-watch warning: " + (warning.map { "step \($0)" } ?? "none") + ".", "",
      "| layer | first sigma0 | largest | at step | last |", "|---|---|---|---|---|",
    ]
    var charts: [LineChart] = []
    var layers: [[String: Any]] = []
    for network in ["G", "D"] {
      let names = Self.grown(spectra, network: network, count: 8)
      for name in names {
        let series = spectra[name]!
        let peak = series.max { $0.y < $1.y }!
        lines.append(String(format: "| %@ | %.3f | %.3f | %d | %.3f |", name, series.first!.y, peak.y, Int(peak.x), series.last!.y))
        layers.append(["layer": name, "steps": series.map(\.x), "sigma0": series.map(\.y)])
      }
      charts.append(LineChart(
        title: "\(network): top singular values", xLabel: "G steps", yLabel: "sigma0",
        series: names.map { LineChart.Series(name: String($0.dropFirst(2)), points: spectra[$0]!) }))
    }
    lines += ["", "| step | \(s.distanceName) | \(s.scoreName) |", "|---|---|---|"]
    lines += curve.map { String(format: "| %d | %.3f | %.3f |", $0.step, $0.distance, $0.score) }
    charts.append(LineChart(
      title: "\(s.distanceName) of G_ema", xLabel: "G steps", yLabel: s.distanceName,
      series: [.init(name: "", points: curve.map { (Double($0.step), $0.distance) })]))
    let json: [String: Any] = [
      "experiment": "spectra", "steps": steps, "flags": settings, "collapse_step": collapse ?? NSNull(),
      "first_warning_step": warning ?? NSNull(), "layers": layers,
      "measurements": curve.map { ["step": $0.step, "distance": $0.distance, "score": $0.score] },
    ]
    try runner.writeResults(json, markdown: lines)
    try LineChart.write(charts, to: (runner.out as NSString).appendingPathComponent("spectra.png"))
    print("wrote \(runner.out)/results.json, results.md and spectra.png")
  }
}
