import BGKernels

/// The weight a layer evaluates with (`W / sigma` when spectrally
/// normalised, else `W`) and the kernel plan made for it, kept for as long
/// as neither `W`, the spectral-norm vector nor the precision changes.
///
/// Evaluation never updates `u`, so `W / sigma` is a function of that key,
/// and the plan (packed micro-panels, Winograd filters) stays valid with it:
/// sampling pays the normalisation and the weight preparation once instead
/// of on every forward. Training changes the weights every step and so never
/// keeps one (`drop()`).
struct EvaluationWeight {
  private struct Key: Equatable {
    var weight: Int
    var u: Int?
    var precision: Precision
  }

  private var key: Key?
  private(set) var effective = Tensor(shape: [0])
  private(set) var plan: WeightPlan?

  /// The weight a forward in `mode` computes with, and outside training its
  /// plan: training normalises afresh (updating `u`) and keeps nothing;
  /// evaluation and inference reuse what the last call made while its key
  /// holds. `makePlan` builds a plan for a weight of the given shape (nil,
  /// e.g. when memory is short: unplanned).
  mutating func resolve(
    mode: Mode, weight: Parameter, sn: SpectralNorm?, precision: Precision,
    makePlan: ([Int], Precision) -> WeightPlan?
  ) throws(KernelError) -> (weight: Tensor, plan: WeightPlan?) {
    guard mode != .training else {
      drop()
      return (try sn?.normalize(weight.value, mode: mode) ?? weight.value, nil)
    }
    try refresh(weight: weight, sn: sn, precision: precision, makePlan: makePlan)
    return (effective, plan)
  }

  private mutating func refresh(
    weight: Parameter, sn: SpectralNorm?, precision: Precision,
    makePlan: ([Int], Precision) -> WeightPlan?
  ) throws(KernelError) {
    let current = Key(weight: weight.version, u: sn?.u.version, precision: precision)
    guard current != key else { return }
    // A failed normalisation must not leave a key that claims the old weight.
    key = nil
    plan = nil
    effective = try sn?.normalize(weight.value, mode: .evaluation) ?? weight.value
    plan = makePlan(effective.shape, precision)
    key = current
  }

  private mutating func drop() {
    key = nil
    plan = nil
    effective = Tensor(shape: [0])
  }
}
