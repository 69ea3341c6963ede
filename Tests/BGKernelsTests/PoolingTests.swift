import CKernels
import Foundation
import Testing

@testable import BGKernels

@Suite(.serialized)
struct PoolingTests {
  static func index(_ b: Int, _ y: Int, _ x: Int, _ h: Int, _ w: Int, _ c: Int) -> Int {
    ((b * h + y) * w + x) * c
  }

  @Test("2x2 average and max pooling, odd sizes dropping the last row and column")
  func forward() {
    for (n, h, w, c) in [(1, 2, 2, 1), (2, 5, 7, 3), (3, 8, 8, 17)] {
      var rng = SplitMix64(seed: UInt64(h * w))
      let x = rng.array(n * h * w * c)
      let (oh, ow) = (h / 2, w / 2)
      var avg = [Float](repeating: 0, count: n * oh * ow * c), mx = avg
      var arg = [UInt8](repeating: 9, count: avg.count)
      bk_avgpool2x2_forward(Int32(n), Int32(h), Int32(w), Int32(c), x, &avg)
      bk_maxpool2x2_forward(Int32(n), Int32(h), Int32(w), Int32(c), x, &mx, &arg)
      for b in 0..<n {
        for i in 0..<oh {
          for j in 0..<ow {
            for k in 0..<c {
              let window = [(0, 0), (0, 1), (1, 0), (1, 1)].map {
                x[Self.index(b, 2 * i + $0.0, 2 * j + $0.1, h, w, c) + k]
              }
              let o = Self.index(b, i, j, oh, ow, c) + k
              #expect(abs(avg[o] - window.reduce(0, +) / 4) <= 1e-6)
              #expect(mx[o] == window.max())
              #expect(window[Int(arg[o])] == mx[o])
            }
          }
        }
      }
    }
  }

  @Test("pooling, sum pooling and upsampling backwards are the adjoints of their forwards")
  func adjoints() {
    // <dy, f(x)> == <f^T(dy), x> for linear f; max pooling is linear for a
    // fixed argmax.
    let (n, h, w, c) = (2, 6, 5, 3)
    var rng = SplitMix64(seed: 4)
    let x = rng.array(n * h * w * c)
    let small = n * (h / 2) * (w / 2) * c
    let dy = rng.array(small)
    func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }
    let dims = (Int32(n), Int32(h), Int32(w), Int32(c))

    var y = [Float](repeating: 0, count: small), dx = [Float](repeating: 0, count: x.count)
    bk_avgpool2x2_forward(dims.0, dims.1, dims.2, dims.3, x, &y)
    bk_avgpool2x2_backward(dims.0, dims.1, dims.2, dims.3, dy, &dx)
    #expect(abs(dot(dy, y) - dot(dx, x)) <= 1e-5)

    var arg = [UInt8](repeating: 0, count: small)
    bk_maxpool2x2_forward(dims.0, dims.1, dims.2, dims.3, x, &y, &arg)
    bk_maxpool2x2_backward(dims.0, dims.1, dims.2, dims.3, dy, arg, &dx)
    #expect(abs(dot(dy, y) - dot(dx, x)) <= 1e-5)
    #expect(dx.filter { $0 != 0 }.count == small)

    let big = rng.array(n * 2 * h * 2 * w * c)
    var up = [Float](repeating: 0, count: big.count), down = [Float](repeating: 0, count: x.count)
    bk_upsample2x_forward(dims.0, dims.1, dims.2, dims.3, x, &up)
    bk_upsample2x_backward(dims.0, dims.1, dims.2, dims.3, big, &down)
    #expect(abs(dot(big, up) - dot(down, x)) <= 1e-4)
    #expect(up[Self.index(1, 3, 5, 2 * h, 2 * w, c) + 2] == x[Self.index(1, 1, 2, h, w, c) + 2])

    var sums = [Float](repeating: 0, count: n * c), spread = [Float](repeating: 0, count: x.count)
    let ds = rng.array(n * c)
    bk_sumpool_forward(dims.0, Int32(h * w), dims.3, x, &sums)
    bk_sumpool_backward(dims.0, Int32(h * w), dims.3, ds, &spread)
    #expect(abs(dot(ds, sums) - dot(spread, x)) <= 1e-4)
    #expect(abs(Double(sums[c + 1]) - (0..<(h * w)).reduce(0) { $0 + Double(x[(h * w + $1) * c + 1]) }) <= 1e-5)
  }

  @Test("ReLU and tanh backward use the forward input and output")
  func elementwise() {
    let x: [Float] = [-2, -0.0, 0, 0.5, 3]
    var y = [Float](repeating: 9, count: 5), dx = y
    bk_relu_forward(5, x, &y)
    #expect(y == [0, 0, 0, 0.5, 3])
    bk_relu_backward(5, x, [1, 1, 1, 1, 1], &dx)
    #expect(dx == [0, 0, 0, 1, 1])
    bk_tanh_forward(5, x, &y)
    #expect(abs(y[4] - tanhf(3)) <= 1e-7)
    bk_tanh_backward(5, y, [2, 2, 2, 2, 2], &dx)
    #expect(abs(dx[0] - 2 * (1 - tanhf(-2) * tanhf(-2))) <= 1e-6)
    var acc: [Float] = [1, 2, 3, 4, 5]
    bk_axpy(5, 2, x, &acc)
    #expect(acc == [-3, 2, 3, 5, 11])
    bk_add(5, acc, x, &acc)
    #expect(acc == [-5, 2, 3, 5.5, 14])
  }
}
