import BGKernels

/// A generator block: a residual block conditioned on a vector through its
/// batch-norms.
protocol ConditionalBlock: Module {
  var precision: Precision { get set }
  /// The running statistics of its batch-norms.
  var statistics: [RunningStatistics] { get }
  /// `x` `[batch, h, w, in]` and its batch-norms' condition to `[batch,
  /// h', w', out]`.
  func forward(_ x: Tensor, condition: NormCondition, mode: Mode) throws(KernelError) -> Tensor
  /// Returns `dL/dx` and `dL/d(condition vector)` (nil when the norms take
  /// none); accumulates parameter gradients.
  func backward(_ dy: Tensor) throws(KernelError) -> (input: Tensor, condition: Tensor?)
}

/// A discriminator block: an unconditional residual block.
protocol ResidualBlock: Module {
  var precision: Precision { get set }
  func forward(_ x: Tensor, mode: Mode) throws(KernelError) -> Tensor
  /// `J t` at the last training forward for the tangent `t` of its batch
  /// rows `rows`: the block's convolutions without biases, its ReLUs as
  /// their masks (see `Pass`).
  func tangent(_ t: Tensor, rows: Range<Int>) throws(KernelError) -> Tensor
  /// Accumulates `pass`'s parameter gradients; returns `dL/dx`, or nil,
  /// having computed none of it, when `inputGradient` is false.
  func backward(_ dy: Tensor, inputGradient: Bool, pass: Pass) throws(KernelError) -> Tensor?
}

extension ResidualBlock {
  /// Accumulates parameter gradients; returns `dL/dx`, or nil when
  /// `inputGradient` is false.
  func backward(_ dy: Tensor, inputGradient: Bool) throws(KernelError) -> Tensor? {
    try backward(dy, inputGradient: inputGradient, pass: .forward)
  }

  /// Accumulates parameter gradients and returns `dL/dx`.
  func backward(_ dy: Tensor) throws(KernelError) -> Tensor {
    guard let dx = try backward(dy, inputGradient: true) else {
      throw .shape("\(Self.self).backward returned no input gradient")
    }
    return dx
  }
}

/// BigGAN generator block (BigGAN-PyTorch `GBlock`): `CBN-ReLU-upsample-
/// conv3x3-CBN-ReLU-conv3x3` plus a skip `upsample-conv1x1`; both upsamples
/// are fused into the convolutions that follow them.
///
/// Shapes: `x` `[batch, h, w, in]`, condition vector `[batch,
/// conditionDim]` and/or classes, result `[batch, 2h, 2w, out]`.
public final class GeneratorBlock: ConditionalBlock {
  let bn1: ConditionalBatchNorm
  let conv1: Conv2d
  let bn2: ConditionalBatchNorm
  let conv2: Conv2d
  let convSkip: Conv2d

  init(
    prefix: String, in i: Int, out o: Int, conditionDim: Int, classes: Int?, settings: LayerSettings,
    rng: inout SeededRandom
  ) {
    func conv(_ name: String, _ a: Int, _ b: Int, _ k: Int, _ up: Bool, _ rng: inout SeededRandom) -> Conv2d {
      Conv2d(
        prefix: path(prefix, name), in: a, out: b, kernel: k, upsample: up, spectralNorm: settings.snEps,
        initialization: settings.initialization, rng: &rng)
    }
    func cbn(_ name: String, _ c: Int, _ rng: inout SeededRandom) -> ConditionalBatchNorm {
      ConditionalBatchNorm(
        prefix: path(prefix, name), channels: c, conditionDim: conditionDim, classes: classes,
        settings: settings, rng: &rng)
    }
    conv1 = conv("conv1", i, o, 3, true, &rng)
    conv2 = conv("conv2", o, o, 3, false, &rng)
    convSkip = conv("conv_sc", i, o, 1, true, &rng)
    bn1 = cbn("bn1", i, &rng)
    bn2 = cbn("bn2", o, &rng)
    // conv1 and conv2 read the norms' ReLUs, which nothing else keeps;
    // conv_sc reads x, which bn1 keeps.
    for c in [conv1, conv2] { c.keepsInputAsBFloat16 = true }
  }

  /// In BigGAN-PyTorch's registration order: conv1, conv2, conv_sc, bn1, bn2.
  private var modules: [any Module] { [conv1, conv2, convSkip, bn1, bn2] }
  public var parameters: [Parameter] { modules.flatMap(\.parameters) }
  public var buffers: [Buffer] { modules.flatMap(\.buffers) }

  var precision: Precision = .fp32 {
    didSet {
      for c in [conv1, conv2, convSkip] { c.precision = precision }
      bn1.precision = precision
      bn2.precision = precision
    }
  }

  var statistics: [RunningStatistics] { [bn1.stats, bn2.stats] }

  func forward(_ x: Tensor, condition: NormCondition, mode: Mode) throws(KernelError) -> Tensor {
    var h = try bn1.forward(x, condition: condition, relu: true, mode: mode)
    h = try conv1.forward(h, mode: mode)
    h = try bn2.forward(h, condition: condition, relu: true, mode: mode)
    h = try conv2.forward(h, mode: mode)
    try h.add(try convSkip.forward(x, mode: mode))
    return h
  }

  /// Returns `dL/dx` and `dL/d(condition vector)`.
  func backward(_ dy: Tensor) throws(KernelError) -> (input: Tensor, condition: Tensor?) {
    var d = try conv2.backward(dy)
    let (dh2, dc2) = try bn2.backward(d)
    d = try conv1.backward(dh2)
    var (dx, dc) = try bn1.backward(d)
    try dx.add(try convSkip.backward(dy))
    if let dc2 { try dc?.add(dc2) }
    return (dx, dc)
  }
}

/// BigGAN discriminator block (BigGAN-PyTorch `DBlock`, wide): optional
/// pre-activation ReLU, `conv3x3-ReLU-conv3x3`, 2x2 average pooling when
/// downsampling; the skip is `conv1x1` then pooling after a pre-activation,
/// pooling then `conv1x1` in the first block, and learned only when the
/// channels change or the block downsamples.
///
/// Shapes: `x` `[batch, h, w, in]`, result `[batch, h/2, w/2, out]` (or
/// `[batch, h, w, out]` without downsampling).
public final class DiscriminatorBlock: ResidualBlock {
  let conv1: Conv2d
  let conv2: Conv2d
  let convSkip: Conv2d?
  let preactivation: Bool
  let downsample: Bool

  /// What `backward` reads: the shapes of the input and of conv2's output
  /// (the pooling's input), and the masks of the ReLUs as their outputs
  /// (`relu(h) > 0` exactly where `h > 0`), which the convolutions after
  /// them keep anyway: `relu(x)` with pre-activation, and `relu(conv1)`.
  private struct Saved {
    let inputShape: [Int]
    let activatedInput: Tensor?
    let hidden: Tensor
    let convolvedShape: [Int]

    /// The same for the batch rows `rows` (all for nil).
    func batchRows(_ rows: Range<Int>?) throws(KernelError) -> Saved {
      guard let rows else { return self }
      return Saved(
        inputShape: [rows.count] + inputShape.dropFirst(), activatedInput: try activatedInput?.batchRows(rows),
        hidden: try hidden.batchRows(rows), convolvedShape: [rows.count] + convolvedShape.dropFirst())
    }
  }
  private var saved: Saved?

  init(
    prefix: String, in i: Int, out o: Int, preactivation: Bool, downsample: Bool,
    settings: LayerSettings, rng: inout SeededRandom
  ) {
    func conv(_ name: String, _ a: Int, _ k: Int, _ rng: inout SeededRandom) -> Conv2d {
      Conv2d(
        prefix: path(prefix, name), in: a, out: o, kernel: k, spectralNorm: settings.snEps,
        initialization: settings.initialization, rng: &rng)
    }
    conv1 = conv("conv1", i, 3, &rng)
    conv2 = conv("conv2", o, 3, &rng)
    convSkip = i != o || downsample ? conv("conv_sc", i, 1, &rng) : nil
    self.preactivation = preactivation
    self.downsample = downsample
  }

  private var modules: [any Module] { [conv1, conv2] + (convSkip.map { [$0] } ?? []) }
  public var parameters: [Parameter] { modules.flatMap(\.parameters) }
  public var buffers: [Buffer] { modules.flatMap(\.buffers) }

  var precision: Precision = .fp32 {
    didSet { for c in [conv1, conv2] + (convSkip.map { [$0] } ?? []) { c.precision = precision } }
  }

  func forward(_ x: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    saved = nil
    let activated = preactivation ? relu(x) : nil
    let hidden = relu(try conv1.forward(activated ?? x, mode: mode))
    var h = try conv2.forward(hidden, mode: mode)
    let convolvedShape = h.shape
    if downsample { h = try averagePool2x2(h) }
    var skip = x
    if preactivation {
      if let convSkip { skip = try convSkip.forward(skip, mode: mode) }
      if downsample { skip = try averagePool2x2(skip) }
    } else {
      if downsample { skip = try averagePool2x2(skip) }
      if let convSkip { skip = try convSkip.forward(skip, mode: mode) }
    }
    if mode.keepsActivations {
      saved = Saved(inputShape: x.shape, activatedInput: activated, hidden: hidden, convolvedShape: convolvedShape)
    }
    try h.add(skip)
    return h
  }

  func tangent(_ t: Tensor, rows: Range<Int>) throws(KernelError) -> Tensor {
    guard let s = try saved?.batchRows(rows) else { throw .shape("DiscriminatorBlock.tangent called without a training- or evaluation-mode forward") }
    let activated = try s.activatedInput.map { a throws(KernelError) in try reluBackward(input: a, outputGradient: t) }
    let hidden = try reluBackward(input: s.hidden, outputGradient: try conv1.tangent(activated ?? t))
    var h = try conv2.tangent(hidden)
    if downsample { h = try averagePool2x2(h) }
    var skip = t
    if preactivation {
      if let convSkip { skip = try convSkip.tangent(skip) }
      if downsample { skip = try averagePool2x2(skip) }
    } else {
      if downsample { skip = try averagePool2x2(skip) }
      if let convSkip { skip = try convSkip.tangent(skip) }
    }
    try h.add(skip)
    return h
  }

  func backward(_ dy: Tensor, inputGradient: Bool, pass: Pass) throws(KernelError) -> Tensor? {
    guard let s = try (pass == .forward ? saved.take() : saved)?.batchRows(pass.rows) else {
      throw .shape("DiscriminatorBlock.backward called without a training- or evaluation-mode forward")
    }
    var dh = downsample ? try averagePool2x2Backward(dy, inputShape: s.convolvedShape) : dy
    dh = try conv2.backward(dh, pass: pass)
    dh = try reluBackward(input: s.hidden, outputGradient: dh)
    var ds = dy
    if preactivation && downsample {
      let pooledShape = convSkip.map { _ in Array(s.inputShape.dropLast()) + [dy.shape[3]] } ?? s.inputShape
      ds = try averagePool2x2Backward(ds, inputShape: pooledShape)
    }
    guard inputGradient else {
      try conv1.backwardParameters(dh, pass: pass)
      try convSkip?.backwardParameters(ds, pass: pass)
      return nil
    }
    dh = try conv1.backward(dh, pass: pass)
    var dx = dh
    if let a = s.activatedInput { dx = try reluBackward(input: a, outputGradient: dh) }
    if let convSkip { ds = try convSkip.backward(ds, pass: pass) }
    if !preactivation && downsample { ds = try averagePool2x2Backward(ds, inputShape: s.inputShape) }
    try dx.add(ds)
    return dx
  }
}
