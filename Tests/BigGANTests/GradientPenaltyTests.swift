import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// The R1 penalty's value and parameter gradients (double backpropagation
/// through D): against PyTorch's `autograd.grad(create_graph=True)` and by
/// finite differences.
@Suite(.serialized)
struct GradientPenaltyTests {
  /// `tools/make_r1_fixture.py`'s gamma.
  static let gamma: Float = 10

  @Test("R1 and its parameter gradients match PyTorch's double backpropagation, and the D step's own gradients stay")
  func parity() throws {
    let fixture = try ParityFixture("cifar32")
    let d = try Discriminator(fixture.configuration, seed: 2)
    try StateDict.load(d, from: try fixture.file("D.safetensors"))
    let inputs = try fixture.file("inputs.safetensors"), outputs = try fixture.file("outputs.safetensors")
    let reference = try SafeTensorsFile(
      contentsOf: fixture.folder.deletingLastPathComponent().appendingPathComponent("r1/r1.safetensors").path)
    let batch = fixture.labels.count
    var both = nhwc(try outputs.tensor("G_out"))
    both.storage += nhwc(try inputs.tensor("x_real")).storage
    both = try both.reshaped([2 * batch] + Array(both.shape.dropFirst()))
    _ = try d.forward(both, labels: fixture.labels + fixture.realLabels, mode: .training)
    d.zeroGradients()
    let penalty = try d.gradientPenalty(rows: batch..<2 * batch, weight: Self.gamma / Float(batch))
    let expected = try reference.tensor("penalty").storage[0]
    #expect(abs(penalty - expected) <= 1e-5 * abs(expected), "R1 \(penalty), PyTorch \(expected)")
    let ours = StateDict.gradients(of: d)
    for (name, grad) in ours {
      let theirs = try reference.tensor("grad/D/\(name)")
      if theirs.storage.allSatisfy({ $0 == 0 }) {
        #expect(grad.storage.allSatisfy { $0 == 0 }, "\(name): R1 does not see it")
      } else {
        expectClose(grad, theirs, 1e-5, "R1 grad \(name)")
      }
    }

    // The D step's own backward, after R1, still finds the forward's
    // activations: its gradients are those of a D that took no penalty.
    let plain = try Discriminator(fixture.configuration, seed: 2)
    try StateDict.load(plain, from: try fixture.file("D.safetensors"))
    _ = try plain.forward(both, labels: fixture.labels + fixture.realLabels, mode: .training)
    try plain.backward(Tensor(shape: [2 * batch, 1], repeating: 1))
    d.zeroGradients()
    try d.backward(Tensor(shape: [2 * batch, 1], repeating: 1))
    for (p, q) in zip(d.parameters, plain.parameters) { #expect(p.gradient == q.gradient, "\(p.name)") }
  }

  @Test("in bf16, R1 and its gradients keep the direction of PyTorch's fp32 ones (as BFloat16ParityTests judges)")
  func bf16() throws {
    let fixture = try ParityFixture("cifar32")
    let d = try Discriminator(fixture.configuration, seed: 2)
    try StateDict.load(d, from: try fixture.file("D.safetensors"))
    d.precision = .bf16
    let inputs = try fixture.file("inputs.safetensors")
    let reference = try SafeTensorsFile(
      contentsOf: fixture.folder.deletingLastPathComponent().appendingPathComponent("r1/r1.safetensors").path)
    let batch = fixture.labels.count
    let real = nhwc(try inputs.tensor("x_real"))
    _ = try d.forward(real, labels: fixture.realLabels, mode: .training)
    d.zeroGradients()
    let penalty = try d.gradientPenalty(rows: 0..<batch, weight: Self.gamma / Float(batch))
    let expected = try reference.tensor("penalty").storage[0]
    #expect(abs(penalty - expected) <= 0.05 * expected, "bf16 R1 \(penalty), PyTorch fp32 \(expected)")
    for (name, grad) in StateDict.gradients(of: d) {
      let theirs = try reference.tensor("grad/D/\(name)")
      if theirs.storage.allSatisfy({ $0 == 0 }) { continue }
      let c = BFloat16ParityTests.cosine(grad, theirs)
      #expect(c > 0.98, "bf16 R1 grad \(name) cosine \(c)")
    }
  }

  @Test("a discriminator with self-attention refuses R1")
  func attention() throws {
    let fixture = try ParityFixture("attn64")
    let d = try Discriminator(fixture.configuration, seed: 2)
    let r = fixture.configuration.resolution
    _ = try d.forward(Tensor(shape: [1, r, r, 3], repeating: 0.5), labels: [0], mode: .training)
    #expect(throws: KernelError.self) { try d.gradientPenalty(rows: 0..<1, weight: 1) }
  }

  /// A tiny D of `architecture` without attention or spectral norm, 32 px,
  /// two images: the penalty's own chain rule, which the parity test above
  /// checks through the spectral norm. (With it, finite differences would
  /// also see the power iteration's dependence on W, which the gradient
  /// leaves out as PyTorch's does.)
  static func tinyDiscriminator(_ architecture: Architecture) throws -> (Discriminator, Tensor, [Int]) {
    let config = BigGANConfiguration(
      architecture: architecture, resolution: 32, generatorChannels: 4, discriminatorChannels: 4, dimZ: 8,
      sharedDim: 8, classes: 3, hierarchical: architecture == .biggan, generatorAttention: [], discriminatorAttention: [],
      spectralNorm: false, initialization: .normal(std: 0.1))
    let d = try Discriminator(config, seed: 5)
    var rng = SeededRandom(seed: 11)
    let x = LayerGradientTests.random([2, 32, 32, 3], &rng)
    return (d, x, [2, 0])
  }

  @Test("R1's parameter gradients equal central differences of R1", arguments: [Architecture.biggan, .deep])
  func finiteDifferences(_ architecture: Architecture) throws {
    let (d, x, labels) = try Self.tinyDiscriminator(architecture)
    func penalty() throws -> Double {
      _ = try d.forward(x, labels: labels, mode: .training)
      return Double(try d.gradientPenalty(rows: 0..<2, weight: 0.5))
    }
    d.zeroGradients()
    let value = try penalty()
    let analytic = d.parameters.map(\.gradient)
    var rng = SeededRandom(seed: 3)
    var checked = 0, skipped = 0
    for (p, gradient) in zip(d.parameters, analytic) {
      let scale = gradient.storage.map { abs(Double($0)) }.max() ?? 0
      if p.name.hasSuffix("bias") {
        #expect(scale == 0, "\(p.name): R1 does not depend on biases")
        continue
      }
      for _ in 0..<4 {
        let i = Int(rng.next() % UInt64(p.value.count))
        let keep = p.value.storage[i]
        func at(_ h: Float) throws -> Double {
          p.value.storage[i] = keep + h
          defer { p.value.storage[i] = keep }
          return try penalty()
        }
        let step: Float = 2e-3
        let wide = (try at(step) - at(-step)) / Double(2 * step)
        let narrow = (try at(step / 2) - at(-step / 2)) / Double(step)
        // 2%, plus the penalty's fp32 rounding (about 1e-5 of it: the
        // input gradient is a sum with cancellation) over the step.
        let bound = 2e-2 * max(abs(narrow), 0.05 * scale) + 4e-5 * value / Double(step)
        // R1 jumps where a ReLU of D flips (its input gradient changes
        // there). A jump J within both steps moves the narrow estimate by
        // J / step and the wide one by half that, so the narrow one is off
        // by at most twice their difference; a large difference means a
        // large jump: no verdict there.
        let disagreement = abs(wide - narrow)
        guard disagreement <= bound else { skipped += 1; continue }
        checked += 1
        #expect(
          abs(Double(gradient.storage[i]) - narrow) <= bound + 2 * disagreement,
          "\(p.name)[\(i)]: analytic \(gradient.storage[i]), numeric \(narrow) (wide step \(wide))")
      }
    }
    #expect(checked >= 20 && skipped <= checked, "\(skipped) of \(checked + skipped) probes straddle a ReLU flip")
  }
}
