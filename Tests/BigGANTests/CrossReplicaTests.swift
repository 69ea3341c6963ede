import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// Cross-replica batch-norm against one process's batch-norm on the
/// concatenated batch: replicas are threads exchanging through
/// `LocalReplicas`.
@Suite(.serialized)
struct CrossReplicaTests {
  /// Rows `part` of a `[n, ...]` tensor.
  static func rows(_ t: Tensor, _ part: Range<Int>) -> Tensor {
    let size = t.count / t.shape[0]
    return try! Tensor(shape: [part.count] + t.shape.dropFirst(), storage: Array(t.storage[part.lowerBound * size..<part.upperBound * size]))
  }

  static func maxRelative(_ a: [Float], _ b: [Float]) -> Float {
    let scale = max(a.map(abs).max() ?? 0, 1e-30)
    return zip(a, b).map { abs($0 - $1) }.max()! / scale
  }

  @Test("statistics and gradients of the global batch, for 2 and 3 replicas with uneven values", arguments: [2, 3])
  func layer(replicas: Int) throws {
    try Machine.with(threads: 1) {
      let n = 6, h = 3, w = 5, c = 17
      var rng = SeededRandom(seed: 7)
      func random(_ shape: [Int], offset: Float = 0) -> Tensor {
        var t = Tensor(shape: shape)
        for i in 0..<t.count { t.storage[i] = rng.normal() * 2 + offset }
        return t
      }
      let x = random([n, h, w, c], offset: 3), gain = random([n, c]), dy = random([n, h, w, c])
      let (mean, variance) = try batchStatistics(x)
      let y = try batchNorm(x, mean: mean, variance: variance, epsilon: 1e-4, gain: gain, bias: nil, relu: true)
      let whole = try batchNormBackward(
        x, mean: mean, variance: variance, epsilon: 1e-4, gain: gain, bias: nil, relu: true, outputGradient: dy,
        batchStatistics: true)
      let results = try LocalReplicas(count: replicas).run { group in
        let part = group.slice(ofBatch: n)
        let xs = Self.rows(x, part), gs = Self.rows(gain, part)
        let (m, v, count) = try combinedStatistics(try batchMoments(xs), group: group)
        let ys = try batchNorm(xs, mean: m, variance: v, epsilon: 1e-4, gain: gs, bias: nil, relu: true)
        let g = try crossReplicaBatchNormBackward(
          xs, mean: m, variance: v, epsilon: 1e-4, gain: gs, bias: nil, relu: true,
          outputGradient: Self.rows(dy, part),
          count: count, group: group)
        return (m, v, count, ys, g.input, g.gain)
      }
      for (r, result) in results.enumerated() {
        let part = (n / replicas * r)..<(n / replicas * (r + 1))
        #expect(result.2 == n * h * w)
        #expect(Self.maxRelative(mean.storage, result.0.storage) < 1e-6)
        #expect(Self.maxRelative(variance.storage, result.1.storage) < 1e-6)
        #expect(Self.maxRelative(Self.rows(y, part).storage, result.3.storage) < 1e-5)
        #expect(Self.maxRelative(Self.rows(whole.input, part).storage, result.4.storage) < 1e-5)
        #expect(Self.maxRelative(Self.rows(whole.gain, part).storage, result.5.storage) < 1e-5)
      }
    }
  }

  @Test("a generator's forward and parameter gradients over replicas match one process", arguments: [2, 3])
  func generator(replicas: Int) throws {
    try Machine.with(threads: 1) {
      let model = TrainingPreset.all["tiny"]!.model, n = 6
      var rng = SeededRandom(seed: 3)
      var z = Tensor(shape: [n, model.dimZ])
      for i in 0..<z.count { z.storage[i] = rng.normal() }
      let labels = (0..<n).map { $0 % model.classes }
      var dy = Tensor(shape: [n, 32, 32, 3])
      for i in 0..<dy.count { dy.storage[i] = rng.normal() }
      let (latents, gradient) = (z, dy)
      let one = try Generator(model, seed: 5)
      let images = try one.forward(z: z, labels: labels, mode: .training)
      _ = try one.backward(dy)
      let results = try LocalReplicas(count: replicas).run { group in
        try Machine.with(convolutionBatchScale: replicas) {
          let g = try Generator(model, seed: 5)
          g.batchStatisticsScope = .allReplicas(group)
          let part = group.slice(ofBatch: n)
          let out = try g.forward(z: Self.rows(latents, part), labels: Array(labels[part]), mode: .training)
          _ = try g.backward(Self.rows(gradient, part))
          var gradients = g.parameters.flatMap(\.gradient.storage)
          group.sum(&gradients)
          return (out.storage, gradients, g.buffers.flatMap(\.value.storage))
        }
      }
      let gradients = one.parameters.flatMap(\.gradient.storage)
      for (r, result) in results.enumerated() {
        let part = (n / replicas * r)..<(n / replicas * (r + 1))
        #expect(Self.maxRelative(Self.rows(images, part).storage, result.0) < 1e-5)
        #expect(Self.maxRelative(gradients, result.1) < 1e-5)
        #expect(Self.maxRelative(one.buffers.flatMap(\.value.storage), result.2) < 1e-5)
      }
    }
  }
}

extension CrossReplicaTests {
  /// The tiny preset at a learning rate and Adam epsilon where training is
  /// not chaotic: with the preset's own (2e-4, 1e-8), Adam turns rounding
  /// noise in gradients that are zero in exact arithmetic into whole steps,
  /// and its first steps amplify any change of rounding about tenfold every
  /// two steps (one process with im2col instead of Winograd convolutions
  /// parts from itself as fast), so no other summation order could follow.
  static var recipe: TrainingRecipe {
    var r = TrainingPreset.all["tiny"]!.recipe
    r.batch = 12
    r.generatorLearningRate = 1e-5
    r.discriminatorLearningRate = 1e-5
    r.adamEpsilon = 1e-4
    return r
  }

  /// `sqrt(sum (a - b)^2 / sum a^2)` over every parameter of both networks.
  static func parameterDistance(_ a: Trainer, _ b: [[Float]]) -> Double {
    var d2 = 0.0, n2 = 0.0
    for (p, v) in zip(a.generator.parameters + a.discriminator.parameters, b) {
      for (x, y) in zip(p.value.storage, v) {
        d2 += Double(x - y) * Double(x - y)
        n2 += Double(x) * Double(x)
      }
    }
    return (d2 / n2).squareRoot()
  }

  @Test("trainers over 3 replicas take the steps one process takes, with and without R1 and the spectral clamp", arguments: [false, true])
  func trainers(remedies: Bool) throws {
    try Machine.with(threads: 1) {
      let model = TrainingPreset.all["tiny"]!.model
      var base = Self.recipe
      if remedies {
        base.r1Gamma = 10
        base.spectralClamp = 1
      }
      let recipe = base
      let dataset = ShapesDataset(resolution: 32, seed: 1)
      let one = try Trainer(model: model, recipe: recipe, dataset: dataset)
      let reports = try (0..<3).map { _ in try one.trainStep() }
      let results = try LocalReplicas(count: 3).run { group in
        let t = try Trainer(model: model, recipe: recipe, dataset: dataset, replicas: group)
        let reports = try (0..<3).map { _ in try t.trainStep() }
        try t.verifyReplicas()
        let parameters = (t.generator.parameters + t.discriminator.parameters).map(\.value.storage)
        return (reports, parameters, t.loader.position, Machine.settings.convolutionBatchScale)
      }
      for (a, b) in zip(reports, results[0].0) {
        for (x, y) in [(a.lossGenerator, b.lossGenerator), (a.lossDiscriminatorReal, b.lossDiscriminatorReal), (a.lossDiscriminatorFake, b.lossDiscriminatorFake)] {
          #expect(abs(x - y) <= 1e-5 * max(abs(x), 1e-3))
        }
        #expect(a.images == b.images)
        #expect((a.penaltyR1 == nil) == !remedies)
        if let x = a.penaltyR1, let y = b.penaltyR1 { #expect(abs(x - y) <= 1e-5 * max(abs(x), 1e-3), "R1 \(x) vs \(y)") }
      }
      #expect(Self.parameterDistance(one, results[0].1) < 1e-5)
      #expect(results.allSatisfy { $0.2 == one.loader.position })
      #expect(results.allSatisfy { $0.3 == 1 }, "a trainer's steps leave its thread's settings as they found them")
    }
  }
}
