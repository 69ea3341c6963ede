import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// pytorch-pretrained-BigGAN's BigGAN-deep with random weights at a reduced
/// width, converted by `tools/convert_pretrained.py` (fixture made by
/// `tools/pretrained_parity.py --fixture`): our generator, loaded from the
/// converted file, draws its images for the same latents, class vectors and
/// truncations.
@Suite(.serialized)
struct PretrainedParityTests {
  static func fixture(_ name: String) throws -> SafeTensorsFile {
    let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return try SafeTensorsFile(contentsOf: fixtures.appendingPathComponent("pretrained/deep128-tiny/\(name)").path)
  }

  /// The converted generator of the fixture.
  static func loaded() throws -> Generator {
    let file = try fixture("G.safetensors")
    let g = try Generator(try Checkpoint.configuration(of: file), seed: 0, initialization: .zeros)
    try StateDict.load(g, from: file)
    return g
  }

  static func sampleCount() throws -> Int { try fixture("inputs.safetensors").tensor("z").shape[0] }

  static func largestDifference(_ a: Tensor, _ b: Tensor) -> Float {
    a.shape == b.shape ? zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0 : .infinity
  }

  /// The truncation as the reference got it: the decimal a user types
  /// (0.4), not the float32 the file stores (0.4000000059...), whose
  /// statistics row can differ.
  static func truncation(_ stored: Float) throws -> Double {
    try #require(Double("\(stored)"))
  }

  /// Sample i of the fixture, alone, at its own truncation.
  static func generate(_ g: Generator, sample i: Int) throws -> (ours: Tensor, reference: Tensor) {
    let inputs = try fixture("inputs.safetensors"), expected = try fixture("expected.safetensors")
    let z = try inputs.tensor("z"), y = try inputs.tensor("y"), t = try inputs.tensor("truncation")
    let images = try expected.tensor("images")
    func row(_ x: Tensor) throws -> Tensor {
      let w = x.count / x.shape[0]
      return try Tensor(shape: [1] + Array(x.shape.dropFirst()), storage: Array(x.storage[i * w..<(i + 1) * w]))
    }
    g.truncation = try truncation(t.storage[i])
    let zi = try row(z), yi = try row(y)
    return (try g.forward(z: zi, classVectors: yi, mode: .evaluation), try row(images))
  }

  @Test("converted weights load, and every sample matches pytorch-pretrained-BigGAN to 1e-4 in fp32")
  func fp32() throws {
    let g = try Self.loaded()
    let config = g.configuration
    #expect(config.architecture == .deep && !config.spectralNorm && config.statisticsRows == 51)
    for i in 0..<(try Self.sampleCount()) {
      let (ours, reference) = try Self.generate(g, sample: i)
      let worst = Self.largestDifference(ours, reference)
      #expect(worst <= 1e-4, "sample \(i): max abs difference \(worst)")
      // The images must carry signal, or the comparison proves little.
      let spread = reference.storage.map(abs).reduce(0, +) / Float(reference.count)
      #expect(spread > 0.05, "sample \(i): reference mean |x| \(spread)")
    }
  }

  @Test("the linear statistics blend differs from the reference's where it should, and only there")
  func blends() throws {
    let g = try Self.loaded()
    g.statisticsBlend = .linear
    let t = try Self.fixture("inputs.safetensors").tensor("truncation")
    for i in 0..<t.count {
      let (ours, reference) = try Self.generate(g, sample: i)
      let worst = Self.largestDifference(ours, reference)
      // The weight each blend gives the lower row: equal on an exact grid
      // value (0.4) and half-way; apart where the reference's weights are
      // swapped or its rounding steps past a grid value (0.28).
      let q = try Self.truncation(t.storage[i]) / (1.0 / 50), frac = q - q.rounded(.down)
      let pretrainedWeight = frac == 0 ? 1 : frac, linearWeight = frac < 1e-9 ? 1 : 1 - frac
      if abs(pretrainedWeight - linearWeight) < 1e-3 {
        #expect(worst <= 1e-4, "truncation \(t.storage[i])")
      } else {
        #expect(worst > 1e-3, "truncation \(t.storage[i]): the blends should differ")
      }
    }
  }

  @Test("bf16: every sample within 1e-2 of the fp32 reference (operands rounded to bf16; 2e-3 to 4e-3 measured at full width)")
  func bf16() throws {
    let g = try Self.loaded()
    g.precision = .bf16
    for i in 0..<(try Self.sampleCount()) {
      let (ours, reference) = try Self.generate(g, sample: i)
      let worst = Self.largestDifference(ours, reference)
      #expect(worst <= 1e-2, "sample \(i): max abs difference \(worst)")
    }
  }
}
