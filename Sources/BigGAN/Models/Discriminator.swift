import BGKernels

/// The BigGAN discriminator (BigGAN-PyTorch `Discriminator`, wide blocks),
/// or BigGAN-deep's (`BigGANdeep.Discriminator`: a 3x3 stem convolution,
/// then bottleneck blocks): downsampling residual blocks, self-attention
/// where configured, ReLU, global sum pooling, and a linear output plus the
/// projection `<embed(y), h>` of a spectrally normalised class embedding.
///
/// Shapes: images `[batch, resolution, resolution, 3]`, class indices
/// `[batch]`, scores `[batch, 1]`.
public final class Discriminator: Module {
  public let configuration: BigGANConfiguration
  /// BigGAN-deep's `input_conv`, 3 to ch channels.
  let stem: Conv2d?
  let blocks: [any ResidualBlock]
  let attention: [SelfAttention?]
  let linear: Linear
  let embed: Embedding

  /// The precision of the network's matrix products: every convolution
  /// (attention's included), the attention core and the output linear map.
  /// The class projection `<embed(y), h>` and the sum pooling are fp32.
  public var precision: Precision = .fp32 {
    didSet {
      linear.precision = precision
      stem?.precision = precision
      for b in blocks { b.precision = precision }
      for a in attention { a?.precision = precision }
    }
  }

  /// What `backward` reads besides its layers': the last block's output
  /// `[batch, h, w, C]` (the ReLU's mask and the pooling's shape), its
  /// pooled ReLU and the class embeddings `[batch, C]` (the projection's
  /// two factors).
  private struct Saved {
    let features: Tensor
    let pooled: Tensor
    let embedded: Tensor
  }
  private var saved: Saved?

  /// A freshly initialised discriminator.
  ///
  /// - Parameter initialization: overrides `config.initialization`, e.g.
  ///   `.zeros` when the weights come from a file next.
  public init(
    _ config: BigGANConfiguration, seed: UInt64, initialization override: Initialization? = nil
  ) throws(ConfigurationError) {
    try config.validate()
    configuration = config
    var config = config
    if let override { config.initialization = override }
    var rng = SeededRandom(seed: seed)
    let settings = config.layerSettings
    let sn = settings.snEps, initialization = config.initialization
    let layouts = config.discriminatorBlocks
    stem = config.architecture == .deep
      ? Conv2d(prefix: "input_conv", in: 3, out: layouts[0].in, kernel: 3, spectralNorm: sn, initialization: initialization, rng: &rng)
      : nil
    var blocks: [any ResidualBlock] = [], attention: [SelfAttention?] = []
    for b in layouts {
      switch config.architecture {
      case .biggan:
        blocks.append(DiscriminatorBlock(
          prefix: b.prefix, in: b.in, out: b.out, preactivation: b.preactivation,
          downsample: b.downsample, settings: settings, rng: &rng))
      case .deep:
        blocks.append(DeepDiscriminatorBlock(
          prefix: b.prefix, in: b.in, out: b.out, preactivation: b.preactivation,
          downsample: b.downsample, settings: settings, rng: &rng))
      }
      attention.append(b.attention.map { SelfAttention(prefix: $0, channels: b.out, settings: settings, rng: &rng) })
    }
    self.blocks = blocks
    self.attention = attention
    let last = layouts[layouts.count - 1].out
    linear = Linear(prefix: "linear", in: last, out: 1, spectralNorm: sn, initialization: initialization, rng: &rng)
    embed = Embedding(prefix: "embed", classes: config.classes, features: last, spectralNorm: sn, initialization: initialization, rng: &rng)
  }

  private var modules: [any Module] {
    var m: [any Module] = stem.map { [$0] } ?? []
    for (b, a) in zip(blocks, attention) {
      m.append(b)
      if let a { m.append(a) }
    }
    return m + [linear, embed]
  }
  public var parameters: [Parameter] { modules.flatMap(\.parameters) }
  public var buffers: [Buffer] { modules.flatMap(\.buffers) }

  /// Scores `[batch, 1]` for images and their class indices.
  public func forward(_ images: Tensor, labels: [Int], mode: Mode) throws(KernelError) -> Tensor {
    let r = configuration.resolution
    let s = try images.dims(4, "images")
    guard s[1] == r, s[2] == r, s[3] == 3, s[0] == labels.count, s[0] > 0 else {
      throw .shape("images have shape \(s) with \(labels.count) labels, expected [batch, \(r), \(r), 3] with batch labels")
    }
    saved = nil
    var h = try stem?.forward(images, mode: mode) ?? images
    for i in blocks.indices {
      h = try blocks[i].forward(h, mode: mode)
      if let a = attention[i] { h = try a.forward(h, mode: mode) }
    }
    let features = h
    let pooled = try sumPool(relu(h))
    var out = try linear.forward(pooled, mode: mode)
    let e = try embed.forward(labels, mode: mode)
    let c = pooled.shape[1]
    for b in 0..<labels.count {
      var p: Float = 0
      for j in 0..<c { p += e.storage[b * c + j] * pooled.storage[b * c + j] }
      out.storage[b] += p
    }
    if mode.keepsActivations { saved = Saved(features: features, pooled: pooled, embedded: e) }
    return out
  }

  /// Backpropagates `dL/dscores` (`[batch, 1]`), accumulating every
  /// parameter gradient; returns `dL/dimages`.
  @discardableResult
  public func backward(_ dScores: Tensor) throws(KernelError) -> Tensor {
    guard let dImages = try backward(dScores, inputGradient: true) else {
      throw .shape("Discriminator.backward returned no image gradient")
    }
    return dImages
  }

  /// Backpropagates `dL/dscores` (`[batch, 1]`) into the parameter
  /// gradients only: a D step, whose images need no gradient, skips the
  /// first layer's input gradient (BigGAN-PyTorch's fake images are
  /// detached and its real ones need none either).
  public func backwardParameters(_ dScores: Tensor) throws(KernelError) {
    _ = try backward(dScores, inputGradient: false)
  }

  /// Whether any block is followed by self-attention, which the R1
  /// penalty does not support.
  public var hasSelfAttention: Bool { attention.contains { $0 != nil } }

  /// The R1 penalty (Mescheder et al. 2018) of the batch rows `rows` of the
  /// last training-mode forward, `weight / 2 * sum_i |dD(x_i)/dx_i|^2`;
  /// accumulates its gradient into every parameter's, through the spectral
  /// norms as the loss's. Call it between `forward` and `backward`, whose
  /// activations it leaves in place.
  ///
  /// D without self-attention is piecewise linear in its input, so with
  /// `g = J^T 1` (the transpose pass) the penalty's parameter gradient is
  /// `weight` times that of `<g, J g>` with `g` held fixed: a tangent pass
  /// `t = J g` through the same ReLU masks and weights, then its backward
  /// from `weight` per row. Exact, as `torch.autograd.grad(create_graph:)`.
  public func gradientPenalty(rows: Range<Int>, weight: Float) throws(KernelError) -> Float {
    guard !hasSelfAttention else { throw .shape("the R1 penalty needs a discriminator without self-attention") }
    guard let s = saved else { throw .shape("Discriminator.gradientPenalty called without a training- or evaluation-mode forward") }
    guard !rows.isEmpty, rows.upperBound <= s.pooled.shape[0] else {
      throw .shape("gradientPenalty: rows \(rows) of a batch of \(s.pooled.shape[0])")
    }
    let n = rows.count
    let features = try s.features.batchRows(rows), embedded = try s.embedded.batchRows(rows)
    var d = try headBackward(Tensor(shape: [n, 1], repeating: 1), features: features, pooled: nil, embedded: embedded, pass: .transpose(rows: rows))
    guard let g = try trunkBackward(d, pass: .transpose(rows: rows), inputGradient: true) else {
      throw .shape("Discriminator.gradientPenalty found no input gradient")
    }
    var squares = 0.0
    for v in g.storage { squares += Double(v) * Double(v) }

    var t = try stem?.tangent(g) ?? g
    for b in blocks { t = try b.tangent(t, rows: rows) }
    let pooled = try sumPool(try reluBackward(input: features, outputGradient: t))
    _ = try linear.tangent(pooled)
    d = try headBackward(
      Tensor(shape: [n, 1], repeating: weight), features: features, pooled: pooled, embedded: embedded, pass: .tangent(rows: rows))
    _ = try trunkBackward(d, pass: .tangent(rows: rows), inputGradient: false)
    return Float(Double(weight) / 2 * squares)
  }

  private func backward(_ dScores: Tensor, inputGradient: Bool) throws(KernelError) -> Tensor? {
    guard let s = saved.take() else { throw .shape("Discriminator.backward called without a training- or evaluation-mode forward") }
    let d = try headBackward(dScores, features: s.features, pooled: s.pooled, embedded: s.embedded, pass: .forward)
    return try trunkBackward(d, pass: .forward, inputGradient: inputGradient)
  }

  /// From `dL/dscores` to `dL/d(last block's output)` through the head
  /// `linear(p) + <e, p>`, `p = sumPool(relu(features))`: `pooled` is the
  /// `p` (or its tangent) whose product with `e` gives the embedding's
  /// gradient, nil in a transpose pass, which accumulates none.
  private func headBackward(
    _ dScores: Tensor, features: Tensor, pooled: Tensor?, embedded: Tensor, pass: Pass
  ) throws(KernelError) -> Tensor {
    let (n, c) = (embedded.shape[0], embedded.shape[1])
    var dPooled = try linear.backward(dScores, pass: pass)
    var dEmbed = Tensor(shape: [n, c])
    for b in 0..<n {
      let g = dScores.storage[b]
      for j in 0..<c {
        dPooled.storage[b * c + j] += g * embedded.storage[b * c + j]
        if let pooled { dEmbed.storage[b * c + j] = g * pooled.storage[b * c + j] }
      }
    }
    try embed.backward(dEmbed, pass: pass)
    return try reluBackward(input: features, outputGradient: try sumPoolBackward(dPooled, inputShape: features.shape))
  }

  /// From `dL/d(last block's output)` down the blocks and the stem in
  /// `pass`; the images' gradient, or nil when `inputGradient` is false.
  private func trunkBackward(_ dFeatures: Tensor, pass: Pass, inputGradient: Bool) throws(KernelError) -> Tensor? {
    var d = dFeatures
    for i in blocks.indices.reversed() {
      if let a = attention[i] { d = try a.backward(d) }
      let first = i == 0 && stem == nil
      guard let dx = try blocks[i].backward(d, inputGradient: inputGradient || !first, pass: pass) else { return nil }
      d = dx
    }
    guard let stem else { return d }
    guard inputGradient else {
      try stem.backwardParameters(d, pass: pass)
      return nil
    }
    return try stem.backward(d, pass: pass)
  }
}
