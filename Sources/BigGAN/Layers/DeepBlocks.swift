import BGKernels

/// BigGAN-deep generator block (BigGAN-PyTorch `BigGANdeep.GBlock`,
/// pytorch-pretrained-BigGAN `GenBlock`): a bottleneck at a quarter of the
/// input width, `CBN-ReLU-conv1x1`, `CBN-ReLU-upsample-conv3x3`,
/// `CBN-ReLU-conv3x3`, `CBN-ReLU-conv1x1`, every CBN on the same
/// condition. The skip has no weights: the first `out` channels of `x`
/// (channel drop), upsampled with the block. The upsample is fused into the
/// first 3x3 convolution.
///
/// Shapes: `x` `[batch, h, w, in]`, condition vector `[batch, conditionDim]`,
/// result `[batch, 2h, 2w, out]` (or `[batch, h, w, out]` without
/// upsampling), `out <= in`.
public final class DeepGeneratorBlock: ConditionalBlock {
  let bn1: ConditionalBatchNorm
  let conv1: Conv2d
  let bn2: ConditionalBatchNorm
  let conv2: Conv2d
  let bn3: ConditionalBatchNorm
  let conv3: Conv2d
  let bn4: ConditionalBatchNorm
  let conv4: Conv2d
  let upsample: Bool
  private let outputChannels: Int

  /// What `backward` reads besides its layers': the input's width, which
  /// the skip's gradient is padded back to.
  private struct Saved {
    let inputChannels: Int
  }
  private var saved: Saved?

  init(
    prefix: String, in i: Int, out o: Int, upsample: Bool, conditionDim: Int,
    settings: LayerSettings, rng: inout SeededRandom
  ) {
    precondition(o <= i, "BigGAN-deep generator blocks drop channels: out \(o) > in \(i)")
    func conv(_ name: String, _ a: Int, _ b: Int, _ k: Int, _ up: Bool, _ rng: inout SeededRandom) -> Conv2d {
      Conv2d(
        prefix: path(prefix, name), in: a, out: b, kernel: k, upsample: up,
        spectralNorm: settings.snEps, initialization: settings.initialization, rng: &rng)
    }
    func cbn(_ name: String, _ c: Int, _ rng: inout SeededRandom) -> ConditionalBatchNorm {
      ConditionalBatchNorm(
        prefix: path(prefix, name), channels: c, conditionDim: conditionDim, classes: nil, settings: settings,
        rng: &rng)
    }
    let hidden = i / 4
    conv1 = conv("conv1", i, hidden, 1, false, &rng)
    conv2 = conv("conv2", hidden, hidden, 3, upsample, &rng)
    conv3 = conv("conv3", hidden, hidden, 3, false, &rng)
    conv4 = conv("conv4", hidden, o, 1, false, &rng)
    bn1 = cbn("bn1", i, &rng)
    bn2 = cbn("bn2", hidden, &rng)
    bn3 = cbn("bn3", hidden, &rng)
    bn4 = cbn("bn4", hidden, &rng)
    // Every convolution reads a norm's ReLU, which nothing else keeps.
    for c in [conv1, conv2, conv3, conv4] { c.keepsInputAsBFloat16 = true }
    self.upsample = upsample
    outputChannels = o
  }

  /// In BigGAN-PyTorch's registration order: conv1-4, then bn1-4.
  private var modules: [any Module] { [conv1, conv2, conv3, conv4, bn1, bn2, bn3, bn4] }
  public var parameters: [Parameter] { modules.flatMap(\.parameters) }
  public var buffers: [Buffer] { modules.flatMap(\.buffers) }
  private var norms: [ConditionalBatchNorm] { [bn1, bn2, bn3, bn4] }

  var precision: Precision = .fp32 {
    didSet {
      for c in [conv1, conv2, conv3, conv4] { c.precision = precision }
      for n in norms { n.precision = precision }
    }
  }

  var statistics: [RunningStatistics] { norms.map(\.stats) }

  func forward(_ x: Tensor, condition: NormCondition, mode: Mode) throws(KernelError) -> Tensor {
    saved = nil
    var h = try conv1.forward(try bn1.forward(x, condition: condition, relu: true, mode: mode), mode: mode)
    h = try conv2.forward(try bn2.forward(h, condition: condition, relu: true, mode: mode), mode: mode)
    h = try conv3.forward(try bn3.forward(h, condition: condition, relu: true, mode: mode), mode: mode)
    h = try conv4.forward(try bn4.forward(h, condition: condition, relu: true, mode: mode), mode: mode)
    var skip = x.shape[3] == outputChannels ? x : try channels(x, 0..<outputChannels)
    if upsample { skip = try upsample2x(skip) }
    try h.add(skip)
    if mode.keepsActivations { saved = Saved(inputChannels: x.shape[3]) }
    return h
  }

  func backward(_ dy: Tensor) throws(KernelError) -> (input: Tensor, condition: Tensor?) {
    guard let s = saved.take() else { throw .shape("DeepGeneratorBlock.backward called without a training- or evaluation-mode forward") }
    var (d, dc) = try bn4.backward(try conv4.backward(dy))
    d = try conv3.backward(d)
    for (norm, conv) in [(bn3, conv2), (bn2, conv1)] {
      let (dh, dcn) = try norm.backward(d)
      if let dcn { try dc?.add(dcn) }
      d = try conv.backward(dh)
    }
    var (dx, dc1) = try bn1.backward(d)
    if let dc1 { try dc?.add(dc1) }
    var ds = upsample ? try upsample2xBackward(dy) : dy
    if s.inputChannels != outputChannels { ds = try paddingChannels(ds, offset: 0, total: s.inputChannels) }
    try dx.add(ds)
    return (dx, dc)
  }
}

/// BigGAN-deep discriminator block (BigGAN-PyTorch `BigGANdeep.DBlock`):
/// `ReLU-conv1x1` to a quarter of the output width, `ReLU-conv3x3`,
/// `ReLU-conv3x3`, `ReLU`, 2x2 average pooling when downsampling, then
/// `conv1x1` to `out`. The skip is pooled, and when the block widens, the
/// missing `out - in` channels are a learned 1x1 convolution of it
/// appended to it (`cat([x, conv_sc(x)])`). The first block of the
/// network skips the leading ReLU (compare_gan; BigGAN-PyTorch PR #81).
///
/// Shapes: `x` `[batch, h, w, in]`, result `[batch, h/2, w/2, out]` (or
/// `[batch, h, w, out]`), `out >= in`.
public final class DeepDiscriminatorBlock: ResidualBlock {
  let conv1: Conv2d
  let conv2: Conv2d
  let conv3: Conv2d
  let conv4: Conv2d
  let convSkip: Conv2d?
  let preactivation: Bool
  let downsample: Bool

  /// What `backward` reads: the input's shape, and the masks of the ReLUs
  /// as their outputs (`relu(h) > 0` exactly where `h > 0`), most of which
  /// the convolutions after them keep anyway: `relu(x)` with
  /// pre-activation, then `relu` of conv1's, conv2's and conv3's outputs.
  private struct Saved {
    let inputShape: [Int]
    let activatedInput: Tensor?
    let hidden1: Tensor
    let hidden2: Tensor
    let hidden3: Tensor

    /// The same for the batch rows `rows` (all for nil).
    func batchRows(_ rows: Range<Int>?) throws(KernelError) -> Saved {
      guard let rows else { return self }
      return Saved(
        inputShape: [rows.count] + inputShape.dropFirst(), activatedInput: try activatedInput?.batchRows(rows),
        hidden1: try hidden1.batchRows(rows), hidden2: try hidden2.batchRows(rows), hidden3: try hidden3.batchRows(rows))
    }
  }
  private var saved: Saved?

  init(
    prefix: String, in i: Int, out o: Int, preactivation: Bool, downsample: Bool,
    settings: LayerSettings, rng: inout SeededRandom
  ) {
    precondition(o >= i, "BigGAN-deep discriminator blocks add channels: out \(o) < in \(i)")
    func conv(_ name: String, _ a: Int, _ b: Int, _ k: Int, _ rng: inout SeededRandom) -> Conv2d {
      Conv2d(
        prefix: path(prefix, name), in: a, out: b, kernel: k, spectralNorm: settings.snEps,
        initialization: settings.initialization, rng: &rng)
    }
    let hidden = o / 4
    conv1 = conv("conv1", i, hidden, 1, &rng)
    conv2 = conv("conv2", hidden, hidden, 3, &rng)
    conv3 = conv("conv3", hidden, hidden, 3, &rng)
    conv4 = conv("conv4", hidden, o, 1, &rng)
    convSkip = o > i ? conv("conv_sc", i, o - i, 1, &rng) : nil
    self.preactivation = preactivation
    self.downsample = downsample
  }

  private var convs: [Conv2d] { [conv1, conv2, conv3, conv4] + (convSkip.map { [$0] } ?? []) }
  public var parameters: [Parameter] { convs.flatMap(\.parameters) }
  public var buffers: [Buffer] { convs.flatMap(\.buffers) }

  var precision: Precision = .fp32 {
    didSet { for c in convs { c.precision = precision } }
  }

  func forward(_ x: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    saved = nil
    let activated = preactivation ? relu(x) : nil
    let a1 = relu(try conv1.forward(activated ?? x, mode: mode))
    let a2 = relu(try conv2.forward(a1, mode: mode))
    let a3 = relu(try conv3.forward(a2, mode: mode))
    var h = try conv4.forward(downsample ? try averagePool2x2(a3) : a3, mode: mode)
    var skip = downsample ? try averagePool2x2(x) : x
    if let convSkip { skip = try concatenateChannels(skip, try convSkip.forward(skip, mode: mode)) }
    try h.add(skip)
    if mode.keepsActivations {
      saved = Saved(inputShape: x.shape, activatedInput: activated, hidden1: a1, hidden2: a2, hidden3: a3)
    }
    return h
  }

  func tangent(_ t: Tensor, rows: Range<Int>) throws(KernelError) -> Tensor {
    guard let s = try saved?.batchRows(rows) else { throw .shape("DeepDiscriminatorBlock.tangent called without a training- or evaluation-mode forward") }
    let activated = try s.activatedInput.map { a throws(KernelError) in try reluBackward(input: a, outputGradient: t) }
    let a1 = try reluBackward(input: s.hidden1, outputGradient: try conv1.tangent(activated ?? t))
    let a2 = try reluBackward(input: s.hidden2, outputGradient: try conv2.tangent(a1))
    let a3 = try reluBackward(input: s.hidden3, outputGradient: try conv3.tangent(a2))
    var h = try conv4.tangent(downsample ? try averagePool2x2(a3) : a3)
    var skip = downsample ? try averagePool2x2(t) : t
    if let convSkip { skip = try concatenateChannels(skip, try convSkip.tangent(skip)) }
    try h.add(skip)
    return h
  }

  func backward(_ dy: Tensor, inputGradient: Bool, pass: Pass) throws(KernelError) -> Tensor? {
    guard let s = try (pass == .forward ? saved.take() : saved)?.batchRows(pass.rows) else {
      throw .shape("DeepDiscriminatorBlock.backward called without a training- or evaluation-mode forward")
    }
    var d = try conv4.backward(dy, pass: pass)
    if downsample { d = try averagePool2x2Backward(d, inputShape: s.hidden3.shape) }
    d = try conv3.backward(try reluBackward(input: s.hidden3, outputGradient: d), pass: pass)
    d = try conv2.backward(try reluBackward(input: s.hidden2, outputGradient: d), pass: pass)
    d = try reluBackward(input: s.hidden1, outputGradient: d)
    let inC = s.inputShape[3], outC = dy.shape[3]
    guard inputGradient else {
      try conv1.backwardParameters(d, pass: pass)
      try convSkip?.backwardParameters(try channels(dy, inC..<outC), pass: pass)
      return nil
    }
    d = try conv1.backward(d, pass: pass)
    var dx = d
    if let a = s.activatedInput { dx = try reluBackward(input: a, outputGradient: d) }
    var ds = dy
    if let convSkip {
      ds = try channels(dy, 0..<inC)
      try ds.add(try convSkip.backward(try channels(dy, inC..<outC), pass: pass))
    }
    if downsample { ds = try averagePool2x2Backward(ds, inputShape: s.inputShape) }
    try dx.add(ds)
    return dx
  }
}
