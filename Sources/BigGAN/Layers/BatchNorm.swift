import BGKernels

/// Running statistics of a batch-norm (`stored_mean`, `stored_var`), updated
/// like `F.batch_norm` in training mode: momentum 0.1, the unbiased variance
/// into the running one. Standing statistics replace them by an average over
/// several training-mode passes (BigGAN-PyTorch `myBN`'s accumulation).
final class RunningStatistics {
  let mean: Buffer
  let variance: Buffer
  let momentum: Float = 0.1
  private var standing: (mean: [Double], variance: [Double], count: Int)?

  init(prefix: String, channels: Int) {
    mean = Buffer(path(prefix, "stored_mean"), Tensor(shape: [channels]))
    variance = Buffer(path(prefix, "stored_var"), Tensor(shape: [channels], repeating: 1))
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
  private var input = Tensor(shape: [0])
  private var output: Tensor?
  private var used: (mean: Tensor, variance: Tensor, batch: Bool) = (Tensor(shape: [0]), Tensor(shape: [0]), false)

  init(stats: RunningStatistics, eps: Float) {
    self.stats = stats
    self.eps = eps
  }

  mutating func forward(
    _ x: Tensor, gain: Tensor, bias: Tensor, relu: Bool, mode: Mode
  ) throws(KernelError) -> Tensor {
    input = x
    if mode == .training {
      let (m, v) = try batchStatistics(x)
      stats.update(batchMean: m, batchVariance: v, count: x.count / x.shape[x.shape.count - 1])
      used = (m, v, true)
    } else {
      used = (stats.mean.value, stats.variance.value, false)
    }
    let y = try batchNorm(
      x, mean: used.mean, variance: used.variance, epsilon: eps, gain: gain, bias: bias, relu: relu)
    output = relu ? y : nil
    return y
  }

  func backward(_ dy: Tensor, gain: Tensor) throws(KernelError) -> (input: Tensor, gain: Tensor, bias: Tensor) {
    try batchNormBackward(
      input, mean: used.mean, variance: used.variance, epsilon: eps, gain: gain, output: output,
      outputGradient: dy, batchStatistics: used.batch)
  }
}

/// Class-conditional batch-norm (BigGAN-PyTorch `ccbn`): `gain = 1 +
/// W_g c`, `bias = W_b c` from the conditioning vector `c` through
/// spectrally normalised linear maps without bias, applied after a
/// batch-norm without affine parameters; ReLU fused when asked.
///
/// Shapes: `x` `[batch, h, w, channels]`, `c` `[batch, conditionDim]`.
public final class ConditionalBatchNorm: Module {
  let gain: Linear
  let bias: Linear
  let stats: RunningStatistics
  private var core: BatchNormCore
  private var gainValue = Tensor(shape: [0])

  init(
    prefix: String, channels: Int, conditionDim: Int, eps: Float, snEps: Float,
    initialization: Initialization, rng: inout SeededRandom
  ) {
    gain = Linear(
      prefix: path(prefix, "gain"), in: conditionDim, out: channels, bias: false,
      spectralNorm: snEps, initialization: initialization, rng: &rng)
    bias = Linear(
      prefix: path(prefix, "bias"), in: conditionDim, out: channels, bias: false,
      spectralNorm: snEps, initialization: initialization, rng: &rng)
    stats = RunningStatistics(prefix: prefix, channels: channels)
    core = BatchNormCore(stats: stats, eps: eps)
  }

  public var parameters: [Parameter] { gain.parameters + bias.parameters }
  public var buffers: [Buffer] { gain.buffers + bias.buffers + [stats.mean, stats.variance] }

  var precision: Precision {
    get { gain.precision }
    set { gain.precision = newValue; bias.precision = newValue }
  }

  func forward(_ x: Tensor, condition c: Tensor, relu: Bool, mode: Mode) throws(KernelError) -> Tensor {
    var g = try gain.forward(c, mode: mode)
    for i in 0..<g.count { g.storage[i] += 1 }
    gainValue = g
    let b = try bias.forward(c, mode: mode)
    return try core.forward(x, gain: g, bias: b, relu: relu, mode: mode)
  }

  /// Returns `dL/dx` and `dL/dc`; accumulates parameter gradients.
  func backward(_ dy: Tensor) throws(KernelError) -> (input: Tensor, condition: Tensor) {
    let (dx, dg, db) = try core.backward(dy, gain: gainValue)
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

  init(prefix: String, channels: Int, eps: Float) {
    gain = Parameter(path(prefix, "gain"), Tensor(shape: [channels], repeating: 1))
    bias = Parameter(path(prefix, "bias"), Tensor(shape: [channels]))
    stats = RunningStatistics(prefix: prefix, channels: channels)
    core = BatchNormCore(stats: stats, eps: eps)
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
