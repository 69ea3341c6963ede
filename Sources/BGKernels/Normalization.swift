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

/// Per-channel count, mean and sum of squared deviations (`m2`, in double)
/// over every position of every sample of `x` (`[batch, ..., channels]`):
/// what the replicas of a data-parallel run combine into the statistics of
/// their whole batch.
public func batchMoments(_ x: Tensor) throws(KernelError) -> (count: Int, mean: [Double], m2: [Double]) {
  let (n, hw, c) = try activationDims(x, "batchMoments: x")
  var mean = [Double](repeating: 0, count: c), m2 = mean
  mean.withUnsafeMutableBufferPointer { pm in
    m2.withUnsafeMutableBufferPointer { pq in
      bk_bn_moments(Int32(n * hw), Int32(c), x.storage, pm.baseAddress, pq.baseAddress)
    }
  }
  return (n * hw, mean, m2)
}

/// Checks a gain or bias: `[channels]` (shared) or `[batch, channels]`
/// (per sample); returns the kernel's row stride.
private func affineStride(_ t: Tensor?, _ name: String, n: Int, c: Int) throws(KernelError) -> Int? {
  guard let t else { return nil }
  if t.shape == [c] { return 0 }
  if t.shape == [n, c] { return c }
  throw .shape("\(name) has shape \(t.shape), expected [\(c)] or [\(n), \(c)]")
}

/// The one stride of a gain and a bias (0 per channel, `c` per sample), which
/// must agree when both are given.
private func affineStride(
  gain: Tensor?, bias: Tensor?, _ function: String, n: Int, c: Int
) throws(KernelError) -> Int32 {
  let gs = try affineStride(gain, "\(function): gain", n: n, c: c)
  let bs = try affineStride(bias, "\(function): bias", n: n, c: c)
  if let gs, let bs, gs != bs {
    throw .shape("\(function): gain \(gain!.shape) and bias \(bias!.shape) must have the same shape")
  }
  return Int32(gs ?? bs ?? 0)
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
  let stride = try affineStride(gain: gain, bias: bias, "batchNorm", n: n, c: c)
  var y = Tensor(overwrittenShape: x.shape)
  let g = gain?.storage, b = bias?.storage
  y.storage.withUnsafeMutableBufferPointer { py in
    bk_bn_forward(
      Int32(n), Int32(hw), Int32(c), x.storage, mean.storage, variance.storage, epsilon,
      g, b, stride, relu ? 1 : 0, py.baseAddress)
  }
  return y
}

/// Gradients of `batchNorm`.
///
/// - Parameters:
///   - bias, relu: as the forward took them; with `relu` the gradient stops
///     where the forward's output was zero, recomputed from `x` with the
///     forward's rounding, so the output need not be kept.
///   - batchStatistics: `true` when `mean` and `variance` were the batch's
///     own statistics, so the gradient also flows through them.
/// - Returns: the gradient of `x`, and of the gain and bias (shaped like
///   `gain`, or `[channels]` when it is `nil`).
public func batchNormBackward(
  _ x: Tensor, mean: Tensor, variance: Tensor, epsilon: Float, gain: Tensor?,
  bias: Tensor?, relu: Bool, outputGradient dy: Tensor, batchStatistics: Bool
) throws(KernelError) -> (input: Tensor, gain: Tensor, bias: Tensor) {
  let a = try BatchNormGradientArguments(x, mean, variance, gain, bias, dy)
  var dx = Tensor(overwrittenShape: x.shape)
  var (dgain, dbias) = a.affineGradients()
  dx.storage.withUnsafeMutableBufferPointer { pdx in
    dgain.storage.withUnsafeMutableBufferPointer { pdg in
      dbias.storage.withUnsafeMutableBufferPointer { pdb in
        bk_bn_backward(
          a.n, a.hw, a.c, x.storage, mean.storage, variance.storage, epsilon,
          gain?.storage, bias?.storage, a.stride, relu ? 1 : 0, dy.storage, batchStatistics ? 1 : 0,
          pdx.baseAddress, pdg.baseAddress, pdb.baseAddress)
      }
    }
  }
  return (dx, dgain, dbias)
}

/// The first half of `batchNormBackward` (batch statistics) for replicas
/// that share their statistics: per channel, the sums over this batch of
/// `dy * gain` and `dy * gain * xhat` (to be summed over all replicas), and
/// the gain and bias gradients. Arguments as for `batchNormBackward`.
public func batchNormGradientSums(
  _ x: Tensor, mean: Tensor, variance: Tensor, epsilon: Float, gain: Tensor?,
  bias: Tensor?, relu: Bool, outputGradient dy: Tensor
) throws(KernelError) -> (sum: [Double], sumTimesNormalized: [Double], gain: Tensor, bias: Tensor) {
  let a = try BatchNormGradientArguments(x, mean, variance, gain, bias, dy)
  var sum = [Double](repeating: 0, count: Int(a.c)), sumXhat = sum
  var (dgain, dbias) = a.affineGradients()
  sum.withUnsafeMutableBufferPointer { ps in
    sumXhat.withUnsafeMutableBufferPointer { px in
      dgain.storage.withUnsafeMutableBufferPointer { pdg in
        dbias.storage.withUnsafeMutableBufferPointer { pdb in
          bk_bn_backward_sums(
            a.n, a.hw, a.c, x.storage, mean.storage, variance.storage, epsilon,
            gain?.storage, bias?.storage, a.stride, relu ? 1 : 0, dy.storage,
            ps.baseAddress, px.baseAddress, pdg.baseAddress, pdb.baseAddress)
        }
      }
    }
  }
  return (sum, sumXhat, dgain, dbias)
}

/// The second half: the gradient of `x`, given the means over the whole
/// batch of every replica of the two sums `batchNormGradientSums` returns
/// (`[channels]` each; the second must be given with the first).
public func batchNormInputGradient(
  _ x: Tensor, mean: Tensor, variance: Tensor, epsilon: Float, gain: Tensor?,
  bias: Tensor?, relu: Bool, outputGradient dy: Tensor, meanSum: Tensor, meanSumTimesNormalized: Tensor
) throws(KernelError) -> Tensor {
  let a = try BatchNormGradientArguments(x, mean, variance, gain, bias, dy)
  try meanSum.expect([Int(a.c)], "batchNormInputGradient: meanSum")
  try meanSumTimesNormalized.expect([Int(a.c)], "batchNormInputGradient: meanSumTimesNormalized")
  var dx = Tensor(overwrittenShape: x.shape)
  dx.storage.withUnsafeMutableBufferPointer { pdx in
    bk_bn_backward_input(
      a.n, a.hw, a.c, x.storage, mean.storage, variance.storage, epsilon, gain?.storage,
      bias?.storage, a.stride, relu ? 1 : 0, dy.storage, meanSum.storage, meanSumTimesNormalized.storage, pdx.baseAddress)
  }
  return dx
}

/// The checked dimensions every batch-norm gradient shares.
private struct BatchNormGradientArguments {
  let n: Int32, hw: Int32, c: Int32, stride: Int32

  init(
    _ x: Tensor, _ mean: Tensor, _ variance: Tensor, _ gain: Tensor?, _ bias: Tensor?, _ dy: Tensor
  ) throws(KernelError) {
    let (n, hw, c) = try activationDims(x, "batchNormBackward: x")
    try mean.expect([c], "batchNormBackward: mean")
    try variance.expect([c], "batchNormBackward: variance")
    try dy.expect(x.shape, "batchNormBackward: outputGradient")
    stride = try affineStride(gain: gain, bias: bias, "batchNormBackward", n: n, c: c)
    (self.n, self.hw, self.c) = (Int32(n), Int32(hw), Int32(c))
  }

  /// Gain and bias gradients for the kernel to fill, shaped like the gain
  /// (`[channels]` without one).
  func affineGradients() -> (Tensor, Tensor) {
    let t = Tensor(overwrittenShape: stride == 0 ? [Int(c)] : [Int(n), Int(c)])
    return (t, t)
  }
}
