import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// One reference run of BigGAN-PyTorch semantics (`tools/make_fixtures.py`):
/// weights, inputs, and every output, gradient and buffer it produced.
struct ParityFixture {
  let name: String
  let configuration: BigGANConfiguration
  let labels: [Int]
  let realLabels: [Int]
  let folder: URL

  init(_ name: String) throws {
    self.name = name
    let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    folder = fixtures.appendingPathComponent("parity/\(name)")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("config.json")))
    let c = try #require(json as? [String: Any])
    func int(_ k: String) throws -> Int { try #require(c[k] as? Int, "config.json: \(k)") }
    func resolutions(_ k: String) throws -> [Int] {
      try #require(c[k] as? String).split(separator: "_").compactMap { Int($0) }.filter { $0 > 0 }
    }
    configuration = BigGANConfiguration(
      resolution: try int("resolution"), generatorChannels: try int("G_ch"),
      discriminatorChannels: try int("D_ch"), dimZ: try int("dim_z"),
      sharedDim: try int("shared_dim"), classes: try int("n_classes"),
      hierarchical: try #require(c["hier"] as? Bool), sharedEmbedding: try #require(c["G_shared"] as? Bool),
      generatorAttention: try resolutions("G_attn"),
      discriminatorAttention: try resolutions("D_attn"),
      snEps: Float(try #require(c["SN_eps"] as? Double)), bnEps: Float(try #require(c["BN_eps"] as? Double)))
    labels = try #require(c["y"] as? [Int])
    realLabels = try #require(c["y_real"] as? [Int])
  }

  func file(_ name: String) throws -> SafeTensorsFile {
    try SafeTensorsFile(contentsOf: folder.appendingPathComponent(name).path)
  }
}

/// NCHW (files) to NHWC (ours) and back.
func nhwc(_ t: Tensor) -> Tensor { StateDict.permute(t, [0, 2, 3, 1]) }
func nchw(_ t: Tensor) -> Tensor { StateDict.permute(t, [0, 3, 1, 2]) }

/// Expects `ours` within `tolerance` of `reference`, relative to the
/// reference's largest magnitude (elementwise relative error is
/// meaningless for entries near zero), or to `floor` when that is larger:
/// some gradients are exactly zero in exact arithmetic (a bias right before
/// a batch-norm) and only rounding noise in both implementations.
func expectClose(
  _ ours: Tensor, _ reference: Tensor, _ tolerance: Double, _ label: String,
  floor: Double = 0, sourceLocation: SourceLocation = #_sourceLocation
) {
  guard ours.count == reference.count else {
    Issue.record("\(label): \(ours.shape) vs reference \(reference.shape)", sourceLocation: sourceLocation)
    return
  }
  let scale = max(reference.storage.map { abs(Double($0)) }.max() ?? 0, floor, 1e-12)
  var worst = 0.0
  for (a, b) in zip(ours.storage, reference.storage) { worst = max(worst, abs(Double(a) - Double(b))) }
  if worst > tolerance * scale {
    Issue.record("\(label): max error \(worst) > \(tolerance) x \(scale)", sourceLocation: sourceLocation)
  }
}

/// The model against PyTorch, step by step through one D step and one G
/// step: forward outputs to 1e-4 and every gradient to 1e-3 (relative to
/// each tensor's largest entry), in fp32.
@Suite(.serialized)
struct ParityTests {
  static func hinge(_ scores: Tensor, real: Bool) -> (loss: Double, gradient: Tensor) {
    let n = scores.count
    var g = Tensor(shape: scores.shape)
    var loss = 0.0
    for i in 0..<n {
      let s = Double(scores.storage[i])
      let margin = real ? 1 - s : 1 + s
      if margin > 0 {
        loss += margin / Double(n)
        g.storage[i] = Float((real ? -1.0 : 1.0) / Double(n))
      }
    }
    return (loss, g)
  }

  /// Every parameter gradient to 1e-3 of its largest entry, with a floor
  /// of 1e-3 of the model's largest gradient for the analytically zero ones.
  func expectGradients(_ model: any Module, _ tag: String, _ outputs: SafeTensorsFile, _ name: String) throws {
    let ours = StateDict.gradients(of: model)
    var reference: [String: Tensor] = [:]
    for p in ours.keys { reference[p] = try outputs.tensor("grad/\(tag)/\(p)") }
    let largest = reference.values.flatMap(\.storage).map { abs(Double($0)) }.max() ?? 0
    for (p, grad) in ours {
      expectClose(grad, reference[p]!, 1e-3, "\(name) grad \(tag) \(p)", floor: 1e-3 * largest)
    }
  }

  /// Every fixture: the two model sizes, then Table 1's generator
  /// ablations at cifar32's size (no shared embedding with and without
  /// hierarchical z, and a shared embedding without it).
  static let fixtures = ["cifar32", "attn64", "noshared-hier", "noshared-flat", "shared-flat"]

  @Test("generator and discriminator match BigGAN-PyTorch", arguments: fixtures)
  func parity(_ name: String) throws {
    let fixture = try ParityFixture(name)
    let config = fixture.configuration
    let g = try Generator(config, seed: 1), d = try Discriminator(config, seed: 2)
    try StateDict.load(g, from: try fixture.file("G.safetensors"))
    try StateDict.load(d, from: try fixture.file("D.safetensors"))
    let inputs = try fixture.file("inputs.safetensors"), outputs = try fixture.file("outputs.safetensors")
    let z = try inputs.tensor("z"), real = nhwc(try inputs.tensor("x_real"))
    let batch = fixture.labels.count

    // 1. G forward in training mode.
    let fake = try g.forward(z: z, labels: fixture.labels, mode: .training)
    expectClose(nchw(fake), try outputs.tensor("G_out"), 1e-4, "\(name) G_out")

    // 2-3. One D call on [fake; real], hinge loss, D backward.
    var both = fake
    both.storage += real.storage
    both = try both.reshaped([2 * batch] + Array(fake.shape.dropFirst()))
    let scores = try d.forward(both, labels: fixture.labels + fixture.realLabels, mode: .training)
    expectClose(scores, try outputs.tensor("D_out"), 1e-4, "\(name) D_out")
    for b in d.buffers where b.name.hasSuffix("u0") {
      expectClose(b.value, try outputs.tensor("after_dstep/D/\(b.name)"), 1e-4, "\(name) D \(b.name) after D step")
    }
    let fakeScores = try Tensor(shape: [batch, 1], storage: Array(scores.storage[0..<batch]))
    let realScores = try Tensor(shape: [batch, 1], storage: Array(scores.storage[batch...]))
    let (lossFake, gFake) = Self.hinge(fakeScores, real: false)
    let (lossReal, gReal) = Self.hinge(realScores, real: true)
    #expect(abs(lossFake + lossReal - Double(try outputs.tensor("loss_D").storage[0])) <= 1e-4)
    d.zeroGradients()
    try d.backward(try Tensor(shape: [2 * batch, 1], storage: gFake.storage + gReal.storage))
    try expectGradients(d, "D", outputs, name)

    // 4. G step through a second D forward (D's gradients are not kept).
    let gScores = try d.forward(fake, labels: fixture.labels, mode: .training)
    expectClose(gScores, try outputs.tensor("D_G_out"), 1e-4, "\(name) D_G_out")
    let lossG = -gScores.storage.reduce(0, +) / Float(batch)
    #expect(abs(Double(lossG) - Double(try outputs.tensor("loss_G").storage[0])) <= 1e-4)
    let dImages = try d.backward(try Tensor(shape: [batch, 1], repeating: -1 / Float(batch)).reshaped([batch, 1]))
    expectClose(nchw(dImages), try outputs.tensor("grad/x_fake"), 1e-3, "\(name) dL/dG_out")
    g.zeroGradients()
    try g.backward(dImages)
    try expectGradients(g, "G", outputs, name)

    // 5. Every buffer after the step: u vectors, logged sigmas, running stats.
    for (model, tag) in [(g as any Module, "G"), (d, "D")] {
      for (bname, value) in StateDict.tensors(of: model) where model.buffers.contains(where: { $0.name == bname }) {
        expectClose(value, try outputs.tensor("after/\(tag)/\(bname)"), 1e-4, "\(name) \(tag) \(bname) after")
      }
    }

    // 6-7. Evaluation mode: running statistics, no vector updates.
    let before = g.buffers.map(\.value)
    let evalFake = try g.forward(z: z, labels: fixture.labels, mode: .evaluation)
    expectClose(nchw(evalFake), try outputs.tensor("eval/G_out"), 1e-4, "\(name) eval G_out")
    #expect(g.buffers.map(\.value) == before, "evaluation must not change buffers")
    let evalScores = try d.forward(both, labels: fixture.labels + fixture.realLabels, mode: .evaluation)
    expectClose(evalScores, try outputs.tensor("eval/D_out"), 1e-4, "\(name) eval D_out")
  }
}

/// What we write is what PyTorch's reference holds, for Table 1's
/// generator ablations too: the per-batch-norm embeddings under its names.
@Suite
struct AblationStateDictTests {
  @Test("a generator written by us has the reference's state_dict: every name, shape and value", arguments: ["noshared-hier", "noshared-flat", "shared-flat"])
  func written(_ name: String) throws {
    let fixture = try ParityFixture(name)
    let reference = try fixture.file("G.safetensors")
    let g = try Generator(fixture.configuration, seed: 1)
    try StateDict.load(g, from: reference)
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("ablation-\(name)-\(getpid()).safetensors").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try StateDict.save(g, to: path)
    let ours = try SafeTensorsFile(contentsOf: path)
    #expect(Set(ours.names) == Set(reference.names))
    for n in reference.names {
      #expect(try ours.info(n).shape == reference.info(n).shape, "\(n)")
      #expect(try ours.tensor(n) == reference.tensor(n), "\(n)")
    }
    let c = fixture.configuration
    #expect(reference.contains("shared.weight") == c.sharedEmbedding)
    #expect(reference.contains("blocks.0.0.bn1.gain_z.weight") == (!c.sharedEmbedding && c.hierarchical))
    if !c.sharedEmbedding {
      // nn.Embedding(n_classes, channels), without spectral norm.
      #expect(try reference.info("blocks.0.0.bn1.gain.weight").shape == [c.classes, c.stemChannels])
      #expect(!reference.contains("blocks.0.0.bn1.gain.u0"))
    }
  }
}

/// The same replay in bf16 (TPU matrix-unit emulation) against the fp32
/// reference. Every product rounds its operands to bf16 (relative error up
/// to 2^-9 each), so a product is off by up to ~2^-8 relative and a sum by
/// that times sum |terms| / |sum|. Forward activations are re-normalised
/// after every convolution, so outputs stay within a few 1e-2 of their
/// largest entry (measured 0.029 for cifar32, 0.032 for attn64; limit
/// 3.5e-2). Gradients are sums with heavy cancellation (an input gradient
/// of a random D is a small difference of large terms), so elementwise
/// limits would only measure that cancellation; they are
/// judged by direction instead: the cosine between our bf16 gradient and
/// PyTorch's fp32 one must exceed 0.98 for every tensor (a wrong layer, or
/// gradients of another layer, give cosines near 0).
@Suite(.serialized)
struct BFloat16ParityTests {
  static func cosine(_ a: Tensor, _ b: Tensor) -> Double {
    var ab = 0.0, aa = 0.0, bb = 0.0
    for (x, y) in zip(a.storage, b.storage) {
      ab += Double(x) * Double(y)
      aa += Double(x) * Double(x)
      bb += Double(y) * Double(y)
    }
    return ab / max((aa * bb).squareRoot(), 1e-300)
  }

  @Test("bf16 forward and gradients stay within the documented distance of fp32 PyTorch", arguments: ["cifar32", "attn64"])
  func bf16(_ name: String) throws {
    let fixture = try ParityFixture(name)
    let g = try Generator(fixture.configuration, seed: 1), d = try Discriminator(fixture.configuration, seed: 2)
    try StateDict.load(g, from: try fixture.file("G.safetensors"))
    try StateDict.load(d, from: try fixture.file("D.safetensors"))
    g.precision = .bf16
    d.precision = .bf16
    let inputs = try fixture.file("inputs.safetensors"), outputs = try fixture.file("outputs.safetensors")
    let batch = fixture.labels.count
    let fake = try g.forward(z: try inputs.tensor("z"), labels: fixture.labels, mode: .training)
    expectClose(nchw(fake), try outputs.tensor("G_out"), 3.5e-2, "\(name) bf16 G_out")
    let real = nhwc(try inputs.tensor("x_real"))
    var both = fake
    both.storage += real.storage
    both = try both.reshaped([2 * batch] + Array(fake.shape.dropFirst()))
    let scores = try d.forward(both, labels: fixture.labels + fixture.realLabels, mode: .training)
    expectClose(scores, try outputs.tensor("D_out"), 3e-2, "\(name) bf16 D_out")
    _ = try d.forward(fake, labels: fixture.labels, mode: .training)
    let dImages = try d.backward(Tensor(shape: [batch, 1], repeating: -1 / Float(batch)))
    let imageCosine = Self.cosine(nchw(dImages), try outputs.tensor("grad/x_fake"))
    #expect(imageCosine > 0.98, "\(name) bf16 dL/dG_out cosine \(imageCosine)")
    g.zeroGradients()
    try g.backward(dImages)
    for (pname, grad) in StateDict.gradients(of: g) {
      let reference = try outputs.tensor("grad/G/\(pname)")
      // Analytically zero gradients (biases before a batch-norm) are noise.
      if reference.storage.allSatisfy({ abs($0) < 1e-6 }) { continue }
      let c = Self.cosine(grad, reference)
      #expect(c > 0.98, "\(name) bf16 grad G \(pname) cosine \(c)")
    }
  }
}
