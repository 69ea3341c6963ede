import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// BigGAN-deep's networks, the per-truncation statistics of imported
/// models, and the configuration format that carries them.
@Suite(.serialized)
struct DeepModelTests {
  static var tiny: BigGANConfiguration {
    BigGANConfiguration(
      architecture: .deep, resolution: 32, generatorChannels: 4, discriminatorChannels: 4, dimZ: 6,
      sharedDim: 5, classes: 10, hierarchical: false, generatorAttention: [], discriminatorAttention: [])
  }

  @Test("in inference an image's bits do not depend on how many images share its batch", arguments: [Architecture.biggan, .deep])
  func batchIndependentImages(_ architecture: Architecture) throws {
    // Channels enough for Winograd at the 4x4 stage, where one image is one
    // tile: a batch's size would otherwise decide the algorithm there.
    var c = Self.tiny
    c.architecture = architecture
    c.generatorChannels = 16
    let g = try Generator(c, seed: 3, initialization: .normal(std: 0.2))
    var rng = SeededRandom(seed: 9)
    let n = 9
    let z = (0..<n * c.dimZ).map { _ in rng.normal() }, labels = (0..<n).map { $0 % c.classes }
    let whole = try g.forward(z: try Tensor(shape: [n, c.dimZ], storage: z), labels: labels, mode: .inference)
    let per = whole.count / n
    for size in [1, 2, 4] {
      for start in stride(from: 0, to: n, by: size) {
        let m = min(size, n - start)
        let part = try g.forward(
          z: try Tensor(shape: [m, c.dimZ], storage: Array(z[start * c.dimZ..<(start + m) * c.dimZ])),
          labels: Array(labels[start..<start + m]), mode: .inference)
        let same = part.storage == Array(whole.storage[start * per..<(start + m) * per])
        #expect(same, "\(architecture), batches of \(size), image \(start)")
      }
    }
  }

  @Test("parameter counts: pytorch-pretrained-BigGAN's 50,388,609 / 55,880,833 / 56,163,905 less the 125 unused RGB channels")
  func parameterCounts() throws {
    // pytorch-pretrained-BigGAN's conv_to_rgb has ch = 128 outputs of which
    // 3 are kept; ours has those 3: 125 * (128 * 9 + 1) fewer parameters.
    let dropped = 125 * (128 * 9 + 1)
    for (config, published) in [
      (BigGANConfiguration.imagenet128Deep, 50_388_609), (.imagenet256Deep, 55_880_833), (.imagenet512Deep, 56_163_905),
    ] {
      let g = try Generator(config, seed: 0, initialization: .zeros)
      #expect(g.parameterCount == published - dropped, "\(config.resolution) px")
    }
  }

  @Test("the blocks follow BigGAN-PyTorch's BigGANdeep names: two per stage, attention third")
  func names() throws {
    var c = Self.tiny
    c.generatorAttention = [16]
    c.discriminatorAttention = [16]
    let g = try Generator(c, seed: 0), d = try Discriminator(c, seed: 0)
    let gNames = Set(g.parameters.map(\.name)), dNames = Set(d.parameters.map(\.name))
    for name in ["linear.weight", "blocks.0.0.conv1.weight", "blocks.0.1.conv4.bias", "blocks.1.0.bn3.gain.weight", "blocks.1.2.gamma", "output_layer.2.weight", "shared.weight"] {
      #expect(gNames.contains(name), "G lacks \(name)")
    }
    for name in ["input_conv.weight", "blocks.0.0.conv_sc.weight", "blocks.0.2.theta.weight", "blocks.2.1.conv4.weight", "linear.weight", "embed.weight"] {
      #expect(dNames.contains(name), "D lacks \(name)")
    }
    // The stem and every block read [z, embedding].
    #expect(g.linear.weight.value.shape == [16 * 16, 6 + 5])
  }

  @Test("training steps of a BigGAN-deep pair: finite losses, every weight group moves")
  func trains() throws {
    var recipe = TrainingRecipe()
    recipe.batch = 4
    recipe.seed = 3
    let t = try Trainer(model: Self.tiny, recipe: recipe, dataset: ShapesDataset(resolution: 32, count: 32, seed: 1))
    let before = t.generator.parameters.map(\.value), beforeD = t.discriminator.parameters.map(\.value)
    for _ in 0..<2 {
      let r = try t.trainStep()
      #expect([r.lossDiscriminatorReal, r.lossDiscriminatorFake, r.lossGenerator].allSatisfy { $0.isFinite })
    }
    let moved = zip(before, t.generator.parameters.map(\.value)).filter { $0 != $1 }.count
    let movedD = zip(beforeD, t.discriminator.parameters.map(\.value)).filter { $0 != $1 }.count
    // Attention gammas start at 0 and stay put only if nothing flows; here
    // there is no attention, so everything but nothing is expected to move.
    #expect(moved == before.count && movedD == beforeD.count)
  }

  /// The tiny generator's evaluation images and shared-embedding gradient
  /// (the gradient of `sum(images^2) / 2`), from labels and from the same
  /// classes as one-hot vectors.
  private func labelsAndOneHot(precision: Precision) throws
    -> (labels: (images: Tensor, gradient: Tensor), vectors: (images: Tensor, gradient: Tensor))
  {
    // Evaluation mode: training would move the spectral-norm vectors and
    // the running statistics between the two passes.
    let g = try Generator(Self.tiny, seed: 5, initialization: .normal(std: 0.2))
    g.precision = precision
    var rng = SeededRandom(seed: 6)
    let z = try Tensor(shape: [3, 6], storage: (0..<18).map { _ in rng.normal() })
    let labels = [4, 0, 6]
    var onehot = Tensor(shape: [3, 10])
    for (i, k) in labels.enumerated() { onehot.storage[i * 10 + k] = 1 }
    g.zeroGradients()
    let a = try g.forward(z: z, labels: labels, mode: .evaluation)
    try g.backward(a)
    let fromLabels = g.shared!.weight.gradient
    g.zeroGradients()
    let b = try g.forward(z: z, classVectors: onehot, mode: .evaluation)
    try g.backward(b)
    return ((a, fromLabels), (b, g.shared!.weight.gradient))
  }

  @Test("one-hot class vectors give the labels' images and the same embedding gradient")
  func classVectors() throws {
    let (fromLabels, fromVectors) = try labelsAndOneHot(precision: .fp32)
    let worst = zip(fromLabels.images.storage, fromVectors.images.storage).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= 1e-6)
    let gradientGap = zip(fromLabels.gradient.storage, fromVectors.gradient.storage).map { abs($0 - $1) }.max() ?? 0
    #expect(gradientGap <= 1e-5 * max(1, fromLabels.gradient.storage.map(abs).max() ?? 0))
    #expect(fromLabels.gradient.storage.contains { $0 != 0 })
  }

  @Test("the class-vector product and its gradient are fp32 whatever the generator's precision: in bf16, one-hot vectors give the labels' images and embedding gradient bit for bit")
  func classVectorsStayFP32() throws {
    // Forward, the embedding only meets bf16 products, which round it
    // anyway; its gradient is where a bf16 class-vector product would show.
    let (fromLabels, fromVectors) = try labelsAndOneHot(precision: .bf16)
    #expect(fromLabels.images.storage.map(\.bitPattern) == fromVectors.images.storage.map(\.bitPattern))
    #expect(fromLabels.gradient.storage.map(\.bitPattern) == fromVectors.gradient.storage.map(\.bitPattern))
  }

  @Test("per-truncation statistics: pytorch-pretrained-BigGAN's swapped blend and its rounding, or a linear one")
  func statisticsBlend() {
    let s = RunningStatistics(prefix: "bn", channels: 2, rows: 51)
    // Row i holds i in both channels, so the blend's result is the row it
    // stands for.
    s.mean.value.storage = (0..<51).flatMap { [Float($0), Float($0)] }
    func row(_ t: Double, _ blend: StatisticsBlend) -> Float {
      s.truncation = t
      s.blend = blend
      return s.current().mean.storage[1]
    }
    #expect(row(0.4, .pretrained) == 20)
    #expect(row(1, .pretrained) == 50)
    // 0.405 / (1 / 50) = 20.25: the reference weighs row 20 by 0.25.
    #expect(abs(row(0.405, .pretrained) - 20.75) < 1e-5)
    #expect(abs(row(0.405, .linear) - 20.25) < 1e-5)
    // 0.14 / (1 / 50) = 7.000000000000001: the reference takes row 8;
    // 0.58 gives 28.999999999999996: row 28.
    #expect(abs(row(0.14, .pretrained) - 8) < 1e-5)
    #expect(abs(row(0.58, .pretrained) - 28) < 1e-5)
    #expect(abs(row(0.14, .linear) - 7) < 1e-5)
    #expect(abs(row(0.58, .linear) - 29) < 1e-5)
  }

  @Test("a model with per-truncation statistics samples but refuses to train")
  func importedModelsOnlySample() throws {
    var c = Self.tiny
    c.statisticsRows = 51
    c.spectralNorm = false
    let g = try Generator(c, seed: 1, initialization: .normal(std: 0.2))
    #expect(!g.buffers.contains { $0.name.hasSuffix("u0") })
    #expect(g.buffers.first { $0.name == "blocks.0.0.bn1.stored_mean" }?.value.shape == [51, 16])
    let z = Tensor(shape: [2, 6], repeating: 0.5)
    g.truncation = 0.5
    let images = try g.forward(z: z, labels: [1, 2], mode: .evaluation)
    #expect(images.shape == [2, 32, 32, 3] && images.storage.allSatisfy { $0.isFinite })
    #expect(throws: KernelError.self) { try g.forward(z: z, labels: [1, 2], mode: .training) }
  }

  @Test("configurations: older files without the new settings still load; imported ones decode")
  func configurationFormat() throws {
    let old = #"{"resolution":32,"generatorChannels":4,"discriminatorChannels":4,"dimZ":8,"sharedDim":4,"classes":10,"hierarchical":true,"generatorAttention":[],"discriminatorAttention":[],"snEps":1e-6,"bnEps":1e-5,"initialization":{"orthogonal":{}}}"#
    let a = try JSONDecoder().decode(BigGANConfiguration.self, from: Data(old.utf8))
    #expect(a.architecture == .biggan && a.spectralNorm && a.statisticsRows == 1)
    let imported = #"{"architecture":"deep","bnEps":0.0001,"classes":1000,"dimZ":128,"discriminatorAttention":[64],"discriminatorChannels":128,"generatorAttention":[64],"generatorChannels":128,"hierarchical":false,"initialization":{"zeros":{}},"resolution":128,"sharedDim":128,"snEps":0.0001,"spectralNorm":false,"statisticsRows":51}"#
    let b = try JSONDecoder().decode(BigGANConfiguration.self, from: Data(imported.utf8))
    #expect(b.architecture == .deep && !b.spectralNorm && b.statisticsRows == 51 && b.initialization == .zeros)
    let again = try JSONDecoder().decode(BigGANConfiguration.self, from: try JSONEncoder().encode(b))
    #expect(again == b)
  }

  @Test("configurations: the shared embedding is written only when off, so older files and new ones with it are the same bytes")
  func sharedEmbeddingFormat() throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let shared = String(decoding: try encoder.encode(BigGANConfiguration.cifar32), as: UTF8.self)
    let keys = try #require(try JSONSerialization.jsonObject(with: Data(shared.utf8)) as? [String: Any]).keys.sorted()
    #expect(keys == ["architecture", "bnEps", "classes", "dimZ", "discriminatorAttention", "discriminatorChannels", "generatorAttention", "generatorChannels", "hierarchical", "initialization", "resolution", "sharedDim", "snEps", "spectralNorm", "statisticsRows"])
    var ablated = BigGANConfiguration.cifar32
    ablated.sharedEmbedding = false
    let written = String(decoding: try encoder.encode(ablated), as: UTF8.self)
    #expect(written.contains(#""sharedEmbedding":false"#))
    #expect(try JSONDecoder().decode(BigGANConfiguration.self, from: Data(written.utf8)) == ablated)
    #expect(try JSONDecoder().decode(BigGANConfiguration.self, from: Data(shared.utf8)).sharedEmbedding)
  }

  @Test("configurations: BigGAN-deep refuses no shared embedding; hierarchical z needs equal chunks")
  func ablationValidation() throws {
    var deep = Self.tiny
    deep.sharedEmbedding = false
    #expect(throws: ConfigurationError.invalid("BigGAN-deep needs the shared class embedding (it conditions every block on [z, embedding])")) { try deep.validate() }
    var uneven = BigGANConfiguration.cifar32
    uneven.dimZ = 130
    #expect(throws: ConfigurationError.self) { try uneven.validate() }
    uneven.hierarchical = false
    uneven.sharedEmbedding = false
    try uneven.validate()
    let g = try Generator(uneven, seed: 1)
    #expect(g.shared == nil && g.configuration.conditionDim == 0)
    #expect(throws: KernelError.self) {
      try g.forward(z: Tensor(shape: [1, 130]), classEmbeddings: Tensor(shape: [1, uneven.sharedDim]), mode: .inference)
    }
  }

  @Test("inference mode draws the evaluation-mode images, keeps nothing, and refuses a backward")
  func inference() throws {
    var c = Self.tiny
    c.generatorAttention = [16]
    let g = try Generator(c, seed: 8, initialization: .normal(std: 0.2))
    let z = Tensor(shape: [2, 6], repeating: 0.3)
    let kept = try g.forward(z: z, labels: [3, 9], mode: .evaluation)
    let released = try g.forward(z: z, labels: [3, 9], mode: .inference)
    #expect(kept == released)
    #expect(throws: KernelError.self) { try g.backward(released) }
    let d = try Discriminator(c, seed: 9, initialization: .normal(std: 0.2))
    _ = try d.forward(released, labels: [3, 9], mode: .inference)
    #expect(throws: KernelError.self) { try d.backward(Tensor(shape: [2, 1], repeating: 1)) }
  }
}
