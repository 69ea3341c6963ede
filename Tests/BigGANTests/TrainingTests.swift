import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// The training loop's contracts on a model small enough to step in
/// milliseconds.
@Suite(.serialized)
struct TrainingTests {
  static var model: BigGANConfiguration {
    BigGANConfiguration(
      resolution: 32, generatorChannels: 2, discriminatorChannels: 2, dimZ: 8, sharedDim: 4,
      classes: 10, generatorAttention: [], discriminatorAttention: [])
  }

  static var recipe: TrainingRecipe {
    var r = TrainingRecipe()
    r.batch = 4
    r.generatorLearningRate = 1e-3
    r.discriminatorLearningRate = 1e-3
    r.emaDecay = 0.9
    r.emaStart = 2
    r.seed = 11
    return r
  }

  static func trainer(
    _ recipe: TrainingRecipe = recipe, model: BigGANConfiguration = model, restoring state: TrainerState? = nil
  ) throws -> Trainer {
    try Trainer(model: model, recipe: recipe, dataset: ShapesDataset(resolution: 32, count: 64, seed: 1), restoring: state)
  }

  /// `model`, or one of Table 1's generator ablations of it.
  static func model(ablation: String) -> BigGANConfiguration {
    var c = model
    c.sharedEmbedding = !ablation.contains("no-shared")
    c.hierarchical = !ablation.contains("no-hier")
    return c
  }

  static func weights(_ m: any Module) -> [Float] {
    m.parameters.flatMap(\.value.storage) + m.buffers.flatMap(\.value.storage)
  }

  @Test("steps give finite losses, change the weights, and the EMA follows its formula")
  func steps() throws {
    let t = try Self.trainer()
    let before = Self.weights(t.generator), beforeD = Self.weights(t.discriminator)
    var report = try t.trainStep()
    let losses = [report.lossDiscriminatorReal, report.lossDiscriminatorFake, report.lossGenerator]
    #expect(losses.allSatisfy { $0.isFinite })
    let changedG = Self.weights(t.generator) != before, changedD = Self.weights(t.discriminator) != beforeD
    #expect(changedG && changedD)
    // Before emaStart the average is a copy.
    let copied = Self.weights(t.average) == Self.weights(t.generator)
    #expect(copied)
    report = try t.trainStep()
    let previous = Self.weights(t.average)
    report = try t.trainStep()
    #expect(report.step == 3)
    // From emaStart on: average = decay * average + (1 - decay) * weights.
    let now = Self.weights(t.generator), average = Self.weights(t.average)
    let differs = average != now
    #expect(differs)
    for i in stride(from: 0, to: now.count, by: max(1, now.count / 500)) {
      let expected = 0.9 * previous[i] + (1 - 0.9) * now[i]
      #expect(abs(average[i] - expected) <= 1e-6 * max(1, abs(expected)))
    }
  }

  @Test(
    "a run resumed from its checkpoint ends with the same bits as an uninterrupted one",
    arguments: ["default", "no-shared", "no-shared no-hier"])
  func resume(_ ablation: String) throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(getpid())-\(ablation)").path
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let model = Self.model(ablation: ablation)
    let straight = try Self.trainer(model: model)
    for _ in 0..<4 { _ = try straight.trainStep() }

    let first = try Self.trainer(model: model)
    for _ in 0..<2 { _ = try first.trainStep() }
    let path = try Checkpoint.save(first, schedule: RunSchedule(), in: folder, keep: 2)
    #expect(try Checkpoint.state(at: path).model == model)
    let second = try Self.trainer(model: model, restoring: Checkpoint.trainerState(at: path))
    try Checkpoint.loadNetworks(of: second, from: path)
    #expect(second.step == 2)
    for _ in 0..<2 { _ = try second.trainStep() }
    for (a, b, name) in [(second.generator, straight.generator, "G"), (second.average, straight.average, "G_ema")] as [(Generator, Generator, String)] {
      let same = Self.weights(a) == Self.weights(b)
      #expect(same, "\(name) differs after resuming")
    }
    let sameD = Self.weights(second.discriminator) == Self.weights(straight.discriminator)
    #expect(sameD, "D differs after resuming")
  }

  @Test("checkpoints are written whole under a temporary name and only the newest are kept")
  func checkpointFolders() throws {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let t = try Self.trainer()
    for _ in 0..<3 {
      _ = try t.trainStep()
      try Checkpoint.save(t, schedule: RunSchedule(), in: folder, keep: 2)
    }
    let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    #expect(names == ["step-00000002", "step-00000003"])
    let other = try Trainer(
      model: BigGANConfiguration(
        resolution: 32, generatorChannels: 4, discriminatorChannels: 4, dimZ: 8, sharedDim: 4,
        classes: 10, generatorAttention: [], discriminatorAttention: []),
      recipe: Self.recipe, dataset: ShapesDataset(resolution: 32, count: 64, seed: 1))
    #expect(throws: CheckpointError.self) { try Checkpoint.loadNetworks(of: other, from: "\(folder)/step-00000003") }
  }

  /// The bits of every parameter (NaN compares equal to itself here); the
  /// buffers are left out, as a refused step's forward passes still move
  /// spectral-norm vectors and batch-norm statistics.
  static func bits(_ m: any Module) -> [UInt32] { m.parameters.flatMap(\.value.storage).map(\.bitPattern) }

  @Test("a NaN in a D step stops the iteration before D or G is updated")
  func nonFiniteDiscriminator() throws {
    let t = try Self.trainer()
    t.discriminator.linear.weight.value.storage[0] = .nan
    let g = Self.bits(t.generator), d = Self.bits(t.discriminator)
    #expect(throws: TrainingError.nonFinite(step: 1, what: "the discriminator's loss or gradients")) { try t.trainStep() }
    let (sameD, sameG) = (Self.bits(t.discriminator) == d, Self.bits(t.generator) == g)
    #expect(sameD, "no discriminator parameter may change")
    #expect(sameG, "no generator parameter may change")
    #expect(t.step == 0 && t.state.discriminatorOptimizer.step == 0)
  }

  @Test("a non-finite G step (an infinite orthogonal penalty, after finite D steps) stops before G is updated")
  func nonFiniteGenerator() throws {
    var recipe = Self.recipe
    recipe.orthogonalStrength = .infinity
    let t = try Self.trainer(recipe)
    let g = Self.bits(t.generator), average = Self.bits(t.average)
    #expect(throws: TrainingError.nonFinite(step: 1, what: "the generator's loss or gradients")) { try t.trainStep() }
    let (sameG, sameAverage) = (Self.bits(t.generator) == g, Self.bits(t.average) == average)
    #expect(sameG, "no generator parameter may change")
    #expect(sameAverage, "the average may not move")
    #expect(t.step == 0 && t.state.generatorOptimizer.step == 0)
    #expect(t.state.discriminatorOptimizer.step == recipe.discriminatorSteps, "the D steps were finite and taken")
  }

  @Test("gradient accumulation: two half batches give the gradient of the whole batch")
  func accumulation() throws {
    // Accumulated D gradients equal the full batch's because D has no batch
    // statistics; spectral-norm vectors are held fixed (evaluation mode), as
    // a 2-forward and a 1-forward step would otherwise update them a different
    // number of times. G's batch-norm statistics do depend on the batch, so
    // accumulation changes G's forward (as in BigGAN-PyTorch).
    var rng = SeededRandom(seed: 3)
    let d = try Discriminator(Self.model, seed: 4)
    var images = Tensor(shape: [8, 32, 32, 3])
    for i in 0..<images.count { images.storage[i] = rng.uniform() * 2 - 1 }
    let labels = (0..<8).map { $0 % 10 }
    d.zeroGradients()
    let scores = try d.forward(images, labels: labels, mode: .evaluation)
    try d.backward(HingeLoss.generator(fake: scores).gradient)
    let whole = d.parameters.map(\.gradient)
    d.zeroGradients()
    for half in 0..<2 {
      let part = try Tensor(shape: [4, 32, 32, 3], storage: Array(images.storage[half * images.count / 2..<(half + 1) * images.count / 2]))
      let s = try d.forward(part, labels: Array(labels[half * 4..<half * 4 + 4]), mode: .evaluation)
      try d.backward(HingeLoss.generator(fake: s).gradient.scaled(by: 0.5))
    }
    for (p, g) in zip(d.parameters, whole) {
      let scale = g.storage.map { abs($0) }.max() ?? 0
      let error = zip(p.gradient.storage, g.storage).map { abs($0 - $1) }.max() ?? 0
      #expect(error <= 1e-5 * max(scale, 1e-6), "\(p.name)")
    }
  }

  @Test("with D's gradients turned off (the G step), D still passes the same input gradient")
  func frozenDiscriminator() throws {
    let d = try Discriminator(Self.model, seed: 6)
    var rng = SeededRandom(seed: 7)
    var images = Tensor(shape: [3, 32, 32, 3])
    for i in 0..<images.count { images.storage[i] = rng.uniform() * 2 - 1 }
    let g = Tensor(shape: [3, 1], repeating: 0.5)
    _ = try d.forward(images, labels: [1, 2, 3], mode: .evaluation)
    let full = try d.backward(g)
    d.zeroGradients()
    d.requireGradients(false)
    _ = try d.forward(images, labels: [1, 2, 3], mode: .evaluation)
    let passed = try d.backward(g)
    d.requireGradients(true)
    #expect(passed == full)
    #expect(d.parameters.allSatisfy { $0.gradient.storage.allSatisfy { $0 == 0 } })
  }

  @Test(
    "a parameter-only backward (the D step) accumulates the same gradients as a full one",
    arguments: [Architecture.biggan, .deep])
  func parameterOnlyBackward(_ architecture: Architecture) throws {
    var config = Self.model
    config.architecture = architecture
    config.hierarchical = architecture == .biggan
    config.generatorChannels = 4
    config.discriminatorChannels = 4
    config.discriminatorAttention = [16]
    let d = try Discriminator(config, seed: 6)
    var rng = SeededRandom(seed: 8)
    var images = Tensor(shape: [3, 32, 32, 3])
    for i in 0..<images.count { images.storage[i] = rng.uniform() * 2 - 1 }
    var g = Tensor(shape: [3, 1])
    for i in 0..<g.count { g.storage[i] = rng.uniform() - 0.5 }
    _ = try d.forward(images, labels: [1, 2, 3], mode: .evaluation)
    try d.backward(g)
    let full = d.parameters.map(\.gradient.storage)
    d.zeroGradients()
    _ = try d.forward(images, labels: [1, 2, 3], mode: .evaluation)
    try d.backwardParameters(g)
    for (p, expected) in zip(d.parameters, full) {
      #expect(p.gradient.storage == expected, "\(p.name)")
    }
    #expect(full.contains { $0.contains { $0 != 0 } })
  }

  @Test("orthogonal regularisation adds the gradient of its penalty")
  func orthogonalRegularization() throws {
    var rng = SeededRandom(seed: 5)
    var w = Tensor(shape: [3, 2, 2, 2])
    for i in 0..<w.count { w.storage[i] = rng.normal() }
    let p = Parameter("conv.weight", w)
    try OrthogonalRegularization.addGradient(to: [p], strength: 0.3, excluding: [])
    let h: Float = 1e-2
    for i in 0..<w.count {
      let keep = p.value.storage[i]
      p.value.storage[i] = keep + h
      let up = try OrthogonalRegularization.penalty(of: [p], strength: 0.3, excluding: [])
      p.value.storage[i] = keep - h
      let down = try OrthogonalRegularization.penalty(of: [p], strength: 0.3, excluding: [])
      p.value.storage[i] = keep
      let numeric = (up - down) / Double(2 * h)
      #expect(abs(Double(p.gradient.storage[i]) - numeric) <= 1e-3 * max(1, abs(numeric)))
    }
    let excluded = Parameter("shared.weight", w)
    try OrthogonalRegularization.addGradient(to: [excluded], strength: 0.3, excluding: ["shared.weight"])
    #expect(excluded.gradient.storage.allSatisfy { $0 == 0 })
  }
}

@Suite(.serialized)
struct StandingStatisticsTests {
  @Test("standing statistics average the batch statistics of K training passes and leave other state alone")
  func standing() throws {
    let model = TrainingTests.model
    let g = try Generator(model, seed: 3)
    var rng = SeededRandom(seed: 4)
    var z = Tensor(shape: [6, model.dimZ])
    for i in 0..<z.count { z.storage[i] = rng.normal() }
    let labels = [0, 1, 2, 3, 4, 5]
    let vectors = g.buffers.filter { $0.name.hasSuffix("u0") }.map(\.value)
    try g.standingStatistics(passes: 3) { (z, labels) }
    // With the same batch each pass, the average is that batch's statistics:
    // for the first batch-norm, those of the stem's output.
    let stem = try g.linear.forward(
      try Tensor(shape: [6, model.zChunk], storage: (0..<6).flatMap { b in Array(z.storage[b * model.dimZ..<b * model.dimZ + model.zChunk]) }),
      mode: .evaluation)
    let (mean, variance) = try batchStatistics(try stem.reshaped([6, 4, 4, model.stemChannels]))
    let stats = g.blocks[0].statistics[0]
    for c in 0..<mean.count {
      #expect(abs(stats.mean.value.storage[c] - mean.storage[c]) <= 1e-5 * max(1, abs(mean.storage[c])))
      #expect(abs(stats.variance.value.storage[c] - variance.storage[c]) <= 1e-5 * max(1, variance.storage[c]))
    }
    let unchanged = g.buffers.filter { $0.name.hasSuffix("u0") }.map(\.value) == vectors
    #expect(unchanged, "spectral-norm vectors must be restored")
  }
}
