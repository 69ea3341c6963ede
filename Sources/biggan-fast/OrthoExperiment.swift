import ArgumentParser
import BigGAN
import Foundation

/// `biggan-fast experiment ortho`: the paper's Section 3.1 claim that
/// orthogonal regularisation makes models amenable to truncation (16% of
/// models without it, 60% with it).
struct OrthoExperiment: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ortho",
    abstract: "How many models are amenable to truncation, with and without orthogonal regularisation (the paper's Section 3.1).",
    discussion: """
      Trains --seeds models with --ortho 0 and as many with --ortho STRENGTH,
      then measures each model's G_ema at truncation 1 and at each of
      --truncations. A model is amenable to truncation when every lower
      threshold raises its score (IS, or sample accuracy) above the
      untruncated one and keeps its distance (FID or FCD) within
      --tolerance times the untruncated one: truncation trades variety for
      fidelity instead of breaking the samples. Reports the two fractions
      with 95% Wilson intervals. Writes <out>/results.json, results.md and
      amenability.png (each model's trade-off, and the fractions).
      """)

  @OptionGroup var options: ExperimentOptions
  @Option(help: "Output folder.") var out: String = "experiments/ortho"
  @Option(parsing: .unconditional, help: "Orthogonal regularisation strength of the regularised arm.") var strength: Float = 1e-4
  @Option(name: .customLong("truncations"), help: "Comma-separated truncations below 1 each model is measured at.") var thresholdList: String = "0.5,0.3"
  @Option(parsing: .unconditional, help: "Largest distance, as a multiple of the untruncated one, a truncated model may reach and count as amenable.") var tolerance: Double = 1.5

  func validate() throws {
    guard strength > 0, strength.isFinite else { throw ValidationError("--strength must be above 0, got \(strength)") }
    guard tolerance >= 1, tolerance.isFinite else { throw ValidationError("--tolerance must be at least 1, got \(tolerance)") }
    guard try thresholds().allSatisfy({ $0 < 1 }) else { throw ValidationError("--truncations: every threshold must be below 1") }
  }

  func thresholds() throws -> [Double] { try truncations(thresholdList, flag: "--truncations") }

  /// A model's measurements at truncation 1 and below, and the verdict.
  struct Model {
    var arm: String
    var seed: UInt64
    var rows: [(truncation: Double, distance: Double, score: Double)]
    var amenable: Bool
  }

  func run() throws {
    let runner = try ExperimentRunner(options: options, out: out)
    let thresholds = [1] + (try self.thresholds())
    let seeds = options.seedCount(default: 8), steps = options.stepCount(default: 1500)
    var models: [Model] = []
    let runs = [("no-ortho", Float(0)), ("ortho", strength)].flatMap { arm, value in
      (0..<seeds).map { k in
        ExperimentArm(name: "\(arm)-seed\(k)", label: arm, flags: ["--ortho", String(value)], steps: steps, seed: UInt64(k))
      }
    }
    try runner.train(runs)
    for run in runs {
      let path = Checkpoint.newestValid(in: (runner.folder(of: run) as NSString).appendingPathComponent("checkpoint"))!
      let g = try runner.generator(at: path)
      let rows = try thresholds.map { t -> (truncation: Double, distance: Double, score: Double) in
        var settings = GenerationSettings(count: options.imageCount)
        settings.truncation = t
        let m = try runner.scorer.measure(g, settings)
        StandardError.write(String(format: "%@ truncation %g: %@ %.3f, %@ %.3f\n", run.name, t, runner.scorer.distanceName, m.distance, runner.scorer.scoreName, m.score))
        return (t, m.distance, m.score)
      }
      let base = rows[0]
      let amenable = rows.dropFirst().allSatisfy { $0.score > base.score && $0.distance <= tolerance * base.distance }
      models.append(Model(arm: run.label, seed: run.seed, rows: rows, amenable: amenable))
    }
    try write(models, runner: runner, seeds: seeds, steps: steps)
  }

  /// Wilson's 95% interval of `k` successes in `n` trials.
  static func wilson(_ k: Int, _ n: Int) -> (low: Double, high: Double) {
    let z = 1.959964, p = Double(k) / Double(n), nn = Double(n)
    let centre = (p + z * z / (2 * nn)) / (1 + z * z / nn)
    let half = z / (1 + z * z / nn) * (p * (1 - p) / nn + z * z / (4 * nn * nn)).squareRoot()
    return (max(0, centre - half), min(1, centre + half))
  }

  func write(_ models: [Model], runner: ExperimentRunner, seeds: Int, steps: Int) throws {
    let s = runner.scorer
    var lines = [
      "# Orthogonal regularisation and amenability to truncation", "",
      "\(seeds) models per arm, \(steps) steps each. Amenable: every truncation in {\(thresholdList)} raises \(s.scoreName) above truncation 1 and keeps \(s.distanceName) within \(tolerance)x of it.", "",
      "| arm | amenable | fraction | 95% interval | paper |", "|---|---|---|---|---|",
    ]
    var fractions: [(x: Double, y: Double)] = [], errors: [Double] = [], summary: [[String: Any]] = []
    for (i, arm) in ["no-ortho", "ortho"].enumerated() {
      let mine = models.filter { $0.arm == arm }, k = mine.filter(\.amenable).count
      let (low, high) = Self.wilson(k, mine.count)
      lines.append(String(format: "| %@ | %d of %d | %.2f | %.2f-%.2f | %@ |", arm, k, mine.count, Double(k) / Double(mine.count), low, high, i == 0 ? "0.16" : "0.60"))
      fractions.append((Double(i), Double(k) / Double(mine.count)))
      errors.append((high - low) / 2)
      summary.append(["arm": arm, "amenable": k, "models": mine.count, "wilson_low": low, "wilson_high": high])
    }
    lines += ["", "| model | " + models[0].rows.map { "t=\($0.truncation) \(s.distanceName) / \(s.scoreName)" }.joined(separator: " | ") + " | amenable |",
      "|---|" + String(repeating: "---|", count: models[0].rows.count + 1)]
    for m in models {
      lines.append("| \(m.arm) seed \(m.seed) | " + m.rows.map { String(format: "%.3f / %.3f", $0.distance, $0.score) }.joined(separator: " | ") + " | \(m.amenable ? "yes" : "no") |")
    }
    let json: [String: Any] = [
      "experiment": "ortho amenability", "strength": strength, "tolerance": tolerance, "seeds": seeds, "steps": steps, "fractions": summary,
      "models": models.map { m in
        ["arm": m.arm, "seed": m.seed, "amenable": m.amenable,
         "rows": m.rows.map { ["truncation": $0.truncation, "distance": $0.distance, "score": $0.score] }] as [String: Any]
      },
    ]
    try runner.writeResults(json, markdown: lines)
    var tradeoffs = LineChart(
      title: "each model over truncation", xLabel: s.scoreName, yLabel: s.distanceName,
      series: models.map { m in
        LineChart.Series(name: m.seed == 0 ? m.arm : "", points: m.rows.map { ($0.score, $0.distance) })
      })
    // One colour per arm: the series of an arm's later seeds take its first's.
    tradeoffs.colourGroups = models.map { $0.arm == "ortho" ? 1 : 0 }
    var bars = LineChart(
      title: "amenable to truncation", xLabel: "", yLabel: "fraction",
      series: [.init(name: "", points: fractions, errors: errors, joined: false)])
    bars.xTicks = [(0, "no ortho"), (1, "ortho")]
    try LineChart.write([tradeoffs, bars], to: (runner.out as NSString).appendingPathComponent("amenability.png"))
    print("wrote \(runner.out)/results.json, results.md and amenability.png")
  }
}
