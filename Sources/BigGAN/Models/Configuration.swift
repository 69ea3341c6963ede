/// How weights are initialised: BigGAN's orthogonal default, N(0, std), or
/// zeros for a model whose weights are about to be loaded from a file (or
/// that is only built to be measured).
public enum Initialization: Codable, Equatable, Sendable {
  case orthogonal
  case normal(std: Float)
  case zeros
}

/// Every architectural setting of a BigGAN generator/discriminator pair.
///
/// Channel plans follow BigGAN-PyTorch's `G_arch` / `D_arch` tables
/// (`BigGAN.py`); attention is placed after the blocks whose output
/// resolution is listed.
public struct BigGANConfiguration: Codable, Equatable, Sendable {
  public var resolution: Int
  /// Channel multipliers `ch` of G and D.
  public var generatorChannels: Int
  public var discriminatorChannels: Int
  public var dimZ: Int
  public var sharedDim: Int
  public var classes: Int
  /// Hierarchical z: one chunk for the stem and one per generator block.
  public var hierarchical: Bool = true
  public var generatorAttention: [Int]
  public var discriminatorAttention: [Int]
  public var snEps: Float = 1e-6
  public var bnEps: Float = 1e-5
  public var initialization: Initialization = .orthogonal

  public init(
    resolution: Int, generatorChannels: Int, discriminatorChannels: Int, dimZ: Int,
    sharedDim: Int, classes: Int, hierarchical: Bool = true, generatorAttention: [Int],
    discriminatorAttention: [Int], snEps: Float = 1e-6, bnEps: Float = 1e-5,
    initialization: Initialization = .orthogonal
  ) {
    self.resolution = resolution
    self.generatorChannels = generatorChannels
    self.discriminatorChannels = discriminatorChannels
    self.dimZ = dimZ
    self.sharedDim = sharedDim
    self.classes = classes
    self.hierarchical = hierarchical
    self.generatorAttention = generatorAttention
    self.discriminatorAttention = discriminatorAttention
    self.snEps = snEps
    self.bnEps = bnEps
    self.initialization = initialization
  }

  /// Generator blocks: (in, out) channel multipliers, each block doubling
  /// the resolution from 4x4.
  static let generatorPlans: [Int: [(Int, Int)]] = [
    32: [(4, 4), (4, 4), (4, 4)],
    64: [(16, 16), (16, 8), (8, 4), (4, 2)],
    128: [(16, 16), (16, 8), (8, 4), (4, 2), (2, 1)],
    256: [(16, 16), (16, 8), (8, 8), (8, 4), (4, 2), (2, 1)],
    512: [(16, 16), (16, 8), (8, 8), (8, 4), (4, 2), (2, 1), (1, 1)],
  ]

  /// Discriminator blocks: (out multiplier, downsample). Inputs are 3 for
  /// the first block and the previous output after it.
  static let discriminatorPlans: [Int: [(Int, Bool)]] = [
    32: [(4, true), (4, true), (4, false), (4, false)],
    64: [(1, true), (2, true), (4, true), (8, true), (16, false)],
    128: [(1, true), (2, true), (4, true), (8, true), (16, true), (16, false)],
    256: [(1, true), (2, true), (4, true), (8, true), (8, true), (16, true), (16, false)],
    512: [(1, true), (1, true), (2, true), (4, true), (8, true), (8, true), (16, true), (16, false)],
  ]

  public static let supportedResolutions = [32, 64, 128, 256, 512]

  /// The generator's blocks as (in channels, out channels, output resolution).
  var generatorBlocks: [(in: Int, out: Int, resolution: Int)] {
    (Self.generatorPlans[resolution] ?? []).enumerated().map { i, p in
      (p.0 * generatorChannels, p.1 * generatorChannels, 8 << i)
    }
  }

  /// The discriminator's blocks as (in, out, downsample, output resolution).
  var discriminatorBlocks: [(in: Int, out: Int, downsample: Bool, resolution: Int)] {
    var inC = 3, res = resolution
    return (Self.discriminatorPlans[resolution] ?? []).map { p in
      let out = p.0 * discriminatorChannels
      if p.1 { res /= 2 }
      defer { inC = out }
      return (inC, out, p.1, res)
    }
  }

  /// Size of each z chunk (hierarchical) or of the whole z.
  var zChunk: Int {
    hierarchical ? dimZ / (generatorBlocks.count + 1) : dimZ
  }

  /// Width of the conditioning vector of every conditional batch-norm.
  var conditionDim: Int { sharedDim + (hierarchical ? zChunk : 0) }

  /// Checks the settings; the message names the first one that is wrong.
  public func validate() throws(ConfigurationError) {
    guard Self.supportedResolutions.contains(resolution) else {
      throw .invalid("resolution \(resolution) is not one of \(Self.supportedResolutions)")
    }
    for (name, v) in [("generator channels", generatorChannels), ("discriminator channels", discriminatorChannels), ("dim_z", dimZ), ("shared dim", sharedDim), ("classes", classes)] where v < 1 {
      throw .invalid("\(name) must be at least 1, got \(v)")
    }
    if hierarchical && zChunk < 1 {
      throw .invalid("dim_z \(dimZ) is too small for \(generatorBlocks.count + 1) hierarchical chunks")
    }
    let gRes = generatorBlocks.map(\.resolution), dRes = discriminatorBlocks.map(\.resolution)
    for r in generatorAttention where !gRes.contains(r) {
      throw .invalid("generator attention at \(r) px: the generator's blocks output \(gRes)")
    }
    for r in discriminatorAttention where !dRes.contains(r) {
      throw .invalid("discriminator attention at \(r) px: the discriminator's blocks output \(dRes)")
    }
    for b in generatorBlocks where generatorAttention.contains(b.resolution) && b.out % 8 != 0 {
      throw .invalid("generator attention needs channels divisible by 8, got \(b.out) at \(b.resolution) px")
    }
    for b in discriminatorBlocks where discriminatorAttention.contains(b.resolution) && b.out % 8 != 0 {
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

  /// The named presets.
  public static let presets: [String: BigGANConfiguration] = [
    "cifar32": cifar32, "imagenet64": imagenet64, "imagenet128": imagenet128,
    "imagenet256": imagenet256, "imagenet512": imagenet512,
  ]
}

/// A configuration that cannot build a model.
public enum ConfigurationError: Error, CustomStringConvertible, Equatable {
  case invalid(String)

  public var description: String {
    switch self { case .invalid(let m): return m }
  }
}
