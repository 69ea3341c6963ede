import CKernels

/// Where a 2-D convolution's kernel goes: its size, stride, zero padding
/// and an optional nearest-neighbour 2x upsample of the input.
///
/// With `upsample`, the kernel slides over a `2H x 2W` image whose pixel
/// `(y, x)` is input pixel `(y / 2, x / 2)`; that image is never stored.
/// The output is `(H' + 2 paddingHeight - kernelHeight) / stride + 1` high
/// and `(W' + 2 paddingWidth - kernelWidth) / stride + 1` wide, where `H'`
/// and `W'` are `H` and `W`, or `2H` and `2W` with `upsample`.
public struct ConvolutionGeometry: Hashable, Sendable {
  /// Kernel rows, at least 1.
  public var kernelHeight: Int
  /// Kernel columns, at least 1.
  public var kernelWidth: Int
  /// Step between output pixels in (upsampled) input pixels, in both
  /// directions, at least 1.
  public var stride: Int
  /// Zero rows added above and below the (upsampled) input.
  public var paddingHeight: Int
  /// Zero columns added left and right of the (upsampled) input.
  public var paddingWidth: Int
  /// Whether the input is first enlarged 2x by nearest neighbour.
  public var upsample: Bool

  /// A `kernelHeight x kernelWidth` kernel with `paddingHeight` zero rows
  /// above and below and `paddingWidth` zero columns on either side
  /// (Inception's 1x7 kernels take padding `(0, 3)`).
  public init(
    kernelHeight: Int, kernelWidth: Int, stride: Int = 1, paddingHeight: Int,
    paddingWidth: Int, upsample: Bool = false
  ) {
    self.kernelHeight = kernelHeight
    self.kernelWidth = kernelWidth
    self.stride = stride
    self.paddingHeight = paddingHeight
    self.paddingWidth = paddingWidth
    self.upsample = upsample
  }

  /// A `kernelHeight x kernelWidth` kernel with `padding` zeros on every
  /// side.
  public init(
    kernelHeight: Int, kernelWidth: Int, stride: Int = 1, padding: Int = 0,
    upsample: Bool = false
  ) {
    self.init(
      kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride,
      paddingHeight: padding, paddingWidth: padding, upsample: upsample)
  }

  /// A square `kernel x kernel` kernel with `padding` zeros on every side.
  public init(kernel: Int, stride: Int = 1, padding: Int = 0, upsample: Bool = false) {
    self.init(
      kernelHeight: kernel, kernelWidth: kernel, stride: stride, padding: padding,
      upsample: upsample)
  }

  /// The output extents for a `height x width` input, or `nil` when the
  /// geometry is invalid, the kernel does not fit the padded input or an
  /// extent exceeds the kernels' 32-bit range.
  public func outputSize(height: Int, width: Int) -> (height: Int, width: Int)? {
    let limit = Int(Int32.max)
    guard kernelHeight >= 1, kernelWidth >= 1, stride >= 1, paddingHeight >= 0,
      paddingWidth >= 0, height >= 1, width >= 1,
      [kernelHeight, kernelWidth, stride, paddingHeight, paddingWidth, height, width]
        .allSatisfy({ $0 <= limit })
    else { return nil }
    let scale = upsample ? 2 : 1
    let spanH = height * scale + 2 * paddingHeight - kernelHeight
    let spanW = width * scale + 2 * paddingWidth - kernelWidth
    guard spanH >= 0, spanW >= 0 else { return nil }
    return (spanH / stride + 1, spanW / stride + 1)
  }

  var summary: String {
    let padding =
      paddingHeight == paddingWidth ? "\(paddingHeight)" : "(\(paddingHeight), \(paddingWidth))"
    return "\(kernelHeight)x\(kernelWidth) kernel, stride \(stride), padding \(padding)"
      + (upsample ? ", upsample" : "")
  }

  /// Checks the geometry against an input of shape `input` (NHWC) and an
  /// output channel count, and returns the kernels' shape with the output
  /// shape `[batch, outHeight, outWidth, outChannels]`.
  func shapes(_ function: String, input: [Int], outChannels: Int) throws(KernelError)
    -> (shape: bk_conv_shape, output: [Int])
  {
    guard kernelHeight >= 1, kernelWidth >= 1, stride >= 1, paddingHeight >= 0, paddingWidth >= 0
    else {
      throw .shape(
        "\(function): geometry has a \(summary); expected kernel extents >= 1, stride >= 1, padding >= 0")
    }
    guard input.allSatisfy({ $0 >= 1 }) else {
      throw .shape(
        "\(function): input shape \(input) has an empty extent; expected [batch, height, width, channels], all positive")
    }
    try checkInt32(input[0], input[1], input[2], input[3], outChannels)
    try checkInt32(kernelHeight, kernelWidth, stride, paddingHeight, paddingWidth)
    guard let out = outputSize(height: input[1], width: input[2]) else {
      let (h, w) = upsample ? (2 * input[1], 2 * input[2]) : (input[1], input[2])
      throw .shape(
        "\(function): a \(summary) does not fit the \(h)x\(w)\(upsample ? " upsampled" : "") input; the output would be empty")
    }
    var shape = bk_conv_shape(
      batch: Int32(input[0]), in_h: Int32(input[1]), in_w: Int32(input[2]),
      in_c: Int32(input[3]), out_c: Int32(outChannels),
      kernel_h: Int32(kernelHeight), kernel_w: Int32(kernelWidth),
      stride: Int32(stride), pad_h: Int32(paddingHeight), pad_w: Int32(paddingWidth),
      upsample: upsample ? 1 : 0)
    guard Int(bk_conv_out_h(&shape)) == out.height, Int(bk_conv_out_w(&shape)) == out.width
    else {
      throw .shape(
        "\(function): input \(input) with a \(summary) exceeds the kernels' 32-bit index limit")
    }
    return (shape, [input[0], out.height, out.width, outChannels])
  }
}

/// Checks that `weight` is `[outChannels, kernelHeight, kernelWidth,
/// inChannels]` for `geometry` and returns `outChannels`.
private func checkWeight(
  _ function: String, _ weight: Tensor, inChannels: Int, _ geometry: ConvolutionGeometry
) throws(KernelError) -> Int {
  let ws = weight.shape
  let outChannels = ws.first ?? 0
  let expected = [outChannels, geometry.kernelHeight, geometry.kernelWidth, inChannels]
  guard ws.count == 4, outChannels >= 1, ws == expected else {
    throw .shape(
      "\(function): weight has shape \(ws), expected [outChannels >= 1, \(geometry.kernelHeight), \(geometry.kernelWidth), \(inChannels)] ([out channels, kernel height, kernel width, in channels])")
  }
  return outChannels
}

/// Checks that `x` is rank 4 (NHWC) and returns its shape.
private func checkActivation(_ function: String, _ x: Tensor, _ name: String) throws(KernelError)
  -> [Int]
{
  try checkActivation(function, shape: x.shape, name)
}

private func checkActivation(_ function: String, shape: [Int], _ name: String) throws(KernelError)
  -> [Int]
{
  guard shape.count == 4 else {
    throw .shape(
      "\(function): \(name) has shape \(shape), expected rank 4 [batch, height, width, channels]")
  }
  return shape
}

/// The 2-D convolution `y = conv(x, weight) + bias`, through a ReLU when
/// `relu`.
///
/// - Parameters:
///   - x: `[batch, height, width, inChannels]`.
///   - weight: `[outChannels, kernelHeight, kernelWidth, inChannels]`.
///   - bias: `[outChannels]`, or `nil` for none.
///   - plan: a plan made for `weight` (see `WeightPlan`): the same bits,
///     without repacking or retransforming the weight on every call.
///   - relu: whether every output `v` becomes `max(v, 0)` as it is written
///     (the bits of `relu(_:)` applied afterwards, without the extra pass).
/// - Returns: `y`, `[batch, outHeight, outWidth, outChannels]` with the
///   extents of `geometry.outputSize`.
/// - Throws: `KernelError.shape` when the shapes do not fit together.
public func conv2d(
  _ x: Tensor, weight: Tensor, bias: Tensor?, geometry: ConvolutionGeometry,
  precision: Precision = .fp32, plan: WeightPlan? = nil, relu: Bool = false
) throws(KernelError) -> Tensor {
  let xs = try checkActivation("conv2d", x, "x")
  let outChannels = try checkWeight("conv2d", weight, inChannels: xs[3], geometry)
  let (_, outShape) = try geometry.shapes("conv2d", input: xs, outChannels: outChannels)
  var y = Tensor(overwrittenShape: outShape)
  try conv2d(
    x, weight: weight, bias: bias, geometry: geometry, precision: precision, plan: plan,
    relu: relu, into: &y)
  return y
}

/// The 2-D convolution of a slice of `x`'s channels, written into a slice
/// of `y`'s channels: an Inception branch that reads part of a
/// concatenated tensor and writes its own part of the concatenated output,
/// with no copies.
///
/// Reads channels `inputChannels` of every pixel of `x` and writes
/// `conv + bias` (through a ReLU when `relu`) to channels `channelOffset
/// ..< channelOffset + outChannels` of every pixel of `y`; `y`'s other
/// channels keep what they held. The slice gets exactly the bits that
/// `conv2d` of the sliced input would return.
///
/// - Parameters:
///   - x: `[batch, height, width, channels]`.
///   - inputChannels: the channels the convolution reads, within
///     `0..<channels`; `nil` for all of them.
///   - weight: `[outChannels, kernelHeight, kernelWidth,
///     inputChannels.count]`.
///   - bias: `[outChannels]`, or `nil` for none.
///   - plan: a plan made for `weight` (see `WeightPlan`).
///   - relu: whether every output `v` becomes `max(v, 0)` as it is written.
///   - y: `[batch, outHeight, outWidth, yChannels]` with the extents of
///     `geometry.outputSize`, `yChannels >= channelOffset + outChannels`.
///   - channelOffset: the first of `y`'s channels the result goes to.
/// - Throws: `KernelError.shape` when the shapes, the channel range or the
///   offset do not fit together; `y` is then untouched.
public func conv2d(
  _ x: Tensor, inputChannels: Range<Int>? = nil, weight: Tensor, bias: Tensor?,
  geometry: ConvolutionGeometry, precision: Precision = .fp32, plan: WeightPlan? = nil,
  relu: Bool = false, into y: inout Tensor, channelOffset: Int = 0
) throws(KernelError) {
  let xs = try checkActivation("conv2d", x, "x")
  let channels = inputChannels ?? 0..<xs[3]
  guard channels.lowerBound >= 0, channels.upperBound <= xs[3], !channels.isEmpty else {
    throw .shape(
      "conv2d: inputChannels \(channels) is not a non-empty range within x's \(xs[3]) channels")
  }
  let outChannels = try checkWeight("conv2d", weight, inChannels: channels.count, geometry)
  if let bias { try bias.expect([outChannels], "conv2d: bias") }
  if let plan, plan.weightShape != weight.shape {
    throw .shape("conv2d: weight has shape \(weight.shape), but the plan was made for \(plan.weightShape)")
  }
  var (shape, outShape) = try geometry.shapes(
    "conv2d", input: [xs[0], xs[1], xs[2], channels.count], outChannels: outChannels)
  let ys = try checkActivation("conv2d", y, "y")
  guard ys.dropLast() == outShape.dropLast(), channelOffset >= 0,
    channelOffset <= ys[3] - outChannels
  else {
    throw .shape(
      "conv2d: y has shape \(ys) and channelOffset \(channelOffset), expected [\(outShape[0]), \(outShape[1]), \(outShape[2]), channels] holding channels \(channelOffset)..<\(channelOffset + outChannels)")
  }
  try checkInt32(xs[3], ys[3])
  x.storage.withUnsafeBufferPointer { px in
    weight.storage.withUnsafeBufferPointer { pw in
      (bias?.storage ?? []).withUnsafeBufferPointer { pb in
        y.storage.withUnsafeMutableBufferPointer { py in
          bk_conv2d_forward_ex(
            precision.c, plan?.pointer, &shape, px.baseAddress! + channels.lowerBound,
            Int32(xs[3]), pw.baseAddress, bias == nil ? nil : pb.baseAddress, relu ? 1 : 0,
            py.baseAddress! + channelOffset, Int32(ys[3]))
        }
      }
    }
  }
}

/// The gradient of `conv2d` with respect to its input.
///
/// - Parameters:
///   - dy: the gradient of the output, `[batch, outHeight, outWidth,
///     outChannels]`.
///   - weight: `[outChannels, kernelHeight, kernelWidth, inChannels]`.
///   - inputShape: the shape of `x`, `[batch, height, width, inChannels]`
///     (with a stride above 1 several input sizes give the same output).
/// - Returns: `dx`, of shape `inputShape`.
/// - Throws: `KernelError.shape` when the shapes do not fit together.
public func conv2dBackwardData(
  _ dy: Tensor, weight: Tensor, inputShape: [Int], geometry: ConvolutionGeometry,
  precision: Precision = .fp32
) throws(KernelError) -> Tensor {
  guard inputShape.count == 4 else {
    throw .shape(
      "conv2dBackwardData: inputShape is \(inputShape), expected rank 4 [batch, height, width, channels]")
  }
  let outChannels = try checkWeight(
    "conv2dBackwardData", weight, inChannels: inputShape[3], geometry)
  var (shape, outShape) = try geometry.shapes(
    "conv2dBackwardData", input: inputShape, outChannels: outChannels)
  try dy.expect(outShape, "conv2dBackwardData: dy")
  var dx = Tensor(overwrittenShape: inputShape)
  dy.storage.withUnsafeBufferPointer { pdy in
    weight.storage.withUnsafeBufferPointer { pw in
      dx.storage.withUnsafeMutableBufferPointer { pdx in
        bk_conv2d_backward_data(
          precision.c, &shape, pdy.baseAddress, pw.baseAddress, pdx.baseAddress, 0)
      }
    }
  }
  return dx
}

/// The gradients of `conv2d` with respect to its weight and bias.
///
/// - Parameters:
///   - x: the input, `[batch, height, width, inChannels]`.
///   - dy: the gradient of the output, `[batch, outHeight, outWidth,
///     outChannels]`.
/// - Returns: `weight`, `[outChannels, kernelHeight, kernelWidth,
///   inChannels]`, and `bias`, `[outChannels]` (the sum of `dy` over
///   pixels).
/// - Throws: `KernelError.shape` when the shapes do not fit together.
public func conv2dBackwardWeight(
  _ x: Tensor, outputGradient dy: Tensor, geometry: ConvolutionGeometry,
  precision: Precision = .fp32
) throws(KernelError) -> (weight: Tensor, bias: Tensor) {
  try backwardWeight(inputShape: x.shape, dy, geometry) { shape, pdy, pdw, pdb in
    x.storage.withUnsafeBufferPointer { px in
      bk_conv2d_backward_weight(precision.c, shape, px.baseAddress, pdy, pdw, pdb, 0)
    }
  }
}

/// `conv2dBackwardWeight(_:outputGradient:geometry:precision: .bf16)` from
/// the input's bf16 bits, which are all a bf16 convolution reads of it: the
/// same bits, from half the bytes.
public func conv2dBackwardWeight(
  _ x: BFloat16Tensor, outputGradient dy: Tensor, geometry: ConvolutionGeometry
) throws(KernelError) -> (weight: Tensor, bias: Tensor) {
  try backwardWeight(inputShape: x.shape, dy, geometry) { shape, pdy, pdw, pdb in
    x.bits.withUnsafeBufferPointer { px in
      bk_conv2d_backward_weight_bf16(shape, px.baseAddress, pdy, pdw, pdb, 0)
    }
  }
}

/// The checks and results of both `conv2dBackwardWeight`s around `kernel`,
/// which reads the input itself.
private func backwardWeight(
  inputShape: [Int], _ dy: Tensor, _ geometry: ConvolutionGeometry,
  kernel: (
    UnsafePointer<bk_conv_shape>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?,
    UnsafeMutablePointer<Float>?
  ) -> Void
) throws(KernelError) -> (weight: Tensor, bias: Tensor) {
  let xs = try checkActivation("conv2dBackwardWeight", shape: inputShape, "x")
  let dys = try checkActivation("conv2dBackwardWeight", dy, "dy")
  let outChannels = dys[3]
  var (shape, outShape) = try geometry.shapes(
    "conv2dBackwardWeight", input: xs, outChannels: max(outChannels, 1))
  guard dys == Array(outShape.dropLast()) + [outChannels], outChannels >= 1 else {
    throw .shape(
      "conv2dBackwardWeight: dy has shape \(dys), expected [\(outShape[0]), \(outShape[1]), \(outShape[2]), outChannels >= 1]")
  }
  var dw = Tensor(overwrittenShape: [outChannels, geometry.kernelHeight, geometry.kernelWidth, xs[3]])
  var db = Tensor(overwrittenShape: [outChannels])
  dy.storage.withUnsafeBufferPointer { pdy in
    dw.storage.withUnsafeMutableBufferPointer { pdw in
      db.storage.withUnsafeMutableBufferPointer { pdb in
        kernel(&shape, pdy.baseAddress, pdw.baseAddress, pdb.baseAddress)
      }
    }
  }
  return (dw, db)
}

/// How `conv2d`, `conv2dBackwardData` and `conv2dBackwardWeight` compute.
///
/// Winograd F(4x4, 3x3) computes a 3x3, stride 1 convolution with padding
/// 1 or 0 on every side through transformed tiles, with a quarter of the multiply-adds of the
/// direct sum. Its results are the same whatever the thread count or
/// instruction set, but they are not the bits of im2col + GEMM, and their
/// rounding error is about ten times larger (near 1e-5 of the output's
/// magnitude). Only `fp32` uses it; `bf16` and other geometries always take
/// im2col. A 1x1 convolution of an upsampled input runs before the
/// upsample, a quarter of the work: forward always (the same bits as
/// im2col), backward except under `.im2col` (a different rounding).
public enum ConvolutionAlgorithm: String, CaseIterable, Sendable {
  /// Winograd where it was measured faster than im2col, im2col elsewhere.
  case auto
  /// Always im2col + GEMM.
  case im2col
  /// Winograd on every shape it supports, im2col on the rest.
  case winograd

  init(_ a: bk_conv_algorithm) {
    switch a {
    case BK_CONV_IM2COL: self = .im2col
    case BK_CONV_WINOGRAD: self = .winograd
    default: self = .auto
    }
  }

  var c: bk_conv_algorithm {
    switch self {
    case .auto: return BK_CONV_AUTO
    case .im2col: return BK_CONV_IM2COL
    case .winograd: return BK_CONV_WINOGRAD
    }
  }
}
