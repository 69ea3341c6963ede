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
