import ArgumentParser
import BGKernels
import BigGAN
import Foundation

/// One configuration of a comparison, trained once per seed.
struct ComparedArm {
  var name: String
  var label: String
  var flags: [String]
  /// Its steps as a share of the experiment's (`--accumulate 4` at equal
  /// compute takes a quarter).
  var stepShare: Double = 1
}

/// The x axis of a comparison's curves.
enum CurveAxis {
  case steps, images

  var label: String { self == .steps ? "G steps" : "real images seen" }
}

/// Trains every arm over `seeds` seeds, measures each checkpoint, and
/// writes the comparison: `results.json` (every measurement), `results.md`
/// (final and best values per arm, mean ± std over seeds, and what
/// `extra` adds) and `curves.png` (distance and score over `axis`).
func runComparison(
  _ runner: ExperimentRunner, title: String, arms: [ComparedArm], steps: Int, seeds: Int, axis: CurveAxis,
  extra: [(heading: String, value: (ExperimentRunner, [ExperimentArm]) throws -> String)] = []
) throws {
  let s = runner.scorer
  var table = [
    "# \(title)", "",
    "| arm | seeds | final \(s.distanceName) | final \(s.scoreName) | best \(s.distanceName) | step of best |" + extra.map { " \($0.heading) |" }.joined(),
    "|---|---|---|---|---|---|" + String(repeating: "---|", count: extra.count),
  ]
  var json: [[String: Any]] = []
  var distanceSeries: [LineChart.Series] = [], scoreSeries: [LineChart.Series] = []
  let runsOfArm = arms.map { arm in
    (0..<seeds).map { k in
      ExperimentArm(
        name: seeds == 1 ? arm.name : "\(arm.name)-seed\(k)", label: arm.label, flags: arm.flags,
        steps: max(1, Int((Double(steps) * arm.stepShare).rounded())), seed: UInt64(k))
    }
  }
  try runner.train(runsOfArm.flatMap { $0 })
  for (arm, runs) in zip(arms, runsOfArm) {
    let curves = try runs.map { try runner.scores(of: $0) }
    for (run, curve) in zip(runs, curves) {
      json.append([
        "arm": arm.name, "label": arm.label, "flags": arm.flags, "seed": run.seed, "steps": run.steps,
        "points": curve.map { ["step": $0.step, "images": $0.images, "distance": $0.distance, "score": $0.score, "values": $0.values] },
      ])
    }
    let finals = curves.compactMap(\.last), bests = curves.compactMap { $0.min { $0.distance < $1.distance } }
    let fd = meanAndDeviation(finals.map(\.distance)), fs = meanAndDeviation(finals.map(\.score))
    let bd = meanAndDeviation(bests.map(\.distance))
    let extras = try extra.map { try $0.value(runner, runs) }
    table.append(
      "| \(arm.label) | \(seeds) | \(format(fd)) | \(format(fs)) | \(format(bd)) | \(bests.map { String($0.step) }.joined(separator: ", ")) |"
        + extras.map { " \($0) |" }.joined())
    // Seeds share checkpoint steps, so their curves average point by point.
    let length = curves.map(\.count).min() ?? 0
    var dPoints: [(x: Double, y: Double)] = [], sPoints: [(x: Double, y: Double)] = [], dErr: [Double] = [], sErr: [Double] = []
    for i in 0..<length {
      let x = Double(axis == .steps ? curves[0][i].step : curves[0][i].images)
      let d = meanAndDeviation(curves.map { $0[i].distance }), sc = meanAndDeviation(curves.map { $0[i].score })
      dPoints.append((x, d.mean)); dErr.append(d.deviation)
      sPoints.append((x, sc.mean)); sErr.append(sc.deviation)
    }
    distanceSeries.append(.init(name: arm.label, points: dPoints, errors: dErr))
    scoreSeries.append(.init(name: arm.label, points: sPoints, errors: sErr))
  }
  try runner.writeResults(["experiment": title, "seeds": seeds, "steps": steps, "arms": json], markdown: table)
  try LineChart.write(
    [
      LineChart(title: "\(s.distanceName) (lower is better)", xLabel: axis.label, yLabel: s.distanceName, series: distanceSeries),
      LineChart(title: "\(s.scoreName) (higher is better)", xLabel: axis.label, yLabel: s.scoreName, series: scoreSeries),
    ], to: (runner.out as NSString).appendingPathComponent("curves.png"))
  print("wrote \(runner.out)/results.json, results.md and curves.png")
}

/// "mean ± std" with three decimals, or the value alone for one seed.
func format(_ v: (mean: Double, deviation: Double)) -> String {
  v.deviation == 0 ? String(format: "%.3f", v.mean) : String(format: "%.3f ± %.3f", v.mean, v.deviation)
}

/// The mean training speed of `runs` from their metrics lines, in images
/// per second.
func trainingSpeed(_ runner: ExperimentRunner, _ runs: [ExperimentArm]) throws -> String {
  let rates = try runs.flatMap { try runner.metrics(of: $0).compactMap { $0["images_per_s"] as? Double } }
  return rates.isEmpty ? "-" : String(format: "%.1f", rates.sorted()[rates.count / 2])
}
