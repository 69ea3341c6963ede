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

  /// k x k pooling of `x` in double: the maximum (`countsPadding` nil) or
  /// the mean over the whole window or its pixels inside the image.
  static func referencePool(
    _ x: Tensor, kernel k: Int, stride s: Int, padding p: Int, countsPadding: Bool?
  ) -> [Double] {
    let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
    var out: [Double] = []
    for b in 0..<n {
      for i in 0..<oh {
        for j in 0..<ow {
          for ch in 0..<c {
            let ys = (i * s - p..<i * s - p + k).filter { (0..<h).contains($0) }
            let xs = (j * s - p..<j * s - p + k).filter { (0..<w).contains($0) }
            let values = ys.flatMap { yy in xs.map { Double(x.storage[index(b, yy, $0, h, w, c) + ch]) } }
            if let counts = countsPadding {
              out.append(values.reduce(0, +) / Double(counts ? k * k : values.count))
            } else {
              out.append(values.max()!)
            }
          }
        }
      }
    }
    return out
  }

  @Test("k x k max and average pooling match a double reference; padding never wins a max")
  func generalPools() throws {
    for (n, h, w, c) in [(1, 7, 7, 1), (2, 8, 5, 3), (1, 9, 10, 17)] {
      for (k, s, p) in [(3, 2, 0), (3, 1, 1), (2, 2, 1), (5, 3, 2), (1, 1, 0)] {
        var rng = SplitMix64(seed: UInt64(100 * h + 10 * k + p))
        let x = rng.tensor([n, h, w, c])
        let label = "[\(n),\(h),\(w),\(c)] k\(k) s\(s) p\(p)"
        let expectedShape = [n, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1, c]
        let mx = try maxPool(x, kernel: k, stride: s, padding: p)
        #expect(mx.shape == expectedShape, "\(label)")
        let mxRef = Self.referencePool(x, kernel: k, stride: s, padding: p, countsPadding: nil)
        #expect(mx.storage.map(Double.init) == mxRef, "max \(label)")
        for counts in [true, false] {
          let avg = try averagePool(x, kernel: k, stride: s, padding: p, countsPadding: counts)
          let ref = Self.referencePool(x, kernel: k, stride: s, padding: p, countsPadding: counts)
          let err = zip(avg.storage, ref).map { abs(Double($0) - $1) }.max() ?? 0
          #expect(avg.shape == expectedShape && err <= 1e-6, "average \(label) counts \(counts): \(err)")
        }
      }
    }
    // All pixels negative: a zero from the padding would win any border window.
    let negative = try Tensor(shape: [1, 4, 4, 2], storage: (0..<32).map { -1 - Float($0) })
    let mx = try maxPool(negative, kernel: 3, stride: 1, padding: 1)
    #expect(mx.storage.allSatisfy { $0 < 0 })
    #expect(mx.storage[0] == -1 && mx.storage[1] == -2)
    var withNaN = negative
    withNaN.storage[Self.index(0, 2, 2, 4, 4, 2)] = .nan
    let nanMax = try maxPool(withNaN, kernel: 2, stride: 2)
    #expect(nanMax.storage[Self.index(0, 1, 1, 2, 2, 2)].isNaN && !nanMax.storage[Self.index(0, 1, 1, 2, 2, 2) + 1].isNaN)
  }

  @Test("pools write into a channel slice of a wider output and leave the rest alone")
  func channelSlices() throws {
    var rng = SplitMix64(seed: 8)
    let x = rng.tensor([2, 9, 7, 5])
    var out = Tensor(shape: [2, 4, 3, 12], repeating: 42)
    try maxPool(x, kernel: 3, stride: 2, into: &out, channelOffset: 2)
    try averagePool(x, kernel: 3, stride: 2, countsPadding: false, into: &out, channelOffset: 7)
    let mx = try maxPool(x, kernel: 3, stride: 2)
    let avg = try averagePool(x, kernel: 3, stride: 2, countsPadding: false)
    expectSameBits(try channels(out, 2..<7).storage, mx.storage, "max slice")
    expectSameBits(try channels(out, 7..<12).storage, avg.storage, "average slice")
    #expect(try channels(out, 0..<2).storage.allSatisfy { $0 == 42 })

    #expect(throws: KernelError.self) { try maxPool(x, kernel: 3, stride: 2, into: &out, channelOffset: 8) }
    var wrong = Tensor(shape: [2, 4, 4, 12])
    #expect(throws: KernelError.self) { try averagePool(x, kernel: 3, stride: 2, into: &wrong, channelOffset: 0) }
    #expect(throws: KernelError.self) { try maxPool(x, kernel: 3, stride: 1, padding: 2) }
    #expect(throws: KernelError.self) { try maxPool(x, kernel: 9, stride: 1) }
    #expect(throws: KernelError.self) { try averagePool(x, kernel: 2, stride: 0) }
  }

  @Test("general pools and the global mean give the same bits on 1 and 2 threads")
  func poolThreads() throws {
    var rng = SplitMix64(seed: 21)
    let x = rng.tensor([2, 35, 35, 64])
    func run() throws -> [[Float]] {
      [
        try maxPool(x, kernel: 3, stride: 2).storage,
        try maxPool(x, kernel: 3, stride: 1, padding: 1).storage,
        try averagePool(x, kernel: 3, stride: 1, padding: 1, countsPadding: false).storage,
        try averagePool(x, kernel: 5, stride: 3, padding: 2).storage,
        try globalAveragePool(x).storage,
      ]
    }
    let one = try withThreads(1) { try run() }
    let two = try withThreads(2) { try run() }
    for (i, (a, b)) in zip(one, two).enumerated() { expectSameBits(a, b, "pool \(i)") }
  }

  @Test("global average pooling is the mean over all pixels")
  func globalMean() throws {
    var rng = SplitMix64(seed: 5)
    let x = rng.tensor([3, 5, 7, 17])
    let y = try globalAveragePool(x)
    #expect(y.shape == [3, 17])
    for b in 0..<3 {
      for ch in 0..<17 {
        let mean = (0..<35).reduce(0.0) { $0 + Double(x.storage[(b * 35 + $1) * 17 + ch]) } / 35
        #expect(abs(Double(y.storage[b * 17 + ch]) - mean) <= 1e-6)
      }
    }
    #expect(throws: KernelError.self) { try globalAveragePool(Tensor(shape: [1, 0, 3, 2])) }
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
