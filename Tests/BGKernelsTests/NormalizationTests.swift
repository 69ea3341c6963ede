import CKernels
import Testing

@testable import BGKernels

/// Batch-norm kernels against double-precision formulas, plus finite
/// differences of the backward.
@Suite(.serialized)
struct NormalizationTests {
  struct Case {
    var n, hw, c: Int
    var x, gain, bias, dy: [Float]
    var conditional: Bool

    init(n: Int, hw: Int, c: Int, conditional: Bool, seed: UInt64) {
      var rng = SplitMix64(seed: seed)
      self.n = n; self.hw = hw; self.c = c; self.conditional = conditional
      x = rng.array(n * hw * c).map { 3 * $0 + 0.5 }
      let g = conditional ? n * c : c
      gain = rng.array(g).map { 1 + 0.5 * $0 }
      bias = rng.array(g)
      dy = rng.array(n * hw * c)
    }

    var stride: Int32 { conditional ? Int32(c) : 0 }

    func stats() -> (mean: [Float], variance: [Float]) {
      var mean = [Float](repeating: 0, count: c), variance = mean
      bk_bn_stats(Int32(n * hw), Int32(c), x, &mean, &variance)
      return (mean, variance)
    }

    func forward(relu: Bool, eps: Float = 1e-5) -> [Float] {
      let (mean, variance) = stats()
      var y = [Float](repeating: 0, count: x.count)
      bk_bn_forward(
        Int32(n), Int32(hw), Int32(c), x, mean, variance, eps, gain, bias, stride,
        relu ? 1 : 0, &y)
      return y
    }

    /// Loss sum(dy * y) in double, for finite differences.
    func loss(relu: Bool) -> Double {
      zip(forward(relu: relu), dy).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
  }

  /// Mean and sum of squared deviations of channel `j` of `x` `[rows][c]`,
  /// in double.
  static func columnMoments(_ x: [Float], rows: Int, c: Int, _ j: Int) -> (mean: Double, m2: Double) {
    let column = (0..<rows).map { Double(x[$0 * c + j]) }
    let m = column.reduce(0, +) / Double(rows)
    return (m, column.reduce(0) { $0 + ($1 - m) * ($1 - m) })
  }

  @Test("statistics are the per-channel mean and biased variance")
  func statistics() {
    for (rows, c) in [(1, 1), (3, 17), (129, 5), (1000, 33)] {
      var rng = SplitMix64(seed: UInt64(rows * c))
      let x = rng.array(rows * c).map { 10 + $0 }
      var mean = [Float](repeating: 0, count: c), variance = mean
      bk_bn_stats(Int32(rows), Int32(c), x, &mean, &variance)
      for j in 0..<c {
        let (m, q) = Self.columnMoments(x, rows: rows, c: c, j)
        let v = q / Double(rows)
        #expect(abs(Double(mean[j]) - m) <= 1e-6 * abs(m))
        #expect(abs(Double(variance[j]) - v) <= 1e-5 * v + 1e-12)
      }
    }
  }

  @Test("forward normalises, then applies per-sample or per-channel gain and bias, then ReLU")
  func forward() {
    for conditional in [false, true] {
      let k = Case(n: 3, hw: 5, c: 7, conditional: conditional, seed: 3)
      let (mean, variance) = k.stats()
      for relu in [false, true] {
        let y = k.forward(relu: relu)
        for s in 0..<k.n {
          for p in 0..<k.hw {
            for j in 0..<k.c {
              let i = (s * k.hw + p) * k.c + j, g = conditional ? s * k.c + j : j
              var e = (Double(k.x[i]) - Double(mean[j])) / (Double(variance[j]) + 1e-5).squareRoot()
              e = e * Double(k.gain[g]) + Double(k.bias[g])
              if relu { e = max(e, 0) }
              #expect(abs(Double(y[i]) - e) <= 1e-5 * (1 + abs(e)))
            }
          }
        }
      }
    }
  }

  @Test("backward matches finite differences for x, gain and bias, with and without ReLU")
  func backward() {
    for conditional in [false, true] {
      for relu in [false, true] {
        var k = Case(n: 2, hw: 3, c: 4, conditional: conditional, seed: 11)
        let (mean, variance) = k.stats()
        let y = k.forward(relu: relu)
        var dx = [Float](repeating: 0, count: k.x.count)
        var dgain = [Float](repeating: 0, count: k.gain.count), dbias = dgain
        bk_bn_backward(
          Int32(k.n), Int32(k.hw), Int32(k.c), k.x, mean, variance, 1e-5, k.gain, k.bias, k.stride,
          relu ? 1 : 0, k.dy, 1, &dx, &dgain, &dbias)
        let h: Float = 1e-2
        func numeric(_ path: WritableKeyPath<Case, [Float]>, _ i: Int) -> Double {
          let keep = k[keyPath: path][i]
          k[keyPath: path][i] = keep + h
          let up = k.loss(relu: relu)
          k[keyPath: path][i] = keep - h
          let down = k.loss(relu: relu)
          k[keyPath: path][i] = keep
          return (up - down) / Double(2 * h)
        }
        for i in 0..<k.x.count where !relu || abs(y[i]) > 0.05 {
          #expect(abs(Double(dx[i]) - numeric(\.x, i)) <= 2e-3, "dx[\(i)] relu \(relu)")
        }
        for i in 0..<k.gain.count {
          #expect(abs(Double(dgain[i]) - numeric(\.gain, i)) <= 2e-3, "dgain[\(i)]")
          #expect(abs(Double(dbias[i]) - numeric(\.bias, i)) <= 2e-3, "dbias[\(i)]")
        }
      }
    }
  }

  @Test("moments are the per-channel mean and sum of squared deviations, in double")
  func moments() {
    for (rows, c) in [(1, 1), (3, 17), (129, 5), (1000, 33)] {
      var rng = SplitMix64(seed: UInt64(rows * c + 1))
      let x = rng.array(rows * c).map { 10 + $0 }
      var mean = [Double](repeating: 0, count: c), m2 = mean
      bk_bn_moments(Int32(rows), Int32(c), x, &mean, &m2)
      for j in 0..<c {
        let (m, q) = Self.columnMoments(x, rows: rows, c: c, j)
        #expect(abs(mean[j] - m) <= 1e-13 * abs(m))
        #expect(abs(m2[j] - q) <= 1e-11 * q + 1e-13)
      }
    }
  }

  @Test("the split backward (sums, then dx from their means) gives the fused backward's bits, 1 and 2 threads")
  func splitBackward() {
    for (n, hw, c, conditional) in [(1, 1, 1, false), (3, 5, 17, true), (8, 64, 96, true), (2, 9, 129, false)] {
      let k = Case(n: n, hw: hw, c: c, conditional: conditional, seed: UInt64(n * c))
      let (mean, variance) = k.stats()
      let rows = Double(n * hw)
      func fused() -> [Float] {
        var dx = [Float](repeating: 0, count: k.x.count), dg = [Float](repeating: 0, count: k.gain.count), db = dg
        bk_bn_backward(
          Int32(n), Int32(hw), Int32(c), k.x, mean, variance, 1e-5, k.gain, k.bias, k.stride, 1, k.dy, 1, &dx,
          &dg, &db)
        return dx + dg + db
      }
      func split() -> [Float] {
        var sum = [Double](repeating: 0, count: c), sumXhat = sum
        var dx = [Float](repeating: 0, count: k.x.count), dg = [Float](repeating: 0, count: k.gain.count), db = dg
        bk_bn_backward_sums(
          Int32(n), Int32(hw), Int32(c), k.x, mean, variance, 1e-5, k.gain, k.bias, k.stride, 1, k.dy, &sum,
          &sumXhat, &dg, &db)
        let md = sum.map { Float($0 / rows) }, mdx = sumXhat.map { Float($0 / rows) }
        bk_bn_backward_input(
          Int32(n), Int32(hw), Int32(c), k.x, mean, variance, 1e-5, k.gain, k.bias, k.stride, 1, k.dy, md, mdx,
          &dx)
        return dx + dg + db
      }
      expectSameBits(withThreads(1, fused), withThreads(1, split), "split backward \(n)x\(hw)x\(c)")
      expectSameBits(withThreads(1, split), withThreads(2, split), "split backward threads \(n)x\(hw)x\(c)")
    }
  }

  @Test("with running statistics the input gradient is dy * gain / sqrt(var + eps)")
  func runningStatistics() {
    let k = Case(n: 2, hw: 4, c: 3, conditional: true, seed: 5)
    let mean: [Float] = [0.1, -0.2, 0.3], variance: [Float] = [1.5, 0.5, 2]
    var dx = [Float](repeating: 0, count: k.x.count)
    bk_bn_backward(
      Int32(k.n), Int32(k.hw), Int32(k.c), k.x, mean, variance, 1e-4, k.gain, k.bias, k.stride, 0,
      k.dy, 0, &dx, nil, nil)
    for i in 0..<dx.count {
      let s = i / (k.hw * k.c), j = i % k.c
      let e = Double(k.dy[i]) * Double(k.gain[s * k.c + j]) / (Double(variance[j]) + 1e-4).squareRoot()
      #expect(abs(Double(dx[i]) - e) <= 1e-6 * (1 + abs(e)))
    }
  }

  @Test("the fused ReLU's mask, recomputed from x, stops the gradient exactly where the forward's output is zero")
  func reluMask() {
    for conditional in [false, true] {
      for batchStatistics in [true, false] {
        var k = Case(n: 3, hw: 7, c: 17, conditional: conditional, seed: 21)
        let (mean, variance) = k.stats()
        // Biases that put some pre-activations at 0, -0 and one ulp either
        // side, where a recomputation that rounds otherwise would differ.
        for s in 0..<k.n {
          for j in 0..<k.c where j % 3 == 0 {
            let i = (s * k.hw + j % k.hw) * k.c + j, g = conditional ? s * k.c + j : j
            let rstd = 1 / (variance[j] + 1e-5).squareRoot()
            let scaled = (k.x[i] - mean[j]) * rstd * k.gain[g]
            k.bias[g] = [-scaled, -scaled.nextUp, -scaled.nextDown][(s + j) % 3]
          }
        }
        let y = k.forward(relu: true)
        #expect(y.contains(0) && y.contains { $0 > 0 && $0 < 1e-5 }, "the case reaches the edge")
        func backward(relu: Bool, _ dy: [Float]) -> [Float] {
          var dx = [Float](repeating: 0, count: k.x.count), dg = [Float](repeating: 0, count: k.gain.count)
          var db = dg
          bk_bn_backward(
            Int32(k.n), Int32(k.hw), Int32(k.c), k.x, mean, variance, 1e-5, k.gain, k.bias, k.stride,
            relu ? 1 : 0, dy, batchStatistics ? 1 : 0, &dx, &dg, &db)
          return dx + dg + db
        }
        let masked = zip(k.dy, y).map { $1 > 0 ? $0 : 0 }
        expectSameBits(
          backward(relu: true, k.dy), backward(relu: false, masked),
          "mask, conditional \(conditional), batch statistics \(batchStatistics)")
      }
    }
  }

  @Test("one and two threads give identical bits")
  func threads() {
    let k = Case(n: 8, hw: 64, c: 96, conditional: true, seed: 2)
    func run() -> [Float] {
      let (mean, variance) = k.stats()
      let y = k.forward(relu: true)
      var dx = [Float](repeating: 0, count: k.x.count), dg = [Float](repeating: 0, count: k.gain.count)
      var db = dg
      bk_bn_backward(
        Int32(k.n), Int32(k.hw), Int32(k.c), k.x, mean, variance, 1e-5, k.gain, k.bias, k.stride, 1,
        k.dy, 1, &dx, &dg, &db)
      return mean + variance + y + dx + dg + db
    }
    expectSameBits(withThreads(1, run), withThreads(2, run), "batch-norm")
  }
}
