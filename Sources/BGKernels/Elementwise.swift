import CKernels

/// `max(x, 0)`, elementwise.
public func relu(_ x: Tensor) -> Tensor {
  var y = Tensor(overwrittenShape: x.shape)
  y.storage.withUnsafeMutableBufferPointer { bk_relu_forward(x.count, x.storage, $0.baseAddress) }
  return y
}

/// Gradient of `relu` given its input.
public func reluBackward(input x: Tensor, outputGradient dy: Tensor) throws(KernelError) -> Tensor {
  try dy.expect(x.shape, "reluBackward: outputGradient")
  var dx = Tensor(overwrittenShape: x.shape)
  dx.storage.withUnsafeMutableBufferPointer {
    bk_relu_backward(x.count, x.storage, dy.storage, $0.baseAddress)
  }
  return dx
}

/// `tanh(x)`, elementwise.
public func tanh(_ x: Tensor) -> Tensor {
  var y = Tensor(overwrittenShape: x.shape)
  y.storage.withUnsafeMutableBufferPointer { bk_tanh_forward(x.count, x.storage, $0.baseAddress) }
  return y
}

/// Gradient of `tanh` given its output.
public func tanhBackward(output y: Tensor, outputGradient dy: Tensor) throws(KernelError) -> Tensor {
  try dy.expect(y.shape, "tanhBackward: outputGradient")
  var dx = Tensor(overwrittenShape: y.shape)
  dx.storage.withUnsafeMutableBufferPointer {
    bk_tanh_backward(y.count, y.storage, dy.storage, $0.baseAddress)
  }
  return dx
}

extension Tensor {
  /// `self += alpha * x`, elementwise.
  public mutating func add(_ x: Tensor, scaledBy alpha: Float = 1) throws(KernelError) {
    try x.expect(shape, "add: x")
    storage.withUnsafeMutableBufferPointer { bk_axpy(x.count, alpha, x.storage, $0.baseAddress) }
  }
}
