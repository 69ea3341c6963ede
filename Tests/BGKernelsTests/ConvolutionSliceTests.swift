import BGKernels
import CKernels
import Testing

// MARK: - Problems

/// A convolution that reads a slice of a wider input's channels and writes
/// a slice of a wider output's, like an Inception branch of a concatenation.
private struct SliceCase: Sendable, CustomTestStringConvertible {
  var name: String
  var batch, height, width: Int
  /// x's channels, and the ones the convolution reads.
  var xChannels: Int
  var inputChannels: Range<Int>
  /// The convolution's output channels, y's channels, and where in y they go.
  var outChannels, yChannels, channelOffset: Int
  var geometry: ConvolutionGeometry
  var algorithm: ConvolutionAlgorithm
  var seed: UInt64

  var testDescription: String {
    "\(name): x [\(batch),\(height),\(width),\(xChannels)] channels \(inputChannels) -> "
      + "\(outChannels) at \(channelOffset) of \(yChannels), \(algorithm)"
  }

  var outSize: (height: Int, width: Int) {
    geometry.outputSize(height: height, width: width)!
  }
  var xShape: [Int] { [batch, height, width, xChannels] }
  var yShape: [Int] { [batch, outSize.height, outSize.width, yChannels] }
  var wShape: [Int] {
    [outChannels, geometry.kernelHeight, geometry.kernelWidth, inputChannels.count]
  }
}

private func same(_ kernel: Int) -> ConvolutionGeometry {
  ConvolutionGeometry(kernel: kernel, padding: kernel / 2)
}

/// Odd offsets and strides on both sides, for each way a forward pass can
/// run: im2col bands, the direct 1x1 GEMM, asymmetric and strided kernels,
/// Winograd with and without padding and upsample, and the 1x1 of an
/// upsampled input (which runs before the upsample when y is dense).
private let sliceCases: [SliceCase] = [
  SliceCase(
    name: "3x3 same", batch: 2, height: 7, width: 9, xChannels: 23, inputChannels: 3..<20,
    outChannels: 5, yChannels: 11, channelOffset: 3, geometry: same(3), algorithm: .im2col,
    seed: 1),
  SliceCase(
    name: "1x1 direct", batch: 2, height: 5, width: 7, xChannels: 40, inputChannels: 7..<24,
    outChannels: 33, yChannels: 41, channelOffset: 1, geometry: same(1), algorithm: .auto,
    seed: 2),
  SliceCase(
    name: "1x7 pad (0,3)", batch: 1, height: 9, width: 11, xChannels: 9, inputChannels: 1..<4,
    outChannels: 17, yChannels: 20, channelOffset: 3,
    geometry: ConvolutionGeometry(kernelHeight: 1, kernelWidth: 7, paddingHeight: 0, paddingWidth: 3),
    algorithm: .auto, seed: 3),
  SliceCase(
    name: "3x3 stride 2 valid", batch: 2, height: 9, width: 7, xChannels: 19,
    inputChannels: 2..<19, outChannels: 3, yChannels: 8, channelOffset: 5,
    geometry: ConvolutionGeometry(kernel: 3, stride: 2), algorithm: .auto, seed: 4),
  SliceCase(
    name: "3x3 same Winograd", batch: 2, height: 9, width: 11, xChannels: 40,
    inputChannels: 5..<37, outChannels: 19, yChannels: 24, channelOffset: 5, geometry: same(3),
    algorithm: .winograd, seed: 5),
  SliceCase(
    name: "3x3 valid Winograd", batch: 1, height: 13, width: 10, xChannels: 33,
    inputChannels: 0..<17, outChannels: 33, yChannels: 35, channelOffset: 1,
    geometry: ConvolutionGeometry(kernel: 3), algorithm: .winograd, seed: 6),
  SliceCase(
    name: "3x3 upsample Winograd", batch: 1, height: 4, width: 5, xChannels: 7,
    inputChannels: 4..<7, outChannels: 17, yChannels: 18, channelOffset: 1,
    geometry: ConvolutionGeometry(kernel: 3, padding: 1, upsample: true), algorithm: .winograd,
    seed: 7),
  SliceCase(
    name: "1x1 upsample", batch: 2, height: 3, width: 4, xChannels: 10, inputChannels: 1..<6,
    outChannels: 7, yChannels: 9, channelOffset: 2,
    geometry: ConvolutionGeometry(kernel: 1, upsample: true), algorithm: .auto, seed: 8),
  SliceCase(
    name: "1x1 upsample, dense y", batch: 2, height: 3, width: 4, xChannels: 10,
    inputChannels: 1..<6, outChannels: 7, yChannels: 7, channelOffset: 0,
    geometry: ConvolutionGeometry(kernel: 1, upsample: true), algorithm: .auto, seed: 9),
  SliceCase(
    name: "bands", batch: 2, height: 64, width: 64, xChannels: 67, inputChannels: 2..<66,
    outChannels: 5, yChannels: 9, channelOffset: 3, geometry: same(3), algorithm: .im2col,
    seed: 10),
]

/// Large enough for teams of two in every stage.
private let teamCases: [SliceCase] = [
  SliceCase(
    name: "Inception 1x7", batch: 2, height: 17, width: 17, xChannels: 100,
    inputChannels: 13..<77, outChannels: 48, yChannels: 131, channelOffset: 29,
    geometry: ConvolutionGeometry(kernelHeight: 1, kernelWidth: 7, paddingHeight: 0, paddingWidth: 3),
    algorithm: .auto, seed: 20),
  SliceCase(
    name: "Inception 1x1", batch: 2, height: 17, width: 17, xChannels: 100,
    inputChannels: 3..<99, outChannels: 64, yChannels: 67, channelOffset: 3,
    geometry: same(1), algorithm: .auto, seed: 21),
  SliceCase(
    name: "Winograd", batch: 2, height: 16, width: 16, xChannels: 80, inputChannels: 3..<67,
    outChannels: 96, yChannels: 99, channelOffset: 1, geometry: same(3),
    algorithm: .winograd, seed: 22),
]

/// Seeded operands; y starts out holding values the call must keep outside
/// its slice.
private struct SliceData {
  var x, w, bias, y: Tensor

  init(_ c: SliceCase) {
    var rng = SplitMix64(seed: c.seed)
    x = rng.tensor(c.xShape)
    w = rng.tensor(c.wShape)
    bias = rng.tensor([c.outChannels])
    y = rng.tensor(c.yShape)
  }

  /// x's channels `c.inputChannels` as a dense tensor.
  func denseInput(_ c: SliceCase) -> Tensor {
    let slice = c.inputChannels
    var storage: [Float] = []
    storage.reserveCapacity(c.batch * c.height * c.width * slice.count)
    for p in 0..<(c.batch * c.height * c.width) {
      storage += x.storage[(p * c.xChannels + slice.lowerBound)..<(p * c.xChannels + slice.upperBound)]
    }
    return try! Tensor(shape: [c.batch, c.height, c.width, slice.count], storage: storage)
  }
}

// MARK: - Runs

/// The convolution into its slice of a copy of `d.y`.
private func sliced(
  _ c: SliceCase, _ d: SliceData, _ p: Precision, relu: Bool, plan: WeightPlan? = nil
) throws -> Tensor {
  var y = d.y
  try withConvolutionAlgorithm(c.algorithm) {
    try conv2d(
      d.x, inputChannels: c.inputChannels, weight: d.w, bias: d.bias, geometry: c.geometry,
      precision: p, plan: plan, relu: relu, into: &y, channelOffset: c.channelOffset)
  }
  return y
}

/// What the slice must hold: the dense convolution of the dense input,
/// then a separate ReLU, put into a copy of `d.y`.
private func expected(_ c: SliceCase, _ d: SliceData, _ p: Precision, relu: Bool) throws -> Tensor {
  var dense = try withConvolutionAlgorithm(c.algorithm) {
    try conv2d(d.denseInput(c), weight: d.w, bias: d.bias, geometry: c.geometry, precision: p)
  }
  if relu { dense = BGKernels.relu(dense) }
  var y = d.y
  let pixels = c.batch * c.outSize.height * c.outSize.width
  for q in 0..<pixels {
    for j in 0..<c.outChannels {
      y.storage[q * c.yChannels + c.channelOffset + j] = dense.storage[q * c.outChannels + j]
    }
  }
  return y
}

// MARK: - Specification

@Suite(.serialized)
struct ConvolutionSliceTests {
  @Test(
    "A slice of the input into a slice of the output gives the dense convolution's bits, ReLU fused",
    arguments: sliceCases + teamCases)
  fileprivate func sliceIsTheDenseConvolution(_ c: SliceCase) throws {
    let d = SliceData(c)
    for p in Precision.allCases {
      let plan = WeightPlan(convolutionWeight: c.wShape, precision: p)
      for relu in [false, true] {
        let want = try expected(c, d, p, relu: relu).storage
        expectSameBits(try sliced(c, d, p, relu: relu).storage, want, "\(p) relu \(relu)")
        expectSameBits(
          try sliced(c, d, p, relu: relu, plan: plan).storage, want, "\(p) relu \(relu) planned")
      }
    }
  }

  @Test("Every instruction-set path gives the same bits", arguments: sliceCases)
  fileprivate func instructionSetsAgree(_ c: SliceCase) throws {
    let d = SliceData(c)
    for p in Precision.allCases {
      var first: [Float]?
      try forEachInstructionSet { isa in
        let y = try sliced(c, d, p, relu: true).storage
        expectSameBits(y, try expected(c, d, p, relu: true).storage, "\(isa) \(p) vs dense")
        if let first { expectSameBits(y, first, "\(isa) \(p) vs the first path") } else { first = y }
      }
    }
  }

  @Test("One thread and two threads give the same bits", arguments: teamCases)
  fileprivate func threadCountIsInvisible(_ c: SliceCase) throws {
    let d = SliceData(c)
    for p in Precision.allCases {
      let one = try withThreads(1) { try sliced(c, d, p, relu: true) }
      let two = try withThreads(2) { try sliced(c, d, p, relu: true) }
      expectSameBits(two.storage, one.storage, "\(p) 2 threads vs 1")
    }
  }

  @Test("Strides below the channel counts leave every buffer untouched")
  func shortStridesTouchNothing() {
    var s = bk_conv_shape(
      batch: 1, in_h: 4, in_w: 4, in_c: 3, out_c: 2, kernel_h: 3, kernel_w: 3, stride: 1,
      pad_h: 1, pad_w: 1, upsample: 0)
    let sentinel: Float = 7
    let x = [Float](repeating: 1, count: 64), w = [Float](repeating: 1, count: 54)
    for (ldx, ldy) in [(2, 2), (3, 1), (0, 2)] {
      var y = [Float](repeating: sentinel, count: 64)
      bk_conv2d_forward_ex(BK_FP32, nil, &s, x, Int32(ldx), w, nil, 1, &y, Int32(ldy))
      #expect(y.allSatisfy { $0 == sentinel }, "ldx \(ldx) ldy \(ldy)")
    }
  }

  @Test("The wrapper rejects slices that do not fit, naming the argument, and leaves y alone")
  func wrapperRejectsBadSlices() throws {
    let x = Tensor(shape: [2, 5, 5, 8]), w = Tensor(shape: [4, 3, 3, 3])
    let g = same(3)
    let original = Tensor(shape: [2, 5, 5, 6], repeating: 7)
    func expectShapeError(
      _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
      _ body: (inout Tensor) throws -> Void
    ) {
      var y = original
      do {
        try body(&y)
        Issue.record("no error; expected one mentioning \"\(fragment)\"", sourceLocation: sourceLocation)
      } catch {
        guard case KernelError.shape(let message) = error else {
          Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
          return
        }
        #expect(message.contains(fragment), "\(message)", sourceLocation: sourceLocation)
      }
      #expect(y == original, "y changed", sourceLocation: sourceLocation)
    }
    expectShapeError("inputChannels 6..<9") {
      try conv2d(x, inputChannels: 6..<9, weight: w, bias: nil, geometry: g, into: &$0)
    }
    expectShapeError("inputChannels 3..<3") {
      try conv2d(x, inputChannels: 3..<3, weight: w, bias: nil, geometry: g, into: &$0)
    }
    expectShapeError("weight has shape [4, 3, 3, 3]") {
      try conv2d(x, inputChannels: 0..<4, weight: w, bias: nil, geometry: g, into: &$0)
    }
    expectShapeError("channelOffset 3") {
      try conv2d(
        x, inputChannels: 0..<3, weight: w, bias: nil, geometry: g, into: &$0, channelOffset: 3)
    }
    expectShapeError("channelOffset -1") {
      try conv2d(
        x, inputChannels: 0..<3, weight: w, bias: nil, geometry: g, into: &$0, channelOffset: -1)
    }
    expectShapeError("y has shape [2, 5, 5, 6]") {
      try conv2d(
        x, inputChannels: 0..<3, weight: w, bias: nil,
        geometry: ConvolutionGeometry(kernel: 3, stride: 2, padding: 1), into: &$0)
    }
    expectShapeError("bias has shape [3]") {
      try conv2d(
        x, inputChannels: 0..<3, weight: w, bias: Tensor(shape: [3]), geometry: g, into: &$0)
    }
    // A fitting call writes only its slice.
    var y = original
    try conv2d(
      x, inputChannels: 5..<8, weight: w, bias: nil, geometry: g, into: &y, channelOffset: 2)
    for (i, v) in y.storage.enumerated() where !(2..<6).contains(i % 6) { #expect(v == 7) }
  }
}
