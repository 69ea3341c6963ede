import BGKernels
import Testing

@testable import BigGAN

/// `SpectralClamp` on matrices whose singular values are known.
@Suite
struct SpectralClampTests {
  /// `U diag(values) V^T` `[rows, columns]` with random orthonormal `U`, `V`.
  static func matrix(rows: Int, columns: Int, singularValues values: [Float], seed: UInt64) -> Tensor {
    var rng = SeededRandom(seed: seed)
    func orthonormal(_ n: Int, _ length: Int) -> Tensor {
      var t = Tensor(shape: [n, length])
      for i in 0..<t.count { t.storage[i] = rng.normal() }
      SingularValues.orthonormalizeRows(&t)
      return t
    }
    let u = orthonormal(values.count, rows), v = orthonormal(values.count, columns)
    var w = Tensor(shape: [rows, columns])
    for (k, s) in values.enumerated() {
      for i in 0..<rows {
        for j in 0..<columns {
          w.storage[i * columns + j] += s * u.storage[k * rows + i] * v.storage[k * columns + j]
        }
      }
    }
    return w
  }

  /// A linear layer `[rows, columns]` holding `weight`, with the spectral
  /// norm's `u0` (a random start, as a fresh layer's).
  static func layer(_ weight: Tensor) -> Linear {
    var rng = SeededRandom(seed: 7)
    let l = Linear(
      prefix: "l", in: weight.shape[1], out: weight.shape[0], spectralNorm: 1e-6, initialization: .normal(std: 1), rng: &rng)
    l.weight.value = weight
    return l
  }

  @Test("the top singular value drops to the limit, the others stay; below the limit nothing changes")
  func knownSpectrum() throws {
    let values: [Float] = [5, 2, 1, 0.5]
    let l = Self.layer(Self.matrix(rows: 6, columns: 9, singularValues: values, seed: 1))
    // A random start needs more than the clamp's few steps; training's
    // forwards have moved u0 close, as here.
    for _ in 0..<20 { _ = try l.forward(Tensor(shape: [1, 9]), mode: .training) }
    let before = l.weight.value
    #expect(try SpectralClamp.apply(to: l, limit: 6) == 0)
    #expect(l.weight.value == before, "sigma0 5 is below the limit 6")
    #expect(try SpectralClamp.apply(to: l, limit: 3) == 1)
    let after = try SingularValues.top(l.weight.value, count: 4, iterations: 200)
    for (got, want) in zip(after, [3, 2, 1, 0.5] as [Float]) {
      #expect(abs(got - want) <= 1e-4 * 5, "singular values \(after), expected [3, 2, 1, 0.5]")
    }
    #expect(l.bias.map { $0.value == Tensor(shape: [6]) } ?? true, "biases are not clamped")
  }

  @Test("a convolution weight is clamped as spectral norm sees it, [out, k * k * in], with the same bits on 1 and 2 threads")
  func threads() throws {
    let w = try Self.matrix(rows: 16, columns: 3 * 3 * 8, singularValues: [4, 3.5, 1, 0.2], seed: 3).reshaped([16, 3, 3, 8])
    func clamped(_ threads: Int) throws -> Tensor {
      var rng = SeededRandom(seed: 2)
      let c = Conv2d(prefix: "c", in: 8, out: 16, kernel: 3, spectralNorm: 1e-6, initialization: .normal(std: 1), rng: &rng)
      c.weight.value = w
      _ = try Machine.with(threads: threads) { try SpectralClamp.apply(to: c, limit: 2) }
      return c.weight.value
    }
    let one = try clamped(1), two = try clamped(2)
    #expect(one == two)
    // Three steps from a random start on a close gap (4 vs 3.5): the top
    // value comes down a long way, though not all the way to 2.
    let top = try SingularValues.top(one, count: 1, iterations: 300)[0]
    #expect(top < 3.6, "top singular value \(top) after clamping 4 to 2")
  }
}
