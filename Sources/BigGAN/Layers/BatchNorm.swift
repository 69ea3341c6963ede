import BGKernels

/// How a generator with per-truncation batch-norm statistics (TF-Hub's
/// BigGAN-deep, 51 rows for truncations 0, 0.02, ..., 1) picks them for a
/// truncation between two rows.
public enum StatisticsBlend: String, CaseIterable, Sendable {
  /// pytorch-pretrained-BigGAN's (`BigGANBatchNorm.forward`): `coef, i =
  /// modf(t / (1 / 50))` in double precision, then `rows[i] * coef +
  /// rows[i + 1] * (1 - coef)`, the weights swapped compared with a linear
  /// interpolation, and rounding can land just past a grid value (0.14,
  /// 0.28, 0.56 take the next row). Reproduces its images exactly.
  case pretrained
  /// Linear interpolation between the two nearest rows.
  case linear
}

/// Running statistics of a batch-norm (`stored_mean`, `stored_var`), updated
/// like `F.batch_norm` in training mode: momentum 0.1, the unbiased variance
/// into the running one. Standing statistics replace them by an average over
/// several training-mode passes (BigGAN-PyTorch `myBN`'s accumulation).
///
/// Imported BigGAN-deep weights carry `rows` sets of statistics (`[rows,
/// channels]`), one per truncation; evaluation blends the two around
/// `truncation`. Those models only sample.
final class RunningStatistics {
  let mean: Buffer
  let variance: Buffer
  let rows: Int
  let momentum: Float = 0.1
  /// Selects the row(s) of a multi-row model; ignored with one row.
  var truncation: Double = 1
  var blend: StatisticsBlend = .pretrained
  /// Whose images the training statistics come from.
  var scope: BatchStatisticsScope = .local
  private var standing: (mean: [Double], variance: [Double], count: Int)?

  init(prefix: String, channels: Int, rows: Int = 1) {
    let shape = rows == 1 ? [channels] : [rows, channels]
    mean = Buffer(path(prefix, "stored_mean"), Tensor(shape: shape))
    variance = Buffer(path(prefix, "stored_var"), Tensor(shape: shape, repeating: 1))
    self.rows = rows
  }

  /// The statistics evaluation uses, `[channels]` each.
  func current() -> (mean: Tensor, variance: Tensor) {
    guard rows > 1 else { return (mean.value, variance.value) }
    let channels = mean.value.count / rows
    let (lower, upper, w) = weights()
    func pick(_ t: Tensor) -> Tensor {
      var out = Tensor(shape: [channels])
      for c in 0..<channels {
        let a = t.storage[lower * channels + c], b = t.storage[upper * channels + c]
        out.storage[c] = w.upper == 0 ? a : a * w.lower + b * w.upper
      }
      return out
    }
    return (pick(mean.value), pick(variance.value))
  }

  /// The two rows around `truncation` and their weights (`upper` weight 0:
  /// the lower row exactly).
  private func weights() -> (Int, Int, (lower: Float, upper: Float)) {
    let q = truncation / (1 / Double(rows - 1))
    let i = min(max(Int(q.rounded(.towardZero)), 0), rows - 1)
    let frac = q - Double(i)
    let next = min(i + 1, rows - 1)
    let rest: Double = 1 - frac
    switch blend {
    case .pretrained:
      if frac == 0 { return (i, next, (1, 0)) }
      return (i, next, (Float(frac), Float(rest)))
    case .linear:
      if frac < 1e-9 { return (i, next, (1, 0)) }
      return (i, next, (Float(rest), Float(frac)))
    }
  }

  /// Folds in one batch's statistics over `count` values per channel.
  func update(batchMean: Tensor, batchVariance: Tensor, count: Int) {
    let unbias = count > 1 ? Float(count) / Float(count - 1) : 1
    for c in 0..<mean.value.count {
      mean.value.storage[c] = (1 - momentum) * mean.value.storage[c] + momentum * batchMean.storage[c]
      variance.value.storage[c] =
        (1 - momentum) * variance.value.storage[c] + momentum * batchVariance.storage[c] * unbias
    }
    if var s = standing {
      for c in 0..<s.mean.count {
        s.mean[c] += Double(batchMean.storage[c])
        s.variance[c] += Double(batchVariance.storage[c])
      }
      s.count += 1
      standing = s
    }
  }

  /// Starts averaging the statistics of the coming training-mode passes.
  func beginStanding() {
    standing = ([Double](repeating: 0, count: mean.value.count), [Double](repeating: 0, count: mean.value.count), 0)
  }

  /// Replaces the running statistics by the average since `beginStanding`.
  func endStanding() {
    guard let s = standing, s.count > 0 else { standing = nil; return }
    mean.value.storage = s.mean.map { Float($0 / Double(s.count)) }
    variance.value.storage = s.variance.map { Float($0 / Double(s.count)) }
    standing = nil
  }
}

/// Shared forward/backward of batch-norm: statistics per mode, the affine
/// transform (per sample or per channel) and the fused ReLU.
struct BatchNormCore {
  let stats: RunningStatistics
  let eps: Float

  /// What `backward` reads: the input, the fused ReLU and the bias (with
  /// the input, the statistics and the gain they give the ReLU's mask, so
  /// the output need not be kept), and the statistics the forward
  /// normalised with; `count`: the values per channel behind batch
  /// statistics (every replica's, when shared).
  private struct Saved {
    let input: Tensor
    let relu: Bool
    let bias: Tensor?
    let mean: Tensor
    let variance: Tensor
    let batchStatistics: Bool
    let count: Int
  }
  private var saved: Saved?

  init(stats: RunningStatistics, eps: Float) {
    self.stats = stats
    self.eps = eps
  }

  mutating func forward(
    _ x: Tensor, gain: Tensor, bias: Tensor, relu: Bool, mode: Mode
  ) throws(KernelError) -> Tensor {
    saved = nil
    let used: (mean: Tensor, variance: Tensor, batch: Bool, count: Int)
    if mode.isTraining {
      guard stats.rows == 1 else {
        throw .shape("\(stats.mean.name): per-truncation statistics are for sampling; training needs a model with running statistics")
      }
      let s = try stats.scope.trainingStatistics(of: x)
      stats.update(batchMean: s.running.mean, batchVariance: s.running.variance, count: s.running.count)
      used = (s.mean, s.variance, true, s.count)
    } else {
      let (m, v) = stats.current()
      used = (m, v, false, 0)
    }
    let y = try batchNorm(
      x, mean: used.mean, variance: used.variance, epsilon: eps, gain: gain, bias: bias, relu: relu)
    if mode.keepsActivations {
      saved = Saved(
        input: x, relu: relu, bias: relu ? bias : nil, mean: used.mean, variance: used.variance,
        batchStatistics: used.batch, count: used.count)
    }
    return y
  }

  mutating func backward(_ dy: Tensor, gain: Tensor) throws(KernelError) -> (input: Tensor, gain: Tensor, bias: Tensor) {
    guard let s = saved.take() else {
      throw .shape("\(stats.mean.name): backward without a training- or evaluation-mode forward")
    }
    if s.batchStatistics, case .allReplicas(let group) = stats.scope {
      return try crossReplicaBatchNormBackward(
        s.input, mean: s.mean, variance: s.variance, epsilon: eps, gain: gain, bias: s.bias,
        relu: s.relu, outputGradient: dy, count: s.count, group: group)
    }
    return try batchNormBackward(
      s.input, mean: s.mean, variance: s.variance, epsilon: eps, gain: gain, bias: s.bias,
      relu: s.relu, outputGradient: dy, batchStatistics: s.batchStatistics)
  }
}

/// What a generator's conditional batch-norms are conditioned on: a vector
/// `[batch, conditionDim]` that linear maps turn into gain and bias, the
/// classes that each norm's own embeddings look up, or both.
struct NormCondition {
  var vector: Tensor?
  var classes: ClassRows?
}

/// Class-conditional batch-norm (BigGAN-PyTorch `ccbn`) after a batch-norm
/// without affine parameters, ReLU fused when asked: `gain = 1 + g`, `bias
/// = b`, where `g` and `b` are the sum of what the norm has of
/// - linear maps of the condition vector `c`, spectrally normalised and
///   without bias (`W_g c`, `W_b c`; the shared embedding and z chunk), and
/// - rows of its own class embeddings `E_g[y]`, `E_b[y]` (no shared
///   embedding: BigGAN-PyTorch's `G_shared=False`, `nn.Embedding(classes,
///   channels)` without spectral norm).
///
/// With both (no shared embedding, hierarchical z) `g = E_g[y] + W_g z`,
/// which is `Linear([onehot(y), z])` with the one-hot block unnormalised;
/// BigGAN-PyTorch cannot build this case (its `ccbn` embeds the concatenation
/// of class indices and z). Names: the embeddings take the reference's
/// `gain.weight`, `bias.weight`; the z maps beside them are `gain_z`,
/// `bias_z`; with a shared embedding the maps are `gain`, `bias`.
///
/// Shapes: `x` `[batch, h, w, channels]`, the condition's vector `[batch,
/// conditionDim]` and classes `[batch]` (or `[batch, classes]`).
public final class ConditionalBatchNorm: Module {
  let gain: Linear?
  let bias: Linear?
  let gainEmbedding: Embedding?
  let biasEmbedding: Embedding?
  let stats: RunningStatistics
  private var core: BatchNormCore
  /// What `backward` reads besides the core's: the gain `1 + g`.
  private struct Saved {
    let gain: Tensor
  }
  private var saved: Saved?

  /// A norm over `channels` with linear maps of a `conditionDim`-wide
  /// vector (none when 0) and, when `classes` is given, its own class
  /// embeddings.
  init(
    prefix: String, channels: Int, conditionDim: Int, classes: Int?, settings: LayerSettings,
    rng: inout SeededRandom
  ) {
    precondition(conditionDim > 0 || classes != nil, "\(prefix): a conditional batch-norm needs a condition")
    if let classes {
      func embedding(_ name: String, _ rng: inout SeededRandom) -> Embedding {
        Embedding(
          prefix: path(prefix, name), classes: classes, features: channels, spectralNorm: nil,
          initialization: settings.initialization, rng: &rng)
      }
      gainEmbedding = embedding("gain", &rng)
      biasEmbedding = embedding("bias", &rng)
    } else {
      gainEmbedding = nil
      biasEmbedding = nil
    }
    let suffix = classes == nil ? "" : "_z"
    func linear(_ name: String, _ rng: inout SeededRandom) -> Linear? {
      guard conditionDim > 0 else { return nil }
      return Linear(
        prefix: path(prefix, name + suffix), in: conditionDim, out: channels, bias: false,
        spectralNorm: settings.snEps, initialization: settings.initialization, rng: &rng)
    }
    gain = linear("gain", &rng)
    bias = linear("bias", &rng)
    stats = RunningStatistics(prefix: prefix, channels: channels, rows: settings.statisticsRows)
    core = BatchNormCore(stats: stats, eps: settings.bnEps)
  }

  /// In the reference's registration order: the embeddings, then the maps.
  private var modules: [any Module] {
    let embeddings: [any Module] = [gainEmbedding, biasEmbedding].compactMap { $0 }
    let maps: [any Module] = [gain, bias].compactMap { $0 }
    return embeddings + maps
  }
  public var parameters: [Parameter] { modules.flatMap(\.parameters) }
  public var buffers: [Buffer] { modules.flatMap(\.buffers) + [stats.mean, stats.variance] }

  var precision: Precision = .fp32 {
    didSet {
      gain?.precision = precision
      bias?.precision = precision
    }
  }

  func forward(_ x: Tensor, condition c: NormCondition, relu: Bool, mode: Mode) throws(KernelError) -> Tensor {
    saved = nil
    var g = try affine(gain, gainEmbedding, c, mode: mode)
    for i in 0..<g.count { g.storage[i] += 1 }
    if mode.keepsActivations { saved = Saved(gain: g) }
    let b = try affine(bias, biasEmbedding, c, mode: mode)
    return try core.forward(x, gain: g, bias: b, relu: relu, mode: mode)
  }

  /// `map(c.vector) + embedding(c.classes)`, of whichever the norm has:
  /// `[batch, channels]`.
  private func affine(_ map: Linear?, _ embedding: Embedding?, _ c: NormCondition, mode: Mode) throws(KernelError) -> Tensor {
    var out: Tensor?
    if let map {
      guard let v = c.vector else { throw .shape("\(stats.mean.name): this batch-norm needs a condition vector") }
      out = try map.forward(v, mode: mode)
    }
    if let embedding {
      guard let y = c.classes else { throw .shape("\(stats.mean.name): this batch-norm needs the classes") }
      let rows = try embedding.forward(y, mode: mode)
      if out != nil { try out!.add(rows) } else { out = rows }
    }
    return out!
  }

  /// Returns `dL/dx` and `dL/d(condition vector)` (nil when the norm takes
  /// none); accumulates parameter gradients.
  func backward(_ dy: Tensor) throws(KernelError) -> (input: Tensor, condition: Tensor?) {
    guard let s = saved.take() else {
      throw .shape("\(stats.mean.name): backward without a training- or evaluation-mode forward")
    }
    let (dx, dg, db) = try core.backward(dy, gain: s.gain)
    try gainEmbedding?.backward(dg)
    try biasEmbedding?.backward(db)
    guard let gain, let bias else { return (dx, nil) }
    var dc = try gain.backward(dg)
    try dc.add(try bias.backward(db))
    return (dx, dc)
  }
}

/// Batch-norm with a learned per-channel gain and bias (BigGAN-PyTorch
/// `bn`, the generator's output layer), ReLU fused when asked.
public final class BatchNorm: Module {
  let gain: Parameter
  let bias: Parameter
  let stats: RunningStatistics
  private var core: BatchNormCore

  init(prefix: String, channels: Int, settings: LayerSettings) {
    gain = Parameter(path(prefix, "gain"), Tensor(shape: [channels], repeating: 1))
    bias = Parameter(path(prefix, "bias"), Tensor(shape: [channels]))
    stats = RunningStatistics(prefix: prefix, channels: channels, rows: settings.statisticsRows)
    core = BatchNormCore(stats: stats, eps: settings.bnEps)
  }

  public var parameters: [Parameter] { [gain, bias] }
  public var buffers: [Buffer] { [stats.mean, stats.variance] }

  func forward(_ x: Tensor, relu: Bool, mode: Mode) throws(KernelError) -> Tensor {
    try core.forward(x, gain: gain.value, bias: bias.value, relu: relu, mode: mode)
  }

  func backward(_ dy: Tensor) throws(KernelError) -> Tensor {
    let (dx, dg, db) = try core.backward(dy, gain: gain.value)
    try gain.accumulate(dg)
    try bias.accumulate(db)
    return dx
  }
}
