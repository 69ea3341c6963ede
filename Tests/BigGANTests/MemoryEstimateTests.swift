import BigGAN
import Testing

/// The memory estimates that let commands refuse jobs too big for the
/// machine before allocating them.
struct MemoryEstimateTests {
  @Test("parameter estimates are within a few percent of the built models' counts, for every preset and Table 1's generator ablations")
  func parameterCounts() throws {
    for (name, preset) in TrainingPreset.all {
      var c = preset.model
      c.classes = min(c.classes, 10)
      let g = try Generator(c, seed: 0, initialization: .zeros), d = try Discriminator(c, seed: 0, initialization: .zeros)
      let buffers = Double(g.buffers.reduce(0) { $0 + $1.value.count })
      let gRatio = c.estimatedGeneratorParameters / (Double(g.parameterCount) + buffers)
      let dRatio = c.estimatedDiscriminatorParameters / Double(d.parameterCount)
      #expect(gRatio > 0.97 && gRatio < 1.1, "\(name): G estimate / count \(gRatio)")
      #expect(dRatio > 0.97 && dRatio < 1.1, "\(name): D estimate / count \(dRatio)")
    }
    for preset in ["tiny", "cifar32"] {
      for (shared, hierarchical) in [(true, false), (false, true), (false, false)] {
        var c = try #require(TrainingPreset.all[preset]).model
        c.sharedEmbedding = shared
        c.hierarchical = hierarchical
        let g = try Generator(c, seed: 0, initialization: .zeros)
        let ratio = c.estimatedGeneratorParameters / (Double(g.parameterCount) + Double(g.buffers.reduce(0) { $0 + $1.value.count }))
        #expect(ratio > 0.97 && ratio < 1.1, "\(preset) shared \(shared) hierarchical \(hierarchical): G estimate / count \(ratio)")
      }
    }
  }

  @Test("a training step's estimate covers what the step holds at once: seven copies of G's parameters, five of D's, and the orthogonal regularisation's largest Gram matrix")
  func trainingStepHoldings() throws {
    // G: weights, gradients, Adam's two moments, the moving average (a
    // generator with gradients of its own) and the spectrally normalised
    // weights; D: all but the average. At 128 px the Gram matrix W W^T of
    // G's stem linear ([24576, 20]: 2.25 GiB) is the peak of a step.
    for (name, preset) in TrainingPreset.all {
      var c = preset.model
      c.classes = min(c.classes, 10)
      let g = try Generator(c, seed: 0, initialization: .zeros), d = try Discriminator(c, seed: 0, initialization: .zeros)
      let rows = g.parameters.filter { $0.value.shape.count >= 2 && $0.name != "shared.weight" }.map { Double($0.value.shape[0]) }.max() ?? 0
      let held = 7 * Double(g.parameterCount) + 5 * Double(d.parameterCount) + rows * rows
      #expect(c.estimatedTrainingBytes(batch: 1) >= 4 * held, "\(name)")
    }
  }

  @Test("absurd settings give a finite, huge estimate and a refusal that says how much; presets fit")
  func refusal() throws {
    var c = BigGANConfiguration.cifar32
    c.generatorChannels = 1_000_000_000
    c.discriminatorChannels = 1_000_000_000
    try c.validate()
    #expect(c.estimatedParameterBytes.isFinite && c.estimatedParameterBytes > 1e20)
    #expect(throws: MemoryBudget.Exceeded.self) { try MemoryBudget.require(c.estimatedParameterBytes, for: "--ch 1000000000", "the model's parameters") }
    do {
      try MemoryBudget.require(BigGANConfiguration.cifar32.estimatedTrainingBytes(batch: 100_000_000), for: "--batch 100000000", "a training step")
      Issue.record("a cifar32 step at batch 1e8 fits")
    } catch {
      #expect(error.description.hasPrefix("--batch 100000000: a training step would need about "), "\(error)")
      #expect(error.description.contains(" PiB; this machine has "), "\(error)")
    }
    try MemoryBudget.require(BigGANConfiguration.cifar32.estimatedTrainingBytes(batch: 50), for: "cifar32", "a training step")
    #expect(MemoryBudget.format(3.1 * 1024 * 1024 * 1024 * 1024) == "3.1 TiB")
    #expect(MemoryBudget.format(512) == "512 bytes")
    #expect(throws: EvaluationError.self, "features of 1e11 images") {
      try checkEvaluable(count: 100_000_000_000, featureDimension: 2048, reference: nil, metrics: [.is])
    }
    c.generatorChannels = Int(Int32.max) + 1
    #expect(throws: ConfigurationError.self) { try c.validate() }
  }
}
