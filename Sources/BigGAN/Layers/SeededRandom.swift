import Foundation

/// A seeded generator (xoshiro256**) for initialisation, latents and data
/// order: the same seed gives the same numbers on every machine.
public struct SeededRandom: RandomNumberGenerator, Sendable {
  private var s: (UInt64, UInt64, UInt64, UInt64)

  /// A generator whose state is expanded from `seed` by SplitMix64.
  public init(seed: UInt64) {
    var x = seed
    func splitmix() -> UInt64 {
      x &+= 0x9E37_79B9_7F4A_7C15
      var z = x
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    s = (splitmix(), splitmix(), splitmix(), splitmix())
  }

  /// The four state words, to save and restore exactly.
  public var state: [UInt64] {
    get { [s.0, s.1, s.2, s.3] }
    set { s = (newValue[0], newValue[1], newValue[2], newValue[3]) }
  }

  public mutating func next() -> UInt64 {
    let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
    let t = s.1 << 17
    s.2 ^= s.0
    s.3 ^= s.1
    s.1 ^= s.2
    s.0 ^= s.3
    s.2 ^= t
    s.3 = s.3 << 45 | s.3 >> 19
    return result
  }

  /// Uniform in [0, 1) with 24 random bits.
  public mutating func uniform() -> Float {
    Float(next() >> 40) * (1.0 / 16_777_216.0)
  }

  /// A standard normal sample (Box-Muller on two uniforms).
  public mutating func normal() -> Float {
    let u1 = (Double(next() >> 11) + 1) * (1.0 / 9_007_199_254_740_993.0)
    let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
  }
}
