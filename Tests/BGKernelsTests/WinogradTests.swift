import BGKernels
import CKernels
import Testing

// MARK: - Problems

/// A 3x3, stride 1 convolution with padding 1 ("same") or 0 ("valid"),
/// the shapes Winograd handles.
private struct WinogradCase: Sendable, CustomTestStringConvertible {
  var batch, height, width, inChannels, outChannels: Int
  var upsample: Bool
  var padding: Int
  var seed: UInt64

  init(
    _ batch: Int, _ height: Int, _ width: Int, _ inChannels: Int, _ outChannels: Int,
    up: Bool = false, padding: Int = 1, seed: UInt64
  ) {
    self.batch = batch
    self.height = height
    self.width = width
    self.inChannels = inChannels
    self.outChannels = outChannels
    self.upsample = up
    self.padding = padding
    self.seed = seed
  }

  var testDescription: String {
    "[\(batch),\(height),\(width),\(inChannels)] -> \(outChannels)\(upsample ? " up" : "")"
      + (padding == 0 ? " valid" : "")
  }

  /// The image the kernel slides over.
  var effectiveHeight: Int { upsample ? 2 * height : height }
  var effectiveWidth: Int { upsample ? 2 * width : width }
  /// The output extents: the (upsampled) input's, 2 fewer when valid.
  var outHeight: Int { effectiveHeight + 2 * padding - 2 }
  var outWidth: Int { effectiveWidth + 2 * padding - 2 }
  var xCount: Int { batch * height * width * inChannels }
  var yCount: Int { batch * outHeight * outWidth * outChannels }
  var wCount: Int { outChannels * 9 * inChannels }

  var shape: bk_conv_shape {
    bk_conv_shape(
      batch: Int32(batch), in_h: Int32(height), in_w: Int32(width), in_c: Int32(inChannels),
      out_c: Int32(outChannels), kernel_h: 3, kernel_w: 3, stride: 1, pad_h: Int32(padding),
      pad_w: Int32(padding), upsample: upsample ? 1 : 0)
  }

  /// The input pixel that tap (ki, kj) of output pixel (b, oy, ox) reads, as
  /// an index into [batch][height][width], or nil in the padding.
  func source(_ b: Int, _ oy: Int, _ ox: Int, _ ki: Int, _ kj: Int) -> Int? {
    let iy = oy - padding + ki, ix = ox - padding + kj
    guard iy >= 0, iy < effectiveHeight, ix >= 0, ix < effectiveWidth else { return nil }
    let sy = upsample ? iy / 2 : iy, sx = upsample ? ix / 2 : ix
    return (b * height + sy) * width + sx
  }
}

private struct WinogradData {
  var x, w, bias, dy: [Float]

  init(_ c: WinogradCase) {
    var rng = SplitMix64(seed: c.seed)
    x = rng.array(c.xCount)
    w = rng.array(c.wCount)
    bias = rng.array(c.outChannels)
    dy = rng.array(c.yCount)
  }
}

// MARK: - Double-precision reference

/// Exact values and the largest sum |product| of any element: Winograd's
/// transforms mix a whole 6x6 tile, so its error scales with the tensor's
/// magnitude rather than with each element's own terms.
private struct Reference {
  var value: [Double]
  var scale: Double
}

/// Calls `body(m, tap, src)` for every output pixel m (an index into
/// [batch][outHeight][outWidth]), tap (ki * 3 + kj) and the input pixel
/// src it reads, padding skipped.
private func forEachTap(_ c: WinogradCase, _ body: (_ m: Int, _ tap: Int, _ src: Int) -> Void) {
  for b in 0..<c.batch {
    for oy in 0..<c.outHeight {
      for ox in 0..<c.outWidth {
        let m = (b * c.outHeight + oy) * c.outWidth + ox
        for ki in 0..<3 {
          for kj in 0..<3 {
            if let src = c.source(b, oy, ox, ki, kj) { body(m, ki * 3 + kj, src) }
          }
        }
      }
    }
  }
}

/// y = bias + sum over taps and input channels of w x.
private func referenceForward(_ c: WinogradCase, _ d: WinogradData) -> Reference {
  let cin = c.inChannels, cout = c.outChannels
  var value = (0..<c.yCount).map { Double(d.bias[$0 % cout]) }
  var magnitude = value.map(abs)
  forEachTap(c) { m, tap, src in
    for co in 0..<cout {
      var s = 0.0, a = 0.0
      for ci in 0..<cin {
        let p = Double(d.w[(co * 9 + tap) * cin + ci]) * Double(d.x[src * cin + ci])
        s += p
        a += abs(p)
      }
      value[m * cout + co] += s
      magnitude[m * cout + co] += a
    }
  }
  return Reference(value: value, scale: magnitude.max() ?? 0)
}

/// dx[source pixel] = sum over the taps that read it of dy w.
private func referenceBackwardData(_ c: WinogradCase, _ d: WinogradData) -> Reference {
  let cin = c.inChannels, cout = c.outChannels
  var value = [Double](repeating: 0, count: c.xCount)
  var magnitude = value
  forEachTap(c) { m, tap, src in
    for ci in 0..<cin {
      var s = 0.0, a = 0.0
      for co in 0..<cout {
        let p = Double(d.dy[m * cout + co]) * Double(d.w[(co * 9 + tap) * cin + ci])
        s += p
        a += abs(p)
      }
      value[src * cin + ci] += s
      magnitude[src * cin + ci] += a
    }
  }
  return Reference(value: value, scale: magnitude.max() ?? 0)
}

/// dw[co][ki][kj][ci] = sum over the pixels that tap reads of dy x; the
/// scale is the largest such sum of |products|, over every weight.
private func referenceBackwardWeight(_ c: WinogradCase, _ d: WinogradData) -> Reference {
  let cin = c.inChannels, cout = c.outChannels
  var value = [Double](repeating: 0, count: c.wCount)
  var magnitude = value
  forEachTap(c) { m, tap, src in
    for co in 0..<cout {
      let g = Double(d.dy[m * cout + co]), wo = (co * 9 + tap) * cin
      for ci in 0..<cin {
        let p = g * Double(d.x[src * cin + ci])
        value[wo + ci] += p
        magnitude[wo + ci] += abs(p)
      }
    }
  }
  return Reference(value: value, scale: magnitude.max() ?? 0)
}

/// Winograd F(4x4, 3x3) in fp32 errs by up to about 2e-6 of the largest
/// sum |product| on these cases (1e-5 of the output's own magnitude, which
/// is smaller); a wrong tap or channel would be off by a whole product, over
/// 8e-4 of it for every case here.
private let tolerance = 2e-5

/// Expects |ours - (exact + offset)| <= tolerance * scale everywhere.
private func expectClose(
  _ ours: [Float], _ exact: Reference, offset: [Float]? = nil, _ label: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(ours.count == exact.value.count, "\(label): element count", sourceLocation: sourceLocation)
  let bound = tolerance * exact.scale
  var worst = 0.0, worstIndex = 0
  for i in 0..<min(ours.count, exact.value.count) {
    let error = abs(Double(ours[i]) - exact.value[i] - Double(offset?[i] ?? 0))
    if !(error <= worst) {
      worst = error
      worstIndex = i
    }
  }
  #expect(
    worst <= bound,
    "\(label): error \(worst) at element \(worstIndex) exceeds \(bound) (\(worst / max(exact.scale, .leastNormalMagnitude)) of the scale)",
    sourceLocation: sourceLocation)
}

// MARK: - Runs

/// bk_conv2d_forward with Winograd forced; bias is optional.
private func forward(_ c: WinogradCase, _ d: WinogradData, bias: Bool) -> [Float] {
  var shape = c.shape
  var y = [Float](repeating: .nan, count: c.yCount)
  withConvolutionAlgorithm(.winograd) {
    bk_conv2d_forward(BK_FP32, &shape, d.x, d.w, bias ? d.bias : nil, &y)
  }
  return y
}

/// bk_conv2d_backward_data with Winograd forced, onto `dx`.
private func backwardData(_ c: WinogradCase, _ d: WinogradData, onto dx: [Float], accumulate: Bool)
  -> [Float]
{
  var shape = c.shape
  var dx = dx
  withConvolutionAlgorithm(.winograd) {
    bk_conv2d_backward_data(BK_FP32, &shape, d.dy, d.w, &dx, accumulate ? 1 : 0)
  }
  return dx
}

/// bk_conv2d_backward_weight with Winograd forced, onto `dw` and `db`.
private func backwardWeight(
  _ c: WinogradCase, _ d: WinogradData, onto start: (dw: [Float], db: [Float]), accumulate: Bool
) -> (dw: [Float], db: [Float]) {
  var shape = c.shape
  var (dw, db) = start
  withConvolutionAlgorithm(.winograd) {
    bk_conv2d_backward_weight(BK_FP32, &shape, d.x, d.dy, &dw, &db, accumulate ? 1 : 0)
  }
  return (dw, db)
}

/// dbias = sum of dy over pixels, the same sum on either algorithm.
private func exactBiasGradient(_ c: WinogradCase, _ d: WinogradData) -> Reference {
  var value = [Double](repeating: 0, count: c.outChannels)
  var magnitude = value
  for (i, g) in d.dy.enumerated() {
    value[i % c.outChannels] += Double(g)
    magnitude[i % c.outChannels] += abs(Double(g))
  }
  return Reference(value: value, scale: magnitude.max() ?? 0)
}

// MARK: - Cases

/// Extents 1 to 17 (partial tiles everywhere but 4 and 8 pixel edges),
/// channel counts 1, 3, 17 and 129 on either side, batch 1 and 3, each with
/// and without the upsample.
private let oddCases: [WinogradCase] = [
  (1, 1, 1, 3, 17), (3, 2, 2, 17, 3), (1, 3, 3, 1, 1), (3, 5, 7, 3, 17),
  (1, 7, 5, 17, 129), (1, 9, 9, 129, 3), (3, 17, 17, 3, 1), (1, 2, 3, 129, 129),
].enumerated().flatMap { i, s in
  [false, true].map { up in
    WinogradCase(s.0, s.1, s.2, s.3, s.4, up: up, seed: 100 + UInt64(2 * i) + (up ? 1 : 0))
  }
}

/// Shapes like the odd cases' without padding ("valid"), where the kernel
/// fits: outputs from 1 to 32 pixels a side, most of them partial tiles.
private let validCases: [WinogradCase] = [
  (1, 3, 3, 3, 17), (3, 2, 2, 17, 3), (3, 5, 7, 3, 17), (1, 7, 5, 17, 129),
  (1, 9, 9, 129, 3), (3, 17, 17, 3, 1), (1, 2, 3, 129, 129), (2, 10, 6, 1, 1),
].enumerated().flatMap { i, s in
  [false, true].compactMap { up in
    let scale = up ? 2 : 1
    guard s.1 * scale >= 3, s.2 * scale >= 3 else { return nil }
    return WinogradCase(
      s.0, s.1, s.2, s.3, s.4, up: up, padding: 0, seed: 500 + UInt64(2 * i) + (up ? 1 : 0))
  }
}

/// Large enough that every stage runs on a team of two.
private let teamCases: [WinogradCase] = [
  WinogradCase(2, 16, 16, 64, 96, seed: 200),
  WinogradCase(3, 8, 5, 96, 64, up: true, seed: 201),
  WinogradCase(2, 19, 17, 64, 48, padding: 0, seed: 202),
]

// MARK: - Specification

@Suite(.serialized)
struct WinogradTests {
  @Test("Forward matches a double-precision convolution on every path", arguments: oddCases + validCases)
  fileprivate func forwardIsAConvolution(_ c: WinogradCase) {
    let d = WinogradData(c)
    let exact = referenceForward(c, d)
    let noBias = [Float]((0..<c.yCount).map { d.bias[$0 % c.outChannels] })
    var first: [Float]?
    forEachInstructionSet { isa in
      let y = forward(c, d, bias: true)
      expectClose(y, exact, "\(isa) y")
      expectClose(forward(c, d, bias: false), exact, offset: noBias.map { -$0 }, "\(isa) y without bias")
      if let first { expectSameBits(y, first, "\(isa) y vs the first path") } else { first = y }
    }
  }

  @Test("Backward data matches the exact input gradient on every path", arguments: oddCases + validCases)
  fileprivate func backwardDataIsTheInputGradient(_ c: WinogradCase) {
    let d = WinogradData(c)
    let exact = referenceBackwardData(c, d)
    var rng = SplitMix64(seed: c.seed &+ 1000)
    let dx0 = rng.array(c.xCount)
    var first: [Float]?
    forEachInstructionSet { isa in
      // accumulate = 0 ignores what the buffer held, NaN included.
      let dx = backwardData(c, d, onto: [Float](repeating: .nan, count: c.xCount), accumulate: false)
      expectClose(dx, exact, "\(isa) dx")
      expectClose(backwardData(c, d, onto: dx0, accumulate: true), exact, offset: dx0, "\(isa) dx accumulated")
      if let first { expectSameBits(dx, first, "\(isa) dx vs the first path") } else { first = dx }
    }
  }

  @Test(
    "Backward weight matches the exact parameter gradient on every path",
    arguments: oddCases + validCases)
  fileprivate func backwardWeightIsTheParameterGradient(_ c: WinogradCase) {
    let d = WinogradData(c)
    let exact = referenceBackwardWeight(c, d), bias = exactBiasGradient(c, d)
    var rng = SplitMix64(seed: c.seed &+ 2000)
    let start = (dw: rng.array(c.wCount), db: rng.array(c.outChannels))
    let nan = (dw: [Float](repeating: .nan, count: c.wCount), db: [Float](repeating: .nan, count: c.outChannels))
    var first: [Float]?
    forEachInstructionSet { isa in
      let fresh = backwardWeight(c, d, onto: nan, accumulate: false)
      expectClose(fresh.dw, exact, "\(isa) dw")
      expectClose(fresh.db, bias, "\(isa) dbias")
      let summed = backwardWeight(c, d, onto: start, accumulate: true)
      expectClose(summed.dw, exact, offset: start.dw, "\(isa) dw accumulated")
      expectClose(summed.db, bias, offset: start.db, "\(isa) dbias accumulated")
      if let first { expectSameBits(fresh.dw, first, "\(isa) dw vs the first path") } else { first = fresh.dw }
    }
  }

  @Test("One thread and two threads give the same bits", arguments: teamCases)
  fileprivate func threadCountIsInvisible(_ c: WinogradCase) {
    let d = WinogradData(c)
    let zero = (dw: [Float](repeating: 0, count: c.wCount), db: [Float](repeating: 0, count: c.outChannels))
    let run = {
      (
        forward(c, d, bias: true), backwardData(c, d, onto: d.x, accumulate: true),
        backwardWeight(c, d, onto: zero, accumulate: false).dw
      )
    }
    let one = withThreads(1, run), two = withThreads(2, run)
    expectSameBits(two.0, one.0, "y")
    expectSameBits(two.1, one.1, "dx")
    expectSameBits(two.2, one.2, "dw")
  }

  /// Bands and chunks are invisible. 512 -> 512 channels: the filters'
  /// transform exceeds the budget, so output channels go in chunks
  /// (448 + 64), over 128 tiles in three bands. 64 -> 64 channels over
  /// 4 x 16 x 16 tiles: more than one band holds (about 170), so the
  /// filters are transformed and packed once and every band shares them.
  /// The reference is im2col in fp32, whose error is ten times smaller than
  /// the tolerance; the scale is the typical sum |product|, 9 x Cin
  /// products of two uniform [-1, 1) values, each 1/4 on average. (The
  /// weight gradient's own bands and chunks are in the next test.)
  @Test(
    "Bands of tiles, chunks of channels and filters packed once give the whole convolution",
    arguments: [WinogradCase(2, 32, 32, 512, 512, seed: 300), WinogradCase(4, 64, 64, 64, 64, seed: 302)])
  fileprivate func bandsAndChunks(_ c: WinogradCase) {
    let d = WinogradData(c)
    var shape = c.shape
    var y = [Float](repeating: 0, count: c.yCount), dx = [Float](repeating: 0, count: c.xCount)
    withConvolutionAlgorithm(.im2col) {
      bk_conv2d_forward(BK_FP32, &shape, d.x, d.w, nil, &y)
      bk_conv2d_backward_data(BK_FP32, &shape, d.dy, d.w, &dx, 0)
    }
    let scale = 9.0 * Double(c.inChannels) / 4
    expectClose(forward(c, d, bias: false), Reference(value: y.map(Double.init), scale: scale), "y")
    expectClose(
      backwardData(c, d, onto: dx, accumulate: false),
      Reference(value: dx.map(Double.init), scale: scale), "dx")
  }

  /// 512 -> 512 channels: the gradient's transformed filters exceed the
  /// budget, so output channels go in chunks (416 + 96), and 5 x 64 tiles
  /// make bands of 128, 128 and 64 tiles, each continuing the sums of the
  /// one before. The reference is im2col in fp32; the scale is the
  /// typical sum |product| of a weight, 5 x 32 x 32 products of two
  /// uniform [-1, 1) values.
  @Test("Bands and chunks of the weight gradient give the whole gradient")
  func weightGradientBandsAndChunks() {
    let c = WinogradCase(5, 32, 32, 512, 512, seed: 301)
    let d = WinogradData(c)
    var shape = c.shape
    var dw = [Float](repeating: 0, count: c.wCount)
    withConvolutionAlgorithm(.im2col) {
      bk_conv2d_backward_weight(BK_FP32, &shape, d.x, d.dy, &dw, nil, 0)
    }
    let zero = (dw: [Float](repeating: .nan, count: c.wCount), db: [Float](repeating: 0, count: 512))
    expectClose(
      backwardWeight(c, d, onto: zero, accumulate: false).dw,
      Reference(value: dw.map(Double.init), scale: 5.0 * 32 * 32 / 4), "dw")
  }

  @Test("Forcing Winograd leaves other shapes and bf16 on im2col")
  func ineligibleShapesFallBack() throws {
    var rng = SplitMix64(seed: 400)
    let x = rng.tensor([2, 5, 6, 48])
    let cases: [(ConvolutionGeometry, Precision)] = [
      (ConvolutionGeometry(kernel: 3, stride: 2, padding: 1), .fp32),
      (ConvolutionGeometry(kernel: 3, padding: 2), .fp32),
      (ConvolutionGeometry(kernel: 3, stride: 2), .fp32),
      (ConvolutionGeometry(kernel: 5, padding: 1), .fp32),
      (ConvolutionGeometry(kernelHeight: 3, kernelWidth: 3, paddingHeight: 1, paddingWidth: 0), .fp32),
      (ConvolutionGeometry(kernel: 3, padding: 1, upsample: true), .bf16),
    ]
    for (g, p) in cases {
      let w = rng.tensor([40, g.kernelHeight, g.kernelWidth, 48])
      let im2col = try withConvolutionAlgorithm(.im2col) {
        try conv2d(x, weight: w, bias: nil, geometry: g, precision: p)
      }
      let winograd = try withConvolutionAlgorithm(.winograd) {
        try conv2d(x, weight: w, bias: nil, geometry: g, precision: p)
      }
      expectSameBits(winograd.storage, im2col.storage, "\(g) \(p)")
    }
  }

  @Test("The algorithm setting round-trips and defaults to auto")
  func settingRoundTrips() {
    #expect(Machine.convolutionAlgorithm == .auto)
    for a in ConvolutionAlgorithm.allCases {
      withConvolutionAlgorithm(a) { #expect(Machine.convolutionAlgorithm == a) }
    }
    #expect(Machine.convolutionAlgorithm == .auto)
  }
}
