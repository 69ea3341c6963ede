import Foundation

/// The built-in data set: ten classes of shapes and textures drawn by the
/// program itself, deterministic from a seed, at any resolution. Each image
/// has a random background and foreground colour, position, size and a
/// small tilt, so a class is defined by its shape alone. Nothing is
/// downloaded.
///
/// The tilt stays within ±`maximumTilt`: under a full turn, horizontal and
/// vertical bars would be one class and a square a diamond, and no
/// classifier (nor a generator asked for one of them) could tell them apart.
/// Shapes sit near the centre, fill about two thirds of the image, and the
/// textured classes have three bands or cells a side: a small model in a
/// short run then spends its steps on what tells the classes apart rather
/// than on where a shape is, and its samples can show every class.
public struct ShapesDataset: ImageDataset {
  public let count: Int
  public let resolution: Int
  public let seed: UInt64
  public var classes: Int { Self.names.count }
  public var classNames: [String] { Self.names }

  /// The largest tilt of a shape, in radians (12°).
  static let maximumTilt: Float = 12 * Float.pi / 180

  static let names = [
    "disc", "square", "triangle", "ring", "cross", "diamond", "horizontal-bars",
    "vertical-bars", "checkerboard", "two-discs",
  ]

  public init(resolution: Int, count: Int = 50_000, seed: UInt64 = 0) {
    self.resolution = resolution
    self.count = count
    self.seed = seed
  }

  /// Image `index`: its class is `index % 10`, everything else is drawn from
  /// a generator seeded by the data set seed and the index.
  public func sample(_ index: Int, epoch: Int = 0) -> (pixels: [UInt8], label: Int) {
    let label = index % classes
    var rng = SeededRandom(seed: seed ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03))
    func hue() -> (Float, Float, Float) {
      let h = rng.uniform() * 6, s: Float = 0.6 + 0.4 * rng.uniform(), v: Float = 0.6 + 0.4 * rng.uniform()
      let c = v * s, x = c * (1 - abs(h.truncatingRemainder(dividingBy: 2) - 1)), m = v - c
      let (r, g, b): (Float, Float, Float) =
        h < 1 ? (c, x, 0) : h < 2 ? (x, c, 0) : h < 3 ? (0, c, x) : h < 4 ? (0, x, c) : h < 5 ? (x, 0, c) : (c, 0, x)
      return (r + m, g + m, b + m)
    }
    let fg = hue()
    let shade = 0.1 + 0.25 * rng.uniform()
    let bg = (shade * (0.5 + rng.uniform()), shade * (0.5 + rng.uniform()), shade * (0.5 + rng.uniform()))
    let cx = 0.46 + 0.08 * rng.uniform(), cy = 0.46 + 0.08 * rng.uniform()
    let size = 0.3 + 0.06 * rng.uniform()
    let angle = (2 * rng.uniform() - 1) * Self.maximumTilt
    let (ca, sa) = (cos(angle), sin(angle))
    let r = resolution
    var pixels = [UInt8](repeating: 0, count: r * r * 3)
    let sub = 3  // supersampling per axis, for smooth edges
    for py in 0..<r {
      for px in 0..<r {
        var cover: Float = 0
        for sy in 0..<sub {
          for sx in 0..<sub {
            let x = (Float(px) + (Float(sx) + 0.5) / Float(sub)) / Float(r) - cx
            let y = (Float(py) + (Float(sy) + 0.5) / Float(sub)) / Float(r) - cy
            // Shape coordinates: rotated and scaled so the shape spans [-1, 1].
            let u = (ca * x + sa * y) / size, v = (-sa * x + ca * y) / size
            if Self.inside(label, u, v) { cover += 1 }
          }
        }
        cover /= Float(sub * sub)
        let o = (py * r + px) * 3
        pixels[o] = UInt8(255 * (cover * fg.0 + (1 - cover) * bg.0))
        pixels[o + 1] = UInt8(255 * (cover * fg.1 + (1 - cover) * bg.1))
        pixels[o + 2] = UInt8(255 * (cover * fg.2 + (1 - cover) * bg.2))
      }
    }
    return (pixels, label)
  }

  static func inside(_ label: Int, _ u: Float, _ v: Float) -> Bool {
    switch label {
    case 0: return u * u + v * v <= 1
    case 1: return abs(u) <= 0.85 && abs(v) <= 0.85
    case 2: return v <= 0.8 && v >= -0.8 && abs(u) <= (0.8 - v) * 0.62
    case 3: let d = u * u + v * v; return d <= 1 && d >= 0.45
    case 4: return (abs(u) <= 0.3 && abs(v) <= 1) || (abs(v) <= 0.3 && abs(u) <= 1)
    case 5: return abs(u) + abs(v) <= 1
    case 6: return abs(u) <= 1 && abs(v) <= 1 && Int(floor((v + 1) * 1.5)) % 2 == 0
    case 7: return abs(u) <= 1 && abs(v) <= 1 && Int(floor((u + 1) * 1.5)) % 2 == 0
    case 8: return abs(u) <= 1 && abs(v) <= 1 && (Int(floor((u + 1) * 1.5)) + Int(floor((v + 1) * 1.5))) % 2 == 0
    default:
      let a = (u + 0.45) * (u + 0.45) + v * v, b = (u - 0.45) * (u - 0.45) + v * v
      return a <= 0.2 || b <= 0.2
    }
  }
}
