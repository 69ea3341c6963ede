import Foundation

/// The truncation trade-off picture (BigGAN's Figure 2(a)): a score on x
/// (Inception Score, or a classifier's sample accuracy), a distance on y
/// (FID, or FCD), one point per truncation, joined in order and labelled
/// with its truncation.
public enum TradeoffPlot {
  /// What goes on an axis: the report's key and the axis label.
  public typealias Axis = (key: String, label: String)

  /// Draws `rows` (truncation, report holding both axes' keys) into a PNG
  /// file.
  public static func write(
    _ rows: [(truncation: Double, report: EvaluationReport)],
    x: Axis = ("inception_score_mean", "IS"), y: Axis = ("frechet_inception_distance", "FID"), to path: String
  ) throws {
    var points: [(x: Double, y: Double)] = [], labels: [String] = []
    for row in rows {
      guard let px = row.report[x.key], let py = row.report[y.key] else { continue }
      points.append((px, py))
      labels.append(LineChart.label(row.truncation))
    }
    guard !points.isEmpty else {
      throw EvaluationError("\(path): the plot needs \(x.label) and \(y.label) for each truncation")
    }
    let chart = LineChart(
      title: "truncation trade-off", xLabel: x.label, yLabel: y.label,
      series: [.init(name: "", points: points, labels: labels)])
    try LineChart.write([chart], to: path)
  }
}
