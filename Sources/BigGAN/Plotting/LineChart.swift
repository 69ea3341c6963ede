import Foundation

/// A chart of one or more series of points, drawn into a PNG: the figures
/// of `biggan-fast experiment` (metric curves over steps, singular values
/// over a run, fractions with their uncertainty). Axes span the data and
/// its error bars; the legend sits right of the plot.
public struct LineChart: Sendable {
  /// One named series: points in order, each optionally with a ± error
  /// (drawn as a bar) and a label (drawn above it).
  public struct Series: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public var errors: [Double]?
    public var labels: [String]?
    /// Whether consecutive points are joined by a line.
    public var joined: Bool

    public init(name: String, points: [(x: Double, y: Double)], errors: [Double]? = nil, labels: [String]? = nil, joined: Bool = true) {
      self.name = name
      self.points = points
      self.errors = errors
      self.labels = labels
      self.joined = joined
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [Series]
  /// A logarithmic y axis (positive values only; others are left out).
  public var logY = false
  /// Named x ticks (categories) instead of five evenly spaced numbers.
  public var xTicks: [(x: Double, label: String)]?
  /// The colour of each series as an index into the palette (default: its
  /// own index), so that several series can show one group.
  public var colourGroups: [Int]?

  public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
  }

  /// The ten colours of matplotlib's default cycle, so our figures read
  /// like the paper's.
  static let palette: [Canvas.RGB] = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
  ]

  /// The chart as a picture `width` x `height`, or an error naming the
  /// chart when no series has a finite point.
  public func image(width: Int = 760, height: Int = 520) throws -> PNG.Image {
    func shown(_ y: Double) -> Bool { y.isFinite && (!logY || y > 0) }
    func ty(_ y: Double) -> Double { logY ? log10(y) : y }
    var xs: [Double] = [], ys: [Double] = []
    for s in series {
      for (i, p) in s.points.enumerated() where p.x.isFinite && shown(p.y) {
        let e = s.errors?[i] ?? 0
        xs.append(p.x)
        ys.append(ty(p.y))
        if e > 0 {
          ys.append(ty(p.y + e))
          if shown(p.y - e) { ys.append(ty(p.y - e)) }
        }
      }
    }
    guard !xs.isEmpty else { throw EvaluationError("the chart '\(title)' has no finite point to draw") }
    let named = series.filter { !$0.name.isEmpty }
    let legendWidth = named.isEmpty ? 0 : 40 + named.map { Canvas.textWidth($0.name) }.max()!
    var canvas = Canvas(width: width + legendWidth, height: height)
    let left = 100, right = width - 30, top = 50, bottom = height - 70
    func range(_ values: [Double]) -> (Double, Double) {
      let lo = values.min()!, hi = values.max()!
      let pad = max((hi - lo) * 0.08, abs(hi) * 0.01, 1e-6)
      return (lo - pad, hi + pad)
    }
    let (x0, x1) = range(xs), (y0, y1) = range(ys)
    func px(_ x: Double) -> Int { left + Int((x - x0) / (x1 - x0) * Double(right - left)) }
    func py(_ y: Double) -> Int { bottom - Int((ty(y) - y0) / (y1 - y0) * Double(bottom - top)) }
    let grey: Canvas.RGB = (210, 210, 210), black: Canvas.RGB = (0, 0, 0)
    let ticks = xTicks ?? (0...4).map { i in let x = x0 + (x1 - x0) * Double(i) / 4; return (x, Self.label(x)) }
    for (x, name) in ticks {
      canvas.line(px(x), top, px(x), bottom, grey)
      canvas.text(name, centredAt: px(x), y: bottom + 12, black)
    }
    for i in 0...4 {
      let t = y0 + (y1 - y0) * Double(i) / 4
      let y = bottom - Int((t - y0) / (y1 - y0) * Double(bottom - top))
      canvas.line(left, y, right, y, grey)
      canvas.text(Self.label(logY ? pow(10, t) : t), rightAlignedAt: left - 8, y: y - 7, black)
    }
    canvas.line(left, bottom, right, bottom, black)
    canvas.line(left, top, left, bottom, black)
    canvas.text(title, centredAt: (left + right) / 2, y: 14, black)
    canvas.text(xLabel, centredAt: (left + right) / 2, y: bottom + 40, black)
    canvas.text(yLabel, x: 12, y: top - 26, black)
    for (k, s) in series.enumerated() {
      let colour = self.colour(k)
      let points = s.points.indices.filter { s.points[$0].x.isFinite && shown(s.points[$0].y) }
      if s.joined {
        for (a, b) in zip(points, points.dropFirst()) {
          canvas.line(px(s.points[a].x), py(s.points[a].y), px(s.points[b].x), py(s.points[b].y), colour, thickness: 2)
        }
      }
      for i in points {
        let (x, y) = (px(s.points[i].x), py(s.points[i].y))
        if let e = s.errors?[i], e > 0 {
          let low = shown(s.points[i].y - e) ? py(s.points[i].y - e) : bottom
          canvas.line(x, py(s.points[i].y + e), x, low, colour, thickness: 2)
          canvas.line(x - 6, py(s.points[i].y + e), x + 6, py(s.points[i].y + e), colour, thickness: 2)
          canvas.line(x - 6, low, x + 6, low, colour, thickness: 2)
        }
        canvas.disc(x, y, radius: points.count > 60 ? 1 : 4, colour)
        if let label = s.labels?[i] { canvas.text(label, centredAt: x, y: y - 24, black) }
      }
    }
    for (row, k) in series.indices.filter({ !series[$0].name.isEmpty }).enumerated() {
      let y = top + 10 + row * 24
      canvas.fill(x: width, y: y + 2, width: 20, height: 10, colour(k))
      canvas.text(series[k].name, x: width + 28, y: y, black)
    }
    return canvas.image
  }

  func colour(_ k: Int) -> Canvas.RGB { Self.palette[(colourGroups?[k] ?? k) % Self.palette.count] }

  /// `charts` side by side in one PNG file at `path`.
  public static func write(_ charts: [LineChart], to path: String) throws {
    let images = try charts.map { try $0.image() }
    let width = images.map(\.width).reduce(0, +), height = images.map(\.height).max() ?? 0
    var canvas = Canvas(width: width, height: height)
    var x0 = 0
    for image in images {
      for y in 0..<image.height {
        let row = y * image.width * 3
        let at = (y * width + x0) * 3
        canvas.pixels.replaceSubrange(at..<at + image.width * 3, with: image.pixels[row..<row + image.width * 3])
      }
      x0 += image.width
    }
    try PNG.write(canvas.image, to: path)
  }

  /// Three significant digits, without a trailing ".0".
  static func label(_ v: Double) -> String {
    var s = String(format: "%.3g", v)
    if s.contains("e") { s = abs(v) >= 1 ? String(format: "%.0f", v) : String(format: "%.1e", v) }
    return s
  }
}
