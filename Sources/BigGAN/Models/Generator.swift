import BGKernels

/// The BigGAN generator (BigGAN-PyTorch `Generator` with `G_shared` and
/// `hier`), or BigGAN-deep's (`BigGANdeep.Generator`, TF-Hub's module): a
/// shared class embedding, a linear stem to 4x4x16ch, upsampling residual
/// blocks with class-conditional batch-norm, self-attention where
/// configured, and a BN-ReLU-conv3x3-tanh head. BigGAN splits z into
/// chunks (the stem's and one per block, each joined with the embedding);
/// BigGAN-deep feeds `[z, embedding]` to the stem and to every block.
/// The paper's Table 1 ablations turn either off: without hierarchical z
/// the whole z goes to the stem alone; without the shared embedding each
/// batch-norm embeds the classes itself (`ConditionalBatchNorm`).
///
/// Shapes: `z` `[batch, dimZ]`, class indices `[batch]` (or class vectors
/// `[batch, classes]`), images `[batch, resolution, resolution, 3]` in
/// [-1, 1] (NHWC).
public final class Generator: Module {
  public let configuration: BigGANConfiguration
  /// The shared class embedding; nil when every batch-norm has its own.
  let shared: Embedding?
  let linear: Linear
  let blocks: [any ConditionalBlock]
  /// Attention after block i, if any.
  let attention: [SelfAttention?]
  let outputNorm: BatchNorm
  let outputConv: Conv2d

  /// The precision of the network's matrix products: the stem's linear
  /// map, the conditional batch-norms' gain and bias maps, every
  /// convolution (attention's included) and the attention core. The
  /// class-vector product `vectors * shared.weight` of
  /// `forward(z:classVectors:mode:)` and its gradient are always fp32, as
  /// are the batch-norms' statistics and the element-wise layers.
  public var precision: Precision = .fp32 {
    didSet {
      linear.precision = precision
      outputConv.precision = precision
      for b in blocks { b.precision = precision }
      for a in attention { a?.precision = precision }
    }
  }

  /// The truncation the batch-norms of a model with per-truncation
  /// statistics (`statisticsRows > 1`) select their statistics for; the
  /// latents should be drawn with the same value. Ignored otherwise.
  public var truncation: Double = 1 {
    didSet { for s in allStatistics { s.truncation = truncation } }
  }

  /// How per-truncation statistics are blended between two rows.
  public var statisticsBlend: StatisticsBlend = .pretrained {
    didSet { for s in allStatistics { s.blend = statisticsBlend } }
  }

  /// Whose images the batch-norms' training statistics come from: this
  /// process's batch, or those of every replica of a data-parallel run.
  public var batchStatisticsScope: BatchStatisticsScope = .local {
    didSet { for s in allStatistics { s.scope = batchStatisticsScope } }
  }

  /// What `backward` reads besides its layers': whether the shared
  /// embedding looked the classes up (and so takes a gradient), the batch,
  /// and the images (tanh's output, its derivative).
  private struct Saved {
    var embeddedHere: Bool
    let batch: Int
    let images: Tensor
  }
  private var saved: Saved?

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
    let settings = config.layerSettings
    shared = config.sharedEmbedding
      ? Embedding(prefix: "shared", classes: config.classes, features: config.sharedDim, spectralNorm: nil, initialization: config.initialization, rng: &rng)
      : nil
    linear = Linear(
      prefix: "linear", in: config.width(of: config.stemInput), out: config.stemChannels * 16,
      spectralNorm: settings.snEps, initialization: config.initialization, rng: &rng)
    var blocks: [any ConditionalBlock] = [], attention: [SelfAttention?] = []
    for b in config.generatorBlocks {
      switch config.architecture {
      case .biggan:
        blocks.append(GeneratorBlock(
          prefix: b.prefix, in: b.in, out: b.out, conditionDim: config.conditionDim,
          classes: config.normEmbeddingClasses, settings: settings, rng: &rng))
      case .deep:
        blocks.append(DeepGeneratorBlock(
          prefix: b.prefix, in: b.in, out: b.out, upsample: b.upsample, conditionDim: config.conditionDim,
          settings: settings, rng: &rng))
      }
      attention.append(b.attention.map { SelfAttention(prefix: $0, channels: b.out, settings: settings, rng: &rng) })
    }
    self.blocks = blocks
    self.attention = attention
    let last = config.generatorBlocks[config.generatorBlocks.count - 1].out
    outputNorm = BatchNorm(prefix: "output_layer.0", channels: last, settings: settings)
    outputConv = Conv2d(prefix: "output_layer.2", in: last, out: 3, kernel: 3, spectralNorm: settings.snEps, initialization: config.initialization, rng: &rng)
    // It reads the output norm's ReLU, which nothing else keeps.
    outputConv.keepsInputAsBFloat16 = true
  }

  /// In BigGAN-PyTorch's state-dict order.
  private var modules: [any Module] {
    var m: [any Module] = [linear]
    for (b, a) in zip(blocks, attention) {
      m.append(b)
      if let a { m.append(a) }
    }
    return m + [outputNorm, outputConv] + (shared.map { [$0] } ?? [])
  }
  public var parameters: [Parameter] { modules.flatMap(\.parameters) }
  public var buffers: [Buffer] { modules.flatMap(\.buffers) }

  /// Images for latents `z` and class indices `labels`.
  public func forward(z: Tensor, labels: [Int], mode: Mode) throws(KernelError) -> Tensor {
    let zs = try z.dims(2, "z")
    guard zs[0] == labels.count else {
      throw .shape("z has \(zs[0]) rows but there are \(labels.count) labels")
    }
    return try forward(z: z, classes: .labels(labels), mode: mode)
  }

  /// Images for latents `z` and class vectors `[batch, classes]` (one-hot,
  /// or soft mixtures as pytorch-pretrained-BigGAN accepts): every class
  /// embedding (the shared one, or each batch-norm's) is `vectors *
  /// weight`.
  public func forward(z: Tensor, classVectors vectors: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    try vectors.expect([z.shape.first ?? 0, configuration.classes], "class vectors")
    return try forward(z: z, classes: .vectors(vectors), mode: mode)
  }

  private func forward(z: Tensor, classes: ClassRows, mode: Mode) throws(KernelError) -> Tensor {
    guard let shared else { return try run(z: z, embedded: nil, classes: classes, mode: mode) }
    let out = try run(z: z, embedded: try shared.forward(classes, mode: mode), classes: nil, mode: mode)
    saved?.embeddedHere = true
    return out
  }

  /// Images for latents `z` and shared class embeddings `[batch,
  /// sharedDim]`; a generator without a shared embedding refuses them.
  public func forward(z: Tensor, classEmbeddings embedded: Tensor, mode: Mode) throws(KernelError) -> Tensor {
    guard shared != nil else {
      throw .shape("this generator has no shared class embedding (each batch-norm embeds the classes); pass labels or class vectors")
    }
    return try run(z: z, embedded: embedded, classes: nil, mode: mode)
  }

  /// Convolutions of inference choose their algorithm as for a batch of
  /// this many images, `sample`'s default batch, whatever the batch holds.
  public static let inferenceChoiceBatch = 16

  /// The network from z and the shared embeddings (`embedded`), or, without
  /// a shared embedding, the classes each batch-norm embeds. In inference
  /// every image's bits are the same whatever batch it is drawn in.
  private func run(z: Tensor, embedded: Tensor?, classes: ClassRows?, mode: Mode) throws(KernelError) -> Tensor {
    guard mode == .inference else { return try layers(z: z, embedded: embedded, classes: classes, mode: mode) }
    return try Machine.with(convolutionChoiceBatch: Self.inferenceChoiceBatch) {
      Result { () throws(KernelError) in try layers(z: z, embedded: embedded, classes: classes, mode: mode) }
    }.get()
  }

  private func layers(z: Tensor, embedded: Tensor?, classes: ClassRows?, mode: Mode) throws(KernelError) -> Tensor {
    let c = configuration
    let zs = try z.dims(2, "z")
    guard zs[1] == c.dimZ, zs[0] > 0 else {
      throw .shape("z has shape \(zs), expected [batch, \(c.dimZ)]")
    }
    if let embedded, embedded.shape != [zs[0], c.sharedDim] {
      throw .shape("class embeddings have shape \(embedded.shape), expected [\(zs[0]), \(c.sharedDim)]")
    }
    saved = nil
    let batch = zs[0]
    guard let stemInput = try assemble(c.stemInput, z: z, embedded: embedded) else {
      throw .shape("the generator's stem has no input")
    }
    var h = try linear.forward(stemInput, mode: mode)
    h = try h.reshaped([batch, 4, 4, c.stemChannels])
    var condition: (parts: [ConditionPart], value: NormCondition)?
    for i in blocks.indices {
      let parts = c.blockCondition(i)
      if condition?.parts != parts {
        condition = (parts, NormCondition(vector: try assemble(parts, z: z, embedded: embedded), classes: classes))
      }
      h = try blocks[i].forward(h, condition: condition!.value, mode: mode)
      if let a = attention[i] { h = try a.forward(h, mode: mode) }
    }
    h = try outputNorm.forward(h, relu: true, mode: mode)
    let out = BGKernels.tanh(try outputConv.forward(h, mode: mode))
    if mode.keepsActivations { saved = Saved(embeddedHere: false, batch: batch, images: out) }
    return out
  }

  /// Backpropagates `dL/dimages`, accumulating every parameter gradient;
  /// returns `dL/dz`.
  @discardableResult
  public func backward(_ dImages: Tensor) throws(KernelError) -> Tensor {
    guard let s = saved.take() else { throw .shape("Generator.backward called without a training- or evaluation-mode forward") }
    let c = configuration
    var d = try tanhBackward(output: s.images, outputGradient: dImages)
    d = try outputConv.backward(d)
    d = try outputNorm.backward(d)
    var dEmbedded = Tensor(shape: [s.batch, shared == nil ? 0 : c.sharedDim])
    var dz = Tensor(shape: [s.batch, c.dimZ])
    for i in blocks.indices.reversed() {
      if let a = attention[i] { d = try a.backward(d) }
      let (dx, dc) = try blocks[i].backward(d)
      d = dx
      if let dc { scatter(dc, c.blockCondition(i), dz: &dz, dEmbedded: &dEmbedded) }
    }
    let dStem = try linear.backward(try d.reshaped([s.batch, d.count / s.batch]))
    scatter(dStem, c.stemInput, dz: &dz, dEmbedded: &dEmbedded)
    if s.embeddedHere { try shared?.backward(dEmbedded) }
    return dz
  }

  /// The columns `parts` name, side by side: `[batch, width(of: parts)]`;
  /// nil for no parts.
  private func assemble(_ parts: [ConditionPart], z: Tensor, embedded: Tensor?) throws(KernelError) -> Tensor? {
    var out: Tensor?
    for p in parts {
      let piece: Tensor
      switch p {
      case .embedding:
        guard let embedded else { throw .shape("the generator's condition needs the shared class embedding") }
        piece = embedded
      case .latent(let offset, let count):
        piece = offset == 0 && count == z.shape[1] ? z : try channels(z, offset..<offset + count)
      }
      out = try out.map { a throws(KernelError) in try concatenateChannels(a, piece) } ?? piece
    }
    return out
  }

  /// Adds the gradient of an assembled input back to z's and the
  /// embedding's.
  private func scatter(_ g: Tensor, _ parts: [ConditionPart], dz: inout Tensor, dEmbedded: inout Tensor) {
    var column = 0
    for p in parts {
      switch p {
      case .embedding:
        addColumns(of: g, from: column, into: &dEmbedded, at: 0, count: configuration.sharedDim)
        column += configuration.sharedDim
      case .latent(let offset, let count):
        addColumns(of: g, from: column, into: &dz, at: offset, count: count)
        column += count
      }
    }
  }

  /// `t[:, at..<at+count] += g[:, from..<from+count]`.
  private func addColumns(of g: Tensor, from: Int, into t: inout Tensor, at: Int, count: Int) {
    let (rows, gw, tw) = (g.shape[0], g.shape[1], t.shape[1])
    for r in 0..<rows {
      for j in 0..<count { t.storage[r * tw + at + j] += g.storage[r * gw + from + j] }
    }
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
      _ = try forward(z: z, labels: y, mode: .trainingForwardOnly)
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
    blocks.flatMap(\.statistics) + [outputNorm.stats]
  }
}
