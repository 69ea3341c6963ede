import BGKernels
import Foundation

/// A training run that cannot go on; the message says why and what is kept.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
  case nonFinite(step: Int, what: String)
  /// A replica's state is not rank 0's.
  case diverged(step: Int, rank: Int)
  case invalid(String)

  public var description: String {
    switch self {
    case .nonFinite(let step, let what):
      return "step \(step): \(what) is NaN or infinite; stopped without applying it (the last checkpoint is intact)"
    case .diverged(let step, let rank):
      return "step \(step): rank \(rank)'s weights, optimizer state or data position differ from rank 0's"
    case .invalid(let m): return m
    }
  }

  /// Whether every rank of a data-parallel run meets this error at the same
  /// point (it is found after the ranks' gradients or states are shared).
  public var isShared: Bool {
    switch self {
    case .nonFinite, .diverged: return true
    case .invalid: return false
    }
  }
}

/// What one training iteration measured.
public struct StepReport: Sendable {
  public var step: Int
  public var lossDiscriminatorReal: Float
  public var lossDiscriminatorFake: Float
  public var lossGenerator: Float
  /// Mean D output on the real and fake images of the last D step.
  public var meanReal: Float
  public var meanFake: Float
  public var seconds: Double
  /// Of `seconds`, the time spent in collective calls with the replicas.
  public var communicationSeconds: Double = 0
  public var images: Int
  /// The R1 penalty of the last D step (`gamma / 2 * E ||dD(x)/dx||^2`
  /// over its real images); nil when the recipe has none.
  public var penaltyR1: Float?
}

/// BigGAN-PyTorch's training loop (`train_fns.py`): `discriminatorSteps` D
/// steps, each on fresh fake and real batches, accumulated `accumulate`
/// times (with the recipe's R1 penalty on the real half, and its spectral
/// clamp after each D update); then one G step through D, orthogonal
/// regularisation, Adam, and the EMA of G.
///
/// With a replica group, each rank computes its slice of every batch
/// (`recipe.batch` stays the global batch) and the gradients are summed over
/// the ranks before each update, so every rank keeps the same weights,
/// moments and average, and a step sees the images and latents one process
/// would.
public final class Trainer {
  public let model: BigGANConfiguration
  public let recipe: TrainingRecipe
  public let generator: Generator
  public let discriminator: Discriminator
  /// The EMA copy of G, used for samples and evaluation.
  public let average: Generator
  let optimizerG: Adam
  let optimizerD: Adam
  let ema: WeightAverage
  let loader: BatchLoader
  private var latentRandom: SeededRandom
  public private(set) var step = 0
  /// The ranks of a data-parallel run; `nil` for one process.
  public let replicas: (any ReplicaGroup)?
  private var flatGradients: [Float] = []

  /// A trainer on `dataset` (whose classes and resolution must match the
  /// model's): a fresh one, or with `state` one that continues where the
  /// trainer that saved it stood (its networks' weights are loaded
  /// separately, e.g. by `Checkpoint.loadNetworks(of:from:)`).
  /// - Parameters:
  ///   - indices: the images to train on (all by default; a held-out slice
  ///     is left out by passing the rest).
  ///   - replicas: the ranks of a data-parallel run; `recipe.batch` must
  ///     split evenly over them. Each step counts every convolution as
  ///     their number times its batch, so each rank's convolutions take the
  ///     algorithm one process with the whole batch takes.
  ///   - crossReplicaBatchNorm: whether G's batch-norms take their
  ///     statistics over every replica's batch (else each replica's own).
  ///   - state: the step, latent stream, data position and optimizer
  ///     states to continue from.
  public init(
    model: BigGANConfiguration, recipe: TrainingRecipe, dataset: any ImageDataset, indices: [Int]? = nil,
    replicas: (any ReplicaGroup)? = nil, crossReplicaBatchNorm: Bool = true, restoring state: TrainerState? = nil
  ) throws {
    if let replicas, recipe.batch % replicas.count != 0 {
      throw TrainingError.invalid("batch \(recipe.batch) does not split over \(replicas.count) ranks; pass a --batch that is a multiple of \(replicas.count)")
    }
    guard dataset.classes == model.classes else {
      throw TrainingError.invalid("the data has \(dataset.classes) classes but the model expects \(model.classes)")
    }
    guard dataset.resolution == model.resolution else {
      throw TrainingError.invalid("the data is \(dataset.resolution) px but the model is \(model.resolution) px")
    }
    self.model = model
    self.recipe = recipe
    generator = try Generator(model, seed: recipe.seed &+ 1)
    discriminator = try Discriminator(model, seed: recipe.seed &+ 2)
    average = try Generator(model, seed: recipe.seed &+ 1, initialization: .zeros)
    for m in [generator, average] as [Generator] {
      m.precision = recipe.precision
      if let replicas { m.batchStatisticsScope = crossReplicaBatchNorm ? .allReplicas(replicas) : .eachReplica(replicas) }
    }
    self.replicas = replicas
    discriminator.precision = recipe.precision
    if recipe.r1Gamma != nil, discriminator.hasSelfAttention {
      throw TrainingError.invalid("--r1: the R1 penalty needs a discriminator without self-attention, and this model's D has attention at \(model.discriminatorAttention.map(String.init).joined(separator: ", ")) px")
    }
    ema = WeightAverage(decay: recipe.emaDecay, start: recipe.emaStart)
    try ema.update(average, from: generator, step: 0)
    optimizerG = Adam(
      parameters: generator.parameters, learningRate: recipe.generatorLearningRate,
      beta1: recipe.beta1, beta2: recipe.beta2, epsilon: recipe.adamEpsilon)
    optimizerD = Adam(
      parameters: discriminator.parameters, learningRate: recipe.discriminatorLearningRate,
      beta1: recipe.beta1, beta2: recipe.beta2, epsilon: recipe.adamEpsilon)
    latentRandom = SeededRandom(seed: recipe.seed &+ 4)
    if let state {
      try optimizerG.restore(state.generatorOptimizer)
      try optimizerD.restore(state.discriminatorOptimizer)
      latentRandom.state = state.latentRandom
      step = state.step
    }
    loader = BatchLoader(
      dataset: dataset, batch: recipe.batch, seed: recipe.seed &+ 3, indices: indices, position: state?.data ?? DataPosition(),
      part: replicas?.slice(ofBatch: recipe.batch))
  }

  /// What a checkpoint saves: the step, latent stream, data position and
  /// both optimizers' states.
  public var state: TrainerState {
    TrainerState(
      step: step, latentRandom: latentRandom.state, data: loader.position,
      generatorOptimizer: optimizerG.state, discriminatorOptimizer: optimizerD.state)
  }

  /// This rank's slice of `n` latents z ~ N(0, I) and uniformly drawn
  /// classes: every rank draws all `n` from the one stream.
  func sampleLatents(_ n: Int) -> (Tensor, [Int]) {
    let part = replicas?.slice(ofBatch: n) ?? 0..<n, d = model.dimZ
    var z = Tensor(shape: [part.count, d])
    for i in 0..<n * d {
      let value = latentRandom.normal()
      if part.contains(i / d) { z.storage[i - part.lowerBound * d] = value }
    }
    let y = (0..<n).map { _ in Int(latentRandom.next() % UInt64(model.classes)) }
    return (z, Array(y[part]))
  }

  /// Sums `values` and every gradient of `module` over the replicas.
  private func sumOverReplicas(_ values: inout [Float], _ module: any Module) {
    guard let replicas else { return }
    let parameters = module.parameters
    // One buffer for every sum of the run: G's and D's gradients take
    // turns in it.
    flatGradients.removeAll(keepingCapacity: true)
    flatGradients += values
    for p in parameters { flatGradients += p.gradient.storage }
    replicas.sum(&flatGradients)
    values = Array(flatGradients[0..<values.count])
    var offset = values.count
    for p in parameters {
      let n = p.gradient.count
      p.gradient.storage.replaceSubrange(0..<n, with: flatGradients[offset..<offset + n])
      offset += n
    }
  }

  /// One iteration: the D steps, then the G step.
  public func trainStep() throws -> StepReport {
    try Machine.with(convolutionBatchScale: replicas?.count ?? 1) { try iterate() }
  }

  private func iterate() throws -> StepReport {
    let start = ContinuousClock.now
    let communicated = replicas?.communicationSeconds ?? 0
    let b = recipe.batch, k = recipe.accumulate
    // Each rank's losses are means over its slice: scaled so their sum over
    // the ranks is the mean over the global batch.
    let scale = 1 / Float(k * (replicas?.count ?? 1))
    let local = replicas?.slice(ofBatch: b).count ?? b
    var report = StepReport(
      step: step + 1, lossDiscriminatorReal: 0, lossDiscriminatorFake: 0, lossGenerator: 0,
      meanReal: 0, meanFake: 0, seconds: 0, images: 0)
    for _ in 0..<recipe.discriminatorSteps {
      discriminator.zeroGradients()
      var real: Float = 0, fakeLoss: Float = 0, meanReal: Float = 0, meanFake: Float = 0, penalty: Float = 0
      for _ in 0..<k {
        let (z, y) = sampleLatents(b)
        let fake = try generator.forward(z: z, labels: y, mode: .trainingForwardOnly)
        let (x, yReal) = try loader.next()
        var both = fake
        both.storage += x.storage
        both = try both.reshaped([2 * local] + Array(fake.shape.dropFirst()))
        let scores = try discriminator.forward(both, labels: y + yReal, mode: .training)
        let fakeScores = try Tensor(shape: [local, 1], storage: Array(scores.storage[0..<local]))
        let realScores = try Tensor(shape: [local, 1], storage: Array(scores.storage[local...]))
        let loss = HingeLoss.discriminator(fake: fakeScores, real: realScores)
        real += loss.real * scale
        fakeLoss += loss.fake * scale
        meanReal += realScores.storage.reduce(0, +) / Float(local) * scale
        meanFake += fakeScores.storage.reduce(0, +) / Float(local) * scale
        if let gamma = recipe.r1Gamma {
          // gamma / 2 times the mean over the global batch: each rank's
          // penalty is scaled as its losses are.
          penalty += try discriminator.gradientPenalty(rows: local..<2 * local, weight: gamma * scale / Float(local))
        }
        let gradient = try Tensor(shape: [2 * local, 1], storage: loss.fakeGradient.storage + loss.realGradient.storage)
        try discriminator.backwardParameters(gradient.scaled(by: scale))
        report.images += 2 * b
      }
      var sums = [real, fakeLoss, meanReal, meanFake] + (recipe.r1Gamma == nil ? [] : [penalty])
      sumOverReplicas(&sums, discriminator)
      (real, fakeLoss, meanReal, meanFake) = (sums[0], sums[1], sums[2], sums[3])
      if recipe.r1Gamma != nil { report.penaltyR1 = sums[4] }
      try checkFinite([real, fakeLoss] + (report.penaltyR1.map { [$0] } ?? []), discriminator, "the discriminator's loss or gradients")
      try optimizerD.update()
      if let limit = recipe.spectralClamp { try SpectralClamp.apply(to: discriminator, limit: limit) }
      report.lossDiscriminatorReal = real
      report.lossDiscriminatorFake = fakeLoss
      report.meanReal = meanReal
      report.meanFake = meanFake
    }
    generator.zeroGradients()
    // D only passes the gradient through to G here (BigGAN-PyTorch's
    // toggle_grads): its own weight gradients are neither needed nor computed.
    discriminator.requireGradients(false)
    defer { discriminator.requireGradients(true) }
    var lossG: Float = 0
    for _ in 0..<k {
      let (z, y) = sampleLatents(b)
      let fake = try generator.forward(z: z, labels: y, mode: .training)
      let scores = try discriminator.forward(fake, labels: y, mode: .training)
      let loss = HingeLoss.generator(fake: scores)
      lossG += loss.loss * scale
      try generator.backward(try discriminator.backward(loss.gradient.scaled(by: scale)))
      report.images += b
    }
    var sums = [lossG]
    sumOverReplicas(&sums, generator)
    lossG = sums[0]
    try OrthogonalRegularization.addGradient(
      to: generator.parameters, strength: recipe.orthogonalStrength, excluding: ["shared.weight"])
    try checkFinite([lossG], generator, "the generator's loss or gradients")
    try optimizerG.update()
    step += 1
    try ema.update(average, from: generator, step: step)
    report.lossGenerator = lossG
    report.seconds = (ContinuousClock.now - start).seconds
    report.communicationSeconds = (replicas?.communicationSeconds ?? 0) - communicated
    return report
  }

  private func checkFinite(_ losses: [Float], _ module: any Module, _ what: String) throws {
    guard losses.allSatisfy(\.isFinite), module.parameters.allSatisfy({ $0.gradient.isFinite }) else {
      throw TrainingError.nonFinite(step: step + 1, what: what)
    }
  }
}
