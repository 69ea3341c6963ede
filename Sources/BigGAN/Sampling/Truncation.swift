/// How latents are truncated (BigGAN's truncation trick).
public enum Truncation: String, CaseIterable, Sendable {
  /// The paper's: z ~ N(0, I), every component with |z| > 2 t redrawn.
  case resample
  /// TF-Hub / pytorch-pretrained-BigGAN: t * truncnorm(-2, 2).
  case scale

  /// Draws per component before `resample` clamps (for any t >= 0.02 a
  /// component is clamped with probability below 1e-14).
  public static let maximumRedraws = 1000

  /// `count` latents of `dim` components with truncation `t` in (0, 1].
  /// Both modes keep every component in [-2t, 2t]; `resample` keeps the
  /// Gaussian's spread inside that range, `scale` shrinks it by t. A
  /// `resample` component still outside after `maximumRedraws` draws (only
  /// for truncations near 0, where the loop would otherwise run for
  /// millions of draws) is clamped to the range.
  public func latents(count: Int, dim: Int, truncation t: Float, rng: inout SeededRandom) -> [Float] {
    var out = [Float](repeating: 0, count: count * dim)
    for i in out.indices {
      switch self {
      case .resample:
        var z = rng.normal(), draws = 1
        while abs(z) > 2 * t && draws < Self.maximumRedraws {
          z = rng.normal()
          draws += 1
        }
        out[i] = min(max(z, -2 * t), 2 * t)
      case .scale:
        var z = rng.normal()
        while abs(z) > 2 { z = rng.normal() }
        out[i] = t * z
      }
    }
    return out
  }
}
