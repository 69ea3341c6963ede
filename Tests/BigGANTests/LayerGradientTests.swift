import BGKernels
import Testing

@testable import BigGAN

/// Finite-difference checks of every layer's backward, independent of
/// PyTorch. Spectral-norm vectors are first converged by repeated training
/// forwards and then restored before every evaluation, so the function being
/// differentiated is the one the backward describes (u and v constant; at a
/// converged u their dependence on W is second order).
@Suite(.serialized)
struct LayerGradientTests {
  /// A layer under test: forward in training mode, backward of `dy` that
  /// returns the input gradients, and the tensors to probe.
  struct Subject {
    var module: any Module
    var inputs: [Tensor]
    var forward: ([Tensor]) throws -> Tensor
    var backward: (Tensor) throws -> [Tensor]
  }

  /// Spectral norm on, batch-norm eps 1e-5, weights N(0, 0.3).
  static let settings = LayerSettings(snEps: 1e-6, bnEps: 1e-5, initialization: .normal(std: 0.3))

  static func random(_ shape: [Int], _ rng: inout SeededRandom, scale: Float = 1) -> Tensor {
    var t = Tensor(shape: shape)
    for i in 0..<t.count { t.storage[i] = scale * rng.normal() }
    return t
  }

  /// Compares analytic and central-difference gradients of
  /// `loss = sum(dy * forward(inputs))` for a few entries of every input and
  /// parameter.
  static func check(_ s: Subject, _ label: String, step: Float = 1e-2, tolerance: Double = 2e-2) throws {
    var rng = SeededRandom(seed: 99)
    for _ in 0..<40 { _ = try s.forward(s.inputs) }
    let saved = s.module.buffers.map(\.value)
    func restore() { for (b, v) in zip(s.module.buffers, saved) { b.value = v } }
    restore()
    let y = try s.forward(s.inputs)
    let dy = random(y.shape, &rng)
    s.module.zeroGradients()
    let dInputs = try s.backward(dy)
    restore()
    func loss(_ inputs: [Tensor]) throws -> Double {
      restore()
      let out = try s.forward(inputs)
      return zip(out.storage, dy.storage).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    // Central differences at h and h/2 agree where the loss is smooth; where
    // they do not, a ReLU kink lies within the step and the point says
    // nothing about the backward, so it is skipped (but most must count).
    var checked = 0, skipped = 0
    func compare(_ analytic: Float, _ what: String, _ scale: Double, _ at: (Float) throws -> Double) throws {
      let wide = (try at(step) - at(-step)) / Double(2 * step)
      let narrow = (try at(step / 2) - at(-step / 2)) / Double(step)
      let bound = tolerance * max(abs(narrow), scale)
      guard abs(wide - narrow) <= bound else { skipped += 1; return }
      checked += 1
      let error = abs(Double(analytic) - narrow)
      #expect(error <= bound, "\(label) \(what): analytic \(analytic), numeric \(narrow)")
    }
    for (k, x) in s.inputs.enumerated() where x.count > 0 {
      let scale = dInputs[k].storage.map { abs(Double($0)) }.max() ?? 0
      for _ in 0..<6 {
        let i = Int(rng.next() % UInt64(x.count))
        try compare(dInputs[k].storage[i], "input \(k)[\(i)]", 0.05 * scale) { h in
          var moved = s.inputs
          moved[k].storage[i] += h
          return try loss(moved)
        }
      }
    }
    // Some gradients are zero in exact arithmetic (a bias right before a
    // batch-norm); judge them against the largest gradient of the layer.
    let largest = s.module.parameters.flatMap(\.gradient.storage).map { abs(Double($0)) }.max() ?? 0
    for p in s.module.parameters {
      let scale = max(p.gradient.storage.map { abs(Double($0)) }.max() ?? 0, 0.02 * largest)
      for _ in 0..<4 {
        let i = Int(rng.next() % UInt64(p.value.count))
        let keep = p.value.storage[i]
        try compare(p.gradient.storage[i], "\(p.name)[\(i)]", 0.05 * scale) { h in
          p.value.storage[i] = keep + h
          defer { p.value.storage[i] = keep }
          return try loss(s.inputs)
        }
      }
    }
    #expect(skipped * 4 <= checked, "\(label): \(skipped) of \(checked + skipped) probes sit on a kink")
    restore()
  }

  @Test("spectrally normalised linear, convolution (with fused upsample) and embedding")
  func basicLayers() throws {
    var rng = SeededRandom(seed: 1)
    let linear = Linear(prefix: "l", in: 5, out: 3, spectralNorm: 1e-6, initialization: .normal(std: 0.5), rng: &rng)
    try Self.check(Subject(
      module: linear, inputs: [Self.random([4, 5], &rng)],
      forward: { try linear.forward($0[0], mode: .training) },
      backward: { [try linear.backward($0)] }), "linear")

    for upsample in [false, true] {
      let conv = Conv2d(prefix: "c", in: 3, out: 4, kernel: 3, upsample: upsample, spectralNorm: 1e-6, initialization: .normal(std: 0.3), rng: &rng)
      try Self.check(Subject(
        module: conv, inputs: [Self.random([2, 3, 3, 3], &rng)],
        forward: { try conv.forward($0[0], mode: .training) },
        backward: { [try conv.backward($0)] }), "conv upsample \(upsample)")
    }

    let embed = Embedding(prefix: "e", classes: 4, features: 6, spectralNorm: 1e-6, initialization: .normal(std: 1), rng: &rng)
    let labels = [2, 0, 2]
    try Self.check(Subject(
      module: embed, inputs: [],
      forward: { _ in try embed.forward(labels, mode: .training) },
      backward: { try embed.backward($0); return [] }), "embedding")
  }

  @Test("class-conditional and plain batch-norm with fused ReLU, batch statistics")
  func batchNorms() throws {
    var rng = SeededRandom(seed: 2)
    let cbn = ConditionalBatchNorm(prefix: "bn", channels: 3, conditionDim: 4, classes: nil, settings: Self.settings, rng: &rng)
    try Self.check(Subject(
      module: cbn, inputs: [Self.random([3, 2, 2, 3], &rng), Self.random([3, 4], &rng)],
      forward: { try cbn.forward($0[0], condition: NormCondition(vector: $0[1]), relu: true, mode: .training) },
      backward: { let (dx, dc) = try cbn.backward($0); return [dx, try #require(dc)] }), "conditional batch-norm")

    let bn = BatchNorm(prefix: "bn", channels: 3, settings: Self.settings)
    bn.gain.value = Self.random([3], &rng)
    try Self.check(Subject(
      module: bn, inputs: [Self.random([2, 3, 2, 3], &rng)],
      forward: { try bn.forward($0[0], relu: false, mode: .training) },
      backward: { [try bn.backward($0)] }), "batch-norm")
  }

  @Test("conditional batch-norm with its own class embeddings: labels or class vectors, with and without a z map")
  func perNormEmbeddings() throws {
    var rng = SeededRandom(seed: 7)
    // Repeated labels: rows of the embedding gradient sum several samples.
    let labels = [2, 0, 2, 4]
    for zWidth in [0, 3] {
      let cbn = ConditionalBatchNorm(prefix: "bn", channels: 3, conditionDim: zWidth, classes: 5, settings: Self.settings, rng: &rng)
      #expect(cbn.parameters.map(\.name) == ["bn.gain.weight", "bn.bias.weight"] + (zWidth > 0 ? ["bn.gain_z.weight", "bn.bias_z.weight"] : []))
      let x = Self.random([4, 2, 2, 3], &rng), z = Self.random([4, zWidth], &rng)
      try Self.check(Subject(
        module: cbn, inputs: [x, z],
        forward: { try cbn.forward($0[0], condition: NormCondition(vector: zWidth > 0 ? $0[1] : nil, classes: .labels(labels)), relu: true, mode: .training) },
        backward: { let (dx, dc) = try cbn.backward($0); return [dx, dc ?? Tensor(shape: [4, 0])] }),
        "batch-norm embeddings, z width \(zWidth)")
      let soft = Self.random([4, 5], &rng, scale: 0.5)
      try Self.check(Subject(
        module: cbn, inputs: [x, z],
        forward: { try cbn.forward($0[0], condition: NormCondition(vector: zWidth > 0 ? $0[1] : nil, classes: .vectors(soft)), relu: true, mode: .training) },
        backward: { let (dx, dc) = try cbn.backward($0); return [dx, dc ?? Tensor(shape: [4, 0])] }),
        "batch-norm embeddings of class vectors, z width \(zWidth)")
    }
    let g = GeneratorBlock(prefix: "g", in: 4, out: 3, conditionDim: 0, classes: 5, settings: Self.settings, rng: &rng)
    try Self.check(Subject(
      module: g, inputs: [Self.random([4, 2, 2, 4], &rng)],
      forward: { try g.forward($0[0], condition: NormCondition(classes: .labels(labels)), mode: .training) },
      backward: { let (dx, dc) = try g.backward($0); #expect(dc == nil); return [dx] }), "generator block with per-norm embeddings")
  }

  @Test("self-attention with max-pooled keys and values")
  func selfAttention() throws {
    var rng = SeededRandom(seed: 3)
    let attention = SelfAttention(prefix: "a", channels: 16, settings: Self.settings, rng: &rng)
    attention.gamma.value.storage = [0.7]
    try Self.check(Subject(
      module: attention, inputs: [Self.random([2, 4, 4, 16], &rng)],
      forward: { try attention.forward($0[0], mode: .training) },
      backward: { [try attention.backward($0)] }), "self-attention")
  }

  @Test("generator block and discriminator blocks (first, pre-activated, with and without downsampling)")
  func blocks() throws {
    var rng = SeededRandom(seed: 4)
    let g = GeneratorBlock(prefix: "g", in: 4, out: 3, conditionDim: 5, classes: nil, settings: Self.settings, rng: &rng)
    try Self.check(Subject(
      module: g, inputs: [Self.random([2, 2, 2, 4], &rng), Self.random([2, 5], &rng)],
      forward: { try g.forward($0[0], condition: NormCondition(vector: $0[1]), mode: .training) },
      backward: { let (dx, dc) = try g.backward($0); return [dx, try #require(dc)] }), "generator block")

    for (pre, down, i, o) in [(false, true, 3, 4), (true, true, 4, 4), (true, false, 4, 4), (true, false, 4, 6)] {
      let d = DiscriminatorBlock(prefix: "d", in: i, out: o, preactivation: pre, downsample: down, settings: Self.settings, rng: &rng)
      // A smaller step: the inner ReLUs have kinks a 1e-2 step would cross.
      try Self.check(Subject(
        module: d, inputs: [Self.random([2, 4, 4, i], &rng)],
        forward: { try d.forward($0[0], mode: .training) },
        backward: { [try d.backward($0)] }), "discriminator block pre \(pre) down \(down) \(i)->\(o)",
        step: 1e-3)
    }
  }

  @Test("BigGAN-deep generator blocks: channel drop, with and without upsampling")
  func deepGeneratorBlocks() throws {
    var rng = SeededRandom(seed: 5)
    for (i, o, up) in [(8, 8, false), (8, 4, true), (8, 8, true)] {
      let g = DeepGeneratorBlock(prefix: "g", in: i, out: o, upsample: up, conditionDim: 5, settings: Self.settings, rng: &rng)
      try Self.check(Subject(
        module: g, inputs: [Self.random([3, 4, 4, i], &rng), Self.random([3, 5], &rng)],
        forward: { try g.forward($0[0], condition: NormCondition(vector: $0[1]), mode: .training) },
        backward: { let (dx, dc) = try g.backward($0); return [dx, try #require(dc)] }), "deep generator block \(i)->\(o) up \(up)",
        step: 3e-3)
    }
  }

  @Test("BigGAN-deep discriminator blocks: channel add, first block without pre-activation")
  func deepDiscriminatorBlocks() throws {
    var rng = SeededRandom(seed: 6)
    for (pre, down, i, o) in [(false, true, 4, 8), (true, false, 8, 8), (true, true, 8, 12)] {
      let d = DeepDiscriminatorBlock(prefix: "d", in: i, out: o, preactivation: pre, downsample: down, settings: Self.settings, rng: &rng)
      try Self.check(Subject(
        module: d, inputs: [Self.random([2, 4, 4, i], &rng)],
        forward: { try d.forward($0[0], mode: .training) },
        backward: { [try d.backward($0)] }), "deep discriminator block pre \(pre) down \(down) \(i)->\(o)",
        step: 1e-3)
    }
  }
}

/// Evaluation keeps the normalised weight and its kernel plan between
/// forwards; any change of the weight or the spectral-norm vector must be
/// seen by the next forward.
@Suite
struct SpectralNormWeightCacheTests {
  /// The layer's evaluation output against a fresh layer that never kept
  /// anything, for the same parameters and vectors.
  private func expectFresh(
    _ y: Tensor, _ fresh: () throws -> Tensor, _ label: String
  ) throws {
    let expected = try fresh()
    #expect(y.storage.map(\.bitPattern) == expected.storage.map(\.bitPattern), "\(label)")
  }

  @Test("Conv2d and Linear see weight and u changes in evaluation mode")
  func planInvalidation() throws {
    var rng = SeededRandom(seed: 9)
    let conv = Conv2d(prefix: "c", in: 20, out: 6, kernel: 3, spectralNorm: 1e-6, initialization: .normal(std: 0.3), rng: &rng)
    let linear = Linear(prefix: "l", in: 7, out: 5, spectralNorm: 1e-6, initialization: .normal(std: 0.5), rng: &rng)
    var data = SeededRandom(seed: 10)
    let x = try Tensor(shape: [1, 16, 16, 20], storage: (0..<(16 * 16 * 20)).map { _ in data.normal() })
    let v = try Tensor(shape: [2, 7], storage: (0..<14).map { _ in data.normal() })
    func freshConv() throws -> Tensor {
      var r = SeededRandom(seed: 1)
      let c = Conv2d(prefix: "c", in: 20, out: 6, kernel: 3, spectralNorm: 1e-6, initialization: .zeros, rng: &r)
      c.weight.value = conv.weight.value
      c.bias?.value = conv.bias!.value
      c.sn!.u.value = conv.sn!.u.value
      return try c.forward(x, mode: .evaluation)
    }
    func freshLinear() throws -> Tensor {
      var r = SeededRandom(seed: 1)
      let l = Linear(prefix: "l", in: 7, out: 5, spectralNorm: 1e-6, initialization: .zeros, rng: &r)
      l.weight.value = linear.weight.value
      l.bias?.value = linear.bias!.value
      l.sn!.u.value = linear.sn!.u.value
      return try l.forward(v, mode: .evaluation)
    }
    let before = try conv.forward(x, mode: .evaluation)
    try expectFresh(before, freshConv, "conv, first forward")
    try expectFresh(try linear.forward(v, mode: .evaluation), freshLinear, "linear, first forward")

    conv.weight.value.storage[7] += 0.5
    linear.weight.value.storage[3] -= 0.5
    let after = try conv.forward(x, mode: .evaluation)
    #expect(after != before)
    try expectFresh(after, freshConv, "conv after a weight change")
    try expectFresh(try linear.forward(v, mode: .evaluation), freshLinear, "linear after a weight change")

    _ = try conv.forward(x, mode: .training)
    _ = try linear.forward(v, mode: .training)
    try expectFresh(try conv.forward(x, mode: .evaluation), freshConv, "conv after a training step moved u")
    try expectFresh(try linear.forward(v, mode: .evaluation), freshLinear, "linear after a training step moved u")

    conv.sn!.u.value.storage[0] *= -2
    try expectFresh(try conv.forward(x, mode: .evaluation), freshConv, "conv after u was set")
  }
}
