import Foundation

/// The truncation trade-off picture (BigGAN's Figure 2(a)): Inception
/// Score on x, FID on y, one point per truncation, joined in order and
/// labelled with its truncation.
public enum TradeoffPlot {
  /// Draws `rows` (truncation, report with IS and FID) into a PNG file.
  public static func write(_ rows: [(truncation: Double, report: EvaluationReport)], to path: String) throws {
    var points: [(x: Double, y: Double)] = [], labels: [String] = []
    for row in rows {
      guard let x = row.report["inception_score_mean"], let y = row.report["frechet_inception_distance"] else { continue }
      points.append((x, y))
      labels.append(LineChart.label(row.truncation))
    }
    guard !points.isEmpty else {
      throw EvaluationError("\(path): the plot needs IS and FID for each truncation (--metrics fid,is)")
    }
    let chart = LineChart(
      title: "truncation trade-off", xLabel: "IS", yLabel: "FID",
      series: [.init(name: "", points: points, labels: labels)])
    try LineChart.write([chart], to: path)
  }
}
