import Foundation

/// The truncation trade-off picture (BigGAN's Figure 2(a)): Inception
/// Score on x, FID on y, one point per truncation, joined in order and
/// labelled with its truncation.
public enum TradeoffPlot {
  /// Draws `rows` (truncation, report with IS and FID) into a PNG file.
  public static func write(_ rows: [(truncation: Double, report: EvaluationReport)], to path: String) throws {
    let points = rows.compactMap { row -> (t: Double, x: Double, y: Double)? in
      guard let x = row.report["inception_score_mean"], let y = row.report["frechet_inception_distance"] else { return nil }
      return (row.truncation, x, y)
    }
    guard !points.isEmpty else {
      throw EvaluationError("\(path): the plot needs IS and FID for each truncation (--metrics fid,is)")
    }
    var canvas = Canvas(width: 720, height: 540)
    let left = 90, right = 690, top = 30, bottom = 470
    func range(_ values: [Double]) -> (Double, Double) {
      let lo = values.min()!, hi = values.max()!
      let pad = max((hi - lo) * 0.08, abs(hi) * 0.01, 1e-6)
      return (lo - pad, hi + pad)
    }
    let (x0, x1) = range(points.map(\.x)), (y0, y1) = range(points.map(\.y))
    func px(_ x: Double) -> Int { left + Int((x - x0) / (x1 - x0) * Double(right - left)) }
    func py(_ y: Double) -> Int { bottom - Int((y - y0) / (y1 - y0) * Double(bottom - top)) }
    let grey: RGB = (200, 200, 200), black: RGB = (0, 0, 0), blue: RGB = (31, 119, 180)
    for i in 0...4 {
      let fx = x0 + (x1 - x0) * Double(i) / 4, fy = y0 + (y1 - y0) * Double(i) / 4
      canvas.line(px(fx), top, px(fx), bottom, grey)
      canvas.line(left, py(fy), right, py(fy), grey)
      canvas.text(label(fx), centredAt: px(fx), y: bottom + 12, black)
      canvas.text(label(fy), rightAlignedAt: left - 8, y: py(fy) - 7, black)
    }
    canvas.line(left, bottom, right, bottom, black)
    canvas.line(left, top, left, bottom, black)
    canvas.text("IS", centredAt: (left + right) / 2, y: bottom + 40, black)
    canvas.text("FID", x: 12, y: 6, black)
    for (a, b) in zip(points, points.dropFirst()) { canvas.line(px(a.x), py(a.y), px(b.x), py(b.y), blue, thickness: 2) }
    for p in points {
      canvas.disc(px(p.x), py(p.y), radius: 5, blue)
      canvas.text(label(p.t), centredAt: px(p.x), y: py(p.y) - 24, black)
    }
    try PNG.write(PNG.Image(width: canvas.width, height: canvas.height, pixels: canvas.pixels), to: path)
  }

  /// Three significant digits, without a trailing ".0".
  static func label(_ v: Double) -> String {
    var s = String(format: "%.3g", v)
    if s.contains("e") { s = String(format: "%.2f", v) }
    return s
  }

  typealias RGB = (UInt8, UInt8, UInt8)

  /// An RGB raster with lines, discs and 5x7 text drawn at twice its size.
  struct Canvas {
    let width: Int, height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
      self.width = width
      self.height = height
      pixels = [UInt8](repeating: 255, count: width * height * 3)
    }

    mutating func set(_ x: Int, _ y: Int, _ c: RGB) {
      guard x >= 0, y >= 0, x < width, y < height else { return }
      let i = (y * width + x) * 3
      pixels[i] = c.0; pixels[i + 1] = c.1; pixels[i + 2] = c.2
    }

    mutating func line(_ xa: Int, _ ya: Int, _ xb: Int, _ yb: Int, _ c: RGB, thickness: Int = 1) {
      let steps = max(abs(xb - xa), abs(yb - ya), 1)
      for s in 0...steps {
        let x = xa + (xb - xa) * s / steps, y = ya + (yb - ya) * s / steps
        for dx in 0..<thickness { for dy in 0..<thickness { set(x + dx, y + dy, c) } }
      }
    }

    mutating func disc(_ cx: Int, _ cy: Int, radius r: Int, _ c: RGB) {
      for dy in -r...r { for dx in -r...r where dx * dx + dy * dy <= r * r { set(cx + dx, cy + dy, c) } }
    }

    mutating func text(_ s: String, x: Int, y: Int, _ c: RGB) {
      for (k, ch) in s.enumerated() {
        guard let rows = Self.glyphs[ch] else { continue }
        for (r, bits) in rows.enumerated() {
          for col in 0..<5 where bits & (0x10 >> col) != 0 {
            for d in 0..<4 { set(x + k * 12 + col * 2 + d % 2, y + r * 2 + d / 2, c) }
          }
        }
      }
    }

    mutating func text(_ s: String, centredAt cx: Int, y: Int, _ c: RGB) {
      text(s, x: cx - s.count * 6, y: y, c)
    }

    mutating func text(_ s: String, rightAlignedAt rx: Int, y: Int, _ c: RGB) {
      text(s, x: rx - s.count * 12, y: y, c)
    }

    /// 5x7 glyphs, one row of five bits each, for the plot's labels.
    static let glyphs: [Character: [UInt8]] = [
      "0": [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e], "1": [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
      "2": [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f], "3": [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
      "4": [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02], "5": [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
      "6": [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e], "7": [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
      "8": [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e], "9": [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
      ".": [0, 0, 0, 0, 0, 0x0c, 0x0c], "-": [0, 0, 0, 0x1f, 0, 0, 0],
      "I": [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e], "S": [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
      "F": [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10], "D": [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
    ]
  }
}
