import BGKernels

/// The classes an embedding looks up: indices `[batch]`, or class vectors
/// `[batch, classes]` (one-hot, or soft mixtures as pytorch-pretrained-BigGAN
/// accepts), whose embedding is `vectors * weight`.
enum ClassRows {
  case labels([Int])
  case vectors(Tensor)

  /// The batch they describe.
  var count: Int {
    switch self {
    case .labels(let y): return y.count
    case .vectors(let v): return v.shape.first ?? 0
    }
  }

  /// The batch rows `rows` of these classes (all for nil).
  func batchRows(_ rows: Range<Int>?) throws(KernelError) -> ClassRows {
    guard let rows else { return self }
    switch self {
    case .labels(let y):
      guard rows.lowerBound >= 0, rows.upperBound <= y.count else { throw .shape("batch rows \(rows) of \(y.count) labels") }
      return .labels(Array(y[rows]))
    case .vectors(let v): return .vectors(try v.batchRows(rows))
    }
  }
}

/// A class embedding: row `y` of `weight` `[classes, features]`, optionally
/// spectrally normalised over that matrix (BigGAN-PyTorch `SNEmbedding`, the
/// discriminator's projection; the generator's shared embedding and its
/// per-batch-norm embeddings have none).
public final class Embedding: Module {
  /// The weight as trained and stored, before spectral normalisation.
  public var weight: Parameter { normalized.parameter }
  let normalized: SpectralNormWeight

  /// What `backward` reads: the classes looked up and the spectral norm's step.
  private struct Saved {
    let rows: ClassRows
    let step: SpectralNorm.Step?
  }
  private var saved: Saved?

  init(
    prefix: String, classes: Int, features: Int, spectralNorm eps: Float?,
    initialization: Initialization, rng: inout SeededRandom
  ) {
    normalized = SpectralNormWeight(
      prefix: prefix, shape: [classes, features], spectralNorm: eps, initialization: initialization,
      rng: &rng)
  }

  public var parameters: [Parameter] { [weight] }
  public var buffers: [Buffer] { normalized.buffers }

  /// `[batch, features]` rows for class indices `y`.
  func forward(_ y: [Int], mode: Mode) throws(KernelError) -> Tensor {
    try forward(.labels(y), mode: mode)
  }

  /// `[batch, features]`: the rows of `rows`' indices, or `vectors *
  /// weight` (always fp32).
  func forward(_ rows: ClassRows, mode: Mode) throws(KernelError) -> Tensor {
    saved = nil
    // A lookup has no kernel plan; its weight is still kept for evaluation.
    let w = try normalized.resolve(mode: mode, precision: .fp32) { _, _ in nil }.weight
    let f = w.value.shape[1], classes = w.value.shape[0]
    var out: Tensor
    switch rows {
    case .labels(let y):
      out = Tensor(shape: [y.count, f])
      for (i, c) in y.enumerated() {
        guard c >= 0, c < classes else { throw .shape("class index \(c) is outside 0..<\(classes)") }
        out.storage.replaceSubrange(i * f..<(i + 1) * f, with: w.value.storage[c * f..<(c + 1) * f])
      }
    case .vectors(let v):
      out = try matmul(v, w.value)
    }
    if mode.keepsActivations { saved = Saved(rows: rows, step: w.step) }
    return out
  }

  /// Accumulates the weight gradient from `dL/d(rows)` of the last
  /// forward, or with `pass` `.tangent(rows:)` from that of its rows `rows`
  /// (the lookup is linear in the weight, so both are the same sum; the
  /// forward's saved then stay). A transpose pass has nothing to do.
  func backward(_ dy: Tensor, pass: Pass = .forward) throws(KernelError) {
    guard let s = pass == .forward ? saved.take() : saved else {
      throw .shape("\(weight.name): backward without a training- or evaluation-mode forward")
    }
    guard weight.requiresGradient, pass.accumulatesWeights else { return }
    var g = Tensor(shape: weight.value.shape)
    switch try s.rows.batchRows(pass.rows) {
    case .labels(let y):
      let f = weight.value.shape[1]
      for (i, c) in y.enumerated() {
        for j in 0..<f { g.storage[c * f + j] += dy.storage[i * f + j] }
      }
    case .vectors(let v):
      try gemm(v, dy, into: &g, transposeA: true)
    }
    try normalized.accumulateGradient(g, step: s.step)
  }
}
