import BGKernels
import Testing

/// Planned calls (packed weights and Winograd filters kept between calls)
/// must give exactly the bits of the unplanned ones.
@Suite(.serialized)
struct WeightPlanTests {
  struct GEMMCase: CustomStringConvertible, Sendable {
    var m, n, k: Int
    var description: String { "\(m)x\(n)x\(k)" }
  }

  /// Odd extents, several passes along K and, at n 3100, more than one JC
  /// panel on every path.
  static let gemmCases = [
    GEMMCase(m: 1, n: 1, k: 1), GEMMCase(m: 1, n: 129, k: 256), GEMMCase(m: 3, n: 17, k: 129),
    GEMMCase(m: 17, n: 3, k: 300), GEMMCase(m: 40, n: 3100, k: 131),
  ]

  @Test("A prepacked GEMM equals the unplanned one", arguments: gemmCases)
  func gemmMatches(_ c: GEMMCase) throws {
    var rng = SplitMix64(seed: UInt64(c.m * 7919 + c.n * 31 + c.k))
    let x = rng.tensor([c.m, c.k]), w = rng.tensor([c.n, c.k])
    for precision in Precision.allCases {
      let expected = try matmul(x, w, transposeB: true, precision: precision)
      try forEachInstructionSet { isa in
        let plan = try #require(WeightPlan(matrixRows: c.n, columns: c.k, precision: precision))
        for threads in [1, 2, 1] {
          let y = try withThreads(threads) { try matmul(x, transposing: w, plan: plan) }
          expectSameBits(y.storage, expected.storage, "\(precision) \(isa) \(threads) threads")
        }
        #expect(plan.bytes >= c.n * c.k * (precision == .fp32 ? 4 : 2))
      }
    }
  }

  struct ConvCase: CustomStringConvertible, Sendable {
    var batch, height, width, inChannels, outChannels, kernel: Int
    var upsample: Bool
    var description: String {
      "\(batch)x\(height)x\(width)x\(inChannels) -> \(outChannels), \(kernel)x\(kernel)"
        + (upsample ? " up" : "")
    }
  }

  static let convCases = [
    ConvCase(batch: 1, height: 4, width: 4, inChannels: 17, outChannels: 3, kernel: 3, upsample: false),
    ConvCase(batch: 1, height: 8, width: 8, inChannels: 129, outChannels: 17, kernel: 3, upsample: true),
    ConvCase(batch: 3, height: 5, width: 7, inChannels: 3, outChannels: 129, kernel: 3, upsample: false),
    ConvCase(batch: 3, height: 9, width: 6, inChannels: 33, outChannels: 40, kernel: 3, upsample: true),
    ConvCase(batch: 1, height: 1, width: 1, inChannels: 1, outChannels: 1, kernel: 3, upsample: false),
    ConvCase(batch: 3, height: 6, width: 5, inChannels: 129, outChannels: 17, kernel: 1, upsample: false),
    ConvCase(batch: 1, height: 6, width: 5, inChannels: 17, outChannels: 3, kernel: 1, upsample: true),
  ]

  @Test("A planned convolution equals the unplanned one on both algorithms", arguments: convCases)
  func convolutionMatches(_ c: ConvCase) throws {
    var rng = SplitMix64(seed: UInt64(c.batch * 131 + c.height * 17 + c.inChannels * 3 + c.outChannels))
    let x = rng.tensor([c.batch, c.height, c.width, c.inChannels])
    let w = rng.tensor([c.outChannels, c.kernel, c.kernel, c.inChannels], scale: 0.2)
    let bias = rng.tensor([c.outChannels])
    let geometry = ConvolutionGeometry(kernel: c.kernel, padding: c.kernel / 2, upsample: c.upsample)
    for algorithm in [ConvolutionAlgorithm.im2col, .winograd] {
      try withConvolutionAlgorithm(algorithm) {
        for precision in Precision.allCases {
          let expected = try conv2d(x, weight: w, bias: bias, geometry: geometry, precision: precision)
          try forEachInstructionSet { isa in
            let plan = try #require(WeightPlan(convolutionWeight: w.shape, precision: precision))
            for threads in [1, 2, 1] {
              let y = try withThreads(threads) {
                try conv2d(x, weight: w, bias: bias, geometry: geometry, precision: precision, plan: plan)
              }
              expectSameBits(
                y.storage, expected.storage, "\(algorithm) \(precision) \(isa) \(threads) threads")
            }
            #expect(plan.bytes > 0, "the plan was used")
          }
        }
      }
    }
  }

  @Test("With a plan, the automatic choice takes Winograd from 4 tiles on")
  func plannedDispatch() throws {
    var rng = SplitMix64(seed: 11)
    let w = rng.tensor([24, 3, 3, 32], scale: 0.2)
    let geometry = ConvolutionGeometry(kernel: 3, padding: 1)
    for (side, winograd) in [(4, false), (8, true), (16, true)] {
      let x = rng.tensor([1, side, side, 32])
      let plan = try #require(WeightPlan(convolutionWeight: w.shape, precision: .fp32))
      let y = try conv2d(x, weight: w, bias: nil, geometry: geometry, plan: plan)
      let expected = try withConvolutionAlgorithm(winograd ? .winograd : .im2col) {
        try conv2d(x, weight: w, bias: nil, geometry: geometry)
      }
      expectSameBits(y.storage, expected.storage, "\(side)x\(side), Winograd \(winograd)")
    }
  }

  @Test("A plan for another shape or precision is refused or ignored")
  func mismatchedPlans() throws {
    var rng = SplitMix64(seed: 5)
    let x = rng.tensor([2, 4, 4, 8]), w = rng.tensor([6, 3, 3, 8])
    let geometry = ConvolutionGeometry(kernel: 3, padding: 1)
    let other = try #require(WeightPlan(convolutionWeight: [6, 3, 3, 9], precision: .fp32))
    #expect(throws: KernelError.self) {
      try conv2d(x, weight: w, bias: nil, geometry: geometry, plan: other)
    }
    let bf16 = try #require(WeightPlan(convolutionWeight: w.shape, precision: .bf16))
    let y = try conv2d(x, weight: w, bias: nil, geometry: geometry, precision: .fp32, plan: bf16)
    expectSameBits(
      y.storage, try conv2d(x, weight: w, bias: nil, geometry: geometry).storage, "fp32 with a bf16 plan")
    #expect(bf16.bytes == 0)
    #expect(WeightPlan(matrixRows: 0, columns: 3, precision: .fp32) == nil)
    #expect(WeightPlan(convolutionWeight: [2, 3, 3], precision: .fp32) == nil)
  }
}
