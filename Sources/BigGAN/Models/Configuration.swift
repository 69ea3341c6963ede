/// How weights are initialised: BigGAN's orthogonal default, N(0, std), or
/// zeros for a model whose weights are about to be loaded from a file (or
/// that is only built to be measured).
public enum Initialization: Codable, Equatable, Sendable {
  case orthogonal
  case normal(std: Float)
  case zeros
}

/// The two generator/discriminator families of the paper.
public enum Architecture: String, Codable, Sendable, CaseIterable {
  /// BigGAN: residual blocks of two 3x3 convolutions, hierarchical z.
  case biggan
  /// BigGAN-deep: twice as many bottleneck blocks (1x1, 3x3, 3x3, 1x1 at a
  /// quarter of the width), identity skips that drop (G) or add (D)
  /// channels, one conditioning vector `[z, embedding]` for the stem and
  /// every batch-norm.
  case deep
}

/// Every architectural setting of a BigGAN generator/discriminator pair.
///
/// Channel tables follow BigGAN-PyTorch's `G_arch` / `D_arch` tables
/// (`BigGAN.py`, `BigGANdeep.py`); BigGAN-deep's layer list is the one of
/// the TF-Hub modules (pytorch-pretrained-BigGAN's configs). Attention is
/// placed after the blocks (BigGAN) or stages (BigGAN-deep) whose output
/// resolution is listed.
public struct BigGANConfiguration: Codable, Equatable, Sendable {
  public var architecture: Architecture = .biggan
  public var resolution: Int
  /// Channel multipliers `ch` of G and D.
  public var generatorChannels: Int
  public var discriminatorChannels: Int
  public var dimZ: Int
  public var sharedDim: Int
  public var classes: Int
  /// Hierarchical z (BigGAN only): one chunk for the stem and one per
  /// generator block. False: the whole z goes to the stem alone.
  public var hierarchical: Bool = true
  /// One class embedding `[classes, sharedDim]` shared by every
  /// conditional batch-norm, each mapping it (with its z chunk) through
  /// linear maps. False (BigGAN only; SA-GAN's and BigGAN-PyTorch's
  /// `G_shared=False`): each batch-norm has its own class embeddings for
  /// gain and bias, and `sharedDim` is unused. With hierarchical z the
  /// norm adds a linear map of its z chunk to them (see
  /// `ConditionalBatchNorm`).
  public var sharedEmbedding: Bool = true
  public var generatorAttention: [Int]
  public var discriminatorAttention: [Int]
  public var snEps: Float = 1e-6
  public var bnEps: Float = 1e-5
  /// False for imported weights whose spectral norm was folded into them:
  /// every layer then uses its weight as stored.
  public var spectralNorm = true
  /// Rows of the generator's stored batch-norm statistics: 1 for models
  /// trained here; 51 for TF-Hub's BigGAN-deep, whose row `i` holds the
  /// statistics for truncation `i / 50` (pytorch-pretrained-BigGAN's
  /// `n_stats`).
  public var statisticsRows = 1
  public var initialization: Initialization = .orthogonal

  public init(
    architecture: Architecture = .biggan, resolution: Int, generatorChannels: Int,
    discriminatorChannels: Int, dimZ: Int, sharedDim: Int, classes: Int, hierarchical: Bool = true,
    sharedEmbedding: Bool = true, generatorAttention: [Int], discriminatorAttention: [Int], snEps: Float = 1e-6,
    bnEps: Float = 1e-5, spectralNorm: Bool = true, statisticsRows: Int = 1,
    initialization: Initialization = .orthogonal
  ) {
    self.architecture = architecture
    self.resolution = resolution
    self.generatorChannels = generatorChannels
    self.discriminatorChannels = discriminatorChannels
    self.dimZ = dimZ
    self.sharedDim = sharedDim
    self.classes = classes
    self.hierarchical = hierarchical
    self.sharedEmbedding = sharedEmbedding
    self.generatorAttention = generatorAttention
    self.discriminatorAttention = discriminatorAttention
    self.snEps = snEps
    self.bnEps = bnEps
    self.spectralNorm = spectralNorm
    self.statisticsRows = statisticsRows
    self.initialization = initialization
  }

  private enum CodingKeys: String, CodingKey {
    case architecture, resolution, generatorChannels, discriminatorChannels, dimZ, sharedDim
    case classes, hierarchical, sharedEmbedding, generatorAttention, discriminatorAttention, snEps, bnEps
    case spectralNorm, statisticsRows, initialization
  }

  /// Settings added after the first checkpoints default to what those
  /// checkpoints were, so older files keep loading.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    self.init(
      architecture: try c.decodeIfPresent(Architecture.self, forKey: .architecture) ?? .biggan,
      resolution: try c.decode(Int.self, forKey: .resolution),
      generatorChannels: try c.decode(Int.self, forKey: .generatorChannels),
      discriminatorChannels: try c.decode(Int.self, forKey: .discriminatorChannels),
      dimZ: try c.decode(Int.self, forKey: .dimZ),
      sharedDim: try c.decode(Int.self, forKey: .sharedDim),
      classes: try c.decode(Int.self, forKey: .classes),
      hierarchical: try c.decodeIfPresent(Bool.self, forKey: .hierarchical) ?? true,
      sharedEmbedding: try c.decodeIfPresent(Bool.self, forKey: .sharedEmbedding) ?? true,
      generatorAttention: try c.decode([Int].self, forKey: .generatorAttention),
      discriminatorAttention: try c.decode([Int].self, forKey: .discriminatorAttention),
      snEps: try c.decodeIfPresent(Float.self, forKey: .snEps) ?? 1e-6,
      bnEps: try c.decodeIfPresent(Float.self, forKey: .bnEps) ?? 1e-5,
      spectralNorm: try c.decodeIfPresent(Bool.self, forKey: .spectralNorm) ?? true,
      statisticsRows: try c.decodeIfPresent(Int.self, forKey: .statisticsRows) ?? 1,
      initialization: try c.decodeIfPresent(Initialization.self, forKey: .initialization) ?? .orthogonal)
  }

  /// Every setting, except `sharedEmbedding` when it is the default: a
  /// model with a shared embedding is written byte for byte as before the
  /// setting existed (config.json, state.json, the weights' metadata).
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(architecture, forKey: .architecture)
    try c.encode(resolution, forKey: .resolution)
    try c.encode(generatorChannels, forKey: .generatorChannels)
    try c.encode(discriminatorChannels, forKey: .discriminatorChannels)
    try c.encode(dimZ, forKey: .dimZ)
    try c.encode(sharedDim, forKey: .sharedDim)
    try c.encode(classes, forKey: .classes)
    try c.encode(hierarchical, forKey: .hierarchical)
    if !sharedEmbedding { try c.encode(sharedEmbedding, forKey: .sharedEmbedding) }
    try c.encode(generatorAttention, forKey: .generatorAttention)
    try c.encode(discriminatorAttention, forKey: .discriminatorAttention)
    try c.encode(snEps, forKey: .snEps)
    try c.encode(bnEps, forKey: .bnEps)
    try c.encode(spectralNorm, forKey: .spectralNorm)
    try c.encode(statisticsRows, forKey: .statisticsRows)
    try c.encode(initialization, forKey: .initialization)
  }

  /// Generator (in, out) channel multipliers, each entry doubling the
  /// resolution from 4x4: one block of BigGAN, or one stage of BigGAN-deep
  /// (a block in -> in at its input resolution, then a block in -> out that
  /// upsamples). One table serves both: BigGAN-PyTorch's `G_arch`
  /// (`BigGAN.py`; `BigGANdeep.py` at 32 and 64 px) and, for BigGAN-deep at
  /// 128-512 px, TF-Hub's layer list (pytorch-pretrained-BigGAN's `layers`,
  /// section 1.4 of the reference notes).
  static let generatorChannelTable: [Int: [(Int, Int)]] = [
    32: [(4, 4), (4, 4), (4, 4)],
    64: [(16, 16), (16, 8), (8, 4), (4, 2)],
    128: [(16, 16), (16, 8), (8, 4), (4, 2), (2, 1)],
    256: [(16, 16), (16, 8), (8, 8), (8, 4), (4, 2), (2, 1)],
    512: [(16, 16), (16, 8), (8, 8), (8, 4), (4, 2), (2, 1), (1, 1)],
  ]

  /// BigGAN discriminator blocks: (out multiplier, downsample). Inputs are
  /// 3 for the first block and the previous output after it.
  static let discriminatorChannelTable: [Int: [(Int, Bool)]] = [
    32: [(4, true), (4, true), (4, false), (4, false)],
    64: [(1, true), (2, true), (4, true), (8, true), (16, false)],
    128: [(1, true), (2, true), (4, true), (8, true), (16, true), (16, false)],
    256: [(1, true), (2, true), (4, true), (8, true), (8, true), (16, true), (16, false)],
    512: [(1, true), (1, true), (2, true), (4, true), (8, true), (8, true), (16, true), (16, false)],
  ]

  /// BigGAN-deep discriminator stages (in, out, downsample): a block in ->
  /// out that downsamples when asked, then a block out -> out
  /// (BigGAN-PyTorch `BigGANdeep.D_arch`; compare_gan's channel lists).
  static let deepDiscriminatorChannelTable: [Int: [(Int, Int, Bool)]] = [
    32: [(1, 4, true), (4, 4, true), (4, 4, false)],
    64: [(1, 2, true), (2, 4, true), (4, 8, true), (8, 16, true)],
    128: [(1, 2, true), (2, 4, true), (4, 8, true), (8, 16, true), (16, 16, true)],
    256: [(1, 2, true), (2, 4, true), (4, 8, true), (8, 8, true), (8, 16, true), (16, 16, true)],
    512: [(1, 1, true), (1, 2, true), (2, 4, true), (4, 8, true), (8, 8, true), (8, 16, true), (16, 16, true)],
  ]

  public static let supportedResolutions = [32, 64, 128, 256, 512]

  /// One residual block of the generator: its state-dict prefix, channels,
  /// whether it upsamples, its output resolution, and the prefix of the
  /// attention that follows it, if any.
  struct GeneratorBlockLayout {
    let prefix: String
    let `in`: Int, out: Int
    let upsample: Bool
    let resolution: Int
    let attention: String?
  }

  /// One residual block of the discriminator (`in` is the image's 3 or the
  /// stem's width for the first one).
  struct DiscriminatorBlockLayout {
    let prefix: String
    let `in`: Int, out: Int
    let downsample: Bool
    /// False for the first block: its input is the image (BigGAN) or the
    /// stem convolution's output (BigGAN-deep, as compare_gan and
    /// BigGAN-PyTorch PR #81 have it).
    let preactivation: Bool
    let resolution: Int
    let attention: String?
  }

  /// The generator's blocks in order.
  var generatorBlocks: [GeneratorBlockLayout] {
    let ch = generatorChannels
    switch architecture {
    case .biggan:
      return (Self.generatorChannelTable[resolution] ?? []).enumerated().map { i, p in
        let r = 8 << i
        return GeneratorBlockLayout(
          prefix: "blocks.\(i).0", in: p.0 * ch, out: p.1 * ch, upsample: true, resolution: r,
          attention: generatorAttention.contains(r) ? "blocks.\(i).1" : nil)
      }
    case .deep:
      return (Self.generatorChannelTable[resolution] ?? []).enumerated().flatMap { s, p in
        let r = 8 << s
        return [
          GeneratorBlockLayout(prefix: "blocks.\(s).0", in: p.0 * ch, out: p.0 * ch, upsample: false, resolution: r / 2, attention: nil),
          GeneratorBlockLayout(
            prefix: "blocks.\(s).1", in: p.0 * ch, out: p.1 * ch, upsample: true, resolution: r,
            attention: generatorAttention.contains(r) ? "blocks.\(s).2" : nil),
        ]
      }
    }
  }

  /// The discriminator's blocks in order.
  var discriminatorBlocks: [DiscriminatorBlockLayout] {
    let ch = discriminatorChannels
    var res = resolution
    switch architecture {
    case .biggan:
      var inC = 3
      return (Self.discriminatorChannelTable[resolution] ?? []).enumerated().map { i, p in
        let out = p.0 * ch
        if p.1 { res /= 2 }
        defer { inC = out }
        return DiscriminatorBlockLayout(
          prefix: "blocks.\(i).0", in: inC, out: out, downsample: p.1, preactivation: i > 0,
          resolution: res, attention: discriminatorAttention.contains(res) ? "blocks.\(i).1" : nil)
      }
    case .deep:
      return (Self.deepDiscriminatorChannelTable[resolution] ?? []).enumerated().flatMap { s, p in
        if p.2 { res /= 2 }
        return [
          DiscriminatorBlockLayout(
            prefix: "blocks.\(s).0", in: p.0 * ch, out: p.1 * ch, downsample: p.2, preactivation: s > 0,
            resolution: res, attention: nil),
          DiscriminatorBlockLayout(
            prefix: "blocks.\(s).1", in: p.1 * ch, out: p.1 * ch, downsample: false, preactivation: true,
            resolution: res, attention: discriminatorAttention.contains(res) ? "blocks.\(s).2" : nil),
        ]
      }
    }
  }

  /// Channels of the generator's 4x4 stem output.
  var stemChannels: Int { generatorBlocks[0].in }

  /// Size of each z chunk (hierarchical BigGAN) or of the whole z.
  var zChunk: Int {
    architecture == .biggan && hierarchical ? dimZ / (generatorBlocks.count + 1) : dimZ
  }

  /// Where the generator's inputs go: the columns of the stem's input and
  /// of every conditional batch-norm's condition, in order.
  var stemInput: [ConditionPart] {
    architecture == .deep ? [.latent(0, dimZ), .embedding] : [.latent(0, zChunk)]
  }

  /// The condition vector of generator block `i`: BigGAN-PyTorch's
  /// `[embedding, z chunk]` (embedding first), or BigGAN-deep's `[z,
  /// embedding]` (TF-Hub's order, which BigGAN-PyTorch's `BigGANdeep.py`
  /// reverses; its PR #72). Without a shared embedding only the z chunk
  /// (or nothing): the classes reach the norms through their own
  /// embeddings.
  func blockCondition(_ i: Int) -> [ConditionPart] {
    switch architecture {
    case .deep: return [.latent(0, dimZ), .embedding]
    case .biggan:
      let chunk: [ConditionPart] = hierarchical ? [.latent((i + 1) * zChunk, zChunk)] : []
      return (sharedEmbedding ? [.embedding] : []) + chunk
    }
  }

  /// Width of the conditioning vector of every conditional batch-norm (0:
  /// none, the norms see only the classes).
  var conditionDim: Int { width(of: blockCondition(0)) }

  /// Classes of each conditional batch-norm's own embeddings; nil with the
  /// shared embedding.
  var normEmbeddingClasses: Int? { sharedEmbedding ? nil : classes }

  func width(of parts: [ConditionPart]) -> Int {
    parts.reduce(0) { n, p in
      switch p {
      case .embedding: return n + sharedDim
      case .latent(_, let count): return n + count
      }
    }
  }

  /// Checks the settings; the message names the first one that is wrong.
  public func validate() throws(ConfigurationError) {
    guard Self.supportedResolutions.contains(resolution) else {
      throw .invalid("resolution \(resolution) is not one of \(Self.supportedResolutions)")
    }
    for (name, v) in [("generator channels", generatorChannels), ("discriminator channels", discriminatorChannels), ("dim_z", dimZ), ("shared dim", sharedDim), ("classes", classes), ("statistics rows", statisticsRows)] {
      guard v >= 1 else { throw .invalid("\(name) must be at least 1, got \(v)") }
      // Bounded so that the channel plans' products cannot overflow; the
      // memory a model needs is checked against the machine separately.
      guard v <= Int(Int32.max) else { throw .invalid("\(name) must be at most \(Int32.max), got \(v)") }
    }
    if architecture == .deep {
      guard !hierarchical else { throw .invalid("BigGAN-deep has no hierarchical z (it conditions every block on [z, embedding])") }
      guard sharedEmbedding else { throw .invalid("BigGAN-deep needs the shared class embedding (it conditions every block on [z, embedding])") }
      guard generatorChannels % 4 == 0, discriminatorChannels % 4 == 0 else {
        throw .invalid("BigGAN-deep's bottlenecks are a quarter of the width: ch must be divisible by 4, got \(generatorChannels) and \(discriminatorChannels)")
      }
    }
    if architecture == .biggan && hierarchical {
      let chunks = generatorBlocks.count + 1
      guard zChunk >= 1 else { throw .invalid("dim_z \(dimZ) is too small for \(chunks) hierarchical chunks") }
      guard dimZ % chunks == 0 else {
        throw .invalid("dim_z \(dimZ) does not split into \(chunks) equal hierarchical chunks (one for the stem, one per block); use a multiple of \(chunks) or no hierarchical z")
      }
    }
    let gRes = Set(generatorBlocks.filter(\.upsample).map(\.resolution)).sorted()
    let dRes = Set(discriminatorBlocks.map(\.resolution)).sorted()
    for r in generatorAttention where !gRes.contains(r) {
      throw .invalid("generator attention at \(r) px: the generator's blocks output \(gRes)")
    }
    for r in discriminatorAttention where !dRes.contains(r) {
      throw .invalid("discriminator attention at \(r) px: the discriminator's blocks output \(dRes)")
    }
    for b in generatorBlocks where b.attention != nil && b.out % 8 != 0 {
      throw .invalid("generator attention needs channels divisible by 8, got \(b.out) at \(b.resolution) px")
    }
    for b in discriminatorBlocks where b.attention != nil && b.out % 8 != 0 {
      throw .invalid("discriminator attention needs channels divisible by 8, got \(b.out) at \(b.resolution) px")
    }
  }

  /// BigGAN-PyTorch's CIFAR recipe (`launch_cifar_ema.sh`): ch 64, z 128,
  /// no attention, 10 classes.
  public static let cifar32 = BigGANConfiguration(
    resolution: 32, generatorChannels: 64, discriminatorChannels: 64, dimZ: 128, sharedDim: 128,
    classes: 10, generatorAttention: [], discriminatorAttention: [])

  /// ImageNet at 64 px: ch 64 (the 128-px recipe scaled down), attention at 32 px.
  public static let imagenet64 = BigGANConfiguration(
    resolution: 64, generatorChannels: 64, discriminatorChannels: 64, dimZ: 120, sharedDim: 128,
    classes: 1000, generatorAttention: [32], discriminatorAttention: [32])

  /// The paper's 128-px model: ch 96, z 120, shared 128, attention at 64 px.
  public static let imagenet128 = BigGANConfiguration(
    resolution: 128, generatorChannels: 96, discriminatorChannels: 96, dimZ: 120, sharedDim: 128,
    classes: 1000, generatorAttention: [64], discriminatorAttention: [64])

  /// 256 px: z 140 (7 chunks of 20), attention at 128 px in G, 64 px in D.
  public static let imagenet256 = BigGANConfiguration(
    resolution: 256, generatorChannels: 96, discriminatorChannels: 96, dimZ: 140, sharedDim: 128,
    classes: 1000, generatorAttention: [128], discriminatorAttention: [64])

  /// 512 px: z 128 (8 chunks of 16), attention at 64 px in both.
  public static let imagenet512 = BigGANConfiguration(
    resolution: 512, generatorChannels: 96, discriminatorChannels: 96, dimZ: 128, sharedDim: 128,
    classes: 1000, generatorAttention: [64], discriminatorAttention: [64])

  /// BigGAN-deep at 128 px as released on TF-Hub: ch 128, z 128, shared
  /// embedding 128, attention at 64 px.
  public static let imagenet128Deep = deep(resolution: 128)
  /// BigGAN-deep at 256 px: attention at 64 px on 4ch.
  public static let imagenet256Deep = deep(resolution: 256)
  /// BigGAN-deep at 512 px: attention at 64 px on 4ch.
  public static let imagenet512Deep = deep(resolution: 512)

  private static func deep(resolution: Int) -> BigGANConfiguration {
    BigGANConfiguration(
      architecture: .deep, resolution: resolution, generatorChannels: 128, discriminatorChannels: 128,
      dimZ: 128, sharedDim: 128, classes: 1000, hierarchical: false, generatorAttention: [64],
      discriminatorAttention: [64])
  }
}

/// A run of columns of a conditioning vector: the shared class embedding,
/// or `count` entries of z from `offset`.
enum ConditionPart: Equatable {
  case embedding
  case latent(_ offset: Int, _ count: Int)
}

/// A configuration that cannot build a model.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
  case invalid(String)

  public var description: String {
    switch self { case .invalid(let m): return m }
  }
}
