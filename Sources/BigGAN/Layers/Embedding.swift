import BGKernels

/// A class embedding: row `y` of `weight` `[classes, features]`, optionally
/// spectrally normalised over that matrix (BigGAN-PyTorch `SNEmbedding`, the
/// discriminator's projection; the generator's shared embedding has none).
public final class Embedding: Module {
  public let weight: Parameter
  let sn: SpectralNorm?
  private var labels: [Int] = []
  private var effective = Tensor(shape: [0])

  init(
    prefix: String, classes: Int, features: Int, spectralNorm eps: Float?,
    initialization: Initialization, rng: inout SeededRandom
  ) {
    weight = Parameter(path(prefix, "weight"), initialWeight([classes, features], initialization, rng: &rng))
    sn = eps.map { SpectralNorm(prefix: prefix, rows: classes, eps: $0, rng: &rng) }
  }

  public var parameters: [Parameter] { [weight] }
  public var buffers: [Buffer] { sn.map { [$0.u, $0.sv] } ?? [] }

  /// `[batch, features]` rows for class indices `y`.
  func forward(_ y: [Int], mode: Mode) throws(KernelError) -> Tensor {
    labels = y
    effective = try sn?.normalize(weight.value, mode: mode) ?? weight.value
    let f = weight.value.shape[1], classes = weight.value.shape[0]
    var out = Tensor(shape: [y.count, f])
    for (i, c) in y.enumerated() {
      guard c >= 0, c < classes else { throw .shape("class index \(c) is outside 0..<\(classes)") }
      out.storage.replaceSubrange(i * f..<(i + 1) * f, with: effective.storage[c * f..<(c + 1) * f])
    }
    return out
  }

  /// Accumulates the weight gradient from `dL/d(rows)`.
  func backward(_ dy: Tensor) throws(KernelError) {
    guard weight.requiresGradient else { return }
    let f = weight.value.shape[1]
    var g = Tensor(shape: weight.value.shape)
    for (i, c) in labels.enumerated() {
      for j in 0..<f { g.storage[c * f + j] += dy.storage[i * f + j] }
    }
    try weight.accumulate(try sn?.weightGradient(g, weight: weight.value) ?? g)
  }
}
