import CKernels

extension Tensor {
  /// One Adam step on `self` (PyTorch's bias-corrected formulation) with
  /// `gradient` and the moment tensors `m`, `v`; `step` counts from 1.
  public mutating func adamStep(
    gradient: Tensor, m: inout Tensor, v: inout Tensor, learningRate: Float, beta1: Float,
    beta2: Float, epsilon: Float, step: Int
  ) throws(KernelError) {
    try gradient.expect(shape, "adamStep: gradient")
    try m.expect(shape, "adamStep: m")
    try v.expect(shape, "adamStep: v")
    let n = count
    storage.withUnsafeMutableBufferPointer { p in
      m.storage.withUnsafeMutableBufferPointer { pm in
        v.storage.withUnsafeMutableBufferPointer { pv in
          bk_adam_update(
            n, learningRate, beta1, beta2, epsilon, step, p.baseAddress, gradient.storage,
            pm.baseAddress, pv.baseAddress)
        }
      }
    }
  }

  /// `self = decay * self + (1 - decay) * source`: an exponential moving
  /// average step.
  public mutating func moveAverage(toward source: Tensor, decay: Float) throws(KernelError) {
    try source.expect(shape, "moveAverage: source")
    let n = count
    storage.withUnsafeMutableBufferPointer { bk_ema_update(n, decay, source.storage, $0.baseAddress) }
  }

  /// Whether no element is NaN or infinite.
  public var isFinite: Bool { bk_all_finite(count, storage) != 0 }
}
