import CKernels
import Testing

@testable import BGKernels

/// One GEMM problem with its strides, data and the double-precision oracle.
private struct Problem {
  var m, n, k: Int
  var transA, transB: Bool
  var lda, ldb, ldc: Int
  var alpha, beta: Float
  var a, b, c: [Float]

  init(
    _ m: Int, _ n: Int, _ k: Int, transA: Bool = false, transB: Bool = false,
    pad: Int = 0, alpha: Float = 1, beta: Float = 0, seed: UInt64 = 1
  ) {
    self.m = m; self.n = n; self.k = k
    self.transA = transA; self.transB = transB
    self.alpha = alpha; self.beta = beta
    lda = (transA ? m : k) + pad
    ldb = (transB ? k : n) + pad
    ldc = n + pad
    var rng = SplitMix64(seed: seed)
    a = rng.array((transA ? k : m) * lda + 1)
    b = rng.array((transB ? n : k) * ldb + 1)
    c = rng.array(m * ldc + 1)
  }

  func elementA(_ i: Int, _ p: Int) -> Float { transA ? a[p * lda + i] : a[i * lda + p] }
  func elementB(_ p: Int, _ j: Int) -> Float { transB ? b[j * ldb + p] : b[p * ldb + j] }

  /// Runs `bk_gemm` (or the scalar contract reference) on a copy of C.
  func run(_ precision: Precision, reference: Bool = false) -> [Float] {
    var out = c
    let f = reference ? bk_gemm_reference : bk_gemm
    a.withUnsafeBufferPointer { pa in
      b.withUnsafeBufferPointer { pb in
        out.withUnsafeMutableBufferPointer { pc in
          f(
            precision == .fp32 ? BK_FP32 : BK_BF16, transA ? 1 : 0, transB ? 1 : 0,
            Int32(m), Int32(n), Int32(k), alpha, pa.baseAddress, Int32(lda),
            pb.baseAddress, Int32(ldb), beta, pc.baseAddress, Int32(ldc))
        }
      }
    }
    return out
  }

  /// Checks `out` against a double-precision evaluation. The fp32 result of
  /// a dot product of length k carries at most ~k * 2^-24 * sum |a b| of
  /// rounding error (each fmaf rounds once); with 128-deep passes the bound
  /// is smaller still, so 2 k u sum|ab| is a safe, still meaningful limit.
  /// With `roundedOperands` the oracle sees the bf16-rounded inputs.
  func expectClose(_ out: [Float], roundedOperands: Bool = false) {
    let u = 1.0 / Double(1 << 24)
    var worst = 0.0
    for i in 0..<m {
      for j in 0..<n {
        var sum = 0.0, magnitude = 0.0
        for p in 0..<k {
          var x = elementA(i, p), y = elementB(p, j)
          if roundedOperands { x = BFloat16.rounded(x); y = BFloat16.rounded(y) }
          sum += Double(x) * Double(y)
          magnitude += abs(Double(x) * Double(y))
        }
        let old = Double(c[i * ldc + j])
        let expected = Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * old)
        let bound = 2 * Double(k + 2) * u * (abs(Double(alpha)) * magnitude + abs(Double(beta) * old)) + 1e-30
        let error = abs(Double(out[i * ldc + j]) - expected)
        worst = max(worst, error / bound)
      }
    }
    #expect(worst <= 1, "error \(worst) x the bound for m \(m) n \(n) k \(k) tA \(transA) tB \(transB)")
    // Elements outside the m x n window (padding) stay untouched.
    for i in 0..<m {
      for j in n..<ldc { #expect(out[i * ldc + j] == c[i * ldc + j]) }
    }
    #expect(out.last == c.last)
  }
}

@Suite(.serialized)
struct GEMMTests {
  static let shapes: [(Int, Int, Int)] = [
    (1, 1, 1), (2, 3, 1), (3, 2, 7), (7, 17, 3), (17, 7, 33), (33, 33, 33),
    (1, 129, 17), (129, 1, 17), (129, 17, 129), (13, 31, 257), (257, 257, 2),
    (64, 96, 300),
  ]

  @Test("fp32 GEMM matches a double-precision oracle for every transpose and odd sizes")
  func fp32AgainstDouble() {
    for (m, n, k) in Self.shapes {
      for tA in [false, true] {
        for tB in [false, true] {
          let p = Problem(m, n, k, transA: tA, transB: tB, seed: UInt64(m * 1000 + n + k))
          p.expectClose(p.run(.fp32))
        }
      }
    }
  }

  @Test("every path matches the scalar contract reference bit for bit, in both precisions")
  func pathsMatchContract() {
    let cases: [(Int, Int, Int, Int, Float, Float)] = [
      (1, 1, 1, 0, 1, 0), (3, 17, 129, 3, 0.5, 1), (17, 33, 257, 1, -2, 0.25),
      (129, 7, 3, 5, 1, -1), (257, 45, 130, 0, 0.75, 0), (40, 257, 128, 2, 1, 1),
    ]
    forEachInstructionSet { isa in
      for (m, n, k, pad, alpha, beta) in cases {
        for tA in [false, true] {
          for tB in [false, true] {
            let p = Problem(m, n, k, transA: tA, transB: tB, pad: pad, alpha: alpha, beta: beta)
            for precision in Precision.allCases {
              let ours = p.run(precision), oracle = p.run(precision, reference: true)
              expectSameBits(ours, oracle, "\(isa) \(precision) m \(m) n \(n) k \(k) tA \(tA) tB \(tB)")
            }
          }
        }
      }
    }
  }

  @Test("bf16 mode equals a double product of the bf16-rounded operands")
  func bf16Rounding() {
    for (m, n, k) in [(5, 9, 300), (33, 17, 129), (2, 40, 1)] {
      for tA in [false, true] {
        let p = Problem(m, n, k, transA: tA, transB: !tA, alpha: 1.5, beta: 0.5)
        let out = p.run(.bf16)
        p.expectClose(out, roundedOperands: true)
        // and it differs from fp32: the rounding really happens
        if k > 8 { #expect(out != p.run(.fp32)) }
      }
    }
  }

  /// Operands below 2^-55 make products whose partial sums fall below 2^-126,
  /// where the contract flushes as the dot instructions do; the AMX and
  /// AVX512_BF16 paths run the instructions themselves, so agreeing with the
  /// reference there shows the reference models the hardware.
  @Test("bf16 groups: flushes, the 2^-126 boundary, separate even and odd chains and tails agree on every path")
  func bf16PairEdges() {
    // Row 0 x column 0, even chain: 2^-126, + 2^-149, + -1.5 * 2^-149: the
    // exact 2^-126 - 2^-150, which fmaf rounds up to 2^-126 and the hardware
    // flushes. Row 1 x column 1: the even chain 1 + 2^-30 - 1 loses the
    // 2^-30 that the odd chain keeps, so the sum is 2^-30 (one chain in k
    // order would give 0).
    var edge = Problem(2, 2, 5, beta: 1)
    edge.a = [0x1p-63, 0, 0x1p-75, 0, -0x1.8p-75, 1, 0x1p-15, 0x1p-15, 0, -1, 0]
    edge.b = [0x1p-63, 1, 0, 0x1p-15, 0x1p-74, 0x1p-15, 0, 0, 0x1p-74, 1, 0]
    edge.c = [0, 0, 0, 0, 0]
    let oracle = edge.run(.bf16, reference: true)
    #expect(oracle[0] == 0, "the boundary flushes: \(oracle[0])")
    #expect(oracle[3] == 0x1p-30, "the chains are summed apart: \(oracle[3])")
    var tiny = Problem(13, 37, 131, transB: true, beta: 0.5, seed: 9)
    var rng = SplitMix64(seed: 10)
    let scale = { (x: Float) -> Float in x * Float(sign: .plus, exponent: -56 - Int(rng.next() % 12), significand: 1) }
    tiny.a = tiny.a.map(scale)
    tiny.b = tiny.b.map(scale)
    tiny.c = tiny.c.map { $0 * 0x1p-120 }
    // One tiny row and column in otherwise plain operands: only their tiles
    // need the flush.
    var mixed = Problem(50, 70, 300, transA: true, alpha: 2, seed: 11)
    for p in 0..<300 { mixed.a[p * mixed.lda + 37] *= 0x1p-64 }
    for p in 0..<300 { mixed.b[p * mixed.ldb + 45] *= 0x1p-64 }
    forEachInstructionSet { isa in
      for (name, p) in [("edge", edge), ("tiny", tiny), ("mixed", mixed)] {
        let reference = p.run(.bf16, reference: true)
        for threads in [1, 2] {
          let ours = withThreads(threads) { p.run(.bf16) }
          expectSameBits(ours, reference, "\(isa) \(name) \(threads) threads")
        }
      }
    }
  }

  @Test("alpha and beta follow the BLAS rules: beta 0 ignores C, alpha 0 or k 0 skips A B")
  func alphaBeta() {
    for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25), (0, 3), (1, -1)] {
      let p = Problem(19, 21, 23, pad: 2, alpha: alpha, beta: beta)
      p.expectClose(p.run(.fp32))
    }
    var p = Problem(9, 11, 5, pad: 1, beta: 0)
    p.c = p.c.map { _ in .nan }
    let out = p.run(.fp32)
    for i in 0..<9 { for j in 0..<11 { #expect(!out[i * p.ldc + j].isNaN) } }
    var q = Problem(4, 6, 0, alpha: 1, beta: 2)
    q.a = [0]; q.b = [0]
    #expect(q.run(.fp32).prefix(6) == q.c.prefix(6).map { 2 * $0 }[...])
    var r = Problem(4, 6, 3, alpha: 0, beta: 1)
    r.a = r.a.map { _ in .infinity }
    #expect(r.run(.bf16) == r.c)
  }

  @Test("empty problems touch nothing")
  func empty() {
    for (m, n) in [(0, 5), (5, 0), (0, 0)] {
      var c: [Float] = [7, 7]
      let x: [Float] = [1, 2]
      bk_gemm(BK_FP32, 0, 0, Int32(m), Int32(n), 3, 1, x, 3, x, 5, 0, &c, 5)
      #expect(c == [7, 7])
    }
  }

  @Test("one and two threads give identical bits, on every path")
  func threadIndependence() {
    forEachInstructionSet { isa in
      for (m, n, k) in [(300, 200, 260), (24, 1000, 129), (1000, 16, 64), (96, 96, 96)] {
        for tB in [false, true] {
          let p = Problem(m, n, k, transB: tB, alpha: 1, beta: 0.5)
          for precision in Precision.allCases {
            let one = withThreads(1) { p.run(precision) }
            let two = withThreads(2) { p.run(precision) }
            expectSameBits(one, two, "\(isa) m \(m) n \(n) k \(k) \(precision)")
          }
        }
      }
    }
  }

  @Test("a team splitting N never repacks a panel another thread still reads (K not a multiple of 128)")
  func splitNRace() {
    let p = Problem(1024, 64, 288, transB: true)
    forEachInstructionSet { isa in
      let one = withThreads(1) { p.run(.fp32) }
      withThreads(2) {
        for attempt in 0..<60 { expectSameBits(p.run(.fp32), one, "\(isa) attempt \(attempt)") }
      }
    }
  }

  /// N above every path's panel width (NC): the second panel shares its
  /// micro-panels out differently, so a thread that raced ahead would pack
  /// over panels the other still reads (im2col backward data with more than
  /// 341 input channels has such an N).
  @Test("a team splitting N waits before packing the next N panel")
  func splitNPanelRace() {
    let p = Problem(48, 5000, 256)
    let one = withThreads(1) { p.run(.fp32) }
    withThreads(2) {
      for attempt in 0..<20 { expectSameBits(p.run(.fp32), one, "attempt \(attempt)") }
    }
  }

  @Test("BigGAN shapes: 3x3 conv at 8x8 (M=256, K=1152) and the 4x4 stem linear")
  func bigganShapes() {
    let p = Problem(256, 64, 1152, transB: true)
    p.expectClose(p.run(.fp32))
    expectSameBits(p.run(.bf16), p.run(.bf16, reference: true), "bf16 contract")
    let stem = Problem(8, 1536, 20, transB: true)
    stem.expectClose(stem.run(.fp32))
  }

  @Test("the Swift wrapper checks shapes")
  func wrapperShapes() throws {
    let a = Tensor(shape: [2, 3], repeating: 1), b = Tensor(shape: [4, 5], repeating: 1)
    #expect(throws: KernelError.self) { try matmul(a, b) }
    var c = Tensor(shape: [2, 4])
    #expect(throws: KernelError.self) { try gemm(a, Tensor(shape: [3, 5]), into: &c) }
    let product = try matmul(a, Tensor(shape: [5, 3], repeating: 2), transposeB: true)
    #expect(product.shape == [2, 5])
    #expect(product.storage.allSatisfy { $0 == 6 })
    #expect(throws: KernelError.self) { try Tensor(shape: [2, 2], storage: [1]) }
  }
}
