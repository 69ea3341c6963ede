import BGKernels

/// The BigGAN generator (BigGAN-PyTorch `Generator` with `G_shared` and
/// `hier`): a shared class embedding, hierarchical z, a linear stem to
/// 4x4x16ch, upsampling residual blocks with class-conditional batch-norm,
/// self-attention where configured, and a BN-ReLU-conv3x3-tanh head.
///
/// Shapes: `z` `[batch, dimZ]`, class indices `[batch]`, images
/// `[batch, resolution, resolution, 3]` in [-1, 1] (NHWC).
public final class Generator: Module {
  public let configuration: BigGANConfiguration
  let shared: Embedding
  let linear: Linear
  let blocks: [GeneratorBlock]
  /// Attention after block i, if any.
  let attention: [SelfAttention?]
  let outputNorm: BatchNorm
  let outputConv: Conv2d

  /// The precision of every product in the network.
  public var precision: Precision = .fp32 {
    didSet {
      linear.precision = precision
      outputConv.precision = precision
      for b in blocks { b.precision = precision }
      for a in attention { a?.precision = precision }
    }
  }

  /// `labels` is nil when the forward was given class embeddings directly.
  private var cache: (labels: [Int]?, chunks: [Tensor], conditions: [Tensor], out: Tensor)?

  /// A freshly initialised generator.
  /// - Throws: `ConfigurationError` for settings that cannot build a model.
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
    let plan = config.generatorBlocks
    let sn = config.snEps
    shared = Embedding(prefix: "shared", classes: config.classes, features: config.sharedDim, spectralNorm: nil, initialization: config.initialization, rng: &rng)
    linear = Linear(prefix: "linear", in: config.zChunk, out: plan[0].in * 16, spectralNorm: sn, initialization: config.initialization, rng: &rng)
    var blocks: [GeneratorBlock] = [], attention: [SelfAttention?] = []
    for (i, b) in plan.enumerated() {
      blocks.append(GeneratorBlock(
        prefix: "blocks.\(i).0", in: b.in, out: b.out, conditionDim: config.conditionDim,
        bnEps: config.bnEps, snEps: sn, initialization: config.initialization, rng: &rng))
      attention.append(config.generatorAttention.contains(b.resolution)
        ? SelfAttention(prefix: "blocks.\(i).1", channels: b.out, snEps: sn, initialization: config.initialization, rng: &rng) : nil)
    }
    self.blocks = blocks
    self.attention = attention
    let last = plan[plan.count - 1].out
    outputNorm = BatchNorm(prefix: "output_layer.0", channels: last, eps: config.bnEps)
    outputConv = Conv2d(prefix: "output_layer.2", in: last, out: 3, kernel: 3, spectralNorm: sn, initialization: config.initialization, rng: &rng)
  }

  /// In BigGAN-PyTorch's state-dict order.
  private var modules: [any Module] {
    var m: [any Module] = [linear]
    for (b, a) in zip(blocks, attention) {
      m.append(b)
      if let a { m.append(a) }
    }
    return m + [outputNorm, outputConv, shared]
  }
  public var parameters: [Parameter] { modules.flatMap(\.parameters) }
  public var buffers: [Buffer] { modules.flatMap(\.buffers) }

  /// Images for latents `z` and class indices `labels`.
  public func forward(z: Tensor, labels: [Int], mode: Mode) throws(KernelError) -> Tensor {
    let zs = try z.dims(2, "z")
    guard zs[0] == labels.count else {
      throw .shape("z has \(zs[0]) rows but there are \(labels.count) labels")
    }
    let out = try forward(z: z, classEmbeddings: try shared.forward(labels, mode: mode), mode: mode)
    cache?.labels = labels
    return out
  }

  /// The shared class embedding of each label, `[n, sharedDim]`: the class
  /// space that interpolation sheets walk through.
  public func classEmbeddings(_ labels: [Int]) throws(KernelError) -> Tensor {
    try shared.forward(labels, mode: .evaluation)
  }

  /// Images for latents `z` and shared class embeddings (`[batch,
  /// sharedDim]`, e.g. blends of two classes').
  public func forward(z: Tensor, classEmbeddings embedded: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    let c = configuration
    let zs = try z.dims(2, "z")
    guard zs[1] == c.dimZ, zs[0] > 0, embedded.shape == [zs[0], c.sharedDim] else {
      throw .shape("z has shape \(zs) and class embeddings \(embedded.shape), expected [batch, \(c.dimZ)] and [batch, \(c.sharedDim)]")
    }
    let batch = zs[0]
    let chunkCount = c.hierarchical ? blocks.count + 1 : 1
    var chunks: [Tensor] = []
    for k in 0..<chunkCount {
      var t = Tensor(shape: [batch, c.zChunk])
      for b in 0..<batch {
        for j in 0..<c.zChunk { t.storage[b * c.zChunk + j] = z.storage[b * c.dimZ + k * c.zChunk + j] }
      }
      chunks.append(t)
    }
    // Hierarchical: block i is conditioned on [embedding, chunk i+1]
    // (embedding first, as in BigGAN-PyTorch).
    let conditions = try (0..<blocks.count).map { i throws(KernelError) in
      c.hierarchical ? try concatColumns(embedded, chunks[i + 1]) : embedded
    }
    var h = try linear.forward(chunks[0], mode: mode)
    h = try h.reshaped([batch, 4, 4, blocks[0].bn1.stats.mean.value.count])
    for i in blocks.indices {
      h = try blocks[i].forward(h, condition: conditions[i], mode: mode)
      if let a = attention[i] { h = try a.forward(h, mode: mode) }
    }
    h = try outputNorm.forward(h, relu: true, mode: mode)
    let out = BGKernels.tanh(try outputConv.forward(h, mode: mode))
    cache = (nil, chunks, conditions, out)
    return out
  }

  /// Backpropagates `dL/dimages`, accumulating every parameter gradient;
  /// returns `dL/dz`.
  @discardableResult
  public func backward(_ dImages: Tensor) throws(KernelError) -> Tensor {
    guard let s = cache else { throw .shape("Generator.backward called before forward") }
    let c = configuration
    let batch = s.out.shape[0]
    var d = try tanhBackward(output: s.out, outputGradient: dImages)
    d = try outputConv.backward(d)
    d = try outputNorm.backward(d)
    var dEmbedded = Tensor(shape: [batch, c.sharedDim])
    var dz = Tensor(shape: [batch, c.dimZ])
    for i in blocks.indices.reversed() {
      if let a = attention[i] { d = try a.backward(d) }
      let (dx, dc) = try blocks[i].backward(d)
      d = dx
      for b in 0..<batch {
        let w = c.conditionDim
        for j in 0..<c.sharedDim { dEmbedded.storage[b * c.sharedDim + j] += dc.storage[b * w + j] }
        if c.hierarchical {
          for j in 0..<c.zChunk {
            dz.storage[b * c.dimZ + (i + 1) * c.zChunk + j] += dc.storage[b * w + c.sharedDim + j]
          }
        }
      }
    }
    let dStem = try linear.backward(try d.reshaped([batch, d.count / batch]))
    for b in 0..<batch {
      for j in 0..<c.zChunk { dz.storage[b * c.dimZ + j] += dStem.storage[b * c.zChunk + j] }
    }
    if s.labels != nil { try shared.backward(dEmbedded) }
    return dz
  }

  /// Recomputes the running batch-norm statistics as the average over
  /// `passes` training-mode forwards of `sample()` batches (standing
  /// statistics), leaving every other state as it was.
  public func standingStatistics(passes: Int, sample: () -> (z: Tensor, labels: [Int])) throws(KernelError) {
    let norms = allStatistics
    let saved = buffers.map(\.value)
    for n in norms { n.beginStanding() }
    for _ in 0..<passes {
      let (z, y) = sample()
      _ = try forward(z: z, labels: y, mode: .training)
    }
    let standing = norms.map { n -> (Tensor, Tensor) in
      n.endStanding()
      return (n.mean.value, n.variance.value)
    }
    for (b, v) in zip(buffers, saved) { b.value = v }
    for (n, s) in zip(norms, standing) {
      n.mean.value = s.0
      n.variance.value = s.1
    }
  }

  private var allStatistics: [RunningStatistics] {
    blocks.flatMap { [$0.bn1.stats, $0.bn2.stats] } + [outputNorm.stats]
  }
}

/// `[a | b]` for `[n, p]` and `[n, q]`.
func concatColumns(_ a: Tensor, _ b: Tensor) throws(KernelError) -> Tensor {
  let n = a.shape[0], p = a.shape[1], q = b.shape[1]
  var out = Tensor(shape: [n, p + q])
  for i in 0..<n {
    for j in 0..<p { out.storage[i * (p + q) + j] = a.storage[i * p + j] }
    for j in 0..<q { out.storage[i * (p + q) + p + j] = b.storage[i * q + j] }
  }
  return out
}
