import BGKernels
import CKernels
import Testing

// MARK: - Problems

/// One convolution: sizes, geometry and the seed of its data.
private struct ConvCase: Sendable, CustomTestStringConvertible {
  var name: String
  var batch, height, width, inChannels, outChannels: Int
  var geometry: ConvolutionGeometry
  var seed: UInt64 = 1

  init(
    _ name: String, _ batch: Int, _ height: Int, _ width: Int, _ inChannels: Int,
    _ outChannels: Int, _ geometry: ConvolutionGeometry, seed: UInt64 = 1
  ) {
    self.name = name
    self.batch = batch
    self.height = height
    self.width = width
    self.inChannels = inChannels
    self.outChannels = outChannels
    self.geometry = geometry
    self.seed = seed
  }

  var testDescription: String {
    let g = geometry
    return "\(name): [\(batch),\(height),\(width),\(inChannels)] -> \(outChannels), "
      + "\(g.kernelHeight)x\(g.kernelWidth) s\(g.stride) p\(g.paddingHeight),\(g.paddingWidth)"
      + (g.upsample ? " up" : "")
  }

  var kh: Int { geometry.kernelHeight }
  var kw: Int { geometry.kernelWidth }
  /// The image the kernel slides over.
  var effectiveHeight: Int { geometry.upsample ? 2 * height : height }
  var effectiveWidth: Int { geometry.upsample ? 2 * width : width }
  var outHeight: Int { (effectiveHeight + 2 * geometry.paddingHeight - kh) / geometry.stride + 1 }
  var outWidth: Int { (effectiveWidth + 2 * geometry.paddingWidth - kw) / geometry.stride + 1 }
  var pixels: Int { batch * outHeight * outWidth }
  var k: Int { kh * kw * inChannels }
  var direct: Bool {
    kh == 1 && kw == 1 && geometry.stride == 1 && geometry.paddingHeight == 0
      && geometry.paddingWidth == 0 && !geometry.upsample
  }

  var xShape: [Int] { [batch, height, width, inChannels] }
  var wShape: [Int] { [outChannels, kh, kw, inChannels] }
  var yShape: [Int] { [batch, outHeight, outWidth, outChannels] }

  var kernelShape: bk_conv_shape {
    bk_conv_shape(
      batch: Int32(batch), in_h: Int32(height), in_w: Int32(width), in_c: Int32(inChannels),
      out_c: Int32(outChannels), kernel_h: Int32(kh), kernel_w: Int32(kw),
      stride: Int32(geometry.stride), pad_h: Int32(geometry.paddingHeight),
      pad_w: Int32(geometry.paddingWidth), upsample: geometry.upsample ? 1 : 0)
  }

  /// The input pixel that tap (ki, kj) of output pixel (b, oy, ox) reads,
  /// as an index into [batch][height][width], or nil in the padding.
  func source(_ b: Int, _ oy: Int, _ ox: Int, _ ki: Int, _ kj: Int) -> Int? {
    let iy = oy * geometry.stride - geometry.paddingHeight + ki
    let ix = ox * geometry.stride - geometry.paddingWidth + kj
    guard iy >= 0, iy < effectiveHeight, ix >= 0, ix < effectiveWidth else { return nil }
    let sy = geometry.upsample ? iy / 2 : iy, sx = geometry.upsample ? ix / 2 : ix
    return (b * height + sy) * width + sx
  }

  /// Calls `body(m, tap, source)` for every tap inside the image, in output
  /// pixel order then tap order: the order the kernels' col2im adds in.
  func forEachTap(_ body: (Int, Int, Int) -> Void) {
    for b in 0..<batch {
      for oy in 0..<outHeight {
        for ox in 0..<outWidth {
          let m = (b * outHeight + oy) * outWidth + ox
          for ki in 0..<kh {
            for kj in 0..<kw {
              if let src = source(b, oy, ox, ki, kj) { body(m, ki * kw + kj, src) }
            }
          }
        }
      }
    }
  }
}

/// Seeded operands for a case.
private struct ConvData {
  var x, w, bias, dy: [Float]

  init(_ c: ConvCase) {
    var rng = SplitMix64(seed: c.seed)
    x = rng.array(c.batch * c.height * c.width * c.inChannels)
    w = rng.array(c.outChannels * c.k)
    bias = rng.array(c.outChannels)
    dy = rng.array(c.pixels * c.outChannels)
  }
}

/// Every output of the three passes.
private struct ConvResults {
  var y, dx, dw, db: [Float]
}

private func kernelPrecision(_ p: Precision) -> bk_precision { p == .fp32 ? BK_FP32 : BK_BF16 }

/// All three passes through the public wrappers.
private func runWrappers(_ c: ConvCase, _ d: ConvData, _ p: Precision) throws -> ConvResults {
  let x = try Tensor(shape: c.xShape, storage: d.x)
  let w = try Tensor(shape: c.wShape, storage: d.w)
  let dy = try Tensor(shape: c.yShape, storage: d.dy)
  let y = try conv2d(
    x, weight: w, bias: Tensor(shape: [c.outChannels], storage: d.bias), geometry: c.geometry,
    precision: p)
  let dx = try conv2dBackwardData(
    dy, weight: w, inputShape: c.xShape, geometry: c.geometry, precision: p)
  let (dw, db) = try conv2dBackwardWeight(
    x, outputGradient: dy, geometry: c.geometry, precision: p)
  #expect(y.shape == c.yShape)
  #expect(dx.shape == c.xShape)
  #expect(dw.shape == c.wShape)
  #expect(db.shape == [c.outChannels])
  return ConvResults(y: y.storage, dx: dx.storage, dw: dw.storage, db: db.storage)
}

/// The backward passes through the C entry points, continuing from `dx`,
/// `dw` and `db` when `accumulate`.
private func runBackward(
  _ c: ConvCase, _ d: ConvData, _ p: Precision, accumulate: Bool,
  dx: inout [Float], dw: inout [Float], db: inout [Float]
) {
  var shape = c.kernelShape
  bk_conv2d_backward_data(kernelPrecision(p), &shape, d.dy, d.w, &dx, accumulate ? 1 : 0)
  bk_conv2d_backward_weight(
    kernelPrecision(p), &shape, d.x, d.dy, &dw, &db, accumulate ? 1 : 0)
}

// MARK: - Oracle 1: direct convolution in double precision

/// A pass evaluated in double precision, with sum |product| per element for
/// the error bound.
private struct Exact {
  var value: [Double]
  var magnitude: [Double]

  init(count: Int) {
    value = Array(repeating: 0, count: count)
    magnitude = Array(repeating: 0, count: count)
  }
}

/// y = sum over taps and input channels of w x, plus bias.
private func exactForward(_ c: ConvCase, _ d: ConvData) -> Exact {
  var e = Exact(count: c.pixels * c.outChannels)
  let cin = c.inChannels, cout = c.outChannels, k = c.k
  for m in 0..<c.pixels {
    for co in 0..<cout {
      e.value[m * cout + co] = Double(d.bias[co])
      e.magnitude[m * cout + co] = abs(Double(d.bias[co]))
    }
  }
  d.x.withUnsafeBufferPointer { x in
    d.w.withUnsafeBufferPointer { w in
      c.forEachTap { m, tap, src in
        for co in 0..<cout {
          var s = 0.0, a = 0.0
          for ci in 0..<cin {
            let p = Double(w[co * k + tap * cin + ci]) * Double(x[src * cin + ci])
            s += p
            a += abs(p)
          }
          e.value[m * cout + co] += s
          e.magnitude[m * cout + co] += a
        }
      }
    }
  }
  return e
}

/// dx[source pixel] = sum over the taps that read it of dy w.
private func exactBackwardData(_ c: ConvCase, _ d: ConvData) -> Exact {
  var e = Exact(count: c.batch * c.height * c.width * c.inChannels)
  let cin = c.inChannels, cout = c.outChannels, k = c.k
  d.dy.withUnsafeBufferPointer { dy in
    d.w.withUnsafeBufferPointer { w in
      c.forEachTap { m, tap, src in
        for ci in 0..<cin {
          var s = 0.0, a = 0.0
          for co in 0..<cout {
            let p = Double(dy[m * cout + co]) * Double(w[co * k + tap * cin + ci])
            s += p
            a += abs(p)
          }
          e.value[src * cin + ci] += s
          e.magnitude[src * cin + ci] += a
        }
      }
    }
  }
  return e
}

/// dw = sum over output pixels of dy x; dbias = sum over pixels of dy.
private func exactBackwardWeight(_ c: ConvCase, _ d: ConvData) -> (dw: Exact, db: Exact) {
  var dw = Exact(count: c.outChannels * c.k), db = Exact(count: c.outChannels)
  let cin = c.inChannels, cout = c.outChannels, k = c.k
  d.dy.withUnsafeBufferPointer { dy in
    d.x.withUnsafeBufferPointer { x in
      c.forEachTap { m, tap, src in
        for co in 0..<cout {
          let g = Double(dy[m * cout + co])
          for ci in 0..<cin {
            let p = g * Double(x[src * cin + ci])
            dw.value[co * k + tap * cin + ci] += p
            dw.magnitude[co * k + tap * cin + ci] += abs(p)
          }
        }
      }
      for m in 0..<c.pixels {
        for co in 0..<cout {
          db.value[co] += Double(dy[m * cout + co])
          db.magnitude[co] += abs(Double(dy[m * cout + co]))
        }
      }
    }
  }
  return (dw, db)
}

/// Expects |ours - exact| <= (n + 2) 2^-24 sum|products| for every element.
///
/// Each fp32 rounding (an fmaf inside a 128-deep pass, merging a pass into
/// the total, a bias or col2im addition) errs by at most 2^-24 of a partial
/// sum, and every partial sum is bounded by sum|products|, so an element
/// reduced through at most n roundings is within n 2^-24 sum|products| of the
/// exact value, to first order; `n` is the number of products summed, which
/// bounds the chain, and 2 covers the second-order terms. Comparing against
/// sum|products| rather than |exact| keeps the bound meaningful where
/// cancellation makes the result small.
private func expectWithinRounding(
  _ ours: [Float], _ exact: Exact, terms n: Int, _ label: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(ours.count == exact.value.count, "\(label): element count", sourceLocation: sourceLocation)
  let u = 1.0 / Double(1 << 24)
  var failures = 0, worst = 0.0, first = ""
  for i in 0..<min(ours.count, exact.value.count) {
    let error = abs(Double(ours[i]) - exact.value[i])
    let bound = Double(n + 2) * u * exact.magnitude[i]
    if error > bound {
      if failures == 0 { first = "element \(i): \(ours[i]) vs \(exact.value[i])" }
      failures += 1
    }
    if exact.magnitude[i] > 0 { worst = max(worst, error / bound) }
  }
  #expect(
    failures == 0, "\(label): \(failures) elements outside the bound (first \(first)); worst \(worst) x",
    sourceLocation: sourceLocation)
}

// MARK: - Oracle 2: explicit im2col + the scalar GEMM contract

/// The column matrix [pixels][K]: row m is output pixel m's receptive field
/// in (ki, kj, c) order, zero in the padding.
private func columnMatrix(_ c: ConvCase, _ x: [Float]) -> [Float] {
  var col = [Float](repeating: 0, count: c.pixels * c.k)
  let cin = c.inChannels, k = c.k
  col.withUnsafeMutableBufferPointer { col in
    x.withUnsafeBufferPointer { x in
      c.forEachTap { m, tap, src in
        for ci in 0..<cin { col[m * k + tap * cin + ci] = x[src * cin + ci] }
      }
    }
  }
  return col
}

/// `bk_gemm_reference` on arrays: c = op(a) op(b) + beta c.
private func referenceGEMM(
  _ p: Precision, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
  _ a: [Float], lda: Int, _ b: [Float], ldb: Int, beta: Float, _ c: inout [Float], ldc: Int
) {
  bk_gemm_reference(
    kernelPrecision(p), transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1,
    a, Int32(lda), b, Int32(ldb), beta, &c, Int32(ldc))
}

/// Forward as specified: y = col W^T by the GEMM contract, then + bias in
/// fp32.
private func explicitForward(_ c: ConvCase, _ d: ConvData, _ p: Precision) -> [Float] {
  var y = [Float](repeating: 0, count: c.pixels * c.outChannels)
  referenceGEMM(
    p, transB: true, m: c.pixels, n: c.outChannels, k: c.k, columnMatrix(c, d.x), lda: c.k,
    d.w, ldb: c.k, beta: 0, &y, ldc: c.outChannels)
  for i in y.indices { y[i] += d.bias[i % c.outChannels] }
  return y
}

/// Backward data as specified: dcol = dy W by the GEMM contract, then each
/// dcol element added in fp32 to the pixel it was gathered from, in pixel
/// order then tap order, onto dx0 (accumulate) or zero. A direct 1x1 conv
/// is the single GEMM dx = dy W + beta dx0 instead, its passes merged onto
/// dx0; the two agree unless accumulating with out_c > 128.
private func explicitBackwardData(
  _ c: ConvCase, _ d: ConvData, _ p: Precision, onto dx0: [Float]?
) -> [Float] {
  var dx = dx0 ?? [Float](repeating: 0, count: c.batch * c.height * c.width * c.inChannels)
  if c.direct {
    referenceGEMM(
      p, m: c.pixels, n: c.k, k: c.outChannels, d.dy, lda: c.outChannels, d.w, ldb: c.k,
      beta: dx0 == nil ? 0 : 1, &dx, ldc: c.k)
    return dx
  }
  var dcol = [Float](repeating: 0, count: c.pixels * c.k)
  referenceGEMM(
    p, m: c.pixels, n: c.k, k: c.outChannels, d.dy, lda: c.outChannels, d.w, ldb: c.k,
    beta: 0, &dcol, ldc: c.k)
  let cin = c.inChannels, k = c.k
  dx.withUnsafeMutableBufferPointer { dx in
    c.forEachTap { m, tap, src in
      for ci in 0..<cin { dx[src * cin + ci] += dcol[m * k + tap * cin + ci] }
    }
  }
  return dx
}

/// Backward weight as specified: dW = dy^T col as one GEMM over all pixels
/// (beta 1 onto dw0 when accumulating), dbias = the fp32 sum of dy over
/// pixels in order, onto db0 or zero.
private func explicitBackwardWeight(
  _ c: ConvCase, _ d: ConvData, _ p: Precision, onto start: (dw: [Float], db: [Float])?
) -> (dw: [Float], db: [Float]) {
  var dw = start?.dw ?? [Float](repeating: 0, count: c.outChannels * c.k)
  var db = start?.db ?? [Float](repeating: 0, count: c.outChannels)
  referenceGEMM(
    p, transA: true, m: c.outChannels, n: c.k, k: c.pixels, d.dy, lda: c.outChannels,
    columnMatrix(c, d.x), ldb: c.k, beta: start == nil ? 0 : 1, &dw, ldc: c.k)
  for m in 0..<c.pixels {
    for co in 0..<c.outChannels { db[co] += d.dy[m * c.outChannels + co] }
  }
  return (dw, db)
}

/// Expects identical bit patterns (NaNs and signed zeros included),
/// reporting the count and first of any differences.
private func expectIdentical(
  _ ours: [Float], _ expected: [Float], _ label: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let a = ours.map(\.bitPattern), b = expected.map(\.bitPattern)
  guard a != b else { return }
  let differing = (0..<min(a.count, b.count)).filter { a[$0] != b[$0] }
  let first = differing.first.map { "element \($0): \(ours[$0]) vs \(expected[$0])" }
    ?? "lengths \(a.count) vs \(b.count)"
  Issue.record(
    "\(label): \(differing.count) elements differ; first \(first)", sourceLocation: sourceLocation)
}

private func expectIdentical(
  _ ours: ConvResults, _ expected: ConvResults, _ label: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  expectIdentical(ours.y, expected.y, "\(label) y", sourceLocation: sourceLocation)
  expectIdentical(ours.dx, expected.dx, "\(label) dx", sourceLocation: sourceLocation)
  expectIdentical(ours.dw, expected.dw, "\(label) dw", sourceLocation: sourceLocation)
  expectIdentical(ours.db, expected.db, "\(label) dbias", sourceLocation: sourceLocation)
}

// MARK: - Cases

private func geometry(
  _ kernel: Int, stride: Int = 1, pad: Int = 0, up: Bool = false
) -> ConvolutionGeometry {
  ConvolutionGeometry(kernel: kernel, stride: stride, padding: pad, upsample: up)
}

private func asymmetric(
  _ kernelHeight: Int, _ kernelWidth: Int, stride: Int = 1, padding: (Int, Int), up: Bool = false
) -> ConvolutionGeometry {
  ConvolutionGeometry(
    kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride,
    paddingHeight: padding.0, paddingWidth: padding.1, upsample: up)
}

/// Kernel sizes 1, 3, 4, 5 and 1x3; strides 1-3; paddings 0-2; upsample on
/// and off; odd extents; and BigGAN-like layers (upsampling 3x3 blocks, a
/// wide 1x1 whose K and out_c both exceed one 128-deep pass).
private let smallCases: [ConvCase] = [
  ConvCase("1x1 direct", 3, 5, 7, 17, 5, geometry(1), seed: 1),
  ConvCase("1x1 stride 2", 2, 7, 8, 3, 5, geometry(1, stride: 2), seed: 2),
  ConvCase("1x1 pad 1", 1, 3, 3, 3, 1, geometry(1, pad: 1), seed: 3),
  ConvCase("1x1 upsample", 2, 3, 5, 17, 5, geometry(1, up: true), seed: 4),
  ConvCase("1x1 upsample stride 2", 1, 5, 3, 3, 17, geometry(1, stride: 2, up: true), seed: 5),
  ConvCase("3x3 same", 2, 8, 8, 3, 17, geometry(3, pad: 1), seed: 6),
  ConvCase("3x3 stride 2", 3, 7, 5, 17, 5, geometry(3, stride: 2, pad: 1), seed: 7),
  ConvCase("3x3 valid", 1, 5, 5, 1, 1, geometry(3), seed: 8),
  ConvCase("3x3 stride 2 pad 2", 2, 8, 7, 3, 5, geometry(3, stride: 2, pad: 2), seed: 9),
  ConvCase("3x3 stride 3", 1, 7, 8, 3, 5, geometry(3, stride: 3), seed: 10),
  ConvCase("3x3 pad 2 on 1x1", 3, 1, 1, 3, 5, geometry(3, pad: 2), seed: 11),
  ConvCase("3x3 upsample", 2, 3, 3, 17, 5, geometry(3, pad: 1, up: true), seed: 12),
  ConvCase("3x3 upsample stride 2", 1, 5, 7, 3, 17, geometry(3, stride: 2, pad: 1, up: true), seed: 13),
  ConvCase("4x4 stride 2", 2, 8, 8, 3, 5, geometry(4, stride: 2, pad: 1), seed: 14),
  ConvCase("5x5 upsample", 1, 3, 5, 3, 17, geometry(5, pad: 2, up: true), seed: 15),
  ConvCase("5x5 upsample stride 2 on 1x1", 2, 1, 1, 3, 5, geometry(5, stride: 2, pad: 2, up: true), seed: 16),
  ConvCase(
    "1x3", 2, 5, 3, 3, 5, ConvolutionGeometry(kernelHeight: 1, kernelWidth: 3, padding: 1), seed: 17),
]

private let bigGANCases: [ConvCase] = [
  ConvCase("BigGAN up 3x3", 2, 4, 4, 128, 64, geometry(3, pad: 1, up: true), seed: 20),
  ConvCase("BigGAN 3x3", 2, 8, 8, 64, 96, geometry(3, pad: 1), seed: 21),
  ConvCase("BigGAN 1x1 wide", 2, 4, 4, 160, 144, geometry(1), seed: 22),
]

/// Inception-v3's kernels: 1x7, 7x1, 1x3 and 3x1 padded along their long
/// side only, 5x5 padding 2, 3x3 valid with strides 1 and 2; odd extents
/// and 1, 3 and 17 channels on either side.
private let inceptionCases: [ConvCase] = [
  ConvCase("1x7 pad (0,3)", 2, 5, 9, 17, 3, asymmetric(1, 7, padding: (0, 3)), seed: 60),
  ConvCase("7x1 pad (3,0)", 1, 9, 4, 3, 17, asymmetric(7, 1, padding: (3, 0)), seed: 61),
  ConvCase("1x3 pad (0,1)", 3, 3, 5, 1, 17, asymmetric(1, 3, padding: (0, 1)), seed: 62),
  ConvCase("3x1 pad (1,0)", 2, 7, 3, 17, 1, asymmetric(3, 1, padding: (1, 0)), seed: 63),
  ConvCase("5x5 pad 2", 2, 7, 9, 3, 5, geometry(5, pad: 2), seed: 64),
  ConvCase("3x3 stride 2 valid", 2, 9, 7, 17, 3, geometry(3, stride: 2), seed: 65),
  ConvCase("3x3 valid", 3, 7, 5, 3, 17, geometry(3), seed: 66),
  ConvCase("1x7 stride 2 pad (0,3)", 1, 7, 11, 3, 5, asymmetric(1, 7, stride: 2, padding: (0, 3)), seed: 67),
  ConvCase("3x1 pad (1,0) upsample", 1, 3, 5, 17, 3, asymmetric(3, 1, padding: (1, 0), up: true), seed: 68),
  ConvCase("1x1 pad (0,1)", 2, 3, 3, 3, 5, asymmetric(1, 1, padding: (0, 1)), seed: 69),
]

/// Inception-like layers large enough for teams of two in every stage.
private let inceptionTeamCases: [ConvCase] = [
  ConvCase("Inception 1x7", 2, 17, 17, 64, 48, asymmetric(1, 7, padding: (0, 3)), seed: 70),
  ConvCase("Inception 7x1", 2, 17, 17, 48, 64, asymmetric(7, 1, padding: (3, 0)), seed: 71),
]

private let allCases = smallCases + bigGANCases + inceptionCases + inceptionTeamCases

/// Shapes large enough for multi-thread teams in every stage (GEMM, im2col,
/// col2im over images and over channel slices, dbias over channel slices).
private let teamCases: [ConvCase] = [
  bigGANCases[0],
  ConvCase("one image, channel slices", 1, 16, 16, 32, 64, geometry(3, pad: 1, up: true), seed: 30),
  bigGANCases[2],
] + inceptionTeamCases

/// Shapes whose column matrix exceeds one band: 8192 pixels of K = 576 make
/// a band of 7168 rows that spans both images, then a partial band; K =
/// 18432 is too wide for the budget, so bands fall to the 256-row minimum
/// (256 + 33 rows).
private let bandCases: [ConvCase] = [
  ConvCase("bands span images", 2, 32, 32, 64, 4, geometry(3, pad: 1, up: true), seed: 40),
  ConvCase("minimum bands", 1, 17, 17, 2048, 8, geometry(3, pad: 1), seed: 41),
]

// MARK: - Specification

/// The rounding bounds and bit-exact oracles below are those of im2col +
/// GEMM, so those tests force it; fp32 3x3 stride 1 pad 1 shapes would
/// otherwise go to Winograd (see WinogradTests). The path and thread-count
/// tests run with the automatic choice: both algorithms must pass them.
@Suite(.serialized)
struct ConvolutionTests {
  @Test("The output extent is (H' + 2 pad - kernel) / stride + 1, H' = 2H with upsample")
  func outputExtent() {
    let cases: [(h: Int, w: Int, g: ConvolutionGeometry, out: (Int, Int)?)] = [
      (8, 8, geometry(3, pad: 1), (8, 8)),
      (4, 4, geometry(3, pad: 1, up: true), (8, 8)),
      (7, 5, geometry(3, stride: 2, pad: 1), (4, 3)),
      (8, 8, geometry(4, stride: 2, pad: 1), (4, 4)),
      (7, 8, geometry(3, stride: 3), (2, 2)),
      (1, 1, geometry(3, pad: 2), (3, 3)),
      (3, 3, geometry(5, pad: 1), (1, 1)),
      (5, 3, ConvolutionGeometry(kernelHeight: 1, kernelWidth: 3, padding: 1), (7, 3)),
      (17, 17, asymmetric(1, 7, padding: (0, 3)), (17, 17)),
      (17, 9, asymmetric(7, 1, padding: (3, 0)), (17, 9)),
      (8, 5, asymmetric(1, 3, padding: (0, 1)), (8, 5)),
      (149, 149, geometry(3), (147, 147)),
      (35, 35, geometry(3, stride: 2), (17, 17)),
      (2, 9, asymmetric(3, 1, padding: (0, 1)), nil),
      (4, 4, asymmetric(3, 3, padding: (1, -1)), nil),
      (2, 2, geometry(5), nil),
      (2, 2, geometry(5, up: true), nil),
      (4, 4, geometry(3, stride: 0), nil),
      (4, 4, geometry(3, pad: -1), nil),
      (4, 4, geometry(0), nil),
      (0, 4, geometry(1), nil),
    ]
    for t in cases {
      let size = t.g.outputSize(height: t.h, width: t.w)
      #expect(size?.height == t.out?.0 && size?.width == t.out?.1, "\(t.h)x\(t.w) \(t.g)")
      var shape = bk_conv_shape(
        batch: 1, in_h: Int32(t.h), in_w: Int32(t.w), in_c: 1, out_c: 1,
        kernel_h: Int32(t.g.kernelHeight), kernel_w: Int32(t.g.kernelWidth),
        stride: Int32(t.g.stride), pad_h: Int32(t.g.paddingHeight),
        pad_w: Int32(t.g.paddingWidth), upsample: t.g.upsample ? 1 : 0)
      #expect(Int(bk_conv_out_h(&shape)) == (t.out?.0 ?? -1), "\(t.h)x\(t.w) \(t.g)")
      #expect(Int(bk_conv_out_w(&shape)) == (t.out?.1 ?? -1), "\(t.h)x\(t.w) \(t.g)")
    }
    #expect(bk_conv_out_h(nil) == -1)
  }

  @Test("fp32 forward matches a direct double-precision convolution", arguments: allCases)
  fileprivate func forwardIsAConvolution(_ c: ConvCase) throws {
    let d = ConvData(c)
    let y = try withConvolutionAlgorithm(.im2col) { try runWrappers(c, d, .fp32) }.y
    expectWithinRounding(y, exactForward(c, d), terms: c.k + 1, "y")
  }

  @Test("fp32 backward data matches the exact input gradient", arguments: allCases)
  fileprivate func backwardDataIsTheInputGradient(_ c: ConvCase) throws {
    let d = ConvData(c)
    let dx = try withConvolutionAlgorithm(.im2col) { try runWrappers(c, d, .fp32) }.dx
    // Upsample lets up to 4 kh kw taps read one input pixel, each a sum of
    // out_c products.
    expectWithinRounding(dx, exactBackwardData(c, d), terms: 4 * c.kh * c.kw * c.outChannels, "dx")
  }

  @Test("fp32 backward weight and bias match the exact parameter gradients", arguments: allCases)
  fileprivate func backwardWeightIsTheParameterGradient(_ c: ConvCase) throws {
    let d = ConvData(c)
    let r = try runWrappers(c, d, .fp32)
    let exact = exactBackwardWeight(c, d)
    expectWithinRounding(r.dw, exact.dw, terms: c.pixels, "dw")
    expectWithinRounding(r.db, exact.db, terms: c.pixels, "dbias")
  }

  /// Without im2col forced, a 1x1 convolution of an upsampled input runs
  /// before the upsample: the same GEMM rows forward, so the same bits;
  /// backward, each input pixel's four gradients are summed before the
  /// product, two more roundings within the bounds above.
  @Test(
    "A 1x1 convolution of an upsampled input runs before the upsample",
    arguments: [smallCases[3], ConvCase("BigGAN skip", 2, 4, 4, 128, 64, geometry(1, up: true), seed: 23)])
  fileprivate func pointwiseBeforeUpsample(_ c: ConvCase) throws {
    let d = ConvData(c)
    let r = try runWrappers(c, d, .fp32)
    let im2col = try withConvolutionAlgorithm(.im2col) { try runWrappers(c, d, .fp32) }
    expectIdentical(r.y, im2col.y, "y")
    expectWithinRounding(r.dx, exactBackwardData(c, d), terms: 4 * c.outChannels, "dx")
    let exact = exactBackwardWeight(c, d)
    expectWithinRounding(r.dw, exact.dw, terms: c.pixels, "dw")
    expectWithinRounding(r.db, exact.db, terms: c.pixels, "dbias")
  }

  /// The strongest statement of the precision contract: both precisions
  /// give exactly the bits of an explicit im2col followed by the scalar
  /// GEMM reference (bf16 operand rounding, 128-deep passes), for all three
  /// passes, so bf16 convolution is the TPU matrix unit's arithmetic.
  @Test("Every pass equals explicit im2col + bk_gemm_reference bit for bit", arguments: allCases)
  fileprivate func passesAreTheGEMMContract(_ c: ConvCase) throws {
    let d = ConvData(c)
    for p in Precision.allCases {
      let r = try withConvolutionAlgorithm(.im2col) { try runWrappers(c, d, p) }
      let weight = explicitBackwardWeight(c, d, p, onto: nil)
      expectIdentical(r.y, explicitForward(c, d, p), "\(p) y")
      expectIdentical(r.dx, explicitBackwardData(c, d, p, onto: nil), "\(p) dx")
      expectIdentical(r.dw, weight.dw, "\(p) dw")
      expectIdentical(r.db, weight.db, "\(p) dbias")
    }
  }

  @Test(
    "accumulate = 1 continues from the gradients already held",
    arguments: [smallCases[0], smallCases[6], smallCases[11], bigGANCases[2]])
  fileprivate func accumulateContinues(_ c: ConvCase) {
    let d = ConvData(c)
    var rng = SplitMix64(seed: c.seed &+ 1000)
    let dx0 = rng.array(d.x.count), dw0 = rng.array(d.w.count), db0 = rng.array(c.outChannels)
    for p in Precision.allCases {
      var dx = dx0, dw = dw0, db = db0
      withConvolutionAlgorithm(.im2col) {
        runBackward(c, d, p, accumulate: true, dx: &dx, dw: &dw, db: &db)
      }
      let weight = explicitBackwardWeight(c, d, p, onto: (dw0, db0))
      expectIdentical(dx, explicitBackwardData(c, d, p, onto: dx0), "\(p) dx")
      expectIdentical(dw, weight.dw, "\(p) dw")
      expectIdentical(db, weight.db, "\(p) dbias")
      // accumulate = 0 ignores whatever the buffers held, NaN included.
      dx = Array(repeating: .nan, count: dx0.count)
      dw = Array(repeating: .nan, count: dw0.count)
      db = Array(repeating: .nan, count: db0.count)
      withConvolutionAlgorithm(.im2col) {
        runBackward(c, d, p, accumulate: false, dx: &dx, dw: &dw, db: &db)
      }
      let fresh = explicitBackwardWeight(c, d, p, onto: nil)
      expectIdentical(dx, explicitBackwardData(c, d, p, onto: nil), "\(p) dx overwritten")
      expectIdentical(dw, fresh.dw, "\(p) dw overwritten")
      expectIdentical(db, fresh.db, "\(p) dbias overwritten")
    }
  }

  /// Bands of the column matrix are an implementation detail: the results
  /// equal one GEMM over every pixel, bit for bit, including backward
  /// weight, whose reduction runs over pixels.
  @Test("Banding the column matrix changes no bit", arguments: bandCases)
  fileprivate func bandsAreInvisible(_ c: ConvCase) throws {
    let d = ConvData(c)
    for p in Precision.allCases {
      let r = try withConvolutionAlgorithm(.im2col) { try runWrappers(c, d, p) }
      let weight = explicitBackwardWeight(c, d, p, onto: nil)
      expectIdentical(r.y, explicitForward(c, d, p), "\(p) y")
      expectIdentical(r.dx, explicitBackwardData(c, d, p, onto: nil), "\(p) dx")
      expectIdentical(r.dw, weight.dw, "\(p) dw")
      expectIdentical(r.db, weight.db, "\(p) dbias")
    }
  }

  @Test("Every instruction-set path gives the same bits")
  func instructionSetsAgree() throws {
    let cases = [smallCases[6], smallCases[12]] + inceptionCases + teamCases
    for p in Precision.allCases {
      for c in cases {
        let d = ConvData(c)
        let scalar = try Machine.with(instructionSet: .scalar) { try runWrappers(c, d, p) }
        try forEachInstructionSet { isa in
          guard isa > .scalar else { return }
          expectIdentical(try runWrappers(c, d, p), scalar, "\(c.name) \(p) \(isa) vs scalar")
        }
      }
    }
  }

  /// bf16 convolutions hand the GEMM their column matrix in bf16; on the
  /// emulating paths its packing must still mark the panels whose operands
  /// are small enough for the contract's flush to matter. x and dy scaled
  /// to 2^-120 and w to 2^-6 put the products near 2^-126 with only the
  /// activations' panels marked, where a missed mark changes bits.
  @Test("bf16 products near the flush threshold give the contract's bits on every path")
  func tinyOperandsFollowTheContract() throws {
    for c in [smallCases[5], smallCases[11], smallCases[13]] {
      var plain = ConvData(c)
      plain.bias = plain.bias.map { _ in 0 }
      var d = plain
      d.x = d.x.map { $0 * 0x1p-120 }
      d.w = d.w.map { $0 * 0x1p-6 }
      d.dy = d.dy.map { $0 * 0x1p-120 }
      let weight = explicitBackwardWeight(c, d, .bf16, onto: nil)
      let y = explicitForward(c, d, .bf16)
      let dx = explicitBackwardData(c, d, .bf16, onto: nil)
      // Without the flush every sum would be the plain one scaled by 2^-126.
      let scaled = explicitForward(c, plain, .bf16).map { $0 * 0x1p-126 }
      #expect(zip(y, scaled).contains { $0 != $1 }, "\(c.name): the flush changes some sums")
      try forEachInstructionSet { isa in
        let r = try withConvolutionAlgorithm(.im2col) { try runWrappers(c, d, .bf16) }
        expectIdentical(r.y, y, "\(c.name) \(isa) y")
        expectIdentical(r.dx, dx, "\(c.name) \(isa) dx")
        expectIdentical(r.dw, weight.dw, "\(c.name) \(isa) dw")
      }
    }
  }

  /// A bf16 layer may keep only its input's bf16 bits for the backward
  /// (`Conv2d.keepsInputAsBFloat16`): the weight gradient from them must be
  /// the one from the fp32 input, on every route the backward can take.
  @Test(
    "bf16 weight gradients from the input's bf16 bits are those from its fp32 values, every path and algorithm, 1 and 2 threads",
    arguments: allCases + [bandCases[0]])
  fileprivate func weightGradientFromBFloat16Input(_ c: ConvCase) throws {
    let d = ConvData(c)
    let x = try Tensor(shape: c.xShape, storage: d.x), dy = try Tensor(shape: c.yShape, storage: d.dy)
    let x16 = BFloat16Tensor(rounding: x)
    #expect(x16.shape == c.xShape && x16.bits == BFloat16.bits(d.x))
    for algorithm in ConvolutionAlgorithm.allCases {
      try withConvolutionAlgorithm(algorithm) {
        try forEachInstructionSet { isa in
          for threads in [1, 2] {
            let label = "\(c.name) \(algorithm) \(isa) \(threads) threads"
            let fp32 = try withThreads(threads) {
              try conv2dBackwardWeight(x, outputGradient: dy, geometry: c.geometry, precision: .bf16)
            }
            let bf16 = try withThreads(threads) {
              try conv2dBackwardWeight(x16, outputGradient: dy, geometry: c.geometry)
            }
            expectIdentical(bf16.weight.storage, fp32.weight.storage, "\(label) dw")
            expectIdentical(bf16.bias.storage, fp32.bias.storage, "\(label) dbias")
          }
        }
      }
    }
    var rng = SplitMix64(seed: c.seed &+ 2000)
    let dw0 = rng.array(d.w.count), db0 = rng.array(c.outChannels)
    var shape = c.kernelShape
    var dw = dw0, db = db0, dw16 = dw0, db16 = db0
    bk_conv2d_backward_weight(BK_BF16, &shape, d.x, d.dy, &dw, &db, 1)
    bk_conv2d_backward_weight_bf16(&shape, x16.bits, d.dy, &dw16, &db16, 1)
    expectIdentical(dw16, dw, "\(c.name) accumulated dw")
    expectIdentical(db16, db, "\(c.name) accumulated dbias")
  }

  @Test("One thread and two threads give the same bits")
  func threadCountIsInvisible() throws {
    for p in Precision.allCases {
      for c in teamCases + [bandCases[0]] {
        let d = ConvData(c)
        let one = try withThreads(1) { try runWrappers(c, d, p) }
        let two = try withThreads(2) { try runWrappers(c, d, p) }
        expectIdentical(two, one, "\(c.name) \(p) 2 threads vs 1")
      }
    }
  }

  /// The loss L = sum(dy * conv(x, w) + bias) is linear in each of x, w and
  /// bias, so a central difference has no truncation error; a wide step
  /// (0.25) keeps the fp32 rounding of the forward pass, ~1e-5 of L here,
  /// well under the 1e-3 tolerance, while a wrong tap or index would be off
  /// by a whole term (~0.1 or more).
  @Test(
    "Gradients match central differences of sum(dy * y)",
    arguments: [
      ConvCase("fd", 2, 3, 3, 2, 3, geometry(3, stride: 2, pad: 1, up: true), seed: 50),
      ConvCase("fd 1x3 pad (0,1)", 2, 3, 4, 2, 3, asymmetric(1, 3, padding: (0, 1)), seed: 51),
      ConvCase(
        "fd 3x1 stride 2 pad (1,0)", 1, 5, 3, 2, 3, asymmetric(3, 1, stride: 2, padding: (1, 0)),
        seed: 52),
    ])
  fileprivate func finiteDifferences(_ c: ConvCase) throws {
    let d = ConvData(c)
    let r = try runWrappers(c, d, .fp32)
    func loss(_ x: [Float], _ w: [Float], _ bias: [Float]) throws -> Double {
      let y = try conv2d(
        Tensor(shape: c.xShape, storage: x), weight: Tensor(shape: c.wShape, storage: w),
        bias: Tensor(shape: [c.outChannels], storage: bias), geometry: c.geometry)
      var sum = 0.0
      for (a, b) in zip(y.storage, d.dy) { sum += Double(a) * Double(b) }
      return sum
    }
    let h: Float = 0.25
    func central(_ base: [Float], _ i: Int, _ eval: ([Float]) throws -> Double) rethrows -> Double {
      var plus = base, minus = base
      plus[i] += h
      minus[i] -= h
      return (try eval(plus) - eval(minus)) / Double(2 * h)
    }
    func check(_ analytic: [Float], _ base: [Float], _ name: String, _ eval: ([Float]) throws -> Double) rethrows {
      for i in base.indices {
        let fd = try central(base, i, eval)
        #expect(abs(fd - Double(analytic[i])) <= 1e-3 * (1 + abs(fd)), "\(name)[\(i)]: \(analytic[i]) vs \(fd)")
      }
    }
    try check(r.dx, d.x, "dx") { try loss($0, d.w, d.bias) }
    try check(r.dw, d.w, "dw") { try loss(d.x, $0, d.bias) }
    try check(r.db, d.bias, "dbias") { try loss(d.x, d.w, $0) }
  }

  @Test("The wrappers reject shapes that do not fit, naming the argument")
  func wrappersRejectBadShapes() throws {
    let g = geometry(3, pad: 1)
    let x = Tensor(shape: [2, 4, 4, 3]), w = Tensor(shape: [5, 3, 3, 3])
    let dy = Tensor(shape: [2, 4, 4, 5])
    func expectShapeError(
      _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
      _ body: () throws -> Void
    ) {
      do {
        try body()
        Issue.record("no error; expected one mentioning \"\(fragment)\"", sourceLocation: sourceLocation)
      } catch {
        guard case KernelError.shape(let message) = error else {
          Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
          return
        }
        #expect(message.contains(fragment), "\(message)", sourceLocation: sourceLocation)
      }
    }
    // Forward.
    expectShapeError("x has shape [2, 4, 4]") {
      _ = try conv2d(Tensor(shape: [2, 4, 4]), weight: w, bias: nil, geometry: g)
    }
    expectShapeError("weight has shape [5, 3, 3, 4]") {
      _ = try conv2d(x, weight: Tensor(shape: [5, 3, 3, 4]), bias: nil, geometry: g)
    }
    expectShapeError("weight has shape [5, 1, 1, 3]") {
      _ = try conv2d(x, weight: Tensor(shape: [5, 1, 1, 3]), bias: nil, geometry: g)
    }
    expectShapeError("weight has shape [0, 3, 3, 3]") {
      _ = try conv2d(x, weight: Tensor(shape: [0, 3, 3, 3]), bias: nil, geometry: g)
    }
    expectShapeError("bias has shape [4], expected [5]") {
      _ = try conv2d(x, weight: w, bias: Tensor(shape: [4]), geometry: g)
    }
    expectShapeError("does not fit") {
      _ = try conv2d(x, weight: Tensor(shape: [5, 7, 7, 3]), bias: nil, geometry: geometry(7))
    }
    expectShapeError("stride >= 1") {
      _ = try conv2d(x, weight: w, bias: nil, geometry: geometry(3, stride: 0))
    }
    expectShapeError("empty extent") {
      _ = try conv2d(Tensor(shape: [0, 4, 4, 3]), weight: w, bias: nil, geometry: g)
    }
    // Backward data.
    expectShapeError("inputShape") {
      _ = try conv2dBackwardData(dy, weight: w, inputShape: [2, 4, 4], geometry: g)
    }
    expectShapeError("dy has shape [2, 4, 4, 5], expected [2, 2, 2, 5]") {
      _ = try conv2dBackwardData(
        dy, weight: w, inputShape: [2, 4, 4, 3], geometry: geometry(3, stride: 2, pad: 1))
    }
    expectShapeError("weight has shape [5, 3, 3, 3]") {
      _ = try conv2dBackwardData(dy, weight: w, inputShape: [2, 4, 4, 2], geometry: g)
    }
    // Backward weight.
    expectShapeError("dy has shape [2, 4, 4]") {
      _ = try conv2dBackwardWeight(x, outputGradient: Tensor(shape: [2, 4, 4]), geometry: g)
    }
    expectShapeError("dy has shape [2, 8, 8, 5], expected [2, 4, 4, outChannels >= 1]") {
      _ = try conv2dBackwardWeight(x, outputGradient: Tensor(shape: [2, 8, 8, 5]), geometry: g)
    }
    expectShapeError("dy has shape [2, 4, 4, 0]") {
      _ = try conv2dBackwardWeight(x, outputGradient: Tensor(shape: [2, 4, 4, 0]), geometry: g)
    }
    // Well-formed calls still work.
    #expect(try conv2d(x, weight: w, bias: nil, geometry: g).shape == [2, 4, 4, 5])
  }

  @Test("Invalid shapes leave every buffer untouched")
  func invalidShapesTouchNothing() {
    let valid = bk_conv_shape(
      batch: 1, in_h: 4, in_w: 4, in_c: 2, out_c: 2, kernel_h: 3, kernel_w: 3, stride: 1,
      pad_h: 1, pad_w: 1, upsample: 0)
    var invalid: [bk_conv_shape] = []
    func variant(_ change: (inout bk_conv_shape) -> Void) {
      var s = valid
      change(&s)
      invalid.append(s)
    }
    variant { $0.batch = 0 }
    variant { $0.in_h = -1 }
    variant { $0.in_c = 0 }
    variant { $0.out_c = 0 }
    variant { $0.kernel_w = 0 }
    variant { $0.stride = 0 }
    variant { $0.pad_h = -1 }
    variant { $0.pad_w = -1 }
    variant { $0.kernel_w = 7; $0.pad_w = 0 }  // wider than the 4-column input, rows padded
    variant { $0.upsample = 2 }
    variant { $0.kernel_h = 7 }  // larger than the padded 6-row input
    variant { $0.in_h = Int32.max; $0.upsample = 1 }  // indices beyond 32 bits
    variant { $0.batch = 1 << 20; $0.in_h = 1 << 10; $0.in_w = 1 << 10 }  // 2^40 pixels
    let sentinel: Float = 7
    for var s in invalid {
      #expect(bk_conv_out_h(&s) == -1 && bk_conv_out_w(&s) == -1, "\(s)")
      let a = [Float](repeating: sentinel, count: 256), b = a
      var out = a, extra = a
      for p in [BK_FP32, BK_BF16] {
        bk_conv2d_forward(p, &s, a, b, extra, &out)
        bk_conv2d_backward_data(p, &s, a, b, &out, 0)
        bk_conv2d_backward_weight(p, &s, a, b, &out, &extra, 0)
      }
      #expect(out.allSatisfy { $0 == sentinel } && extra.allSatisfy { $0 == sentinel }, "\(s)")
    }
  }
}
