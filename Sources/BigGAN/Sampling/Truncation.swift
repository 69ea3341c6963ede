/// How latents are truncated (BigGAN's truncation trick).
public enum Truncation: String, CaseIterable, Sendable {
  /// The paper's: z ~ N(0, I), every component with |z| > 2 t redrawn.
  case resample
  /// TF-Hub / pytorch-pretrained-BigGAN: t * truncnorm(-2, 2).
  case scale

  /// `count` latents of `dim` components with truncation `t` in (0, 1].
  /// Both modes keep every component in [-2t, 2t]; `resample` keeps the
  /// Gaussian's spread inside that range, `scale` shrinks it by t.
  public func latents(count: Int, dim: Int, truncation t: Float, rng: inout SeededRandom) -> [Float] {
    var out = [Float](repeating: 0, count: count * dim)
    for i in out.indices {
      switch self {
      case .resample:
        var z = rng.normal()
        while abs(z) > 2 * t { z = rng.normal() }
        out[i] = z
      case .scale:
        var z = rng.normal()
        while abs(z) > 2 { z = rng.normal() }
        out[i] = t * z
      }
    }
    return out
  }
}
