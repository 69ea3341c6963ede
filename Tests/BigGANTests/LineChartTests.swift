import BigGAN
import Foundation
import Testing

/// The experiments' figures: what is drawn lands where the axes say, and a
/// chart with nothing to draw is refused by name.
struct LineChartTests {
  /// Pixels of `image` with exactly colour `c`.
  func count(_ image: PNG.Image, _ c: (UInt8, UInt8, UInt8)) -> Int {
    stride(from: 0, to: image.pixels.count, by: 3).filter {
      image.pixels[$0] == c.0 && image.pixels[$0 + 1] == c.1 && image.pixels[$0 + 2] == c.2
    }.count
  }

  @Test("each series is drawn in its own palette colour, a shared group in one, and the legend widens the picture")
  func seriesColours() throws {
    let a = LineChart.Series(name: "first", points: [(0, 1), (1, 2), (2, 4)])
    let b = LineChart.Series(name: "second", points: [(0, 3), (2, 0)], errors: [0.5, 0.5])
    var chart = LineChart(title: "t", xLabel: "x", yLabel: "y", series: [a, b])
    let image = try chart.image(width: 400, height: 300)
    #expect(image.width > 400 && image.height == 300)
    let blue = count(image, (31, 119, 180)), orange = count(image, (255, 127, 14))
    #expect(blue > 100 && orange > 100, "\(blue) \(orange)")
    chart.colourGroups = [0, 0]
    #expect(count(try chart.image(width: 400, height: 300), (255, 127, 14)) == 0)
  }

  @Test("a higher point is drawn higher, on a linear and on a log axis")
  func placement() throws {
    for logY in [false, true] {
      var chart = LineChart(title: "", xLabel: "", yLabel: "", series: [.init(name: "", points: [(0, 1), (1, 100)], joined: false)])
      chart.logY = logY
      let image = try chart.image(width: 300, height: 300)
      var rows: [Int] = []
      for y in 0..<image.height {
        for x in 0..<image.width where image.pixels[(y * image.width + x) * 3] == 31 && image.pixels[(y * image.width + x) * 3 + 2] == 180 {
          rows.append(y)
        }
      }
      // The right disc (y = 100) sits near the top, the left near the bottom.
      #expect(rows.min()! < 80 && rows.max()! > 200, "\(logY) \(rows.min()!) \(rows.max()!)")
    }
  }

  @Test("nothing finite to draw is one error naming the chart")
  func empty() {
    let chart = LineChart(title: "spectra", xLabel: "", yLabel: "", series: [.init(name: "a", points: [(0, .nan)])])
    #expect { try chart.image() } throws: { "\($0)".contains("'spectra' has no finite point") }
  }
}
