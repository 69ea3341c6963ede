import CKernels

/// Checks an NHWC activation and returns its four extents.
func nhwc(_ x: Tensor, _ name: String) throws(KernelError) -> (Int, Int, Int, Int) {
  let s = try x.dims(4, name)
  try checkInt32(s[0], s[1], s[2], s[3], x.count)
  return (s[0], s[1], s[2], s[3])
}

/// 2x2 average pooling with stride 2: `[n, h, w, c]` to `[n, h/2, w/2, c]`
/// (an odd last row or column is dropped).
public func averagePool2x2(_ x: Tensor) throws(KernelError) -> Tensor {
  let (n, h, w, c) = try nhwc(x, "averagePool2x2: x")
  var y = Tensor(overwrittenShape: [n, h / 2, w / 2, c])
  y.storage.withUnsafeMutableBufferPointer {
    bk_avgpool2x2_forward(Int32(n), Int32(h), Int32(w), Int32(c), x.storage, $0.baseAddress)
  }
  return y
}

/// Gradient of `averagePool2x2` for an input of `inputShape`.
public func averagePool2x2Backward(_ dy: Tensor, inputShape: [Int]) throws(KernelError) -> Tensor {
  var dx = Tensor(overwrittenShape: inputShape)
  let (n, h, w, c) = try nhwc(dx, "averagePool2x2Backward: inputShape")
  try dy.expect([n, h / 2, w / 2, c], "averagePool2x2Backward: dy")
  dx.storage.withUnsafeMutableBufferPointer {
    bk_avgpool2x2_backward(Int32(n), Int32(h), Int32(w), Int32(c), dy.storage, $0.baseAddress)
  }
  return dx
}

/// 2x2 max pooling with stride 2, with the winner of each window (0...3,
/// row-major) for the backward pass.
public func maxPool2x2(_ x: Tensor) throws(KernelError) -> (output: Tensor, argmax: [UInt8]) {
  let (n, h, w, c) = try nhwc(x, "maxPool2x2: x")
  var y = Tensor(overwrittenShape: [n, h / 2, w / 2, c])
  var arg = [UInt8](repeating: 0, count: y.count)
  y.storage.withUnsafeMutableBufferPointer { py in
    bk_maxpool2x2_forward(
      Int32(n), Int32(h), Int32(w), Int32(c), x.storage, py.baseAddress, &arg)
  }
  return (y, arg)
}

/// Gradient of `maxPool2x2`: `dy` goes to each window's winner.
public func maxPool2x2Backward(
  _ dy: Tensor, argmax: [UInt8], inputShape: [Int]
) throws(KernelError) -> Tensor {
  var dx = Tensor(overwrittenShape: inputShape)
  let (n, h, w, c) = try nhwc(dx, "maxPool2x2Backward: inputShape")
  try dy.expect([n, h / 2, w / 2, c], "maxPool2x2Backward: dy")
  guard argmax.count == dy.count else {
    throw .shape("maxPool2x2Backward: argmax has \(argmax.count) entries, expected \(dy.count)")
  }
  dx.storage.withUnsafeMutableBufferPointer {
    bk_maxpool2x2_backward(
      Int32(n), Int32(h), Int32(w), Int32(c), dy.storage, argmax, $0.baseAddress)
  }
  return dx
}

/// Sum over all positions: `[n, h, w, c]` to `[n, c]`.
public func sumPool(_ x: Tensor) throws(KernelError) -> Tensor {
  let (n, h, w, c) = try nhwc(x, "sumPool: x")
  var y = Tensor(shape: [n, c])
  y.storage.withUnsafeMutableBufferPointer {
    bk_sumpool_forward(Int32(n), Int32(h * w), Int32(c), x.storage, $0.baseAddress)
  }
  return y
}

/// Gradient of `sumPool`: `dy` `[n, c]` copied to every position.
public func sumPoolBackward(_ dy: Tensor, inputShape: [Int]) throws(KernelError) -> Tensor {
  var dx = Tensor(overwrittenShape: inputShape)
  let (n, h, w, c) = try nhwc(dx, "sumPoolBackward: inputShape")
  try dy.expect([n, c], "sumPoolBackward: dy")
  dx.storage.withUnsafeMutableBufferPointer {
    bk_sumpool_backward(Int32(n), Int32(h * w), Int32(c), dy.storage, $0.baseAddress)
  }
  return dx
}

/// Nearest-neighbour x2 upsampling: `[n, h, w, c]` to `[n, 2h, 2w, c]`.
public func upsample2x(_ x: Tensor) throws(KernelError) -> Tensor {
  let (n, h, w, c) = try nhwc(x, "upsample2x: x")
  var y = Tensor(overwrittenShape: [n, 2 * h, 2 * w, c])
  y.storage.withUnsafeMutableBufferPointer {
    bk_upsample2x_forward(Int32(n), Int32(h), Int32(w), Int32(c), x.storage, $0.baseAddress)
  }
  return y
}

/// Gradient of `upsample2x`: each 2x2 block of `dy` summed.
public func upsample2xBackward(_ dy: Tensor) throws(KernelError) -> Tensor {
  let (n, h2, w2, c) = try nhwc(dy, "upsample2xBackward: dy")
  guard h2 % 2 == 0, w2 % 2 == 0 else {
    throw .shape("upsample2xBackward: dy has shape \(dy.shape), expected even height and width")
  }
  var dx = Tensor(overwrittenShape: [n, h2 / 2, w2 / 2, c])
  dx.storage.withUnsafeMutableBufferPointer {
    bk_upsample2x_backward(Int32(n), Int32(h2 / 2), Int32(w2 / 2), Int32(c), dy.storage, $0.baseAddress)
  }
  return dx
}

/// Max pooling over `kernel`x`kernel` windows `stride` apart: `[n, h, w, c]`
/// to `[n, (h + 2 padding - kernel) / stride + 1, ..., c]`, as PyTorch's
/// `max_pool2d` (ceil mode off). The input is padded by `padding` on every
/// side (at most `kernel / 2`); padding never wins a window, a NaN does.
public func maxPool(_ x: Tensor, kernel: Int, stride: Int, padding: Int = 0) throws(KernelError)
  -> Tensor
{
  let window = try PoolWindow(x, kernel: kernel, stride: stride, padding: padding, "maxPool")
  var y = Tensor(overwrittenShape: window.outputShape(channels: window.c))
  try window.run(x, average: nil, into: &y, channelOffset: 0)
  return y
}

/// `maxPool(_:kernel:stride:padding:)` written into channels
/// `channelOffset..<channelOffset + c` of `output` `[n, oh, ow, C]`, the
/// other channels untouched: one branch of a concatenation along channels.
public func maxPool(
  _ x: Tensor, kernel: Int, stride: Int, padding: Int = 0,
  into output: inout Tensor, channelOffset: Int
) throws(KernelError) {
  let window = try PoolWindow(x, kernel: kernel, stride: stride, padding: padding, "maxPool")
  try window.run(x, average: nil, into: &output, channelOffset: channelOffset)
}

/// Average pooling over `kernel`x`kernel` windows `stride` apart, shaped as
/// `maxPool(_:kernel:stride:padding:)`, as PyTorch's `avg_pool2d`: each
/// window's float sum divided by `kernel * kernel` when `countsPadding`
/// (PyTorch's `count_include_pad`), else by its pixels inside the image.
public func averagePool(
  _ x: Tensor, kernel: Int, stride: Int, padding: Int = 0, countsPadding: Bool = true
) throws(KernelError) -> Tensor {
  let window = try PoolWindow(x, kernel: kernel, stride: stride, padding: padding, "averagePool")
  var y = Tensor(overwrittenShape: window.outputShape(channels: window.c))
  try window.run(x, average: countsPadding, into: &y, channelOffset: 0)
  return y
}

/// `averagePool(_:kernel:stride:padding:countsPadding:)` written into
/// channels `channelOffset..<channelOffset + c` of `output` `[n, oh, ow, C]`,
/// the other channels untouched.
public func averagePool(
  _ x: Tensor, kernel: Int, stride: Int, padding: Int = 0, countsPadding: Bool = true,
  into output: inout Tensor, channelOffset: Int
) throws(KernelError) {
  let window = try PoolWindow(x, kernel: kernel, stride: stride, padding: padding, "averagePool")
  try window.run(x, average: countsPadding, into: &output, channelOffset: channelOffset)
}

/// Mean over all positions: `[n, h, w, c]` to `[n, c]` (the float sum of
/// `sumPool(_:)`, pixel by pixel in order, divided by `h * w`).
public func globalAveragePool(_ x: Tensor) throws(KernelError) -> Tensor {
  let (n, h, w, c) = try nhwc(x, "globalAveragePool: x")
  guard h * w > 0 || n * c == 0 else {
    throw .shape("globalAveragePool: x has shape \(x.shape), which has no pixels to average")
  }
  var y = Tensor(overwrittenShape: [n, c])
  y.storage.withUnsafeMutableBufferPointer {
    bk_meanpool_forward(Int32(n), Int32(h * w), Int32(c), x.storage, $0.baseAddress)
  }
  return y
}

/// A pooling window checked against its input: the extents of both sides.
private struct PoolWindow {
  let n, h, w, c, kernel, stride, padding, outHeight, outWidth: Int
  let function: String

  init(_ x: Tensor, kernel: Int, stride: Int, padding: Int, _ function: String)
    throws(KernelError)
  {
    (n, h, w, c) = try nhwc(x, "\(function): x")
    try checkInt32(kernel, stride, padding)
    (self.kernel, self.stride, self.padding, self.function) = (kernel, stride, padding, function)
    guard kernel >= 1, stride >= 1, padding >= 0, 2 * padding <= kernel else {
      throw .shape(
        "\(function): kernel \(kernel), stride \(stride), padding \(padding): expected kernel and stride >= 1 and padding in 0...kernel/2")
    }
    outHeight = Int(bk_pool_out_size(Int32(h), Int32(kernel), Int32(stride), Int32(padding)))
    outWidth = Int(bk_pool_out_size(Int32(w), Int32(kernel), Int32(stride), Int32(padding)))
    guard outHeight >= 1, outWidth >= 1 else {
      throw .shape(
        "\(function): a \(kernel)x\(kernel) window with padding \(padding) does not fit the \(h)x\(w) input")
    }
  }

  func outputShape(channels: Int) -> [Int] { [n, outHeight, outWidth, channels] }

  /// Pools `x` into channels `channelOffset...` of `output`: the maximum when
  /// `average` is nil, else the mean, counting the padding when true.
  func run(_ x: Tensor, average: Bool?, into output: inout Tensor, channelOffset: Int)
    throws(KernelError)
  {
    let total = output.shape.last ?? 0
    guard output.shape == outputShape(channels: total), channelOffset >= 0,
      channelOffset + c <= total
    else {
      throw .shape(
        "\(function): output has shape \(output.shape), expected \(outputShape(channels: c)) with channels \(channelOffset)..<\(channelOffset + c) inside its last axis")
    }
    try checkInt32(output.count)
    guard output.count > 0 else { return }
    output.storage.withUnsafeMutableBufferPointer {
      let y = $0.baseAddress! + channelOffset
      let dims = (Int32(n), Int32(h), Int32(w), Int32(c))
      let window = (Int32(kernel), Int32(stride), Int32(padding))
      if let countsPadding = average {
        bk_avgpool_forward(
          dims.0, dims.1, dims.2, dims.3, window.0, window.1, window.2,
          countsPadding ? 1 : 0, x.storage, y, Int32(total))
      } else {
        bk_maxpool_forward(
          dims.0, dims.1, dims.2, dims.3, window.0, window.1, window.2, x.storage, y, Int32(total))
      }
    }
  }
}
