import BGKernels
import Foundation
import Testing

@testable import BigGAN

/// Our Adam against `torch.optim.Adam` (fixture written by
/// `tools/adam_fixture.py`) and against PyTorch's formula in double
/// precision.
@Suite(.serialized)
struct AdamTests {
  struct Setting: Decodable {
    let name: String
    let lr: Double
    let beta1: Double
    let beta2: Double
    let eps: Double
  }

  /// The fixture's `fixture` metadata.
  struct Contents: Decodable {
    let steps: Int
    let shapes: [String: [Int]]
    let cases: [Setting]
  }

  static func fixture() throws -> (file: SafeTensorsFile, contents: Contents) {
    let fixtures = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    let file = try SafeTensorsFile(contentsOf: fixtures.appendingPathComponent("adam/adam.safetensors").path)
    let json = try #require(file.metadata["fixture"])
    return (file, try JSONDecoder().decode(Contents.self, from: Data(json.utf8)))
  }

  /// Row `i` of a tensor `[rows, ...]`.
  static func row(_ t: Tensor, _ i: Int) throws -> Tensor {
    let width = t.count / t.shape[0]
    return try Tensor(shape: Array(t.shape.dropFirst()), storage: Array(t.storage[i * width..<(i + 1) * width]))
  }

  static func largestDifference(_ a: Tensor, _ b: Tensor) -> Float {
    a.shape == b.shape ? zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0 : .infinity
  }

  /// Both sides compute in float32 with the same formula and different
  /// roundings: PyTorch forms its step size and 1 - beta2 in double from
  /// the Python floats, we in float32 from float32 hyper-parameters, and
  /// its first moment is a `lerp`. Measured on this fixture (torch 2.15):
  /// parameters within 9.3e-10 after every one of the 10 steps (one ulp of
  /// a parameter near 0.01; most agree bit for bit). The tolerance, 2.5e-7,
  /// is one ulp of the largest parameter (2.06: 2.4e-7), so a rounding that
  /// tips the other way anywhere still passes, and it is far below what a
  /// formula error moves a parameter (measured with the kernel broken on
  /// purpose, smallest case): without the second moment's bias correction
  /// the first step is 1 / sqrt(1 - 0.999) = 31.6 times too large (1.5e-3),
  /// without the first moment's (beta1 0.9) ten times too small (4.5e-5 at
  /// lr 5e-5), and eps inside the square root (sqrt(1e-8) = 1e-4) shrinks
  /// the steps of the gradients below about 1e-4 (4.9e-5).
  static let parameterTolerance: Float = 2.5e-7
  /// Relative to each moment's largest entry. The first moments agree to
  /// 3.2e-7 (3 ulps). The second differ by 1.3e-5 everywhere: our 1 - beta2
  /// is 1 - 0.999f = 0.00099998713, PyTorch's 0.001 (1 - 0.999 in double,
  /// then rounded); each side's bias correction is formed from its own
  /// beta2 (1 - 0.999f^t here, 1 - 0.999^t there) and divides the
  /// difference back out of the step.
  static let momentTolerance = (first: Float(1e-6), second: Float(2e-5))

  @Test("10 steps match torch.optim.Adam: the recipe's learning rates, beta1 0 and 0.9, eps 1e-8")
  func torchParity() throws {
    let (file, contents) = try Self.fixture()
    let names = contents.shapes.keys.sorted()
    #expect(contents.cases.count == 4 && contents.steps == 10 && names == ["p0", "p1"])
    for setting in contents.cases {
      let parameters = try names.map { Parameter($0, try file.tensor("initial.\($0)", shape: contents.shapes[$0]!)) }
      let adam = Adam(
        parameters: parameters, learningRate: Float(setting.lr), beta1: Float(setting.beta1),
        beta2: Float(setting.beta2), epsilon: Float(setting.eps))
      for step in 0..<contents.steps {
        for p in parameters { p.gradient = try Self.row(try file.tensor("gradient.\(p.name)"), step) }
        try adam.update()
        for p in parameters {
          let expected = try Self.row(try file.tensor("\(setting.name).parameter.\(p.name)"), step)
          let worst = Self.largestDifference(p.value, expected)
          #expect(worst <= Self.parameterTolerance, "\(setting.name) step \(step + 1) \(p.name): max abs difference \(worst)")
        }
      }
      for (i, p) in parameters.enumerated() {
        for (ours, theirs, tolerance) in [(adam.m[i], "exp_avg", Self.momentTolerance.first), (adam.v[i], "exp_avg_sq", Self.momentTolerance.second)] {
          let expected = try file.tensor("\(setting.name).\(theirs).\(p.name)")
          let scale = expected.storage.map(abs).max() ?? 0
          let worst = Self.largestDifference(ours, expected)
          #expect(scale > 0 && worst <= tolerance * scale, "\(setting.name) \(theirs) \(p.name): \(worst) of \(scale)")
        }
      }
    }
  }

  @Test("each step follows PyTorch's formula in double precision, on odd sizes and across the threads' split")
  func formula() throws {
    // 65,537 and 131,075 elements: one and two threads' shares of the kernel.
    for n in [1, 7, 33, 65_537, 131_075] {
      for beta1: Float in [0, 0.9] {
        var rng = SeededRandom(seed: UInt64(n) &* 31 &+ (beta1 == 0 ? 0 : 1))
        var value = Tensor(shape: [n])
        for i in 0..<n { value.storage[i] = rng.normal() }
        let p = Parameter("w", value)
        let (lr, beta2, eps): (Float, Float, Float) = (2e-4, 0.999, 1e-8)
        let adam = Adam(parameters: [p], learningRate: lr, beta1: beta1, beta2: beta2, epsilon: eps)
        for step in 1...4 {
          // Gradients over nine decades, some below eps.
          var g = Tensor(shape: [n])
          for i in 0..<n { g.storage[i] = rng.normal() * Float(pow(10, -9 * Double(rng.uniform()))) }
          p.gradient = g
          let (p0, m0, v0) = (p.value, adam.m[0], adam.v[0])
          try adam.update()
          let (b1, b2) = (Double(beta1), Double(beta2))
          let correction1 = 1 - pow(b1, Double(step)), correction2 = 1 - pow(b2, Double(step))
          // Each error over its bound: the moments from the previous
          // state, the parameter from the new moments, each to a few
          // float32 roundings of its terms (half an ulp of the parameter
          // for its own rounding).
          var worst = (m: 0.0, v: 0.0, p: 0.0)
          let rounding = Double(Float.ulpOfOne)
          for i in 0..<n {
            let gi = Double(g.storage[i])
            let mTerms = (b1 * Double(m0.storage[i]), (1 - b1) * gi)
            let vTerms = (b2 * Double(v0.storage[i]), (1 - b2) * gi * gi)
            let m = mTerms.0 + mTerms.1, v = vTerms.0 + vTerms.1
            let (mOurs, vOurs) = (Double(adam.m[0].storage[i]), Double(adam.v[0].storage[i]))
            let update = Double(lr) / correction1 * mOurs / (vOurs.squareRoot() / correction2.squareRoot() + Double(eps))
            let expected = Double(p0.storage[i]) - update
            let mBound = 2 * rounding * (abs(mTerms.0) + abs(mTerms.1)), vBound = 3 * rounding * v
            let pBound = Double(Float(expected).ulp) / 2 + 8 * rounding * abs(update)
            worst.m = max(worst.m, abs(mOurs - m) / max(mBound, .leastNonzeroMagnitude))
            worst.v = max(worst.v, abs(vOurs - v) / max(vBound, .leastNonzeroMagnitude))
            worst.p = max(worst.p, abs(Double(p.value.storage[i]) - expected) / pBound)
          }
          #expect(worst.m <= 1 && worst.v <= 1 && worst.p <= 1, "n \(n) beta1 \(beta1) step \(step): errors over bounds \(worst)")
        }
      }
    }
  }
}
