import CKernels

/// Splits an activation `[batch, ..., channels]` into (samples, pixels per
/// sample, channels).
func activationDims(_ x: Tensor, _ name: String) throws(KernelError) -> (Int, Int, Int) {
  guard x.shape.count >= 2 else {
    throw .shape("\(name) has shape \(x.shape), expected [batch, ..., channels]")
  }
  let n = x.shape[0], c = x.shape[x.shape.count - 1]
  try checkInt32(n, c, x.count)
  return (n, n * c == 0 ? 0 : x.count / (n * c), c)
}

/// Per-channel mean and biased variance over every position of every sample
/// of `x` (`[batch, ..., channels]`); both results are `[channels]`.
public func batchStatistics(_ x: Tensor) throws(KernelError) -> (mean: Tensor, variance: Tensor) {
  let (n, hw, c) = try activationDims(x, "batchStatistics: x")
  var mean = Tensor(shape: [c]), variance = Tensor(shape: [c])
  mean.storage.withUnsafeMutableBufferPointer { pm in
    variance.storage.withUnsafeMutableBufferPointer { pv in
      bk_bn_stats(Int32(n * hw), Int32(c), x.storage, pm.baseAddress, pv.baseAddress)
    }
  }
  return (mean, variance)
}

/// Checks a gain or bias: `[channels]` (shared) or `[batch, channels]`
/// (per sample); returns the kernel's row stride.
private func affineStride(_ t: Tensor?, _ name: String, n: Int, c: Int) throws(KernelError) -> Int? {
  guard let t else { return nil }
  if t.shape == [c] { return 0 }
  if t.shape == [n, c] { return c }
  throw .shape("\(name) has shape \(t.shape), expected [\(c)] or [\(n), \(c)]")
}

/// `y = (x - mean) / sqrt(variance + epsilon) * gain + bias`, then ReLU when
/// `relu` is set.
///
/// - Parameters:
///   - x: `[batch, ..., channels]`.
///   - mean, variance: `[channels]`.
///   - gain, bias: `[channels]`, or `[batch, channels]` for class-conditional
///     batch-norm; `nil` means 1 and 0.
/// - Returns: `y`, shaped like `x`.
public func batchNorm(
  _ x: Tensor, mean: Tensor, variance: Tensor, epsilon: Float,
  gain: Tensor?, bias: Tensor?, relu: Bool = false
) throws(KernelError) -> Tensor {
  let (n, hw, c) = try activationDims(x, "batchNorm: x")
  try mean.expect([c], "batchNorm: mean")
  try variance.expect([c], "batchNorm: variance")
  let gs = try affineStride(gain, "batchNorm: gain", n: n, c: c)
  let bs = try affineStride(bias, "batchNorm: bias", n: n, c: c)
  if let gs, let bs, gs != bs {
    throw .shape("batchNorm: gain \(gain!.shape) and bias \(bias!.shape) must have the same shape")
  }
  var y = Tensor(overwrittenShape: x.shape)
  let g = gain?.storage, b = bias?.storage
  y.storage.withUnsafeMutableBufferPointer { py in
    bk_bn_forward(
      Int32(n), Int32(hw), Int32(c), x.storage, mean.storage, variance.storage, epsilon,
      g, b, Int32(gs ?? bs ?? 0), relu ? 1 : 0, py.baseAddress)
  }
  return y
}

/// Gradients of `batchNorm`.
///
/// - Parameters:
///   - output: the forward result when it was computed with `relu: true`
///     (its zeros stop the gradient), else `nil`.
///   - batchStatistics: `true` when `mean` and `variance` were the batch's
///     own statistics, so the gradient also flows through them.
/// - Returns: the gradient of `x`, and of the gain and bias (shaped like
///   `gain`, or `[channels]` when it is `nil`).
public func batchNormBackward(
  _ x: Tensor, mean: Tensor, variance: Tensor, epsilon: Float, gain: Tensor?,
  output: Tensor?, outputGradient dy: Tensor, batchStatistics: Bool
) throws(KernelError) -> (input: Tensor, gain: Tensor, bias: Tensor) {
  let (n, hw, c) = try activationDims(x, "batchNormBackward: x")
  try mean.expect([c], "batchNormBackward: mean")
  try variance.expect([c], "batchNormBackward: variance")
  try dy.expect(x.shape, "batchNormBackward: outputGradient")
  if let output { try output.expect(x.shape, "batchNormBackward: output") }
  let stride = try affineStride(gain, "batchNormBackward: gain", n: n, c: c) ?? 0
  var dx = Tensor(overwrittenShape: x.shape)
  var dgain = Tensor(overwrittenShape: stride == 0 ? [c] : [n, c]), dbias = dgain
  dx.storage.withUnsafeMutableBufferPointer { pdx in
    dgain.storage.withUnsafeMutableBufferPointer { pdg in
      dbias.storage.withUnsafeMutableBufferPointer { pdb in
        bk_bn_backward(
          Int32(n), Int32(hw), Int32(c), x.storage, mean.storage, variance.storage, epsilon,
          gain?.storage, Int32(stride), output?.storage, dy.storage, batchStatistics ? 1 : 0,
          pdx.baseAddress, pdg.baseAddress, pdb.baseAddress)
      }
    }
  }
  return (dx, dgain, dbias)
}
