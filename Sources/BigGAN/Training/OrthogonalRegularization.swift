import BGKernels

/// BigGAN's orthogonal regularisation as BigGAN-PyTorch applies it
/// (`utils.ortho`): for every parameter with two or more dimensions, viewed
/// as `W` `[out, rest]`, the gradient gets `strength * 2 (W W^T ⊙ (1 - I)) W`,
/// the gradient of `(strength / 2) ||W W^T ⊙ (1 - I)||_F^2` (only the
/// off-diagonal terms: filters are pushed apart, not normalised).
public enum OrthogonalRegularization {
  /// Adds the regularisation gradient to every eligible parameter's gradient.
  public static func addGradient(
    to parameters: [Parameter], strength: Float, excluding excluded: Set<String>
  ) throws(KernelError) {
    guard strength != 0 else { return }
    for p in parameters where p.value.shape.count >= 2 && !excluded.contains(p.name) {
      let rows = p.value.shape[0], cols = p.value.count / rows
      let w = try p.value.reshaped([rows, cols])
      var gram = try matmul(w, w, transposeB: true)
      for i in 0..<rows { gram.storage[i * rows + i] = 0 }
      var g = try p.gradient.reshaped([rows, cols])
      try gemm(gram, w, into: &g, alpha: 2 * strength, beta: 1)
      p.gradient = try g.reshaped(p.value.shape)
    }
  }

  /// The penalty `(strength / 2) sum ||W W^T ⊙ (1 - I)||_F^2` whose gradient
  /// `addGradient` adds.
  public static func penalty(
    of parameters: [Parameter], strength: Float, excluding excluded: Set<String>
  ) throws(KernelError) -> Double {
    var total = 0.0
    for p in parameters where p.value.shape.count >= 2 && !excluded.contains(p.name) {
      let rows = p.value.shape[0], cols = p.value.count / rows
      let w = try p.value.reshaped([rows, cols])
      let gram = try matmul(w, w, transposeB: true)
      for i in 0..<rows {
        for j in 0..<rows where i != j { total += Double(gram.storage[i * rows + j]) * Double(gram.storage[i * rows + j]) }
      }
    }
    return Double(strength) / 2 * total
  }
}

/// An exponential moving average of a generator's parameters and buffers
/// (BigGAN-PyTorch `utils.ema`, which walks the state dict): `target =
/// decay * target + (1 - decay) * source`, with the decay forced to 0 (a
/// plain copy) before `start`.
public struct WeightAverage {
  public let decay: Float
  public let start: Int

  public init(decay: Float, start: Int) {
    self.decay = decay
    self.start = start
  }

  /// Moves `target` toward `source` after optimizer step `step`.
  public func update(_ target: any Module, from source: any Module, step: Int) throws(KernelError) {
    let d: Float = step < start ? 0 : decay
    for (t, s) in zip(target.parameters, source.parameters) { try t.value.moveAverage(toward: s.value, decay: d) }
    for (t, s) in zip(target.buffers, source.buffers) { try t.value.moveAverage(toward: s.value, decay: d) }
  }
}
